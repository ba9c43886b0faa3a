// Host-side launch of one v3 backward instance: builds the TMA descriptors of Q, dO, K and V,
// launches the dK/dV kernel over (key blocks, kv heads, batches) and the dQ convert kernel over
// (query blocks, q heads, batches). Included only by the generated instance files (codegen/).
#pragma once

#include "bwd/bwd_key.h"
#include "kernels/bwd_v3/kernel.cuh"

namespace aiter::bwd {

template <BwdV3Key K>
KernelInfo bwd_v3_info() {
    return {BwdV3Traits<K>::kSmemBytes, BwdV3Traits<K>::kBlockM};
}

template <BwdV3Key K>
cudaError_t launch_bwd_v3(const BwdParams& p, cudaStream_t stream) {
    using namespace cute;
    using T       = BwdV3Traits<K>;
    using Element = typename T::Element;
    if (p.batch == 0 || p.nhead_q == 0) return cudaSuccess;
    const int nb = p.is_group_mode ? 1 : p.batch;
    const int n_blocks = (p.max_seqlen_k + T::kBlockN - 1) / T::kBlockN;
    const int m_blocks = (p.max_seqlen_q + T::kBlockM - 1) / T::kBlockM;
    if (n_blocks > 0 && p.seqlen_k > 0) {
        // Without queries (nothing is loaded: dK = dV = 0) Q's and dO's descriptors describe K's
        // memory, so that they are well-formed even for null pointers.
        auto gk = tma_gmem_view<Element>(p.k, p.seqlen_k, p.hdim_q, p.nhead_k, nb, p.k_row_stride, p.k_head_stride,
                                         p.k_batch_stride);
        auto gv = tma_gmem_view<Element>(p.v, p.seqlen_k, p.hdim_v, p.nhead_k, nb, p.v_row_stride, p.v_head_stride,
                                         p.v_batch_stride);
        const bool no_q = p.seqlen_q <= 0;
        auto gq  = no_q ? gk
                        : tma_gmem_view<Element>(p.q, p.seqlen_q, p.hdim_q, p.nhead_q, nb, p.q_row_stride,
                                                 p.q_head_stride, p.q_batch_stride);
        auto gdo = no_q ? gv
                        : tma_gmem_view<Element>(p.dout, p.seqlen_q, p.hdim_v, p.nhead_q, nb, p.do_row_stride,
                                                 p.do_head_stride, p.do_batch_stride);
        const auto q_box = take<0, 2>(typename T::SmemLayoutQ{});
        BwdV3KernelParams<T> kp{p,
                                make_tma_copy(SM90_TMA_LOAD{}, gq, q_box),
                                make_tma_copy(SM90_TMA_LOAD{}, gdo, q_box),
                                make_tma_copy(SM90_TMA_LOAD{}, gk, typename T::SmemLayoutK{}),
                                make_tma_copy(SM90_TMA_LOAD{}, gv, typename T::SmemLayoutK{}),
                                gq.shape(), gdo.shape(), gk.shape(), gv.shape()};
        auto kernel = &bwd_v3_dkdv_kernel<K.dtype, K.hdim, K.mask>;
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes);
        if (e != cudaSuccess) return e;
        kernel<<<dim3(n_blocks, p.nhead_k, p.batch), T::kNThreads, T::kSmemBytes, stream>>>(kp);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    // dQ = scale · dQ_acc (also where no key block ran: dQ_acc was zeroed, dQ = 0).
    if (m_blocks == 0) return cudaSuccess;
    bwd_v3_dq_convert_kernel<K.dtype, K.hdim, K.mask>
        <<<dim3(m_blocks, p.nhead_q, p.batch), T::kNumMmaThreads, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace aiter::bwd
