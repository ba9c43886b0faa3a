// Mainloop of the v3 forward kernel (sm_90a): the two roles of a CTA, each walking the tiles of
// its scheduler (tile_scheduler.cuh).
//
// fwd_v3_producer (one thread of the producer warpgroup): TMA loads of Q (once per tile, when
//   the consumers released Q's buffer of the previous tile, or of the one before with two
//   buffers) and of K_n, V_n into kStages shared-memory buffers, running ahead into the next
//   tile, each completing on an mbarrier (cutlass::PipelineTmaAsync: "full" when the bytes
//   landed, "empty" when every consumer warpgroup is done with the buffer).
// fwd_v3_consumer (each consumer warpgroup owns 64 rows of the tile), per key block n from the
//   last to the first (the blocks that need masking come first):
//     S_n = Q · K_nᵀ (wgmma SS) ; soft-cap ; mask ; online softmax (fp32, exp2) ;
//     O += P_n · V_n (wgmma RS, P from registers)
//   With the intra-warpgroup overlap (tile.h), S_n and the P·V of the block before are issued
//   together so that the softmax of S_n runs while P·V is on the tensor cores. Without it (d256)
//   S_n, its softmax and P_n·V_n run in turn, and the warpgroups take turns issuing their GEMMs
//   (kPingPong) so that one's softmax runs under another's GEMMs. Across tiles (kCrossTile) the
//   next tile's first S is issued with this tile's last P·V and its softmax runs under it,
//   before this tile's epilogue (epilogue.cuh), so the consumer walks the tiles itself.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>
#include <cutlass/cutlass.h>

#include "fwd/fwd_params.h"
#include "kernels/common/fragment.cuh"
#include "kernels/common/gemm_sm90.cuh"
#include "kernels/common/mask_apply.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tma_view.cuh"
#include "kernels/fwd_v3/epilogue.cuh"
#include "kernels/fwd_v3/tile_scheduler.cuh"
#include "kernels/fwd_v3/traits.cuh"

namespace aiter::fwd {

template <class T, class Scheduler>
__device__ __forceinline__ void fwd_v3_producer(const FwdV3KernelParams<T>& kp, typename T::SharedStorage& ss,
                                                typename T::PipelineK& pipe_k, typename T::PipelineV& pipe_v,
                                                Scheduler& sched) {
    using namespace cute;
    constexpr int kBlockM = T::kBlockM;
    constexpr int kBlockN = T::kBlockN;
    constexpr int kDQK    = T::kHeadDimQK;
    constexpr int kDV     = T::kHeadDimV;
    const bool group      = kp.p.is_group_mode;
    using PipelineK       = typename T::PipelineK;

    Tensor sQs = make_tensor(make_smem_ptr(ss.q.data()), typename T::SmemLayoutQs{});
    Tensor sK = make_tensor(make_smem_ptr(ss.k.data()), typename T::SmemLayoutK{});
    Tensor sV = make_tensor(make_smem_ptr(ss.v.data()), typename T::SmemLayoutV{});
    auto st = cutlass::make_producer_start_state<PipelineK>();
    int tiles_done = 0;
    int64_t next = 0;
    sched.producer_begin();
    for (int64_t t = blockIdx.x; t < sched.num_tiles; t = next) {
        next = sched.producer_next(t);  // used at the loop's end
        const FwdV3WorkTile tl = sched.tile_at(t);
        if (tl.empty()) continue;
        Tensor mQ = tma_head_view(kp.tma_q.get_tma_tensor(kp.shape_q), group, tl.bi.q_row0, tl.h, tl.b);
        Tensor mK = tma_head_view(kp.tma_k.get_tma_tensor(kp.shape_k), group, tl.bi.k_row0, tl.hk, tl.b);
        Tensor mV = tma_head_view(kp.tma_v.get_tma_tensor(kp.shape_v), group, tl.bi.k_row0, tl.hk, tl.b);
        Tensor gQ = local_tile(mQ, Shape<Int<kBlockM>, Int<kDQK>>{}, make_coord(tl.m_block, 0));  // (M, D)
        Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kDQK>>{}, make_coord(_, 0));  // (N, D, nblk)
        Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kDV>>{}, make_coord(_, 0));   // (N, D, nblk)
        auto [tKgK, tKsK] = tma_partition(kp.tma_k, _0{}, Layout<_1>{}, group_modes<0, 2>(sK), group_modes<0, 2>(gK));
        auto [tVgV, tVsV] = tma_partition(kp.tma_v, _0{}, Layout<_1>{}, group_modes<0, 2>(sV), group_modes<0, 2>(gV));
        auto [tQgQ, tQsQ] = tma_partition(kp.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQs(_, _, _0{})), group_modes<0, 2>(gQ));

        // A tile without visible keys loads nothing (its O is written as zeros from
        // registers). Otherwise the first K block may stream in while the consumers
        // finish the previous tile; Q waits until they released its buffer. Only
        // Q-loading tiles count on bar_q_free, so its phase can never run two ahead.
        if (!tl.any_keys()) continue;
        // With two Q buffers (kCrossTile), Q goes first: its buffer was released a tile
        // ago, and the consumers need it one softmax after this tile's first K.
        const int n_first = tl.n_end - 1;
        auto load_q = [&] {
            const int qb = tiles_done % T::kQBuffers;
            if (tiles_done >= T::kQBuffers) ss.bar_q_free[qb].wait((tiles_done / T::kQBuffers - 1) & 1);
            ++tiles_done;
            auto [q_src, q_dst] = tma_partition(kp.tma_q, _0{}, Layout<_1>{}, group_modes<0, 2>(sQs(_, _, qb)),
                                                group_modes<0, 2>(gQ));
            ss.bar_q[qb].arrive_and_expect_tx(T::kTmaBytesQ);
            copy(kp.tma_q.with(reinterpret_cast<uint64_t&>(ss.bar_q[qb]), 0), q_src, q_dst);
        };
        // One buffer: written out here, not through load_q: with the lambda, ptxas
        // serialized the d256 kernels' wgmmas (C7520; docs/PERF.md, v3 log step 39).
        if constexpr (T::kQBuffers > 1) load_q();
        pipe_k.producer_acquire(st);
        copy(kp.tma_k.with(*pipe_k.producer_get_barrier(st), 0), tKgK(_, n_first), tKsK(_, st.index()));
        if constexpr (T::kQBuffers == 1) {
            if (tiles_done > 0) ss.bar_q_free[0].wait((tiles_done - 1) & 1);
            ++tiles_done;
            ss.bar_q[0].arrive_and_expect_tx(T::kTmaBytesQ);
            copy(kp.tma_q.with(reinterpret_cast<uint64_t&>(ss.bar_q[0]), 0), tQgQ, tQsQ);
        }
        for (int n = n_first; n >= tl.n_begin; --n) {
            if (n != n_first) {
                pipe_k.producer_acquire(st);
                copy(kp.tma_k.with(*pipe_k.producer_get_barrier(st), 0), tKgK(_, n), tKsK(_, st.index()));
            }
            pipe_v.producer_acquire(st);
            copy(kp.tma_v.with(*pipe_v.producer_get_barrier(st), 0), tVgV(_, n), tVsV(_, st.index()));
            ++st;
        }
    }
    sched.producer_end();
}

template <class T, class Scheduler>
__device__ __forceinline__ void fwd_v3_consumer(const FwdV3KernelParams<T>& kp, typename T::SharedStorage& ss,
                                                typename T::PipelineK& pipe_k, typename T::PipelineV& pipe_v,
                                                Scheduler& sched, int ctid) {
    using namespace cute;
    using Element         = typename T::Element;
    constexpr int kBlockM = T::kBlockM;
    constexpr int kBlockN = T::kBlockN;
    constexpr int kDV     = T::kHeadDimV;
    const FwdParams& p    = kp.p;
    const int64_t num_tiles = sched.num_tiles;

    // Ping-pong (T::kPingPong: d256; every bucket in tuning builds, kernels/tuning.h):
    // consumer warpgroup i issues the GEMMs of a key block only in its turn: it waits on named
    // barrier kBarTurn0 + i (its own 128 threads plus the 128 arrivals of the warpgroup before
    // it), issues S = Q·Kᵀ (with the overlap, also the P·V of the block before), then passes
    // the turn to warpgroup i + 1 (mod the count) and runs its softmax while the next
    // warpgroup's GEMMs occupy the tensor cores. Every warpgroup takes exactly one turn per key
    // block of a tile (with the overlap, the final P·V of a tile goes without one) and all
    // warpgroups walk the same tiles, so the turns stay in order across tiles: the last
    // warpgroup's last pass of a tile is the first warpgroup's first turn of the next. The kernel
    // starts with warpgroup 0's turn.
    const int mma_wg = ctid / 128;
    auto turn_wait = [&] {
        if constexpr (T::kPingPong)
            cutlass::arch::NamedBarrier::sync(2 * 128, T::kBarTurn0 + mma_wg);
    };
    auto turn_pass = [&] {
        if constexpr (T::kPingPong)
            cutlass::arch::NamedBarrier::arrive(2 * 128, T::kBarTurn0 + (mma_wg + 1) % T::kNumMmaWarpgroups);
    };
    if constexpr (T::kPingPong) {
        if (mma_wg == T::kNumMmaWarpgroups - 1) turn_pass();
    }

    Tensor sQs = make_tensor(make_smem_ptr(ss.q.data()), typename T::SmemLayoutQs{});
    Tensor sK  = make_tensor(make_smem_ptr(ss.k.data()), typename T::SmemLayoutK{});
    Tensor sVt = make_tensor(make_smem_ptr(ss.v.data()), typename T::SmemLayoutVt{});

    typename T::TiledMmaS mma_s;
    typename T::TiledMmaO mma_o;
    auto thr_s = mma_s.get_thread_slice(ctid);
    auto thr_o = mma_o.get_thread_slice(ctid);
    Tensor tSrQs = thr_s.partition_fragment_A(sQs);  // (MMA, MMA_M, MMA_K, Q buffers)
    Tensor tSrK = thr_s.partition_fragment_B(sK);   // (MMA, MMA_N, MMA_K, stages)
    Tensor tOrV = thr_o.partition_fragment_B(sVt);  // (MMA, MMA_D, MMA_K, stages)

    Tensor acc_o    = partition_fragment_C(mma_o, Shape<Int<kBlockM>, Int<kDV>>{});
    Tensor acc_o_rc = make_tensor(acc_o.data(), gmma_acc_rowcol(acc_o.layout()));
    constexpr int kRows = decltype(size<0>(acc_o_rc))::value;
    Tensor acc_s = partition_fragment_C(mma_s, Shape<Int<kBlockM>, Int<kBlockN>>{});
    Tensor s     = make_tensor(acc_s.data(), gmma_acc_rowcol(acc_s.layout()));  // (rows, cols)
    // P has its own registers, also without the intra-warpgroup overlap: packed into the first
    // half of S's registers instead, ptxas serialized every wgmma of the kernel (C7511,
    // "insufficient register resources for the wgmma pipeline"; d256, 128 keys).
    Tensor rP    = make_tensor_like<Element>(acc_s);
    Tensor tOrP  = make_tensor(rP.data(), gmma_acc_as_a(rP.layout()));

    Tensor tScS    = thr_s.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kBlockN>>{}));
    Tensor tScS_rc = make_tensor(tScS.data(), gmma_acc_rowcol(tScS.layout()));
    Tensor tOcO    = thr_o.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kDV>>{}));
    Tensor tOcO_rc = make_tensor(tOcO.data(), gmma_acc_rowcol(tOcO.layout()));

    auto release_q = [&](int qb) { fwd_v3_release_q<T>(ss, qb); };
    // Q's buffer qb as the A operand of S = Q·Kᵀ.
    auto q_operand = [&](int qb) {
        if constexpr (T::kQBuffers == 1) return tSrQs(_, _, _, _0{});
        else return tSrQs(_, _, _, qb);
    };
    FwdV3Epilogue<T> epilogue(ss, ctid);

    const bool use_softcap     = T::kSoftcap && p.softcap > 0.f;  // short-sequence variants: never (launch.cuh)
    const float scale_over_cap = use_softcap ? p.scale_s / p.softcap : 0.f;

    cutlass::PipelineState<T::kStages> st;  // consumer side of both pipelines: index 0, phase 0
    auto next_tile = [&](int64_t t) -> int64_t { return sched.consumer_next(t); };
    // kCrossTile: at a tile's last P·V the consumers draw the next tile and, if it has keys,
    // issue its first S = Q·Kᵀ together with that P·V and run its softmax under it (state in
    // tl_ahead / sm_ahead, probabilities left in acc_s); the next iteration then starts at its
    // second key block.
    bool drawn = false, ahead = false;
    int64_t t_drawn = 0;
    FwdV3WorkTile tl_ahead;
    OnlineSoftmax<kRows> sm_ahead;
    // kCrossTile: draws the tile after t and decodes it (off the path between this tile's last
    // softmax and its last P·V: during the last S GEMM, or before the last P·V of a tile with
    // one key block).
    auto draw_ahead = [&](int64_t t) {
        t_drawn = next_tile(t);
        drawn   = true;
        ahead   = false;
        if (t_drawn < num_tiles) {
            tl_ahead = sched.tile_at(t_drawn);
            ahead    = !tl_ahead.empty() && tl_ahead.any_keys();
        }
    };
    auto advance = [&](int64_t t) -> int64_t {
        if (T::kCrossTile && drawn) {
            drawn = false;
            return t_drawn;
        }
        return next_tile(t);
    };
    // Scores of key block n of tile tl -> probabilities in s (fp32), corr = the rescale of O.
    auto softmax_block = [&](const FwdV3WorkTile& tl, OnlineSoftmax<kRows>& softmax, int n, float (&corr)[kRows]) {
        if (use_softcap) apply_softcap(s, scale_over_cap, p.softcap);
        const int n0 = n * kBlockN;
        if (block_needs_mask<T::kMasked>(p.mask, tl.m0, tl.m_last, n0, kBlockN, tl.bi.sq, tl.bi.sk)) {
            // Masked: one compare per element where the mask has no left bound (causal),
            // except in the ping-pong kernels (d256), where this branch made ptxas serialize
            // the wgmmas (docs/PERF.md, v3 log step 26).
            if (T::kMasked && !T::kPingPong && p.mask.left < 0)
                apply_mask<T::kMasked, true>(s, tScS_rc, p.mask, tl.m0, n0, tl.bi.sq, tl.bi.sk);
            else
                apply_mask<T::kMasked>(s, tScS_rc, p.mask, tl.m0, n0, tl.bi.sq, tl.bi.sk);
        }
        softmax.update_scores(s, p.scale_log2, corr);
    };
    int q_loads = 0;           // Q waits so far: Q buffer q_loads % kQBuffers is next
    int qb = 0, qb_ahead = 0;  // Q's buffer of the current tile / of the tile ahead
    auto wait_q = [&] {
        const int b = q_loads % T::kQBuffers;
        ss.bar_q[b].wait((q_loads / T::kQBuffers) & 1);
        ++q_loads;
        return b;
    };
    for (int64_t t = sched.consumer_first(); t < num_tiles; t = advance(t)) {
        const bool was_ahead = T::kCrossTile && ahead;
        ahead = false;
        const FwdV3WorkTile tl = was_ahead ? tl_ahead : sched.tile_at(t);
        if (tl.empty()) continue;
        OnlineSoftmax<kRows> softmax;
        if (was_ahead) softmax = sm_ahead;
        clear(acc_o);

        if (tl.any_keys()) {
            if (was_ahead) qb = qb_ahead;
            else qb = wait_q();
            auto tSrQ = q_operand(qb);
            float corr[kRows];

            // S_n = Q·K_nᵀ, its softmax (O rescaled, except for the first block: O is still
            // zero), P = S in the element type.
            auto scores = [&](int n, auto first) {
                pipe_k.consumer_wait(st);
                turn_wait();
                wgmma_gemm<true, T::kOpaqueDescs>(mma_s, tSrQ, tSrK(_, _, _, st.index()), acc_s);
                turn_pass();
                warpgroup_wait<0>();
                pipe_k.consumer_release(st);
                if (T::kEarlyQ && n == tl.n_begin) release_q(qb);  // that was the last S
                softmax_block(tl, softmax, n, corr);
                if constexpr (!decltype(first)::value) softmax.rescale(acc_o_rc, corr);
                convert_fragment(rP, acc_s);
            };
            auto pv_issue = [&] {  // O += P·V_n, issued
                pipe_v.consumer_wait(st);
                wgmma_gemm<false, T::kOpaqueDescs>(mma_o, tOrP, tOrV(_, _, _, st.index()), acc_o);
            };
            auto pv_retire = [&] {  // every GEMM issued is done; V_n's buffer is released
                warpgroup_wait<0>();
                pipe_v.consumer_release(st);
                ++st;
            };
            auto pv = [&] {  // O += P·V_n, waited for
                pv_issue();
                pv_retire();
            };
            if constexpr (!T::kIntraOverlap) {
                // Per key block: S, softmax, P·V, one after the other. P is dead from the end
                // of one P·V to the next conversion, so the GEMM and the softmax may use its
                // registers (with the overlap, S, P and O are all held while the softmax runs);
                // the ping-pong turns (kPingPong) let the other warpgroups' GEMMs run during
                // this one's softmax.
                scores(tl.n_end - 1, cute::true_type{});
                pv();
                for (int n = tl.n_end - 2; n >= tl.n_begin; --n) {
                    scores(n, cute::false_type{});
                    pv();
                }
            } else {
                if (was_ahead) convert_fragment(rP, acc_s);  // the first block's softmax ran under the last tile
                else scores(tl.n_end - 1, cute::true_type{});

                // Steady state, per key block n: S_n = Q·K_nᵀ and O += P_{n+1}·V_{n+1} are issued
                // back to back; the softmax of S_n runs while P·V is still on the tensor cores
                // (kSoftmaxUnderPV: see traits.cuh), and O is rescaled only once that GEMM has
                // finished.
                auto finish = [&] {
                    warpgroup_wait<0>();  // P_{n+1}·V_{n+1} is done
                    pipe_v.consumer_release(st);
                    softmax.rescale(acc_o_rc, corr);
                    convert_fragment(rP, acc_s);
                    ++st;
                };
                for (int n = tl.n_end - 2; n >= tl.n_begin; --n) {
                    auto st_next = st;
                    ++st_next;
                    pipe_k.consumer_wait(st_next);
                    turn_wait();
                    wgmma_gemm<true, T::kOpaqueDescs>(mma_s, tSrQ, tSrK(_, _, _, st_next.index()), acc_s);
                    pipe_v.consumer_wait(st);
                    wgmma_gemm<false, T::kOpaqueDescs>(mma_o, tOrP, tOrV(_, _, _, st.index()), acc_o);
                    turn_pass();
                    if (T::kCrossTile && n == tl.n_begin) draw_ahead(t);  // under the last S
                    warpgroup_wait<1>();  // S_n is ready (GEMM batches retire in order)
                    pipe_k.consumer_release(st_next);
                    if (T::kEarlyQ && n == tl.n_begin) release_q(qb);  // the last S: Q is free
                    softmax_block(tl, softmax, n, corr);
                    // kSoftmaxUnderPV: the last block leaves the loop before its wait, so that the
                    // softmax and the wait sit in different basic blocks.
                    if (T::kSoftmaxUnderPV && n == tl.n_begin) break;
                    finish();
                }
                if (T::kSoftmaxUnderPV && tl.n_end - 2 >= tl.n_begin) finish();
                if constexpr (T::kCrossTile) {
                    // The last P·V, with the next tile's first S = Q·Kᵀ issued beside it when
                    // that tile has keys; its softmax then runs under this P·V, in a basic block
                    // of its own (the wait for P·V follows the if).
                    if (!drawn) draw_ahead(t);  // a tile of one key block
                    auto st_next = st;
                    ++st_next;
                    if (ahead) {
                        qb_ahead = wait_q();
                        const int n = tl_ahead.n_end - 1;
                        pipe_k.consumer_wait(st_next);
                        auto tSrQ_ahead = q_operand(qb_ahead);
                        wgmma_gemm<true, T::kOpaqueDescs>(mma_s, tSrQ_ahead, tSrK(_, _, _, st_next.index()), acc_s);
                        pv_issue();
                        warpgroup_wait<1>();  // the next tile's S is ready
                        pipe_k.consumer_release(st_next);
                        if (n == tl_ahead.n_begin) release_q(qb_ahead);  // its only S
                        sm_ahead = OnlineSoftmax<kRows>();
                        softmax_block(tl_ahead, sm_ahead, n, corr);
                    } else {
                        pv_issue();
                    }
                    pv_retire();
                } else {
                    pv();
                }
            }
        }

        epilogue.store(p, tl, softmax, acc_o, acc_o_rc, tOcO_rc, qb);
    }
}

}  // namespace aiter::fwd
