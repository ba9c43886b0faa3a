// Host-side validation of aiter::mha_bwd_args. Every failure throws std::invalid_argument
// whose message names the field, what was expected and what was found:
//   "mha_bwd: nhead_k: expected a divisor of nhead_q (8), got 3"
#pragma once

#include <string>

#include "mha_bwd.h"

namespace aiter::bwd {

// Throws std::invalid_argument for arguments no configuration could accept.
void validate_bwd_args(const mha_bwd_args& a);

// Empty when the v2 family can, in principle, run `a`; otherwise why not (valid but
// unsupported configuration: the API returns -1).
std::string unsupported_feature(const mha_bwd_args& a);

// Empty when every Q/K/V/O/dO/dQ/dK/dV row is 16-byte aligned (head dims, strides multiples of 8,
// pointers 16-byte aligned), as the v2 kernels need; otherwise the first offending field.
// mha_bwd then runs on packed, zero-padded copies (src/bwd/mha_bwd.cpp).
std::string alignment_problem(const mha_bwd_args& a);

}  // namespace aiter::bwd
