// aiter-mha for CUDA: the arguments of the forward APIs (aiter::mha_fwd in mha_fwd.h, and the
// base of mha_fwd_splitkv_args in mha_fwd_splitkv.h). The tensors, layouts and semantics are
// described at the top of mha_fwd.h.
#pragma once

#include <cstdint>
#include <string>

#include "mha_common.h"

namespace aiter {

struct mha_fwd_args {
    // --- selection -------------------------------------------------------------------
    bool use_asm_v3      = false;  // try the Hopper-native v3 family first (falls back to v2)
    bool v3_api_check    = false;  // only answer 1 (a v3 kernel exists) or -1, no launch
    int how_v3_bf16_cvt  = 0;      // bf16 output rounding: 0 RTNE (the only one supported; 1/2 give -1 with the reason)

    std::string data_type = "fp16";  // "fp16" | "bf16" | "fp8bf16"
    bool is_group_mode    = false;
    int bias_type         = 0;  // 0 none, 1 elementwise, 2 alibi
    bool has_lse          = false;
    int qscale_type       = 0;  // fp8 descale mode; 0 = none
    bool has_sink         = false;

    // --- pointers (device) ----------------------------------------------------------
    const void* q_ptr         = nullptr;
    const void* k_ptr         = nullptr;
    const void* v_ptr         = nullptr;
    const void* bias_ptr      = nullptr;
    const void* q_descale_ptr = nullptr;
    const void* k_descale_ptr = nullptr;
    const void* v_descale_ptr = nullptr;
    void* rand_val_ptr        = nullptr;
    void* lse_ptr             = nullptr;
    void* o_ptr               = nullptr;

    const void* seqstart_q_ptr  = nullptr;  // int32 [b+1], group mode, physical prefix sums
    const void* seqstart_k_ptr  = nullptr;  // int32 [b+1], group mode
    const void* seqlen_k_ptr    = nullptr;  // int32 [b], logical key lengths (optional)
    const void* cu_seqlen_q_ptr = nullptr;  // int32 [b+1], logical prefix sums (optional)
    const void* cu_seqlen_k_ptr = nullptr;  // int32 [b+1], logical prefix sums (optional)

    // --- sizes -------------------------------------------------------------------------
    int seqlen_q     = 0;  // batch mode: rows of every batch; group mode: total physical rows
    int seqlen_k     = 0;
    int batch        = 0;
    int max_seqlen_q = 0;  // group mode: the longest q sequence (0: use seqlen_q)
    int hdim_q       = 0;
    int hdim_v       = 0;
    int nhead_q      = 0;
    int nhead_k      = 0;

    float scale_s         = 0.f;  // multiplies QKᵀ; must be > 0
    float logits_soft_cap = 0.f;  // > 0: s = cap * tanh(s / cap) after scaling

    // --- strides, in elements ---------------------------------------------------------
    int64_t stride_q = 0, stride_k = 0, stride_v = 0, stride_bias = 0, stride_randval = 0,
            stride_o = 0;
    int64_t nhead_stride_q = 0, nhead_stride_k = 0, nhead_stride_v = 0, nhead_stride_bias = 0,
            nhead_stride_randval = 0, nhead_stride_lse = 0, nhead_stride_o = 0;
    int64_t batch_stride_q = 0, batch_stride_k = 0, batch_stride_v = 0, batch_stride_bias = 0,
            batch_stride_randval = 0, batch_stride_lse = 0, batch_stride_o = 0;

    // --- mask --------------------------------------------------------------------------
    int window_size_left  = -1;
    int window_size_right = -1;
    int mask_type         = 0;  // mask_enum
    int min_seqlen_q      = 0;

    // --- dropout -----------------------------------------------------------------------
    float p_drop  = 0.f;
    bool s_randval = false;
    drop_seed_offset_t drop_seed_offset = std::pair<uint64_t, uint64_t>{0, 0};
};

}  // namespace aiter
