// Applies the attention mask (src/common/mask.h, the one definition of "visible") and the
// optional logits soft-cap to one (kBlockM × kBlockN) score block held in registers.
#pragma once

#include <cute/tensor.hpp>

#include "common/mask.h"

namespace aiter::fwd {

// Whether any element of key block [n0, n0 + block_n) is invisible to some row of
// [m_first, m_last]: only such blocks pay for per-element masking.
template <bool kMasked>
__device__ __forceinline__ bool block_needs_mask(const MaskSpec& mask, int m_first, int m_last,
                                                 int n0, int block_n, int sq, int sk) {
    if (n0 + block_n > sk) return true;
    if constexpr (kMasked) {
        const int64_t off = mask.offset(sq, sk);
        if (mask.left >= 0 && int64_t(n0) < int64_t(m_last) + off - mask.left) return true;
        if (mask.right >= 0 && int64_t(n0) + block_n - 1 > int64_t(m_first) + off + mask.right) return true;
    }
    return false;
}

// s: (rows, cols) scores; coords: matching identity coordinates (row in tile, col in tile).
template <bool kMasked, class TS, class TC>
__device__ __forceinline__ void apply_mask(TS& s, TC const& coords, const MaskSpec& mask, int m0,
                                           int n0, int sq, int sk) {
    using namespace cute;
    CUTE_UNROLL
    for (int i = 0; i < size(s); ++i) {
        const int row = m0 + get<0>(coords(i));
        const int col = n0 + get<1>(coords(i));
        bool keep;
        if constexpr (kMasked) {
            keep = mask.visible(row, col, sq, sk);
        } else {
            keep = col < sk;
        }
        if (!keep) s(i) = -INFINITY;
    }
}

// s = cap · tanh(s · scale / cap), in natural-log units (the caller then uses log2(e) as the
// exp2 scale).
template <class TS>
__device__ __forceinline__ void apply_softcap(TS& s, float scale_over_cap, float cap) {
    using namespace cute;
    CUTE_UNROLL
    for (int i = 0; i < size(s); ++i) s(i) = cap * tanhf(s(i) * scale_over_cap);
}

}  // namespace aiter::fwd
