// fp32 add of a contiguous shared-memory block into global memory by the bulk copy engine
// (sm_90 cp.reduce.async.bulk): one thread issues it, the add is atomic per element, and the
// issuing thread tracks completion in bulk groups: CuTe's tma_store_arrive() closes a group,
// tma_store_wait<N>() waits until at most N groups still read shared memory; bulk_wait_all
// below waits for the writes too.
#pragma once

#include <cstdint>

namespace aiter {

// Adds bytes / 4 floats of smem to gmem (both 16-byte aligned, bytes a multiple of 16). The
// writes to smem must be made visible to the async proxy first (fence_view_async_shared).
__device__ __forceinline__ void bulk_reduce_add_f32(float* gmem, const float* smem, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;"
                 :
                 : "l"(gmem), "r"(s), "r"(bytes)
                 : "memory");
#endif
}

// Waits until every committed bulk group has completed (its writes done).
__device__ __forceinline__ void bulk_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
#endif
}

}  // namespace aiter
