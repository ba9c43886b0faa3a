// CuTe types of one split-KV configuration: the mma.sync building blocks of every sm80 family
// (kernels/common/sm80_atoms.cuh) in the tile shapes of kernels/fwd_splitkv/tile.h.
#pragma once

#include <cute/tensor.hpp>

#include "fwd/splitkv_key.h"
#include "kernels/fwd_splitkv/tile.h"
#include "kernels/common/sm80_atoms.cuh"

namespace aiter::fwd {

template <SplitkvKey K>
struct SplitkvTraits {
    using Atoms   = Sm80Atoms<K.dtype>;
    using Element = typename Atoms::Element;

    static constexpr SplitkvTile kTile = splitkv_tile(K.hdim, K.deep);
    static constexpr int kBlockM   = kTile.block_m;
    static constexpr int kBlockN   = kTile.block_n;
    static constexpr int kNWarps   = kTile.warps;
    static constexpr int kStages   = kTile.stages;
    static constexpr int kNThreads = kNWarps * 32;
    static constexpr int kWarpN    = kBlockN / kNWarps;  // keys of each warp per tile
    static constexpr int kHeadDim  = K.hdim;
    static constexpr bool kMasked  = K.mask == MaskKind::window;

    static_assert(kBlockM == 16, "one MMA row tile per CTA");
    static_assert(kWarpN % 16 == 0, "each warp's key slice is a whole number of P·V k-steps");
    static_assert(kHeadDim % 64 == 0, "rows of the 8x64 swizzle atom");

    // One warp computes a (16 x kWarpN) score block and a (16 x D) output on its own.
    using WarpMma = cute::TiledMMA<typename Atoms::MmaAtom, cute::Layout<cute::Shape<cute::_1, cute::_1, cute::_1>>,
                                   cute::Tile<cute::_16, cute::_16, cute::_16>>;

    using SmemLayoutQ  = decltype(cute::tile_to_shape(typename Sm80SmemAtom<K.hdim>::Layout{},
                                                      cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>>{}));  // (M, D)
    using SmemLayoutKV = decltype(cute::tile_to_shape(typename Sm80SmemAtom<K.hdim>::Layout{},
                                                      cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>{}));  // (N, D)
    using SmemLayoutVt = decltype(cute::composition(
        SmemLayoutKV{}, cute::make_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockN>>{}, cute::GenRowMajor{})));  // (D, N)

    static constexpr int kSmemQElems  = kBlockM * kHeadDim;
    static constexpr int kSmemKVElems = kBlockN * kHeadDim;
    static constexpr int kSmemBytes   = int(sizeof(Element)) * (kSmemQElems + kStages * 2 * kSmemKVElems);
    static_assert(kSmemBytes == splitkv_smem_bytes(kHeadDim, K.deep));
    // After the main loop the same memory holds every warp's partial O and (max, sum) rows.
    static constexpr int kMergeBytes = int(sizeof(float)) * kNWarps * kBlockM * (kHeadDim + 2);
    static_assert(kMergeBytes <= kSmemBytes, "the merge buffer fits in the K/V stages");
};

}  // namespace aiter::fwd
