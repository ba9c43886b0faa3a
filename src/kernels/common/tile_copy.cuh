// Predicated tile copies between global and shared memory for the v2 forward kernel.
//
// A tile is (ROWS, D) with only rows [0, rows_valid) and columns [0, cols_valid) present in
// global memory; everything else reads as zero and is never written.
//   kAligned (row starts 16-byte aligned, cols_valid a multiple of 8 elements):
//     full tile : this thread's chunks all lie inside: unpredicated 16-byte cp.async
//     otherwise : 16-byte cp.async per 8-element chunk, predicated per chunk
//   !kAligned (any hdim, any stride, any base alignment): element-wise loads/stores. This is a
//     separate kernel instance (FwdV2Key::aligned), so its code never weighs on the fast one.
// Tensors are partitioned by the same tiled copy: (CPY=8, CPY_M, CPY_K); `coords` is the
// identity tensor of the tile partitioned the same way.
#pragma once

#include <cute/tensor.hpp>

namespace aiter {

// True when every chunk this thread owns lies inside the valid box.
template <class TC>
__device__ __forceinline__ bool thread_tile_full(TC const& coords, int rows_valid, int cols_valid) {
    using namespace cute;
    constexpr int kM = decltype(size<1>(coords))::value;
    constexpr int kK = decltype(size<2>(coords))::value;
    constexpr int kV = decltype(size<0>(coords))::value;
    return get<0>(coords(0, kM - 1, 0)) < rows_valid && get<1>(coords(kV - 1, 0, kK - 1)) < cols_valid;
}

template <class TS, class TD, class TC>
__device__ __forceinline__ void load_tile_elementwise(TS const& src, TD& dst, TC const& coords, int rows_valid,
                                                   int cols_valid) {
    using namespace cute;
    using Element = typename TD::value_type;
    CUTE_UNROLL
    for (int m = 0; m < size<1>(dst); ++m) {
        const bool row_ok = get<0>(coords(0, m, 0)) < rows_valid;
        CUTE_UNROLL
        for (int k = 0; k < size<2>(dst); ++k) {
            CUTE_UNROLL
            for (int i = 0; i < size<0>(dst); ++i) {
                dst(i, m, k) = (row_ok && get<1>(coords(i, m, k)) < cols_valid) ? Element(src(i, m, k)) : Element(0);
            }
        }
    }
}

template <bool kAligned, class TiledCopy, class TS, class TD, class TC>
__device__ __forceinline__ void load_tile_async(TiledCopy const& tiled_copy, TS const& src, TD& dst,
                                                TC const& coords, int rows_valid, int cols_valid) {
    using namespace cute;
    if constexpr (!kAligned) {
        load_tile_elementwise(src, dst, coords, rows_valid, cols_valid);
        return;
    }
    if (thread_tile_full(coords, rows_valid, cols_valid)) {
        copy(tiled_copy, src, dst);
        return;
    }
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
}

template <class TS, class TD, class TC>
__device__ __forceinline__ void store_tile_elementwise(TS const& src, TD& dst, TC const& coords, int rows_valid,
                                                    int cols_valid) {
    using namespace cute;
    CUTE_UNROLL
    for (int m = 0; m < size<1>(src); ++m) {
        if (get<0>(coords(0, m, 0)) >= rows_valid) continue;
        CUTE_UNROLL
        for (int k = 0; k < size<2>(src); ++k) {
            CUTE_UNROLL
            for (int i = 0; i < size<0>(src); ++i) {
                if (get<1>(coords(i, m, k)) < cols_valid) dst(i, m, k) = src(i, m, k);
            }
        }
    }
}

// Registers -> global memory, predicated the same way (nothing outside the valid box is written).
template <bool kAligned, class TiledCopy, class TS, class TD, class TC>
__device__ __forceinline__ void store_tile(TiledCopy const& tiled_copy, TS const& src, TD& dst,
                                           TC const& coords, int rows_valid, int cols_valid) {
    using namespace cute;
    if constexpr (!kAligned) {
        store_tile_elementwise(src, dst, coords, rows_valid, cols_valid);
        return;
    }
    if (thread_tile_full(coords, rows_valid, cols_valid)) {
        copy(tiled_copy, src, dst);
        return;
    }
    CUTE_UNROLL
    for (int m = 0; m < size<1>(src); ++m) {
        if (get<0>(coords(0, m, 0)) >= rows_valid) continue;
        CUTE_UNROLL
        for (int k = 0; k < size<2>(src); ++k) {
            if (get<1>(coords(0, m, k)) < cols_valid) copy(tiled_copy, src(_, m, k), dst(_, m, k));
        }
    }
}

}  // namespace aiter
