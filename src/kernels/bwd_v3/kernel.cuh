// v3 backward attention kernels (Hopper, sm_90a): TMA + wgmma + warp specialization.
//
// dK/dV kernel: one CTA per (block of kBlockN keys n, kv head, batch), as the v2 kernel. K_n and
// V_n are loaded once (TMA); the CTA walks the q heads of its GQA group and, for each, the query
// blocks that can see its keys (query_block_range), Q_m and dO_m streaming through a two-stage
// TMA pipeline:
//   producer warp 0 (one thread): TMA of K, V, then Q_m, dO_m per step
//   producer warp 1: per step, each consumer warpgroup's half of the dQ tile from shared memory
//     into dQ_acc (bulk reduce-add), then hands the buffer back
//   consumer warpgroup w (keys [64w, 64w + 64) of the block), per step (traits.cuh):
//     Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ ;
//     Pᵀ = exp2(Sᵀ·scale·log2e − LSE·log2e) (masked: 0) ; dSᵀ = Pᵀ ∘ (dPᵀ − D) ;
//     dS → shared memory ; dV += Pᵀ·dO ; dQ = dS·K (both warpgroups' dS, half of the head dim
//     each) ; dK += dSᵀ·Q, under which dQ goes to shared memory for the dQ warp
//   and finally dK·scale and dV (summed over the group's q heads: no atomics), straight from
//   registers.
// dQ convert kernel: dQ = scale · dQ_acc, one CTA per (query block, q head, batch).
//
// Rows past a batch's logical lengths are read (TMA reads whole tiles: zeros past the tensor,
// the next batch's rows in group mode) and made harmless: such query rows get LSE = +inf (P = 0,
// dS = 0) and such keys are masked; the host takes v3 only where those rows hold finite values
// (no logical-length padding arrays).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/cutlass.h>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"
#include "kernels/bwd_v3/traits.cuh"
#include "kernels/common/block_info.cuh"
#include "kernels/common/block_range.cuh"
#include "kernels/common/bwd_rows.cuh"
#include "kernels/common/bulk_reduce.cuh"
#include "kernels/common/fragment.cuh"
#include "kernels/common/gemm_sm90.cuh"
#include "kernels/common/mask_apply.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tma_view.cuh"

// wgmma, setmaxnreg and the TMA instructions exist only in sm_90a code.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AITER_BWD_V3_DEVICE 1
#else
#define AITER_BWD_V3_DEVICE 0
#endif

namespace aiter::bwd {

template <DType kDType, int kHdim, MaskKind kMask>
__global__ void __launch_bounds__(BwdV3Traits<BwdV3Key{kDType, kHdim, kMask}>::kNThreads, 1)
    bwd_v3_dkdv_kernel(const __grid_constant__ BwdV3KernelParams<BwdV3Traits<BwdV3Key{kDType, kHdim, kMask}>> kp) {
#if AITER_BWD_V3_DEVICE
    using namespace cute;
    using T       = BwdV3Traits<BwdV3Key{kDType, kHdim, kMask}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kHeadDim = T::kHeadDim;
    const BwdParams& p = kp.p;

    extern __shared__ __align__(1024) char smem_raw[];
    auto& ss = *reinterpret_cast<typename T::SharedStorage*>(smem_raw);
    const int warp_group = threadIdx.x / 128;
    const int n_block = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
    const int n0 = n_block * kBlockN;
    const BatchRows rows = batch_rows(p, b, p.seqlen_q_ptr);
    if (n0 >= rows.sk) return;  // the whole CTA: past this batch's keys
    int m_begin = 0, m_end = 0;
    query_block_range<T::kMasked>(p.mask, n0, min(n0 + kBlockN, rows.sk) - 1, rows.sq, rows.sk, kBlockM, &m_begin,
                                  &m_end);
    const int m_blocks = max(m_end - m_begin, 0);
    const int steps    = m_blocks * p.h_ratio;  // (q head of the group, query block), heads outer
    const bool group   = p.is_group_mode;

    if (threadIdx.x == 0) {
        ss.bar_kv.init(1);
        cute::prefetch_tma_descriptor(kp.tma_q.get_tma_descriptor());
        cute::prefetch_tma_descriptor(kp.tma_do.get_tma_descriptor());
        cute::prefetch_tma_descriptor(kp.tma_k.get_tma_descriptor());
        cute::prefetch_tma_descriptor(kp.tma_v.get_tma_descriptor());
    }
    using Pipeline = typename T::PipelineQdO;
    typename Pipeline::Params pp;
    pp.role = warp_group == 0 ? Pipeline::ThreadCategory::Producer : Pipeline::ThreadCategory::Consumer;
    pp.is_leader         = threadIdx.x == 0;
    pp.num_consumers     = T::kNumMmaThreads;
    pp.transaction_bytes = 2 * T::kTmaBytesQ;  // Q_m and dO_m
    Pipeline pipe(ss.pipe_qdo, pp, Shape<_1, _1, _1>{});
    cutlass::arch::fence_barrier_init();
    __syncthreads();

    Tensor sQ  = make_tensor(make_smem_ptr(ss.q.data()), typename T::SmemLayoutQ{});     // (M, D, stages)
    Tensor sdO = make_tensor(make_smem_ptr(ss.dout.data()), typename T::SmemLayoutQ{});  // (M, D, stages)
    Tensor sK  = make_tensor(make_smem_ptr(ss.k.data()), typename T::SmemLayoutK{});     // (N, D)
    Tensor sV  = make_tensor(make_smem_ptr(ss.v.data()), typename T::SmemLayoutK{});     // (N, D)

    // ---- producer warpgroup: warp 0 issues every TMA load, warp 1 adds the dQ tiles -----------
    if (warp_group == 0) {
        cutlass::arch::warpgroup_reg_dealloc<T::kRegsProducer>();
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        if (steps == 0 || warp > 1) return;
        if (warp == 1) {
            // Buffer half w is free at the first step; afterwards once the bulk add of the previous
            // step has read it (no hand-back after the last step: nobody waits for it).
            for (int s = 0; s < steps; ++s) {
                const int h = hk * p.h_ratio + s / m_blocks, m0 = (m_begin + s % m_blocks) * kBlockM;
                float* acc = p.dq_acc + bwd_acc_tile_offset(p, b, h, m0, kBlockM, kHeadDim);
                CUTE_UNROLL
                for (int w = 0; w < T::kNumMmaWarpgroups; ++w) {
                    cutlass::arch::NamedBarrier::sync(T::kDQBarThreads, T::kBarDQFull + w);
                    if (lane == 0) {
                        bulk_reduce_add_f32(acc + w * T::kDQHalf, ss.dq.data() + w * T::kDQHalf, T::kDQHalf * 4);
                        tma_store_arrive();
                    }
                }
                if (s + 1 == steps) break;
                if (lane == 0) tma_store_wait<1>();
                __syncwarp();
                cutlass::arch::NamedBarrier::arrive(T::kDQBarThreads, T::kBarDQEmpty + 0);
                if (lane == 0) tma_store_wait<0>();
                __syncwarp();
                cutlass::arch::NamedBarrier::arrive(T::kDQBarThreads, T::kBarDQEmpty + 1);
            }
            if (lane == 0) bulk_wait_all();
            return;
        }
        if (lane != 0) return;
        Tensor mK = tma_head_view(kp.tma_k.get_tma_tensor(kp.shape_k), group, int(rows.k_row0), hk, b);
        Tensor mV = tma_head_view(kp.tma_v.get_tma_tensor(kp.shape_v), group, int(rows.k_row0), hk, b);
        Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
        Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
        auto [tKg, tKs] = tma_partition(kp.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
        auto [tVg, tVs] = tma_partition(kp.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));
        ss.bar_kv.arrive_and_expect_tx(2 * T::kTmaBytesK);
        copy(kp.tma_k.with(reinterpret_cast<uint64_t&>(ss.bar_kv), 0), tKg, tKs);
        copy(kp.tma_v.with(reinterpret_cast<uint64_t&>(ss.bar_kv), 0), tVg, tVs);
        auto st = cutlass::make_producer_start_state<Pipeline>();
        for (int s = 0; s < steps; ++s) {
            const int h = hk * p.h_ratio + s / m_blocks, m_block = m_begin + s % m_blocks;
            Tensor mQ  = tma_head_view(kp.tma_q.get_tma_tensor(kp.shape_q), group, int(rows.q_row0), h, b);
            Tensor mdO = tma_head_view(kp.tma_do.get_tma_tensor(kp.shape_do), group, int(rows.q_row0), h, b);
            Tensor gQ  = local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
            Tensor gdO = local_tile(mdO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
            auto [tQg, tQs]   = tma_partition(kp.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQ(_, _, st.index())),
                                              group_modes<0, 2>(gQ));
            auto [tdOg, tdOs] = tma_partition(kp.tma_do, _0{}, Layout<_1>{}, group_modes<0, 2>(sdO(_, _, st.index())),
                                              group_modes<0, 2>(gdO));
            pipe.producer_acquire(st);
            copy(kp.tma_q.with(*pipe.producer_get_barrier(st), 0), tQg, tQs);
            copy(kp.tma_do.with(*pipe.producer_get_barrier(st), 0), tdOg, tdOs);
            ++st;
        }
        return;
    }

    // ---- consumers ----------------------------------------------------------------------------
    cutlass::arch::warpgroup_reg_alloc<T::kRegsConsumer>();
    const int ctid = int(threadIdx.x) - 128;
    const int wg   = ctid / 128;

    Tensor sQt  = make_tensor(make_smem_ptr(ss.q.data()), typename T::SmemLayoutQt{});     // (D, M, stages)
    Tensor sdOt = make_tensor(make_smem_ptr(ss.dout.data()), typename T::SmemLayoutQt{});  // (D, M, stages)
    Tensor sKt  = make_tensor(make_smem_ptr(ss.k.data()), typename T::SmemLayoutKt{});     // (D, N)
    Tensor sdS  = make_tensor(make_smem_ptr(ss.ds.data()), typename T::SmemLayoutdS{});    // (M, N, 2)
    Tensor sdSt = make_tensor(make_smem_ptr(ss.ds.data()), typename T::SmemLayoutdSt{});   // (N, M, 2)

    typename T::TiledMmaSdP mma_sdp;
    typename T::TiledMmadKV mma_dkv;
    typename T::TiledMmadQ mma_dq;
    auto thr_sdp = mma_sdp.get_thread_slice(ctid);
    auto thr_dkv = mma_dkv.get_thread_slice(ctid);
    auto thr_dq  = mma_dq.get_thread_slice(ctid);
    Tensor tSrK    = thr_sdp.partition_fragment_A(sK);     // K rows of this warpgroup
    Tensor tSrQ    = thr_sdp.partition_fragment_B(sQ);     // (.., stages)
    Tensor tdPrV   = thr_sdp.partition_fragment_A(sV);
    Tensor tdPrdO  = thr_sdp.partition_fragment_B(sdO);
    Tensor tdKrQt  = thr_dkv.partition_fragment_B(sQt);    // (.., stages)
    Tensor tdVrdOt = thr_dkv.partition_fragment_B(sdOt);
    Tensor tdQrdS  = thr_dq.partition_fragment_A(sdS);     // (.., 2)
    Tensor tdQrKt  = thr_dq.partition_fragment_B(sKt);
    // dSᵀ to shared memory by transposing stmatrix (keys are the contiguous dimension of sdS):
    // four instructions per thread and step instead of one 2-byte store per element.
    auto s2s_ds    = make_tiled_copy_C(Copy_Atom<SM90_U16x8_STSM_T, Element>{}, mma_sdp);
    auto thr_s2s   = s2s_ds.get_thread_slice(ctid);
    Tensor tdSsdS  = thr_s2s.partition_D(as_position_independent_swizzle_tensor(sdSt));  // (.., 2)

    Tensor acc_dk = partition_fragment_C(mma_dkv, Shape<Int<kBlockN>, Int<kHeadDim>>{});
    Tensor acc_dv = partition_fragment_C(mma_dkv, Shape<Int<kBlockN>, Int<kHeadDim>>{});
    clear(acc_dk);
    clear(acc_dv);
    Tensor acc_s  = partition_fragment_C(mma_sdp, Shape<Int<kBlockN>, Int<kBlockM>>{});  // Sᵀ, then Pᵀ
    Tensor acc_dp = partition_fragment_C(mma_sdp, Shape<Int<kBlockN>, Int<kBlockM>>{});  // dPᵀ, then dSᵀ
    Tensor acc_dq = partition_fragment_C(mma_dq, Shape<Int<kBlockM>, Int<kHeadDim>>{});
    Tensor s_rc   = make_tensor(acc_s.data(), gmma_acc_rowcol(acc_s.layout()));    // (keys, queries)
    Tensor dp_rc  = make_tensor(acc_dp.data(), gmma_acc_rowcol(acc_dp.layout()));
    Tensor cS     = thr_sdp.partition_C(make_identity_tensor(Shape<Int<kBlockN>, Int<kBlockM>>{}));
    Tensor cS_rc  = make_tensor(cS.data(), gmma_acc_rowcol(cS.layout()));
    Tensor rP     = make_tensor_like<Element>(acc_s);
    Tensor rdS    = make_tensor_like<Element>(acc_dp);
    Tensor tdVrP  = make_tensor(rP.data(), gmma_acc_as_a(rP.layout()));
    Tensor tdKrdS = make_tensor(rdS.data(), gmma_acc_as_a(rdS.layout()));
    constexpr int kRows = decltype(size<0>(s_rc))::value;  // keys of this thread
    constexpr int kCols = decltype(size<1>(s_rc))::value;  // query rows of this thread
    static_assert(kBlockM == 64 && kCols == kBlockM / 4, "stat_of: one pair of query rows per lane of a quad column");

    const int64_t bq = group ? 0 : b;
    cutlass::PipelineState<T::kStages> st;
    if (steps > 0) ss.bar_kv.wait(0);
    for (int s = 0; s < steps; ++s) {
        const int h = hk * p.h_ratio + s / m_blocks, m_block = m_begin + s % m_blocks;
        const int m0 = m_block * kBlockM;
        const int buf = s & 1;
        // LSE·log2e and D of the step's query rows (read while the GEMMs run), spread over the
        // warp: lane l holds rows 8·(l/4) + 2·(l%4) + {0, 1}, which are the columns c = 2·(l/4) +
        // {0, 1} of every lane with the same l%4 (accumulator columns: pairs of adjacent query
        // rows, groups of 8); each column's values are shuffled in where they are used.
        const float* lse  = p.lse + bq * p.lse_batch_stride + h * p.lse_head_stride + rows.q_row0;
        const float* dsum = p.d + bq * p.d_batch_stride + h * p.d_head_stride + rows.q_row0;
        const int lane = ctid % 32, row_l = m0 + 8 * (lane / 4) + 2 * (lane % 4);
        const RowStats st0 = fetch_row_stats(lse, dsum, row_l, rows.sq);
        const RowStats st1 = fetch_row_stats(lse, dsum, row_l + 1, rows.sq);
        auto stat_of = [&](int c, bool want_d) {  // column c's LSE·log2e or D
            const RowStats& r = c % 2 ? st1 : st0;
            return __shfl_sync(0xffffffffu, want_d ? r.d : r.lse2, 4 * (c / 2) + lane % 4);
        };

        pipe.consumer_wait(st);
        wgmma_gemm<true>(mma_sdp, tSrK, tSrQ(_, _, _, st.index()), acc_s);
        wgmma_gemm<true>(mma_sdp, tdPrV, tdPrdO(_, _, _, st.index()), acc_dp);

        // Pᵀ once Sᵀ is done (meant to run under dPᵀ, but in this form ptxas places the wait for
        // dPᵀ ahead of the exponentials). Invisible (key, query) pairs and keys past the batch are
        // masked to −∞ (P = 0), rows past the batch have LSE = +∞ (P = 0); dSᵀ is then selected
        // to 0, not multiplied, so that whatever those rows hold cannot leak in.
        warpgroup_wait<1>();
        if (block_needs_mask<T::kMasked>(p.mask, m0, m0 + kBlockM - 1, n0 + 64 * wg, 64, rows.sq, rows.sk))
            apply_mask<T::kMasked, false, true>(s_rc, cS_rc, p.mask, m0, n0, rows.sq, rows.sk);
        CUTE_UNROLL
        for (int c = 0; c < kCols; ++c) {
            const float lse2 = stat_of(c, false);
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) s_rc(r, c) = fast_exp2(s_rc(r, c) * p.scale_log2 - lse2);
        }
        warpgroup_wait<0>();
        CUTE_UNROLL
        for (int c = 0; c < kCols; ++c) {
            const float d = stat_of(c, true);
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) dp_rc(r, c) = s_rc(r, c) != 0.f ? s_rc(r, c) * (dp_rc(r, c) - d) : 0.f;
        }
        convert_fragment(rP, acc_s);
        convert_fragment(rdS, acc_dp);
        // dS for the dQ GEMM (buffer s % 2: its last readers, the dQ GEMMs of step s - 2, are
        // done: both warpgroups waited for them before the barrier of step s - 1).
        copy(s2s_ds, thr_s2s.retile_S(rdS), tdSsdS(_, _, _, buf));
        wgmma_gemm<false>(mma_dkv, tdVrP, tdVrdOt(_, _, _, st.index()), acc_dv);
        cutlass::arch::fence_view_async_shared();
        cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarDS);  // both halves of dS written
        auto tdQa = tdQrdS(_, _, _, buf);
        wgmma_gemm<true>(mma_dq, tdQa, tdQrKt, acc_dq);
        wgmma_gemm<false>(mma_dkv, tdKrdS, tdKrQt(_, _, _, st.index()), acc_dk);

        // dQ to shared memory while dK runs (dV and dQ are done: wgmma batches retire in order).
        warpgroup_wait<1>();
        if (s > 0) cutlass::arch::NamedBarrier::sync(T::kDQBarThreads, T::kBarDQEmpty + wg);
        float4* sdq = reinterpret_cast<float4*>(ss.dq.data());
        CUTE_UNROLL
        for (int g = 0; g < T::kDQFrag / 4; ++g)
            sdq[T::dq_frag_offset(ctid, g) / 4] =
                make_float4(acc_dq(4 * g), acc_dq(4 * g + 1), acc_dq(4 * g + 2), acc_dq(4 * g + 3));
        cutlass::arch::fence_view_async_shared();
        cutlass::arch::NamedBarrier::arrive(T::kDQBarThreads, T::kBarDQFull + wg);
        warpgroup_wait<0>();
        pipe.consumer_release(st);
        ++st;
    }

    // ---- dK = scale · Σ dSᵀ·Q and dV, rows of this batch's keys, columns of the head dims -------
    const BwdBlockInfo bk = bwd_block_info(p, b, hk * p.h_ratio);
    Element* dk = static_cast<Element*>(p.dk) + bk.dk;
    Element* dv = static_cast<Element*>(p.dv) + bk.dv;
    Tensor cKV = thr_dkv.partition_C(make_identity_tensor(Shape<Int<kBlockN>, Int<kHeadDim>>{}));
    CUTE_UNROLL
    for (int i = 0; i < size(acc_dk); ++i) {
        const int key = n0 + get<0>(cKV(i)), col = get<1>(cKV(i));
        if (key >= rows.sk) continue;
        if (col < p.hdim_q) dk[int64_t(key) * p.dk_row_stride + col] = Element(acc_dk(i) * p.scale_s);
        if (col < p.hdim_v) dv[int64_t(key) * p.dv_row_stride + col] = Element(acc_dv(i));
    }
#endif
}

// dQ = scale · dQ_acc for one (query block, q head, batch): the thread that holds dQ fragment
// values in the dK/dV kernel's dQ GEMM reads them back (the accumulator's order, traits.cuh).
template <DType kDType, int kHdim, MaskKind kMask>
__global__ void __launch_bounds__(BwdV3Traits<BwdV3Key{kDType, kHdim, kMask}>::kNumMmaThreads)
    bwd_v3_dq_convert_kernel(const __grid_constant__ BwdParams p) {
    using namespace cute;
    using T       = BwdV3Traits<BwdV3Key{kDType, kHdim, kMask}>;
    using Element = typename T::Element;
    const int m0 = blockIdx.x * T::kBlockM, h = blockIdx.y, b = blockIdx.z;
    const BwdBlockInfo bq = bwd_block_info(p, b, h);
    if (m0 >= bq.sq) return;
    const float4* acc = reinterpret_cast<const float4*>(p.dq_acc + bwd_acc_tile_offset(p, b, h, m0, T::kBlockM, T::kHeadDim));
    typename T::TiledMmadQ mma;
    Tensor c = mma.get_thread_slice(threadIdx.x).partition_C(make_identity_tensor(Shape<Int<T::kBlockM>, Int<T::kHeadDim>>{}));
    Element* dq = static_cast<Element*>(p.dq) + bq.dq;
    CUTE_UNROLL
    for (int g = 0; g < T::kDQFrag / 4; ++g) {
        const float4 v = acc[T::dq_frag_offset(threadIdx.x, g) / 4];
        const float vals[4] = {v.x, v.y, v.z, v.w};
        CUTE_UNROLL
        for (int e = 0; e < 4; ++e) {
            const int row = m0 + get<0>(c(4 * g + e)), col = get<1>(c(4 * g + e));
            if (row < bq.sq && col < p.hdim_q) dq[int64_t(row) * p.dq_row_stride + col] = Element(vals[e] * p.scale_s);
        }
    }
}

}  // namespace aiter::bwd
