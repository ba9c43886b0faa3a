// Pre-kernel of the v2 backward (8 lanes per query row, logical rows only):
//   D[i] = Σ_d dO[i,d]·O[i,d]   (fp32; products of the stored fp16/bf16 values)
// (dq_acc is zeroed by the host with cudaMemsetAsync; its conversion to dQ is the instance's
// own kernel, kernels/bwd_v2/kernel.cuh, because its layout follows the instance's tile.)
#include <cutlass/numeric_types.h>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"

namespace aiter::bwd {
namespace {

// 8 lanes per row, each loading 16 bytes (8 elements) of O and of dO per step: the validated
// v2 path has 16-byte aligned rows and hdim_v a multiple of 8.
constexpr int kLanesPerRow = 8;
constexpr int kRowsPerCta  = 8 * 32 / kLanesPerRow;  // 8 warps

template <class Element>
__global__ void __launch_bounds__(kRowsPerCta * kLanesPerRow) bwd_pre_kernel(const __grid_constant__ BwdParams p) {
    const int sub = threadIdx.x % kLanesPerRow;
    const int row = blockIdx.x * kRowsPerCta + threadIdx.x / kLanesPerRow;
    const BwdBlockInfo bi = bwd_block_info(p, blockIdx.z, blockIdx.y);
    const bool live = row < bi.sq;  // every lane stays for the shuffles
    float sum = 0.f;
    if (live) {
        const uint4* o  = reinterpret_cast<const uint4*>(static_cast<const Element*>(p.o) + bi.o + row * p.o_row_stride);
        const uint4* dO = reinterpret_cast<const uint4*>(static_cast<const Element*>(p.dout) + bi.dout + row * p.do_row_stride);
#pragma unroll 4
        for (int c = sub; c < p.hdim_v / 8; c += kLanesPerRow) {
            const uint4 a = o[c], g = dO[c];
            const Element* ea = reinterpret_cast<const Element*>(&a);
            const Element* eg = reinterpret_cast<const Element*>(&g);
#pragma unroll
            for (int i = 0; i < 8; ++i) sum += float(ea[i]) * float(eg[i]);
        }
    }
    for (int off = kLanesPerRow / 2; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffff, sum, off);
    if (live && sub == 0) p.d[bi.d + row] = sum;
}

// Row copy between a caller's tensor and its packed, 16-byte aligned copy (mha_bwd's path for
// unaligned head dims / strides / pointers): logical rows only (rows past the lengths are never
// read by the kernels, and the caller's are never written); columns [d_copy, d_fill) are zeroed.
__global__ void __launch_bounds__(256) bwd_copy_rows_kernel(const __grid_constant__ BwdParams p,
                                                            const __grid_constant__ RowCopy c) {
    const int lane = threadIdx.x % 32;
    const int row  = blockIdx.x * 8 + threadIdx.x / 32;
    const int h = blockIdx.y, b = blockIdx.z;
    const BwdBlockInfo bi = bwd_block_info(p, b, c.keys ? h * p.h_ratio : h);
    if (row >= (c.keys ? bi.sk : bi.sq)) return;
    int64_t row0 = 0;
    if (p.is_group_mode) row0 = c.keys ? p.seqstart_k[b] : p.seqstart_q[b];
    const int64_t bb = p.is_group_mode ? 0 : b;
    const int64_t r  = row0 + row;
    const uint16_t* src = static_cast<const uint16_t*>(c.src) + bb * c.src_batch + h * c.src_head + r * c.src_row;
    uint16_t* dst       = static_cast<uint16_t*>(c.dst) + bb * c.dst_batch + h * c.dst_head + r * c.dst_row;
    for (int i = lane; i < c.d_fill; i += 32) dst[i] = i < c.d_copy ? src[i] : uint16_t(0);
}

// Launches kernel_fp16 or kernel_bf16 over (row blocks, q heads, batches).
cudaError_t launch_rows(const BwdParams& p, DType dtype, cudaStream_t stream, void (*kernel_fp16)(BwdParams),
                        void (*kernel_bf16)(BwdParams)) {
    const int blocks = (p.max_seqlen_q + kRowsPerCta - 1) / kRowsPerCta;
    if (blocks == 0 || p.batch == 0 || p.nhead_q == 0) return cudaSuccess;
    const dim3 grid(blocks, p.nhead_q, p.batch);
    (dtype == DType::fp16 ? kernel_fp16 : kernel_bf16)<<<grid, kRowsPerCta * kLanesPerRow, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_bwd_copy_rows(const BwdParams& p, const RowCopy& c, cudaStream_t stream) {
    const int rows = c.keys ? p.max_seqlen_k : p.max_seqlen_q;
    const int heads = c.keys ? p.nhead_k : p.nhead_q;
    if (rows == 0 || heads == 0 || p.batch == 0 || c.d_fill == 0) return cudaSuccess;
    bwd_copy_rows_kernel<<<dim3((rows + 7) / 8, heads, p.batch), 256, 0, stream>>>(p, c);
    return cudaGetLastError();
}

cudaError_t launch_bwd_pre(const BwdParams& p, DType dtype, cudaStream_t stream) {
    return launch_rows(p, dtype, stream, &bwd_pre_kernel<cutlass::half_t>, &bwd_pre_kernel<cutlass::bfloat16_t>);
}

}  // namespace aiter::bwd
