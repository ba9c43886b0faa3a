// CuTe types of one v2 backward configuration, all derived from BwdV2Key and tile.h: element
// type, the warp-level MMAs (mma.sync m16n8k16, fp32 accumulate; one warp layout per GEMM shape), swizzled shared-memory layouts
// with their transposed views (the backward multiplies by Pᵀ, dSᵀ, Qᵀ, dOᵀ, Kᵀ), copy atoms.
#pragma once

#include <cute/tensor.hpp>

#include "bwd/bwd_key.h"
#include "kernels/bwd_v2/tile.h"
#include "kernels/common/sm80_atoms.cuh"

namespace aiter::bwd {

template <BwdV2Key K>
struct BwdV2Traits {
    using Atoms   = Sm80Atoms<K.dtype>;
    using Element = typename Atoms::Element;

    static constexpr BwdV2Tile kTile = bwd_v2_tile(K.hdim, K.mask == MaskKind::window);
    static constexpr int kBlockM   = kTile.block_m;
    static constexpr int kBlockN   = kTile.block_n;
    static constexpr int kNWarps   = kTile.warps;
    static constexpr int kNThreads = kNWarps * 32;
    static constexpr int kHeadDim  = K.hdim;
    static constexpr int kQStages  = kTile.q_stages;
    static constexpr bool kMasked  = K.mask == MaskKind::window;
    // dQ = dS·K of the dK/dV kernel is computed in column chunks (bounded registers).
    static constexpr int kDQChunk  = kHeadDim < 128 ? kHeadDim : 128;

    using MmaAtom = typename Atoms::MmaAtom;
    // A TiledMMA of kNWarps warps, WA along the first GEMM dimension and the rest along the second.
    template <int WA>
    using MmaOf = cute::TiledMMA<MmaAtom, cute::Layout<cute::Shape<cute::Int<WA>, cute::Int<kNWarps / WA>, cute::_1>>,
                                 cute::Tile<cute::Int<16 * WA>, cute::Int<16 * (kNWarps / WA)>, cute::_16>>;
    using MmaSdP = MmaOf<kTile.sdp_warps_m>;  // S, dP: (M, N)
    using MmaDKV = MmaOf<kTile.dkv_warps_n>;  // dK, dV: (N, D)
    using MmaDQ  = MmaOf<kTile.dq_warps_m>;   // dQ: (M, D)

    static_assert(kBlockM % (16 * kTile.sdp_warps_m) == 0 && kBlockN % (16 * (kNWarps / kTile.sdp_warps_m)) == 0,
                  "S/dP warp layout must tile block_m x block_n");
    static_assert(kBlockN % (16 * kTile.dkv_warps_n) == 0 && kHeadDim % (16 * (kNWarps / kTile.dkv_warps_n)) == 0,
                  "dK/dV warp layout must tile block_n x hdim");
    static_assert(kBlockM % (16 * kTile.dq_warps_m) == 0 && kDQChunk % (16 * (kNWarps / kTile.dq_warps_m)) == 0,
                  "dQ warp layout must tile block_m x dq chunk");
    static_assert(kBlockN % 64 == 0 && kBlockM % 64 == 0, "P/dS smem atoms are 8 x 64");
    static_assert(kQStages == 1 || kQStages == 2, "Q/dO stages");

    // (rows, D) tiles: rows of kBlockKSmem elements, XOR-swizzled (sm80_atoms.cuh).
    static constexpr int kBlockKSmem = Sm80SmemAtom<kHeadDim>::kBlockKSmem;
    using SmemLayoutAtom = typename Sm80SmemAtom<kHeadDim>::Layout;
    using SmemLayoutQ  = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>>{}));  // (M, D): Q, dO
    using SmemLayoutKV = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>{}));  // (N, D): K, V
    using SmemLayoutQt = decltype(cute::composition(
        SmemLayoutQ{}, cute::make_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockM>>{}, cute::GenRowMajor{})));  // (D, M)
    using SmemLayoutQtNoSwizzle = decltype(cute::get_nonswizzle_portion(SmemLayoutQt{}));
    // One column chunk of K (tiles are laid out column block after column block, so chunk c
    // starts kBlockN * kDQChunk elements after chunk c-1, a multiple of the swizzle period).
    using SmemLayoutKChunk = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kDQChunk>>{}));
    using SmemLayoutKtChunk = decltype(cute::composition(
        SmemLayoutKChunk{}, cute::make_layout(cute::Shape<cute::Int<kDQChunk>, cute::Int<kBlockN>>{}, cute::GenRowMajor{})));  // (Dc, N)
    using SmemLayoutQChunk = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kDQChunk>>{}));  // (M, Dc): dQ epilogue
    using SmemLayoutKtChunkNoSwizzle = decltype(cute::get_nonswizzle_portion(SmemLayoutKtChunk{}));

    // (M, N) tiles of P and dS, and their (N, M) transposed views.
    using SmemLayoutAtomP = decltype(cute::composition(
        cute::Swizzle<3, 3, 3>{}, cute::Layout<cute::Shape<cute::_8, cute::_64>, cute::Stride<cute::_64, cute::_1>>{}));
    using SmemLayoutP  = decltype(cute::tile_to_shape(SmemLayoutAtomP{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kBlockN>>{}));
    using SmemLayoutPt = decltype(cute::composition(
        SmemLayoutP{}, cute::make_layout(cute::Shape<cute::Int<kBlockN>, cute::Int<kBlockM>>{}, cute::GenRowMajor{})));  // (N, M)
    using SmemLayoutPtNoSwizzle = decltype(cute::get_nonswizzle_portion(SmemLayoutPt{}));

    using SmemCopyAtom           = typename Atoms::SmemCopyAtom;
    using SmemCopyAtomTransposed = typename Atoms::SmemCopyAtomTransposed;
    using SmemCopyAtomC          = cute::Copy_Atom<cute::AutoVectorizingCopyWithAssumedAlignment<32>, Element>;

    // Global <-> shared: each thread moves 8 contiguous elements (16 bytes).
    using GmemTiledCopyLoad  = typename Sm80GmemCopy<Element, kNThreads, kBlockKSmem>::Load;
    using GmemTiledCopyStore = typename Sm80GmemCopy<Element, kNThreads, kBlockKSmem>::Store;

    // Shared memory: Q [stages] | dO [stages] | K | V | P | dS | LSE·log2e [stages][M] | D [stages][M]
    static constexpr int kQElems  = int(cute::cosize_v<SmemLayoutQ>);
    static constexpr int kKVElems = int(cute::cosize_v<SmemLayoutKV>);
    static constexpr int kPElems  = int(cute::cosize_v<SmemLayoutP>);
    static constexpr int kSmemBytes = (2 * kQStages * kQElems + 2 * kKVElems + 2 * kPElems) * int(sizeof(Element)) +
                                      2 * kQStages * kBlockM * int(sizeof(float));
};

}  // namespace aiter::bwd
