// Combine kernel of the split-KV forward: merges the fp32 partial outputs of the splits.
//
// For every (batch b, q head h, query row i), with the splits s = 0 .. n-1:
//   M   = max_s lse_acc[s]                     (−inf entries: splits that saw no key)
//   L   = Σ_s exp(lse_acc[s] − M)
//   O   = Σ_s exp(lse_acc[s] − M) / L · o_acc[s]      -> o (input type), first hdim_v columns
//   LSE = M + ln L                              -> lse (when stored); −inf and O = 0 when
//                                                  every split is empty
// Splits with lse_acc = −inf are never read from o_acc (they may hold anything).
// One warp per row; lane l owns columns 4l, 4l + 128 (hdim_v <= 256, a multiple of 4).
// Layouts: include/mha_fwd_splitkv.h (o_acc 16-byte aligned rows).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>

#include "fwd/splitkv_key.h"
#include "kernels/fwd_splitkv/kernel.cuh"

namespace aiter::fwd {

template <DType kDType>
__global__ void __launch_bounds__(128) fwd_splitkv_combine_kernel(const __grid_constant__ SplitkvParams p) {
    using Element = std::conditional_t<kDType == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;
    const FwdParams& f = p.f;
    const int lane = threadIdx.x % 32;
    const int64_t row = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;  // over (i, h) of batch b
    const int b = blockIdx.y;
    int sq, sk;
    splitkv_lengths(f, b, &sq, &sk);
    if (row >= int64_t(sq) * f.nhead_q) return;
    const int h = int(row / sq), i = int(row % sq);

    const float* lse_acc = p.lse_acc + b * p.lse_acc_batch_stride + h * p.lse_acc_head_stride + i;
    float m = -INFINITY;
    for (int s = lane; s < p.num_splits; s += 32) m = fmaxf(m, lse_acc[s * p.lse_acc_split_stride]);
    CUTE_UNROLL
    for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, o));
    float l = 0.f;
    if (m != -INFINITY)
        for (int s = lane; s < p.num_splits; s += 32) l += __expf(lse_acc[s * p.lse_acc_split_stride] - m);
    CUTE_UNROLL
    for (int o = 16; o > 0; o /= 2) l += __shfl_xor_sync(0xffffffff, l, o);
    const bool empty = !(l > 0.f);
    const float inv_l = empty ? 0.f : 1.f / l;

    float4 acc[2] = {make_float4(0.f, 0.f, 0.f, 0.f), make_float4(0.f, 0.f, 0.f, 0.f)};
    const float* o_acc = p.o_acc + b * p.o_acc_batch_stride + h * p.o_acc_head_stride + int64_t(i) * p.o_acc_row_stride;
    if (!empty) {
        for (int s = 0; s < p.num_splits; ++s) {
            const float ls = lse_acc[s * p.lse_acc_split_stride];
            if (ls == -INFINITY) continue;
            const float w = __expf(ls - m) * inv_l;
            CUTE_UNROLL
            for (int k = 0; k < 2; ++k) {
                const int col = 4 * lane + 128 * k;
                if (col >= f.hdim_v) continue;
                const float4 x = *reinterpret_cast<const float4*>(o_acc + s * p.o_acc_split_stride + col);
                acc[k].x += w * x.x, acc[k].y += w * x.y, acc[k].z += w * x.z, acc[k].w += w * x.w;
            }
        }
    }
    Element* o = static_cast<Element*>(f.o) + b * f.o_batch_stride + h * f.o_head_stride + int64_t(i) * f.o_row_stride;
    CUTE_UNROLL
    for (int k = 0; k < 2; ++k) {
        const int col = 4 * lane + 128 * k;
        if (col >= f.hdim_v) continue;
        Element out[4] = {Element(acc[k].x), Element(acc[k].y), Element(acc[k].z), Element(acc[k].w)};
        *reinterpret_cast<uint2*>(o + col) = *reinterpret_cast<const uint2*>(out);
    }
    if (f.lse != nullptr && lane == 0)
        f.lse[b * f.lse_batch_stride + h * f.lse_head_stride + i] = empty ? -INFINITY : m + __logf(l);
}

}  // namespace aiter::fwd
