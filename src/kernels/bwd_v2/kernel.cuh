// v2 backward attention kernels (CuTe, mma.sync + cp.async; sm_80 and newer).
//
// dK/dV kernel: one CTA per (key block n, kv head, batch). K_n, V_n stay in shared memory; the
// CTA loops over the q heads of its GQA group and, for each, over the query blocks m that can
// see key block n (query_block_range), Q_m and dO_m of the next step loading (cp.async, second
// shared-memory stage) while the current one is computed:
//   S, P, dP, dS of (m, n)        block_math.cuh
//   dV += Pᵀ·dO ;  dK += dSᵀ·Q    (P and dS pass through shared memory, read transposed)
//   non-deterministic only: dQ_acc[m] += dS·K   (fp32 atomics, 2 floats each, in column chunks)
// and finally writes dK·scale and dV (summed over the group's q heads: no atomics).
//
// dQ convert kernel (atomic mode): dQ = scale · dQ_acc, one CTA per (query block, q head, batch).
//
// dQ kernel (deterministic mode): one CTA per (query block m, q head, batch), looping over the
// key blocks it can see in a fixed order: dQ = scale · Σ_n dS(m, n)·K_n, written directly.
//
// Layouts (elements, last dim contiguous, see include/mha_bwd.h): Q, dO (sq, d); K, V (sk, d);
// dQ_acc fp32 in thread-fragment order (acc_tile_offset); LSE, D fp32 (sq). Head dims below the
// bucket are zero-padded on load and never stored. Rows past the logical lengths are zero-filled
// on load and never stored.
#pragma once

#include <cute/tensor.hpp>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"
#include "kernels/bwd_v2/block_math.cuh"
#include "kernels/bwd_v2/traits.cuh"
#include "kernels/common/block_range.cuh"
#include "kernels/common/bwd_rows.cuh"
#include "kernels/common/tile_copy.cuh"

namespace aiter::bwd {

// Shared-memory carve-up common to both kernels:
//   Q [stages] | dO [stages] | K | V | P | dS | LSE2 [stages][M] | D [stages][M].
template <class T>
struct BwdSmem {
    typename T::Element* q;
    typename T::Element* dout;
    typename T::Element* k;
    typename T::Element* v;
    typename T::Element* p;
    typename T::Element* ds;
    float* lse2;
    float* d;
    __device__ __forceinline__ explicit BwdSmem(char* base) {
        q    = reinterpret_cast<typename T::Element*>(base);
        dout = q + T::kQStages * T::kQElems;
        k    = dout + T::kQStages * T::kQElems;
        v    = k + T::kKVElems;
        p    = v + T::kKVElems;
        ds   = p + T::kPElems;
        lse2 = reinterpret_cast<float*>(ds + T::kPElems);
        d    = lse2 + T::kQStages * T::kBlockM;
    }
};

// (rows, kHeadDim) view of one (batch, head) of a global tensor: `base + offset`, row stride
// `row_stride` elements, last dimension contiguous.
template <int kHeadDim, class E>
__device__ __forceinline__ auto gmem_rows(E* base, int64_t offset, int rows, int64_t row_stride) {
    using namespace cute;
    return make_tensor(make_gmem_ptr(base + offset), make_shape(rows, Int<kHeadDim>{}), make_stride(row_stride, _1{}));
}

// Copies rows [0, rows) x cols [0, cols) of a (BLOCK, D) global tile into shared memory
// (cp.async, zero-fill outside), without waiting.
template <class T, class G, class S>
__device__ __forceinline__ void load_rows(G const& g, S& s, int rows, int cols, int tidx) {
    using namespace cute;
    typename T::GmemTiledCopyLoad gmem_copy;
    auto thr = gmem_copy.get_thread_slice(tidx);
    Tensor tg = thr.partition_S(g);
    Tensor ts = thr.partition_D(s);
    Tensor tc = thr.partition_S(make_identity_tensor(make_shape(size<0>(s), size<1>(s))));
    load_tile_async<true>(gmem_copy, tg, ts, tc, rows, cols);
}

// Accumulator (C layout of Mma) -> global tile (rows, cols valid) through the shared tile `s`.
template <class T, class Mma, class Acc, class S, class G>
__device__ __forceinline__ void store_acc(Acc const& acc, S& s, G& g, int rows, int cols, int tidx) {
    using namespace cute;
    __syncthreads();  // every warp is done reading `s`
    store_acc_to_smem<T, Mma>(acc, s, tidx);
    __syncthreads();
    typename T::GmemTiledCopyStore gmem_copy;
    auto thr = gmem_copy.get_thread_slice(tidx);
    Tensor ts = thr.partition_S(s);
    Tensor tg = thr.partition_D(g);
    Tensor tr = make_tensor<typename T::Element>(shape(tg));
    copy(gmem_copy, ts, tr);
    Tensor tc = thr.partition_D(make_identity_tensor(make_shape(size<0>(s), size<1>(s))));
    store_tile<true>(gmem_copy, tr, tg, tc, rows, cols);
}

template <class Acc>
__device__ __forceinline__ void scale_acc(Acc& acc, float f) {
    CUTE_UNROLL
    for (int i = 0; i < cute::size(acc); ++i) acc(i) *= f;
}

// dst[0..1] += v0, v1 in fp32 (one vector atomic on sm_90; dst 8-byte aligned).
__device__ __forceinline__ void atomic_add2(float* dst, float v0, float v1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2*>(dst), make_float2(v0, v1));
#else
    atomicAdd(dst, v0);
    atomicAdd(dst + 1, v1);
#endif
}

// The dQ accumulator (BwdParams::dq_acc): offset of the tile holding query rows
// [m0, m0 + kBlockM) of (batch b, q head h). Inside a tile, the fp32 values are stored in the
// order the dK/dV kernel's threads hold them: chunk c (kDQChunk columns) after chunk c-1, and in
// a chunk, value pair j of thread t (the C fragment of MmaDQ, j-th pair of consecutive columns)
// at float offset 2·(j·kNThreads + t). A warp's atomics for one pair index then cover 256
// contiguous bytes (one or two cache lines instead of eight rows' worth).
template <class T>
__device__ __forceinline__ int64_t acc_tile_offset(const BwdParams& p, int b, int h, int m0) {
    return bwd_acc_tile_offset(p, b, h, m0, T::kBlockM, T::kHeadDim);
}
template <class T>
constexpr int kAccPairs = T::kBlockM * T::kDQChunk / T::kNThreads / 2;  // value pairs per thread per chunk

template <DType kDType, int kHdim, MaskKind kMask, bool kDeterministic>
__global__ void __launch_bounds__(BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, kDeterministic}>::kNThreads, 1)
    bwd_v2_dkdv_kernel(const __grid_constant__ BwdParams p) {
    using namespace cute;
    using T       = BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, kDeterministic}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kHeadDim = T::kHeadDim;
    constexpr int kStages  = T::kQStages;
    using MmaDKV = typename T::MmaDKV;
    using MmaDQ  = typename T::MmaDQ;

    extern __shared__ __align__(128) char smem_raw[];
    const BwdSmem<T> sm(smem_raw);
    const int tidx = threadIdx.x;
    const int n_block = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;

    const BwdBlockInfo bk = bwd_block_info(p, b, hk * p.h_ratio);  // K/V side of this kv head
    const int n0 = n_block * kBlockN;
    if (n0 >= bk.sk) return;
    const int n_valid = min(kBlockN, bk.sk - n0);

    // Query blocks [m_begin, m_end) that can see a key of this block (the same for every q head
    // of the group: they share the batch's lengths).
    int m_begin, m_end;
    query_block_range<T::kMasked>(p.mask, n0, n0 + n_valid - 1, bk.sq, bk.sk, kBlockM, &m_begin, &m_end);
    const int m_count = m_end - m_begin;
    const int n_steps = m_count * p.h_ratio;  // (q head, query block) pairs, head-major
    int64_t acc0 = 0;                          // dQ_acc tile of row 0, the group's first q head
    if constexpr (!kDeterministic) acc0 = acc_tile_offset<T>(p, b, hk * p.h_ratio, 0);

    Tensor sK   = make_tensor(make_smem_ptr(sm.k), typename T::SmemLayoutKV{});      // (N, D)
    Tensor sV   = make_tensor(make_smem_ptr(sm.v), typename T::SmemLayoutKV{});      // (N, D)
    Tensor sP   = make_tensor(make_smem_ptr(sm.p), typename T::SmemLayoutP{});       // (M, N)
    Tensor sdS  = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutP{});      // (M, N)
    Tensor sPt  = make_tensor(make_smem_ptr(sm.p), typename T::SmemLayoutPt{});      // (N, M)
    Tensor sdSt = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutPt{});     // (N, M)
    // Non-swizzled views that only shape the register fragments of the transposed operands.
    Tensor fQt = make_tensor(sm.q, typename T::SmemLayoutQtNoSwizzle{});
    Tensor fPt = make_tensor(sm.p, typename T::SmemLayoutPtNoSwizzle{});
    Tensor fKt = make_tensor(sm.k, typename T::SmemLayoutKtChunkNoSwizzle{});

    Tensor mK = gmem_rows<kHeadDim>(static_cast<const Element*>(p.k), bk.k, bk.sk, p.k_row_stride);
    Tensor mV = gmem_rows<kHeadDim>(static_cast<const Element*>(p.v), bk.v, bk.sk, p.v_row_stride);
    Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));  // (N, D)
    Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));  // (N, D)
    load_rows<T>(gK, sK, n_valid, p.hdim_q, tidx);
    load_rows<T>(gV, sV, n_valid, p.hdim_v, tidx);
    cute::cp_async_fence();

    // Step i visits q head hk·h_ratio + i / m_count and query block m_begin + i % m_count. The
    // heads of a group share the batch's lengths and row offsets, so a step only adds head
    // strides to bk's offsets (bk was computed for the group's first q head).
    struct Step {
        int hi, m0;  // q head within the group, first query row
    };
    auto next_step = [&](Step s) {
        s.m0 += kBlockM;
        if (s.m0 >= m_end * kBlockM) {
            s.m0 = m_begin * kBlockM;
            ++s.hi;
        }
        return s;
    };

    // Issues the loads of step s (Q, dO by cp.async into stage `st`; returns the row stats of the
    // thread's row, tidx < kBlockM, to be stored once the stage's previous readers are done).
    auto issue_step = [&](Step s, int st) {
        Tensor mQ  = gmem_rows<kHeadDim>(static_cast<const Element*>(p.q), bk.q + s.hi * p.q_head_stride, bk.sq,
                                         p.q_row_stride);
        Tensor mdO = gmem_rows<kHeadDim>(static_cast<const Element*>(p.dout), bk.dout + s.hi * p.do_head_stride,
                                         bk.sq, p.do_row_stride);
        Tensor sQ  = make_tensor(make_smem_ptr(sm.q + st * T::kQElems), typename T::SmemLayoutQ{});
        Tensor sdO = make_tensor(make_smem_ptr(sm.dout + st * T::kQElems), typename T::SmemLayoutQ{});
        load_rows<T>(local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(s.m0 / kBlockM, 0)), sQ,
                     bk.sq - s.m0, p.hdim_q, tidx);
        load_rows<T>(local_tile(mdO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(s.m0 / kBlockM, 0)), sdO,
                     bk.sq - s.m0, p.hdim_v, tidx);
        cute::cp_async_fence();
        RowStats r{INFINITY, 0.f};
        if (tidx < kBlockM)
            r = fetch_row_stats(p.lse + bk.lse + s.hi * p.lse_head_stride, p.d + bk.d + s.hi * p.d_head_stride,
                                s.m0 + tidx, bk.sq);
        return r;
    };
    auto store_stats = [&](RowStats r, int st) {
        if (tidx < kBlockM) {
            sm.lse2[st * kBlockM + tidx] = r.lse2;
            sm.d[st * kBlockM + tidx]    = r.d;
        }
    };

    MmaDKV mma_kv;
    Tensor acc_dk = partition_fragment_C(mma_kv, Shape<Int<kBlockN>, Int<kHeadDim>>{});  // (MMA, MMA_N, MMA_D)
    Tensor acc_dv = partition_fragment_C(mma_kv, Shape<Int<kBlockN>, Int<kHeadDim>>{});
    clear(acc_dk);
    clear(acc_dv);

    using Plain = typename T::SmemCopyAtom;
    using Trans = typename T::SmemCopyAtomTransposed;
    Step cur{0, m_begin * kBlockM};
    if (n_steps > 0) store_stats(issue_step(cur, 0), 0);
    for (int i = 0; i < n_steps; ++i) {
        const int st = kStages == 2 ? (i & 1) : 0;
        const int m0 = cur.m0;
        if constexpr (kStages == 1) {
            if (i > 0) {
                __syncthreads();  // every warp is done with the previous Q, dO, P, dS, row stats
                store_stats(issue_step(cur, 0), 0);
            }
        }
        cute::cp_async_wait<0>();
        __syncthreads();  // stage st (and K, V) landed for every thread; step i-1 fully done
        const Step nxt = next_step(cur);
        RowStats next{INFINITY, 0.f};
        if constexpr (kStages == 2) {
            if (i + 1 < n_steps) next = issue_step(nxt, st ^ 1);
        }
        Tensor sQ   = make_tensor(make_smem_ptr(sm.q + st * T::kQElems), typename T::SmemLayoutQ{});     // (M, D)
        Tensor sdO  = make_tensor(make_smem_ptr(sm.dout + st * T::kQElems), typename T::SmemLayoutQ{});  // (M, D)
        Tensor sQt  = make_tensor(make_smem_ptr(sm.q + st * T::kQElems), typename T::SmemLayoutQt{});    // (D, M)
        Tensor sdOt = make_tensor(make_smem_ptr(sm.dout + st * T::kQElems), typename T::SmemLayoutQt{}); // (D, M)

        {
            typename T::MmaSdP mma_sdp;
            Tensor acc_p  = partition_fragment_C(mma_sdp, Shape<Int<kBlockM>, Int<kBlockN>>{});  // (MMA, MMA_M, MMA_N)
            Tensor acc_ds = partition_fragment_C(mma_sdp, Shape<Int<kBlockM>, Int<kBlockN>>{});
            compute_p_ds<T>(acc_p, acc_ds, sQ, sK, sdO, sV, sm.lse2 + st * kBlockM, sm.d + st * kBlockM, p.mask, m0,
                            n0, bk.sq, bk.sk, p.scale_log2, tidx);
            store_acc_to_smem<T, typename T::MmaSdP>(acc_p, sP, tidx);
            store_acc_to_smem<T, typename T::MmaSdP>(acc_ds, sdS, tidx);
        }
        __syncthreads();

        gemm_ss<MmaDKV, Trans, Trans>(acc_dv, sPt, sdOt, fPt, fQt, tidx);  // dV += Pᵀ·dO

        if constexpr (!kDeterministic) {
            // dQ_acc[m0 + row, col] += (dS·K)[row, col], unscaled (the convert kernel applies the
            // scale), one column chunk at a time, issued before the dK GEMM so that the atomics
            // drain while it runs. Tile layout: acc_tile_offset (each address is the thread's base
            // plus a compile-time offset). No row checks: the tile exists whole, and rows past sq
            // add exact zeros (P = 0 there, so dS = 0).
            float* acc_thr = p.dq_acc + acc0 + cur.hi * p.acc_head_stride + int64_t(m0) * kHeadDim + 2 * tidx;
            MmaDQ mma_q;
            CUTE_UNROLL
            for (int c = 0; c < kHeadDim / T::kDQChunk; ++c) {
                Tensor sKt = make_tensor(make_smem_ptr(sm.k + c * kBlockN * T::kDQChunk),
                                         typename T::SmemLayoutKtChunk{});  // (Dc, N)
                Tensor acc_dq = partition_fragment_C(mma_q, Shape<Int<kBlockM>, Int<T::kDQChunk>>{});
                clear(acc_dq);
                gemm_ss<MmaDQ, Plain, Trans>(acc_dq, sdS, sKt, sdS, fKt, tidx);
                static_assert(decltype(size<0>(acc_dq))::value % 2 == 0, "C fragment holds column pairs");
                static_assert(int(decltype(size(acc_dq))::value) == 2 * kAccPairs<T>, "fragment size");
                CUTE_UNROLL
                for (int j = 0; j < kAccPairs<T>; ++j)
                    atomic_add2(acc_thr + bwd_acc_pair_offset(c, j, 0, kBlockM * T::kDQChunk, T::kNThreads),
                                acc_dq(2 * j), acc_dq(2 * j + 1));
            }
        }

        gemm_ss<MmaDKV, Trans, Trans>(acc_dk, sdSt, sQt, fPt, fQt, tidx);  // dK += dSᵀ·Q

        if constexpr (kStages == 2) {
            if (i + 1 < n_steps) store_stats(next, st ^ 1);  // stage st^1's stats were last read in step i-1
        }
        cur = nxt;
    }

    // ---- epilogue: dK·scale and dV through shared memory (K's and V's buffers) -------------
    scale_acc(acc_dk, p.scale_s);
    Tensor mdK = gmem_rows<kHeadDim>(static_cast<Element*>(p.dk), bk.dk, bk.sk, p.dk_row_stride);
    Tensor mdV = gmem_rows<kHeadDim>(static_cast<Element*>(p.dv), bk.dv, bk.sk, p.dv_row_stride);
    Tensor gdK = local_tile(mdK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
    Tensor gdV = local_tile(mdV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
    cute::cp_async_wait<0>();  // K/V landed even when no query block was visited
    store_acc<T, MmaDKV>(acc_dk, sK, gdK, n_valid, p.hdim_q, tidx);
    store_acc<T, MmaDKV>(acc_dv, sV, gdV, n_valid, p.hdim_v, tidx);
}

// dQ = scale · dQ_acc for the query rows [m0, m0 + kBlockM) of (batch, q head): each thread
// reads back the value pairs it (or its namesake in the dK/dV kernels) accumulated, coalesced,
// converts them into a shared-memory tile, and the CTA writes the rows < sq, columns < hdim_q
// in 16-byte pieces (hdim_q is a multiple of 8 and dQ rows are 16-byte aligned on this path).
template <DType kDType, int kHdim, MaskKind kMask>
__global__ void __launch_bounds__(BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, false}>::kNThreads)
    bwd_v2_dq_convert_kernel(const __grid_constant__ BwdParams p) {
    using namespace cute;
    using T       = BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, false}>;
    using Element = typename T::Element;
    constexpr int kRow = T::kHeadDim + 8;  // padded row: the pair stores below are conflict-free
    __shared__ __align__(16) Element tile[T::kBlockM * kRow];
    const int tidx = threadIdx.x;
    const int m0 = blockIdx.x * T::kBlockM, h = blockIdx.y, b = blockIdx.z;
    const BwdBlockInfo bq = bwd_block_info(p, b, h);
    if (m0 >= bq.sq) return;
    const float* acc_thr = p.dq_acc + acc_tile_offset<T>(p, b, h, m0) + 2 * tidx;
    typename T::MmaDQ mma;
    Tensor cQ = mma.get_thread_slice(tidx).partition_C(make_identity_tensor(Shape<Int<T::kBlockM>, Int<T::kDQChunk>>{}));
    CUTE_UNROLL
    for (int c = 0; c < T::kHeadDim / T::kDQChunk; ++c) {
        CUTE_UNROLL
        for (int j = 0; j < kAccPairs<T>; ++j) {
            const float2 v = *reinterpret_cast<const float2*>(
                acc_thr + bwd_acc_pair_offset(c, j, 0, T::kBlockM * T::kDQChunk, T::kNThreads));
            const int row = get<0>(cQ(2 * j));
            const int col = c * T::kDQChunk + get<1>(cQ(2 * j));
            cute::array<Element, 2> pair{Element(v.x * p.scale_s), Element(v.y * p.scale_s)};
            *reinterpret_cast<uint32_t*>(&tile[row * kRow + col]) = *reinterpret_cast<const uint32_t*>(pair.data());
        }
    }
    __syncthreads();
    constexpr int kChunks = T::kHeadDim / 8;  // 16-byte pieces per row
    Element* dq = static_cast<Element*>(p.dq) + bq.dq;
    const int rows = min(T::kBlockM, bq.sq - m0);
    for (int i = tidx; i < rows * kChunks; i += T::kNThreads) {
        const int r = i / kChunks, col = (i % kChunks) * 8;
        if (col < p.hdim_q)
            *reinterpret_cast<uint4*>(dq + int64_t(m0 + r) * p.dq_row_stride + col) =
                *reinterpret_cast<const uint4*>(&tile[r * kRow + col]);
    }
}

template <DType kDType, int kHdim, MaskKind kMask>
__global__ void __launch_bounds__(BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, true}>::kNThreads, 1)
    bwd_v2_dq_kernel(const __grid_constant__ BwdParams p) {
    using namespace cute;
    using T       = BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, true}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kHeadDim = T::kHeadDim;

    extern __shared__ __align__(128) char smem_raw[];
    const BwdSmem<T> sm(smem_raw);
    const int tidx = threadIdx.x;
    const int m_block = blockIdx.x, h = blockIdx.y, b = blockIdx.z;

    const BwdBlockInfo bq = bwd_block_info(p, b, h);
    const int m0 = m_block * kBlockM;
    if (m0 >= bq.sq) return;
    const int m_valid = min(kBlockM, bq.sq - m0);

    int n_begin, n_end;
    key_block_range<T::kMasked>(p.mask, m0, m0 + m_valid - 1, bq.sq, bq.sk, kBlockN, &n_begin, &n_end);

    Tensor sQ  = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutQ{});      // (M, D)
    Tensor sdO = make_tensor(make_smem_ptr(sm.dout), typename T::SmemLayoutQ{});   // (M, D)
    Tensor sK  = make_tensor(make_smem_ptr(sm.k), typename T::SmemLayoutKV{});     // (N, D)
    Tensor sV  = make_tensor(make_smem_ptr(sm.v), typename T::SmemLayoutKV{});     // (N, D)
    Tensor sdS = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutP{});     // (M, N)

    Tensor mQ  = gmem_rows<kHeadDim>(static_cast<const Element*>(p.q), bq.q, bq.sq, p.q_row_stride);
    Tensor mdO = gmem_rows<kHeadDim>(static_cast<const Element*>(p.dout), bq.dout, bq.sq, p.do_row_stride);
    Tensor mK  = gmem_rows<kHeadDim>(static_cast<const Element*>(p.k), bq.k, bq.sk, p.k_row_stride);
    Tensor mV  = gmem_rows<kHeadDim>(static_cast<const Element*>(p.v), bq.v, bq.sk, p.v_row_stride);
    Tensor gQ  = local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    Tensor gdO = local_tile(mdO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    load_rows<T>(gQ, sQ, m_valid, p.hdim_q, tidx);
    load_rows<T>(gdO, sdO, m_valid, p.hdim_v, tidx);
    cute::cp_async_fence();
    if (tidx < kBlockM) {
        const RowStats r = fetch_row_stats(p.lse + bq.lse, p.d + bq.d, m0 + tidx, bq.sq);
        sm.lse2[tidx] = r.lse2;
        sm.d[tidx]    = r.d;
    }

    using MmaDQ = typename T::MmaDQ;
    MmaDQ mma;
    Tensor acc_dq = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kHeadDim>>{});  // (MMA, MMA_M, MMA_D)
    clear(acc_dq);
    using Plain = typename T::SmemCopyAtom;
    using Trans = typename T::SmemCopyAtomTransposed;
    for (int n = n_begin; n < n_end; ++n) {
        const int n0 = n * kBlockN;
        __syncthreads();  // every warp is done with the previous K, V, dS
        Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n, 0));
        Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n, 0));
        load_rows<T>(gK, sK, bq.sk - n0, p.hdim_q, tidx);
        load_rows<T>(gV, sV, bq.sk - n0, p.hdim_v, tidx);
        cute::cp_async_fence();
        cute::cp_async_wait<0>();
        __syncthreads();

        {
            typename T::MmaSdP mma_sdp;
            Tensor acc_p  = partition_fragment_C(mma_sdp, Shape<Int<kBlockM>, Int<kBlockN>>{});
            Tensor acc_ds = partition_fragment_C(mma_sdp, Shape<Int<kBlockM>, Int<kBlockN>>{});
            compute_p_ds<T>(acc_p, acc_ds, sQ, sK, sdO, sV, sm.lse2, sm.d, p.mask, m0, n0, bq.sq, bq.sk,
                            p.scale_log2, tidx);
            store_acc_to_smem<T, typename T::MmaSdP>(acc_ds, sdS, tidx);
        }
        __syncthreads();
        CUTE_UNROLL
        for (int c = 0; c < kHeadDim / T::kDQChunk; ++c) {
            Tensor sKt = make_tensor(make_smem_ptr(sm.k + c * kBlockN * T::kDQChunk),
                                     typename T::SmemLayoutKtChunk{});  // (Dc, N)
            Tensor acc_c = make_tensor(acc_dq.data() + c * (size(acc_dq) / (kHeadDim / T::kDQChunk)),
                                       partition_fragment_C(mma, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}).layout());
            gemm_ss<MmaDQ, Plain, Trans>(acc_c, sdS, sKt, sdS, make_tensor(sm.k, typename T::SmemLayoutKtChunkNoSwizzle{}), tidx);
        }
    }

    // ---- epilogue: dQ·scale through Q's buffer -----------------------------------------------
    cute::cp_async_wait<0>();
    scale_acc(acc_dq, p.scale_s);
    Tensor mdQ = gmem_rows<kHeadDim>(static_cast<Element*>(p.dq), bq.dq, bq.sq, p.dq_row_stride);
    Tensor gdQ = local_tile(mdQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    if constexpr (kHeadDim == T::kDQChunk) {
        store_acc<T, MmaDQ>(acc_dq, sQ, gdQ, m_valid, p.hdim_q, tidx);
    } else {
        // The chunks are stored back to back in acc_dq: write each to its column block.
        constexpr int kChunks = kHeadDim / T::kDQChunk;
        CUTE_UNROLL
        for (int c = 0; c < kChunks; ++c) {
            Tensor acc_c = make_tensor(acc_dq.data() + c * (size(acc_dq) / kChunks),
                                       partition_fragment_C(mma, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}).layout());
            Tensor sC = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutQChunk{});  // (M, Dc)
            Tensor gC = local_tile(mdQ, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}, make_coord(m_block, c));
            store_acc<T, MmaDQ>(acc_c, sC, gC, m_valid, p.hdim_q - c * T::kDQChunk, tidx);
        }
    }
}

}  // namespace aiter::bwd
