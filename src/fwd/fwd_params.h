// Device-side parameters of one forward call: the common attention parameters
// (src/common/attn_params.h), filled by src/fwd/mha_fwd.cpp from aiter::mha_fwd_args.
#pragma once

#include "common/attn_params.h"

namespace aiter::fwd {

using FwdParams = AttnParams;

}  // namespace aiter::fwd
