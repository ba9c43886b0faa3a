// CuTe types of one v2 forward configuration, all derived from FwdV2Key and the tile sizes
// in tile.h: element type, the warp-level MMA (mma.sync m16n8k16, fp32 accumulate),
// swizzled shared-memory layouts and the copy atoms (cp.async 16 B, ldmatrix).
#pragma once

#include <cute/tensor.hpp>

#include "fwd/fwd_key.h"
#include "kernels/common/sm80_atoms.cuh"
#include "kernels/fwd_v2/tile.h"

namespace aiter::fwd {

template <FwdV2Key K>
struct FwdV2Traits {
    using Atoms   = Sm80Atoms<K.dtype>;
    using Element = typename Atoms::Element;
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

    using MmaAtom = typename Atoms::MmaAtom;
    // Warps tile the M (query) dimension; every warp sees all of N and K.
    using TiledMma = cute::TiledMMA<MmaAtom, cute::Layout<cute::Shape<cute::Int<kNWarps>, cute::_1, cute::_1>>,
                                    cute::Tile<cute::Int<16 * kNWarps>, cute::_16, cute::_16>>;

    // Shared memory: rows of kBlockKSmem elements, XOR-swizzled (sm80_atoms.cuh).
    static constexpr int kBlockKSmem = Sm80SmemAtom<kHeadDim>::kBlockKSmem;
    using SmemLayoutAtom = typename Sm80SmemAtom<kHeadDim>::Layout;
    using SmemLayoutQ  = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>>{}));  // (M, D)
    using SmemLayoutKV = decltype(cute::tile_to_shape(SmemLayoutAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>{}));  // (N, D)
    // Vᵀ view of the V tile: (D, N), the B operand of O += P·V.
    using SmemLayoutVt = decltype(cute::composition(
        SmemLayoutKV{}, cute::make_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockN>>{}, cute::GenRowMajor{})));
    using SmemLayoutVtNoSwizzle = decltype(cute::get_nonswizzle_portion(SmemLayoutVt{}));
    using SmemLayoutO = SmemLayoutQ;  // O is staged through Q's buffer

    using SmemCopyAtom           = typename Atoms::SmemCopyAtom;
    using SmemCopyAtomTransposed = typename Atoms::SmemCopyAtomTransposed;
    using SmemCopyAtomO          = cute::Copy_Atom<cute::AutoVectorizingCopyWithAssumedAlignment<32>, Element>;

    // Global <-> shared: each thread moves 8 contiguous elements (16 bytes).
    using GmemTiledCopyLoad  = typename Sm80GmemCopy<Element, kNThreads, kBlockKSmem>::Load;
    using GmemTiledCopyStore = typename Sm80GmemCopy<Element, kNThreads, kBlockKSmem>::Store;

    static constexpr int kSmemQBytes  = int(cute::cosize_v<SmemLayoutQ>) * int(sizeof(Element));
    static constexpr int kSmemKVBytes = int(cute::cosize_v<SmemLayoutKV>) * int(sizeof(Element));
    static constexpr int kSmemBytes   = kSmemQBytes + 2 * kSmemKVBytes;  // Q | K | V
};

}  // namespace aiter::fwd
