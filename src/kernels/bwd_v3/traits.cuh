// CuTe types of one v3 backward configuration (sm_90a), derived from BwdV3Key: one CTA per
// (block of kBlockN keys, kv head, batch), a producer warpgroup (TMA) and two consumer
// warpgroups, each owning kBlockN / 2 of the keys; kBlockM query rows per step. Warp 0 of the
// producer warpgroup issues the loads, warp 1 adds each step's dQ tile to dQ_acc from shared
// memory (bulk reduce-add), so that the consumers never wait for global atomics.
//
//   Sᵀ  = K · Qᵀ     wgmma SS  (keys × q)    A = K rows, B = Q        both K-major
//   dPᵀ = V · dOᵀ    wgmma SS  (keys × q)    A = V rows, B = dO       both K-major
//   dV += Pᵀ · dO    wgmma RS  (keys × d)    A = Pᵀ from registers,   B = dOᵀ (d × q), MN-major view
//   dK += dSᵀ · Q    wgmma RS  (keys × d)    A = dSᵀ from registers,  B = Qᵀ  (d × q), MN-major view
//   dQ  = dS · K     wgmma SS  (q × d)       A = dS (q × keys) written to shared memory by both
//                                            warpgroups, B = Kᵀ (d × keys), MN-major view; the two
//                                            warpgroups take half of d each
// Sᵀ/dPᵀ put the keys on the wgmma M side, so that Pᵀ and dSᵀ come out of the accumulators in
// the register layout of the A operand of dV/dK (no shared-memory round trip for those two).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/numeric_types.h>
#include <cutlass/pipeline/sm90_pipeline.hpp>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"
#include "kernels/common/tma_view.cuh"

namespace aiter::bwd {

template <BwdV3Key K>
struct BwdV3Traits {
    using Element = std::conditional_t<K.dtype == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;

    static constexpr int kHeadDim = K.hdim;
    static constexpr int kBlockM  = 64;   // query rows per step
    static constexpr int kBlockN  = 128;  // keys per CTA: 64 per consumer warpgroup
    static constexpr int kStages  = 2;    // Q/dO buffers
    static constexpr bool kMasked = K.mask == MaskKind::window;
    static_assert(kHeadDim == 64 || kHeadDim == 128, "v3 backward buckets: 64, 128");

    static constexpr int kNumMmaWarpgroups = 2;
    static constexpr int kNumMmaThreads    = kNumMmaWarpgroups * 128;
    static constexpr int kNThreads         = kNumMmaThreads + 128;
    // setmaxnreg within the launch pool of 65536 / 384 -> 168 per thread: 24 + 2 · 240 = 3 · 168.
    static constexpr int kRegsProducer = 24;
    static constexpr int kRegsConsumer = 240;
    static_assert(kRegsProducer + kNumMmaWarpgroups * kRegsConsumer <= (kNumMmaWarpgroups + 1) * 168,
                  "setmaxnreg: more registers than the CTA is launched with");
    // Named barriers (ids after CUTLASS's reserved ones): both consumer warpgroups wrote their dS;
    // warpgroup w's half of the dQ tile is in shared memory (full) / was read by the bulk add
    // (empty), between that warpgroup and the dQ warp.
    static constexpr uint32_t kBarDS      = 0;
    static constexpr uint32_t kBarDQFull  = 1;  // + w
    static constexpr uint32_t kBarDQEmpty = 3;  // + w
    static constexpr uint32_t kDQBarThreads = 128 + 32;
    static_assert(cutlass::arch::NamedBarrier::ReservedNamedBarrierCount + kBarDQEmpty + kNumMmaWarpgroups <= 16,
                  "at most 16 hardware named barriers");

    using AtomKeys = cute::Layout<cute::Shape<cute::_2, cute::_1, cute::_1>>;  // warpgroup w: keys [64w, 64w + 64)
    using TiledMmaSdP = decltype(cute::make_tiled_mma(
        cute::GMMA::ss_op_selector<Element, Element, float, cute::Shape<cute::_64, cute::Int<kBlockM>, cute::Int<kHeadDim>>>(),
        AtomKeys{}));
    using TiledMmadKV = decltype(cute::make_tiled_mma(
        cute::GMMA::rs_op_selector<Element, Element, float, cute::Shape<cute::_64, cute::Int<kHeadDim>, cute::Int<kBlockM>>,
                                   cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
        AtomKeys{}));
    using TiledMmadQ = decltype(cute::make_tiled_mma(
        cute::GMMA::ss_op_selector<Element, Element, float,
                                   cute::Shape<cute::_64, cute::Int<kHeadDim / 2>, cute::Int<kBlockN>>,
                                   cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
        cute::Layout<cute::Shape<cute::_1, cute::_2, cute::_1>>{}));  // warpgroup w: columns [w·d/2, (w+1)·d/2)

    using SmemAtom = cute::GMMA::Layout_K_SW128_Atom<Element>;  // rows of 64 elements, 128-byte swizzle
    using SmemLayoutQ = decltype(cute::tile_to_shape(
        SmemAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kHeadDim>, cute::Int<kStages>>{}));
    using SmemLayoutK = decltype(cute::tile_to_shape(SmemAtom{}, cute::Shape<cute::Int<kBlockN>, cute::Int<kHeadDim>>{}));
    using SmemLayoutdS = decltype(cute::tile_to_shape(
        SmemAtom{}, cute::Shape<cute::Int<kBlockM>, cute::Int<kBlockN>, cute::_2>{}));  // two buffers
    // Transposed views of the same bytes: Qᵀ / dOᵀ (d, M, stages), Kᵀ (d, N), dSᵀ (N, M, 2).
    using SmemLayoutQt = decltype(cute::composition(
        SmemLayoutQ{}, cute::make_ordered_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockM>, cute::Int<kStages>>{},
                                                 cute::Step<cute::_2, cute::_1, cute::_3>{})));
    using SmemLayoutKt = decltype(cute::composition(
        SmemLayoutK{}, cute::make_ordered_layout(cute::Shape<cute::Int<kHeadDim>, cute::Int<kBlockN>>{},
                                                 cute::Step<cute::_2, cute::_1>{})));
    using SmemLayoutdSt = decltype(cute::composition(
        SmemLayoutdS{}, cute::make_ordered_layout(cute::Shape<cute::Int<kBlockN>, cute::Int<kBlockM>, cute::_2>{},
                                                  cute::Step<cute::_2, cute::_1, cute::_3>{})));

    using TmaQ = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{},
                                              cute::make_tensor(cute::make_gmem_ptr(static_cast<Element const*>(nullptr)),
                                                                TmaGmemShape{}, TmaGmemStride{}),
                                              cute::take<0, 2>(SmemLayoutQ{})));
    using TmaK = decltype(cute::make_tma_copy(cute::SM90_TMA_LOAD{},
                                              cute::make_tensor(cute::make_gmem_ptr(static_cast<Element const*>(nullptr)),
                                                                TmaGmemShape{}, TmaGmemStride{}),
                                              SmemLayoutK{}));
    static constexpr uint32_t kTmaBytesQ = kBlockM * kHeadDim * sizeof(Element);
    static constexpr uint32_t kTmaBytesK = kBlockN * kHeadDim * sizeof(Element);

    using PipelineQdO = cutlass::PipelineTmaAsync<kStages>;  // one stage = Q_m and dO_m

    struct SharedStorage {
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutQ>, 1024> q;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutQ>, 1024> dout;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutK>, 1024> k;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutK>, 1024> v;
        cute::array_aligned<Element, cute::cosize_v<SmemLayoutdS>, 1024> ds;
        cute::array_aligned<float, kBlockM * kHeadDim, 128> dq;  // this step's dQ tile, dQ_acc's order
        typename PipelineQdO::SharedStorage pipe_qdo;
        cutlass::arch::ClusterTransactionBarrier bar_kv;  // K and V landed
    };
    static constexpr int kSmemBytes = int(sizeof(SharedStorage));
    static_assert(kSmemBytes <= 227 * 1024, "sm_90 opt-in shared memory per block");

    // dQ accumulator tile (kBlockM × kHeadDim floats, BwdParams::dq_acc, and its staging copy in
    // shared memory): warpgroup w's fragments fill half w of the tile, so that each half is one
    // bulk add; in it, float4 group g of thread t (of 128) sits at float 4·(g·128 + t), so that a
    // warp's 16-byte stores cover 512 contiguous bytes (no bank conflicts).
    static constexpr int kDQFrag = kBlockM * kHeadDim / kNumMmaThreads;  // floats per thread
    static_assert(kDQFrag % 4 == 0, "whole float4 groups");
    static constexpr int kDQHalf = kBlockM * kHeadDim / kNumMmaWarpgroups;  // floats per warpgroup
    static __device__ __forceinline__ int dq_frag_offset(int ctid, int g) {
        return (ctid / 128) * kDQHalf + 4 * (g * 128 + ctid % 128);
    }
};

// What the kernel receives: the common parameters plus the four TMA descriptors.
template <class T>
struct BwdV3KernelParams {
    BwdParams p;
    typename T::TmaQ tma_q, tma_do;
    typename T::TmaK tma_k, tma_v;
    TmaGmemShape shape_q, shape_do, shape_k, shape_v;  // (rows, hdim, heads, batches) of each
};

}  // namespace aiter::bwd
