// v2 forward attention kernel (CuTe, mma.sync + cp.async; sm_80 and newer).
//
// One CTA computes rows [m0, m0 + kBlockM) of one (batch, q head):
//   S_j = Q · K_jᵀ                      (kBlockM × kBlockN, fp32, per key block j)
//   S_j = softcap(scale_s · S_j)        (optional) ; masked entries = −inf
//   online softmax over j (softmax.cuh) ; O += P_j · V_j  (P_j rounded to the input type)
//   O /= l ; LSE = m + ln l             (epilogue, through shared memory)
// Key blocks are visited from the last to the first, so that the blocks that need masking
// (the partial tail, the causal diagonal) come first. K_j and V_j each have one shared buffer:
// V_j streams in during Q·K_jᵀ, K_{j−1} during softmax and P·V_j.
//
// Layouts (elements, last dim contiguous, see include/mha_fwd.h):
//   Q (sq, dq) rows q_row_stride apart; K (sk, dq); V (sk, dv); O (sq, dv); LSE (sq) fp32.
#pragma once

#include <cute/tensor.hpp>

#include "fwd/fwd_key.h"
#include "fwd/fwd_params.h"
#include "kernels/common/block_info.cuh"
#include "kernels/common/block_range.cuh"
#include "kernels/common/epilogue.cuh"
#include "kernels/common/fragment.cuh"
#include "kernels/common/gemm_sm80.cuh"
#include "kernels/common/mask_apply.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tile_copy.cuh"
#include "kernels/common/tile_order.cuh"
#include "kernels/fwd_v2/traits.cuh"

namespace aiter::fwd {

// The kernel takes the key's fields as separate template arguments: nvcc's host stubs cannot
// spell class-type template arguments of __global__ functions.
template <DType kDType, int kHdim, MaskKind kMask, bool kAligned>
__global__ void __launch_bounds__(FwdV2Traits<FwdV2Key{kDType, kHdim, kMask, kAligned}>::kNThreads, 1)
    fwd_v2_kernel(const __grid_constant__ FwdParams p) {
    using namespace cute;
    using T       = FwdV2Traits<FwdV2Key{kDType, kHdim, kMask, kAligned}>;
    using Element = typename T::Element;
    constexpr int kBlockM  = T::kBlockM;
    constexpr int kBlockN  = T::kBlockN;
    constexpr int kHeadDim = T::kHeadDim;

    extern __shared__ __align__(128) char smem[];
    const int tidx    = threadIdx.x;
    int m_block, h, b;
    tile_coords<T::kMasked>(p.tile_section, &m_block, &h, &b);

    const BlockInfo bi = block_info(p, b, h);
    const int m0 = m_block * kBlockM;
    if (m0 >= bi.sq) return;
    const int m_last = min(m0 + kBlockM, bi.sq) - 1;

    int n_begin, n_end;  // key blocks that any row of this CTA can see
    key_block_range<T::kMasked>(p.mask, m0, m_last, bi.sq, bi.sk, kBlockN, &n_begin, &n_end);

    // ---- global tensors --------------------------------------------------------------
    Tensor mQ = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.q) + bi.q_offset),
                            make_shape(bi.sq, Int<kHeadDim>{}), make_stride(p.q_row_stride, _1{}));
    Tensor mK = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.k) + bi.k_offset),
                            make_shape(bi.sk, Int<kHeadDim>{}), make_stride(p.k_row_stride, _1{}));
    Tensor mV = make_tensor(make_gmem_ptr(static_cast<const Element*>(p.v) + bi.v_offset),
                            make_shape(bi.sk, Int<kHeadDim>{}), make_stride(p.v_row_stride, _1{}));
    Tensor mO = make_tensor(make_gmem_ptr(static_cast<Element*>(p.o) + bi.o_offset),
                            make_shape(bi.sq, Int<kHeadDim>{}), make_stride(p.o_row_stride, _1{}));
    Tensor gQ = local_tile(mQ, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));  // (M, D)
    Tensor gO = local_tile(mO, Shape<Int<kBlockM>, Int<kHeadDim>>{}, make_coord(m_block, 0));  // (M, D)
    Tensor gK = local_tile(mK, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(_, 0));        // (N, D, nblk)
    Tensor gV = local_tile(mV, Shape<Int<kBlockN>, Int<kHeadDim>>{}, make_coord(_, 0));        // (N, D, nblk)

    // ---- shared tensors: Q | K | V ------------------------------------------------------
    Tensor sQ  = make_tensor(make_smem_ptr(reinterpret_cast<Element*>(smem)), typename T::SmemLayoutQ{});  // (M, D)
    Tensor sK  = make_tensor(sQ.data() + size(sQ), typename T::SmemLayoutKV{});                            // (N, D)
    Tensor sV  = make_tensor(sK.data() + size(sK), typename T::SmemLayoutKV{});                            // (N, D)
    Tensor sVt = make_tensor(sV.data(), typename T::SmemLayoutVt{});                                       // (D, N)
    Tensor sVtPlain = make_tensor(sV.data().get(), typename T::SmemLayoutVtNoSwizzle{});

    // ---- global -> shared copies --------------------------------------------------------
    typename T::GmemTiledCopyLoad gmem_copy;
    auto gmem_thr = gmem_copy.get_thread_slice(tidx);
    Tensor tQgQ = gmem_thr.partition_S(gQ);
    Tensor tQsQ = gmem_thr.partition_D(sQ);
    Tensor tKgK = gmem_thr.partition_S(gK);  // (CPY, CPY_N, CPY_D, nblk)
    Tensor tKsK = gmem_thr.partition_D(sK);
    Tensor tVgV = gmem_thr.partition_S(gV);
    Tensor tVsV = gmem_thr.partition_D(sV);
    Tensor tQcQ  = gmem_thr.partition_S(make_identity_tensor(Shape<Int<kBlockM>, Int<kHeadDim>>{}));
    Tensor tKVcKV = gmem_thr.partition_S(make_identity_tensor(Shape<Int<kBlockN>, Int<kHeadDim>>{}));

    // ---- MMA partitions -----------------------------------------------------------------
    typename T::TiledMma tiled_mma;
    auto thr_mma = tiled_mma.get_thread_slice(tidx);
    Tensor tSrQ  = thr_mma.partition_fragment_A(sQ);        // (MMA, MMA_M, MMA_D)
    Tensor tSrK  = thr_mma.partition_fragment_B(sK);        // (MMA, MMA_N, MMA_D)
    Tensor tOrVt = thr_mma.partition_fragment_B(sVtPlain);  // (MMA, MMA_D, MMA_N)
    Tensor acc_o = partition_fragment_C(tiled_mma, Shape<Int<kBlockM>, Int<kHeadDim>>{});  // (MMA, MMA_M, MMA_D)
    clear(acc_o);

    auto smem_copy_Q = make_tiled_copy_A(typename T::SmemCopyAtom{}, tiled_mma);
    auto smem_thr_Q  = smem_copy_Q.get_thread_slice(tidx);
    Tensor tSsQ      = smem_thr_Q.partition_S(sQ);
    auto smem_copy_K = make_tiled_copy_B(typename T::SmemCopyAtom{}, tiled_mma);
    auto smem_thr_K  = smem_copy_K.get_thread_slice(tidx);
    Tensor tSsK      = smem_thr_K.partition_S(sK);
    auto smem_copy_V = make_tiled_copy_B(typename T::SmemCopyAtomTransposed{}, tiled_mma);
    auto smem_thr_V  = smem_copy_V.get_thread_slice(tidx);
    Tensor tOsVt     = smem_thr_V.partition_S(sVt);

    // Coordinates of this thread's score elements within the (M, N) block, as (rows, cols).
    Tensor tScS = thr_mma.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kBlockN>>{}));
    Tensor tScS_rc = make_tensor(tScS.data(), acc_rowcol(tScS.layout()));

    Tensor acc_o_rc = make_tensor(acc_o.data(), acc_rowcol(acc_o.layout()));  // (rows, D)
    constexpr int kRows = decltype(size<0>(acc_o_rc))::value;
    OnlineSoftmax<kRows> softmax;

    const bool use_softcap = p.softcap > 0.f;
    const float scale_over_cap = use_softcap ? p.scale_s / p.softcap : 0.f;

    if (n_begin < n_end) {
        load_tile_async<kAligned>(gmem_copy, tQgQ, tQsQ, tQcQ, bi.sq - m0, p.hdim_q);
        load_tile_async<kAligned>(gmem_copy, tKgK(_, _, _, n_end - 1), tKsK, tKVcKV, bi.sk - (n_end - 1) * kBlockN,
                        p.hdim_q);
        cp_async_fence();

        for (int n = n_end - 1; n >= n_begin; --n) {
            Tensor acc_s = partition_fragment_C(tiled_mma, Shape<Int<kBlockM>, Int<kBlockN>>{});  // (MMA, MMA_M, MMA_N)
            clear(acc_s);
            cp_async_wait<0>();
            __syncthreads();  // K_n (and Q) landed; every warp is done reading V_{n+1}
            load_tile_async<kAligned>(gmem_copy, tVgV(_, _, _, n), tVsV, tKVcKV, bi.sk - n * kBlockN, p.hdim_v);
            cp_async_fence();

            gemm_smem_smem(acc_s, tSrQ, tSrK, tSsQ, tSsK, tiled_mma, smem_copy_Q, smem_copy_K, smem_thr_Q,
                           smem_thr_K);

            Tensor s = make_tensor(acc_s.data(), acc_rowcol(acc_s.layout()));  // (rows, cols)
            if (use_softcap) apply_softcap(s, scale_over_cap, p.softcap);
            const int n0 = n * kBlockN;
            if (block_needs_mask<T::kMasked>(p.mask, m0, m_last, n0, kBlockN, bi.sq, bi.sk)) {
                apply_mask<T::kMasked>(s, tScS_rc, p.mask, m0, n0, bi.sq, bi.sk);
            }

            cp_async_wait<0>();
            __syncthreads();  // V_n landed; every warp is done reading K_n
            if (n > n_begin) {
                load_tile_async<kAligned>(gmem_copy, tKgK(_, _, _, n - 1), tKsK, tKVcKV, bi.sk - (n - 1) * kBlockN,
                                p.hdim_q);
                cp_async_fence();
            }

            softmax.update(s, acc_o_rc, p.scale_log2);

            Tensor rP = make_tensor_like<Element>(acc_s);
            convert_fragment(rP, acc_s);
            Tensor tOrP = make_tensor(rP.data(), acc_as_a_operand(rP.layout()));
            gemm_reg_smem(acc_o, tOrP, tOrVt, tOsVt, tiled_mma, smem_copy_V, smem_thr_V);
        }
    }

    // ---- epilogue: O /= l, LSE, O through shared memory to global ------------------------
    float lse[kRows];
    softmax.finalize(acc_o_rc, p.scale_log2, lse);

    if (p.lse != nullptr) {
        Tensor tOcO = thr_mma.partition_C(make_identity_tensor(Shape<Int<kBlockM>, Int<kHeadDim>>{}));
        Tensor tOcO_rc = make_tensor(tOcO.data(), acc_rowcol(tOcO.layout()));
        store_lse(p.lse + bi.lse_offset, lse, tOcO_rc, m0, bi.sq);
    }

    Tensor rO = make_tensor_like<Element>(acc_o);
    convert_fragment(rO, acc_o);

    Tensor sO = make_tensor(sQ.data(), typename T::SmemLayoutO{});  // (M, D), reuses Q's buffer
    auto smem_copy_O = make_tiled_copy_C(typename T::SmemCopyAtomO{}, tiled_mma);
    auto smem_thr_O  = smem_copy_O.get_thread_slice(tidx);
    Tensor taccOrO   = smem_thr_O.retile_S(rO);
    Tensor taccOsO   = smem_thr_O.partition_D(sO);
    __syncthreads();  // every warp is done reading Q
    copy(smem_copy_O, taccOrO, taccOsO);
    __syncthreads();

    typename T::GmemTiledCopyStore gmem_copy_O;
    auto gmem_thr_O = gmem_copy_O.get_thread_slice(tidx);
    Tensor tOsO = gmem_thr_O.partition_S(sO);
    Tensor tOgO = gmem_thr_O.partition_D(gO);
    Tensor tOrO = make_tensor<Element>(shape(tOgO));
    copy(gmem_copy_O, tOsO, tOrO);
    Tensor tOcO_g = gmem_thr_O.partition_D(make_identity_tensor(Shape<Int<kBlockM>, Int<kHeadDim>>{}));
    store_tile<kAligned>(gmem_copy_O, tOrO, tOgO, tOcO_g, bi.sq - m0, p.hdim_v);
}

}  // namespace aiter::fwd
