// Host-side helpers shared by the forward and backward APIs (header only): the head-dim bucket,
// the device's shared-memory limit, CUDA error checks and the stream_config timing loop.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "mha_common.h"

namespace aiter::host {

// The head-dim bucket of every family: the first (hdim_q, hdim_v) pair of `buckets` (listed
// smallest first) that holds both head dims, or {0, 0} when none does.
inline std::pair<int, int> hdim_bucket(int hdim_q, int hdim_v, std::initializer_list<std::pair<int, int>> buckets) {
    for (const auto& b : buckets)
        if (hdim_q <= b.first && hdim_v <= b.second) return b;
    return {0, 0};
}

// Largest dynamic shared memory a block may opt into on the current device, or -1 when no
// device can be queried.
inline int device_smem_optin() {
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    int v = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return v;
}

// Compute capability of the current device as major * 10 + minor (90 for H100/H200), or -1 when
// no device can be queried.
inline int device_cc() {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return major * 10 + minor;
}

// Why the TMA (v3) kernels cannot address a tensor with these strides (elements), "" when they
// can: TMA strides are below 2^40 bytes and not negative. `tensors` names them ("Q/K/V").
inline std::string tma_stride_problem(std::initializer_list<int64_t> strides, const char* tensors) {
    constexpr int64_t kMaxStride = int64_t(1) << 39;  // elements of 2 bytes
    for (int64_t st : strides)
        if (st >= kMaxStride || st < 0)
            return std::string("a ") + tensors + " stride of " + std::to_string(st) +
                   " elements is beyond TMA's 2^40-byte limit";
    return {};
}

// Why the current device cannot run the sm_90a (v3) kernels, "" when it can or when no device
// can be queried (then the launch reports it).
inline std::string sm90a_device_problem() {
    const int cc = device_cc();
    if (cc >= 0 && cc != 90)
        return "the v3 kernels are sm_90a code (H100/H200); this device is sm_" + std::to_string(cc);
    return {};
}

// Throws std::runtime_error "<api>: <what>: <CUDA error>" on failure.
inline void check_cuda(cudaError_t e, const char* api, const std::string& what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string(api) + ": " + what + ": " + cudaGetErrorString(e));
}

// The stream_config contract (include/mha_common.h): launch once and return 0, or warm up and
// return the mean milliseconds of nrepeat_ launches (CUDA events or host clock).
template <class Launch>
float run_timed(const stream_config& s, const char* api, Launch&& launch) {
    if (!s.time_kernel_) {
        launch();
        return 0.f;
    }
    for (int i = 0; i < s.cold_niters_; ++i) launch();
    const int n = std::max(1, s.nrepeat_);
    float ms = 0.f;
    if (s.is_gpu_timer_) {
        cudaEvent_t start, stop;
        check_cuda(cudaEventCreate(&start), api, "cudaEventCreate");
        check_cuda(cudaEventCreate(&stop), api, "cudaEventCreate");
        check_cuda(cudaEventRecord(start, s.stream_id_), api, "cudaEventRecord");
        for (int i = 0; i < n; ++i) launch();
        check_cuda(cudaEventRecord(stop, s.stream_id_), api, "cudaEventRecord");
        check_cuda(cudaEventSynchronize(stop), api, "cudaEventSynchronize");
        check_cuda(cudaEventElapsedTime(&ms, start, stop), api, "cudaEventElapsedTime");
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
    } else {
        check_cuda(cudaStreamSynchronize(s.stream_id_), api, "cudaStreamSynchronize");
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) launch();
        check_cuda(cudaStreamSynchronize(s.stream_id_), api, "cudaStreamSynchronize");
        ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    return ms / n;
}

}  // namespace aiter::host
