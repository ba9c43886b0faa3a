// Row-gather copies of the split-KV kernel into swizzled shared tiles: gather_rows_async for
// rows whose addresses come from a function (packed GQA query rows), gather_kv_strided_async /
// gather_kv_paged_async for the K and V tiles of the main loop (contiguous or paged rows).
//
// gather_rows_async: a tile is (ROWS, D) elements; row r's global start is row_ptr(r, it) (16-byte aligned, D
// contiguous; it = which of the thread's chunks asks). Rows >= rows_valid and 8-element chunks
// starting at >= cols_valid are zero-filled (cp.async with src-size 0: nothing is read). Each
// thread moves 16-byte chunks c = tid, tid + kThreads, ...: consecutive threads take consecutive
// chunks of one row.
#pragma once

#include <cute/tensor.hpp>

#include <cstdint>
#include <utility>

namespace aiter::fwd {

__device__ __forceinline__ void cp_async_16_zfill(void* smem, const void* gmem, bool valid) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const int bytes    = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem));
}

// s: (ROWS, D) shared tensor (any CuTe layout whose 8-element chunks are contiguous, e.g. the
// 8x64 swizzle atom). row_ptr(r, it) -> const Element* of global row r (called for valid rows
// only; it is the thread's chunk index: r == (tid + it * kThreads) / (D / 8)).
template <int kThreads, class SmemTensor, class RowPtr>
__device__ __forceinline__ void gather_rows_async(SmemTensor& s, RowPtr const& row_ptr, int rows_valid,
                                                  int cols_valid, const void* any_valid_ptr, int tid) {
    using namespace cute;
    constexpr int kRows   = decltype(size<0>(s))::value;
    constexpr int kD      = decltype(size<1>(s))::value;
    constexpr int kChunks = kRows * kD / 8;
    static_assert(kChunks % kThreads == 0, "every thread moves the same number of chunks");
    CUTE_UNROLL
    for (int it = 0; it < kChunks / kThreads; ++it) {
        const int c   = tid + it * kThreads;
        const int row = c / (kD / 8);
        const int col = (c % (kD / 8)) * 8;
        const bool ok = row < rows_valid && col < cols_valid;
        const void* src = ok ? static_cast<const void*>(row_ptr(row, it) + col) : any_valid_ptr;
        cp_async_16_zfill(&s(row, col), src, ok);
    }
}

// The K or V rows of one key tile, with addresses that are cheap to form: thread tid moves
// the 16-byte chunk at column c0 = (tid % (D/8)) * 8 of rows r0 + it * kRowsPerIt
// (r0 = tid / (D/8)), so per chunk only the row offset changes. gather_rows_async's per-row
// callback cost ~48 instructions per chunk in the main loop (branches around every address);
// these cost a few. Rows >= rows_valid and chunks at or past cols_valid are zero-filled.
template <int kThreads, int kRows_, int kD>
struct KvTileCopy {
    static constexpr int kRows      = kRows_;
    static constexpr int kRowsPerIt = kThreads / (kD / 8);
    static constexpr int kIts       = kRows_ / kRowsPerIt;
    static_assert(kThreads % (kD / 8) == 0 && kRows_ % kRowsPerIt == 0, "every thread moves whole rows' chunks");
};
template <int kThreads, class SmemTensor>
using KvTileCopyOf = KvTileCopy<kThreads, decltype(cute::size<0>(std::declval<SmemTensor&>()))::value,
                                decltype(cute::size<1>(std::declval<SmemTensor&>()))::value>;

// Contiguous rows: row r of the tile starts at tile_base + r * row_stride (elements).
template <int kThreads, class SmemTensor, class Element>
__device__ __forceinline__ void gather_kv_strided_async(SmemTensor& s, const Element* tile_base, int64_t row_stride,
                                                        int rows_valid, int cols_valid, int tid) {
    using C = KvTileCopyOf<kThreads, SmemTensor>;
    constexpr int kD = decltype(cute::size<1>(s))::value;
    const int r0 = tid / (kD / 8), c0 = (tid % (kD / 8)) * 8;
    const char* src    = reinterpret_cast<const char*>(tile_base + int64_t(r0) * row_stride + c0);
    const int64_t step = int64_t(C::kRowsPerIt) * row_stride * int64_t(sizeof(Element));  // bytes
    const bool col_ok  = c0 < cols_valid;
    if (col_ok && rows_valid >= C::kRows) {  // a whole tile (all but a sequence's last): no predicates
        CUTE_UNROLL
        for (int it = 0; it < C::kIts; ++it) cp_async_16(&s(r0 + it * C::kRowsPerIt, c0), src + it * step);
        return;
    }
    CUTE_UNROLL
    for (int it = 0; it < C::kIts; ++it) {
        const int r   = r0 + it * C::kRowsPerIt;
        const bool ok = col_ok && r < rows_valid;
        const void* from = ok ? static_cast<const void*>(src + it * step) : static_cast<const void*>(tile_base);
        cp_async_16_zfill(&s(r, c0), from, ok);
    }
}

// Paged rows: key j = n0 + r lives in page page_id[r / 16] (the caller's per-16-row-group
// block-table entries: pages hold >= 16 rows, and n0 is a multiple of 16) at row j & page_mask:
// head_base + page * page_stride + (j & page_mask) * row_stride.
template <int kThreads, class SmemTensor, class Element, int kGroups>
__device__ __forceinline__ void gather_kv_paged_async(SmemTensor& s, const Element* head_base, const int (&page_id)[kGroups],
                                                      int64_t page_stride, int64_t row_stride, int n0, int page_mask,
                                                      int rows_valid, int cols_valid, int tid) {
    using C = KvTileCopyOf<kThreads, SmemTensor>;
    constexpr int kD = decltype(cute::size<1>(s))::value;
    static_assert(16 % C::kRowsPerIt == 0 && kGroups * 16 == C::kRows,
                  "a thread's it-th row lies in 16-row group it * kRowsPerIt / 16");
    const int r0 = tid / (kD / 8), c0 = (tid % (kD / 8)) * 8;
    const Element* base = head_base + c0;
    const bool col_ok   = c0 < cols_valid;
    auto offset = [&](int it) {
        const int r = r0 + it * C::kRowsPerIt;
        return int64_t(page_id[it * C::kRowsPerIt / 16]) * page_stride + int64_t((n0 + r) & page_mask) * row_stride;
    };
    if (col_ok && rows_valid >= C::kRows) {  // a whole tile: no predicates
        CUTE_UNROLL
        for (int it = 0; it < C::kIts; ++it) cp_async_16(&s(r0 + it * C::kRowsPerIt, c0), base + offset(it));
        return;
    }
    CUTE_UNROLL
    for (int it = 0; it < C::kIts; ++it) {
        const bool ok = col_ok && r0 + it * C::kRowsPerIt < rows_valid;
        const void* src = ok ? static_cast<const void*>(base + offset(it)) : static_cast<const void*>(head_base);
        cp_async_16_zfill(&s(r0 + it * C::kRowsPerIt, c0), src, ok);
    }
}

}  // namespace aiter::fwd
