// Host helpers shared by the forward entry points (mha_fwd.cpp, mha_fwd_splitkv.cpp).
#pragma once

#include <stdexcept>
#include <string>

#include "common/host_util.h"
#include "fwd/fwd_params.h"
#include "mha_fwd.h"

namespace aiter::fwd {

// Device parameters of validated forward arguments (64-bit strides, mask, scales).
FwdParams make_fwd_params(const mha_fwd_args& a);

inline void check_cuda(cudaError_t e, const char* what) { host::check_cuda(e, "mha_fwd", what); }

}  // namespace aiter::fwd
