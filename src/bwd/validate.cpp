#include "bwd/validate.h"

#include "common/arg_check.h"
#include "common/attn_args.h"
#include "common/dispatch.h"
#include "common/tensor_check.h"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace aiter::bwd {
namespace {

constexpr const char* kApi = "mha_bwd";

[[noreturn]] void fail(const std::string& field, const std::string& expected, const std::string& got) {
    host::fail_arg(kApi, field, expected, got);
}

template <class T>
std::string str(const T& v) {
    return host::arg_str(v);
}

void require_ptr(const void* p, const char* field, const std::string& why) { host::require_ptr(kApi, p, field, why); }

void require_nonneg(int64_t v, const char* field) { host::require_nonneg(kApi, v, field); }

}  // namespace

void validate_bwd_args(const mha_bwd_args& a) {
    if (a.data_type != "fp16" && a.data_type != "bf16")
        fail("data_type", "\"fp16\" or \"bf16\"", "\"" + a.data_type + "\"");
    host::validate_attn_sizes(kApi, a);
    host::require_length(kApi, a.max_seqlen_k, "max_seqlen_k");
    host::require_int32_array(kApi, a.seqlen_q_ptr, "seqlen_q_ptr");
    if (!(std::isfinite(a.p_undrop) && a.p_undrop > 0.f))
        fail("p_undrop", "a finite value > 0 (1 - p_drop)", str(a.p_undrop));
    if (!(std::isfinite(a.scale) && a.scale > 0.f))
        fail("scale", "a finite value > 0 (1/sqrt(hdim_q) is usual)", str(a.scale));
    if (a.has_dbias && a.bias_type != 1)
        fail("has_dbias", "false unless bias_type is 1 (elementwise)", "true with bias_type " + str(a.bias_type));
    if (a.v3_bf16_cvt < 0 || a.v3_bf16_cvt > 2)
        fail("v3_bf16_cvt", "0 (RTNE), 1 (RTNA) or 2 (RTZ)", str(a.v3_bf16_cvt));

    // Pointers: a tensor with no elements may be null.
    const bool any_q = a.batch > 0 && a.seqlen_q > 0;
    const bool any_k = a.batch > 0 && a.seqlen_k > 0;
    if (any_q) {
        require_ptr(a.q_ptr, "q_ptr", "query tensor");
        require_ptr(a.o_ptr, "o_ptr", "forward output");
        require_ptr(a.do_ptr, "do_ptr", "output gradient");
        require_ptr(a.lse_ptr, "lse_ptr", "fp32 log-sum-exp of the forward");
        require_ptr(a.dq_ptr, "dq_ptr", "query gradient (output)");
    }
    if (any_k) {
        require_ptr(a.k_ptr, "k_ptr", "key tensor");
        require_ptr(a.v_ptr, "v_ptr", "value tensor");
        require_ptr(a.dk_ptr, "dk_ptr", "key gradient (output)");
        require_ptr(a.dv_ptr, "dv_ptr", "value gradient (output)");
    }
    if (a.is_group_mode && a.batch > 0) {
        require_ptr(a.seqstart_q_ptr, "seqstart_q_ptr", "int32 [batch+1], required in group mode");
        require_ptr(a.seqstart_k_ptr, "seqstart_k_ptr", "int32 [batch+1], required in group mode");
    }

    const struct { const char* name; int64_t v; } strides[] = {
        {"stride_q", a.stride_q}, {"stride_k", a.stride_k}, {"stride_v", a.stride_v},
        {"stride_o", a.stride_o}, {"stride_do", a.stride_do}, {"stride_dq", a.stride_dq},
        {"stride_dk", a.stride_dk}, {"stride_dv", a.stride_dv},
        {"nhead_stride_q", a.nhead_stride_q}, {"nhead_stride_k", a.nhead_stride_k},
        {"nhead_stride_v", a.nhead_stride_v}, {"nhead_stride_o", a.nhead_stride_o},
        {"nhead_stride_do", a.nhead_stride_do}, {"nhead_stride_lsed", a.nhead_stride_lsed},
        {"nhead_stride_dq", a.nhead_stride_dq}, {"nhead_stride_dk", a.nhead_stride_dk},
        {"nhead_stride_dv", a.nhead_stride_dv},
        {"batch_stride_q", a.batch_stride_q}, {"batch_stride_k", a.batch_stride_k},
        {"batch_stride_v", a.batch_stride_v}, {"batch_stride_o", a.batch_stride_o},
        {"batch_stride_do", a.batch_stride_do}, {"batch_stride_lsed", a.batch_stride_lsed},
        {"batch_stride_dq", a.batch_stride_dq}, {"batch_stride_dk", a.batch_stride_dk},
        {"batch_stride_dv", a.batch_stride_dv},
    };
    for (const auto& s : strides) require_nonneg(s.v, s.name);
    auto row_stride = [](const char* name, int64_t stride, int hdim, int rows) {
        if (rows > 1 && stride < hdim)
            fail(name, "a row stride >= the head dim (" + str(hdim) + ")", str(stride));
    };
    row_stride("stride_q", a.stride_q, a.hdim_q, a.seqlen_q);
    row_stride("stride_dq", a.stride_dq, a.hdim_q, a.seqlen_q);
    row_stride("stride_o", a.stride_o, a.hdim_v, a.seqlen_q);
    row_stride("stride_do", a.stride_do, a.hdim_v, a.seqlen_q);
    row_stride("stride_k", a.stride_k, a.hdim_q, a.seqlen_k);
    row_stride("stride_dk", a.stride_dk, a.hdim_q, a.seqlen_k);
    row_stride("stride_v", a.stride_v, a.hdim_v, a.seqlen_k);
    row_stride("stride_dv", a.stride_dv, a.hdim_v, a.seqlen_k);

    // Address ranges and layouts (common/tensor_check.h); group mode: one "batch" of every
    // physical row. D, when given, has LSE's layout.
    const int64_t nb = a.is_group_mode ? 1 : a.batch;
    struct T4 {
        const char *name, *ptr_field;
        const void* ptr;
        bool out, keys;
        int hdim;
        const char *bs, *hs, *rs;
        int64_t b, h, r;
    };
    const T4 tensors[] = {
        {"q", "q_ptr", a.q_ptr, false, false, a.hdim_q, "batch_stride_q", "nhead_stride_q", "stride_q",
         a.batch_stride_q, a.nhead_stride_q, a.stride_q},
        {"o", "o_ptr", a.o_ptr, false, false, a.hdim_v, "batch_stride_o", "nhead_stride_o", "stride_o",
         a.batch_stride_o, a.nhead_stride_o, a.stride_o},
        {"do", "do_ptr", a.do_ptr, false, false, a.hdim_v, "batch_stride_do", "nhead_stride_do", "stride_do",
         a.batch_stride_do, a.nhead_stride_do, a.stride_do},
        {"dq", "dq_ptr", a.dq_ptr, true, false, a.hdim_q, "batch_stride_dq", "nhead_stride_dq", "stride_dq",
         a.batch_stride_dq, a.nhead_stride_dq, a.stride_dq},
        {"k", "k_ptr", a.k_ptr, false, true, a.hdim_q, "batch_stride_k", "nhead_stride_k", "stride_k",
         a.batch_stride_k, a.nhead_stride_k, a.stride_k},
        {"v", "v_ptr", a.v_ptr, false, true, a.hdim_v, "batch_stride_v", "nhead_stride_v", "stride_v",
         a.batch_stride_v, a.nhead_stride_v, a.stride_v},
        {"dk", "dk_ptr", a.dk_ptr, true, true, a.hdim_q, "batch_stride_dk", "nhead_stride_dk", "stride_dk",
         a.batch_stride_dk, a.nhead_stride_dk, a.stride_dk},
        {"dv", "dv_ptr", a.dv_ptr, true, true, a.hdim_v, "batch_stride_dv", "nhead_stride_dv", "stride_dv",
         a.batch_stride_dv, a.nhead_stride_dv, a.stride_dv},
    };
    for (const T4& t : tensors)
        host::check_tensor(kApi, {t.name, t.ptr_field, t.ptr, 2, t.out,
                                  {{t.bs, nb, t.b},
                                   {t.hs, t.keys ? a.nhead_k : a.nhead_q, t.h},
                                   {t.rs, t.keys ? a.seqlen_k : a.seqlen_q, t.r},
                                   {"hdim", t.hdim, 1}}});
    // LSE is read; the caller's D (d_ptr, LSE's strides) is written by the pre-kernel. Without
    // d_ptr D is the library's own contiguous workspace.
    for (const auto& [name, field, ptr, out] : {std::tuple{"lse", "lse_ptr", a.lse_ptr, false},
                                                std::tuple{"d", "d_ptr", static_cast<const void*>(a.d_ptr), true}}) {
        if (ptr == nullptr) continue;
        host::check_tensor(kApi, {name, field, ptr, 4, out,
                                  {{"batch_stride_lsed", nb, a.batch_stride_lsed},
                                   {"nhead_stride_lsed", a.nhead_q, a.nhead_stride_lsed},
                                   {"seqlen_q", a.seqlen_q, 1}}});
    }
}

std::string unsupported_feature(const mha_bwd_args& a) {
    if (a.bias_type != 0)
        return "bias_type " + str(a.bias_type) + " (elementwise/alibi bias) is not supported yet (nor by the forward)";
    if (a.has_dbias) return "has_dbias (bias gradient) is not supported yet";
    if (a.has_dropout || a.p_drop > 0.f) return "dropout (has_dropout / p_drop > 0) is not supported yet (nor by the forward)";
    if (a.is_store_randval) return "is_store_randval (storing dropout randoms) is not supported yet";
    if (a.data_type == "bf16" && a.v3_bf16_cvt != 0)
        return "v3_bf16_cvt " + str(a.v3_bf16_cvt) + ": v2 rounds bf16 outputs to nearest even only (0)";
    if (a.batch > 65535) return "batch " + str(a.batch) + " exceeds the grid limit 65535";
    if (a.nhead_q > 65535) return "nhead_q " + str(a.nhead_q) + " exceeds the grid limit 65535";
    return {};
}

std::string alignment_problem(const mha_bwd_args& a) {
    // The v2 backward kernels move 16-byte rows (cp.async); mha_bwd packs other inputs.
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return "hdim_q " + str(a.hdim_q) + " / hdim_v " + str(a.hdim_v) + ": not multiples of 8";
    const bool batch = !a.is_group_mode;  // batch strides are unused in group mode
    return host::alignment_problem(
        {{"q_ptr", a.q_ptr}, {"k_ptr", a.k_ptr}, {"v_ptr", a.v_ptr}, {"o_ptr", a.o_ptr}, {"do_ptr", a.do_ptr},
         {"dq_ptr", a.dq_ptr}, {"dk_ptr", a.dk_ptr}, {"dv_ptr", a.dv_ptr}},
        {{"stride_q", a.stride_q}, {"stride_k", a.stride_k}, {"stride_v", a.stride_v}, {"stride_o", a.stride_o},
         {"stride_do", a.stride_do}, {"stride_dq", a.stride_dq}, {"stride_dk", a.stride_dk}, {"stride_dv", a.stride_dv},
         {"nhead_stride_q", a.nhead_stride_q}, {"nhead_stride_k", a.nhead_stride_k},
         {"nhead_stride_v", a.nhead_stride_v}, {"nhead_stride_o", a.nhead_stride_o},
         {"nhead_stride_do", a.nhead_stride_do}, {"nhead_stride_dq", a.nhead_stride_dq},
         {"nhead_stride_dk", a.nhead_stride_dk}, {"nhead_stride_dv", a.nhead_stride_dv},
         {"batch_stride_q", batch ? a.batch_stride_q : 0}, {"batch_stride_k", batch ? a.batch_stride_k : 0},
         {"batch_stride_v", batch ? a.batch_stride_v : 0}, {"batch_stride_o", batch ? a.batch_stride_o : 0},
         {"batch_stride_do", batch ? a.batch_stride_do : 0}, {"batch_stride_dq", batch ? a.batch_stride_dq : 0},
         {"batch_stride_dk", batch ? a.batch_stride_dk : 0}, {"batch_stride_dv", batch ? a.batch_stride_dv : 0}});
}

}  // namespace aiter::bwd
