// Row-gather copies of the split-KV kernel into swizzled shared tiles: gather_rows_async for
// rows whose addresses come from a function (packed GQA query rows), gather_kv_strided_async /
// gather_kv_paged_async for the K and V tiles of the main loop (contiguous or paged rows).
//
// gather_rows_async: a tile is (ROWS, D) elements; row r's global start is row_ptr(r)
// (16-byte aligned, D contiguous). Rows >= rows_valid and 8-element chunks starting at >=
// cols_valid are zero-filled (cp.async with src-size 0: nothing is read). Each thread moves
// 16-byte chunks c = tid, tid + kThreads, ...: consecutive threads take consecutive chunks of
// one row.
#pragma once

#include <cute/tensor.hpp>

#include <cstdint>

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
// 8x64 swizzle atom). row_ptr(r) -> const Element* of global row r (called for valid rows only).
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
        const void* src = ok ? static_cast<const void*>(row_ptr(row) + col) : any_valid_ptr;
        cp_async_16_zfill(&s(row, col), src, ok);
    }
}

// The K or V rows of one key tile, with addresses that are cheap to form: thread tid moves
// the 16-byte chunk at column c0 = (tid % (D/8)) * 8 of rows r0 + it * kRowsPerIt
// (r0 = tid / (D/8)), so per chunk only the row offset changes. gather_rows_async's per-row
// callback cost ~48 instructions per chunk in the main loop (branches around every address);
// these cost a few. Rows >= rows_valid and chunks at or past cols_valid are zero-filled; a
// whole tile (every tile but a sequence's last) takes a path with no predicates.
// chunk_src(it, r) -> const char* of the thread's it-th chunk (row r = r0 + it * kRowsPerIt,
// column c0); `fallback` is any valid address (for the zero-filled chunks).
template <int kThreads, class SmemTensor, class ChunkSrc>
__device__ __forceinline__ void gather_kv_tile_async(SmemTensor& s, ChunkSrc const& chunk_src, const void* fallback,
                                                     int rows_valid, int cols_valid, int r0, int c0) {
    constexpr int kRows      = decltype(cute::size<0>(s))::value;
    constexpr int kD         = decltype(cute::size<1>(s))::value;
    constexpr int kRowsPerIt = kThreads / (kD / 8);
    static_assert(kThreads % (kD / 8) == 0 && kRows % kRowsPerIt == 0, "every thread moves whole rows' chunks");
    const bool col_ok = c0 < cols_valid;
    if (col_ok && rows_valid >= kRows) {
        CUTE_UNROLL
        for (int it = 0; it < kRows / kRowsPerIt; ++it) cp_async_16(&s(r0 + it * kRowsPerIt, c0), chunk_src(it, r0 + it * kRowsPerIt));
        return;
    }
    CUTE_UNROLL
    for (int it = 0; it < kRows / kRowsPerIt; ++it) {
        const int r   = r0 + it * kRowsPerIt;
        const bool ok = col_ok && r < rows_valid;
        cp_async_16_zfill(&s(r, c0), ok ? static_cast<const void*>(chunk_src(it, r)) : fallback, ok);
    }
}

// Contiguous rows: row r of the tile starts at tile_base + r * row_stride (elements).
template <int kThreads, class SmemTensor, class Element>
__device__ __forceinline__ void gather_kv_strided_async(SmemTensor& s, const Element* tile_base, int64_t row_stride,
                                                        int rows_valid, int cols_valid, int tid) {
    constexpr int kD         = decltype(cute::size<1>(s))::value;
    constexpr int kRowsPerIt = kThreads / (kD / 8);
    const int r0 = tid / (kD / 8), c0 = (tid % (kD / 8)) * 8;
    const char* src    = reinterpret_cast<const char*>(tile_base + int64_t(r0) * row_stride + c0);
    const int64_t step = int64_t(kRowsPerIt) * row_stride * int64_t(sizeof(Element));  // bytes
    gather_kv_tile_async<kThreads>(
        s, [&](int it, int) { return src + it * step; }, tile_base, rows_valid, cols_valid, r0, c0);
}

// Paged rows: key j = n0 + r lives in page page_id[r / 16] (the caller's per-16-row-group
// block-table entries: pages hold >= 16 rows, and n0 is a multiple of 16) at row j & page_mask:
// head_base + page * page_stride + (j & page_mask) * row_stride.
template <int kThreads, class SmemTensor, class Element, int kGroups>
__device__ __forceinline__ void gather_kv_paged_async(SmemTensor& s, const Element* head_base, const int (&page_id)[kGroups],
                                                      int64_t page_stride, int64_t row_stride, int n0, int page_mask,
                                                      int rows_valid, int cols_valid, int tid) {
    constexpr int kD         = decltype(cute::size<1>(s))::value;
    constexpr int kRowsPerIt = kThreads / (kD / 8);
    static_assert(16 % kRowsPerIt == 0 && kGroups * 16 == decltype(cute::size<0>(s))::value,
                  "a thread's it-th row lies in 16-row group it * kRowsPerIt / 16");
    const int r0 = tid / (kD / 8), c0 = (tid % (kD / 8)) * 8;
    const Element* base = head_base + c0;
    gather_kv_tile_async<kThreads>(
        s,
        [&](int it, int r) {
            const int64_t off = int64_t(page_id[it * kRowsPerIt / 16]) * page_stride + int64_t((n0 + r) & page_mask) * row_stride;
            return reinterpret_cast<const char*>(base + off);
        },
        head_base, rows_valid, cols_valid, r0, c0);
}

}  // namespace aiter::fwd
