// Register views of MMA accumulators and their conversion to the element type, shared by
// every family:
//   mma.sync m16n8k16 (sm80): fragment ((2,2), MMA_M, MMA_N) seen as (rows, cols) =
//                             ((2, MMA_M), (2, MMA_N));
//   wgmma (sm90):            fragment ((2, 2, N/8), MMA_M, MMA_N) seen as
//                             ((2, MMA_M), (2, N/8, MMA_N)).
// In both, the four threads of a quad share a row. The *_as_a views reinterpret an
// accumulator (converted to the element type) as the register A operand of the next GEMM.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/array.h>
#include <cutlass/numeric_conversion.h>

namespace aiter {

// Register fragment conversion (fp32 -> fp16/bf16), pairwise (cvt.rn.f16x2.f32 and the like).
// dst and src are register tensors of the same size and layout.
template <class Dst, class Src>
__device__ __forceinline__ void convert_fragment(Dst& dst, Src const& src) {
    using namespace cute;
    using To   = typename Dst::value_type;
    using From = typename Src::value_type;
    constexpr int N = decltype(size(src))::value;
    static_assert(decltype(size(dst))::value == N);
    cutlass::NumericArrayConverter<To, From, N> convert;
    *reinterpret_cast<cutlass::Array<To, N>*>(dst.data()) =
        convert(*reinterpret_cast<const cutlass::Array<From, N>*>(src.data()));
}

// ((2,2), MMA_M, MMA_N) -> ((2, MMA_M), (2, MMA_N)): rows first, columns second.
template <class Layout>
__host__ __device__ constexpr auto acc_rowcol(Layout const& l) {
    using namespace cute;
    static_assert(decltype(rank(l))::value == 3 && decltype(size<0>(l))::value == 4);
    auto v = get<0>(l);  // (col pair, row pair)
    return make_layout(make_layout(get<1>(v), get<1>(l)), make_layout(get<0>(v), get<2>(l)));
}

// Accumulator of S (m16n8 tiles) -> A operand of P·V (m16k16 tiles):
// ((2,2), MMA_M, MMA_N) -> ((2,2,2), MMA_M, MMA_N / 2).
template <class Layout>
__host__ __device__ constexpr auto acc_as_a_operand(Layout const& l) {
    using namespace cute;
    auto d = logical_divide(l, Shape<Underscore, Underscore, _2>{});
    return make_layout(make_layout(get<0>(d), get<2, 0>(d)), get<1>(d), get<2, 1>(d));
}

// wgmma accumulator ((2, 2, N/8), MMA_M, MMA_N) -> ((2, MMA_M), (2, N/8, MMA_N)): rows, then
// columns. As with mma.sync, the four threads of a quad share a row.
template <class Layout>
__host__ __device__ constexpr auto gmma_acc_rowcol(Layout const& l) {
    using namespace cute;
    static_assert(decltype(rank(l))::value == 3 && decltype(rank<0>(l))::value == 3);
    auto v = get<0>(l);  // (column pair, row half, column group)
    return make_layout(make_layout(get<1>(v), get<1>(l)), make_layout(get<0>(v), get<2>(v), get<2>(l)));
}

// Accumulator of S (64 × N per warpgroup) -> register A operand of O += P·V (k steps of 16):
// ((2, 2, N/8), M, 1) -> ((2, 2, 2), M, N/16). Column group 2k + i of the accumulator holds the
// same elements as value (.., .., i) of k step k of the A operand.
template <class Layout>
__host__ __device__ constexpr auto gmma_acc_as_a(Layout const& l) {
    using namespace cute;
    auto d = logical_divide(l, Shape<Shape<Underscore, Underscore, _2>, Underscore, Underscore>{});
    auto v = get<0>(d);  // (2, 2, (2, N/16))
    return make_layout(make_layout(get<0>(v), get<1>(v), get<2, 0>(v)), get<1>(d),
                       make_layout(get<2, 1>(v), get<2>(d)));
}

}  // namespace aiter
