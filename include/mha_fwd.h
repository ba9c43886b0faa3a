// aiter-mha for CUDA: forward attention API (libmha_fwd.so).
//
//   O = softmax(mask(softcap(scale_s * Q Kᵀ))) V          per (batch, q head)
//   LSE[i] = m_i + ln Σ_j exp(s_ij - m_i)                   natural log, fp32
//
// Tensors (elements, last dimension contiguous):
//   q   [b, hq, sq, dq]  addressed as  q_ptr + b*batch_stride_q + h*nhead_stride_q + i*stride_q + d
//   k   [b, hk, sk, dq]  likewise with *_k ; v [b, hk, sk, dv] with *_v ; o [b, hq, sq, dv] with *_o
//   lse [b, hq, sq] fp32 : lse_ptr + b*batch_stride_lse + h*nhead_stride_lse + i (batch mode)
//                          lse_ptr + h*nhead_stride_lse + (seqstart_q[b] + i)  (group mode)
// Group mode (is_group_mode): batch strides are ignored; batch b's rows start at physical row
// seqstart_q_ptr[b] (int32 device array [b+1]) and likewise for K/V with seqstart_k_ptr.
// Logical lengths (padding): seqlen_k_ptr[b] (int32 [b]) or cu_seqlen_{q,k}_ptr[b+1]-[b]
// (int32 [b+1]) replace the physical length, in either mode, and must not exceed it.
//
// Return value of mha_fwd: mean ms per call when s.time_kernel_, 0 when launched untimed,
// -1 when no compiled kernel supports the configuration (mha_fwd_check says why).
// Invalid arguments throw std::invalid_argument with a message that names the field, the
// expectation and the value found. A CUDA error while launching (or timing) throws
// std::runtime_error naming the kernel instance and the CUDA error. Nothing here synchronizes
// the device or calls exit() (timing waits on its own event / stream only).
//
// Masks: mask_type 1/2/3 take their extent from window_size_left/right; a negative size is
// unbounded on that side. Causal is left = -1, right = 0 — mask_type 1 or 2 with both sizes
// -1 keeps every key (as in aiter/CK), so set right = 0 for causal.
#pragma once

#include "mha_common.h"
#include "mha_fwd_args.h"

namespace aiter {

// Runs the forward pass (see the top of this file for the return contract).
float mha_fwd(mha_fwd_args args, const stream_config& s);

// Says whether (and which) compiled kernel would run `args`, or why none can.
// Throws std::invalid_argument for invalid arguments, like mha_fwd. Never launches.
mha_check_result mha_fwd_check(const mha_fwd_args& args);

// Names of every forward instance compiled into this library.
std::vector<std::string> mha_fwd_instances();

// Optional, synchronizing: copies the int32 seqlen arrays of a group-mode or padded call to
// the host and checks them (monotonic seqstart, logical ≤ physical, non-negative).
// Throws std::invalid_argument naming the array, index and values. mha_fwd itself does not
// read device arrays on the host; in the kernel, malformed lengths are clamped so that no
// access leaves the tensors.
void mha_fwd_check_seqlens(const mha_fwd_args& args, cudaStream_t stream = nullptr);

}  // namespace aiter

#include "mha_fwd_splitkv.h"  // aiter::mha_fwd_splitkv (split-KV / paged KV cache), as aiter's mha_fwd.h has it
