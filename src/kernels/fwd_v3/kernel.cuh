// v3 forward attention kernel (Hopper, sm_90a): TMA + wgmma + warp specialization.
//
//   O = softmax(mask(softcap(scale_s · Q Kᵀ))) V, LSE = m + ln l      per (batch, q head)
//
// Layouts (elements, last dim contiguous; include/mha_fwd.h): Q (sq, dq), K (sk, dq), V (sk, dv),
// O (sq, dv) per (batch, head), read through TMA descriptors over (rows, hdim, head, batch)
// views (launch.cuh); LSE fp32 (sq). The kernel only arranges the roles of a CTA:
//   1 producer warpgroup (registers given back with setmaxnreg; one thread issues the TMA
//     loads): fwd_v3_producer, mainloop.cuh
//   kBlockM/64 consumer warpgroups (more registers; 64 rows each): fwd_v3_consumer,
//     mainloop.cuh, with the epilogue of epilogue.cuh
// over the tiles of the scheduler (tile_scheduler.cuh); every variant is a typed option of the
// traits (traits.cuh), chosen from the instance's key and tile (tile.h).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/reg_reconfig.h>
#include <cutlass/cutlass.h>

#include "fwd/fwd_key.h"
#include "fwd/fwd_params.h"
#include "kernels/fwd_v3/mainloop.cuh"
#include "kernels/fwd_v3/tile_scheduler.cuh"
#include "kernels/fwd_v3/traits.cuh"

// wgmma, setmaxnreg and the TMA instructions exist only in sm_90a code.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AITER_FWD_V3_DEVICE 1
#else
#define AITER_FWD_V3_DEVICE 0
#endif

namespace aiter::fwd {

template <DType kDType, int kHdimQ, int kHdimV, MaskKind kMask, bool kShortSeq>
__global__ void __launch_bounds__(FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>::kNThreads, 1)
    fwd_v3_kernel(const __grid_constant__ FwdV3KernelParams<FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>> kp) {
#if AITER_FWD_V3_DEVICE
    using namespace cute;
    using T = FwdV3Traits<FwdV3Key{kDType, kHdimQ, kHdimV, kMask, kShortSeq}>;

    extern __shared__ __align__(1024) char smem_raw[];
    auto& ss = *reinterpret_cast<typename T::SharedStorage*>(smem_raw);
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

    FwdV3TileScheduler<T> sched(kp, ss, pipe_tile);
    if (warp_group == 0) {
        cutlass::arch::warpgroup_reg_dealloc<T::kRegsProducer>();
        if (threadIdx.x == 0) fwd_v3_producer<T>(kp, ss, pipe_k, pipe_v, sched);
        return;
    }
    cutlass::arch::warpgroup_reg_alloc<T::kRegsConsumer>();
    fwd_v3_consumer<T>(kp, ss, pipe_k, pipe_v, sched, int(threadIdx.x) - 128);
#endif
}

}  // namespace aiter::fwd
