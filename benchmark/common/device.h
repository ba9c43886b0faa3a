// Host-side helpers shared by the benchmark executables: exit codes (aiter's), CUDA error
// checks that exit with a message naming the call, and an owning device buffer.
// Each executable defines `const char* const bench::kProgram` (its name, for messages).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <utility>
#include <vector>

namespace bench {

extern const char* const kProgram;

constexpr int kExitPass      = 0;
constexpr int kExitBadArg    = -1;
constexpr int kExitFail      = -2;
constexpr int kExitBadPrec   = -3;
constexpr int kExitCudaError = 1;

inline void cuda_check(cudaError_t e, const char* what, const char* file, int line) {
    if (e == cudaSuccess) return;
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {  // a machine without a usable GPU
        std::cerr << kProgram << ": no CUDA device found (" << cudaGetErrorName(e) << ": " << cudaGetErrorString(e)
                  << ")" << std::endl;
        std::exit(kExitCudaError);
    }
    std::cerr << kProgram << ": CUDA error " << cudaGetErrorName(e) << " (" << cudaGetErrorString(e) << ") in "
              << what << " at " << file << ":" << line << std::endl;
    std::exit(kExitCudaError);
}

}  // namespace bench

#define CUDA_CHECK(expr) ::bench::cuda_check((expr), #expr, __FILE__, __LINE__)

namespace bench {

// Device buffer (never a null pointer: at least 256 bytes, so empty tensors stay valid).
struct DeviceBuffer {
    void* ptr    = nullptr;
    size_t bytes = 0;
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t n) : bytes(n) { CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(n, 256))); }
    DeviceBuffer(const DeviceBuffer&)            = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) { o.ptr = nullptr; }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(ptr, o.ptr);
        std::swap(bytes, o.bytes);
        return *this;
    }
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
    template <typename T>
    T* as() const { return static_cast<T*>(ptr); }
    void upload(const void* src, size_t n) {
        if (n) CUDA_CHECK(cudaMemcpy(ptr, src, n, cudaMemcpyHostToDevice));
    }
    void download(void* dst, size_t n) const {
        if (n) CUDA_CHECK(cudaMemcpy(dst, ptr, n, cudaMemcpyDeviceToHost));
    }
};

template <typename T>
DeviceBuffer to_device(const std::vector<T>& v) {
    DeviceBuffer d(v.size() * sizeof(T));
    d.upload(v.data(), v.size() * sizeof(T));
    return d;
}

}  // namespace bench
