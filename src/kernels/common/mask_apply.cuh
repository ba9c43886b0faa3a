// Applies the attention mask (src/common/mask.h, the one definition of "visible") and the
// optional logits soft-cap to one (kBlockM × kBlockN) score block held in registers.
#pragma once

#include <cute/tensor.hpp>

#include "common/mask.h"

namespace aiter {

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
// Row i's visible keys form the interval [i + off − left, i + off + right] ∩ [0, sk)
// (MaskSpec::visible), so relative to the block's first key n0 both ends are a per-block base
// plus the row's index in the tile: an element costs two compares, one with kNoLeft (the
// caller's promise that the mask has no left bound: none, causal, or a window (-1, r)).
// kKeysOnRows: s and coords are transposed (rows are keys, columns queries: the backward's Sᵀ).
template <bool kMasked, bool kNoLeft = false, bool kKeysOnRows = false, class TS, class TC>
__device__ __forceinline__ void apply_mask(TS& s, TC const& coords, const MaskSpec& mask, int m0,
                                           int n0, int sq, int sk) {
    using namespace cute;
    constexpr int64_t kFar = int64_t(1) << 30;  // |bases| stay far from int overflow
    auto clamp = [](int64_t v) { return int(v < -kFar ? -kFar : (v > kFar ? kFar : v)); };
    int lo_base = -int(kFar), hi_base = int(kFar);
    if constexpr (kMasked) {
        const int64_t diag = int64_t(m0) + mask.offset(sq, sk) - n0;  // diagonal column of tile row 0
        if (!kNoLeft && mask.left >= 0) lo_base = clamp(diag - mask.left);
        if (mask.right >= 0) hi_base = clamp(diag + mask.right + 1);
    }
    const int hi_keys = sk - n0;
    constexpr int kQueries = decltype(size<kKeysOnRows ? 1 : 0>(s))::value;
    constexpr int kKeys    = decltype(size<kKeysOnRows ? 0 : 1>(s))::value;
    auto at = [&](auto& t, int q, int k) -> decltype(auto) {
        if constexpr (kKeysOnRows) return t(k, q);
        else return t(q, k);
    };
    CUTE_UNROLL
    for (int i = 0; i < kQueries; ++i) {
        const int row = kKeysOnRows ? get<1>(coords(0, i)) : get<0>(coords(i, 0));
        const int lo  = lo_base + row;
        const int hi  = min(hi_base + row, hi_keys);
        CUTE_UNROLL
        for (int j = 0; j < kKeys; ++j) {
            const int col = kKeysOnRows ? get<0>(coords(j, 0)) : get<1>(coords(i, j));
            if ((!kNoLeft && col < lo) || col >= hi) at(s, i, j) = -INFINITY;
        }
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

}  // namespace aiter
