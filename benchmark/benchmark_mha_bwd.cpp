// benchmark_mha_bwd: the backward attention benchmark, with aiter's / CK's flags (-? lists them).
//
// One run = one configuration:
//   parse flags (no CUDA before this point: -?, bad flags and bad -prec work without a GPU)
//   -> host Q, K, V, dO in the -iperm/-operm layout, filled by -init from -seed, rounded to -prec
//   -> O and LSE of the forward from a REFERENCE, not from libmha_fwd.so, so that the backward
//      is tested on its own: the CPU reference (double) with -v=1, the GPU fp32 reference
//      otherwise; O is rounded to -prec, LSE stays fp32
//   -> dQ, dK, dV poisoned with 0xFF bytes (NaN) so unwritten elements fail
//   -> aiter::mha_bwd timed with stream_config{nullptr, true, 0, warmup, repeat}
//   -> -det_runs=N: N more untimed calls whose dQ/dK/dV must be bit-identical to the first
//   -> validation of dQ, dK, dV against the CPU reference (-v=1, reference/mha_bwd_ref.h)
//   -> one result line (SPEC §4), TFLOPs = 2.5 x the forward FLOPs of the kept positions
//
// Layouts: as benchmark_mha_fwd (iperm/operm 1: [b, h, s, d]; 0: [b, s, h, d]; group mode packs
// the batches along s). dO has O's layout, dQ/dK/dV those of Q/K/V.
//
// Exit codes: 0 pass (also "not supported yet" and -is_v3_check), -1 bad argument (also an
// std::invalid_argument from the library), -2 validation failed (or not deterministic),
// -3 unknown -prec, 1 CUDA runtime error.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/device.h"
#include "common/cli_mask.h"
#include "common/mask.h"
#include "mha_bwd.h"
#include "reference/gpu_reference.h"
#include "reference/half_types.h"
#include "reference/mha_bwd_ref.h"
#include "reference/mha_fwd_ref.h"

const char* const bench::kProgram = "benchmark_mha_bwd";

namespace {

using bench::DeviceBuffer;
using bench::kExitBadArg;
using bench::kExitBadPrec;
using bench::kExitCudaError;
using bench::kExitFail;
using bench::kExitPass;
using bench::to_device;
constexpr int kMaxMismatches = 8;

struct PrecError : bench::ArgError {
    using bench::ArgError::ArgError;
};

void register_flags(bench::ArgParser& p) {
    p.add("v", "1", "validation of dQ, dK, dV: 0 none, 1 CPU reference, 2 fp32 GPU reference\n"
                    "(shapes too large for the CPU)")
        .add("mode", "0", "kernel mode: 0 batch, 1 group (packed variable-length sequences)")
        .add("b", "2", "batch size")
        .add("h", "8", "number of heads of q")
        .add("h_k", "0", "number of heads of k/v, 0 = h; h % h_k == 0 (GQA/MQA when h_k < h)")
        .add("s", "3328", "seqlen_q. group mode: a comma list, one length per batch;\n"
                          "a list shorter than -b repeats its last value")
        .add("s_k", "-1", "seqlen_k, negative = equal to s. group mode: a comma list like -s")
        .add("s_kpad", "-1", "physical (padded) seqlen_k, >= s_k; negative = no padding")
        .add("d", "128", "head dim of q and k")
        .add("d_v", "0", "head dim of v, 0 = equal to d")
        .add("scale_s", "0", "scale of Q*K^T, 0 = 1/sqrt(d)")
        .add("iperm", "1", "q/k/v (and dq/dk/dv) layout: 1 b*h*s*d, 0 b*s*h*d")
        .add("operm", "1", "o/do layout: 1 b*h*s*d, 0 b*s*h*d")
        .add("bias", "n", "n none, e elementwise bias, a alibi (not supported yet)")
        .add("dbias", "0", "1: also compute the bias gradient (not supported yet)")
        .add("prec", "fp16", "data type: fp16 or bf16")
        .add("mask", "0",
             "0 no mask; 1 or t causal top-left; 2 or b causal bottom-right;\n"
             "'t:l,r' / 'b:l,r' window; 'xt:w' / 'xb:w' window of w keys; 'g:y,x' generic")
        .add("kname", "0", "1: print the name of the kernel instance that ran")
        .add("init", "1", "init method: 0 random integers in [-3,3], 1 uniform float [-1,1),\n"
                          "2 trig pattern (sin)")
        .add("seed", "11939", "random seed of -init")
        .add("p_drop", "0", "dropout probability in [0,1) (not supported yet)")
        .add("drop_seed", "1", "dropout seed")
        .add("drop_offset", "0", "dropout offset")
        .add("drop_prefs", "0", "1: pass drop seed/offset as device pointers")
        .add("timer", "gpu", "gpu (CUDA events) or cpu (host clock)")
        .add("warmup", "5", "untimed launches before timing")
        .add("repeat", "20", "timed launches (the mean is printed)")
        .add("deterministic", "0", "1: bit-reproducible dQ (separate dQ kernel, no atomics)")
        .add("det_runs", "0", "N > 0: run N more times and require bit-identical dQ/dK/dV")
        .add("bwd_v3", "0", "1: try the Hopper-native v3 kernels first (falls back to v2)")
        .add("v3_atomic_fp32", "0", "v3: fp32 atomics for dQ (accepted, v2 always uses fp32)")
        .add("v3_bf16_cvt", "0", "bf16 output rounding: 0 RTNE (v2), 1 RTNA, 2 RTZ")
        .add("is_v3_check", "0", "1: only report whether a v3 kernel exists for this configuration");
    p.set_footer(
        "performance:\n"
        "  FLOPs  = 2.5 x the forward FLOPs = 2.5 x sum over batches of h * (2*kept*d + 2*kept*d_v),\n"
        "           kept = number of (i,j) the mask keeps (the backward's five GEMMs S, dP, dV, dK,\n"
        "           dQ are 2.5 x the forward's two; causal with s == s_k keeps about half)\n"
        "  TFlops = FLOPs / time (pre-kernel + main kernel(s) + post-kernel);\n"
        "  GB/s   = bytes of Q, K, V, O, dO, LSE read + dQ, dK, dV written / time\n"
        "validation: |got-ref| <= atol*max(1, max|ref|) + rtol*|ref| per tensor, fp16 1e-2/1e-2,\n"
        "  bf16 2e-2/2e-2 (P and dS are rounded to the input type before their GEMMs)\n"
        "exit codes: 0 pass or not supported yet, -1 bad argument, -2 validation failed,\n"
        "  -3 unknown -prec, 1 CUDA error");
}

struct Config {
    int verify = 1;
    bool group = false;
    int batch = 0, nhead_q = 0, nhead_k = 0, hdim_q = 0, hdim_v = 0;
    std::vector<int64_t> sq, sk, sk_phys;
    float scale_s = 0.f;
    bool iperm = true, operm = true;
    std::string bias = "n", prec = "fp16";
    bool dbias = false;
    bench::CliMask mask;
    bool kname = false;
    int init = 1;
    uint32_t seed = 0;
    float p_drop = 0.f;
    uint64_t drop_seed = 0, drop_offset = 0;
    bool drop_prefs = false, gpu_timer = true;
    int warmup = 5, repeat = 20;
    bool deterministic = false;
    int det_runs = 0;
    bool bwd_v3 = false, v3_atomic_fp32 = false;
    int v3_bf16_cvt = 0;
    bool is_v3_check = false;

    bool padded_k() const { return sk_phys != sk; }
    bench::ElemType type() const { return prec == "fp16" ? bench::ElemType::fp16 : bench::ElemType::bf16; }
};

std::vector<int64_t> per_batch(const bench::ArgParser& p, const char* name, int batch, bool group) {
    std::vector<int64_t> v = p.get_int_list(name);
    if (v.size() > 1 && !group)
        throw bench::ArgError(std::string("-") + name + ": the comma list '" + p.str(name) +
                              "' needs group mode (-mode=1)");
    if (v.size() > static_cast<size_t>(batch))
        throw bench::ArgError(std::string("-") + name + ": " + std::to_string(v.size()) + " values in '" +
                              p.str(name) + "' but -b=" + std::to_string(batch));
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
    if (c.prec != "fp16" && c.prec != "bf16")
        throw PrecError("-prec: unknown data type '" + c.prec + "' (expected fp16 or bf16)");
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
    require(c.nhead_q % c.nhead_k == 0, "h_k", "a divisor of -h=" + std::to_string(c.nhead_q), c.nhead_k);
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
        require(c.sk_phys[b] >= c.sk[b], "s_kpad", "physical lengths >= the logical -s_k", c.sk_phys[b]);
        total_q += c.sq[b];
        total_k += c.sk_phys[b];
    }
    constexpr int64_t kI32 = std::numeric_limits<int32_t>::max();
    require(total_q <= kI32, "s", "a total length that fits in int32", total_q);
    require(total_k <= kI32, "s_k", "a total length that fits in int32", total_k);
    c.scale_s = p.get_float("scale_s");
    require(c.scale_s >= 0.f, "scale_s", "0 (= 1/sqrt(d)) or a positive scale", c.scale_s);
    if (c.scale_s == 0.f) c.scale_s = 1.f / std::sqrt(static_cast<float>(c.hdim_q));
    c.iperm = p.get_bool("iperm");
    c.operm = p.get_bool("operm");
    c.bias  = p.str("bias");
    require(c.bias == "n" || c.bias == "e" || c.bias == "a", "bias", "n, e or a", "'" + c.bias + "'");
    c.dbias = p.get_bool("dbias");
    try {
        c.mask = bench::parse_cli_mask(p.str("mask"));
    } catch (const std::invalid_argument& e) {
        throw bench::ArgError(e.what());
    }
    c.kname = p.get_bool("kname");
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
    c.gpu_timer = timer == "gpu";
    c.warmup    = p.get_int("warmup");
    require(c.warmup >= 0, "warmup", "a count >= 0", c.warmup);
    c.repeat = p.get_int("repeat");
    require(c.repeat >= 1, "repeat", "a count >= 1", c.repeat);
    c.deterministic = p.get_bool("deterministic");
    c.det_runs      = p.get_int("det_runs");
    require(c.det_runs >= 0, "det_runs", "a count >= 0", c.det_runs);
    c.bwd_v3         = p.get_bool("bwd_v3");
    c.v3_atomic_fp32 = p.get_bool("v3_atomic_fp32");
    c.v3_bf16_cvt    = p.get_int("v3_bf16_cvt");
    require(c.v3_bf16_cvt >= 0 && c.v3_bf16_cvt <= 2, "v3_bf16_cvt", "0, 1 or 2", c.v3_bf16_cvt);
    c.is_v3_check = p.get_bool("is_v3_check");
    return c;
}

// ------------------------------------------------------------------------------------------
// geometry (same conventions as benchmark_mha_fwd)
// ------------------------------------------------------------------------------------------
struct Strides {
    int64_t row = 0, head = 0, batch = 0;
};

Strides layout(bool bhsd, int64_t nhead, int64_t rows, int64_t dim, bool group) {
    if (bhsd) return {dim, rows * dim, group ? 0 : nhead * rows * dim};
    return {nhead * dim, dim, group ? 0 : rows * nhead * dim};
}

struct Geometry {
    int64_t rows_q = 0, rows_k = 0, max_sq = 0, max_sk = 0;
    int nb = 1;
    std::vector<int32_t> seqstart_q, seqstart_k, seqlen_k;
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
    g.max_sq    = *std::max_element(c.sq.begin(), c.sq.end());
    g.max_sk    = *std::max_element(c.sk_phys.begin(), c.sk_phys.end());
    g.q         = layout(c.iperm, c.nhead_q, g.rows_q, c.hdim_q, c.group);
    g.k         = layout(c.iperm, c.nhead_k, g.rows_k, c.hdim_q, c.group);
    g.v         = layout(c.iperm, c.nhead_k, g.rows_k, c.hdim_v, c.group);
    g.o         = layout(c.operm, c.nhead_q, g.rows_q, c.hdim_v, c.group);
    g.lse_head  = g.rows_q;
    g.lse_batch = c.group ? 0 : c.nhead_q * g.rows_q;
    g.q_elems   = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q * c.hdim_q;
    g.k_elems   = static_cast<size_t>(g.nb) * c.nhead_k * g.rows_k * c.hdim_q;
    g.v_elems   = static_cast<size_t>(g.nb) * c.nhead_k * g.rows_k * c.hdim_v;
    g.o_elems   = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q * c.hdim_v;
    g.lse_elems = static_cast<size_t>(g.nb) * c.nhead_q * g.rows_q;
    return g;
}

bench::FwdRefArgs make_ref_args(const Config& c, const Geometry& g) {
    bench::FwdRefArgs r;
    r.batch = c.batch, r.nhead_q = c.nhead_q, r.nhead_k = c.nhead_k, r.hdim_q = c.hdim_q, r.hdim_v = c.hdim_v;
    r.is_group_mode = c.group;
    r.seqlen_q = g.rows_q, r.seqlen_k = g.rows_k, r.max_seqlen_q = g.max_sq, r.max_seqlen_k = g.max_sk;
    r.scale_s = c.scale_s;
    r.mask    = c.mask.spec;
    r.stride_q = g.q.row, r.nhead_stride_q = g.q.head, r.batch_stride_q = g.q.batch;
    r.stride_k = g.k.row, r.nhead_stride_k = g.k.head, r.batch_stride_k = g.k.batch;
    r.stride_v = g.v.row, r.nhead_stride_v = g.v.head, r.batch_stride_v = g.v.batch;
    r.stride_o = g.o.row, r.nhead_stride_o = g.o.head, r.batch_stride_o = g.o.batch;
    r.nhead_stride_lse = g.lse_head, r.batch_stride_lse = g.lse_batch;
    return r;
}

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
            x[i] = bench::round_to(t, static_cast<float>(std::sin(0.173 * static_cast<double>(i % 100003) + 1.37 * which)));
    }
    return x;
}

std::vector<uint16_t> to_bits(const std::vector<float>& x, bench::ElemType t) {
    std::vector<uint16_t> b(x.size());
    for (size_t i = 0; i < x.size(); ++i) b[i] = bench::float_to_bits(t, x[i]);
    return b;
}

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
        f += static_cast<double>(c.nhead_q) * kept_positions(c.mask.spec, c.sq[b], c.sk[b]) * 2.0 * (c.hdim_q + c.hdim_v);
    return 2.5 * f;
}

double total_bytes(const Config& c) {
    double n = 0;
    for (int b = 0; b < c.batch; ++b) {
        n += 2.0 * 2 * c.sq[b] * c.nhead_q * c.hdim_q;                      // q, dq
        n += 2.0 * 2 * c.sk[b] * c.nhead_k * (c.hdim_q + c.hdim_v);         // k, v, dk, dv
        n += 2.0 * 2 * c.sq[b] * c.nhead_q * c.hdim_v + 4.0 * c.sq[b] * c.nhead_q;  // o, do, lse
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
       << (c.iperm == c.operm ? "" : std::string("-") + lay(c.operm)) << "] b:" << c.batch << ", h:" << c.nhead_q
       << "/" << c.nhead_k << ", s:" << join_lengths(c.sq) << "/" << join_lengths(c.sk) << ", d:" << c.hdim_q
       << "/" << c.hdim_v << ", scale_s:" << c.scale_s << ", bias:" << c.bias << ", dbias:" << c.dbias
       << ", p_drop:" << c.p_drop << ", s_randval:0, deterministic:" << c.deterministic
       << ", mask:" << c.mask.name;
    return os.str();
}

// Compares the logical rows of one gradient tensor ([nb, heads, rows, dim] at strides `st`).
bool compare_tensor(const char* name, const Config& c, const std::vector<int32_t>& seqstart,
                    const std::vector<int64_t>& lens, int heads, int dim, const Strides& st,
                    const std::vector<uint16_t>& got_bits, const std::vector<float>& ref) {
    const bool fp16   = c.prec == "fp16";
    const double rtol = fp16 ? 1e-2 : 2e-2, atol0 = fp16 ? 1e-2 : 2e-2;
    double maxabs = 0;
    for (float x : ref)
        if (std::isfinite(x)) maxabs = std::max(maxabs, static_cast<double>(std::fabs(x)));
    const double atol = atol0 * std::max(1.0, maxabs);
    int64_t bad = 0, n = 0;
    double max_err = 0;
    for (int b = 0; b < c.batch; ++b) {
        const int64_t bb = c.group ? 0 : b, row0 = c.group ? seqstart[b] : 0;
        for (int h = 0; h < heads; ++h)
            for (int64_t i = 0; i < lens[b]; ++i)
                for (int d = 0; d < dim; ++d) {
                    const int64_t idx = bb * st.batch + h * st.head + (row0 + i) * st.row + d;
                    const double g = bench::bits_to_float(c.type(), got_bits[idx]), r = ref[idx];
                    const double err = std::fabs(g - r);
                    ++n;
                    if (err <= atol + rtol * std::fabs(r)) {
                        max_err = std::max(max_err, err);
                        continue;
                    }
                    if (bad++ < kMaxMismatches)
                        std::cerr << "mismatch " << name << "[b=" << b << ", h=" << h << ", i=" << i << ", d=" << d
                                  << "]: got " << g << ", expected " << r << "\n";
                }
    }
    if (bad)
        std::cerr << name << ": " << bad << " of " << n << " elements outside atol " << atol << " + rtol " << rtol
                  << "\n";
    return bad == 0;
}

int run(const Config& c) {
    const std::string prefix = result_prefix(c);
    const Geometry g         = make_geometry(c);
    const auto t             = c.type();
    const bool cpu_ref       = c.verify == 1;

    // ---- inputs ----------------------------------------------------------------------------
    std::vector<float> qf = make_values(g.q_elems, c.init, c.seed, 0, t);
    std::vector<float> kf = make_values(g.k_elems, c.init, c.seed, 1, t);
    std::vector<float> vf = make_values(g.v_elems, c.init, c.seed, 2, t);
    std::vector<float> dof = make_values(g.o_elems, c.init, c.seed, 4, t);
    DeviceBuffer q_d = to_device(to_bits(qf, t)), k_d = to_device(to_bits(kf, t)), v_d = to_device(to_bits(vf, t));
    DeviceBuffer do_d = to_device(to_bits(dof, t));
    DeviceBuffer seqstart_q_d, seqstart_k_d, seqlen_k_d;
    if (c.group) {
        seqstart_q_d = to_device(g.seqstart_q);
        seqstart_k_d = to_device(g.seqstart_k);
    }
    if (c.padded_k()) seqlen_k_d = to_device(g.seqlen_k);

    // ---- forward O, LSE from a reference -------------------------------------------------------
    bench::FwdRefArgs r = make_ref_args(c, g);
    bench::FwdRefArgs rd = r;  // the same with device arrays (GPU references)
    rd.seqstart_q   = seqstart_q_d.as<const int32_t>();
    rd.seqstart_k   = seqstart_k_d.as<const int32_t>();
    rd.seqlen_k_log = c.padded_k() ? seqlen_k_d.as<const int32_t>() : nullptr;
    std::vector<float> of(g.o_elems, 0.f), lse(g.lse_elems, -std::numeric_limits<float>::infinity());
    if (cpu_ref) {
        r.seqstart_q   = c.group ? g.seqstart_q.data() : nullptr;
        r.seqstart_k   = c.group ? g.seqstart_k.data() : nullptr;
        r.seqlen_k_log = c.padded_k() ? g.seqlen_k.data() : nullptr;
        bench::mha_fwd_ref(r, qf.data(), kf.data(), vf.data(), of.data(), lse.data());
    } else {
        DeviceBuffer o_ref_d(g.o_elems * sizeof(float)), lse_ref_d(g.lse_elems * sizeof(float));
        CUDA_CHECK(cudaMemset(o_ref_d.ptr, 0, o_ref_d.bytes));
        CUDA_CHECK(bench::mha_fwd_ref_gpu(rd, t, q_d.ptr, k_d.ptr, v_d.ptr, o_ref_d.as<float>(),
                                          lse_ref_d.as<float>(), nullptr));
        CUDA_CHECK(cudaDeviceSynchronize());
        o_ref_d.download(of.data(), of.size() * sizeof(float));
        lse_ref_d.download(lse.data(), lse.size() * sizeof(float));
    }
    for (auto& x : of) x = bench::round_to(t, x);  // the library gets O in the input precision
    DeviceBuffer o_d = to_device(to_bits(of, t)), lse_d = to_device(lse);

    DeviceBuffer dq_d(g.q_elems * 2), dk_d(g.k_elems * 2), dv_d(g.v_elems * 2);
    CUDA_CHECK(cudaMemset(dq_d.ptr, 0xFF, dq_d.bytes));
    CUDA_CHECK(cudaMemset(dk_d.ptr, 0xFF, dk_d.bytes));
    CUDA_CHECK(cudaMemset(dv_d.ptr, 0xFF, dv_d.bytes));
    DeviceBuffer drop_d;
    if (c.drop_prefs) drop_d = to_device(std::vector<uint64_t>{c.drop_seed, c.drop_offset});

    // ---- API arguments ------------------------------------------------------------------------
    aiter::mha_bwd_args a;
    a.use_asm_v3 = c.bwd_v3, a.v3_atomic_fp32 = c.v3_atomic_fp32, a.v3_bf16_cvt = c.v3_bf16_cvt;
    a.hdim_q = c.hdim_q, a.hdim_v = c.hdim_v, a.data_type = c.prec, a.is_group_mode = c.group;
    a.mask_type = c.mask.spec.type, a.bias_type = c.bias == "n" ? 0 : c.bias == "e" ? 1 : 2;
    a.has_dbias = c.dbias, a.has_dropout = c.p_drop > 0.f, a.is_deterministic = c.deterministic;
    a.q_ptr = q_d.ptr, a.k_ptr = k_d.ptr, a.v_ptr = v_d.ptr, a.o_ptr = o_d.ptr, a.lse_ptr = lse_d.ptr;
    a.do_ptr = do_d.ptr, a.dq_ptr = dq_d.ptr, a.dk_ptr = dk_d.ptr, a.dv_ptr = dv_d.ptr;
    a.seqstart_q_ptr = seqstart_q_d.ptr, a.seqstart_k_ptr = seqstart_k_d.ptr, a.seqlen_k_ptr = seqlen_k_d.ptr;
    a.seqlen_q = static_cast<int>(g.rows_q), a.seqlen_k = static_cast<int>(g.rows_k), a.batch = c.batch;
    a.max_seqlen_q = static_cast<int>(g.max_sq), a.max_seqlen_k = static_cast<int>(g.max_sk);
    a.nhead_q = c.nhead_q, a.nhead_k = c.nhead_k, a.scale = c.scale_s;
    a.stride_q = a.stride_dq = g.q.row, a.nhead_stride_q = a.nhead_stride_dq = g.q.head;
    a.batch_stride_q = a.batch_stride_dq = g.q.batch;
    a.stride_k = a.stride_dk = g.k.row, a.nhead_stride_k = a.nhead_stride_dk = g.k.head;
    a.batch_stride_k = a.batch_stride_dk = g.k.batch;
    a.stride_v = a.stride_dv = g.v.row, a.nhead_stride_v = a.nhead_stride_dv = g.v.head;
    a.batch_stride_v = a.batch_stride_dv = g.v.batch;
    a.stride_o = a.stride_do = g.o.row, a.nhead_stride_o = a.nhead_stride_do = g.o.head;
    a.batch_stride_o = a.batch_stride_do = g.o.batch;
    a.nhead_stride_lsed = g.lse_head, a.batch_stride_lsed = g.lse_batch;
    a.window_size_left = c.mask.spec.left, a.window_size_right = c.mask.spec.right;
    a.p_drop = c.p_drop, a.p_undrop = 1.f - c.p_drop;
    if (c.drop_prefs)
        a.drop_seed_offset = std::pair<const void*, const void*>{drop_d.as<uint64_t>(), drop_d.as<uint64_t>() + 1};
    else
        a.drop_seed_offset = std::pair<uint64_t, uint64_t>{c.drop_seed, c.drop_offset};

    float ms = 0.f;
    try {
        if (c.is_v3_check) {
            aiter::mha_bwd_args chk = a;
            chk.use_asm_v3 = true, chk.v3_api_check = true;
            const float rv = aiter::mha_bwd(chk, aiter::stream_config{});
            std::cout << prefix << ", v3 kernel:" << (rv == 1.f ? "y" : "n") << std::endl;
            return kExitPass;
        }
        const aiter::stream_config sc{nullptr, true, 0, c.warmup, c.repeat, c.gpu_timer};
        ms = aiter::mha_bwd(a, sc);
    } catch (const std::invalid_argument& e) {
        std::cerr << "benchmark_mha_bwd: invalid argument: " << e.what() << std::endl;
        return kExitBadArg;
    }
    if (ms < 0.f) {
        std::cout << prefix << ", not supported yet" << std::endl;
        std::cerr << "benchmark_mha_bwd: not supported: " << aiter::mha_bwd_check(a).reason << std::endl;
        return kExitPass;
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<uint16_t> dq(g.q_elems), dk(g.k_elems), dv(g.v_elems);
    dq_d.download(dq.data(), dq.size() * 2);
    dk_d.download(dk.data(), dk.size() * 2);
    dv_d.download(dv.data(), dv.size() * 2);

    // ---- determinism: N more runs must reproduce every bit -------------------------------------
    bool deterministic_ok = true;
    if (c.det_runs > 0) {
        std::vector<uint16_t> dq2(dq.size()), dk2(dk.size()), dv2(dv.size());
        int differing = 0;
        for (int i = 0; i < c.det_runs; ++i) {
            aiter::mha_bwd(a, aiter::stream_config{});
            CUDA_CHECK(cudaDeviceSynchronize());
            dq_d.download(dq2.data(), dq2.size() * 2);
            dk_d.download(dk2.data(), dk2.size() * 2);
            dv_d.download(dv2.data(), dv2.size() * 2);
            if (dq2 != dq || dk2 != dk || dv2 != dv) ++differing;
        }
        deterministic_ok = differing == 0;
        std::cerr << "benchmark_mha_bwd: " << c.det_runs << " reruns, " << differing
                  << " with dQ/dK/dV bits different from the first run" << std::endl;
    }

    std::string kernel_name;
    if (c.kname) {
        kernel_name = aiter::mha_bwd_check(a).kernel_name;
        if (kernel_name.empty()) kernel_name = "?";
    }

    // ---- validation ------------------------------------------------------------------------------
    bool validated = false, pass = true;
    if (cpu_ref) {
        validated = true;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::vector<float> dq_ref(g.q_elems, nan), dk_ref(g.k_elems, nan), dv_ref(g.v_elems, nan);
        bench::mha_bwd_ref(r, qf.data(), kf.data(), vf.data(), of.data(), dof.data(), dq_ref.data(), dk_ref.data(),
                           dv_ref.data());
        pass = compare_tensor("dQ", c, g.seqstart_q, c.sq, c.nhead_q, c.hdim_q, g.q, dq, dq_ref);
        pass = compare_tensor("dK", c, g.seqstart_k, c.sk, c.nhead_k, c.hdim_q, g.k, dk, dk_ref) && pass;
        pass = compare_tensor("dV", c, g.seqstart_k, c.sk, c.nhead_k, c.hdim_v, g.v, dv, dv_ref) && pass;
    } else if (c.verify == 2) {  // fp32 GPU reference (shapes too large for the CPU)
        validated = true;
        DeviceBuffer dq_r(g.q_elems * 4), dk_r(g.k_elems * 4), dv_r(g.v_elems * 4), dsum_r(g.lse_elems * 4);
        CUDA_CHECK(bench::mha_bwd_ref_gpu(rd, t, q_d.ptr, k_d.ptr, v_d.ptr, o_d.ptr, do_d.ptr, lse_d.as<const float>(),
                                          dsum_r.as<float>(), dq_r.as<float>(), dk_r.as<float>(), dv_r.as<float>(),
                                          nullptr));
        CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<float> dq_ref(g.q_elems), dk_ref(g.k_elems), dv_ref(g.v_elems);
        dq_r.download(dq_ref.data(), dq_ref.size() * 4);
        dk_r.download(dk_ref.data(), dk_ref.size() * 4);
        dv_r.download(dv_ref.data(), dv_ref.size() * 4);
        pass = compare_tensor("dQ", c, g.seqstart_q, c.sq, c.nhead_q, c.hdim_q, g.q, dq, dq_ref);
        pass = compare_tensor("dK", c, g.seqstart_k, c.sk, c.nhead_k, c.hdim_q, g.k, dk, dk_ref) && pass;
        pass = compare_tensor("dV", c, g.seqstart_k, c.sk, c.nhead_k, c.hdim_v, g.v, dv, dv_ref) && pass;
    }

    const double tflops = ms > 0 ? total_flops(c) / ms / 1e9 : 0.0;
    const double gbps   = ms > 0 ? total_bytes(c) / ms / 1e6 : 0.0;
    std::ostringstream line;
    line << prefix;
    if (c.kname) line << ", " << kernel_name;
    line << std::fixed << std::setprecision(3) << ", " << ms << " ms, " << std::setprecision(2) << tflops
         << " TFlops, " << gbps << " GB/s";
    if (c.det_runs > 0) line << ", deterministic:" << (deterministic_ok ? "y" : "n");
    if (validated) line << ", valid:" << (pass ? "y" : "n");
    std::cout << line.str() << std::endl;
    return pass && deterministic_ok ? kExitPass : kExitFail;
}

}  // namespace

int main(int argc, char** argv) {
    bench::ArgParser parser;
    register_flags(parser);
    Config c;
    try {
        if (!parser.parse(argc, argv, std::cout)) return kExitPass;
        c = read_config(parser);
    } catch (const PrecError& e) {
        std::cerr << "benchmark_mha_bwd: " << e.what() << std::endl;
        return kExitBadPrec;
    } catch (const bench::ArgError& e) {
        std::cerr << "benchmark_mha_bwd: " << e.what() << std::endl;
        return kExitBadArg;
    }
    return run(c);
}
