// Host helpers shared by the forward entry points (mha_fwd.cpp, mha_fwd_splitkv.cpp).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

#include "fwd/fwd_params.h"
#include "mha_fwd.h"

namespace aiter::fwd {

// Device parameters of validated forward arguments (64-bit strides, mask, scales).
FwdParams make_fwd_params(const mha_fwd_args& a);

// Largest dynamic shared memory a block may opt into on the current device; -1 without one.
int device_smem_optin_bytes();

// The stream_config contract: one launch (returns 0), or warm-ups + timed launches (returns
// the mean ms per call, CUDA events or host clock). `launch` throws on a CUDA error.
float run_launches(const stream_config& s, const std::function<void()>& launch);

inline void check_cuda(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string("mha_fwd: ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace aiter::fwd
