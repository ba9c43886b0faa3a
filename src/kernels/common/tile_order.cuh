// The order in which CTAs take their (row block, head, batch) tiles: unmasked, row blocks of
// one (batch, head) in turn; masked, heaviest first inside L2 sections (tile_from_index), and
// the same order with host-precomputed divisions (TileDecoder). Host and device.
#pragma once

#include <cstdint>

namespace aiter {

// Tile t (0 <= t < m_blocks * heads * batch) -> (row block, head, batch). Unmasked: row blocks
// of one (batch, head) are consecutive and share K/V in L2. Masked: heaviest first — under a
// causal mask the last row blocks see the most keys — within sections of `section` (batch, head)
// pairs: "last row block of every pair of the section, then the one before, ...", one section
// after the other. A section's K/V is sized by the host to stay in L2 (fwd_tile_section), so the
// CTAs running at the same time re-read it from L2, not from memory. section <= 0: one section.
template <bool kMasked>
__host__ __device__ __forceinline__ void tile_from_index(int64_t t, int m_blocks, int heads, int batch, int section,
                                                int* m_block, int* h, int* b) {
    if constexpr (kMasked) {
        const int64_t hb = int64_t(heads) * batch;
        const int64_t g  = section > 0 && section < hb ? section : hb;
        const int64_t first = t / (g * m_blocks) * g;           // first pair of t's section
        const int64_t size  = hb - first < g ? hb - first : g;  // the last section may be short
        const int64_t r     = t - first * m_blocks;
        const int64_t pair  = first + r % size;
        *m_block = m_blocks - 1 - int(r / size);
        *h       = int(pair % heads);
        *b       = int(pair / heads);
    } else {
        (void)section;
        *m_block = int(t % m_blocks);
        const int64_t rest = t / m_blocks;
        *h = int(rest % heads);
        *b = int(rest / heads);
    }
}

// Unsigned division by a run-time divisor d >= 1 as a multiply-high, an add and a shift, for
// numerators below 2^31: with l = ceil(log2 d) and mul = floor(2^32 (2^l - d) / d) + 1,
// n / d = (umulhi(n, mul) + n) >> l (the round-up method, Hacker's Delight 10-9; the add cannot
// overflow because umulhi(n, mul) <= n < 2^31). The host computes mul and l once per launch; a
// hardware-less 32-bit division costs ~20 instructions, a 64-bit one a call.
struct FastDiv {
    uint32_t d = 1, mul = 1, shift = 0;

    FastDiv() = default;
    __host__ __device__ explicit FastDiv(uint32_t divisor) : d(divisor > 0 ? divisor : 1) {
        shift = 0;
        while ((uint64_t(1) << shift) < d) ++shift;
        mul = uint32_t((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d) / d + 1);
    }
    __host__ __device__ __forceinline__ uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
        return (__umulhi(n, mul) + n) >> shift;
#else
        return uint32_t(((uint64_t(n) * mul >> 32) + n) >> shift);
#endif
    }
    __host__ __device__ __forceinline__ uint32_t mod(uint32_t n, uint32_t q) const { return n - q * d; }
};

// The masked order of tile_from_index with the divisions precomputed by the host, for grids of
// fewer than 2^31 tiles (`ok`: the v3 host code declines larger masked grids). Same tiles as
// tile_from_index<true> (tests/cpp/tile_order.cu). The unmasked v3 kernels keep
// tile_from_index<false> (docs/PERF.md, v3 log step 27).
struct TileDecoder {
    bool ok = false;
    uint32_t m_blocks = 1, hb = 1, g = 1;
    FastDiv div_heads, div_span, div_g, div_last;  // heads, g · m_blocks, g, the last section's size
    FastDiv div_ratio;                                     // q heads per K/V head

    TileDecoder() = default;
    __host__ __device__ TileDecoder(int64_t tiles, int m_blocks_, int heads, int batch, int section, int h_ratio) {
        const int64_t hb64 = int64_t(heads) * batch;
        const int64_t g64  = section > 0 && section < hb64 ? section : hb64;
        ok = tiles > 0 && tiles < (int64_t(1) << 31) && m_blocks_ > 0 && heads > 0 && batch > 0 &&
             h_ratio > 0 && int64_t(m_blocks_) * hb64 == tiles;
        if (!ok) return;
        m_blocks  = uint32_t(m_blocks_);
        hb        = uint32_t(hb64);
        g         = uint32_t(g64);
        div_heads = FastDiv(uint32_t(heads));
        div_span  = FastDiv(g * m_blocks);
        div_g     = FastDiv(g);
        const uint32_t rem = hb % g;
        div_last  = FastDiv(rem ? rem : g);
        div_ratio = FastDiv(uint32_t(h_ratio));
    }

    __host__ __device__ __forceinline__ int kv_head(int h) const { return int(div_ratio.div(uint32_t(h))); }

    __host__ __device__ __forceinline__ void decode(uint32_t t, int* m_block, int* h, int* b) const {
        const uint32_t first = div_span.div(t) * g;  // first pair of t's section
        const FastDiv& sz    = first + g > hb ? div_last : div_g;
        const uint32_t r     = t - first * m_blocks;
        const uint32_t q     = sz.div(r);
        const uint32_t pair  = first + sz.mod(r, q);
        *m_block             = int(m_blocks - 1 - q);
        const uint32_t bb    = div_heads.div(pair);
        *h = int(div_heads.mod(pair, bb));
        *b = int(bb);
    }
};

// The tile of this CTA in a grid of (row blocks, heads, batch), in the order above.
template <bool kMasked>
__device__ __forceinline__ void tile_coords(int section, int* m_block, int* h, int* b) {
    const int64_t linear = blockIdx.x + int64_t(gridDim.x) * (blockIdx.y + int64_t(gridDim.y) * blockIdx.z);
    tile_from_index<kMasked>(linear, int(gridDim.x), int(gridDim.y), int(gridDim.z), section, m_block, h, b);
}

}  // namespace aiter
