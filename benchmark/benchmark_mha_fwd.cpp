// benchmark_mha_fwd: the forward attention benchmark, with aiter's / CK's flags (-? lists them).
//
// One run = one configuration:
//   parse flags (no CUDA before this point: -?, bad flags and bad -prec work without a GPU)
//   -> host tensors in the -iperm/-operm layout, filled by -init from -seed, rounded to -prec
//   -> device copies; O and LSE poisoned with 0xFF bytes (NaN) so unwritten elements fail
//   -> aiter::mha_fwd timed with stream_config{nullptr, true, 0, warmup, repeat}
//   -> -det_runs=N: N more untimed calls whose O (and LSE) must be bit-identical to the first
//   -> validation against the CPU (-v=1) or GPU (-v=2) fp32 reference
//   -> one result line (docs: SPEC §4)
//      [fp16|batch|bhsd] b:2, h:8/8, s:3328/3328, d:128/128, scale_s:0.0883883, bias:n,
//      p_drop:0, lse:0, mask:n, v:r[, <kernel name>], 1.234 ms, 456.78 TFlops, 123.45 GB/s, valid:y
//
// Layouts (elements): iperm/operm = 1: [b, h, s, d]; 0: [b, s, h, d]. Group mode packs the
// batches along s ([h, total, d] / [total, h, d], batch strides 0; seqstart_* = physical
// prefix sums). -s_kpad makes the physical key length larger than the logical -s_k: the
// padding rows hold random data and the kernel gets the logical lengths through seqlen_k_ptr.
//
// -cases=FILE runs many configurations in this one process, one per line of FILE (that case's
// flags, as on a command line): a sweep then pays for one CUDA context (~0.2 s, and contexts are
// created one at a time even by parallel processes) instead of one per case. Each case's output
// ends with a line "=== case <n> exit <code>" (n from 1, code 0..255 as a shell would see the
// exit status of that case run alone; stdout and stderr flushed before it);
// the process exits 0 when every case did, else 2. A CUDA error still ends the process.
//
// Exit codes: 0 pass (also "not supported yet" and -is_v3_check), -1 bad argument (also an
// std::invalid_argument from the library), -2 validation failed (or not deterministic), -3 unknown -prec,
// 1 CUDA runtime error.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/device.h"
#include "common/cli_mask.h"
#include "common/mask.h"
#include "fwd/v3_launch_state.h"  // set_v3_max_ctas: the -v3_max_ctas test aid
#include "mha_fwd.h"
#include "reference/gpu_reference.h"
#include "reference/half_types.h"
#include "reference/mha_fwd_ref.h"

const char* const bench::kProgram = "benchmark_mha_fwd";

namespace {

using bench::DeviceBuffer;
using bench::kExitBadArg;
using bench::kExitBadPrec;
using bench::kExitCudaError;
using bench::kExitFail;
using bench::kExitPass;
using bench::to_device;
constexpr int kMaxMismatches  = 8;  // printed per tensor

// ------------------------------------------------------------------------------------------
// flags
// ------------------------------------------------------------------------------------------
struct PrecError : bench::ArgError {
    using bench::ArgError::ArgError;
};

void register_flags(bench::ArgParser& p) {
    p.add("v", "1", "validation: 0 none, 1 CPU reference, 2 GPU reference (fp32, for large shapes)")
        .add("mode", "0", "kernel mode: 0 batch, 1 group (packed variable-length sequences)")
        .add("b", "2", "batch size")
        .add("h", "8", "number of heads of q")
        .add("h_k", "0", "number of heads of k/v, 0 = h; h % h_k == 0 (GQA/MQA when h_k < h)")
        .add("s", "3328",
             "seqlen_q. group mode: a comma list, one length per batch (e.g. -s=55,99,1);\n"
             "a list shorter than -b repeats its last value")
        .add("s_k", "-1",
             "seqlen_k, negative = equal to s. group mode: a comma list like -s\n"
             "(a negative item = that batch's seqlen_q)")
        .add("s_kpad", "-1",
             "physical (padded) seqlen_k, >= s_k; negative = no padding. group mode: a comma\n"
             "list like -s. The kernel reads the logical -s_k through seqlen_k_ptr")
        .add("d", "128", "head dim of q and k")
        .add("d_v", "0", "head dim of v, 0 = equal to d")
        .add("scale_s", "0", "scale of Q*K^T, 0 = 1/sqrt(d)")
        .add("logits_soft_cap", "0", "> 0: s = cap * tanh(s / cap) after scaling, 0 = off")
        .add("iperm", "1", "q/k/v layout: 1 b*h*s*d, 0 b*s*h*d")
        .add("operm", "1", "o layout: 1 b*h*s*d, 0 b*s*h*d")
        .add("bias", "n", "n none, e elementwise bias [b,h,s,s_k], a alibi slopes [b,h]")
        .add("prec", "fp16", "data type: fp16, bf16, fp8bf16 (fp8 inputs, bf16 output)")
        .add("mask", "0",
             "0 no mask; 1 or t causal top-left; 2 or b causal bottom-right;\n"
             "'t:l,r' / 'b:l,r' top-left / bottom-right window of l keys left and r keys\n"
             "right of the diagonal (negative = unbounded);\n"
             "'xt:w' / 'xb:w' window of w keys (w <= 0: causal; left = w/2, right = w-1-left);\n"
             "'g:y,x' generic mask coordinate (left = y-1, right = x-1, top-left)")
        .add("vlayout", "r", "layout of v: r row-major [s,d], c column-major [d,s]")
        .add("lse", "0", "1: store the log-sum-exp (fp32, natural log)")
        .add("kname", "0", "1: print the name of the kernel instance that ran")
        .add("det_runs", "0", "N > 0: run N more times and require bit-identical O and LSE")
        .add("init", "1", "init method: 0 random integers in [-3,3], 1 uniform float [-1,1),\n"
                          "2 trig pattern (sin)")
        .add("seed", "11939", "random seed of -init")
        .add("p_drop", "0", "dropout probability in [0,1)")
        .add("drop_seed", "1", "dropout seed (Philox key)")
        .add("drop_offset", "0", "dropout offset (Philox counter)")
        .add("drop_prefs", "0", "1: pass drop seed/offset as device pointers")
        .add("timer", "gpu", "gpu (CUDA events) or cpu (host clock)")
        .add("num_splits", "1", "split-KV splits (split-KV API)")
        .add("page_block_size", "0", "paged-KV block size, 0 = not paged (split-KV API)")
        .add("cache_batch_idx", "0", "1: gather k/v batches through a cache batch index (split-KV API)")
        .add("bad_cache_entries", "0",
             "1: plant out-of-range block-table / cache_batch_idx entries (the kernel clamps them;\n"
             "the reference reads the clamped ones) and require mha_fwd_splitkv_check_tables to\n"
             "report them (split-KV API)")
        .add("splitkv", "0",
             "1: run aiter::mha_fwd_splitkv even with -num_splits=1 and no paging (0: only when\n"
             "-num_splits != 1, -page_block_size > 0 or -cache_batch_idx=1). Split-KV GB/s counts\n"
             "the K/V rows the mask lets each batch read, + Q read + O written")
        .add("warmup", "5", "untimed launches before timing")
        .add("repeat", "20", "timed launches (the mean is printed)")
        .add("fwd_v3", "0", "1: try the Hopper-native v3 kernels first (falls back to v2)")
        .add("v3_bf16_cvt", "0", "bf16 output rounding of v3: 0 RTNE, 1 RTNA, 2 RTZ")
        .add("is_v3_check", "0", "1: only report whether a v3 kernel exists for this configuration")
        .add("v3_max_ctas", "0", "N > 0: at most N CTAs in a persistent v3 grid, so that each walks\n"
                                 "several tiles (a test aid, for this case only)")
        .add("cases", "", "FILE: run one case per line of FILE (its flags) in this process; each\n"
                          "case's output ends with \"=== case <n> exit <code>\"");
    p.set_footer(
        "performance:\n"
        "  FLOPs  = sum over batches of h * (2*kept*d + 2*kept*d_v), kept = number of (i,j)\n"
        "           the mask keeps for that batch (exact; causal with s == s_k keeps\n"
        "           s*(s+1)/2, i.e. about half of s*s_k)\n"
        "  TFlops = FLOPs / time;  GB/s = bytes of Q, K, V read + O (+ LSE) written / time,\n"
        "           logical rows only\n"
        "validation tolerances: O |got-ref| <= atol + rtol*|ref| with fp16 1e-3/1e-3,\n"
        "  bf16 and fp8bf16 1e-2/1e-2; LSE 1e-3 + 1e-4*|ref| (-inf must match -inf)\n"
        "exit codes: 0 pass or not supported yet, -1 bad argument, -2 validation failed,\n"
        "  -3 unknown -prec, 1 CUDA error");
}

struct Config {
    int verify = 1;
    bool group = false;
    int batch = 0, nhead_q = 0, nhead_k = 0, hdim_q = 0, hdim_v = 0;
    std::vector<int64_t> sq, sk, sk_phys;  // per batch: logical q, logical k, physical k
    float scale_s = 0.f, soft_cap = 0.f;
    bool iperm = true, operm = true;
    std::string bias = "n", prec = "fp16", vlayout = "r";
    bench::CliMask mask;
    bool lse = false, kname = false;
    int init = 1;
    uint32_t seed = 0;
    float p_drop = 0.f;
    uint64_t drop_seed = 0, drop_offset = 0;
    bool drop_prefs = false, gpu_timer = true;
    int num_splits = 1, page_block_size = 0;
    bool cache_batch_idx = false, splitkv = false, bad_cache_entries = false;

    bool use_splitkv() const { return splitkv || num_splits != 1 || page_block_size > 0 || cache_batch_idx; }
    int warmup = 5, repeat = 20;
    int det_runs = 0;
    bool fwd_v3 = false;
    int v3_bf16_cvt = 0;
    bool is_v3_check = false;
    int v3_max_ctas  = 0;

    bool padded_k() const { return sk_phys != sk; }
    bench::ElemType out_type() const { return prec == "fp16" ? bench::ElemType::fp16 : bench::ElemType::bf16; }
    size_t in_bytes() const { return prec == "fp8bf16" ? 1 : 2; }
};

// One value per batch from a (comma) list flag; a shorter list repeats its last value.
std::vector<int64_t> per_batch(const bench::ArgParser& p, const char* name, int batch, bool group) {
    std::vector<int64_t> v = p.get_int_list(name);
    if (v.size() > 1 && !group)
        throw bench::ArgError(std::string("-") + name + ": the comma list '" + p.str(name) +
                              "' needs group mode (-mode=1)");
    if (v.size() > static_cast<size_t>(batch))
        throw bench::ArgError(std::string("-") + name + ": " + std::to_string(v.size()) +
                              " values in '" + p.str(name) + "' but -b=" + std::to_string(batch));
    while (v.size() < static_cast<size_t>(batch)) v.push_back(v.back());
    return v;
}

template <typename T>
void require(bool ok, const char* flag, const std::string& expected, const T& got) {
    if (ok) return;
    std::ostringstream os;
    os << "-" << flag << ": expected " << expected << ", got " << got;
    throw bench::ArgError(os.str());
}

Config read_config(const bench::ArgParser& p) {
    Config c;
    c.prec = p.str("prec");
    if (c.prec != "fp16" && c.prec != "bf16" && c.prec != "fp8bf16")
        throw PrecError("-prec: unknown data type '" + c.prec + "' (expected fp16, bf16 or fp8bf16)");

    c.verify = p.get_int("v");
    require(c.verify >= 0 && c.verify <= 2, "v", "0, 1 or 2", c.verify);
    const int mode = p.get_int("mode");
    require(mode == 0 || mode == 1, "mode", "0 (batch) or 1 (group)", mode);
    c.group = mode == 1;
    c.batch = p.get_int("b");
    require(c.batch >= 1, "b", "a batch size >= 1", c.batch);
    c.nhead_q = p.get_int("h");
    require(c.nhead_q >= 1, "h", "a head count >= 1", c.nhead_q);
    c.nhead_k = p.get_int("h_k");
    require(c.nhead_k >= 0, "h_k", "0 (= h) or a head count >= 1", c.nhead_k);
    if (c.nhead_k == 0) c.nhead_k = c.nhead_q;
    require(c.nhead_q % c.nhead_k == 0, "h_k",
            "a divisor of -h=" + std::to_string(c.nhead_q), c.nhead_k);
    c.hdim_q = p.get_int("d");
    require(c.hdim_q >= 1, "d", "a head dim >= 1", c.hdim_q);
    c.hdim_v = p.get_int("d_v");
    require(c.hdim_v >= 0, "d_v", "0 (= d) or a head dim >= 1", c.hdim_v);
    if (c.hdim_v == 0) c.hdim_v = c.hdim_q;

    c.sq      = per_batch(p, "s", c.batch, c.group);
    c.sk      = per_batch(p, "s_k", c.batch, c.group);
    c.sk_phys = per_batch(p, "s_kpad", c.batch, c.group);
    int64_t total_q = 0, total_k = 0;
    for (int b = 0; b < c.batch; ++b) {
        require(c.sq[b] >= 0, "s", "lengths >= 0", p.str("s"));
        if (c.sk[b] < 0) c.sk[b] = c.sq[b];
        if (c.sk_phys[b] < 0) c.sk_phys[b] = c.sk[b];
        require(c.sk_phys[b] >= c.sk[b], "s_kpad",
                "physical lengths >= the logical -s_k (" + std::to_string(c.sk[b]) + ") of batch " +
                    std::to_string(b),
                c.sk_phys[b]);
        total_q += c.sq[b];
        total_k += c.sk_phys[b];
    }
    constexpr int64_t kI32 = std::numeric_limits<int32_t>::max();
    require(total_q <= kI32, "s", "a total length that fits in int32", total_q);
    require(total_k <= kI32, "s_k", "a total length that fits in int32", total_k);

    c.scale_s = p.get_float("scale_s");
    require(c.scale_s >= 0.f, "scale_s", "0 (= 1/sqrt(d)) or a positive scale", c.scale_s);
    if (c.scale_s == 0.f) c.scale_s = 1.f / std::sqrt(static_cast<float>(c.hdim_q));
    c.soft_cap = p.get_float("logits_soft_cap");
    require(c.soft_cap >= 0.f, "logits_soft_cap", "0 (off) or a positive cap", c.soft_cap);
    c.iperm = p.get_bool("iperm");
    c.operm = p.get_bool("operm");
    c.bias  = p.str("bias");
    require(c.bias == "n" || c.bias == "e" || c.bias == "a", "bias", "n, e or a", "'" + c.bias + "'");
    try {
        c.mask = bench::parse_cli_mask(p.str("mask"));
    } catch (const std::invalid_argument& e) {
        throw bench::ArgError(e.what());
    }
    c.vlayout = p.str("vlayout");
    require(c.vlayout == "r" || c.vlayout == "c", "vlayout", "r or c", "'" + c.vlayout + "'");
    c.lse   = p.get_bool("lse");
    c.kname = p.get_bool("kname");
    c.det_runs = p.get_int("det_runs");
    require(c.det_runs >= 0, "det_runs", "a count >= 0", c.det_runs);
    c.init  = p.get_int("init");
    require(c.init >= 0 && c.init <= 2, "init", "0, 1 or 2", c.init);
    c.seed   = static_cast<uint32_t>(p.get_int64("seed"));
    c.p_drop = p.get_float("p_drop");
    require(c.p_drop >= 0.f && c.p_drop < 1.f, "p_drop", "a probability in [0, 1)", c.p_drop);
    c.drop_seed   = static_cast<uint64_t>(p.get_int64("drop_seed"));
    c.drop_offset = static_cast<uint64_t>(p.get_int64("drop_offset"));
    c.drop_prefs  = p.get_bool("drop_prefs");
    const std::string timer = p.str("timer");
    require(timer == "gpu" || timer == "cpu", "timer", "gpu or cpu", "'" + timer + "'");
    c.gpu_timer  = timer == "gpu";
    c.num_splits = p.get_int("num_splits");
    require(c.num_splits >= 0 && c.num_splits <= 128, "num_splits", "0 (heuristic) .. 128", c.num_splits);
    c.page_block_size = p.get_int("page_block_size");
    require(c.page_block_size == 0 || (c.page_block_size >= 16 && (c.page_block_size & (c.page_block_size - 1)) == 0),
            "page_block_size", "0 (not paged) or a power of two >= 16", c.page_block_size);
    c.cache_batch_idx = p.get_bool("cache_batch_idx");
    c.splitkv         = p.get_bool("splitkv");
    c.bad_cache_entries = p.get_bool("bad_cache_entries");
    require(!c.bad_cache_entries || c.page_block_size > 0 || c.cache_batch_idx, "bad_cache_entries",
            "0 unless -page_block_size > 0 or -cache_batch_idx=1 (no table to plant entries in)", int(c.bad_cache_entries));
    require(c.det_runs == 0 || !c.use_splitkv(), "det_runs", "0 with the split-KV path (not implemented there)",
            c.det_runs);
    c.warmup          = p.get_int("warmup");
    require(c.warmup >= 0, "warmup", "a count >= 0", c.warmup);
    c.repeat = p.get_int("repeat");
    require(c.repeat >= 1, "repeat", "a count >= 1", c.repeat);
    c.fwd_v3      = p.get_bool("fwd_v3");
    c.v3_bf16_cvt = p.get_int("v3_bf16_cvt");
    require(c.v3_bf16_cvt >= 0 && c.v3_bf16_cvt <= 2, "v3_bf16_cvt", "0, 1 or 2", c.v3_bf16_cvt);
    c.is_v3_check = p.get_bool("is_v3_check");
    c.v3_max_ctas = p.get_int("v3_max_ctas");
    require(c.v3_max_ctas >= 0, "v3_max_ctas", "a count >= 0 (0: no cap)", c.v3_max_ctas);
    return c;
}

// ------------------------------------------------------------------------------------------
// problem geometry
// ------------------------------------------------------------------------------------------
struct Strides {
    int64_t row = 0, head = 0, batch = 0;
};

// [b, h, rows, dim] (bhsd) or [b, rows, h, dim]; group mode: one "batch" of all rows.
Strides layout(bool bhsd, int64_t nhead, int64_t rows, int64_t dim, bool group) {
    if (bhsd) return {dim, rows * dim, group ? 0 : nhead * rows * dim};
    return {nhead * dim, dim, group ? 0 : rows * nhead * dim};
}

struct Geometry {
    int64_t rows_q = 0, rows_k = 0;  // batch mode: per batch; group mode: all batches
    int64_t max_sq = 0;
    int nb = 1;                       // batches in the tensors' leading dim (1 in group mode)
    std::vector<int32_t> seqstart_q, seqstart_k, seqlen_k;  // group mode / padding
    Strides q, k, v, o;
    int64_t lse_head = 0, lse_batch = 0;
    size_t q_elems = 0, k_elems = 0, v_elems = 0, o_elems = 0, lse_elems = 0;
};

Geometry make_geometry(const Config& c) {
    Geometry g;
    if (c.group) {
        g.seqstart_q.assign(1, 0);
        g.seqstart_k.assign(1, 0);
        for (int b = 0; b < c.batch; ++b) {
            g.seqstart_q.push_back(static_cast<int32_t>(g.seqstart_q.back() + c.sq[b]));
            g.seqstart_k.push_back(static_cast<int32_t>(g.seqstart_k.back() + c.sk_phys[b]));
        }
        g.rows_q = g.seqstart_q.back();
        g.rows_k = g.seqstart_k.back();
        g.nb     = 1;
    } else {
        g.rows_q = c.sq[0];
        g.rows_k = c.sk_phys[0];
        g.nb     = c.batch;
    }
    if (c.padded_k()) g.seqlen_k.assign(c.sk.begin(), c.sk.end());
    g.max_sq = *std::max_element(c.sq.begin(), c.sq.end());

    g.q        = layout(c.iperm, c.nhead_q, g.rows_q, c.hdim_q, c.group);
    g.k        = layout(c.iperm, c.nhead_k, g.rows_k, c.hdim_q, c.group);
    g.v        = layout(c.iperm, c.nhead_k, g.rows_k, c.hdim_v, c.group);
    g.o        = layout(c.operm, c.nhead_q, g.rows_q, c.hdim_v, c.group);
    g.lse_head = g.rows_q;  // [b, h, sq] or [h, total_q]
    g.lse_batch = c.group ? 0 : c.nhead_q * g.rows_q;

    g.q_elems   = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q * c.hdim_q;
    g.k_elems   = static_cast<size_t>(g.nb) * c.nhead_k * g.rows_k * c.hdim_q;
    g.v_elems   = static_cast<size_t>(g.nb) * c.nhead_k * g.rows_k * c.hdim_v;
    g.o_elems   = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q * c.hdim_v;
    g.lse_elems = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q;
    return g;
}

// Reference arguments; the seqlen pointers are filled by the caller (host or device arrays).
bench::FwdRefArgs make_ref_args(const Config& c, const Geometry& g) {
    bench::FwdRefArgs r;
    r.batch            = c.batch;
    r.nhead_q          = c.nhead_q;
    r.nhead_k          = c.nhead_k;
    r.hdim_q           = c.hdim_q;
    r.hdim_v           = c.hdim_v;
    r.is_group_mode    = c.group;
    r.seqlen_q         = g.rows_q;
    r.seqlen_k         = g.rows_k;
    r.max_seqlen_q     = g.max_sq;
    r.scale_s          = c.scale_s;
    r.logits_soft_cap  = c.soft_cap;
    r.mask             = c.mask.spec;
    r.stride_q         = g.q.row;
    r.nhead_stride_q   = g.q.head;
    r.batch_stride_q   = g.q.batch;
    r.stride_k         = g.k.row;
    r.nhead_stride_k   = g.k.head;
    r.batch_stride_k   = g.k.batch;
    r.stride_v         = g.v.row;
    r.nhead_stride_v   = g.v.head;
    r.batch_stride_v   = g.v.batch;
    r.stride_o         = g.o.row;
    r.nhead_stride_o   = g.o.head;
    r.batch_stride_o   = g.o.batch;
    r.nhead_stride_lse = g.lse_head;
    r.batch_stride_lse = g.lse_batch;
    return r;
}

// ------------------------------------------------------------------------------------------
// data
// ------------------------------------------------------------------------------------------
// Values of one tensor, already rounded to `t`; `which` (0 q, 1 k, 2 v, 3 bias) decorrelates
// the tensors of one seed.
std::vector<float> make_values(size_t n, int init, uint32_t seed, int which, bench::ElemType t) {
    std::vector<float> x(n);
    std::mt19937 gen(seed + 7919u * static_cast<uint32_t>(which));
    if (init == 0) {
        std::uniform_int_distribution<int> dist(-3, 3);
        for (auto& e : x) e = static_cast<float>(dist(gen));
    } else if (init == 1) {
        std::uniform_real_distribution<float> dist(-1.f, 1.f);
        for (auto& e : x) e = bench::round_to(t, dist(gen));
    } else {
        for (size_t i = 0; i < n; ++i)
            x[i] = bench::round_to(t, static_cast<float>(std::sin(0.173 * static_cast<double>(i % 100003) +
                                                                  1.37 * which)));
    }
    return x;
}

std::vector<uint16_t> to_bits(const std::vector<float>& x, bench::ElemType t) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); ++i) b[i] = bench::float_to_bits(t, x[i]);
    return b;
}

// fp8 (e4m3) placeholder data for -prec=fp8bf16: |x| in [0.5, 2), random sign. No reference
// models fp8 yet, so validation is skipped for it.
std::vector<uint8_t> fp8_bytes(size_t n, uint32_t seed, int which) {
    std::vector<uint8_t> x(n);
    std::mt19937 gen(seed + 7919u * static_cast<uint32_t>(which));
    for (auto& e : x) {
        const uint32_t r = gen();
        e = static_cast<uint8_t>(((r & 1u) << 7) | ((6u + ((r >> 1) & 1u)) << 3) | ((r >> 2) & 7u));
    }
    return x;
}

// ------------------------------------------------------------------------------------------
// metrics
// ------------------------------------------------------------------------------------------
// Number of (i, j) the mask keeps, exactly, from MaskSpec's per-row key range.
int64_t kept_positions(const aiter::MaskSpec& m, int64_t sq, int64_t sk) {
    int64_t n = 0;
    for (int64_t i = 0; i < sq; ++i) {
        int64_t lo = 0, hi = 0;
        m.key_range(i, i + 1, sq, sk, &lo, &hi);
        if (hi > lo) n += hi - lo;
    }
    return n;
}

double total_flops(const Config& c) {
    double f = 0;
    for (int b = 0; b < c.batch; ++b)
        f += static_cast<double>(c.nhead_q) * kept_positions(c.mask.spec, c.sq[b], c.sk[b]) * 2.0 *
             (c.hdim_q + c.hdim_v);
    return f;
}

double total_bytes(const Config& c) {
    double n = 0;
    for (int b = 0; b < c.batch; ++b) {
        n += static_cast<double>(c.in_bytes()) *
             (c.sq[b] * c.nhead_q * c.hdim_q + c.sk[b] * c.nhead_k * (c.hdim_q + c.hdim_v));
        n += 2.0 * c.sq[b] * c.nhead_q * c.hdim_v;
        if (c.lse) n += 4.0 * c.sq[b] * c.nhead_q;
    }
    return n;
}

std::string join_lengths(const std::vector<int64_t>& v) {
    if (std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0]; })) return std::to_string(v[0]);
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
}

std::string result_prefix(const Config& c) {
    auto lay = [](bool bhsd) { return bhsd ? "bhsd" : "bshd"; };
    std::ostringstream os;
    os << "[" << c.prec << "|" << (c.group ? "group" : "batch") << "|" << lay(c.iperm)
       << (c.iperm == c.operm ? "" : std::string("-") + lay(c.operm)) << "] b:" << c.batch
       << ", h:" << c.nhead_q << "/" << c.nhead_k << ", s:" << join_lengths(c.sq) << "/"
       << join_lengths(c.sk) << ", d:" << c.hdim_q << "/" << c.hdim_v << ", scale_s:" << c.scale_s
       << ", bias:" << c.bias << ", p_drop:" << c.p_drop << ", lse:" << c.lse
       << ", mask:" << c.mask.name << ", v:" << c.vlayout;
    return os.str();
}

// ------------------------------------------------------------------------------------------
// validation
// ------------------------------------------------------------------------------------------
// Compares the logical rows of O (and LSE) with the reference; prints the first mismatches.
bool compare(const Config& c, const bench::FwdRefArgs& r, const std::vector<int32_t>& seqstart_q,
             const std::vector<uint16_t>& o, const std::vector<float>& o_ref,
             const std::vector<float>& lse, const std::vector<float>& lse_ref) {
    const bool fp16   = c.prec == "fp16";
    const double rtol = fp16 ? 1e-3 : 1e-2, atol = fp16 ? 1e-3 : 1e-2;
    const double lse_atol = 1e-3, lse_rtol = 1e-4;
    int64_t bad_o = 0, bad_lse = 0, n_o = 0, n_lse = 0;
    double max_err = 0;
    for (int b = 0; b < c.batch; ++b) {
        const int64_t bb   = c.group ? 0 : b;
        const int64_t row0 = c.group ? seqstart_q[b] : 0;
        for (int h = 0; h < c.nhead_q; ++h) {
            for (int64_t i = 0; i < c.sq[b]; ++i) {
                const int64_t base = bb * r.batch_stride_o + h * r.nhead_stride_o + (row0 + i) * r.stride_o;
                for (int d = 0; d < c.hdim_v; ++d) {
                    const double got = bench::bits_to_float(c.out_type(), o[base + d]);
                    const double ref = o_ref[base + d];
                    const double err = std::fabs(got - ref);
                    ++n_o;
                    if (err <= atol + rtol * std::fabs(ref)) {
                        max_err = std::max(max_err, err);
                        continue;
                    }
                    if (bad_o++ < kMaxMismatches)
                        std::cerr << "mismatch O[b=" << b << ", h=" << h << ", i=" << i << ", d=" << d
                                  << "]: got " << got << ", expected " << ref << "\n";
                }
                if (!c.lse) continue;
                const int64_t li = bb * r.batch_stride_lse + h * r.nhead_stride_lse + row0 + i;
                const double got = lse[li], ref = lse_ref[li];
                ++n_lse;
                const bool ok = std::isinf(ref) ? got == ref
                                                : std::fabs(got - ref) <= lse_atol + lse_rtol * std::fabs(ref);
                if (!ok && bad_lse++ < kMaxMismatches)
                    std::cerr << "mismatch LSE[b=" << b << ", h=" << h << ", i=" << i << "]: got " << got
                              << ", expected " << ref << "\n";
            }
        }
    }
    if (bad_o)
        std::cerr << "O: " << bad_o << " of " << n_o << " elements outside atol " << atol
                  << " + rtol " << rtol << "\n";
    if (bad_lse)
        std::cerr << "LSE: " << bad_lse << " of " << n_lse << " rows outside atol " << lse_atol
                  << " + rtol " << lse_rtol << "\n";
    return bad_o == 0 && bad_lse == 0;
}

// Why the references cannot check this run ("" when they can).
std::string reference_gap(const Config& c) {
    if (c.bias != "n") return "-bias=" + c.bias;
    if (c.p_drop > 0.f) return "-p_drop > 0";
    if (c.prec == "fp8bf16") return "-prec=fp8bf16";
    return "";
}

#include "splitkv_runner.inc"  // run_splitkv(): the split-KV / paged-KV path of this runner

// ------------------------------------------------------------------------------------------
int run(const Config& c) {
    const std::string prefix = result_prefix(c);

    // Features with no field in aiter::mha_fwd_args (split-KV / paged KV live in the
    // split-KV API; V column-major has no stride convention): not supported by this runner.
    std::string no_field;
    if (c.vlayout == "c") no_field = "-vlayout=c";
    if (no_field.empty() && c.use_splitkv()) return run_splitkv(c);
    if (!no_field.empty()) {
        std::cout << prefix << ", not supported yet" << std::endl;
        std::cerr << "benchmark_mha_fwd: " << no_field
                  << " has no field in aiter::mha_fwd_args (forward API)" << std::endl;
        return kExitPass;
    }

    const Geometry g   = make_geometry(c);
    const bool is_fp8  = c.prec == "fp8bf16";
    const auto in_type = is_fp8 ? bench::ElemType::bf16 : c.out_type();
    const bool cpu_ref = c.verify == 1 && reference_gap(c).empty();

    // ---- host data (rounded to the input precision) and device copies -----------------
    std::vector<float> qf, kf, vf;  // kept for the CPU reference only
    DeviceBuffer q_d, k_d, v_d;
    if (is_fp8) {
        q_d = to_device(fp8_bytes(g.q_elems, c.seed, 0));
        k_d = to_device(fp8_bytes(g.k_elems, c.seed, 1));
        v_d = to_device(fp8_bytes(g.v_elems, c.seed, 2));
    } else {
        auto fill = [&](size_t n, int which, std::vector<float>& keep) {
            std::vector<float> x = make_values(n, c.init, c.seed, which, in_type);
            DeviceBuffer d       = to_device(to_bits(x, in_type));
            if (cpu_ref) keep = std::move(x);
            return d;
        };
        q_d = fill(g.q_elems, 0, qf);
        k_d = fill(g.k_elems, 1, kf);
        v_d = fill(g.v_elems, 2, vf);
    }
    DeviceBuffer o_d(g.o_elems * sizeof(uint16_t));
    DeviceBuffer lse_d(c.lse ? g.lse_elems * sizeof(float) : 0);
    CUDA_CHECK(cudaMemset(o_d.ptr, 0xFF, o_d.bytes));  // NaN in fp16, bf16 and fp32
    if (c.lse) CUDA_CHECK(cudaMemset(lse_d.ptr, 0xFF, lse_d.bytes));

    DeviceBuffer seqstart_q_d, seqstart_k_d, seqlen_k_d;
    if (c.group) {
        seqstart_q_d = to_device(g.seqstart_q);
        seqstart_k_d = to_device(g.seqstart_k);
    }
    if (c.padded_k()) seqlen_k_d = to_device(g.seqlen_k);

    // bias / alibi / dropout buffers: passed through so the library can accept or refuse them
    DeviceBuffer bias_d, drop_d;
    int64_t stride_bias = 0, nhead_stride_bias = 0, batch_stride_bias = 0;
    if (c.bias == "e") {  // [b, h, sq, sk_phys] (group mode: [h, total_q, max physical sk])
        const int64_t cols = c.group ? *std::max_element(c.sk_phys.begin(), c.sk_phys.end()) : g.rows_k;
        stride_bias        = cols;
        nhead_stride_bias  = g.rows_q * cols;
        batch_stride_bias  = c.group ? 0 : c.nhead_q * nhead_stride_bias;
        const size_t n     = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q * cols;
        bias_d             = to_device(to_bits(make_values(n, c.init, c.seed, 3, in_type), in_type));
    } else if (c.bias == "a") {  // fp32 slopes [b, h]
        std::vector<float> slopes(static_cast<size_t>(c.batch) * c.nhead_q);
        for (size_t i = 0; i < slopes.size(); ++i)
            slopes[i] = std::exp2(-8.f * static_cast<float>(i % c.nhead_q + 1) / c.nhead_q);
        bias_d      = to_device(slopes);
        stride_bias = c.nhead_q;
    }
    if (c.drop_prefs) drop_d = to_device(std::vector<uint64_t>{c.drop_seed, c.drop_offset});

    // ---- API arguments -----------------------------------------------------------------
    aiter::mha_fwd_args a;
    a.use_asm_v3      = c.fwd_v3;
    a.how_v3_bf16_cvt = c.v3_bf16_cvt;
    a.data_type       = c.prec;
    a.is_group_mode   = c.group;
    a.bias_type       = c.bias == "n" ? 0 : c.bias == "e" ? 1 : 2;
    a.has_lse         = c.lse;
    a.q_ptr           = q_d.ptr;
    a.k_ptr           = k_d.ptr;
    a.v_ptr           = v_d.ptr;
    a.bias_ptr        = bias_d.ptr;
    a.lse_ptr         = c.lse ? lse_d.ptr : nullptr;
    a.o_ptr           = o_d.ptr;
    a.seqstart_q_ptr  = seqstart_q_d.ptr;
    a.seqstart_k_ptr  = seqstart_k_d.ptr;
    a.seqlen_k_ptr    = seqlen_k_d.ptr;
    a.seqlen_q        = static_cast<int>(g.rows_q);
    a.seqlen_k        = static_cast<int>(g.rows_k);
    a.batch           = c.batch;
    a.max_seqlen_q    = static_cast<int>(g.max_sq);
    a.hdim_q          = c.hdim_q;
    a.hdim_v          = c.hdim_v;
    a.nhead_q         = c.nhead_q;
    a.nhead_k         = c.nhead_k;
    a.scale_s         = c.scale_s;
    a.logits_soft_cap = c.soft_cap;
    a.stride_q = g.q.row, a.nhead_stride_q = g.q.head, a.batch_stride_q = g.q.batch;
    a.stride_k = g.k.row, a.nhead_stride_k = g.k.head, a.batch_stride_k = g.k.batch;
    a.stride_v = g.v.row, a.nhead_stride_v = g.v.head, a.batch_stride_v = g.v.batch;
    a.stride_o = g.o.row, a.nhead_stride_o = g.o.head, a.batch_stride_o = g.o.batch;
    a.stride_bias = stride_bias, a.nhead_stride_bias = nhead_stride_bias;
    a.batch_stride_bias = batch_stride_bias;
    a.nhead_stride_lse  = g.lse_head;
    a.batch_stride_lse  = g.lse_batch;
    a.mask_type         = c.mask.spec.type;
    a.window_size_left  = c.mask.spec.left;
    a.window_size_right = c.mask.spec.right;
    a.p_drop            = c.p_drop;
    if (c.drop_prefs)
        a.drop_seed_offset = std::pair<const void*, const void*>{drop_d.as<uint64_t>(), drop_d.as<uint64_t>() + 1};
    else
        a.drop_seed_offset = std::pair<uint64_t, uint64_t>{c.drop_seed, c.drop_offset};

    auto not_supported = [&](const aiter::mha_fwd_args& args) {
        std::cout << prefix << ", not supported yet" << std::endl;
        try {
            const aiter::mha_check_result r = aiter::mha_fwd_check(args);
            std::cerr << "benchmark_mha_fwd: not supported: "
                      << (r.reason.empty() ? "(no reason given)" : r.reason) << std::endl;
        } catch (const std::exception& e) {
            std::cerr << "benchmark_mha_fwd: not supported: " << e.what() << std::endl;
        }
        return kExitPass;
    };

    float ms = 0.f;
    try {
        if (c.group || c.padded_k()) aiter::mha_fwd_check_seqlens(a, nullptr);

        if (c.is_v3_check) {
            aiter::mha_fwd_args chk = a;
            chk.use_asm_v3          = true;
            chk.v3_api_check        = true;
            const float r           = aiter::mha_fwd(chk, aiter::stream_config{});
            std::cout << prefix << ", v3 kernel:" << (r == 1.f ? "y" : "n") << std::endl;
            return kExitPass;
        }

        const aiter::stream_config sc{nullptr, true, 0, c.warmup, c.repeat, c.gpu_timer};
        ms = aiter::mha_fwd(a, sc);
    } catch (const std::invalid_argument& e) {
        std::cerr << "benchmark_mha_fwd: invalid argument: " << e.what() << std::endl;
        return kExitBadArg;
    }
    if (ms < 0.f) return not_supported(a);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    // ---- run to run: N more runs must reproduce every bit of O and LSE ---------------------
    bool deterministic_ok = true;
    if (c.det_runs > 0) {
        std::vector<uint16_t> o1(g.o_elems), o2(g.o_elems);
        std::vector<float> l1(c.lse ? g.lse_elems : 0), l2(l1.size());
        o_d.download(o1.data(), o1.size() * sizeof(uint16_t));
        if (c.lse) lse_d.download(l1.data(), l1.size() * sizeof(float));
        int differing = 0;
        for (int i = 0; i < c.det_runs; ++i) {
            aiter::mha_fwd(a, aiter::stream_config{});
            CUDA_CHECK(cudaDeviceSynchronize());
            o_d.download(o2.data(), o2.size() * sizeof(uint16_t));
            if (c.lse) lse_d.download(l2.data(), l2.size() * sizeof(float));
            if (o2 != o1 || std::memcmp(l1.data(), l2.data(), l1.size() * sizeof(float)) != 0) ++differing;
        }
        deterministic_ok = differing == 0;
        std::cerr << "benchmark_mha_fwd: " << c.det_runs << " reruns, " << differing
                  << " with O/LSE bits different from the first run" << std::endl;
    }

    std::string kernel_name;
    if (c.kname) {
        try {
            kernel_name = aiter::mha_fwd_check(a).kernel_name;
        } catch (const std::exception& e) {
            kernel_name = "?";
        }
        if (kernel_name.empty()) kernel_name = "?";
    }

    // ---- validation ----------------------------------------------------------------------
    bool validated = false, pass = true;
    if (c.verify > 0 && !reference_gap(c).empty()) {
        std::cerr << "benchmark_mha_fwd: validation skipped: no reference models "
                  << reference_gap(c) << " yet" << std::endl;
    } else if (c.verify > 0) {
        validated = true;
        std::vector<uint16_t> o(g.o_elems);
        std::vector<float> lse(c.lse ? g.lse_elems : 0);
        o_d.download(o.data(), o.size() * sizeof(uint16_t));
        if (c.lse) lse_d.download(lse.data(), lse.size() * sizeof(float));

        bench::FwdRefArgs r = make_ref_args(c, g);
        std::vector<float> o_ref(g.o_elems, std::numeric_limits<float>::quiet_NaN());
        std::vector<float> lse_ref(c.lse ? g.lse_elems : 0, std::numeric_limits<float>::quiet_NaN());
        if (c.verify == 1) {
            r.seqstart_q   = c.group ? g.seqstart_q.data() : nullptr;
            r.seqstart_k   = c.group ? g.seqstart_k.data() : nullptr;
            r.seqlen_k_log = c.padded_k() ? g.seqlen_k.data() : nullptr;
            try {
                bench::mha_fwd_ref(r, qf.data(), kf.data(), vf.data(), o_ref.data(),
                                   c.lse ? lse_ref.data() : nullptr);
            } catch (const std::invalid_argument& e) {
                std::cerr << "benchmark_mha_fwd: CPU reference: " << e.what() << std::endl;
                return kExitBadArg;
            }
        } else {
            r.seqstart_q   = seqstart_q_d.as<const int32_t>();
            r.seqstart_k   = seqstart_k_d.as<const int32_t>();
            r.seqlen_k_log = seqlen_k_d.as<const int32_t>();
            DeviceBuffer o_ref_d(g.o_elems * sizeof(float));
            DeviceBuffer lse_ref_d(c.lse ? g.lse_elems * sizeof(float) : 0);
            CUDA_CHECK(bench::mha_fwd_ref_gpu(r, in_type, q_d.ptr, k_d.ptr, v_d.ptr, o_ref_d.as<float>(),
                                              c.lse ? lse_ref_d.as<float>() : nullptr, nullptr));
            CUDA_CHECK(cudaDeviceSynchronize());
            o_ref_d.download(o_ref.data(), o_ref.size() * sizeof(float));
            if (c.lse) lse_ref_d.download(lse_ref.data(), lse_ref.size() * sizeof(float));
        }
        pass = compare(c, r, g.seqstart_q, o, o_ref, lse, lse_ref);
    }

    // ---- result line ---------------------------------------------------------------------
    const double tflops = ms > 0 ? total_flops(c) / ms / 1e9 : 0.0;
    const double gbps   = ms > 0 ? total_bytes(c) / ms / 1e6 : 0.0;
    std::ostringstream line;
    line << prefix;
    if (c.kname) line << ", " << kernel_name;
    line << std::fixed << std::setprecision(3) << ", " << ms << " ms, " << std::setprecision(2)
         << tflops << " TFlops, " << gbps << " GB/s";
    if (c.det_runs > 0) line << ", deterministic:" << (deterministic_ok ? "y" : "n");
    if (validated) line << ", valid:" << (pass ? "y" : "n");
    std::cout << line.str() << std::endl;
    return pass && deterministic_ok ? kExitPass : kExitFail;
}

}  // namespace

// One configuration from command-line words (argv[0] = program name).
int run_args(int argc, const char* const* argv) {
    bench::ArgParser parser;
    register_flags(parser);
    Config c;
    try {
        if (!parser.parse(argc, argv, std::cout)) return kExitPass;  // -?
        if (parser.is_set("cases")) throw bench::ArgError("-cases=FILE must be the only flag");
        c = read_config(parser);
    } catch (const PrecError& e) {
        std::cerr << "benchmark_mha_fwd: " << e.what() << std::endl;
        return kExitBadPrec;
    } catch (const bench::ArgError& e) {
        std::cerr << "benchmark_mha_fwd: " << e.what() << std::endl;
        return kExitBadArg;
    }
    // The library's test aid (src/fwd/v3_launch_state.h), set for this case only.
    aiter::fwd::set_v3_max_ctas(c.v3_max_ctas);
    const int rc = run(c);
    aiter::fwd::set_v3_max_ctas(0);
    return rc;
}

// -cases=FILE (see the header): every non-empty line is one case's flags.
int run_cases(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        std::cerr << "benchmark_mha_fwd: -cases: cannot read '" << path << "'" << std::endl;
        return kExitBadArg;
    }
    std::string line;
    int n = 0, failed = 0;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::vector<std::string> args{"benchmark_mha_fwd"};
        for (std::string w; words >> w;) args.push_back(w);
        if (args.size() == 1) continue;
        std::vector<const char*> argv;
        for (const std::string& a : args) argv.push_back(a.c_str());
        const int rc = run_args(int(argv.size()), argv.data());
        failed += rc != 0;
        std::cerr.flush();
        std::cout << "=== case " << ++n << " exit " << (rc & 0xff) << std::endl;  // as a shell sees it
    }
    return failed == 0 ? 0 : 2;
}

int main(int argc, char** argv) {
    if (argc == 2 && std::strncmp(argv[1], "-cases=", 7) == 0) return run_cases(argv[1] + 7);
    return run_args(argc, argv);
}
