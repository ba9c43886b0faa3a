// The benchmark's `-mask=` spellings (after CK's / aiter's fmha runners) -> aiter::MaskSpec.
//
//   spelling        mask_type   left        right        printed as
//   0 | n           0           -1          -1           n
//   1 | t           1           -1          0            t        causal, top-left
//   2 | b           2           -1          0            b        causal, bottom-right
//   t:l,r           1           l           r            t(l:r)   (t if l < 0 and r == 0)
//   b:l,r           2           l           r            b(l:r)   (b if l < 0 and r == 0)
//   xt:w            1           see below                t(l:r)   sliding window of size w
//   xb:w            2           see below                b(l:r)
//   g:y,x           3           y - 1       x - 1        g(y:x)   generic coordinates
// xt:w / xb:w: w <= 0 means causal, else left = w / 2, right = w - 1 - left.
// Negative left/right mean "unbounded on that side" (src/common/mask.h defines visibility).
// The mha_fwd_args fields are mask_type = spec.type, window_size_left = spec.left,
// window_size_right = spec.right.
#pragma once

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/mask.h"

namespace bench {

struct CliMask {
    aiter::MaskSpec spec{};
    std::string name = "n";  // short name for the result line
};

namespace detail {

inline std::invalid_argument mask_error(std::string_view text, std::string_view why) {
    return std::invalid_argument(
        "-mask: malformed mask '" + std::string(text) + "': " + std::string(why) +
        " (expected 0, 1, 2, t, b, t:l,r, b:l,r, xt:w, xb:w or g:y,x)");
}

// Parses exactly `count` comma-separated integers.
inline std::vector<int> mask_ints(std::string_view text, std::string_view s, size_t count) {
    std::vector<int> out;
    size_t pos = 0;
    while (true) {
        const size_t comma        = s.find(',', pos);
        const std::string_view it = s.substr(pos, comma == s.npos ? s.npos : comma - pos);
        int v                     = 0;
        const auto [p, ec]        = std::from_chars(it.data(), it.data() + it.size(), v);
        if (it.empty() || ec != std::errc() || p != it.data() + it.size())
            throw mask_error(text, "'" + std::string(it) + "' is not an integer");
        out.push_back(v);
        if (comma == s.npos) break;
        pos = comma + 1;
    }
    if (out.size() != count)
        throw mask_error(text, "expected " + std::to_string(count) + " integer" +
                                   (count > 1 ? "s" : "") + " after ':', got " +
                                   std::to_string(out.size()));
    return out;
}

inline std::string window_name(const aiter::MaskSpec& m) {
    const char* k = m.type == 2 ? "b" : "t";
    if (m.left < 0 && m.right == 0) return k;  // causal
    return std::string(k) + "(" + std::to_string(m.left) + ":" + std::to_string(m.right) + ")";
}

}  // namespace detail

// Throws std::invalid_argument naming the string when it is not one of the spellings above.
inline CliMask parse_cli_mask(std::string_view text) {
    CliMask m;
    if (text == "0" || text == "n") return m;
    if (text == "1" || text == "t") {
        m.spec = {1, -1, 0};
        m.name = "t";
        return m;
    }
    if (text == "2" || text == "b") {
        m.spec = {2, -1, 0};
        m.name = "b";
        return m;
    }
    const size_t colon = text.find(':');
    if (colon == text.npos) throw detail::mask_error(text, "unknown mask");
    const std::string_view kind = text.substr(0, colon);
    const std::string_view rest = text.substr(colon + 1);
    if (kind == "t" || kind == "b") {
        const auto v = detail::mask_ints(text, rest, 2);
        m.spec       = {kind == "t" ? 1 : 2, v[0], v[1]};
        m.name       = detail::window_name(m.spec);
    } else if (kind == "xt" || kind == "xb") {
        const int w    = detail::mask_ints(text, rest, 1)[0];
        const int type = kind == "xt" ? 1 : 2;
        if (w <= 0) {
            m.spec = {type, -1, 0};
        } else {
            const int left = w / 2;
            m.spec         = {type, left, w - 1 - left};
        }
        m.name = detail::window_name(m.spec);
    } else if (kind == "g") {
        const auto v = detail::mask_ints(text, rest, 2);
        m.spec       = {3, v[0] - 1, v[1] - 1};
        m.name       = "g(" + std::to_string(v[0]) + ":" + std::to_string(v[1]) + ")";
    } else {
        throw detail::mask_error(text, "unknown mask kind '" + std::string(kind) + "'");
    }
    return m;
}

}  // namespace bench
