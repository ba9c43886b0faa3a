// Combine kernel of the split-KV forward: merges the fp32 partial outputs of the splits.
//
// For every (batch b, q head h, query row i), with the splits s = 0 .. n-1:
//   M   = max_s lse_acc[s]                     (−inf entries: splits that saw no key)
//   L   = Σ_s exp(lse_acc[s] − M)
//   O   = Σ_s exp(lse_acc[s] − M) / L · o_acc[s]      -> o (input type), first hdim_v columns
//   LSE = M + ln L                              -> lse (when stored); −inf and O = 0 when
//                                                  every split is empty
// Splits with lse_acc = −inf never contribute (their o_acc rows may hold anything: they are
// loaded with the rest of a batch but skipped before the sum).
// A CTA has 4 warps; each row gets w = splitkv_combine_warps_per_row(num_splits) of them (1, 2
// or 4: one batch of loads per warp up to 64 splits), so a CTA takes 4 / w rows. Every warp
// of a row computes M and L from all LSEs (lane l holds splits l, l + 32, l + 64, l + 96:
// num_splits <= 128). The row's warp r sums the partial rows of splits r, r + w, r + 2w, ...:
// kBatch of them are loaded together with no dependence between the loads (weights come by
// shuffle from the lane that holds them), so a row costs ⌈num_splits / (w kBatch)⌉ memory
// round trips, not one or two per split. Lane l owns columns 4l and 4l + 128 (hdim_v <= 256, a
// multiple of 4); the w warps' sums meet in shared memory. Few splits keep one warp per row:
// more warps per row would only add CTAs (b=64 with 3 splits: 4 warps per row cost 15 us).
// Layouts: include/mha_fwd_splitkv.h (o_acc 16-byte aligned rows).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/numeric_types.h>

#include "fwd/splitkv_heuristic.h"
#include "fwd/splitkv_key.h"
#include "kernels/fwd_splitkv/kernel.cuh"

namespace aiter::fwd {

constexpr int kCombineWarps = 4;   // warps per CTA (launch.cuh launches 32 * kCombineWarps threads)
constexpr int kCombineBatch = 16;  // splits of one warp whose partial rows are loaded together

__host__ __device__ constexpr int splitkv_combine_warps_per_row(int num_splits) {
    return num_splits > 2 * kCombineBatch ? 4 : num_splits > kCombineBatch ? 2 : 1;
}

template <DType kDType>
__global__ void __launch_bounds__(32 * kCombineWarps) fwd_splitkv_combine_kernel(const __grid_constant__ SplitkvParams p) {
    using Element = std::conditional_t<kDType == DType::fp16, cutlass::half_t, cutlass::bfloat16_t>;
    constexpr int kWarps       = kCombineWarps;
    constexpr int kLanesSplits = 4;  // 4 x 32 = kMaxSplits
    constexpr int kBatch       = kCombineBatch;
    static_assert(32 * kLanesSplits >= kMaxSplits);
    __shared__ float4 s_sum[kWarps][2][32];  // warp, column group k, lane

    splitkv_wait_for_primary();  // o_acc / lse_acc come from the split kernel
    const FwdParams& f = p;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int b = blockIdx.y;
    int sq, sk;
    splitkv_lengths(f, b, &sq, &sk);
    const int n = p.num_splits;
    const int wpr = splitkv_combine_warps_per_row(n), rows_per_cta = kWarps / wpr;
    const int sub = warp % wpr;  // this warp takes splits sub, sub + wpr, ...
    const int64_t rows = int64_t(sq) * f.nhead_q;  // (i, h) of batch b
    for (int64_t row0 = int64_t(blockIdx.x) * rows_per_cta; row0 < rows; row0 += int64_t(gridDim.x) * rows_per_cta) {
        const int64_t row = row0 + warp / wpr;
        const bool active = row < rows;  // the same in the row's warps: every warp reaches the barriers
        const int h = int(row / sq), i = int(row % sq);
        float4 acc[2] = {make_float4(0.f, 0.f, 0.f, 0.f), make_float4(0.f, 0.f, 0.f, 0.f)};
        float m = -INFINITY, l = 0.f;
        if (active) {
            const float* lse_acc = p.lse_acc + b * p.lse_acc_batch_stride + h * p.lse_acc_head_stride + i;
            float ls[kLanesSplits];
            CUTE_UNROLL
            for (int j = 0; j < kLanesSplits; ++j) {
                const int s = lane + 32 * j;
                ls[j] = s < n ? lse_acc[s * p.lse_acc_split_stride] : -INFINITY;
                m = fmaxf(m, ls[j]);
            }
            CUTE_UNROLL
            for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffff, m, o));
            CUTE_UNROLL
            for (int j = 0; j < kLanesSplits; ++j) l += ls[j] == -INFINITY ? 0.f : __expf(ls[j] - m);
            CUTE_UNROLL
            for (int o = 16; o > 0; o /= 2) l += __shfl_xor_sync(0xffffffff, l, o);
            const float inv_l = l > 0.f ? 1.f / l : 0.f;
            float w[kLanesSplits];  // weight of split lane + 32 j; 0 for empty splits and s >= n
            CUTE_UNROLL
            for (int j = 0; j < kLanesSplits; ++j) w[j] = ls[j] == -INFINITY ? 0.f : __expf(ls[j] - m) * inv_l;

            const float* o_acc =
                p.o_acc + b * p.o_acc_batch_stride + h * p.o_acc_head_stride + int64_t(i) * p.o_acc_row_stride;
            for (int s0 = sub; s0 < n; s0 += wpr * kBatch) {
                // Every load of the batch is issued before any sum uses one, so they overlap.
                // The loads are unconditional (split clamped to n - 1, column to 0) because
                // predicated loads get interleaved with their sums; the weight selects
                // afterwards, so an empty split's row (zeros as written, but not relied on)
                // never reaches the sum.
                float ws[kBatch];
                float4 x[kBatch][2];
                CUTE_UNROLL
                for (int u = 0; u < kBatch; ++u) {
                    const int s = s0 + wpr * u;  // the same in every lane
                    const int j = (s / 32) % kLanesSplits;
                    const float wj = j == 0 ? w[0] : j == 1 ? w[1] : j == 2 ? w[2] : w[3];
                    ws[u] = __shfl_sync(0xffffffff, wj, s % 32);
                    if (s >= n) ws[u] = 0.f;
                    const int64_t split_off = int64_t(min(s, n - 1)) * p.o_acc_split_stride;
                    CUTE_UNROLL
                    for (int k = 0; k < 2; ++k) {
                        const int col = 4 * lane + 128 * k;
                        x[u][k] = *reinterpret_cast<const float4*>(o_acc + split_off + (col < f.hdim_v ? col : 0));
                    }
                }
                CUTE_UNROLL
                for (int u = 0; u < kBatch; ++u) {
                    if (ws[u] == 0.f) continue;
                    CUTE_UNROLL
                    for (int k = 0; k < 2; ++k) {
                        acc[k].x += ws[u] * x[u][k].x, acc[k].y += ws[u] * x[u][k].y;
                        acc[k].z += ws[u] * x[u][k].z, acc[k].w += ws[u] * x[u][k].w;
                    }
                }
            }
        }
        if (wpr > 1) {
            s_sum[warp][0][lane] = acc[0];
            s_sum[warp][1][lane] = acc[1];
            __syncthreads();
            if (sub == 0) {
                CUTE_UNROLL
                for (int k = 0; k < 2; ++k)
                    for (int v = 1; v < wpr; ++v) {
                        const float4 y = s_sum[warp + v][k][lane];
                        acc[k].x += y.x, acc[k].y += y.y, acc[k].z += y.z, acc[k].w += y.w;
                    }
            }
            __syncthreads();  // s_sum is reused by the next rows
        }
        if (active && sub == 0) {
            Element* o = static_cast<Element*>(f.o) + b * f.o_batch_stride + h * f.o_head_stride + int64_t(i) * f.o_row_stride;
            CUTE_UNROLL
            for (int k = 0; k < 2; ++k) {
                const int col = 4 * lane + 128 * k;
                if (col >= f.hdim_v) continue;
                Element out[4] = {Element(acc[k].x), Element(acc[k].y), Element(acc[k].z), Element(acc[k].w)};
                *reinterpret_cast<uint2*>(o + col) = *reinterpret_cast<const uint2*>(out);
            }
            if (f.lse != nullptr && lane == 0)
                f.lse[b * f.lse_batch_stride + h * f.lse_head_stride + i] = l > 0.f ? m + __logf(l) : -INFINITY;
        }
    }
}

}  // namespace aiter::fwd
