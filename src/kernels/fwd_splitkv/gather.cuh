// Row-gather copies of the split-KV kernel: global rows whose addresses come from a function
// (paged KV through a block table, packed GQA query rows) into a swizzled shared tile.
//
// A tile is (ROWS, D) elements; row r's global start is row_ptr(r, it) (16-byte aligned, D
// contiguous; it = which of the thread's chunks asks). Rows >= rows_valid and 8-element chunks
// starting at >= cols_valid are zero-filled (cp.async with src-size 0: nothing is read). Each
// thread moves 16-byte chunks c = tid, tid + kThreads, ...: consecutive threads take consecutive
// chunks of one row.
#pragma once

#include <cute/tensor.hpp>

#include <cstdint>

namespace aiter::fwd {

__device__ __forceinline__ void cp_async_16_zfill(void* smem, const void* gmem, bool valid) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    const int bytes    = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
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

}  // namespace aiter::fwd
