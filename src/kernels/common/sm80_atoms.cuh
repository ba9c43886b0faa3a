// The CuTe building blocks of the mma.sync (sm80+) families, chosen by element type and head
// dim only: the element type, the m16n8k16 MMA atom (fp32 accumulate), the XOR-swizzled
// shared-memory row atom (ldmatrix and 16-byte cp.async hit distinct banks) and the ldmatrix
// atoms, the 16-byte global copies. fwd_v2, fwd_splitkv and bwd_v2 build their tile-specific
// layouts from these.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>

#include "common/kernel_key.h"

namespace aiter {

template <DType D>
using ElementOf = std::conditional_t<D == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;

template <DType D>
struct Sm80Atoms {
    using Element = ElementOf<D>;
    using MmaAtom = std::conditional_t<D == DType::fp16, cute::MMA_Atom<cute::SM80_16x8x16_F32F16F16F32_TN>,
                                       cute::MMA_Atom<cute::SM80_16x8x16_F32BF16BF16F32_TN>>;
    using SmemCopyAtom           = cute::Copy_Atom<cute::SM75_U32x4_LDSM_N, Element>;
    using SmemCopyAtomTransposed = cute::Copy_Atom<cute::SM75_U16x8_LDSM_T, Element>;
};

// Shared-memory rows of a (rows, kHeadDim) tile: kBlockKSmem elements per swizzle row.
template <int kHeadDim>
struct Sm80SmemAtom {
    static constexpr int kBlockKSmem = kHeadDim % 64 == 0 ? 64 : 32;
    static constexpr int kSwizzleB   = kBlockKSmem == 32 ? 2 : 3;
    using Layout = decltype(cute::composition(
        cute::Swizzle<kSwizzleB, 3, 3>{},
        cute::Layout<cute::Shape<cute::_8, cute::Int<kBlockKSmem>>, cute::Stride<cute::Int<kBlockKSmem>, cute::_1>>{}));
};

// Tiled 16-byte copies of (rows, D) tiles between global and shared memory (Load: cp.async) or
// registers and global memory (Store) by kThreads threads, kBlockKSmem / 8 threads per row.
template <class Element, int kThreads, int kBlockKSmem>
struct Sm80GmemCopy {
    static constexpr int kElems      = 8;
    static constexpr int kThreadsRow = kBlockKSmem / kElems;
    using ThreadLayout = cute::Layout<cute::Shape<cute::Int<kThreads / kThreadsRow>, cute::Int<kThreadsRow>>,
                                      cute::Stride<cute::Int<kThreadsRow>, cute::_1>>;
    using Load = decltype(cute::make_tiled_copy(cute::Copy_Atom<cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>, Element>{},
                                                ThreadLayout{}, cute::Layout<cute::Shape<cute::_1, cute::Int<kElems>>>{}));
    using Store = decltype(cute::make_tiled_copy(cute::Copy_Atom<cute::UniversalCopy<cute::uint128_t>, Element>{},
                                                 ThreadLayout{}, cute::Layout<cute::Shape<cute::_1, cute::Int<kElems>>>{}));
};

}  // namespace aiter
