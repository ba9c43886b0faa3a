// Host-side validation of aiter::mha_fwd_args. Every failure throws std::invalid_argument
// whose message names the field, what was expected and what was found:
//   "mha_fwd: nhead_k: expected a divisor of nhead_q (8), got 3"
#pragma once

#include <string>

#include "mha_fwd.h"

namespace aiter::fwd {

// Throws std::invalid_argument for arguments no configuration could accept.
void validate_fwd_args(const mha_fwd_args& a);

// Empty when some kernel family can, in principle, run `a`; otherwise why not (valid but
// unsupported configuration: the API returns -1).
std::string unsupported_feature(const mha_fwd_args& a);

}  // namespace aiter::fwd
