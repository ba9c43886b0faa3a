// Split-KV forward kernel for decode and KV-cache attention (CuTe mma.sync + cp.async, sm_80+).
//
// CTA (m_block, split) x kv head hk x batch b. Its 16 rows are packed query rows: packed row
// R = i * ratio + g is query row i of q head hk * ratio + g (ratio = nhead_q / nhead_k), so the
// q heads sharing a kv head share one read of K and V. The key tiles the rows can see (mask)
// are divided among the splits; this CTA walks its tiles t (block_n keys each) in order with a
// kStages-deep cp.async pipeline. Warp w takes keys [w*kWarpN, (w+1)*kWarpN) of every tile:
//   S_w = Q · K_wᵀ  (16 x kWarpN, fp32) ; softcap ; mask ; online softmax (m_w, l_w) ;
//   O_w += P_w · V_w                                   (kernels/common: softmax, gemm_sm80)
// and at the end the warps merge through shared memory:
//   M = max_w m_w ;  L = Σ_w l_w 2^{(m_w - M)c} ;  O = Σ_w O_w 2^{(m_w - M)c} / L ;
//   LSE = (M c + log2 L) ln 2   (−inf and O = 0 when no key was visible)
// One split: O (input type) and LSE go to their tensors. Several: fp32 O and LSE go to the
// o_acc / lse_acc workspaces and combine.cuh merges the splits.
//
// Layouts: see include/mha_fwd_splitkv.h. K/V rows are gathered row by row (gather.cuh):
// contiguous, paged (block_table), or from cache batch cache_batch_idx[b].
#pragma once

#include <cute/tensor.hpp>

#include "fwd/splitkv_key.h"
#include "kernels/fwd_splitkv/gather.cuh"
#include "kernels/fwd_splitkv/traits.cuh"
#include "kernels/common/block_info.cuh"
#include "kernels/common/fragment.cuh"
#include "kernels/common/gemm_sm80.cuh"
#include "kernels/common/mask_apply.cuh"
#include "kernels/common/softmax.cuh"

namespace aiter::fwd {

// Programmatic dependent launch (sm_90+; no-ops elsewhere and when the dependent kernel was
// launched normally): the split kernel lets the combine kernel be scheduled early, and the
// combine kernel waits until the split kernel has finished and its writes are visible.
__device__ __forceinline__ void splitkv_allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void splitkv_wait_for_primary() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Logical lengths of batch b (batch mode): sq from cu_seqlen_q, sk from seqlen_k_ptr /
// cu_seqlen_k, each clamped to the physical (capacity) length: the rule of
// kernels/common/block_info.cuh (batch_rows), written out here because through declared_len
// nvcc scheduled this kernel differently.
__device__ __forceinline__ void splitkv_lengths(const FwdParams& f, int b, int* sq, int* sk) {
    const int q = f.cu_seqlen_q ? f.cu_seqlen_q[b + 1] - f.cu_seqlen_q[b] : f.seqlen_q;
    const int k = f.seqlen_k_ptr ? f.seqlen_k_ptr[b] : f.cu_seqlen_k ? f.cu_seqlen_k[b + 1] - f.cu_seqlen_k[b] : f.seqlen_k;
    *sq = clamp_len(q, f.seqlen_q);
    *sk = clamp_len(k, f.seqlen_k);
}

template <DType kDType, int kHdim, MaskKind kMask, bool kDeep>
__global__ void __launch_bounds__(SplitkvTraits<SplitkvKey{kDType, kHdim, kMask, kDeep}>::kNThreads)
    fwd_splitkv_kernel(const __grid_constant__ SplitkvParams p) {
    using namespace cute;
    using T       = SplitkvTraits<SplitkvKey{kDType, kHdim, kMask, kDeep}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kWarpN   = T::kWarpN;
    constexpr int kHeadDim = T::kHeadDim;
    constexpr int kStages  = T::kStages;
    constexpr int kThreads = T::kNThreads;
    const FwdParams& f     = p;

    extern __shared__ __align__(128) char smem[];
    splitkv_allow_dependents();  // the combine kernel (if any) waits for this grid to finish anyway
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int split = blockIdx.x % p.num_splits, m_block = blockIdx.x / p.num_splits;
    const int hk = blockIdx.y, b = blockIdx.z;
    const int ratio = f.h_ratio;

    int sq, sk;
    splitkv_lengths(f, b, &sq, &sk);
    const int rows = sq * ratio;  // packed rows of this (batch, kv head)
    const int m0   = m_block * kBlockM;
    if (m0 >= rows) return;
    const int rows_here = min(kBlockM, rows - m0);

    // ---- key tiles of this split --------------------------------------------------------
    int64_t key_lo = 0, key_hi = sk;
    if constexpr (T::kMasked) f.mask.key_range(m0 / ratio, (m0 + rows_here - 1) / ratio + 1, sq, sk, &key_lo, &key_hi);
    int t_begin = 0, t_end = 0;
    if (key_lo < key_hi) {
        const int first = int(key_lo / kBlockN), last = int((key_hi + kBlockN - 1) / kBlockN);
        const int per   = (last - first + p.num_splits - 1) / p.num_splits;
        t_begin = min(first + split * per, last);
        t_end   = min(t_begin + per, last);
    }

    // ---- where rows live ------------------------------------------------------------------
    const Element* q_base = static_cast<const Element*>(f.q) + b * f.q_batch_stride;
    auto q_row = [&](int r) {  // packed row m0 + r
        const int R = m0 + r;
        return q_base + int64_t(hk * ratio + R % ratio) * f.q_head_stride + int64_t(R / ratio) * f.q_row_stride;
    };
    // Cache indices from the caller's device arrays are clamped into the cache (host doc:
    // include/mha_fwd_splitkv.h), so that a bad entry can never reach outside it.
    const int kb = p.cache_batch_idx ? min(max(p.cache_batch_idx[b], 0), p.num_cache_batches - 1) : b;
    const Element* k_ptr = static_cast<const Element*>(f.k);
    const Element* v_ptr = static_cast<const Element*>(f.v);
    const int* pages     = p.block_table ? p.block_table + kb * p.block_table_batch_stride : nullptr;
    const int64_t k_head = hk * f.k_head_stride, v_head = hk * f.v_head_stride;
    const int64_t k_seq  = pages ? 0 : kb * f.k_batch_stride;
    const int64_t v_seq  = pages ? 0 : kb * f.v_batch_stride;
    const int page_mask  = (1 << p.page_log2) - 1;
    // Paged: the block-table entries of a tile are loaded one tile ahead (fetch_pages(t) right
    // after tile t-1's copies are issued), so the copy of tile t does not wait on a table read:
    // the read's latency hides behind one tile's math. Pages hold >= 16 rows (host check), so one
    // entry per 16-row group of the tile: page_id[g] for rows [16g, 16g + 16). Each thread's rows
    // and so their groups are known at compile time (gather_kv_paged_async): the array stays in
    // registers. Groups at or past sk read nothing: the table may end there.
    static_assert(kBlockN % 16 == 0, "whole 16-row page groups per tile");
    int page_id[kBlockN / 16];
    auto fetch_pages = [&](int t) {
        if (!pages) return;
        CUTE_UNROLL
        for (int g = 0; g < kBlockN / 16; ++g) {
            const int j = t * kBlockN + 16 * g;
            page_id[g]  = j < sk ? min(max(__ldg(pages + (j >> p.page_log2)), 0), p.num_pages - 1) : 0;
        }
    };

    // ---- shared memory: Q | stages x (K | V) -------------------------------------------------
    Element* sQ_ptr = reinterpret_cast<Element*>(smem);
    Tensor sQ = make_tensor(make_smem_ptr(sQ_ptr), typename T::SmemLayoutQ{});  // (M, D)
    auto sK_at = [&](int stage) {
        return make_tensor(make_smem_ptr(sQ_ptr + T::kSmemQElems + stage * 2 * T::kSmemKVElems),
                           typename T::SmemLayoutKV{});  // (N, D)
    };
    auto sV_at = [&](int stage) {
        return make_tensor(make_smem_ptr(sQ_ptr + T::kSmemQElems + stage * 2 * T::kSmemKVElems + T::kSmemKVElems),
                           typename T::SmemLayoutKV{});  // (N, D)
    };
    // Copies tile t (its page ids must be in page_id), then fetches tile t+1's page ids. Tiles
    // are loaded in order t_begin, t_begin+1, ...
    auto load_kv = [&](int t, int stage) {
        const int n0 = t * kBlockN;
        Tensor sK = sK_at(stage);
        Tensor sV = sV_at(stage);
        if (pages) {
            gather_kv_paged_async<kThreads>(sK, k_ptr + k_head, page_id, f.k_batch_stride, f.k_row_stride, n0, page_mask,
                                            sk - n0, f.hdim_q, tid);
            gather_kv_paged_async<kThreads>(sV, v_ptr + v_head, page_id, f.v_batch_stride, f.v_row_stride, n0, page_mask,
                                            sk - n0, f.hdim_v, tid);
        } else {
            gather_kv_strided_async<kThreads>(sK, k_ptr + k_head + k_seq + int64_t(n0) * f.k_row_stride, f.k_row_stride,
                                              sk - n0, f.hdim_q, tid);
            gather_kv_strided_async<kThreads>(sV, v_ptr + v_head + v_seq + int64_t(n0) * f.v_row_stride, f.v_row_stride,
                                              sk - n0, f.hdim_v, tid);
        }
        if (t + 1 < t_end) fetch_pages(t + 1);
    };

    // ---- per-warp MMA partitions ------------------------------------------------------------
    typename T::WarpMma mma;
    auto thr_mma = mma.get_thread_slice(lane);
    Tensor tSrQ  = thr_mma.partition_fragment_A(sQ);  // (MMA, 1, D/16)
    Tensor sK0   = local_tile(sK_at(0), Shape<Int<kWarpN>, Int<kHeadDim>>{}, make_coord(warp, 0));  // (kWarpN, D)
    Tensor tSrK  = thr_mma.partition_fragment_B(sK0);  // (MMA, kWarpN/8, D/16)
    Tensor sVtPlain = make_tensor(make_smem_ptr(sQ_ptr),
                                  make_layout(Shape<Int<kHeadDim>, Int<kWarpN>>{}));  // shape only
    Tensor tOrVt = thr_mma.partition_fragment_B(sVtPlain);  // (MMA, D/8, kWarpN/16)
    Tensor acc_o = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kHeadDim>>{});  // (MMA, 1, D/8)
    clear(acc_o);

    auto smem_copy_Q = make_tiled_copy_A(typename T::Atoms::SmemCopyAtom{}, mma);
    auto smem_thr_Q  = smem_copy_Q.get_thread_slice(lane);
    Tensor tSsQ      = smem_thr_Q.partition_S(sQ);
    auto smem_copy_K = make_tiled_copy_B(typename T::Atoms::SmemCopyAtom{}, mma);
    auto smem_thr_K  = smem_copy_K.get_thread_slice(lane);
    auto smem_copy_V = make_tiled_copy_B(typename T::Atoms::SmemCopyAtomTransposed{}, mma);
    auto smem_thr_V  = smem_copy_V.get_thread_slice(lane);

    Tensor tScS    = thr_mma.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kWarpN>>{}));
    Tensor tScS_rc = make_tensor(tScS.data(), acc_rowcol(tScS.layout()));  // (rows, cols) -> (r, c)
    Tensor acc_o_rc = make_tensor(acc_o.data(), acc_rowcol(acc_o.layout()));  // (rows, D)
    constexpr int kRows = decltype(size<0>(acc_o_rc))::value;
    OnlineSoftmax<kRows> softmax;

    const bool use_softcap     = f.softcap > 0.f;
    const float scale_over_cap = use_softcap ? f.scale_s / f.softcap : 0.f;

    // Visible key interval [lo, hi) of each of this thread's rows.
    int row_lo[kRows], row_hi[kRows];
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
        const int R = m0 + get<0>(tScS_rc(r, 0));
        int64_t lo = 0, hi = sk;
        if constexpr (T::kMasked) f.mask.key_range(R / ratio, R / ratio + 1, sq, sk, &lo, &hi);
        row_lo[r] = int(lo);
        row_hi[r] = R < rows ? int(hi) : 0;  // padding rows see nothing (never stored)
    }

    if (t_begin < t_end) {
        gather_rows_async<kThreads>(sQ, q_row, rows_here, f.hdim_q, f.q, tid);
        fetch_pages(t_begin);
        CUTE_UNROLL
        for (int s = 0; s < kStages - 1; ++s) {
            if (t_begin + s < t_end) load_kv(t_begin + s, s);
            cute::cp_async_fence();
        }
        for (int t = t_begin; t < t_end; ++t) {
            const int it = t - t_begin;
            cute::cp_async_wait<kStages - 2>();
            __syncthreads();  // tile t landed; every warp is done with the stage refilled next
            if (t + kStages - 1 < t_end) load_kv(t + kStages - 1, (it + kStages - 1) % kStages);
            cute::cp_async_fence();

            const int stage = it % kStages;
            Tensor sKw  = local_tile(sK_at(stage), Shape<Int<kWarpN>, Int<kHeadDim>>{}, make_coord(warp, 0));  // (kWarpN, D)
            Tensor sVt  = make_tensor(sV_at(stage).data(), typename T::SmemLayoutVt{});                          // (D, N)
            Tensor sVtw = local_tile(sVt, Shape<Int<kHeadDim>, Int<kWarpN>>{}, make_coord(0, warp));            // (D, kWarpN)
            Tensor tSsK  = smem_thr_K.partition_S(sKw);
            Tensor tOsVt = smem_thr_V.partition_S(sVtw);

            Tensor acc_s = partition_fragment_C(mma, Shape<Int<kBlockM>, Int<kWarpN>>{});  // (MMA, 1, kWarpN/8)
            clear(acc_s);
            gemm_smem_smem(acc_s, tSrQ, tSrK, tSsQ, tSsK, mma, smem_copy_Q, smem_copy_K, smem_thr_Q, smem_thr_K);

            Tensor s = make_tensor(acc_s.data(), acc_rowcol(acc_s.layout()));  // (rows, cols)
            if (use_softcap) apply_softcap(s, scale_over_cap, f.softcap);
            const int j0 = t * kBlockN + warp * kWarpN;  // first key of this warp's slice
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) {
                const int lo = row_lo[r] - j0, hi = row_hi[r] - j0;
                CUTE_UNROLL
                for (int c = 0; c < size<1>(s); ++c) {
                    const int col = get<1>(tScS_rc(r, c));
                    if (col < lo || col >= hi) s(r, c) = -INFINITY;
                }
            }
            softmax.update(s, acc_o_rc, f.scale_log2);

            Tensor rP = make_tensor_like<Element>(acc_s);
            convert_fragment(rP, acc_s);
            Tensor tOrP = make_tensor(rP.data(), acc_as_a_operand(rP.layout()));
            gemm_reg_smem(acc_o, tOrP, tOrVt, tOsVt, mma, smem_copy_V, smem_thr_V);
        }
        cute::cp_async_wait<0>();
    }
    __syncthreads();  // every warp is done with the K/V stages: reuse them for the merge

    // ---- merge the warps: shared O_w [warps][M][D], m_w and l_w [warps][M] --------------------
    float* sO   = reinterpret_cast<float*>(smem);
    float* sMax = sO + T::kNWarps * kBlockM * kHeadDim;
    float* sSum = sMax + T::kNWarps * kBlockM;
    Tensor tOcO    = thr_mma.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kHeadDim>>{}));
    Tensor tOcO_rc = make_tensor(tOcO.data(), acc_rowcol(tOcO.layout()));
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
        const int row = get<0>(tOcO_rc(r, 0));
        const float l = quad_sum(softmax.row_sum[r]);
        if (lane % 4 == 0) {
            sMax[warp * kBlockM + row] = softmax.row_max[r];
            sSum[warp * kBlockM + row] = l;
        }
        CUTE_UNROLL
        for (int c = 0; c < size<1>(acc_o_rc); ++c)
            sO[(warp * kBlockM + row) * kHeadDim + get<1>(tOcO_rc(r, c))] = acc_o_rc(r, c);
    }
    __syncthreads();

    const bool direct = p.num_splits == 1;
    constexpr float kLn2 = 0.69314718055994530942f;
    constexpr int kVec = 4;  // fp32 columns per store
    for (int e = tid; e < kBlockM * (kHeadDim / kVec); e += kThreads) {
        const int row = e / (kHeadDim / kVec), col = (e % (kHeadDim / kVec)) * kVec;
        if (row >= rows_here || col >= f.hdim_v) continue;
        float m = -INFINITY;
        CUTE_UNROLL
        for (int w = 0; w < T::kNWarps; ++w) m = fmaxf(m, sMax[w * kBlockM + row]);
        float l = 0.f, o[kVec] = {0.f, 0.f, 0.f, 0.f};
        CUTE_UNROLL
        for (int w = 0; w < T::kNWarps; ++w) {
            const float mw = sMax[w * kBlockM + row];
            if (mw == -INFINITY) continue;
            const float scale = fast_exp2((mw - m) * f.scale_log2);
            l += sSum[w * kBlockM + row] * scale;
            CUTE_UNROLL
            for (int v = 0; v < kVec; ++v) o[v] += sO[(w * kBlockM + row) * kHeadDim + col + v] * scale;
        }
        const bool empty = !(l > 0.f);
        const float inv  = empty ? 0.f : 1.f / l;
        const float lse  = empty ? -INFINITY : (m * f.scale_log2 + __log2f(l)) * kLn2;
        const int R = m0 + row, h = hk * ratio + R % ratio, i = R / ratio;
        if (direct) {
            Element* dst = static_cast<Element*>(f.o) + b * f.o_batch_stride + h * f.o_head_stride +
                           int64_t(i) * f.o_row_stride + col;
            Tensor out = make_tensor<Element>(Shape<Int<kVec>>{});
            CUTE_UNROLL
            for (int v = 0; v < kVec; ++v) out(v) = Element(o[v] * inv);
            *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(out.data());
            if (f.lse != nullptr && col == 0) f.lse[b * f.lse_batch_stride + h * f.lse_head_stride + i] = lse;
        } else {
            float* dst = p.o_acc + split * p.o_acc_split_stride + b * p.o_acc_batch_stride + h * p.o_acc_head_stride +
                         int64_t(i) * p.o_acc_row_stride + col;
            *reinterpret_cast<float4*>(dst) = make_float4(o[0] * inv, o[1] * inv, o[2] * inv, o[3] * inv);
            if (col == 0)
                p.lse_acc[split * p.lse_acc_split_stride + b * p.lse_acc_batch_stride + h * p.lse_acc_head_stride + i] = lse;
        }
    }
}

}  // namespace aiter::fwd
