// extern "C" shim around the CPU reference (reference/mha_fwd_ref.h) for ctypes (tests/).
//
// Build: g++ -O2 -std=c++20 -shared -fPIC -I src -I benchmark benchmark/reference/ref_capi.cpp
//
// strides[14] (int64, elements):
//   stride_q, nhead_stride_q, batch_stride_q,  stride_k, nhead_stride_k, batch_stride_k,
//   stride_v, nhead_stride_v, batch_stride_v,  stride_o, nhead_stride_o, batch_stride_o,
//   nhead_stride_lse, batch_stride_lse
// seqstart_q/k: int32 [batch+1] (group mode, else may be null); seqlen_q_log/seqlen_k_log:
// int32 [batch] or null. lse may be null. Returns 0, or -1 with a message in err[err_len].
// Also exported: ref_float_to_bits_c / ref_bits_to_float_c (reference/half_types.h).
#include <cstdint>
#include <cstring>
#include <exception>

#include "reference/mha_fwd_ref.h"

extern "C" int mha_fwd_ref_c(const float* q, const float* k, const float* v, float* o, float* lse,
                             int batch, int nhead_q, int nhead_k, int hdim_q, int hdim_v,
                             int64_t seqlen_q, int64_t seqlen_k, int is_group_mode,
                             const int32_t* seqstart_q, const int32_t* seqstart_k,
                             const int32_t* seqlen_q_log, const int32_t* seqlen_k_log,
                             float scale_s, float logits_soft_cap, int mask_type,
                             int window_left, int window_right, const int64_t* strides,
                             int p_round, int num_threads, char* err, int err_len) {
    try {
        bench::FwdRefArgs a;
        a.batch           = batch;
        a.nhead_q         = nhead_q;
        a.nhead_k         = nhead_k;
        a.hdim_q          = hdim_q;
        a.hdim_v          = hdim_v;
        a.is_group_mode   = is_group_mode != 0;
        a.seqlen_q        = seqlen_q;
        a.seqlen_k        = seqlen_k;
        a.seqstart_q      = seqstart_q;
        a.seqstart_k      = seqstart_k;
        a.seqlen_q_log    = seqlen_q_log;
        a.seqlen_k_log    = seqlen_k_log;
        a.scale_s         = scale_s;
        a.logits_soft_cap = logits_soft_cap;
        a.mask            = aiter::MaskSpec{mask_type, window_left, window_right};
        a.p_round         = static_cast<bench::PRound>(p_round);

        int64_t* const dst[14] = {&a.stride_q, &a.nhead_stride_q, &a.batch_stride_q,
                                  &a.stride_k, &a.nhead_stride_k, &a.batch_stride_k,
                                  &a.stride_v, &a.nhead_stride_v, &a.batch_stride_v,
                                  &a.stride_o, &a.nhead_stride_o, &a.batch_stride_o,
                                  &a.nhead_stride_lse, &a.batch_stride_lse};
        for (int i = 0; i < 14; ++i) *dst[i] = strides[i];

        bench::mha_fwd_ref(a, q, k, v, o, lse, num_threads);
        return 0;
    } catch (const std::exception& e) {
        if (err && err_len > 0) {
            std::strncpy(err, e.what(), static_cast<size_t>(err_len) - 1);
            err[err_len - 1] = '\0';
        }
        return -1;
    }
}

// Host fp16/bf16 conversions of reference/half_types.h, for tests.
// elem_type: 0 fp16, 1 bf16. Rounds n floats to 16-bit patterns (RNE) / widens them back.
extern "C" void ref_float_to_bits_c(const float* in, uint16_t* out, int64_t n, int elem_type) {
    const auto t = elem_type == 0 ? bench::ElemType::fp16 : bench::ElemType::bf16;
    for (int64_t i = 0; i < n; ++i) out[i] = bench::float_to_bits(t, in[i]);
}

extern "C" void ref_bits_to_float_c(const uint16_t* in, float* out, int64_t n, int elem_type) {
    const auto t = elem_type == 0 ? bench::ElemType::fp16 : bench::ElemType::bf16;
    for (int64_t i = 0; i < n; ++i) out[i] = bench::bits_to_float(t, in[i]);
}
