// Naive fp32 GPU reference of the forward pass (see gpu_reference.h for the contract).
//
// Grid (query row i, q head h, batch b), kBlock threads each. For row i:
//   pass 1: each thread scores keys j = tid, tid + kBlock, ... ; m = block max of the kept s_ij
//   pass 2: keys in chunks of kBlock: thread tid computes p = exp(s_ij - m) for one key of the
//           chunk into shared memory; then every thread accumulates P·V for its own output
//           columns c = tid + r*kBlock (r < kMaxColsPerThread); l = block sum of p
//   O[i,c] = acc / l, LSE[i] = m + ln l;  no kept key: O = 0, LSE = -inf.
// s_ij = scale_s * Σ_d q[i,d] k[j,d] (fp32), soft-capped when logits_soft_cap > 0.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "reference/gpu_reference.h"

namespace bench {
namespace {

constexpr int kBlock            = 128;
constexpr int kWarps            = kBlock / 32;
constexpr int kMaxColsPerThread = 8;  // hdim_v <= kBlock * 8 = 1024

__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ float round_p(PRound r, float p) {
    if (r == PRound::fp16) return __half2float(__float2half_rn(p));
    if (r == PRound::bf16) return __bfloat162float(__float2bfloat16_rn(p));
    return p;
}

// Block-wide reductions; `red` is kWarps floats of shared memory. All threads get the result.
__device__ float block_max(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    float r = red[0];
    for (int w = 1; w < kWarps; ++w) r = fmaxf(r, red[w]);
    __syncthreads();
    return r;
}

__device__ float block_sum(float v, float* red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = v;
    __syncthreads();
    float r = 0.f;
    for (int w = 0; w < kWarps; ++w) r += red[w];
    __syncthreads();
    return r;
}

template <typename T>
__global__ void __launch_bounds__(kBlock)
    fwd_ref_kernel(FwdRefArgs a, const T* __restrict__ q, const T* __restrict__ k,
                   const T* __restrict__ v, float* __restrict__ o, float* __restrict__ lse) {
    extern __shared__ float smem[];
    float* q_row = smem;                 // [hdim_q]
    float* p_buf = q_row + a.hdim_q;     // [kBlock]
    float* red   = p_buf + kBlock;       // [kWarps]

    const int64_t i = blockIdx.x;
    const int h     = blockIdx.y;
    const int b     = blockIdx.z;
    const int tid   = threadIdx.x;

    const int64_t phys_q = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
    const int64_t phys_k = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
    const int64_t sq     = a.seqlen_q_log ? a.seqlen_q_log[b] : phys_q;
    const int64_t sk     = a.seqlen_k_log ? a.seqlen_k_log[b] : phys_k;
    if (i >= sq) return;  // uniform over the CTA

    const int hk        = h / (a.nhead_q / a.nhead_k);
    const int64_t row_q = a.is_group_mode ? a.seqstart_q[b] : 0;
    const int64_t row_k = a.is_group_mode ? a.seqstart_k[b] : 0;
    const int64_t bb    = a.is_group_mode ? 0 : b;

    const T* qi = q + bb * a.batch_stride_q + h * a.nhead_stride_q + (row_q + i) * a.stride_q;
    const T* kb = k + bb * a.batch_stride_k + hk * a.nhead_stride_k + row_k * a.stride_k;
    const T* vb = v + bb * a.batch_stride_v + hk * a.nhead_stride_v + row_k * a.stride_v;
    float* oi   = o + bb * a.batch_stride_o + h * a.nhead_stride_o + (row_q + i) * a.stride_o;

    for (int d = tid; d < a.hdim_q; d += kBlock) q_row[d] = to_float(qi[d]);
    __syncthreads();

    const float cap = a.logits_soft_cap;
    auto score      = [&](int64_t j) {
        const T* kj = kb + j * a.stride_k;
        float dot   = 0.f;
        for (int d = 0; d < a.hdim_q; ++d) dot += q_row[d] * to_float(kj[d]);
        float s = a.scale_s * dot;
        if (cap > 0.f) s = cap * tanhf(s / cap);
        return s;
    };

    // pass 1: row max over kept keys
    float m = -INFINITY;
    for (int64_t j = tid; j < sk; j += kBlock)
        if (a.mask.visible(i, j, sq, sk)) m = fmaxf(m, score(j));
    m = block_max(m, red);

    if (m == -INFINITY) {  // no kept key
        for (int c = tid; c < a.hdim_v; c += kBlock) oi[c] = 0.f;
        if (lse && tid == 0)
            lse[bb * a.batch_stride_lse + h * a.nhead_stride_lse + row_q + i] = -INFINITY;
        return;
    }

    // pass 2: exp-sum and P·V
    float acc[kMaxColsPerThread];
    for (int r = 0; r < kMaxColsPerThread; ++r) acc[r] = 0.f;
    float l = 0.f;
    for (int64_t j0 = 0; j0 < sk; j0 += kBlock) {
        const int64_t j = j0 + tid;
        float p         = 0.f;
        if (j < sk && a.mask.visible(i, j, sq, sk)) p = expf(score(j) - m);
        l          += p;
        p_buf[tid]  = round_p(a.p_round, p);
        __syncthreads();
        const int n = static_cast<int>(sk - j0 < kBlock ? sk - j0 : kBlock);
        for (int jj = 0; jj < n; ++jj) {
            const float pj = p_buf[jj];
            if (pj == 0.f) continue;
            const T* vj = vb + (j0 + jj) * a.stride_v;
#pragma unroll
            for (int r = 0; r < kMaxColsPerThread; ++r) {
                const int c = tid + r * kBlock;
                if (c < a.hdim_v) acc[r] += pj * to_float(vj[c]);
            }
        }
        __syncthreads();
    }
    l = block_sum(l, red);

#pragma unroll
    for (int r = 0; r < kMaxColsPerThread; ++r) {
        const int c = tid + r * kBlock;
        if (c < a.hdim_v) oi[c] = acc[r] / l;
    }
    if (lse && tid == 0)
        lse[bb * a.batch_stride_lse + h * a.nhead_stride_lse + row_q + i] = m + logf(l);
}

template <typename T>
cudaError_t launch(const FwdRefArgs& a, const void* q, const void* k, const void* v, float* o,
                   float* lse, cudaStream_t stream) {
    const int64_t rows = a.is_group_mode ? a.max_seqlen_q : a.seqlen_q;
    if (rows <= 0 || a.batch <= 0) return cudaSuccess;  // nothing to compute
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(a.nhead_q),
                    static_cast<unsigned>(a.batch));
    const size_t smem = (static_cast<size_t>(a.hdim_q) + kBlock + kWarps) * sizeof(float);
    if (smem > 48 * 1024) return cudaErrorInvalidValue;
    fwd_ref_kernel<T><<<grid, kBlock, smem, stream>>>(a, static_cast<const T*>(q),
                                                      static_cast<const T*>(k),
                                                      static_cast<const T*>(v), o, lse);
    return cudaGetLastError();
}

}  // namespace

cudaError_t mha_fwd_ref_gpu(const FwdRefArgs& a, ElemType elem_type, const void* q, const void* k,
                            const void* v, float* o, float* lse, cudaStream_t stream) {
    if (a.hdim_v > kBlock * kMaxColsPerThread || a.hdim_q <= 0 || a.hdim_v <= 0 ||
        a.nhead_q <= 0 || a.nhead_k <= 0 || a.nhead_q % a.nhead_k != 0 || a.nhead_q > 65535 ||
        a.batch > 65535 || (a.is_group_mode ? a.max_seqlen_q : a.seqlen_q) > 0x7fffffff)
        return cudaErrorInvalidValue;
    return elem_type == ElemType::fp16 ? launch<__half>(a, q, k, v, o, lse, stream)
                                       : launch<__nv_bfloat16>(a, q, k, v, o, lse, stream);
}

}  // namespace bench
