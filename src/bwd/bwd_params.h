// Device-side parameters of one backward call, filled by the host API (src/bwd/mha_bwd.cpp)
// from aiter::mha_bwd_args after validation. All offsets are 64-bit.
#pragma once

#include <cstdint>

#include "common/attn_params.h"
#if defined(__CUDACC__)
#include "kernels/common/block_info.cuh"
#endif

namespace aiter::bwd {

// The common attention parameters (Q, K, V, the forward's O and LSE, lengths, mask, scale_s)
// plus the gradients, D and the dQ accumulator.
struct BwdParams : AttnParams {
    const void* dout = nullptr; // [b, hq, sq, dv]
    float* d        = nullptr;  // rowsum(dO∘O): the caller's (LSE's strides) or the library's [nb, hq, sq]
    int64_t d_head_stride = 0, d_batch_stride = 0;
    // Outputs
    void* dq = nullptr;         // [b, hq, sq, dq]
    void* dk = nullptr;         // [b, hk, sk, dq]
    void* dv = nullptr;         // [b, hk, sk, dv]
    float* dq_acc = nullptr;    // fp32 dS·K accumulator, unscaled (atomic mode only; layout below)

    int64_t do_row_stride = 0, dq_row_stride = 0, dk_row_stride = 0, dv_row_stride = 0;
    int64_t do_head_stride = 0, dq_head_stride = 0, dk_head_stride = 0, dv_head_stride = 0;
    int64_t do_batch_stride = 0, dq_batch_stride = 0, dk_batch_stride = 0, dv_batch_stride = 0;
    // dq_acc is a sequence of tiles, one per (batch, q head, block of kBlockM query rows), each
    // kBlockM × kHeadDim floats (the kernel's tile and head-dim bucket) stored in the order the
    // dK/dV kernel's threads hold them (kernels/bwd_v2/kernel.cuh, acc_tile_offset): a warp's
    // atomics then cover contiguous memory. Batch b's first tile starts at row
    //   batch mode: b·acc_batch_stride/kHeadDim;   group mode: ⌊(seqstart_q[b] + kBlockM·b) / kBlockM⌋·kBlockM
    // (padded so that batches never share a tile), plus h·acc_head_stride floats for q head h.
    int64_t acc_head_stride = 0, acc_batch_stride = 0;

    int max_seqlen_k = 0;                // grid extent along keys
    const int* seqlen_q_ptr = nullptr;   // [b] logical query lengths (before cu_seqlen_q)
};

#if defined(__CUDACC__)
#define AITER_BWD_HD __host__ __device__
#else
#define AITER_BWD_HD
#endif

// dQ accumulator layout helpers (host: workspace size; device: kernels/bwd_v2/kernel.cuh).
// Group mode: first row of batch b's tiles of block_m rows; batch b's ⌈sq_b / block_m⌉ tiles end
// at or before batch b+1's first row, and every batch ends within bwd_acc_group_rows.
AITER_BWD_HD constexpr int64_t bwd_acc_group_row0(int64_t seqstart_b, int b, int block_m) {
    return (seqstart_b + int64_t(block_m) * b) / block_m * block_m;
}
AITER_BWD_HD constexpr int64_t bwd_acc_group_rows(int64_t total_q, int batch, int block_m) {
    return total_q + int64_t(block_m) * (int64_t(batch) + 1);
}
// Inside a tile: float offset of value pair j of thread t in column chunk c (chunk_floats =
// block_m × chunk width): a warp's pair j covers 2·32 contiguous floats.
AITER_BWD_HD constexpr int64_t bwd_acc_pair_offset(int c, int j, int t, int chunk_floats, int threads) {
    return int64_t(c) * chunk_floats + 2 * (int64_t(j) * threads + t);
}

// Where one (batch, q head) lives: row 0 of each tensor (elements) and the logical lengths
// (kernels/common/block_info.cuh, batch_rows: the one length rule).
struct BwdBlockInfo {
    int64_t q, k, v, o, dout, dq, dk, dv, lse, d;
    int sq, sk;
};

#if defined(__CUDACC__)
__device__ __forceinline__ BwdBlockInfo bwd_block_info(const BwdParams& p, int b, int h) {
    const int hk = h / p.h_ratio;
    const BatchRows r = batch_rows(p, b, p.seqlen_q_ptr);
    BwdBlockInfo bi;
    bi.sq = r.sq;
    bi.sk = r.sk;
    const int64_t bq = p.is_group_mode ? 0 : b;  // batch index for the batch strides
    bi.q    = bq * p.q_batch_stride + h * p.q_head_stride + r.q_row0 * p.q_row_stride;
    bi.o    = bq * p.o_batch_stride + h * p.o_head_stride + r.q_row0 * p.o_row_stride;
    bi.dout = bq * p.do_batch_stride + h * p.do_head_stride + r.q_row0 * p.do_row_stride;
    bi.dq   = bq * p.dq_batch_stride + h * p.dq_head_stride + r.q_row0 * p.dq_row_stride;
    bi.k    = bq * p.k_batch_stride + hk * p.k_head_stride + r.k_row0 * p.k_row_stride;
    bi.v    = bq * p.v_batch_stride + hk * p.v_head_stride + r.k_row0 * p.v_row_stride;
    bi.dk   = bq * p.dk_batch_stride + hk * p.dk_head_stride + r.k_row0 * p.dk_row_stride;
    bi.dv   = bq * p.dv_batch_stride + hk * p.dv_head_stride + r.k_row0 * p.dv_row_stride;
    bi.lse  = bq * p.lse_batch_stride + h * p.lse_head_stride + r.q_row0;
    bi.d    = bq * p.d_batch_stride + h * p.d_head_stride + r.q_row0;
    return bi;
}
#endif

}  // namespace aiter::bwd
