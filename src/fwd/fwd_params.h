// Device-side parameters of one forward call, filled by the host API (src/fwd/mha_fwd.cpp)
// from aiter::mha_fwd_args after validation. All offsets are 64-bit.
#pragma once

#include <cstdint>

#include "common/mask.h"

namespace aiter::fwd {

struct FwdParams {
    // Tensors; the last dimension is contiguous.
    const void* q = nullptr;  // [b, hq, sq, dq]
    const void* k = nullptr;  // [b, hk, sk, dq]
    const void* v = nullptr;  // [b, hk, sk, dv]
    void* o       = nullptr;  // [b, hq, sq, dv]
    float* lse    = nullptr;  // [b, hq, sq] (batch) or [hq, total_q] (group); null: not stored

    int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;
    int64_t q_head_stride = 0, k_head_stride = 0, v_head_stride = 0, o_head_stride = 0,
            lse_head_stride = 0;
    int64_t q_batch_stride = 0, k_batch_stride = 0, v_batch_stride = 0, o_batch_stride = 0,
            lse_batch_stride = 0;

    int batch = 0, nhead_q = 0, nhead_k = 0, hdim_q = 0, hdim_v = 0;
    int h_ratio = 1;        // nhead_q / nhead_k
    int seqlen_q = 0;       // batch mode: rows per batch
    int seqlen_k = 0;       // batch mode: keys per batch
    int max_seqlen_q = 0;   // grid extent along rows
    int tile_section = 0;   // masked tile order: (batch, head) pairs per L2 section (block_info.cuh)

    bool is_group_mode = false;
    const int* seqstart_q  = nullptr;  // [b+1] physical (group mode)
    const int* seqstart_k  = nullptr;  // [b+1] physical (group mode)
    const int* seqlen_k_ptr = nullptr; // [b]   logical key lengths
    const int* cu_seqlen_q = nullptr;  // [b+1] logical
    const int* cu_seqlen_k = nullptr;  // [b+1] logical

    float scale_s = 1.f;       // multiplies QKᵀ
    float scale_log2 = 1.f;    // factor applied inside exp2: scale_s*log2(e), or log2(e) with softcap
    float softcap = 0.f;       // > 0: logits = softcap * tanh(scale_s * qk / softcap)
    MaskSpec mask;
};

}  // namespace aiter::fwd
