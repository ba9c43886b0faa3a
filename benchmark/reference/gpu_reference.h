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

// Naive fp32 GPU reference of the backward pass, for -v=2: the math of reference/mha_bwd_ref.h
// (dK/dV summed over the q heads of a group) in fp32, except that P_ij = exp(s_ij − LSE_i) takes
// the forward's LSE (`lse`, device fp32 at a's LSE strides; −inf rows get dQ = 0) instead of
// recomputing the softmax. q, k, v, o (the forward's output as the library reads it) and dout
// are DEVICE fp16 / bf16 tensors (dout at o's strides); dq, dk, dv are DEVICE fp32 at q's, k's
// and v's strides; dsum (D_i = Σ dO_i·O_i) a DEVICE fp32 scratch at the LSE strides. Group mode
// needs a.max_seqlen_q and a.max_seqlen_k. Two kernels: one CTA per (query row, q head, batch)
// for dQ and D, then one per (key, kv head, batch) for dK and dV. Rows past the logical
// lengths are left untouched. Same limits as mha_fwd_ref_gpu (head dims <= 1024).
cudaError_t mha_bwd_ref_gpu(const FwdRefArgs& a, ElemType elem_type, const void* q, const void* k, const void* v,
                            const void* o, const void* dout, const float* lse, float* dsum, float* dq, float* dk,
                            float* dv, cudaStream_t stream);

}  // namespace bench
