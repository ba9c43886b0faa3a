// The blocks a mask lets one tile visit (src/common/mask.h, the one definition of "visible"):
// the key blocks of a query block (forward) and the query blocks of a key block (backward).
#pragma once

#include <cstdint>

#include "common/mask.h"

namespace aiter {

// Key blocks [*n_begin, *n_end) of size block_n that any row of [m_first, m_last] may see.
template <bool kMasked>
__device__ __forceinline__ void key_block_range(const MaskSpec& mask, int m_first, int m_last, int sq, int sk,
                                                int block_n, int* n_begin, int* n_end) {
    *n_begin = 0;
    *n_end   = (sk + block_n - 1) / block_n;
    if constexpr (kMasked) {
        int64_t lo, hi;
        mask.key_range(m_first, m_last + 1, sq, sk, &lo, &hi);
        *n_begin = lo < hi ? int(lo / block_n) : 0;
        *n_end   = lo < hi ? int((hi + block_n - 1) / block_n) : 0;
    }
}

// Query blocks [*m_begin, *m_end) of size block_m with a row that may see some key of
// [n_first, n_last]: the transpose of key_block_range (MaskSpec::row_range).
template <bool kMasked>
__device__ __forceinline__ void query_block_range(const MaskSpec& mask, int n_first, int n_last, int sq, int sk,
                                                  int block_m, int* m_begin, int* m_end) {
    *m_begin = 0;
    *m_end   = (sq + block_m - 1) / block_m;
    if constexpr (kMasked) {
        int64_t lo, hi;
        mask.row_range(n_first, n_last + 1, sq, sk, &lo, &hi);
        *m_begin = lo < hi ? int(lo / block_m) : 0;
        *m_end   = lo < hi ? int((hi + block_m - 1) / block_m) : 0;
    }
}

}  // namespace aiter
