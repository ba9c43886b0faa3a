// Host-side launch of one v2 backward instance: the dK/dV kernel, then the dQ convert kernel
// (atomic mode) or the dQ kernel (deterministic mode). Included only by the generated instance
// files (one explicit instantiation each, see codegen/).
#pragma once

#include "bwd/bwd_key.h"
#include "kernels/bwd_v2/kernel.cuh"

namespace aiter::bwd {

template <BwdV2Key K>
KernelInfo bwd_v2_info() {
    return {BwdV2Traits<K>::kSmemBytes, BwdV2Traits<K>::kBlockM};
}

template <class Kernel>
cudaError_t launch_with_smem(Kernel kernel, dim3 grid, int threads, int smem, const BwdParams& params,
                             cudaStream_t stream) {
    if (smem > 48 * 1024) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
    }
    kernel<<<grid, threads, smem, stream>>>(params);
    return cudaGetLastError();
}

template <BwdV2Key K>
cudaError_t launch_bwd_v2(const BwdParams& params, cudaStream_t stream) {
    using T = BwdV2Traits<K>;
    if (params.batch == 0 || params.nhead_q == 0) return cudaSuccess;
    const int n_blocks = (params.max_seqlen_k + T::kBlockN - 1) / T::kBlockN;
    if (n_blocks > 0) {
        const cudaError_t e =
            launch_with_smem(&bwd_v2_dkdv_kernel<K.dtype, K.hdim, K.mask, K.deterministic>,
                             dim3(n_blocks, params.nhead_k, params.batch), T::kNThreads, T::kSmemBytes, params, stream);
        if (e != cudaSuccess) return e;
    }
    // dQ, one CTA per (query block, q head, batch): the dQ kernel (deterministic), or
    // dQ = scale · dQ_acc (atomic mode; also when no key block ran: dQ_acc was zeroed, dQ = 0).
    const int m_blocks = (params.max_seqlen_q + T::kBlockM - 1) / T::kBlockM;
    if (m_blocks == 0) return cudaSuccess;
    const dim3 grid_m(m_blocks, params.nhead_q, params.batch);
    if constexpr (K.deterministic) {
        return launch_with_smem(&bwd_v2_dq_kernel<K.dtype, K.hdim, K.mask>, grid_m, T::kNThreads, T::kSmemBytes,
                                params, stream);
    } else {
        bwd_v2_dq_convert_kernel<K.dtype, K.hdim, K.mask><<<grid_m, T::kNThreads, 0, stream>>>(params);
        return cudaGetLastError();
    }
}

}  // namespace aiter::bwd
