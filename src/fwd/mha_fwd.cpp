// aiter::mha_fwd: validation -> configuration key -> dispatcher table lookup + can_run ->
// launch (optionally timed). See include/mha_fwd.h for the contract.
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/host_util.h"
#include "fwd/fwd_key.h"
#include "fwd/host_common.h"
#include "fwd/validate.h"
#include "kernels/fwd_v2/tile.h"
#include "kernels/fwd_v3/tile.h"
#include "mha_fwd.h"

namespace aiter {
namespace fwd {
namespace {

bool aligned16(const mha_fwd_args& a);

// Rows of the longest q sequence: max_seqlen_q in group mode where given, else seqlen_q.
int longest_q(const mha_fwd_args& a) { return a.is_group_mode && a.max_seqlen_q > 0 ? a.max_seqlen_q : a.seqlen_q; }

FwdV2Key key_of(const mha_fwd_args& a) {
    return FwdV2Key{a.data_type == "bf16" ? DType::bf16 : DType::fp16, host::hdim_bucket(a.hdim_q, a.hdim_v),
                    a.mask_type == 0 ? MaskKind::none : MaskKind::window, aligned16(a)};
}

std::string key_str(const FwdV2Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " hdim<=" + std::to_string(k.hdim) +
           (k.mask == MaskKind::window ? " masked" : " unmasked") +
           (k.aligned ? " 16-byte-aligned" : " unaligned (hdim or a stride not a multiple of 8, or a base pointer not 16-byte aligned)");
}

const FwdV2Instance* find_instance(const FwdV2Key& key) {
    for (int i = 0; i < kNumFwdV2Instances; ++i)
        if (kFwdV2Instances[i].key == key) return &kFwdV2Instances[i];
    return nullptr;
}


std::vector<std::string> instance_names() {
    std::vector<std::string> v;
    for (int i = 0; i < kNumFwdV2Instances; ++i) v.emplace_back(kFwdV2Instances[i].name);
    return v;
}

// Why kernel `name` (needing `bytes` of dynamic shared memory) cannot run on the current
// device, or "" when it can (or when no device can be queried).
std::string smem_shortfall(const char* name, int bytes) {
    const int optin = host::device_smem_optin();
    if (optin < 0 || bytes <= optin) return {};
    return std::string(name) + " needs " + std::to_string(bytes) +
           " bytes of shared memory per block; this device allows " + std::to_string(optin);
}

// Selection without launching: the instance to run, or the reason there is none.
mha_check_result select(const mha_fwd_args& a, const FwdV2Instance** inst, bool query_device) {
    mha_check_result r;
    r.candidates = instance_names();
    *inst = nullptr;
    if (std::string why = unsupported_feature(a); !why.empty()) {
        r.reason = why;
        return r;
    }
    const FwdV2Key key = key_of(a);
    const FwdV2Instance* found = find_instance(key);
    if (found == nullptr) {
        r.reason = "no compiled v2 forward instance for " + key_str(key) +
                   " (rebuild with an instance set that includes it, e.g. compile.py --preset default)";
        return r;
    }
    if (query_device) {
        if (std::string why = smem_shortfall(found->name, found->smem_bytes()); !why.empty()) {
            r.reason = why;
            return r;
        }
    }
    r.supported   = true;
    r.kernel_name = found->name;
    *inst         = found;
    return r;
}

// ---- v3 (Hopper-native) family -------------------------------------------------------

// The (hdim_q, hdim_v) bucket of the v3 family, or {0, 0} when none holds the pair.
std::pair<int, int> v3_bucket(int hq, int hv) {
    if (hq <= 64 && hv <= 64) return {64, 64};
    if (hq <= 128 && hv <= 128) return {128, 128};
    if (hq <= 192 && hv <= 128) return {192, 128};
    if (hq <= 256 && hv <= 256) return {256, 256};
    return {0, 0};
}

std::string v3_key_str(const FwdV3Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " (hdim_q, hdim_v) <= (" + std::to_string(k.hdim_q) +
           ", " + std::to_string(k.hdim_v) + ")" + (k.mask == MaskKind::window ? " masked" : " unmasked") +
           (k.short_seq ? " (short-sequence variant)" : "");
}

// Selection of a v3 kernel without launching: the instance, or the reason there is none.
// query_device: also require an sm_90 device with enough shared memory.
mha_check_result select_v3(const mha_fwd_args& a, const FwdV3Instance** inst, bool query_device) {
    mha_check_result r;
    for (int i = 0; i < kNumFwdV3Instances; ++i) r.candidates.emplace_back(kFwdV3Instances[i].name);
    *inst = nullptr;
    auto fail = [&](std::string why) {
        r.reason = "v3: " + why;
        return r;
    };
    if (std::string why = unsupported_feature(a); !why.empty()) return fail(why);
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return fail("hdim_q and hdim_v must be multiples of 8 (got " + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + ")");
    const auto [bq, bv] = v3_bucket(a.hdim_q, a.hdim_v);
    if (bq == 0)
        return fail("no v3 head-dim bucket holds (hdim_q, hdim_v) = (" + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + "); buckets: (64,64) (128,128) (192,128) (256,256)");
    if (!aligned16(a))
        return fail("TMA needs 16-byte aligned base pointers and strides that are multiples of 8 elements");
    constexpr int64_t kMaxStride = int64_t(1) << 39;  // TMA: strides < 2^40 bytes
    for (int64_t st : {a.stride_q, a.stride_k, a.stride_v, a.nhead_stride_q, a.nhead_stride_k, a.nhead_stride_v,
                       a.batch_stride_q, a.batch_stride_k, a.batch_stride_v})
        if (st >= kMaxStride || st < 0) return fail("a Q/K/V stride of " + std::to_string(st) + " elements is beyond TMA's 2^40-byte limit");
    // The bucket's short-sequence variant where it is faster for these lengths (tile.h; in group
    // mode the key lengths are on the device, so the rule takes them as long as the queries), else
    // its default; either one when only that one was compiled. With the logits soft-cap on,
    // only the default: the short-sequence variants have no soft-cap code (traits.cuh).
    const bool masked  = a.mask_type != 0;
    const bool softcap = a.logits_soft_cap > 0.f;
    const FwdV3Key key{a.data_type == "bf16" ? DType::bf16 : DType::fp16, bq, bv,
                       masked ? MaskKind::window : MaskKind::none,
                       !softcap && fwd_v3_prefer_short(bq, bv, masked, longest_q(a), a.is_group_mode ? 0 : a.seqlen_k)};
    FwdV3Key other = key;
    other.short_seq = !key.short_seq;
    const FwdV3Instance* found = nullptr;
    for (int i = 0; i < kNumFwdV3Instances; ++i)
        if (kFwdV3Instances[i].key == key || (found == nullptr && !softcap && kFwdV3Instances[i].key == other))
            found = &kFwdV3Instances[i];
    if (found == nullptr)
        return fail("no compiled v3 forward instance for " + v3_key_str(key) +
                    (kNumFwdV3Instances == 0 ? " (this library was built without the fwd_v3 api or without sm_90a)"
                                             : " (rebuild with compile.py --api fwd_v3)"));
    // The masked kernels number their (row block, head, batch) tiles in 31 bits (TileDecoder).
    const int block_m   = fwd_v3_tile(bq, bv, found->key.short_seq).block_m;
    const int64_t tiles = (int64_t(longest_q(a)) + block_m - 1) / block_m * a.nhead_q * a.batch;
    if (masked && tiles >= (int64_t(1) << 31))
        return fail(std::to_string(tiles) + " tiles (row blocks of the longest query sequence x nhead_q x batch); at most 2^31 - 1");
    if (query_device) {
        const int cc = host::device_cc();
        if (cc >= 0 && cc != 90)
            return fail("the v3 kernels are sm_90a code (H100/H200); this device is sm_" + std::to_string(cc));
        if (std::string why = smem_shortfall(found->name, found->smem_bytes()); !why.empty()) return fail(why);
    }
    r.supported   = true;
    r.kernel_name = found->name;
    *inst         = found;
    return r;
}

bool aligned16(const mha_fwd_args& a) {
    auto ptr_ok = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    auto str_ok = [](int64_t s) { return s % 8 == 0; };
    bool ok = a.hdim_q % 8 == 0 && a.hdim_v % 8 == 0 && ptr_ok(a.q_ptr) && ptr_ok(a.k_ptr) && ptr_ok(a.v_ptr) &&
              ptr_ok(a.o_ptr) && str_ok(a.stride_q) && str_ok(a.stride_k) && str_ok(a.stride_v) &&
              str_ok(a.stride_o) && str_ok(a.nhead_stride_q) && str_ok(a.nhead_stride_k) &&
              str_ok(a.nhead_stride_v) && str_ok(a.nhead_stride_o);
    if (!a.is_group_mode)
        ok = ok && str_ok(a.batch_stride_q) && str_ok(a.batch_stride_k) && str_ok(a.batch_stride_v) &&
             str_ok(a.batch_stride_o);
    return ok;
}

// Masked tile order (block_info.cuh): how many (batch, head) pairs one section holds so that
// the K and V its CTAs read at the same time stay in L2. A q head brings 1/h_ratio of its kv
// head's K/V (the q heads of one kv head are neighbours in the order); in group mode the
// average key length stands for all. 32 MiB is below the L2 of A100 (40 MB) and H100 (50 MB);
// on a smaller L2 sections only get too large, which is the order without sections.
int fwd_tile_section(const mha_fwd_args& a) {
    constexpr int64_t kL2Budget = int64_t(32) << 20;
    const int64_t keys  = a.is_group_mode ? a.seqlen_k / (a.batch > 0 ? a.batch : 1) : a.seqlen_k;
    const int64_t ratio = a.nhead_k > 0 ? a.nhead_q / a.nhead_k : 1;
    const int64_t bytes = keys * (a.hdim_q + a.hdim_v) * 2 / (ratio > 0 ? ratio : 1);
    const int64_t pairs = int64_t(a.batch) * a.nhead_q;
    if (bytes <= 0) return 0;
    const int64_t section = kL2Budget / bytes;
    return section >= pairs ? 0 : int(section > 1 ? section : 1);
}

FwdParams make_params(const mha_fwd_args& a) {
    FwdParams p;
    p.q = a.q_ptr;
    p.k = a.k_ptr;
    p.v = a.v_ptr;
    p.o = a.o_ptr;
    p.lse = a.has_lse ? static_cast<float*>(a.lse_ptr) : nullptr;
    p.q_row_stride = a.stride_q;
    p.k_row_stride = a.stride_k;
    p.v_row_stride = a.stride_v;
    p.o_row_stride = a.stride_o;
    p.q_head_stride = a.nhead_stride_q;
    p.k_head_stride = a.nhead_stride_k;
    p.v_head_stride = a.nhead_stride_v;
    p.o_head_stride = a.nhead_stride_o;
    p.lse_head_stride = a.nhead_stride_lse;
    p.q_batch_stride = a.batch_stride_q;
    p.k_batch_stride = a.batch_stride_k;
    p.v_batch_stride = a.batch_stride_v;
    p.o_batch_stride = a.batch_stride_o;
    p.lse_batch_stride = a.batch_stride_lse;
    p.batch = a.batch;
    p.nhead_q = a.nhead_q;
    p.nhead_k = a.nhead_k;
    p.h_ratio = a.nhead_q / a.nhead_k;
    p.hdim_q = a.hdim_q;
    p.hdim_v = a.hdim_v;
    p.seqlen_q = a.seqlen_q;
    p.seqlen_k = a.seqlen_k;
    p.max_seqlen_q = longest_q(a);
    p.tile_section = fwd_tile_section(a);
    p.is_group_mode = a.is_group_mode;
    p.seqstart_q = static_cast<const int*>(a.seqstart_q_ptr);
    p.seqstart_k = static_cast<const int*>(a.seqstart_k_ptr);
    p.seqlen_k_ptr = static_cast<const int*>(a.seqlen_k_ptr);
    p.cu_seqlen_q = static_cast<const int*>(a.cu_seqlen_q_ptr);
    p.cu_seqlen_k = static_cast<const int*>(a.cu_seqlen_k_ptr);
    constexpr float kLog2e = 1.4426950408889634f;
    p.scale_s = a.scale_s;
    p.softcap = a.logits_soft_cap;
    p.scale_log2 = a.logits_soft_cap > 0.f ? kLog2e : a.scale_s * kLog2e;
    p.mask = MaskSpec{a.mask_type, a.mask_type == 0 ? -1 : a.window_size_left,
                      a.mask_type == 0 ? -1 : a.window_size_right};
    return p;
}

}  // namespace

FwdParams make_fwd_params(const mha_fwd_args& a) { return make_params(a); }

}  // namespace fwd

mha_check_result mha_fwd_check(const mha_fwd_args& args) {
    fwd::validate_fwd_args(args);
    if (args.use_asm_v3 || args.v3_api_check) {
        const fwd::FwdV3Instance* v3 = nullptr;
        mha_check_result r3 = fwd::select_v3(args, &v3, /*query_device=*/true);
        if (r3.supported || args.v3_api_check) return r3;
    }
    const fwd::FwdV2Instance* inst = nullptr;
    return fwd::select(args, &inst, /*query_device=*/true);
}

std::vector<std::string> mha_fwd_instances() {
    std::vector<std::string> v = fwd::instance_names();
    for (int i = 0; i < fwd::kNumFwdV3Instances; ++i) v.emplace_back(fwd::kFwdV3Instances[i].name);
    return v;
}

float mha_fwd(mha_fwd_args args, const stream_config& s) {
    fwd::validate_fwd_args(args);
    if (args.use_asm_v3 || args.v3_api_check) {
        const fwd::FwdV3Instance* v3 = nullptr;
        const mha_check_result r3 = fwd::select_v3(args, &v3, /*query_device=*/true);
        if (args.v3_api_check) return r3.supported ? 1.f : -1.f;  // answer only, no launch
        if (r3.supported) {
            const fwd::FwdParams p = fwd::make_params(args);
            if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: running %s\n", v3->name);
            return host::run_timed(s, "mha_fwd", [&] { fwd::check_cuda(v3->launch(p, s.stream_id_), v3->name); });
        }
        if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: %s; falling back to v2\n", r3.reason.c_str());
    }
    const fwd::FwdV2Instance* inst = nullptr;
    const mha_check_result sel = fwd::select(args, &inst, /*query_device=*/true);
    if (!sel.supported) {
        if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: not supported: %s\n", sel.reason.c_str());
        return -1.f;
    }
    const fwd::FwdParams p = fwd::make_params(args);
    if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: running %s\n", inst->name);
    return host::run_timed(s, "mha_fwd", [&] { fwd::check_cuda(inst->launch(p, s.stream_id_), inst->name); });
}

}  // namespace aiter
