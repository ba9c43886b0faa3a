// Host check of the forward tile order (src/kernels/common/tile_order.cuh, tile_from_index):
// for many grids and L2 section sizes the order visits every (row block, head, batch) tile
// exactly once; masked, each section is walked heaviest (last row block) first and sections
// follow each other; unmasked, the row blocks of one (batch, head) are consecutive. The v3
// masked kernels' TileDecoder (the masked order with host-precomputed divisions) gives the same
// tile for every index, and FastDiv divides exactly (divisors 1 ... 3000 and large ones, numerators up
// to 2^31 - 1).
// Prints "ok <case>" / "FAIL <case>: ..." per case and "<n> failed" last.
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/common/tile_order.cuh"

namespace {

int failures = 0;

template <bool kMasked>
std::string check(int m_blocks, int heads, int batch, int section) {
    const int64_t n = int64_t(m_blocks) * heads * batch, pairs = int64_t(heads) * batch;
    const int64_t g = section > 0 && section < pairs ? section : pairs;
    std::vector<char> seen(n, 0);
    const aiter::TileDecoder dec(n, m_blocks, heads, batch, section, 1);
    if (!dec.ok) return "TileDecoder refused the grid";
    for (int64_t t = 0; t < n; ++t) {
        int m, h, b, dm, dh, db;
        aiter::tile_from_index<kMasked>(t, m_blocks, heads, batch, section, &m, &h, &b);
        if (kMasked) {
            dec.decode(uint32_t(t), &dm, &dh, &db);
            if (dm != m || dh != h || db != b) return "TileDecoder differs at tile " + std::to_string(t);
        }
        if (m < 0 || m >= m_blocks || h < 0 || h >= heads || b < 0 || b >= batch)
            return "tile " + std::to_string(t) + " out of range";
        const int64_t id = (int64_t(b) * heads + h) * m_blocks + m;
        if (seen[id]++) return "tile " + std::to_string(t) + " repeats (m,h,b)=(" + std::to_string(m) + "," +
                               std::to_string(h) + "," + std::to_string(b) + ")";
        const int64_t pair = int64_t(b) * heads + h;
        if (kMasked) {
            // section of t, and position inside it: row blocks descend, pairs stay in the section
            const int64_t first = t / (g * m_blocks) * g;
            if (pair < first || pair >= first + g) return "tile " + std::to_string(t) + " left its section";
            if (t > 0) {
                int pm, ph, pb;
                aiter::tile_from_index<kMasked>(t - 1, m_blocks, heads, batch, section, &pm, &ph, &pb);
                const bool same_section = (t - 1) / (g * m_blocks) == t / (g * m_blocks);
                if (same_section && pm < m) return "row block rises inside a section at " + std::to_string(t);
            }
        } else if (m != int(t % m_blocks) || pair != t / m_blocks) {
            return "unmasked order broken at " + std::to_string(t);
        }
    }
    return "";
}

// FastDiv against the division operator; kv_head of TileDecoder for GQA ratios.
std::string check_fast_div() {
    std::vector<uint32_t> divisors;
    for (uint32_t d = 1; d <= 3000; ++d) divisors.push_back(d);
    for (uint32_t d : {4095u, 4096u, 4097u, 65535u, 65536u, 65537u, 1000003u, (1u << 30) - 1, 1u << 30, (1u << 30) + 1,
                       (1u << 31) - 1})
        divisors.push_back(d);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint32_t d : divisors) {
        const aiter::FastDiv fd(d);
        std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, 2 * d, (1u << 31) - 1, (1u << 31) - d,
                                    (1u << 31) - 1 - ((1u << 31) - 1) % d};
        for (int i = 0; i < 64; ++i) {  // xorshift numerators below 2^31
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            ns.push_back(uint32_t(x >> 33));
        }
        for (uint32_t n : ns) {
            if (n >= (1u << 31)) continue;
            const uint32_t q = fd.div(n);
            if (q != n / d || fd.mod(n, q) != n % d)
                return "FastDiv(" + std::to_string(d) + ") of " + std::to_string(n) + " gave " + std::to_string(q);
        }
    }
    for (int ratio : {1, 2, 3, 5, 8, 12, 64}) {
        const aiter::TileDecoder dec(int64_t(2) * 64 * 3, 2, 64, 3, 0, ratio);
        for (int h = 0; h < 64; ++h)
            if (dec.kv_head(h) != h / ratio) return "kv_head(" + std::to_string(h) + ") with ratio " + std::to_string(ratio);
    }
    if (aiter::TileDecoder(int64_t(1) << 31, 1 << 21, 1 << 10, 1, 0, 1).ok)
        return "TileDecoder accepted 2^31 tiles";
    return "";
}

}  // namespace

int main() {
    {
        const std::string err = check_fast_div();
        std::printf("%s fast_div%s%s\n", err.empty() ? "ok" : "FAIL", err.empty() ? "" : ": ", err.c_str());
        failures += !err.empty();
    }
    const int grids[][3] = {{1, 1, 1}, {4, 16, 32}, {16, 16, 8}, {7, 3, 5}, {128, 16, 1}, {3, 32, 2}, {1, 40, 3}};
    const int sections[] = {0, 1, 2, 3, 7, 24, 1000};
    for (auto& gr : grids)
        for (int sec : sections)
            for (int masked = 0; masked < 2; ++masked) {
                const std::string err = masked ? check<true>(gr[0], gr[1], gr[2], sec) : check<false>(gr[0], gr[1], gr[2], sec);
                const std::string name = "m" + std::to_string(gr[0]) + "_h" + std::to_string(gr[1]) + "_b" +
                                         std::to_string(gr[2]) + "_s" + std::to_string(sec) + (masked ? "_masked" : "");
                std::printf("%s %s%s%s\n", err.empty() ? "ok" : "FAIL", name.c_str(), err.empty() ? "" : ": ", err.c_str());
                failures += !err.empty();
            }
    std::printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
