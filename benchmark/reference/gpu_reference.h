// Naive fp32 GPU reference of the forward pass, for -v=2 on shapes too large for the CPU.
//
// Same math, arguments and output layout as the CPU reference (reference/mha_fwd_ref.h):
//   O = softmax(mask(softcap(scale_s * Q Kᵀ))) V,  LSE = m + ln Σ exp(s - m)
// except that
//   * q, k, v are DEVICE pointers to the original fp16 / bf16 tensors (elem_type),
//   * o (and lse, when non-null) are DEVICE fp32 buffers at the strides given in `a`,
//   * the pointers inside `a` (seqstart_*, seqlen_*_log) must be DEVICE int32 arrays,
//   * dot products and sums accumulate in fp32 (not double),
//   * group mode needs a.max_seqlen_q = the longest physical q sequence (grid size).
// One CTA per (query row, q head, batch); two passes over the keys (row max, then exp-sum
// and P·V). Masking uses aiter::MaskSpec::visible, the same definition as the kernels.
// Offsets are 64-bit. Asynchronous on `stream`; returns the launch error, or
// cudaErrorInvalidValue for arguments it cannot handle (hdim_v > 1024, batch or nhead_q
// > 65535, nhead_q % nhead_k != 0).
#pragma once

#include <cuda_runtime_api.h>

#include "reference/half_types.h"
#include "reference/mha_fwd_ref.h"

namespace bench {

cudaError_t mha_fwd_ref_gpu(const FwdRefArgs& a, ElemType elem_type, const void* q, const void* k,
                            const void* v, float* o, float* lse, cudaStream_t stream);

}  // namespace bench
