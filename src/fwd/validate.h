// Host-side validation of aiter::mha_fwd_args. Every failure throws std::invalid_argument
// whose message names the field, what was expected and what was found:
//   "mha_fwd: nhead_k: expected a divisor of nhead_q (8), got 3"
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

#include "mha_fwd.h"

namespace aiter::fwd {

// Throws std::invalid_argument for arguments no configuration could accept. `api` prefixes
// the message ("mha_fwd", "mha_fwd_splitkv").
void validate_fwd_args(const mha_fwd_args& a, const char* api = "mha_fwd");

// The helpers behind it, shared by the other forward entry points (mha_fwd_splitkv):
// throw std::invalid_argument("<api>: <field>: expected <expected>, got <got>").
[[noreturn]] void fail_arg(const char* api, const std::string& field, const std::string& expected,
                           const std::string& got);
void require_ptr(const char* api, const void* p, const char* field, const std::string& why);
void require_nonneg(const char* api, int64_t v, const char* field);
template <class T>
std::string arg_str(const T& v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

// Empty when some kernel family can, in principle, run `a`; otherwise why not (valid but
// unsupported configuration: the API returns -1).
std::string unsupported_feature(const mha_fwd_args& a);

}  // namespace aiter::fwd
