// Pre-kernel of the v2 backward (one warp per query row, logical rows only):
//   D[i] = Σ_d dO[i,d]·O[i,d]   (fp32; products of the stored fp16/bf16 values)
// (dq_acc is zeroed by the host with cudaMemsetAsync; its conversion to dQ is the instance's
// own kernel, kernels/bwd_v2/kernel.cuh, because its layout follows the instance's tile.)
#include <cutlass/numeric_types.h>

#include "bwd/bwd_key.h"
#include "bwd/bwd_params.h"

namespace aiter::bwd {
namespace {

constexpr int kRowsPerCta = 8;  // one warp per row

template <class Element>
__global__ void __launch_bounds__(kRowsPerCta * 32) bwd_pre_kernel(const __grid_constant__ BwdParams p) {
    const int lane = threadIdx.x % 32;
    const int row  = blockIdx.x * kRowsPerCta + threadIdx.x / 32;
    const BwdBlockInfo bi = bwd_block_info(p, blockIdx.z, blockIdx.y);
    if (row >= bi.sq) return;
    const Element* o  = static_cast<const Element*>(p.o) + bi.o + row * p.o_row_stride;
    const Element* dO = static_cast<const Element*>(p.dout) + bi.dout + row * p.do_row_stride;
    float sum = 0.f;
    for (int d = lane; d < p.hdim_v; d += 32) sum += float(o[d]) * float(dO[d]);
    for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffff, sum, off);
    if (lane == 0) p.d[bi.lse + row] = sum;
}

// Launches kernel_fp16 or kernel_bf16 over (row blocks, q heads, batches).
cudaError_t launch_rows(const BwdParams& p, DType dtype, cudaStream_t stream, void (*kernel_fp16)(BwdParams),
                        void (*kernel_bf16)(BwdParams)) {
    const int blocks = (p.max_seqlen_q + kRowsPerCta - 1) / kRowsPerCta;
    if (blocks == 0 || p.batch == 0 || p.nhead_q == 0) return cudaSuccess;
    const dim3 grid(blocks, p.nhead_q, p.batch);
    (dtype == DType::fp16 ? kernel_fp16 : kernel_bf16)<<<grid, kRowsPerCta * 32, 0, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_bwd_pre(const BwdParams& p, DType dtype, cudaStream_t stream) {
    return launch_rows(p, dtype, stream, &bwd_pre_kernel<cutlass::half_t>, &bwd_pre_kernel<cutlass::bfloat16_t>);
}

}  // namespace aiter::bwd
