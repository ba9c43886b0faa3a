// v2 backward attention kernels (CuTe, mma.sync + cp.async; sm_80 and newer).
//
// dK/dV kernel: one CTA per (key block n, kv head, batch). K_n, V_n stay in shared memory; the
// CTA loops over the q heads of its GQA group and, for each, over the query blocks m that can
// see key block n (MaskSpec::row_range):
//   S, P, dP, dS of (m, n)        block_math.cuh
//   dV += Pᵀ·dO ;  dK += dSᵀ·Q    (P and dS pass through shared memory, read transposed)
//   non-deterministic only: dQ_acc[m] += scale · dS·K   (fp32 atomics, in column chunks)
// and finally writes dK·scale and dV (summed over the group's q heads: no atomics).
//
// dQ kernel (deterministic mode): one CTA per (query block m, q head, batch), looping over the
// key blocks it can see in a fixed order: dQ = scale · Σ_n dS(m, n)·K_n, written directly.
//
// Layouts (elements, last dim contiguous, see include/mha_bwd.h): Q, dO (sq, d); K, V (sk, d);
// dQ_acc fp32 (rows, hdim_q) contiguous; LSE, D fp32 (sq). Head dims below the bucket are
// zero-padded on load and never stored. Rows past the logical lengths are zero-filled on load
// and never stored.
#pragma once

#include <cute/tensor.hpp>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"
#include "kernels/bwd_v2/block_math.cuh"
#include "kernels/bwd_v2/traits.cuh"
#include "kernels/fwd_v2/copy.cuh"

namespace aiter::bwd {

// Shared-memory carve-up common to both kernels: Q | dO | K | V | P | dS | LSE2 | D.
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
        dout = q + T::kQElems;
        k    = dout + T::kQElems;
        v    = k + T::kKVElems;
        p    = v + T::kKVElems;
        ds   = p + T::kPElems;
        lse2 = reinterpret_cast<float*>(ds + T::kPElems);
        d    = lse2 + T::kBlockM;
    }
};

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
    fwd::load_tile_async<true>(gmem_copy, tg, ts, tc, rows, cols);
}

// Accumulator (C layout) -> global tile (rows, cols valid) through the shared tile `s`.
template <class T, class Acc, class S, class G>
__device__ __forceinline__ void store_acc(Acc const& acc, S& s, G& g, int rows, int cols, int tidx) {
    using namespace cute;
    __syncthreads();  // every warp is done reading `s`
    store_acc_to_smem<T>(acc, s, tidx);
    __syncthreads();
    typename T::GmemTiledCopyStore gmem_copy;
    auto thr = gmem_copy.get_thread_slice(tidx);
    Tensor ts = thr.partition_S(s);
    Tensor tg = thr.partition_D(g);
    Tensor tr = make_tensor<typename T::Element>(shape(tg));
    copy(gmem_copy, ts, tr);
    Tensor tc = thr.partition_D(make_identity_tensor(make_shape(size<0>(s), size<1>(s))));
    fwd::store_tile<true>(gmem_copy, tr, tg, tc, rows, cols);
}

template <class T, class Acc>
__device__ __forceinline__ void scale_acc(Acc& acc, float f) {
    CUTE_UNROLL
    for (int i = 0; i < cute::size(acc); ++i) acc(i) *= f;
}

template <DType kDType, int kHdim, MaskKind kMask, bool kDeterministic>
__global__ void __launch_bounds__(BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, kDeterministic}>::kNThreads, 1)
    bwd_v2_dkdv_kernel(const __grid_constant__ BwdParams p) {
    using namespace cute;
    using T       = BwdV2Traits<BwdV2Key{kDType, kHdim, kMask, kDeterministic}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kHeadDim = T::kHeadDim;

    extern __shared__ __align__(128) char smem_raw[];
    const BwdSmem<T> sm(smem_raw);
    const int tidx = threadIdx.x;
    const int n_block = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;

    const BwdBlockInfo bk = bwd_block_info(p, b, hk * p.h_ratio);  // K/V side of this kv head
    const int n0 = n_block * kBlockN;
    if (n0 >= bk.sk) return;
    const int n_valid = min(kBlockN, bk.sk - n0);

    // Query blocks [m_begin, m_end) that can see a key of this block.
    int m_begin = 0, m_end = (bk.sq + kBlockM - 1) / kBlockM;
    if constexpr (T::kMasked) {
        int64_t lo, hi;
        p.mask.row_range(n0, n0 + n_valid, bk.sq, bk.sk, &lo, &hi);
        m_begin = lo < hi ? int(lo / kBlockM) : 0;
        m_end   = lo < hi ? int((hi + kBlockM - 1) / kBlockM) : 0;
    }

    Tensor sQ   = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutQ{});       // (M, D)
    Tensor sdO  = make_tensor(make_smem_ptr(sm.dout), typename T::SmemLayoutQ{});    // (M, D)
    Tensor sK   = make_tensor(make_smem_ptr(sm.k), typename T::SmemLayoutKV{});      // (N, D)
    Tensor sV   = make_tensor(make_smem_ptr(sm.v), typename T::SmemLayoutKV{});      // (N, D)
    Tensor sP   = make_tensor(make_smem_ptr(sm.p), typename T::SmemLayoutP{});       // (M, N)
    Tensor sdS  = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutP{});      // (M, N)
    Tensor sQt  = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutQt{});      // (D, M)
    Tensor sdOt = make_tensor(make_smem_ptr(sm.dout), typename T::SmemLayoutQt{});   // (D, M)
    Tensor sPt  = make_tensor(make_smem_ptr(sm.p), typename T::SmemLayoutPt{});      // (N, M)
    Tensor sdSt = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutPt{});     // (N, M)
    // Non-swizzled views that only shape the register fragments of the transposed operands.
    Tensor fQt = make_tensor(sm.q, typename T::SmemLayoutQtNoSwizzle{});
    Tensor fPt = make_tensor(sm.p, typename T::SmemLayoutPtNoSwizzle{});

    Tensor mK = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.k) + bk.k),
                            make_shape(bk.sk, Int<kHeadDim>{}), make_stride(p.k_row_stride, _1{}));
    Tensor mV = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.v) + bk.v),
                            make_shape(bk.sk, Int<kHeadDim>{}), make_stride(p.v_row_stride, _1{}));
    Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));  // (N, D)
    Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));  // (N, D)
    load_rows<T>(gK, sK, n_valid, p.hdim_q, tidx);
    load_rows<T>(gV, sV, n_valid, p.hdim_v, tidx);
    cute::cp_async_fence();

    typename T::TiledMma mma;
    Tensor acc_dk = partition_fragment_C(mma, Shape<Int<kBlockN>, Int<kHeadDim>>{});  // (MMA, MMA_N, MMA_D)
    Tensor acc_dv = partition_fragment_C(mma, Shape<Int<kBlockN>, Int<kHeadDim>>{});
    clear(acc_dk);
    clear(acc_dv);

    using Plain = typename T::SmemCopyAtom;
    using Trans = typename T::SmemCopyAtomTransposed;
    for (int r = 0; r < p.h_ratio; ++r) {
        const int h = hk * p.h_ratio + r;
        const BwdBlockInfo bq = bwd_block_info(p, b, h);
        Tensor mQ  = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.q) + bq.q),
                                 make_shape(bq.sq, Int<kHeadDim>{}), make_stride(p.q_row_stride, _1{}));
        Tensor mdO = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.dout) + bq.dout),
                                 make_shape(bq.sq, Int<kHeadDim>{}), make_stride(p.do_row_stride, _1{}));
        for (int m_block = m_begin; m_block < m_end; ++m_block) {
            const int m0 = m_block * kBlockM;
            __syncthreads();  // every warp is done with the previous Q, dO, P, dS, row stats
            Tensor gQ  = local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
            Tensor gdO = local_tile(mdO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
            load_rows<T>(gQ, sQ, bq.sq - m0, p.hdim_q, tidx);
            load_rows<T>(gdO, sdO, bq.sq - m0, p.hdim_v, tidx);
            cute::cp_async_fence();
            load_row_stats(sm.lse2, sm.d, p.lse + bq.lse, p.d + bq.lse, m0, bq.sq, kBlockM, tidx);
            cute::cp_async_wait<0>();
            __syncthreads();

            Tensor acc_p  = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kBlockN>>{});  // (MMA, MMA_M, MMA_N)
            Tensor acc_ds = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kBlockN>>{});
            compute_p_ds<T>(acc_p, acc_ds, sQ, sK, sdO, sV, sm.lse2, sm.d, p.mask, m0, n0, bq.sq, bk.sk,
                            p.scale_log2, tidx);
            store_acc_to_smem<T>(acc_p, sP, tidx);
            store_acc_to_smem<T>(acc_ds, sdS, tidx);
            __syncthreads();

            gemm_ss<T, Trans, Trans>(acc_dv, sPt, sdOt, fPt, fQt, tidx);  // dV += Pᵀ·dO
            gemm_ss<T, Trans, Trans>(acc_dk, sdSt, sQt, fPt, fQt, tidx);  // dK += dSᵀ·Q

            if constexpr (!kDeterministic) {
                // dQ_acc[m0 + row, col] += scale · (dS·K)[row, col], one column chunk at a time.
                float* acc_base = p.dq_acc + bq.acc;
                auto thr_mma    = mma.get_thread_slice(tidx);
                Tensor cQ       = thr_mma.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<T::kDQChunk>>{}));
                CUTE_UNROLL
                for (int c = 0; c < kHeadDim / T::kDQChunk; ++c) {
                    Tensor sKt = make_tensor(make_smem_ptr(sm.k + c * kBlockN * T::kDQChunk),
                                             typename T::SmemLayoutKtChunk{});  // (Dc, N)
                    Tensor acc_dq = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<T::kDQChunk>>{});
                    clear(acc_dq);
                    gemm_ss<T, Plain, Trans>(acc_dq, sdS, sKt, sdS, make_tensor(sm.k, typename T::SmemLayoutKtChunkNoSwizzle{}), tidx);
                    CUTE_UNROLL
                    for (int i = 0; i < size(acc_dq); ++i) {
                        const int row = m0 + get<0>(cQ(i));
                        const int col = c * T::kDQChunk + get<1>(cQ(i));
                        if (row < bq.sq && col < p.hdim_q)
                            atomicAdd(acc_base + int64_t(row) * p.hdim_q + col, acc_dq(i) * p.scale);
                    }
                }
            }
        }
    }

    // ---- epilogue: dK·scale and dV through shared memory (K's and V's buffers) -------------
    scale_acc<T>(acc_dk, p.scale);
    Tensor mdK = make_tensor(make_gmem_ptr(static_cast<Element*>(p.dk) + bk.dk),
                             make_shape(bk.sk, Int<kHeadDim>{}), make_stride(p.dk_row_stride, _1{}));
    Tensor mdV = make_tensor(make_gmem_ptr(static_cast<Element*>(p.dv) + bk.dv),
                             make_shape(bk.sk, Int<kHeadDim>{}), make_stride(p.dv_row_stride, _1{}));
    Tensor gdK = local_tile(mdK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
    Tensor gdV = local_tile(mdV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(n_block, 0));
    cute::cp_async_wait<0>();  // K/V landed even when no query block was visited
    store_acc<T>(acc_dk, sK, gdK, n_valid, p.hdim_q, tidx);
    store_acc<T>(acc_dv, sV, gdV, n_valid, p.hdim_v, tidx);
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

    int n_begin = 0, n_end = (bq.sk + kBlockN - 1) / kBlockN;
    if constexpr (T::kMasked) {
        int64_t lo, hi;
        p.mask.key_range(m0, m0 + m_valid, bq.sq, bq.sk, &lo, &hi);
        n_begin = lo < hi ? int(lo / kBlockN) : 0;
        n_end   = lo < hi ? int((hi + kBlockN - 1) / kBlockN) : 0;
    }

    Tensor sQ  = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutQ{});      // (M, D)
    Tensor sdO = make_tensor(make_smem_ptr(sm.dout), typename T::SmemLayoutQ{});   // (M, D)
    Tensor sK  = make_tensor(make_smem_ptr(sm.k), typename T::SmemLayoutKV{});     // (N, D)
    Tensor sV  = make_tensor(make_smem_ptr(sm.v), typename T::SmemLayoutKV{});     // (N, D)
    Tensor sdS = make_tensor(make_smem_ptr(sm.ds), typename T::SmemLayoutP{});     // (M, N)

    Tensor mQ  = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.q) + bq.q),
                             make_shape(bq.sq, Int<kHeadDim>{}), make_stride(p.q_row_stride, _1{}));
    Tensor mdO = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.dout) + bq.dout),
                             make_shape(bq.sq, Int<kHeadDim>{}), make_stride(p.do_row_stride, _1{}));
    Tensor mK  = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.k) + bq.k),
                             make_shape(bq.sk, Int<kHeadDim>{}), make_stride(p.k_row_stride, _1{}));
    Tensor mV  = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.v) + bq.v),
                             make_shape(bq.sk, Int<kHeadDim>{}), make_stride(p.v_row_stride, _1{}));
    Tensor gQ  = local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    Tensor gdO = local_tile(mdO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    load_rows<T>(gQ, sQ, m_valid, p.hdim_q, tidx);
    load_rows<T>(gdO, sdO, m_valid, p.hdim_v, tidx);
    cute::cp_async_fence();
    load_row_stats(sm.lse2, sm.d, p.lse + bq.lse, p.d + bq.lse, m0, bq.sq, kBlockM, tidx);

    typename T::TiledMma mma;
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

        Tensor acc_p  = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kBlockN>>{});
        Tensor acc_ds = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kBlockN>>{});
        compute_p_ds<T>(acc_p, acc_ds, sQ, sK, sdO, sV, sm.lse2, sm.d, p.mask, m0, n0, bq.sq, bq.sk,
                        p.scale_log2, tidx);
        store_acc_to_smem<T>(acc_ds, sdS, tidx);
        __syncthreads();
        CUTE_UNROLL
        for (int c = 0; c < kHeadDim / T::kDQChunk; ++c) {
            Tensor sKt = make_tensor(make_smem_ptr(sm.k + c * kBlockN * T::kDQChunk),
                                     typename T::SmemLayoutKtChunk{});  // (Dc, N)
            Tensor acc_c = make_tensor(acc_dq.data() + c * (size(acc_dq) / (kHeadDim / T::kDQChunk)),
                                       partition_fragment_C(mma, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}).layout());
            gemm_ss<T, Plain, Trans>(acc_c, sdS, sKt, sdS, make_tensor(sm.k, typename T::SmemLayoutKtChunkNoSwizzle{}), tidx);
        }
    }

    // ---- epilogue: dQ·scale through Q's buffer -----------------------------------------------
    cute::cp_async_wait<0>();
    scale_acc<T>(acc_dq, p.scale);
    Tensor mdQ = make_tensor(make_gmem_ptr(static_cast<Element*>(p.dq) + bq.dq),
                             make_shape(bq.sq, Int<kHeadDim>{}), make_stride(p.dq_row_stride, _1{}));
    Tensor gdQ = local_tile(mdQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));
    if constexpr (kHeadDim == T::kDQChunk) {
        store_acc<T>(acc_dq, sQ, gdQ, m_valid, p.hdim_q, tidx);
    } else {
        // The chunks are stored back to back in acc_dq: write each to its column block.
        constexpr int kChunks = kHeadDim / T::kDQChunk;
        CUTE_UNROLL
        for (int c = 0; c < kChunks; ++c) {
            Tensor acc_c = make_tensor(acc_dq.data() + c * (size(acc_dq) / kChunks),
                                       partition_fragment_C(mma, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}).layout());
            Tensor sC = make_tensor(make_smem_ptr(sm.q), typename T::SmemLayoutKChunk{});  // (64, Dc)
            Tensor gC = local_tile(mdQ, Shape<Int<kBlockM>, Int<T::kDQChunk>>{}, make_coord(m_block, c));
            store_acc<T>(acc_c, sC, gC, m_valid, p.hdim_q - c * T::kDQChunk, tidx);
        }
    }
}

}  // namespace aiter::bwd
