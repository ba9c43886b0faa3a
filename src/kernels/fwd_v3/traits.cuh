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
#include "kernels/fwd_v2/block_info.cuh"
#include "kernels/fwd_v3/tile.h"

#ifndef AITER_FWD_V3_PINGPONG
#define AITER_FWD_V3_PINGPONG 0
#endif
// Benchmark knob: -DAITER_FWD_V3_TUNE_DYN=1 makes every masked kernel persistent with dynamic
// tiles, also those that release Q only after the epilogue (kEarlyQ false); =-1 makes every
// masked kernel one CTA per tile, also those that release Q early. Never set in a normal
// build.
#ifndef AITER_FWD_V3_TUNE_DYN
#define AITER_FWD_V3_TUNE_DYN 0
#endif

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
    // The logits soft-cap (cap · tanh(s / cap), ≈ 1000 SASS instructions inlined in the main
    // loop, skipped by a branch when off) is compiled into the default instances only: the
    // host never picks a short-sequence variant when it is on. Without it in its loop, d64's
    // short unmasked kernel ran 7-8 % faster at s = 512-1024 (docs/PERF.md, v3 log step 28).
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
    // barriers, see kernel.cuh), so that one warpgroup's softmax runs while another's GEMMs
    // occupy the tensor cores. On where the tile asks for it (d256, which has no intra-warpgroup
    // overlap) or when built with -DAITER_FWD_V3_PINGPONG=1; on top of the overlap it ran 2-7 %
    // slower at s = 16k on an H100 and an H200, d64 non-causal aside (docs/PERF.md, v3 log).
    static constexpr bool kPingPong = (AITER_FWD_V3_PINGPONG != 0 || kTile.pingpong) && kNumMmaWarpgroups > 1;
    static constexpr bool kIntraOverlap = kTile.overlap;
    // With the overlap: whether the softmax of S_n really runs while this warpgroup's
    // P_{n+1}·V_{n+1} is on the tensor cores. Written in one basic block, ptxas places the wait
    // for P·V (WARPGROUP.DEPBAR) ahead of the whole softmax (it then interleaves P's conversion
    // and O's rescaling with the exp2s), so the softmax waited for P·V; a break out of the loop
    // between the softmax and the wait (kernel.cuh) puts them in different basic blocks.
    // Measured per kernel (docs/PERF.md, v3 log step 38, H100 bf16): unmasked d128 +1.3 / +2.2
    // / +3.9 % at s = 1k / 4k / 16k, the default unmasked d64 kernel +0.5 / +5.2 % at 4k / 16k;
    // the masked kernels lost 2-6.5 % with it (d64 causal 4k / 16k -6.4 / -6.5 %, d128 causal
    // 1k -2.1 %), the d64 short and (192,128) kernels -0.6...+0.7 %: they keep the wait ahead.
    // Benchmark knob, never set in a normal build: -DAITER_FWD_V3_TUNE_SPLIT=0|1 (every kernel
    // with the overlap).
#ifndef AITER_FWD_V3_TUNE_SPLIT
#define AITER_FWD_V3_TUNE_SPLIT -1
#endif
    static constexpr bool kSoftmaxUnderPV =
        kIntraOverlap && (AITER_FWD_V3_TUNE_SPLIT >= 0 ? AITER_FWD_V3_TUNE_SPLIT != 0
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
    using GmemShape  = cute::Shape<int32_t, int32_t, int32_t, int32_t>;
    using GmemStride = cute::Stride<int64_t, cute::_1, int64_t, int64_t>;
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

    // Grid and tile walk (measured on an H100, docs/PERF.md v3 log). Unmasked: persistent, one
    // CTA per SM walking a static stride. Masked d64 and d128: persistent, tiles drawn from a
    // global counter (tile costs differ under a causal mask; steps 9, 22). Masked (192,128) and
    // d256: one CTA per tile, which ran 4-10 % faster there at s >= 4k than dynamic tiles with
    // O staged in Q's buffer (step 22), and still up to 7 % faster at 16k with O stored from
    // registers (steps 35-36), except in their short-sequence variants (tile.h, dynamic_tiles),
    // dynamic again: +6-18 % at s = 512-1024.
    static constexpr bool kDynamicTiles =
        kMasked && AITER_FWD_V3_TUNE_DYN >= 0 && (K.hdim_q <= 128 || kTile.dynamic_tiles || AITER_FWD_V3_TUNE_DYN != 0);
    static constexpr bool kPersistent   = !kMasked || kDynamicTiles;
    // O leaves the consumers one of two ways:
    // - kDirectO: straight from registers to global memory, no staging and no barrier between
    //   the warpgroups; Q's buffer is released after a tile's last S = Q·Kᵀ. 16-byte stores
    //   after a 4 × 4 transpose of 32-bit words within each quad (two exchanges per four
    //   8-column groups), or 8-byte stores after one exchange per two groups
    //   (kDirectOBytes). Measured per kernel (docs/PERF.md, v3 log steps 31-35, H100 bf16):
    //   with 8-byte stores masked d64 +4-12 % at s = 512-2k, masked d128 +3-5 %, masked
    //   (192,128) short +4-11 %, unmasked (192,128) +3-14 %, masked d256 short +6-7 % (O no
    //   longer in Q's buffer: the next Q lands during the epilogue); 16-byte stores then
    //   unmasked d128 +4 / +2.6 / +1.7 / +1.0 / -0.1 % at s = 512 / 1k / 2k / 4k / 16k over
    //   the staged epilogue (8-byte stores had lost 0.5-2.6 % there), unmasked d256 +11.5 /
    //   +7.6 / +4.1 / +2.4 / -0.6 %, and +1-3 % over 8-byte stores in the kernels that had
    //   them, except unmasked (192,128) (-3 % at 2k and 16k), which keeps 8-byte stores.
    //   Not taken where it lost: the default d64 unmasked tile (-2...-3 %, 16-byte stores).
    //   The default masked d256 and (192,128) kernels take it with one CTA per tile (+2.5 /
    //   +1.2 / +0.9 % and +2.6 / +1.3 / +0.1 % at s = 4k / 8k / 16k, step 36); with the
    //   dynamic tiles of their short variants they had lost up to 7 % at 16k (step 35).
    // - through shared memory, then 16-byte stores: in a buffer of its own where it fits (Q's
    //   buffer is then released after the tile's last S as well, and the next tile's Q lands
    //   during the last P·V and the epilogue), else in Q's buffer, released after the epilogue
    //   (of the default rule only the d64 unmasked kernel stages O, in its own buffer; Q's
    //   buffer is used in -DAITER_FWD_V3_TUNE_DIRECT_O=0 builds of (192,128) and d256).
    // Benchmark knobs, never set in a normal build: -DAITER_FWD_V3_TUNE_DIRECT_O=0|1 forces
    // kDirectO off / on in every kernel, -DAITER_FWD_V3_TUNE_O_BYTES=8|16 the store width in
    // every kernel (unset: the rules below).
#ifndef AITER_FWD_V3_TUNE_DIRECT_O
#define AITER_FWD_V3_TUNE_DIRECT_O -1
#endif
#ifndef AITER_FWD_V3_TUNE_O_BYTES
#define AITER_FWD_V3_TUNE_O_BYTES 0
#endif
    static constexpr bool kDirectO = AITER_FWD_V3_TUNE_DIRECT_O >= 0
                                         ? AITER_FWD_V3_TUNE_DIRECT_O != 0
                                         : kMasked || K.short_seq || K.hdim_q > 64;
    static constexpr int kDirectOBytes = AITER_FWD_V3_TUNE_O_BYTES != 0 ? AITER_FWD_V3_TUNE_O_BYTES
                                         : !kMasked && K.hdim_q == 192 ? 8
                                                                       : 16;
    static_assert(kDirectOBytes == 8 || (kDirectOBytes == 16 && kHeadDimV % 32 == 0), "direct O stores: 8 or 16 bytes");
    // Across tiles (kernel.cuh): the next tile's first S = Q·Kᵀ is issued together with this
    // tile's last P·V, and its softmax runs under that P·V, before this tile's epilogue (the
    // tensor cores otherwise idle from the last P·V through the epilogue, the next Q·Kᵀ and
    // its softmax). Needs a next tile in the same CTA (persistent), the overlap's register set
    // (S, P, O; not with ping-pong) and a second Q buffer, so that the next tile's Q is loaded
    // while this tile still runs (with one buffer, released at the tile's last S, its load
    // latency was exposed). The next tile is drawn and decoded under the last S GEMM (decoded
    // just before the issue, it held back the last P·V). Measured per kernel (docs/PERF.md, v3
    // log step 39, H100 bf16, against not crossing): the d64 short unmasked kernel +1.0 / +1.6
    // / +2.0 % at s = 512 / 1k / 2k; slower everywhere else (d64 masked -4...-6 % at 2k-16k,
    // d64 short masked -5 % at 512, d128 -2.6...-3.6 % at 1k), so only that kernel crosses.
    // Benchmark knob, never set in a normal build: -DAITER_FWD_V3_TUNE_XTILE=0|1 (every kernel
    // where it is possible).
#ifndef AITER_FWD_V3_TUNE_XTILE
#define AITER_FWD_V3_TUNE_XTILE -1
#endif
    static constexpr int kSmemLimit = 227 * 1024;  // sm_90 opt-in maximum per block
    static constexpr size_t kBytesO = size_t(kBlockM) * kHeadDimV * sizeof(Element);  // O's own buffer
    static constexpr bool kCrossTile =
        kIntraOverlap && kPersistent && !kPingPong &&
        2 * size_t(kTmaBytesQ) + size_t(kStages) * (kTmaBytesK + kTmaBytesV) + (kDirectO ? 0 : kBytesO) + 1024 <=
            kSmemLimit &&
        (AITER_FWD_V3_TUNE_XTILE >= 0 ? AITER_FWD_V3_TUNE_XTILE != 0 : K.short_seq && !kMasked && K.hdim_q <= 64);
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
