// Host-side launch of one v2 forward instance. Included only by the generated instance files
// (one explicit instantiation each, see codegen/).
#pragma once

#include "fwd/fwd_key.h"
#include "kernels/fwd_v2/kernel.cuh"

namespace aiter::fwd {

template <FwdV2Key K>
KernelInfo fwd_v2_info() {
    return {FwdV2Traits<K>::kSmemBytes, FwdV2Traits<K>::kBlockM};
}

template <FwdV2Key K>
cudaError_t launch_fwd_v2(const FwdParams& params, cudaStream_t stream) {
    using T = FwdV2Traits<K>;
    const int m_blocks = (params.max_seqlen_q + T::kBlockM - 1) / T::kBlockM;
    if (m_blocks == 0 || params.batch == 0 || params.nhead_q == 0) return cudaSuccess;
    auto kernel = &fwd_v2_kernel<K.dtype, K.hdim, K.mask, K.aligned>;
    constexpr int smem = T::kSmemBytes;
    if constexpr (smem > 48 * 1024) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid(m_blocks, params.nhead_q, params.batch);
    kernel<<<grid, T::kNThreads, smem, stream>>>(params);
    return cudaGetLastError();
}

}  // namespace aiter::fwd
