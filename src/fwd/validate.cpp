#include "fwd/validate.h"

#include "common/attn_args.h"
#include "common/tensor_check.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace aiter::fwd {
namespace {
template <class T>
std::string str(const T& v) {
    return arg_str(v);
}
}  // namespace

void validate_fwd_args(const mha_fwd_args& a, const char* api, const KvExtents* kv_ext) {
    auto fail = [api](const std::string& field, const std::string& expected, const std::string& got) {
        fail_arg(api, field, expected, got);
    };
    if (a.data_type != "fp16" && a.data_type != "bf16" && a.data_type != "fp8bf16")
        fail("data_type", "one of \"fp16\", \"bf16\", \"fp8bf16\"", "\"" + a.data_type + "\"");

    host::validate_attn_sizes(api, a);
    if (!(std::isfinite(a.scale_s) && a.scale_s > 0.f))
        fail("scale_s", "a finite value > 0 (1/sqrt(hdim_q) is usual)", str(a.scale_s));
    if (!(std::isfinite(a.logits_soft_cap) && a.logits_soft_cap >= 0.f))
        fail("logits_soft_cap", "a finite value >= 0 (0 disables it)", str(a.logits_soft_cap));
    require_nonneg(api, a.min_seqlen_q, "min_seqlen_q");
    require_nonneg(api, a.qscale_type, "qscale_type");
    if (a.how_v3_bf16_cvt < 0 || a.how_v3_bf16_cvt > 2)
        fail("how_v3_bf16_cvt", "0 (RTNE), 1 (RTNA) or 2 (RTZ)", str(a.how_v3_bf16_cvt));

    // Pointers: a tensor with no elements may be null.
    const bool any_q = a.batch > 0 && a.seqlen_q > 0;
    const bool any_k = a.batch > 0 && a.seqlen_k > 0;
    if (any_q) {
        require_ptr(api, a.q_ptr, "q_ptr", "query tensor");
        require_ptr(api, a.o_ptr, "o_ptr", "output tensor");
        if (a.has_lse) require_ptr(api, a.lse_ptr, "lse_ptr", "has_lse is true");
    }
    if (any_k) {
        require_ptr(api, a.k_ptr, "k_ptr", "key tensor");
        require_ptr(api, a.v_ptr, "v_ptr", "value tensor");
    }
    if (a.is_group_mode && a.batch > 0) {
        require_ptr(api, a.seqstart_q_ptr, "seqstart_q_ptr", "int32 [batch+1], required in group mode");
        require_ptr(api, a.seqstart_k_ptr, "seqstart_k_ptr", "int32 [batch+1], required in group mode");
    }

    // Strides: non-negative; a row must not overlap the next one.
    const struct { const char* name; int64_t v; } strides[] = {
        {"stride_q", a.stride_q},           {"stride_k", a.stride_k},
        {"stride_v", a.stride_v},           {"stride_o", a.stride_o},
        {"nhead_stride_q", a.nhead_stride_q}, {"nhead_stride_k", a.nhead_stride_k},
        {"nhead_stride_v", a.nhead_stride_v}, {"nhead_stride_o", a.nhead_stride_o},
        {"nhead_stride_lse", a.nhead_stride_lse}, {"batch_stride_q", a.batch_stride_q},
        {"batch_stride_k", a.batch_stride_k}, {"batch_stride_v", a.batch_stride_v},
        {"batch_stride_o", a.batch_stride_o}, {"batch_stride_lse", a.batch_stride_lse},
    };
    for (const auto& s : strides) require_nonneg(api, s.v, s.name);
    auto row_stride = [&](const char* name, int64_t stride, int hdim, int rows) {
        if (rows > 1 && stride < hdim)
            fail(name, "a row stride >= the head dim (" + str(hdim) + ")", str(stride));
    };
    row_stride("stride_q", a.stride_q, a.hdim_q, a.seqlen_q);
    row_stride("stride_o", a.stride_o, a.hdim_v, a.seqlen_q);
    row_stride("stride_k", a.stride_k, a.hdim_q, a.seqlen_k);
    row_stride("stride_v", a.stride_v, a.hdim_v, a.seqlen_k);

    // Address ranges and layouts (common/tensor_check.h). Group mode: one "batch" of every
    // physical row (batch strides unused). K/V of a split-KV cache: the cache's extents.
    const int elem = 2;  // fp16 / bf16 (fp8 is refused as unsupported before any launch)
    const int64_t nb = a.is_group_mode ? 1 : a.batch;
    auto qo = [&](const char* name, const char* ptr_field, const void* ptr, bool out, int hdim, const char* bs,
                  int64_t bstride, const char* hs, int64_t hstride, const char* rs, int64_t rstride) {
        host::check_tensor(api, {name, ptr_field, ptr, elem, out,
                                 {{bs, nb, bstride}, {hs, a.nhead_q, hstride}, {rs, a.seqlen_q, rstride}, {"hdim", hdim, 1}}});
    };
    qo("q", "q_ptr", a.q_ptr, false, a.hdim_q, "batch_stride_q", a.batch_stride_q, "nhead_stride_q", a.nhead_stride_q,
       "stride_q", a.stride_q);
    qo("o", "o_ptr", a.o_ptr, true, a.hdim_v, "batch_stride_o", a.batch_stride_o, "nhead_stride_o", a.nhead_stride_o,
       "stride_o", a.stride_o);
    if (a.has_lse)
        host::check_tensor(api, {"lse", "lse_ptr", a.lse_ptr, 4, true,
                                 {{"batch_stride_lse", nb, a.batch_stride_lse},
                                  {"nhead_stride_lse", a.nhead_q, a.nhead_stride_lse},
                                  {"seqlen_q", a.seqlen_q, 1}}});
    auto kv = [&](const char* name, const char* ptr_field, const void* ptr, int hdim, const char* bs, int64_t bstride,
                  const char* hs, int64_t hstride, const char* rs, int64_t rstride) {
        const int64_t batches = kv_ext ? kv_ext->batches : nb, rows = kv_ext ? kv_ext->rows : a.seqlen_k;
        host::check_tensor(api, {name, ptr_field, ptr, elem, false,
                                 {{bs, batches, bstride}, {hs, a.nhead_k, hstride}, {rs, rows, rstride}, {"hdim", hdim, 1}}});
    };
    kv("k", "k_ptr", a.k_ptr, a.hdim_q, "batch_stride_k", a.batch_stride_k, "nhead_stride_k", a.nhead_stride_k, "stride_k",
       a.stride_k);
    kv("v", "v_ptr", a.v_ptr, a.hdim_v, "batch_stride_v", a.batch_stride_v, "nhead_stride_v", a.nhead_stride_v, "stride_v",
       a.stride_v);
}

std::string unsupported_feature(const mha_fwd_args& a) {
    if (a.data_type == "fp8bf16") return "data_type fp8bf16 is not supported yet (fp16 and bf16 are)";
    if (a.bias_type != 0) return "bias_type " + str(a.bias_type) + " (elementwise/alibi bias) is not supported yet";
    if (a.p_drop > 0.f) return "dropout (p_drop > 0) is not supported yet";
    if (a.s_randval) return "s_randval (storing dropout randoms) is not supported yet";
    if (a.qscale_type != 0) return "qscale_type " + str(a.qscale_type) + " (fp8 descale) is not supported yet";
    if (a.has_sink) return "has_sink (attention sinks) is not supported yet";
    if (a.data_type == "bf16" && a.how_v3_bf16_cvt != 0)
        return "how_v3_bf16_cvt " + str(a.how_v3_bf16_cvt) +
               " (RTNA/RTZ rounding of bf16 outputs) is not supported; 0 (RTNE) is";
    if (a.batch > 65535) return "batch " + str(a.batch) + " exceeds the grid limit 65535";
    if (a.nhead_q > 65535) return "nhead_q " + str(a.nhead_q) + " exceeds the grid limit 65535";
    return {};
}

}  // namespace aiter::fwd
