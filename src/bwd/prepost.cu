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
    if (live && sub == 0) p.d[bi.lse + row] = sum;
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

cudaError_t launch_bwd_pre(const BwdParams& p, DType dtype, cudaStream_t stream) {
    return launch_rows(p, dtype, stream, &bwd_pre_kernel<cutlass::half_t>, &bwd_pre_kernel<cutlass::bfloat16_t>);
}

}  // namespace aiter::bwd
