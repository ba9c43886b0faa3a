// aiter::mha_fwd: validation -> configuration key -> dispatcher table lookup + can_run ->
// launch (optionally timed). See include/mha_fwd.h for the contract.
#include <algorithm>
#include <cstdio>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/attn_args.h"
#include "common/host_util.h"
#include "fwd/fwd_key.h"
#include "fwd/host_common.h"
#include "fwd/validate.h"
#include "kernels/fwd_v3/tile.h"
#include "mha_fwd.h"

namespace aiter {
namespace fwd {
namespace {


// The first Q/K/V/O field that keeps rows from being 16-byte aligned ("" when none does).
std::string alignment_problem(const mha_fwd_args& a) {
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return "hdim_q " + std::to_string(a.hdim_q) + " / hdim_v " + std::to_string(a.hdim_v) + ": not multiples of 8";
    const bool batch = !a.is_group_mode;  // batch strides are unused in group mode
    return host::alignment_problem(
        {{"q_ptr", a.q_ptr}, {"k_ptr", a.k_ptr}, {"v_ptr", a.v_ptr}, {"o_ptr", a.o_ptr}},
        {{"stride_q", a.stride_q}, {"stride_k", a.stride_k}, {"stride_v", a.stride_v}, {"stride_o", a.stride_o},
         {"nhead_stride_q", a.nhead_stride_q}, {"nhead_stride_k", a.nhead_stride_k},
         {"nhead_stride_v", a.nhead_stride_v}, {"nhead_stride_o", a.nhead_stride_o},
         {"batch_stride_q", batch ? a.batch_stride_q : 0}, {"batch_stride_k", batch ? a.batch_stride_k : 0},
         {"batch_stride_v", batch ? a.batch_stride_v : 0}, {"batch_stride_o", batch ? a.batch_stride_o : 0}});
}

std::string key_str(const FwdV2Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " hdim<=" + std::to_string(k.hdim) +
           (k.mask == MaskKind::window ? " masked" : " unmasked") +
           (k.aligned ? " 16-byte-aligned" : " unaligned (hdim or a stride not a multiple of 8, or a base pointer not 16-byte aligned)");
}

// The v2 instance that runs `a`, or null with *why.
const FwdV2Instance* select_v2(const mha_fwd_args& a, bool query_device, std::string* why) {
    if ((*why = unsupported_feature(a)) != "") return nullptr;
    const int bucket = host::hdim_bucket(a.hdim_q, a.hdim_v, {{32, 32}, {64, 64}, {128, 128}, {256, 256}}).first;
    const FwdV2Key key{host::dtype_of(a), bucket, host::mask_of(a), alignment_problem(a).empty()};
    return host::select_instance(fwd_v2_table(), key, "v2 forward", key_str(key),
                                 "rebuild with an instance set that includes it, e.g. compile.py --preset default",
                                 query_device, why);
}

// ---- v3 (Hopper-native) family -------------------------------------------------------

std::string v3_key_str(const FwdV3Key& k) {
    return std::string(k.dtype == DType::bf16 ? "bf16" : "fp16") + " (hdim_q, hdim_v) <= (" + std::to_string(k.hdim_q) +
           ", " + std::to_string(k.hdim_v) + ")" + (k.mask == MaskKind::window ? " masked" : " unmasked");
}

// The v3 instance that runs `a`, or null with *why ("v3: ..."). query_device: also require an
// sm_90 device with enough shared memory.
const FwdV3Instance* select_v3(const mha_fwd_args& a, bool query_device, std::string* why) {
    auto fail = [&](const std::string& reason) -> const FwdV3Instance* {
        *why = "v3: " + reason;
        return nullptr;
    };
    if (std::string r = unsupported_feature(a); !r.empty()) return fail(r);
    if (a.hdim_q % 8 != 0 || a.hdim_v % 8 != 0)
        return fail("hdim_q and hdim_v must be multiples of 8 (got " + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + ")");
    const auto [bq, bv] = host::hdim_bucket(a.hdim_q, a.hdim_v, {{64, 64}, {128, 128}, {192, 128}, {256, 256}});
    if (bq == 0)
        return fail("no v3 head-dim bucket holds (hdim_q, hdim_v) = (" + std::to_string(a.hdim_q) + ", " +
                    std::to_string(a.hdim_v) + "); buckets: (64,64) (128,128) (192,128) (256,256)");
    if (!alignment_problem(a).empty())
        return fail("TMA needs 16-byte aligned base pointers and strides that are multiples of 8 elements");
    if (std::string r = host::tma_stride_problem({a.stride_q, a.stride_k, a.stride_v, a.nhead_stride_q, a.nhead_stride_k,
                                                  a.nhead_stride_v, a.batch_stride_q, a.batch_stride_k, a.batch_stride_v},
                                                 "Q/K/V");
        !r.empty())
        return fail(r);
    // The bucket's short-sequence variant where it is compiled and faster for these lengths
    // (tile.h; in group mode the key lengths are on the device, so the rule takes them as long
    // as the queries), else its default; either one when only that one was compiled. With the
    // logits soft-cap on, only the default: the short-sequence variants have no soft-cap code.
    const bool masked  = a.mask_type != 0;
    const bool softcap = a.logits_soft_cap > 0.f;
    const FwdV3Key def{host::dtype_of(a), bq, bv, host::mask_of(a), false};
    FwdV3Key other = def;
    other.short_seq = true;
    const bool want_short = !softcap && fwd_v3_prefer_short(bq, bv, masked, host::longest_q(a), a.is_group_mode ? 0 : a.seqlen_k);
    const host::Table<FwdV3Instance> table = fwd_v3_table();
    const FwdV3Instance* found = nullptr;
    if (want_short) found = table.find(other);
    if (found == nullptr) found = table.find(def);
    if (found == nullptr && !softcap) found = table.find(other);
    if (found == nullptr)
        return fail("no compiled v3 forward instance for " + v3_key_str(def) +
                    (table.count == 0 ? " (this library was built without the fwd_v3 api or without sm_90a)"
                                      : " (rebuild with compile.py --api fwd_v3)"));
    // The masked kernels number their (row block, head, batch) tiles in 31 bits (TileDecoder).
    const int block_m   = found->info().block_m;
    const int64_t tiles = (int64_t(host::longest_q(a)) + block_m - 1) / block_m * a.nhead_q * a.batch;
    if (masked && tiles >= (int64_t(1) << 31))
        return fail(std::to_string(tiles) + " tiles (row blocks of the longest query sequence x nhead_q x batch); at most 2^31 - 1");
    if (query_device) {
        if (std::string r = host::sm90a_device_problem(); !r.empty()) return fail(r);
        if (std::string r = host::smem_shortfall(found->name, found->info().smem_bytes); !r.empty()) return fail(r);
    }
    return found;
}

// Masked tile order (kernels/common/tile_order.cuh): how many (batch, head) pairs one section holds so that
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
    host::set_attn_params(p, a);
    p.o = a.o_ptr;
    p.lse = a.has_lse ? static_cast<float*>(a.lse_ptr) : nullptr;
    p.lse_head_stride = a.nhead_stride_lse;
    p.lse_batch_stride = a.batch_stride_lse;
    p.tile_section = fwd_tile_section(a);
    constexpr float kLog2e = 1.4426950408889634f;
    p.scale_s = a.scale_s;
    p.softcap = a.logits_soft_cap;
    p.scale_log2 = a.logits_soft_cap > 0.f ? kLog2e : a.scale_s * kLog2e;
    return p;
}

// Launches `inst` as stream_config says (timed or not).
template <class Instance>
float run(const Instance& inst, const FwdParams& p, const stream_config& s) {
    if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: running %s\n", inst.name);
    return host::run_timed(s, "mha_fwd", [&] { check_cuda(inst.launch(p, s.stream_id_), inst.name); });
}

}  // namespace

FwdParams make_fwd_params(const mha_fwd_args& a) { return make_params(a); }

}  // namespace fwd

mha_check_result mha_fwd_check(const mha_fwd_args& args) {
    fwd::validate_fwd_args(args);
    std::string why;
    if (args.use_asm_v3 || args.v3_api_check) {
        const fwd::FwdV3Instance* v3 = fwd::select_v3(args, /*query_device=*/true, &why);
        if (v3 != nullptr || args.v3_api_check) return host::check_result(fwd::fwd_v3_table(), v3, why);
    }
    const fwd::FwdV2Instance* inst = fwd::select_v2(args, /*query_device=*/true, &why);
    return host::check_result(fwd::fwd_v2_table(), inst, why);
}

std::vector<std::string> mha_fwd_instances() {
    std::vector<std::string> v = fwd::fwd_v2_table().names();
    for (const std::string& n : fwd::fwd_v3_table().names()) v.push_back(n);
    return v;
}

float mha_fwd(mha_fwd_args args, const stream_config& s) {
    fwd::validate_fwd_args(args);
    std::string why;
    if (args.use_asm_v3 || args.v3_api_check) {
        const fwd::FwdV3Instance* v3 = fwd::select_v3(args, /*query_device=*/true, &why);
        if (args.v3_api_check) return v3 != nullptr ? 1.f : -1.f;  // answer only, no launch
        if (v3 != nullptr) return fwd::run(*v3, fwd::make_params(args), s);
        if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: %s; falling back to v2\n", why.c_str());
    }
    const fwd::FwdV2Instance* inst = fwd::select_v2(args, /*query_device=*/true, &why);
    if (inst == nullptr) {
        if (s.log_level_ > 0) fprintf(stderr, "mha_fwd: not supported: %s\n", why.c_str());
        return -1.f;
    }
    return fwd::run(*inst, fwd::make_params(args), s);
}

}  // namespace aiter
