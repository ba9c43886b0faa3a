// What every kernel family reads of one attention call, filled by the host APIs after
// validation: Q, K, V, O and LSE with their 64-bit strides (elements; the last dimension is
// contiguous), the sizes, the sequence-length arrays, the scales and the mask. The forward
// uses it as it is (FwdParams); BwdParams and SplitkvParams add what is their own.
#pragma once

#include <cstdint>

#include "common/mask.h"

namespace aiter {

struct AttnParams {
    const void* q = nullptr;  // [b, hq, sq, dq]
    const void* k = nullptr;  // [b, hk, sk, dq]
    const void* v = nullptr;  // [b, hk, sk, dv]
    void* o       = nullptr;  // [b, hq, sq, dv]: the forward writes it, the backward reads it
    float* lse    = nullptr;  // [b, hq, sq] (batch) or [hq, total_q] (group); forward: null = not stored

    int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;
    int64_t q_head_stride = 0, k_head_stride = 0, v_head_stride = 0, o_head_stride = 0,
            lse_head_stride = 0;
    int64_t q_batch_stride = 0, k_batch_stride = 0, v_batch_stride = 0, o_batch_stride = 0,
            lse_batch_stride = 0;

    int batch = 0, nhead_q = 0, nhead_k = 0, hdim_q = 0, hdim_v = 0;
    int h_ratio = 1;        // nhead_q / nhead_k
    int seqlen_q = 0;       // batch mode: rows per batch; group mode: total physical rows
    int seqlen_k = 0;       // batch mode: keys per batch; group mode: total physical keys
    int max_seqlen_q = 0;   // grid extent along rows
    int tile_section = 0;   // masked tile order: (batch, head) pairs per L2 section (kernels/common/tile_order.cuh)

    bool is_group_mode = false;
    const int* seqstart_q   = nullptr;  // [b+1] physical (group mode)
    const int* seqstart_k   = nullptr;  // [b+1] physical (group mode)
    const int* seqlen_k_ptr = nullptr;  // [b]   logical key lengths
    const int* cu_seqlen_q  = nullptr;  // [b+1] logical
    const int* cu_seqlen_k  = nullptr;  // [b+1] logical

    float scale_s = 1.f;     // multiplies QKᵀ
    float scale_log2 = 1.f;  // the factor inside exp2: scale_s·log2(e), or log2(e) with the soft-cap
    float softcap = 0.f;     // > 0: logits = softcap · tanh(scale_s · qk / softcap)
    MaskSpec mask;
};

}  // namespace aiter
