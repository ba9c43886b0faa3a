// Host helpers over the fields that mha_fwd_args and mha_bwd_args share by name (sizes, Q/K/V
// pointers and strides, sequence-length arrays, mask): their validation and their copy into
// AttnParams, written once for both APIs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/arg_check.h"
#include "common/attn_params.h"
#include "common/kernel_key.h"

namespace aiter::host {

// The element type and mask kind of a call, as the instance keys spell them.
template <class Args>
DType dtype_of(const Args& a) {
    return a.data_type == "bf16" ? DType::bf16 : DType::fp16;
}
template <class Args>
MaskKind mask_of(const Args& a) {
    return a.mask_type == 0 ? MaskKind::none : MaskKind::window;
}

// Rows of the longest q sequence: max_seqlen_q in group mode where given, else seqlen_q.
template <class Args>
int longest_q(const Args& a) {
    return a.is_group_mode && a.max_seqlen_q > 0 ? a.max_seqlen_q : a.seqlen_q;
}

// Every int32 length array that is given is 4-byte aligned (the kernels read them as int32).
template <class Args>
void validate_length_arrays(const char* api, const Args& a) {
    for (const auto& [p, field] : {std::pair{a.seqstart_q_ptr, "seqstart_q_ptr"}, std::pair{a.seqstart_k_ptr, "seqstart_k_ptr"},
                                   std::pair{a.seqlen_k_ptr, "seqlen_k_ptr"}, std::pair{a.cu_seqlen_q_ptr, "cu_seqlen_q_ptr"},
                                   std::pair{a.cu_seqlen_k_ptr, "cu_seqlen_k_ptr"}})
        require_int32_array(api, p, field);
}

// Sizes and kinds: non-negative lengths, heads that divide, head dims in [1, 256], mask / bias
// kinds and p_drop in range. Throws std::invalid_argument naming the field (arg_check.h).
template <class Args>
void validate_attn_sizes(const char* api, const Args& a) {
    auto fail = [api](const std::string& field, const std::string& expected, const std::string& got) {
        fail_arg(api, field, expected, got);
    };
    require_nonneg(api, a.batch, "batch");
    require_length(api, a.seqlen_q, "seqlen_q");
    require_length(api, a.seqlen_k, "seqlen_k");
    require_length(api, a.max_seqlen_q, "max_seqlen_q");
    if (a.nhead_q <= 0) fail("nhead_q", "a value > 0", arg_str(a.nhead_q));
    if (a.nhead_k <= 0) fail("nhead_k", "a value > 0", arg_str(a.nhead_k));
    if (a.nhead_q % a.nhead_k != 0)
        fail("nhead_k", "a divisor of nhead_q (" + arg_str(a.nhead_q) + ")", arg_str(a.nhead_k));
    if (a.hdim_q < 1 || a.hdim_q > 256) fail("hdim_q", "a value in [1, 256]", arg_str(a.hdim_q));
    if (a.hdim_v < 1 || a.hdim_v > 256) fail("hdim_v", "a value in [1, 256]", arg_str(a.hdim_v));
    if (a.mask_type < 0 || a.mask_type > 3)
        fail("mask_type", "0 (none), 1 (top-left), 2 (bottom-right) or 3 (generic window)", arg_str(a.mask_type));
    if (a.bias_type < 0 || a.bias_type > 2)
        fail("bias_type", "0 (none), 1 (elementwise) or 2 (alibi)", arg_str(a.bias_type));
    if (!(a.p_drop >= 0.f && a.p_drop < 1.f)) fail("p_drop", "a value in [0, 1)", arg_str(a.p_drop));
    validate_length_arrays(api, a);
}

// The shared fields of validated arguments into p: Q/K/V pointers and strides, O's strides,
// sizes, the grid's row extent, the sequence-length arrays and the mask. The caller sets O and
// LSE (pointers and LSE strides), the scales and its own fields.
template <class Args>
void set_attn_params(AttnParams& p, const Args& a) {
    p.q = a.q_ptr;
    p.k = a.k_ptr;
    p.v = a.v_ptr;
    p.q_row_stride = a.stride_q, p.k_row_stride = a.stride_k, p.v_row_stride = a.stride_v, p.o_row_stride = a.stride_o;
    p.q_head_stride = a.nhead_stride_q, p.k_head_stride = a.nhead_stride_k, p.v_head_stride = a.nhead_stride_v;
    p.o_head_stride = a.nhead_stride_o;
    p.q_batch_stride = a.batch_stride_q, p.k_batch_stride = a.batch_stride_k, p.v_batch_stride = a.batch_stride_v;
    p.o_batch_stride = a.batch_stride_o;
    p.batch = a.batch;
    p.nhead_q = a.nhead_q;
    p.nhead_k = a.nhead_k;
    p.h_ratio = a.nhead_q / a.nhead_k;
    p.hdim_q = a.hdim_q;
    p.hdim_v = a.hdim_v;
    p.seqlen_q = a.seqlen_q;
    p.seqlen_k = a.seqlen_k;
    p.max_seqlen_q = longest_q(a);
    p.is_group_mode = a.is_group_mode;
    p.seqstart_q = static_cast<const int*>(a.seqstart_q_ptr);
    p.seqstart_k = static_cast<const int*>(a.seqstart_k_ptr);
    p.seqlen_k_ptr = static_cast<const int*>(a.seqlen_k_ptr);
    p.cu_seqlen_q = static_cast<const int*>(a.cu_seqlen_q_ptr);
    p.cu_seqlen_k = static_cast<const int*>(a.cu_seqlen_k_ptr);
    p.mask = MaskSpec{a.mask_type, a.mask_type == 0 ? -1 : a.window_size_left, a.mask_type == 0 ? -1 : a.window_size_right};
}

}  // namespace aiter::host
