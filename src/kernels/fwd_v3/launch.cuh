// Host-side launch of one v3 forward instance: builds the three TMA descriptors of the call
// and launches the grid: persistent (one CTA per SM walking the (row block, q head, batch)
// tiles, some masked kernels drawing them from a counter) or one CTA per tile (traits.cuh).
// Included only by the generated instance files (one explicit instantiation each, see codegen/).
#pragma once

#include "fwd/fwd_key.h"
#include "fwd/v3_launch_state.h"
#include "kernels/fwd_v3/kernel.cuh"

namespace aiter::fwd {

template <FwdV3Key K>
KernelInfo fwd_v3_info() {
    return {FwdV3Traits<K>::kSmemBytes, FwdV3Traits<K>::kBlockM};
}

template <FwdV3Key K>
cudaError_t launch_fwd_v3(const FwdParams& p, cudaStream_t stream) {
    using namespace cute;
    using T = FwdV3Traits<K>;
    const int m_blocks = (p.max_seqlen_q + T::kBlockM - 1) / T::kBlockM;
    if (m_blocks == 0 || p.batch == 0 || p.nhead_q == 0) return cudaSuccess;

    const int nb = p.is_group_mode ? 1 : p.batch;
    // An empty K/V (no keys anywhere) is never loaded; its descriptor then describes Q's
    // memory so that it is well-formed even for a null pointer.
    const bool no_keys = p.seqlen_k <= 0;
    auto gq = tma_gmem_view<typename T::Element>(p.q, p.seqlen_q, p.hdim_q, p.nhead_q, nb, p.q_row_stride, p.q_head_stride,
                                      p.q_batch_stride);
    auto gk = no_keys ? gq
                      : tma_gmem_view<typename T::Element>(p.k, p.seqlen_k, p.hdim_q, p.nhead_k, nb, p.k_row_stride,
                                                p.k_head_stride, p.k_batch_stride);
    auto gv = no_keys ? tma_gmem_view<typename T::Element>(p.q, p.seqlen_q, p.hdim_v, p.nhead_q, nb, p.q_row_stride,
                                                p.q_head_stride, p.q_batch_stride)
                      : tma_gmem_view<typename T::Element>(p.v, p.seqlen_k, p.hdim_v, p.nhead_k, nb, p.v_row_stride,
                                                p.v_head_stride, p.v_batch_stride);
    FwdV3KernelParams<T> kp{p,
                            make_tma_copy(SM90_TMA_LOAD{}, gq, typename T::SmemLayoutQ{}),
                            make_tma_copy(SM90_TMA_LOAD{}, gk, take<0, 2>(typename T::SmemLayoutK{})),
                            make_tma_copy(SM90_TMA_LOAD{}, gv, take<0, 2>(typename T::SmemLayoutV{})),
                            gq.shape(), gk.shape(), gv.shape(), nullptr, TileDecoder{}};
    const int64_t tiles = int64_t(m_blocks) * p.nhead_q * p.batch;
    if constexpr (T::kMasked) kp.dec = TileDecoder(tiles, m_blocks, p.nhead_q, p.batch, p.tile_section, p.h_ratio);

    if (T::kMasked && !kp.dec.ok) return cudaErrorInvalidValue;  // 2^31 tiles or more: select_v3 rejects those
    if (!T::kSoftcap && p.softcap > 0.f) return cudaErrorInvalidValue;  // select_v3 takes the default instance

    auto kernel = &fwd_v3_kernel<K.dtype, K.hdim_q, K.hdim_v, K.mask, K.short_seq>;
    constexpr int smem = T::kSmemBytes;
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    // Persistent (T::kPersistent): one CTA per SM (shared memory allows no more), or fewer when
    // there are fewer tiles (or the v3_max_ctas test aid says so); otherwise one CTA per tile (a
    // grid beyond 2^31 - 1 CTAs strides).
    int64_t want = tiles < 0x7fffffff ? tiles : 0x7fffffff;
    if constexpr (T::kPersistent) {
        int dev = 0, sms = 0;
        if ((e = cudaGetDevice(&dev)) != cudaSuccess) return e;
        if ((e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess) return e;
        want = tiles < sms ? tiles : sms;
        const int cap = v3_max_ctas();
        if (cap > 0 && want > cap) want = cap;
    }
    const int grid = int(want);
    if constexpr (T::kDynamicTiles) {
        // Dynamic tiles come from a counter that reads 0 at launch: the stream's own (the kernel
        // leaves it at 0), or while a graph is being captured one owned by the graph (allocated,
        // zeroed and freed in the graph), so that replays never share it with other work.
        kp.tile_counter = v3_tile_counter(stream, &e);
        if (e != cudaSuccess) return e;
        if (kp.tile_counter != nullptr) {
            kernel<<<grid, T::kNThreads, smem, stream>>>(kp);
            return cudaGetLastError();
        }
        if ((e = cudaMallocAsync(reinterpret_cast<void**>(&kp.tile_counter), sizeof(unsigned long long), stream)) != cudaSuccess)
            return e;
        e = cudaMemsetAsync(kp.tile_counter, 0, sizeof(unsigned long long), stream);
        if (e == cudaSuccess) {
            kernel<<<grid, T::kNThreads, smem, stream>>>(kp);
            e = cudaGetLastError();
        }
        const cudaError_t f = cudaFreeAsync(kp.tile_counter, stream);
        return e != cudaSuccess ? e : f;
    } else {
        kernel<<<grid, T::kNThreads, smem, stream>>>(kp);
        return cudaGetLastError();
    }
}

}  // namespace aiter::fwd
