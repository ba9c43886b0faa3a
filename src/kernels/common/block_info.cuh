// Where one (batch, head) lives and how many of its rows count, the ONE rule of every family:
//   physical rows: batch mode seqlen_q / seqlen_k rows per batch; group mode the rows
//                  [seqstart[b], seqstart[b+1]) of one packed tensor (batch strides unused)
//   logical rows:  lens[b], else cu[b+1] - cu[b], else the physical count, clamped to
//                  [0, physical] so that malformed lengths never reach past the tensors.
#pragma once

#include <cstdint>

#include "common/attn_params.h"

namespace aiter {

__device__ __forceinline__ int clamp_len(int v, int hi) { return v < 0 ? 0 : (v > hi ? hi : v); }

// The length batch b declares: lens[b], else cu[b+1] - cu[b], else phys (the first array
// given). Its logical length is clamp_len(declared, phys).
__device__ __forceinline__ int declared_len(const int* lens, const int* cu, int b, int phys) {
    return lens ? lens[b] : cu ? cu[b + 1] - cu[b] : phys;
}

// Batch b's rows: the first physical row of Q and K (group mode; 0 in batch mode) and the
// physical and logical lengths. q_lens: logical q lengths [b] where the API has them (the
// backward's seqlen_q_ptr), else null.
struct BatchRows {
    int64_t q_row0, k_row0;
    int sq, sk;
};

__device__ __forceinline__ BatchRows batch_rows(const AttnParams& p, int b, const int* q_lens) {
    int64_t q_row0 = 0, k_row0 = 0;
    int sq_phys = p.seqlen_q, sk_phys = p.seqlen_k;
    if (p.is_group_mode) {
        q_row0  = p.seqstart_q[b];
        k_row0  = p.seqstart_k[b];
        sq_phys = max(p.seqstart_q[b + 1] - p.seqstart_q[b], 0);
        sk_phys = max(p.seqstart_k[b + 1] - p.seqstart_k[b], 0);
    }
    const int sq = declared_len(q_lens, p.cu_seqlen_q, b, sq_phys);
    const int sk = declared_len(p.seqlen_k_ptr, p.cu_seqlen_k, b, sk_phys);
    return BatchRows{q_row0, k_row0, clamp_len(sq, sq_phys), clamp_len(sk, sk_phys)};
}

// One (batch, q head) and its kv head: offsets (elements) of row 0 of Q, K, V, O and LSE, the
// first physical row of the batch (group mode; 0 in batch mode) and the logical lengths.
struct BlockInfo {
    int64_t q_offset, k_offset, v_offset, o_offset, lse_offset;
    int q_row0, k_row0;
    int sq, sk;
};

// hk: the kv head of q head h (h / p.h_ratio).
__device__ __forceinline__ BlockInfo block_info(const AttnParams& p, int b, int h, int hk) {
    const BatchRows r = batch_rows(p, b, nullptr);
    const int64_t q_row0 = r.q_row0, k_row0 = r.k_row0;
    BlockInfo bi;
    bi.q_row0 = int(q_row0);
    bi.k_row0 = int(k_row0);
    bi.sq = r.sq;
    bi.sk = r.sk;
    if (p.is_group_mode) {
        bi.q_offset   = q_row0 * p.q_row_stride + h * p.q_head_stride;
        bi.o_offset   = q_row0 * p.o_row_stride + h * p.o_head_stride;
        bi.k_offset   = k_row0 * p.k_row_stride + hk * p.k_head_stride;
        bi.v_offset   = k_row0 * p.v_row_stride + hk * p.v_head_stride;
        bi.lse_offset = q_row0 + h * p.lse_head_stride;
    } else {
        bi.q_offset   = b * p.q_batch_stride + h * p.q_head_stride;
        bi.o_offset   = b * p.o_batch_stride + h * p.o_head_stride;
        bi.k_offset   = b * p.k_batch_stride + hk * p.k_head_stride;
        bi.v_offset   = b * p.v_batch_stride + hk * p.v_head_stride;
        bi.lse_offset = b * p.lse_batch_stride + h * p.lse_head_stride;
    }
    return bi;
}

__device__ __forceinline__ BlockInfo block_info(const AttnParams& p, int b, int h) {
    return block_info(p, b, h, h / p.h_ratio);
}

}  // namespace aiter
