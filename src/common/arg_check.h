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

}  // namespace aiter::host
