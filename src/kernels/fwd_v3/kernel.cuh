// v3 forward attention kernel (Hopper, sm_90a): TMA + wgmma + warp specialization.
//
// A CTA walks tiles (rows [m0, m0 + kBlockM) of one (batch, q head), heaviest first under a
// mask): a static stride of the grid, or tiles drawn from a global counter (kDynamicTiles). The
// grid is persistent or one CTA per tile, per bucket (traits.cuh, launch.cuh).
// 1 + kBlockM/64 warpgroups:
//   producer warpgroup (registers given back with setmaxnreg): one thread issues the TMA loads
//     of Q (once per tile, when the consumers released Q's buffer of the previous tile, or of
//     the one before with two buffers) and of K_j, V_j into `kStages` shared-memory buffers,
//     running ahead into the next tile, each
//     completing on an mbarrier (cutlass::PipelineTmaAsync: "full" when the bytes landed,
//     "empty" when every consumer warpgroup is done with the buffer);
//   consumer warpgroups (more registers), each owning 64 rows:
//     S_j = Q · K_jᵀ (wgmma, both operands in shared memory) ; mask ; online softmax (fp32,
//     exp2) ; O += P_j · V_j (wgmma, P from registers). S_j and the P·V of the previous
//     block are issued together, so the softmax of S_j runs while P·V is on the tensor cores
//     (intra-warpgroup overlap). Where S, P and O do not fit in registers together (d256),
//     S_j, its softmax and P_j·V_j run one after the other, and the warpgroups take turns
//     issuing S (kPingPong), so that one's softmax runs under another's GEMMs. Across tiles
//     (kCrossTile), the next tile's first S is issued with this tile's last P·V and its softmax
//     runs under it, before this tile's epilogue.
//   epilogue: O /= l, LSE, O through shared memory (its own buffer when it fits, else Q's) to
//     global with 16-byte stores, or (kDirectO, traits.cuh) from the registers straight to
//     global.
// Key blocks are visited from the last to the first, as in v2, so the blocks that need masking
// come first.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/cutlass.h>

#include "fwd/fwd_key.h"
#include "fwd/fwd_params.h"
#include "kernels/fwd_v2/block_info.cuh"
#include "kernels/fwd_v2/copy.cuh"
#include "kernels/fwd_v2/gemm.cuh"
#include "kernels/fwd_v2/mask_apply.cuh"
#include "kernels/fwd_v2/softmax.cuh"
#include "kernels/fwd_v3/traits.cuh"

// wgmma, setmaxnreg and the TMA instructions exist only in sm_90a code.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AITER_FWD_V3_DEVICE 1
#else
#define AITER_FWD_V3_DEVICE 0
#endif

namespace aiter::fwd {

// wgmma accumulator ((2, 2, N/8), MMA_M, MMA_N) -> ((2, MMA_M), (2, N/8, MMA_N)): rows, then
// columns. As with mma.sync, the four threads of a quad share a row.
template <class Layout>
__host__ __device__ constexpr auto gmma_acc_rowcol(Layout const& l) {
    using namespace cute;
    static_assert(decltype(rank(l))::value == 3 && decltype(rank<0>(l))::value == 3);
    auto v = get<0>(l);  // (column pair, row half, column group)
    return make_layout(make_layout(get<1>(v), get<1>(l)), make_layout(get<0>(v), get<2>(v), get<2>(l)));
}

// Accumulator of S (64 × N per warpgroup) -> register A operand of O += P·V (k steps of 16):
// ((2, 2, N/8), M, 1) -> ((2, 2, 2), M, N/16). Column group 2k + i of the accumulator holds the
// same elements as value (.., .., i) of k step k of the A operand.
template <class Layout>
__host__ __device__ constexpr auto gmma_acc_as_a(Layout const& l) {
    using namespace cute;
    auto d = logical_divide(l, Shape<Shape<Underscore, Underscore, _2>, Underscore, Underscore>{});
    auto v = get<0>(d);  // (2, 2, (2, N/16))
    return make_layout(make_layout(get<0>(v), get<1>(v), get<2, 0>(v)), get<1>(d),
                       make_layout(get<2, 1>(v), get<2>(d)));
}

// A shared-memory descriptor tensor whose base the compiler must take as computed here: the
// descriptors of the k steps are then derived from it at each GEMM instead of being hoisted out
// of the loop and kept live (at d256 with 128 keys, 32 descriptors of Q and K took ≈ 40
// registers for the whole main loop, and ptxas serialized the wgmmas for want of registers).
template <class TD>
__device__ __forceinline__ auto opaque_desc(TD const& t) {
    auto it = t.data();
    asm volatile("" : "+r"(it.desc_.reg32_[0]));
    return cute::make_tensor(it, t.layout());
}

// Issues one warpgroup GEMM c (+)= a · b over all k steps and commits it as one batch; the
// caller waits with warpgroup_wait<N>(). kZeroInit: c = a · b (c's old value is ignored).
// kOpaqueDescs: shared-memory operands through opaque_desc.
template <bool kZeroInit, bool kOpaqueDescs = false, class Mma, class TA, class TB, class TC>
__device__ __forceinline__ void wgmma_gemm(Mma& mma, TA& a_in, TB const& b_in, TC& c) {
    using namespace cute;
    // A in registers (RS), not a shared-memory descriptor (SS).
    constexpr bool kARegs = !std::is_same_v<typename TA::iterator, GMMA::DescriptorIterator>;
    auto&& a = [&]() -> decltype(auto) {
        if constexpr (kOpaqueDescs && !kARegs) return opaque_desc(a_in);
        else return (a_in);
    }();
    auto b = [&] {
        if constexpr (kOpaqueDescs) return opaque_desc(b_in);
        else return b_in;
    }();
    if constexpr (kARegs) warpgroup_fence_operand(a);
    warpgroup_fence_operand(c);
    warpgroup_arrive();
    if constexpr (kZeroInit) mma.accumulate_ = GMMA::ScaleOut::Zero;
    CUTE_UNROLL
    for (int k = 0; k < size<2>(a); ++k) {
        gemm(mma, a(_, _, k), b(_, _, k), c);
        mma.accumulate_ = GMMA::ScaleOut::One;
    }
    warpgroup_commit_batch();
    warpgroup_fence_operand(c);
    if constexpr (kARegs) warpgroup_fence_operand(a);
}

// TMA coordinate view of one (batch, head) of a (rows, hdim, head, batch) tensor: (rows, hdim),
// starting at the batch's first physical row.
template <class TmaTensor>
__device__ __forceinline__ auto head_view(TmaTensor const& m, bool group_mode, int row0, int h, int b) {
    using namespace cute;
    return domain_offset(make_coord(group_mode ? row0 : 0, _0{}), m(_, _, h, group_mode ? 0 : b));
}

template <DType kDType, int kHdimQ, int kHdimV, MaskKind kMask, bool kShortSeq>
__global__ void __launch_bounds__(FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>::kNThreads, 1)
    fwd_v3_kernel(const __grid_constant__ FwdV3KernelParams<FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>> kp) {
#if AITER_FWD_V3_DEVICE
    using namespace cute;
    using T       = FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>;
    using Element = typename T::Element;
    constexpr int kBlockM = T::kBlockM;
    constexpr int kBlockN = T::kBlockN;
    constexpr int kDQK    = T::kHeadDimQK;
    constexpr int kDV     = T::kHeadDimV;
    const FwdParams& p    = kp.p;

    extern __shared__ __align__(1024) char smem_raw[];
    auto& ss = *reinterpret_cast<typename T::SharedStorage*>(smem_raw);

    // Tiles are numbered in the order of tile_from_index (heaviest first under a mask). CTA i
    // starts with tile i; then takes i + gridDim.x, i + 2·gridDim.x, ... or, with kDynamicTiles,
    // its producer draws the next number from a global counter and passes it to the consumers
    // through a shared-memory ring, so that a CTA with light tiles takes more of them. Producer
    // and consumers walk the same tile sequence and skip the same empty tiles, so their barrier
    // phases stay in step.
    const int m_blocks      = (p.max_seqlen_q + kBlockM - 1) / kBlockM;
    const int64_t num_tiles = int64_t(m_blocks) * p.nhead_q * p.batch;
    struct Tile {
        int m_block, h, hk, b, m0, m_last, n_begin, n_end;
        BlockInfo bi;
        __device__ bool empty() const { return m0 >= bi.sq; }   // no query row: nothing to do
        __device__ bool any_keys() const { return n_begin < n_end; }
    };
    auto tile_at = [&](int64_t t) {
        Tile tl;
        // Masked: the host's precomputed divisions (TileDecoder; select_v3 keeps grids below
        // 2^31 tiles): +6-8 % on short causal shapes (d64, d128 s = 1k) over the 64-bit
        // divisions, whose calls also spill in the producer. Unmasked kernels keep the 64-bit
        // path: with TileDecoder they ran 4-8 % slower at s <= 1k with the same instruction
        // count (ncu: more cycles per instruction; cause not found; docs/PERF.md v3 log step 27).
        if constexpr (T::kMasked) {
            kp.dec.decode(uint32_t(t), &tl.m_block, &tl.h, &tl.b);
            tl.hk = kp.dec.kv_head(tl.h);
        } else {
            tile_from_index<false>(t, m_blocks, p.nhead_q, p.batch, p.tile_section, &tl.m_block, &tl.h, &tl.b);
            tl.hk = tl.h / p.h_ratio;
        }
        tl.bi     = block_info(p, tl.b, tl.h, tl.hk);
        tl.m0     = tl.m_block * kBlockM;
        tl.m_last = min(tl.m0 + kBlockM, tl.bi.sq) - 1;
        tl.n_begin = tl.n_end = 0;
        if (!tl.empty())
            key_block_range<T::kMasked>(p.mask, tl.m0, tl.m_last, tl.bi.sq, tl.bi.sk, kBlockN, &tl.n_begin, &tl.n_end);
        return tl;
    };

    const int warp_group = threadIdx.x / 128;
    const int warp_idx   = cutlass::canonical_warp_idx_sync();

    // ---- barriers ----------------------------------------------------------------------
    // bar_q[i]: Q landed in buffer i (TMA transaction). bar_q_free[i]: every consumer
    // warpgroup is done with the Q in buffer i (one arrival each), so the next Q may land there:
    // after the tile's last S GEMM where O does not pass through Q's buffer (kEarlyQ: O in a
    // buffer of its own or stored from registers), else after the epilogue. One buffer, or two
    // taken by the tiles in turn (kCrossTile).
    if (warp_idx == 0 && cute::elect_one_sync()) {
        for (int i = 0; i < T::kQBuffers; ++i) {
            ss.bar_q[i].init(1);
            ss.bar_q_free[i].init(T::kNumMmaWarpgroups);
        }
        cute::prefetch_tma_descriptor(kp.tma_q.get_tma_descriptor());
        cute::prefetch_tma_descriptor(kp.tma_k.get_tma_descriptor());
        cute::prefetch_tma_descriptor(kp.tma_v.get_tma_descriptor());
    }
    using PipelineK = typename T::PipelineK;
    using PipelineV = typename T::PipelineV;
    typename PipelineK::Params pk;
    pk.role = warp_group == 0 ? PipelineK::ThreadCategory::Producer : PipelineK::ThreadCategory::Consumer;
    pk.is_leader         = threadIdx.x == 0;
    pk.num_consumers     = T::kNumMmaThreads;
    pk.transaction_bytes = T::kTmaBytesK;
    typename PipelineV::Params pv = pk;
    pv.transaction_bytes = T::kTmaBytesV;
    PipelineK pipe_k(ss.pipe_k, pk, Shape<_1, _1, _1>{});
    PipelineV pipe_v(ss.pipe_v, pv, Shape<_1, _1, _1>{});
    using PipelineTile = typename T::PipelineTile;
    typename PipelineTile::Params ptp;
    ptp.role = warp_group == 0 ? PipelineTile::ThreadCategory::Producer : PipelineTile::ThreadCategory::Consumer;
    ptp.producer_arv_count = 1;
    ptp.consumer_arv_count = T::kNumMmaThreads;
    PipelineTile pipe_tile(ss.pipe_tile, ptp);
    cutlass::arch::fence_barrier_init();
    __syncthreads();

    const bool group = p.is_group_mode;
    if (warp_group == 0) {
        // ================= producer =================
        cutlass::arch::warpgroup_reg_dealloc<T::kRegsProducer>();
        if (threadIdx.x == 0) {
            Tensor sQs = make_tensor(make_smem_ptr(ss.q.data()), typename T::SmemLayoutQs{});
            Tensor sK = make_tensor(make_smem_ptr(ss.k.data()), typename T::SmemLayoutK{});
            Tensor sV = make_tensor(make_smem_ptr(ss.v.data()), typename T::SmemLayoutV{});
            auto st = cutlass::make_producer_start_state<PipelineK>();
            auto st_tile = cutlass::make_producer_start_state<PipelineTile>();
            auto publish = [&](int64_t t) {  // kDynamicTiles: tell the consumers which tile is next
                pipe_tile.producer_acquire(st_tile);
                ss.tile_index[st_tile.index()] = t;
                pipe_tile.producer_commit(st_tile);
                ++st_tile;
            };
            int tiles_done = 0;
            int64_t next = 0;
            // kCrossTile: each tile's successor is published as soon as it is drawn, a tile
            // ahead, since the consumers look for it before the tile's last P·V; the last one
            // drawn (>= num_tiles) ends their walk.
            if constexpr (T::kDynamicTiles && T::kCrossTile) publish(blockIdx.x);
            for (int64_t t = blockIdx.x; t < num_tiles; t = next) {
                if constexpr (T::kDynamicTiles) {
                    next = gridDim.x + int64_t(atomicAdd(kp.tile_counter, 1ull));  // used at the loop's end
                    publish(T::kCrossTile ? next : t);
                } else {
                    next = t + gridDim.x;
                }
                const Tile tl = tile_at(t);
                if (tl.empty()) continue;
                Tensor mQ = head_view(kp.tma_q.get_tma_tensor(kp.shape_q), group, tl.bi.q_row0, tl.h, tl.b);
                Tensor mK = head_view(kp.tma_k.get_tma_tensor(kp.shape_k), group, tl.bi.k_row0, tl.hk, tl.b);
                Tensor mV = head_view(kp.tma_v.get_tma_tensor(kp.shape_v), group, tl.bi.k_row0, tl.hk, tl.b);
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
                // One buffer: written out here, not through load_q: with the lambda, ptxas gave the
                // d256 kernels a 1392-byte stack frame and serialized their wgmmas (C7520).
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
            if constexpr (T::kDynamicTiles && !T::kCrossTile) publish(num_tiles);  // no more tiles
        }
        return;
    }

    // ================= consumers =================
    cutlass::arch::warpgroup_reg_alloc<T::kRegsConsumer>();
    const int ctid = threadIdx.x - 128;

    // Ping-pong (T::kPingPong: d256, or every bucket with -DAITER_FWD_V3_PINGPONG=1):
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

    Element* o_staging = [&] {
        if constexpr (T::kSeparateO) return ss.o.data();
        else return ss.q.data();
    }();
    Tensor sO = make_tensor(make_smem_ptr(o_staging), typename T::SmemLayoutO{});
    // One thread per warpgroup tells the producer that this warpgroup no longer reads Q's
    // buffer qb.
    auto release_q = [&](int qb) {
        if (threadIdx.x % 128 == 0) ss.bar_q_free[qb].arrive();
    };
    // Q's buffer qb as the A operand of S = Q·Kᵀ.
    auto q_operand = [&](int qb) {
        if constexpr (T::kQBuffers == 1) return tSrQs(_, _, _, _0{});
        else return tSrQs(_, _, _, qb);
    };
    auto smem_copy_O = make_tiled_copy_C(Copy_Atom<AutoVectorizingCopyWithAssumedAlignment<32>, Element>{}, mma_o);
    auto smem_thr_O  = smem_copy_O.get_thread_slice(ctid);
    typename T::GmemTiledCopyO gmem_copy_O;
    auto gmem_thr_O = gmem_copy_O.get_thread_slice(ctid);
    Tensor tOcO_g = gmem_thr_O.partition_D(make_identity_tensor(Shape<Int<kBlockM>, Int<kDV>>{}));

    const bool use_softcap     = T::kSoftcap && p.softcap > 0.f;  // short-sequence variants: never (launch.cuh)
    const float scale_over_cap = use_softcap ? p.scale_s / p.softcap : 0.f;

    cutlass::PipelineState<T::kStages> st;  // consumer side of both pipelines: index 0, phase 0
    cutlass::PipelineState<T::kTileSlots> st_tile;
    auto next_tile = [&](int64_t t) -> int64_t {
        if constexpr (T::kDynamicTiles) {
            pipe_tile.consumer_wait(st_tile);
            const int64_t n = ss.tile_index[st_tile.index()];
            pipe_tile.consumer_release(st_tile);
            ++st_tile;
            return n;
        } else {
            return t + gridDim.x;
        }
    };
    // kCrossTile: at a tile's last P·V the consumers draw the next tile and, if it has keys,
    // issue its first S = Q·Kᵀ together with that P·V and run its softmax under it (state in
    // tl_ahead / sm_ahead, probabilities left in acc_s); the next iteration then starts at its
    // second key block.
    bool drawn = false, ahead = false;
    int64_t t_drawn = 0;
    Tile tl_ahead;
    OnlineSoftmax<kRows> sm_ahead;
    // kCrossTile: draws the tile after t and decodes it (off the path between this tile's last
    // softmax and its last P·V: during the last S GEMM, or before the last P·V of a tile with
    // one key block).
    auto draw_ahead = [&](int64_t t) {
        t_drawn = next_tile(t);
        drawn   = true;
        ahead   = false;
        if (t_drawn < num_tiles) {
            tl_ahead = tile_at(t_drawn);
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
    auto softmax_block = [&](const Tile& tl, OnlineSoftmax<kRows>& softmax, int n, float (&corr)[kRows]) {
        if (use_softcap) apply_softcap(s, scale_over_cap, p.softcap);
        const int n0 = n * kBlockN;
        if (block_needs_mask<T::kMasked>(p.mask, tl.m0, tl.m_last, n0, kBlockN, tl.bi.sq, tl.bi.sk)) {
            // Masked: one compare per element where the mask has no left bound (causal),
            // except in the ping-pong kernels (d256), where this branch made ptxas serialize
            // the wgmmas (v3 log step 26).
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
    for (int64_t t = T::kDynamicTiles ? next_tile(0) : blockIdx.x; t < num_tiles; t = advance(t)) {
        const bool was_ahead = T::kCrossTile && ahead;
        ahead = false;
        const Tile tl = was_ahead ? tl_ahead : tile_at(t);
        if (tl.empty()) continue;
        const BlockInfo& bi = tl.bi;
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

        // ---- epilogue: O /= l, LSE, O to global (through shared memory or from registers) -
        float lse[kRows];
        softmax.finalize(acc_o_rc, p.scale_log2, lse);
        if (p.lse != nullptr) {
            float* lse_ptr = p.lse + bi.lse_offset;
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) {
                const int row = tl.m0 + get<0>(tOcO_rc(r, 0));
                if (get<1>(tOcO_rc(r, 0)) == 0 && row < bi.sq) lse_ptr[row] = lse[r];
            }
        }
        if constexpr (T::kDirectO) {
            // Straight from registers (traits.cuh, kDirectO), 16- or 8-byte stores
            // (kDirectOBytes). Rows past the sequence and columns past hdim_v (a multiple of
            // 8) are not written. No visible key: O = 0.
            Tensor rO = make_tensor_like<Element>(acc_o);
            if (tl.any_keys()) convert_fragment(rO, acc_o);
            else clear(rO);
            Tensor rO_rc  = make_tensor(rO.data(), acc_o_rc.layout());
            Element* o_ptr = static_cast<Element*>(p.o) + bi.o_offset;
            // Column pairs as 32-bit words; thread q of a quad holds columns 8j + 2q, +1 of
            // each 8-column group j (4-byte stores of those pairs cost d128 4-10 %: v3 log
            // steps 31-33). Every lane takes part in the exchanges; the stores are predicated
            // (the four lanes of a quad share a row).
            auto word = [&](int r, int c) {
                return uint32_t(rO_rc(r, c).raw()) | (uint32_t(rO_rc(r, c + 1).raw()) << 16);
            };
            const bool b0 = threadIdx.x & 1, b1 = threadIdx.x & 2;  // the lane's bits in its quad
            const int q = threadIdx.x & 3;
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) {
                const int row = tl.m0 + get<0>(tOcO_rc(r, 0));
                Element* o_row = o_ptr + int64_t(row) * p.o_row_stride;
                if constexpr (T::kDirectOBytes == 16) {
                    // 16-byte stores: per four 8-column groups, the quad's 4 × 4 words (thread
                    // q, group g) are transposed in two exchanges (lane bit 0, then bit 1),
                    // after which thread q holds the 8 contiguous columns of group g + q.
                    CUTE_UNROLL
                    for (int c = 0; c < size<1>(rO_rc); c += 8) {
                        uint32_t w[4] = {word(r, c), word(r, c + 2), word(r, c + 4), word(r, c + 6)};
                        CUTE_UNROLL
                        for (int k = 0; k < 2; ++k) {  // words whose index bit 0 differs from q's
                            const uint32_t got = __shfl_xor_sync(0xffffffffu, b0 ? w[2 * k] : w[2 * k + 1], 1);
                            if (b0) w[2 * k] = got;
                            else w[2 * k + 1] = got;
                        }
                        CUTE_UNROLL
                        for (int k = 0; k < 2; ++k) {  // then bit 1
                            const uint32_t got = __shfl_xor_sync(0xffffffffu, b1 ? w[k] : w[k + 2], 2);
                            if (b1) w[k] = got;
                            else w[k + 2] = got;
                        }
                        // This thread's first pair is at column 8·g + 2q; group g + q starts at 8·(g + q).
                        const int col = get<1>(tOcO_rc(r, c)) + 6 * q;
                        if (row < bi.sq && col < p.hdim_v)
                            *reinterpret_cast<uint4*>(o_row + col) = make_uint4(w[0], w[1], w[2], w[3]);
                    }
                } else {
                    // 8-byte stores: one exchange with the neighbour (q ^ 1) per two groups
                    // gives each thread 4 contiguous columns: even q stores group j's columns
                    // 2q..2q+3, odd q group j + 1's columns 2q-2..2q+1.
                    CUTE_UNROLL
                    for (int c = 0; c < size<1>(rO_rc); c += 4) {
                        const uint32_t w0 = word(r, c), w1 = word(r, c + 2);
                        const uint32_t got = __shfl_xor_sync(0xffffffffu, b0 ? w0 : w1, 1);
                        const int col = get<1>(tOcO_rc(r, b0 ? c + 2 : c)) - (b0 ? 2 : 0);
                        if (row < bi.sq && col < p.hdim_v)
                            *reinterpret_cast<uint2*>(o_row + col) = b0 ? make_uint2(got, w1) : make_uint2(w0, got);
                    }
                }
            }
        } else {
            Tensor mO = make_tensor(make_gmem_ptr(static_cast<Element*>(p.o) + bi.o_offset),
                                    make_shape(bi.sq, Int<kDV>{}), make_stride(p.o_row_stride, _1{}));
            Tensor gO   = local_tile(mO, Shape<Int<kBlockM>, Int<kDV>>{}, make_coord(tl.m_block, 0));
            Tensor tOgO = gmem_thr_O.partition_D(gO);
            Tensor tOrO = make_tensor<Element>(shape(tOgO));
            if (tl.any_keys()) {
                Tensor rO = make_tensor_like<Element>(acc_o);
                convert_fragment(rO, acc_o);
                // Own buffer: free since the last tile's final barrier. Q's buffer: wait until
                // every warpgroup is done reading Q.
                if constexpr (!T::kSeparateO) cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);
                copy(smem_copy_O, smem_thr_O.retile_S(rO), smem_thr_O.partition_D(sO));
                cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);
                copy(gmem_copy_O, gmem_thr_O.partition_S(sO), tOrO);
                cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);  // O's staging buffer is free
                if constexpr (!T::kSeparateO) release_q(qb);               // the next Q may land
            } else {
                clear(tOrO);  // no visible key: O = 0 (and LSE = -inf above); Q's buffer untouched
            }
            store_tile<true>(gmem_copy_O, tOrO, tOgO, tOcO_g, bi.sq - tl.m0, p.hdim_v);
        }
    }
#endif
}

}  // namespace aiter::fwd
