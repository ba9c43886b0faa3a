// CuTe types of one v3 forward configuration (sm_90a), all derived from FwdV3Key and the tile
// in tile.h: element type, the two warpgroup MMAs (wgmma), the GMMA shared-memory layouts, the
// TMA copy types and the shared-memory plan.
//
//   S = Q · Kᵀ   wgmma SS: Q (M × dq) and K (N × dq) both from shared memory, K-major
//   O += P · V   wgmma RS: P (M × N) from registers, V (N × dv) from shared memory read as
//                Vᵀ (dv × N) with dv contiguous ("MN-major" B operand, no transpose copy)
// Each consumer warpgroup runs both GEMMs on its own 64 rows of the tile (AtomLayout M = M/64).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/numeric_types.h>
#include <cutlass/pipeline/sm90_pipeline.hpp>

#include "fwd/fwd_key.h"
#include "fwd/fwd_params.h"
#include "kernels/common/tile_order.cuh"
#include "kernels/common/tma_view.cuh"
#include "kernels/fwd_v3/tile.h"
#include "kernels/tuning.h"

namespace aiter::fwd {

template <FwdV3Key K>
struct FwdV3Traits {
    using Element = std::conditional_t<K.dtype == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;

    static constexpr FwdV3Tile kTile = fwd_v3_tile(K.hdim_q, K.hdim_v, K.short_seq);
    static constexpr int kBlockM    = kTile.block_m;
    static constexpr int kBlockN    = kTile.block_n;
    static constexpr int kStages    = kTile.stages;
    static constexpr int kHeadDimQK = K.hdim_q;
    static constexpr int kHeadDimV  = K.hdim_v;
    static constexpr bool kMasked   = K.mask == MaskKind::window;
    // The logits soft-cap (cap · tanh(s / cap), ≈ 1000 SASS instructions in the main loop,
    // skipped by a branch when off) is compiled into the default instances only; the host never
    // picks a short-sequence variant when it is on (docs/PERF.md, v3 log step 28).
    static constexpr bool kSoftcap  = !K.short_seq;

    static constexpr int kNumMmaWarpgroups = kBlockM / 64;
    static constexpr int kNumMmaThreads    = kNumMmaWarpgroups * 128;
    static constexpr int kNThreads         = kNumMmaThreads + 128;  // + the producer warpgroup
    // setmaxnreg: the producer gives registers back, the consumers take them. The pool is what
    // the CTA was launched with: 64K / threads per thread (launch bounds, rounded down to a
    // multiple of 8), so producer + consumers must fit in it; a consumer warpgroup that asks for
    // more than is left waits forever. 2 warpgroups: 24 + 2·240 = 3·168.
    static constexpr int kLaunchRegs   = (65536 / kNThreads) / 8 * 8 < 256 ? (65536 / kNThreads) / 8 * 8 : 256;
    static constexpr int kRegsProducer = kNumMmaWarpgroups == 2 ? 24 : 32;
    static constexpr int kRegsConsumer = kNumMmaWarpgroups == 1 ? 256 : kNumMmaWarpgroups == 2 ? 240 : 160;
    static_assert(kNumMmaWarpgroups <= 3, "at most 3 consumer warpgroups (192 rows)");
    static_assert(kRegsProducer + kNumMmaWarpgroups * kRegsConsumer <= (kNumMmaWarpgroups + 1) * kLaunchRegs,
                  "setmaxnreg: more registers than the CTA is launched with");

    // Inter-warpgroup ping-pong: the consumer warpgroups take turns issuing their GEMMs (named
    // barriers, mainloop.cuh), so that one warpgroup's softmax runs while another's GEMMs occupy
    // the tensor cores. Where the tile asks for it (d256, which has no intra-warpgroup overlap).
    static constexpr bool kPingPong = (tuning::kFwdV3PingPongAll || kTile.pingpong) && kNumMmaWarpgroups > 1;
    static constexpr bool kIntraOverlap = kTile.overlap;
    // With the overlap: the softmax of S_n runs while this warpgroup's P_{n+1}·V_{n+1} is on the
    // tensor cores. In one basic block ptxas places the wait for P·V ahead of the whole softmax,
    // so mainloop.cuh leaves the loop between the softmax and the wait. Kept where it measured
    // faster: unmasked d128 and the default unmasked d64 kernel (docs/PERF.md, v3 log step 38).
    static constexpr bool kSoftmaxUnderPV =
        kIntraOverlap && (tuning::kFwdV3Split >= 0 ? tuning::kFwdV3Split != 0
                                                    : !kMasked && !K.short_seq && K.hdim_q <= 128);
    static constexpr bool kOpaqueDescs  = kTile.opaque_descs;
    // Named barriers (ids after CUTLASS's reserved ones): 0 = all consumers (epilogue), 1 + i =
    // consumer warpgroup i's turn to issue GEMMs.
    static constexpr uint32_t kBarEpilogue = 0;
    static constexpr uint32_t kBarTurn0    = 1;
    static_assert(cutlass::arch::NamedBarrier::ReservedNamedBarrierCount + kBarTurn0 + kNumMmaWarpgroups <= 16,
                  "at most 16 hardware named barriers");

    static_assert(kBlockM % 64 == 0 && kBlockN % 16 == 0, "wgmma: 64-row warpgroup tiles, K steps of 16");
    static_assert(kHeadDimQK % 64 == 0 && kHeadDimV % 64 == 0, "128-byte swizzled rows of 64 elements");
    static_assert(kHeadDimV <= kHeadDimQK, "O may be staged in Q's shared-memory buffer");

    using MmaAtomLayout = cute::Layout<cute::Shape<cute::Int<kNumMmaWarpgroups>, cute::_1, cute::_1>>;
    using TiledMmaS = decltype(cute::make_tiled_mma(
        cute::GMMA::ss_op_selector<Element, Element, float,
                                   cute::Shape<cute::_64, cute::Int<kBlockN>, cute::Int<kHeadDimQK>>>(),
        MmaAtomLayout{}));
    using TiledMmaO = decltype(cute::make_tiled_mma(
        cute::GMMA::rs_op_selector<Element, Element, float,
                                   cute::Shape<cute::_64, cute::Int<kHeadDimV>, cute::Int<kBlockN>>,
                                   cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
        MmaAtomLayout{}));

    // Rows of 64 elements (128 bytes), 128-byte swizzle: what both TMA and wgmma read fastest.
    using SmemAtom = cute::GMMA::Layout_K_SW128_Atom<Element>;
    using SmemLayoutQ = decltype(cute::tile_to_shape(SmemAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDimQK>>{}));
    using SmemLayoutK = decltype(cute::tile_to_shape(
        SmemAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDimQK>, cute::Int<kStages>>{}));
    using SmemLayoutV = decltype(cute::tile_to_shape(
        SmemAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDimV>, cute::Int<kStages>>{}));
    // Vᵀ: (dv, N, stages) view of the same bytes, the B operand of O += P·V.
    using SmemLayoutVt = decltype(cute::composition(
        SmemLayoutV{}, cute::make_ordered_layout(
                           cute::Shape<cute::Int<kHeadDimV>, cute::Int<kBlockN>, cute::Int<kStages>>{},
                           cute::Step<cute::_2, cute::_1, cute::_3>{})));
    using SmemLayoutO = decltype(cute::tile_to_shape(SmemAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDimV>>{}));

    // Global tensors as TMA sees them: (rows, hdim, head, batch), hdim contiguous. Rows and
    // hdim outside the tensor read as zeros (TMA out-of-bounds fill).
    using GmemShape  = TmaGmemShape;
    using GmemStride = TmaGmemStride;
    using GmemTensor = decltype(cute::make_tensor(cute::make_gmem_ptr(static_cast<Element const*>(nullptr)),
                                                  GmemShape{}, GmemStride{}));
    using TmaQ = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensor{}, SmemLayoutQ{}));
    using TmaK = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensor{},
                                              cute::take<0, 2>(SmemLayoutK{})));
    using TmaV = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{}, GmemTensor{},
                                              cute::take<0, 2>(SmemLayoutV{})));

    static constexpr uint32_t kTmaBytesQ = kBlockM * kHeadDimQK * sizeof(Element);
    static constexpr uint32_t kTmaBytesK = kBlockN * kHeadDimQK * sizeof(Element);
    static constexpr uint32_t kTmaBytesV = kBlockN * kHeadDimV * sizeof(Element);

    using PipelineK = cutlass::PipelineTmaAsync<kStages>;
    using PipelineV = cutlass::PipelineTmaAsync<kStages>;
    static constexpr int kTileSlots = 2;
    using PipelineTile = cutlass::PipelineAsync<kTileSlots>;

    // The staged epilogue (kDirectO false): O through shared memory (its own buffer or Q's, see
    // SharedStorage), then 16-byte stores by the consumer threads.
    static constexpr int kGmemElems      = 8;
    static constexpr int kGmemThreadsRow = 64 / kGmemElems;  // one 128-byte swizzle row
    using GmemTiledCopyO = decltype(cute::make_tiled_copy(
        cute::Copy_Atom<cute::UniversalCopy<cute::uint128_t>, Element>{},
        cute::Layout<cute::Shape<cute::Int<kNumMmaThreads / kGmemThreadsRow>, cute::Int<kGmemThreadsRow>>,
                     cute::Stride<cute::Int<kGmemThreadsRow>, cute::_1>>{},
        cute::Layout<cute::Shape<cute::_1, cute::Int<kGmemElems>>>{}));

    // Grid and tile walk. Unmasked: persistent, one CTA per SM walking a static stride. Masked
    // d64 and d128, and the short-sequence variants of (192,128) and d256: persistent, tiles
    // drawn from a global counter (tile costs differ under a mask). Masked (192,128) and d256
    // otherwise: one CTA per tile (faster there at s >= 4k; docs/PERF.md, v3 log steps 9, 22, 36).
    static constexpr bool kDynamicTiles =
        kMasked && tuning::kFwdV3Dynamic >= 0 && (K.hdim_q <= 128 || kTile.dynamic_tiles || tuning::kFwdV3Dynamic != 0);
    static constexpr bool kPersistent   = !kMasked || kDynamicTiles;
    // O leaves the consumers one of two ways:
    // - kDirectO: straight from registers to global memory, no staging and no barrier between
    //   the warpgroups; Q's buffer is released after a tile's last S = Q·Kᵀ. 16-byte stores
    //   after a 4 × 4 transpose of 32-bit words within each quad, or 8-byte stores after one
    //   exchange per two 8-column groups (kDirectOBytes; unmasked (192,128) keeps 8 bytes).
    //   Every kernel but the default d64 unmasked one (docs/PERF.md, v3 log steps 31-36).
    // - through shared memory, then 16-byte stores: in a buffer of its own where it fits (Q's
    //   buffer is then released after the tile's last S as well), else in Q's buffer, released
    //   after the epilogue.
    static constexpr bool kDirectO = tuning::kFwdV3DirectO >= 0 ? tuning::kFwdV3DirectO != 0
                                                                 : kMasked || K.short_seq || K.hdim_q > 64;
    static constexpr int kDirectOBytes = tuning::kFwdV3OBytes != 0 ? tuning::kFwdV3OBytes
                                         : !kMasked && K.hdim_q == 192 ? 8
                                                                       : 16;
    static_assert(kDirectOBytes == 8 || (kDirectOBytes == 16 && kHeadDimV % 32 == 0), "direct O stores: 8 or 16 bytes");
    // Across tiles (mainloop.cuh): the next tile's first S = Q·Kᵀ is issued together with this
    // tile's last P·V, and its softmax runs under that P·V, before this tile's epilogue. Needs a
    // next tile in the same CTA (persistent), the overlap's register set (not with ping-pong)
    // and a second Q buffer, so that the next tile's Q loads while this tile still runs. Only
    // the d64 short unmasked kernel, where it measured faster (docs/PERF.md, v3 log step 39).
    static constexpr int kSmemLimit = 227 * 1024;  // sm_90 opt-in maximum per block
    static constexpr size_t kBytesO = size_t(kBlockM) * kHeadDimV * sizeof(Element);  // O's own buffer
    static constexpr bool kCrossTile =
        kIntraOverlap && kPersistent && !kPingPong &&
        2 * size_t(kTmaBytesQ) + size_t(kStages) * (kTmaBytesK + kTmaBytesV) + (kDirectO ? 0 : kBytesO) + 1024 <=
            kSmemLimit &&
        (tuning::kFwdV3CrossTile >= 0 ? tuning::kFwdV3CrossTile != 0 : K.short_seq && !kMasked && K.hdim_q <= 64);
    static constexpr int kQBuffers = kCrossTile ? 2 : 1;  // Q's shared-memory buffers (tiles in turn)
    // Q's buffers as one (M, dq, kQBuffers) tensor: the consumers' wgmma A operand.
    using SmemLayoutQs = decltype(cute::tile_to_shape(
        SmemAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDimQK>, cute::Int<kQBuffers>>{}));

    struct SharedStorageCommon {
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutQ> * kQBuffers, 1024> q;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutK>, 1024> k;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutV>, 1024> v;
        typename PipelineK::SharedStorage pipe_k;
        typename PipelineV::SharedStorage pipe_v;
        cutlass::arch::ClusterTransactionBarrier bar_q[kQBuffers];  // Q landed (TMA bytes)
        cutlass::arch::ClusterBarrier bar_q_free[kQBuffers];        // Q's buffer may be refilled
        // Dynamic tile scheduling (masked): the producer hands each tile index to the consumers
        // through this two-slot ring.
        typename PipelineTile::SharedStorage pipe_tile;
        int64_t tile_index[kTileSlots];
    };
    struct SharedStorageSeparateO : SharedStorageCommon {
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutO>, 1024> o;
    };
    static constexpr bool kSeparateO = !kDirectO && sizeof(SharedStorageSeparateO) <= kSmemLimit;
    using SharedStorage = std::conditional_t<kSeparateO, SharedStorageSeparateO, SharedStorageCommon>;
    static constexpr bool kEarlyQ = kSeparateO || kDirectO;  // Q released after the tile's last S
    static_assert(!kCrossTile || kEarlyQ, "across tiles, O never passes through Q's buffer");
    static_assert(!kCrossTile || sizeof(SharedStorage) <= kSmemLimit, "two Q buffers must fit");

    static constexpr int kSmemBytes = int(sizeof(SharedStorage));
};

// What the kernel receives: the common parameters plus the three TMA descriptors.
template <class T>
struct FwdV3KernelParams {
    FwdParams p;
    typename T::TmaQ tma_q;
    typename T::TmaK tma_k;
    typename T::TmaV tma_v;
    typename T::GmemShape shape_q, shape_k, shape_v;  // (rows, hdim, heads, batches) of each descriptor
    unsigned long long* tile_counter;  // kDynamicTiles: tiles handed out beyond the first gridDim.x (zero at launch)
    TileDecoder dec;                   // masked: tile index -> (row block, head, batch) without divisions
};

}  // namespace aiter::fwd
