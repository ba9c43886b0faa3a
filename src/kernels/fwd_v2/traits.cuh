// CuTe types of one v2 forward configuration, all derived from FwdV2Key and the tile sizes
// in tile.h: element type, the warp-level MMA (mma.sync m16n8k16, fp32 accumulate),
// swizzled shared-memory layouts and the copy atoms (cp.async 16 B, ldmatrix).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>

#include "fwd/fwd_key.h"
#include "kernels/fwd_v2/tile.h"

namespace aiter::fwd {

template <FwdV2Key K>
struct FwdV2Traits {
    using Element = std::conditional_t<K.dtype == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;
    using Acc     = float;

    static constexpr FwdV2Tile kTile = fwd_v2_tile(K.hdim);
    static constexpr int kBlockM   = kTile.block_m;
    static constexpr int kBlockN   = kTile.block_n;
    static constexpr int kNWarps   = kTile.warps;
    static constexpr int kNThreads = kNWarps * 32;
    static constexpr int kHeadDim  = K.hdim;
    static constexpr bool kMasked  = K.mask == MaskKind::window;

    static_assert(kBlockM % (16 * kNWarps) == 0, "each warp owns whole 16-row MMA tiles");
    static_assert(kBlockN % 16 == 0 && kHeadDim % 32 == 0, "tiles are multiples of the MMA K");

    using MmaAtom = std::conditional_t<K.dtype == DType::fp16,
                                       cute::MMA_Atom<cute::SM80_16x8x16_F32F16F16F32_TN>,
                                       cute::MMA_Atom<cute::SM80_16x8x16_F32BF16BF16F32_TN>>;
    // Warps tile the M (query) dimension; every warp sees all of N and K.
    using TiledMma = cute::TiledMMA<MmaAtom, cute::Layout<cute::Shape<cute::Int<kNWarps>, cute::_1, cute::_1>>,
                                    cute::Tile<cute::Int<16 * kNWarps>, cute::_16, cute::_16>>;

    // Shared memory: rows of kBlockKSmem elements, XOR-swizzled so that ldmatrix and the
    // 16-byte cp.async stores hit distinct banks.
    static constexpr int kBlockKSmem = kHeadDim % 64 == 0 ? 64 : 32;
    static constexpr int kSwizzleB   = kBlockKSmem == 32 ? 2 : 3;
    using SmemLayoutAtom = decltype(cute::composition(
        cute::Swizzle<kSwizzleB, 3, 3>{},
        cute::Layout<cute::Shape<cute::_8, cute::Int<kBlockKSmem>>, cute::Stride<cute::Int<kBlockKSmem>, cute::_1>>{}));
    using SmemLayoutQ  = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>>{}));  // (M, D)
    using SmemLayoutKV = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>{}));  // (N, D)
    // Vᵀ view of the V tile: (D, N), the B operand of O += P·V.
    using SmemLayoutVt = decltype(cute::composition(
        SmemLayoutKV{}, cute::make_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockN>>{}, cute::GenRowMajor{})));
    using SmemLayoutVtNoSwizzle = decltype(cute::get_nonswizzle_portion(SmemLayoutVt{}));
    using SmemLayoutO = SmemLayoutQ;  // O is staged through Q's buffer

    using SmemCopyAtom           = cute::Copy_Atom<cute::SM75_U32x4_LDSM_N, Element>;
    using SmemCopyAtomTransposed = cute::Copy_Atom<cute::SM75_U16x8_LDSM_T, Element>;
    using SmemCopyAtomO          = cute::Copy_Atom<cute::AutoVectorizingCopyWithAssumedAlignment<32>, Element>;

    // Global <-> shared: each thread moves 8 contiguous elements (16 bytes).
    static constexpr int kGmemElems       = 8;
    static constexpr int kGmemThreadsRow  = kBlockKSmem / kGmemElems;
    using GmemThreadLayout = cute::Layout<cute::Shape<cute::Int<kNThreads / kGmemThreadsRow>, cute::Int<kGmemThreadsRow>>,
                                          cute::Stride<cute::Int<kGmemThreadsRow>, cute::_1>>;
    using GmemTiledCopyLoad = decltype(cute::make_tiled_copy(
        cute::Copy_Atom<cute::SM80_CP_ASYNC_CACHEGLOBAL<cute::uint128_t>, Element>{}, GmemThreadLayout{},
        cute::Layout<cute::Shape<cute::_1, cute::Int<kGmemElems>>>{}));
    using GmemTiledCopyStore = decltype(cute::make_tiled_copy(
        cute::Copy_Atom<cute::UniversalCopy<cute::uint128_t>, Element>{}, GmemThreadLayout{},
        cute::Layout<cute::Shape<cute::_1, cute::Int<kGmemElems>>>{}));

    static constexpr int kSmemQBytes  = int(cute::cosize_v<SmemLayoutQ>) * int(sizeof(Element));
    static constexpr int kSmemKVBytes = int(cute::cosize_v<SmemLayoutKV>) * int(sizeof(Element));
    static constexpr int kSmemBytes   = kSmemQBytes + 2 * kSmemKVBytes;  // Q | K | V
};

}  // namespace aiter::fwd
