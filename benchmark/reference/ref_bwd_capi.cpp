// extern "C" shim around the CPU backward reference (reference/mha_bwd_ref.h) for ctypes (tests/).
//
// Build: g++ -O2 -std=c++20 -shared -fPIC -I src -I benchmark benchmark/reference/ref_bwd_capi.cpp
//
// Batch mode, contiguous [b, h, s, d] tensors (bhsd). dq/dk/dv receive fp32 gradients.
// Returns 0, or -1 with a message in err[err_len].
#include <cstdint>
#include <cstring>
#include <exception>

#include "reference/mha_bwd_ref.h"

extern "C" int mha_bwd_ref_c(const float* q, const float* k, const float* v, const float* o, const float* dout,
                             float* dq, float* dk, float* dv, int batch, int nhead_q, int nhead_k, int hdim_q,
                             int hdim_v, int64_t seqlen_q, int64_t seqlen_k, float scale_s, int mask_type,
                             int window_left, int window_right, char* err, int err_len) {
    try {
        bench::FwdRefArgs a;
        a.batch = batch, a.nhead_q = nhead_q, a.nhead_k = nhead_k, a.hdim_q = hdim_q, a.hdim_v = hdim_v;
        a.seqlen_q = seqlen_q, a.seqlen_k = seqlen_k, a.scale_s = scale_s;
        a.mask = aiter::MaskSpec{mask_type, window_left, window_right};
        a.stride_q = hdim_q, a.nhead_stride_q = seqlen_q * hdim_q, a.batch_stride_q = nhead_q * seqlen_q * hdim_q;
        a.stride_k = hdim_q, a.nhead_stride_k = seqlen_k * hdim_q, a.batch_stride_k = nhead_k * seqlen_k * hdim_q;
        a.stride_v = hdim_v, a.nhead_stride_v = seqlen_k * hdim_v, a.batch_stride_v = nhead_k * seqlen_k * hdim_v;
        a.stride_o = hdim_v, a.nhead_stride_o = seqlen_q * hdim_v, a.batch_stride_o = nhead_q * seqlen_q * hdim_v;
        bench::mha_bwd_ref(a, q, k, v, o, dout, dq, dk, dv, 2);
        return 0;
    } catch (const std::exception& e) {
        if (err && err_len > 0) {
            std::strncpy(err, e.what(), static_cast<size_t>(err_len) - 1);
            err[err_len - 1] = '\0';
        }
        return -1;
    }
}
