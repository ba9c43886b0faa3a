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

// Batch b: its logical lengths, its first physical rows (group mode) and its batch index for the
// batch strides (0 in group mode); the forward and both backward reference kernels use it.
struct RowGeo {
    int64_t sq, sk, row_q, row_k, bb;
};
__device__ RowGeo row_geo(const FwdRefArgs& a, int b) {
    RowGeo g;
    const int64_t phys_q = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
    const int64_t phys_k = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
    g.sq    = a.seqlen_q_log ? a.seqlen_q_log[b] : phys_q;
    g.sk    = a.seqlen_k_log ? a.seqlen_k_log[b] : phys_k;
    g.row_q = a.is_group_mode ? a.seqstart_q[b] : 0;
    g.row_k = a.is_group_mode ? a.seqstart_k[b] : 0;
    g.bb    = a.is_group_mode ? 0 : b;
    return g;
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

    const RowGeo g       = row_geo(a, b);
    const int64_t sq     = g.sq, sk = g.sk, row_q = g.row_q, row_k = g.row_k, bb = g.bb;
    if (i >= sq) return;  // uniform over the CTA

    const int hk = h / (a.nhead_q / a.nhead_k);

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

// ---- backward ---------------------------------------------------------------------------------
// dQ rows (and D): grid (query row i, q head h, batch b). D_i = Σ dO_i·O_i; for keys in chunks of
// kBlock, thread tid computes dS_ij = P_ij (dP_ij − D_i) of one key (P_ij = exp(s_ij − LSE_i)),
// then every thread accumulates dS·K for its own columns. dQ_i = scale · Σ_j dS_ij k_j.
template <typename T>
__global__ void __launch_bounds__(kBlock)
    bwd_ref_dq_kernel(FwdRefArgs a, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                      const T* __restrict__ o, const T* __restrict__ dout, const float* __restrict__ lse,
                      float* __restrict__ dsum, float* __restrict__ dq) {
    extern __shared__ float smem[];
    float* q_row  = smem;                 // [hdim_q]
    float* do_row = q_row + a.hdim_q;     // [hdim_v]
    float* ds_buf = do_row + a.hdim_v;    // [kBlock]
    float* red    = ds_buf + kBlock;      // [kWarps]
    const int64_t i = blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const RowGeo g = row_geo(a, b);
    if (i >= g.sq) return;
    const int hk = h / (a.nhead_q / a.nhead_k);
    const T* qi  = q + g.bb * a.batch_stride_q + h * a.nhead_stride_q + (g.row_q + i) * a.stride_q;
    const T* oi  = o + g.bb * a.batch_stride_o + h * a.nhead_stride_o + (g.row_q + i) * a.stride_o;
    const T* doi = dout + g.bb * a.batch_stride_o + h * a.nhead_stride_o + (g.row_q + i) * a.stride_o;
    const T* kb  = k + g.bb * a.batch_stride_k + hk * a.nhead_stride_k + g.row_k * a.stride_k;
    const T* vb  = v + g.bb * a.batch_stride_v + hk * a.nhead_stride_v + g.row_k * a.stride_v;
    float* dqi   = dq + g.bb * a.batch_stride_q + h * a.nhead_stride_q + (g.row_q + i) * a.stride_q;
    const int64_t li = g.bb * a.batch_stride_lse + h * a.nhead_stride_lse + g.row_q + i;

    for (int d = tid; d < a.hdim_q; d += kBlock) q_row[d] = to_float(qi[d]);
    float part = 0.f;
    for (int d = tid; d < a.hdim_v; d += kBlock) {
        do_row[d] = to_float(doi[d]);
        part += do_row[d] * to_float(oi[d]);
    }
    __syncthreads();
    const float di = block_sum(part, red);
    if (tid == 0) dsum[li] = di;
    const float lse_i = lse[li];

    float acc[kMaxColsPerThread];
    for (int r = 0; r < kMaxColsPerThread; ++r) acc[r] = 0.f;
    for (int64_t j0 = 0; lse_i != -INFINITY && j0 < g.sk; j0 += kBlock) {
        const int64_t j = j0 + tid;
        float ds = 0.f;
        if (j < g.sk && a.mask.visible(i, j, g.sq, g.sk)) {
            const T* kj = kb + j * a.stride_k;
            const T* vj = vb + j * a.stride_v;
            float s = 0.f, dp = 0.f;
            for (int d = 0; d < a.hdim_q; ++d) s += q_row[d] * to_float(kj[d]);
            for (int d = 0; d < a.hdim_v; ++d) dp += do_row[d] * to_float(vj[d]);
            ds = expf(a.scale_s * s - lse_i) * (dp - di);
        }
        ds_buf[tid] = ds;
        __syncthreads();
        const int n = static_cast<int>(g.sk - j0 < kBlock ? g.sk - j0 : kBlock);
        for (int jj = 0; jj < n; ++jj) {
            const float w = ds_buf[jj];
            if (w == 0.f) continue;
            const T* kj = kb + (j0 + jj) * a.stride_k;
#pragma unroll
            for (int r = 0; r < kMaxColsPerThread; ++r) {
                const int c = tid + r * kBlock;
                if (c < a.hdim_q) acc[r] += w * to_float(kj[c]);
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < kMaxColsPerThread; ++r) {
        const int c = tid + r * kBlock;
        if (c < a.hdim_q) dqi[c] = a.scale_s * acc[r];
    }
}

// dK, dV rows: grid (key j, kv head hk, batch b), summed over the q heads of the group; for query
// rows in chunks of kBlock, thread tid computes P_ij and dS_ij of one row, then every thread
// accumulates dS·Q and P·dO for its own columns. dK_j = scale · Σ dS_ij q_i, dV_j = Σ P_ij dO_i.
template <typename T>
__global__ void __launch_bounds__(kBlock)
    bwd_ref_dkdv_kernel(FwdRefArgs a, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                        const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ dsum,
                        float* __restrict__ dk, float* __restrict__ dv) {
    extern __shared__ float smem[];
    float* k_row = smem;                 // [hdim_q]
    float* v_row = k_row + a.hdim_q;     // [hdim_v]
    float* p_buf = v_row + a.hdim_v;     // [kBlock]
    float* s_buf = p_buf + kBlock;       // [kBlock]: dS
    const int64_t j = blockIdx.x;
    const int hk = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const RowGeo g = row_geo(a, b);
    if (j >= g.sk) return;
    const int ratio = a.nhead_q / a.nhead_k;
    const T* kj = k + g.bb * a.batch_stride_k + hk * a.nhead_stride_k + (g.row_k + j) * a.stride_k;
    const T* vj = v + g.bb * a.batch_stride_v + hk * a.nhead_stride_v + (g.row_k + j) * a.stride_v;
    float* dkj  = dk + g.bb * a.batch_stride_k + hk * a.nhead_stride_k + (g.row_k + j) * a.stride_k;
    float* dvj  = dv + g.bb * a.batch_stride_v + hk * a.nhead_stride_v + (g.row_k + j) * a.stride_v;
    for (int d = tid; d < a.hdim_q; d += kBlock) k_row[d] = to_float(kj[d]);
    for (int d = tid; d < a.hdim_v; d += kBlock) v_row[d] = to_float(vj[d]);
    __syncthreads();

    float acc_k[kMaxColsPerThread], acc_v[kMaxColsPerThread];
    for (int r = 0; r < kMaxColsPerThread; ++r) acc_k[r] = acc_v[r] = 0.f;
    for (int h = hk * ratio; h < (hk + 1) * ratio; ++h) {
        const T* qb  = q + g.bb * a.batch_stride_q + h * a.nhead_stride_q + g.row_q * a.stride_q;
        const T* dob = dout + g.bb * a.batch_stride_o + h * a.nhead_stride_o + g.row_q * a.stride_o;
        const int64_t l0 = g.bb * a.batch_stride_lse + h * a.nhead_stride_lse + g.row_q;
        for (int64_t i0 = 0; i0 < g.sq; i0 += kBlock) {
            const int64_t i = i0 + tid;
            float p = 0.f, ds = 0.f;
            if (i < g.sq && a.mask.visible(i, j, g.sq, g.sk) && lse[l0 + i] != -INFINITY) {
                const T* qi  = qb + i * a.stride_q;
                const T* doi = dob + i * a.stride_o;
                float s = 0.f, dp = 0.f;
                for (int d = 0; d < a.hdim_q; ++d) s += to_float(qi[d]) * k_row[d];
                for (int d = 0; d < a.hdim_v; ++d) dp += to_float(doi[d]) * v_row[d];
                p  = expf(a.scale_s * s - lse[l0 + i]);
                ds = p * (dp - dsum[l0 + i]);
            }
            p_buf[tid] = p;
            s_buf[tid] = ds;
            __syncthreads();
            const int n = static_cast<int>(g.sq - i0 < kBlock ? g.sq - i0 : kBlock);
            for (int ii = 0; ii < n; ++ii) {
                const float pw = p_buf[ii], sw = s_buf[ii];
                if (pw == 0.f && sw == 0.f) continue;
                const T* qi  = qb + (i0 + ii) * a.stride_q;
                const T* doi = dob + (i0 + ii) * a.stride_o;
#pragma unroll
                for (int r = 0; r < kMaxColsPerThread; ++r) {
                    const int c = tid + r * kBlock;
                    if (c < a.hdim_q) acc_k[r] += sw * to_float(qi[c]);
                    if (c < a.hdim_v) acc_v[r] += pw * to_float(doi[c]);
                }
            }
            __syncthreads();
        }
    }
#pragma unroll
    for (int r = 0; r < kMaxColsPerThread; ++r) {
        const int c = tid + r * kBlock;
        if (c < a.hdim_q) dkj[c] = a.scale_s * acc_k[r];
        if (c < a.hdim_v) dvj[c] = acc_v[r];
    }
}

template <typename T>
cudaError_t launch_bwd(const FwdRefArgs& a, const void* q, const void* k, const void* v, const void* o,
                       const void* dout, const float* lse, float* dsum, float* dq, float* dk, float* dv,
                       cudaStream_t stream) {
    const int64_t rows_q = a.is_group_mode ? a.max_seqlen_q : a.seqlen_q;
    const int64_t rows_k = a.is_group_mode ? a.max_seqlen_k : a.seqlen_k;
    if (a.batch <= 0) return cudaSuccess;
    const size_t smem = (static_cast<size_t>(a.hdim_q) + a.hdim_v + 2 * kBlock + kWarps) * sizeof(float);
    if (smem > 48 * 1024) return cudaErrorInvalidValue;
    if (rows_q > 0) {
        bwd_ref_dq_kernel<T><<<dim3(static_cast<unsigned>(rows_q), a.nhead_q, a.batch), kBlock, smem, stream>>>(
            a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<const T*>(o),
            static_cast<const T*>(dout), lse, dsum, dq);
        if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    }
    if (rows_k > 0) {
        bwd_ref_dkdv_kernel<T><<<dim3(static_cast<unsigned>(rows_k), a.nhead_k, a.batch), kBlock, smem, stream>>>(
            a, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
            static_cast<const T*>(dout), lse, dsum, dk, dv);
        if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    }
    return cudaSuccess;
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

cudaError_t mha_bwd_ref_gpu(const FwdRefArgs& a, ElemType elem_type, const void* q, const void* k, const void* v,
                            const void* o, const void* dout, const float* lse, float* dsum, float* dq, float* dk,
                            float* dv, cudaStream_t stream) {
    if (a.hdim_q > kBlock * kMaxColsPerThread || a.hdim_v > kBlock * kMaxColsPerThread || a.hdim_q <= 0 ||
        a.hdim_v <= 0 || a.nhead_q <= 0 || a.nhead_k <= 0 || a.nhead_q % a.nhead_k != 0 || a.nhead_q > 65535 ||
        a.batch > 65535 || (a.is_group_mode ? a.max_seqlen_q : a.seqlen_q) > 0x7fffffff ||
        (a.is_group_mode ? a.max_seqlen_k : a.seqlen_k) > 0x7fffffff)
        return cudaErrorInvalidValue;
    return elem_type == ElemType::fp16 ? launch_bwd<__half>(a, q, k, v, o, dout, lse, dsum, dq, dk, dv, stream)
                                       : launch_bwd<__nv_bfloat16>(a, q, k, v, o, dout, lse, dsum, dq, dk, dv, stream);
}

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
