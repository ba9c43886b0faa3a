// Argument-check helpers shared by every host API (mha_fwd, mha_fwd_splitkv, mha_bwd): each
// failure throws std::invalid_argument("<api>: <field>: expected <expected>, got <got>").
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace aiter::host {

template <class T>
std::string arg_str(const T& v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

[[noreturn]] inline void fail_arg(const char* api, const std::string& field, const std::string& expected,
                                  const std::string& got) {
    throw std::invalid_argument(std::string(api) + ": " + field + ": expected " + expected + ", got " + got);
}

inline void require_ptr(const char* api, const void* p, const char* field, const std::string& why) {
    if (p == nullptr) fail_arg(api, field, "a device pointer (" + why + ")", "nullptr");
}

inline void require_nonneg(const char* api, int64_t v, const char* field) {
    if (v < 0) fail_arg(api, field, "a value >= 0", arg_str(v));
}

// The longest sequence (rows or keys) a call may have: kernels and launches round lengths up to
// whole tiles (at most 256 rows) in 32-bit arithmetic.
inline constexpr int kMaxSeqlen = 0x7fffffff - 256;

inline void require_length(const char* api, int64_t v, const char* field) {
    require_nonneg(api, v, field);
    if (v > kMaxSeqlen) fail_arg(api, field, "a length <= " + arg_str(kMaxSeqlen) + " (2^31 - 1 - 256)", arg_str(v));
}

// An int32 device array the kernels read (lengths, page tables, indices): null or 4-byte aligned.
inline void require_int32_array(const char* api, const void* p, const char* field) {
    if (reinterpret_cast<uintptr_t>(p) % 4 != 0) fail_arg(api, field, "a 4-byte aligned int32 array", "an address 4-byte misaligned");
}

}  // namespace aiter::host
