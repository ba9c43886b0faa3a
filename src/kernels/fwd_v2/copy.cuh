// Predicated tile copies between global and shared memory for the v2 forward kernel.
//
// A tile is (ROWS, D) with only rows [0, rows_valid) and columns [0, cols_valid) present in
// global memory; everything else reads as zero and is never written. Two paths, chosen per
// call (uniform across the CTA):
//   aligned16 : 16-byte cp.async per 8-element chunk (row starts and cols_valid multiples of 8)
//   otherwise : element-wise loads/stores (any hdim, any stride, any base alignment)
// Tensors are partitioned by the same tiled copy: (CPY=8, CPY_M, CPY_K); `coords` is the
// identity tensor of the tile partitioned the same way.
#pragma once

#include <cute/tensor.hpp>

namespace aiter::fwd {

template <class TiledCopy, class TS, class TD, class TC>
__device__ __forceinline__ void load_tile_async(TiledCopy const& tiled_copy, TS const& src, TD& dst,
                                                TC const& coords, int rows_valid, int cols_valid,
                                                bool aligned16) {
    using namespace cute;
    using Element = typename TD::value_type;
    if (aligned16) {
        CUTE_UNROLL
        for (int m = 0; m < size<1>(dst); ++m) {
            if (get<0>(coords(0, m, 0)) < rows_valid) {
                CUTE_UNROLL
                for (int k = 0; k < size<2>(dst); ++k) {
                    if (get<1>(coords(0, m, k)) < cols_valid) {
                        copy(tiled_copy, src(_, m, k), dst(_, m, k));
                    } else {
                        clear(dst(_, m, k));
                    }
                }
            } else {
                clear(dst(_, m, _));
            }
        }
    } else {
        CUTE_UNROLL
        for (int m = 0; m < size<1>(dst); ++m) {
            const bool row_ok = get<0>(coords(0, m, 0)) < rows_valid;
            CUTE_UNROLL
            for (int k = 0; k < size<2>(dst); ++k) {
                CUTE_UNROLL
                for (int i = 0; i < size<0>(dst); ++i) {
                    dst(i, m, k) = (row_ok && get<1>(coords(i, m, k)) < cols_valid) ? Element(src(i, m, k))
                                                                                      : Element(0);
                }
            }
        }
    }
}

// Registers -> global memory, predicated the same way (nothing outside the valid box is written).
template <class TiledCopy, class TS, class TD, class TC>
__device__ __forceinline__ void store_tile(TiledCopy const& tiled_copy, TS const& src, TD& dst,
                                           TC const& coords, int rows_valid, int cols_valid,
                                           bool aligned16) {
    using namespace cute;
    CUTE_UNROLL
    for (int m = 0; m < size<1>(src); ++m) {
        if (get<0>(coords(0, m, 0)) >= rows_valid) continue;
        CUTE_UNROLL
        for (int k = 0; k < size<2>(src); ++k) {
            if (aligned16) {
                if (get<1>(coords(0, m, k)) < cols_valid) copy(tiled_copy, src(_, m, k), dst(_, m, k));
            } else {
                CUTE_UNROLL
                for (int i = 0; i < size<0>(src); ++i) {
                    if (get<1>(coords(i, m, k)) < cols_valid) dst(i, m, k) = src(i, m, k);
                }
            }
        }
    }
}

}  // namespace aiter::fwd
