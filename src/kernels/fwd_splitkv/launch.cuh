// Host-side launch of one split-KV instance and of the combine kernels. Included only by the
// generated instance files (one explicit instantiation each, see codegen/).
//
// Grid of the main kernel: (m_blocks * num_splits, nhead_k, batch), m_blocks =
// ⌈max_seqlen_q * (nhead_q / nhead_k) / 16⌉ packed rows. Combine: (⌈seqlen_q * nhead_q / r⌉,
// batch) blocks of 4 warps, r = 4 / warps per row (1 to 4 rows per block, combine.cuh; capped
// at 2^30 blocks, which loop over the rest), launched only when num_splits > 1; on sm_90+ as a
// programmatic dependent launch (params.overlap_combine), so it is scheduled while the split
// kernel drains.
#pragma once

#include <algorithm>

#include "fwd/splitkv_key.h"
#include "kernels/fwd_splitkv/combine.cuh"
#include "kernels/fwd_splitkv/kernel.cuh"

namespace aiter::fwd {

template <SplitkvKey K>
KernelInfo fwd_splitkv_info() {
    return {SplitkvTraits<K>::kSmemBytes, SplitkvTraits<K>::kBlockM};
}

template <DType D>
KernelInfo fwd_splitkv_combine_info() {
    return {};
}

template <SplitkvKey K>
cudaError_t launch_fwd_splitkv(const SplitkvParams& params, cudaStream_t stream) {
    using T = SplitkvTraits<K>;
    const int64_t rows  = int64_t(params.seqlen_q) * params.h_ratio;
    const int64_t m_blk = (rows + T::kBlockM - 1) / T::kBlockM;
    if (m_blk == 0 || params.batch == 0) return cudaSuccess;
    auto kernel = &fwd_splitkv_kernel<K.dtype, K.hdim, K.mask, K.deep>;
    constexpr int smem = T::kSmemBytes;
    if constexpr (smem > 48 * 1024) {
        const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
    }
    const dim3 grid(unsigned(m_blk * params.num_splits), params.nhead_k, params.batch);
    kernel<<<grid, T::kNThreads, smem, stream>>>(params);
    return cudaGetLastError();
}

template <DType D>
cudaError_t launch_fwd_splitkv_combine(const SplitkvParams& params, cudaStream_t stream) {
    const int64_t rows = int64_t(params.seqlen_q) * params.nhead_q;
    if (rows == 0 || params.batch == 0) return cudaSuccess;
    cudaLaunchConfig_t cfg = {};
    const int rows_per_cta = kCombineWarps / splitkv_combine_warps_per_row(params.num_splits);
    cfg.gridDim  = dim3(unsigned(std::min<int64_t>((rows + rows_per_cta - 1) / rows_per_cta, 1 << 30)), params.batch);
    cfg.blockDim = dim3(32 * kCombineWarps);
    cfg.stream   = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs    = attr;
    cfg.numAttrs = params.overlap_combine ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, fwd_splitkv_combine_kernel<D>, params);
}

}  // namespace aiter::fwd
