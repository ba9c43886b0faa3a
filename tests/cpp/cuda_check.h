// What the GPU test programs of tests/cpp share: CHECK_CUDA(call) prints the CUDA error with its
// place and exits 2 (the programs print "N passed, M failed" and exit 0 / 1 otherwise); report()
// counts and prints one case; device_major() probes the device; Buf is a device buffer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#define CHECK_CUDA(x)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
            std::exit(2);                                                                          \
        }                                                                                          \
    } while (0)

namespace gpu_test {

inline int passed = 0, failed = 0;

inline void report(bool ok, const std::string& name, const std::string& why = "") {
    ++(ok ? passed : failed);
    std::printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name.c_str(), why.empty() ? "" : ": ", why.c_str());
}

// The compute-capability major of the current device; without one, prints "no CUDA device"
// and exits 2.
inline int device_major() {
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
        std::printf("no CUDA device\n");
        std::exit(2);
    }
    return major;
}

// A device buffer of `bytes` bytes.
struct Buf {
    void* p = nullptr;
    size_t bytes = 0;
    explicit Buf(size_t n) : bytes(n) { CHECK_CUDA(cudaMalloc(&p, n > 0 ? n : 1)); }
    ~Buf() { cudaFree(p); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    std::vector<unsigned char> get() const {
        std::vector<unsigned char> h(bytes);
        CHECK_CUDA(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
        return h;
    }
    template <class T = uint16_t>
    T* at(int64_t elem) const { return static_cast<T*>(p) + elem; }
};

}  // namespace gpu_test
