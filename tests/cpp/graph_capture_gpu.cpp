// GPU check that every API can be captured in a CUDA graph and replayed: fwd v2, fwd v3 (static
// and dynamic tiles), split-KV (with a combine kernel) and bwd (atomic and deterministic dQ; v3 when built).
// Each case runs once directly on a stream, then is captured on another stream and replayed
// three times with the outputs poisoned before each replay; every replay must reproduce the
// direct run bit for bit (the atomic-dQ backward: dK and dV; its dQ sums fp32 atomics in any
// order, so only the deterministic case compares dQ). The v3 cases with dynamic tiles also run five times in
// a row on one stream and once on each of two streams at the same time (the per-stream tile
// counter must be back at zero after every launch). Inputs are random; prints one line per
// case and "N passed, M failed" last. Needs an sm_90 GPU for the v3 cases (skipped elsewhere).
//
// build: nvcc -std=c++20 -I include tests/cpp/graph_capture_gpu.cpp -L build -lmha_fwd -lmha_bwd \
//          -Xlinker=-rpath=$PWD/build -o build/graph_capture_gpu
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cuda_check.h"

#include "mha_bwd.h"
#include "mha_fwd.h"

namespace {

using gpu_test::Buf;
using gpu_test::report;

// Random 16-bit values in [-1, 1) (fp16 or bf16 bit patterns), or fp32 values.
void fill_random(Buf& b, bool bf16, std::mt19937& rng, bool fp32 = false) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    if (fp32) {
        std::vector<float> h(b.bytes / 4);
        for (float& x : h) x = u(rng);
        CHECK_CUDA(cudaMemcpy(b.p, h.data(), b.bytes, cudaMemcpyHostToDevice));
        return;
    }
    std::vector<uint16_t> h(b.bytes / 2);
    for (uint16_t& x : h) {
        const float f = u(rng);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        if (bf16) {
            x = uint16_t(bits >> 16);
        } else {  // fp16 of a value in [-1, 1): sign, 5-bit exponent, 10-bit mantissa
            const uint32_t sign = (bits >> 16) & 0x8000u;
            const int exp = int((bits >> 23) & 0xff) - 127 + 15;
            x = exp <= 0 ? uint16_t(sign) : uint16_t(sign | (uint32_t(exp) << 10) | ((bits >> 13) & 0x3ffu));
        }
    }
    CHECK_CUDA(cudaMemcpy(b.p, h.data(), b.bytes, cudaMemcpyHostToDevice));
}

void poison(std::vector<Buf*> outs, cudaStream_t s) {
    for (Buf* b : outs) CHECK_CUDA(cudaMemsetAsync(b->p, 0x7f, b->bytes, s));
}

// Runs `call(stream)` directly, then captured and replayed 3 times; compares every output.
void check_capture(const std::string& name, const std::function<float(cudaStream_t)>& call, std::vector<Buf*> outs) {
    cudaStream_t s1, s2;
    CHECK_CUDA(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK_CUDA(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    poison(outs, s1);
    if (call(s1) < 0) {
        report(false, name, "not supported");
        return;
    }
    CHECK_CUDA(cudaStreamSynchronize(s1));
    std::vector<std::vector<unsigned char>> ref;
    for (Buf* b : outs) ref.push_back(b->get());

    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK_CUDA(cudaStreamBeginCapture(s2, cudaStreamCaptureModeGlobal));
    const float rc = call(s2);
    CHECK_CUDA(cudaStreamEndCapture(s2, &graph));
    if (rc < 0) {
        report(false, name, "not supported while capturing");
        return;
    }
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    std::string why;
    for (int rep = 0; rep < 3 && why.empty(); ++rep) {
        poison(outs, s2);
        CHECK_CUDA(cudaGraphLaunch(exec, s2));
        CHECK_CUDA(cudaStreamSynchronize(s2));
        for (size_t i = 0; i < outs.size() && why.empty(); ++i)
            if (outs[i]->get() != ref[i]) why = "replay " + std::to_string(rep) + ": output " + std::to_string(i) + " differs";
    }
    CHECK_CUDA(cudaGraphExecDestroy(exec));
    CHECK_CUDA(cudaGraphDestroy(graph));
    report(why.empty(), name + " (graph replays)", why);
    CHECK_CUDA(cudaStreamDestroy(s1));
    CHECK_CUDA(cudaStreamDestroy(s2));
}

// Repeated launches on one stream, and two streams at once, must reproduce the first run.
void check_repeats(const std::string& name, const std::function<float(cudaStream_t, int)>& call,
                   std::vector<Buf*> outs_a, std::vector<Buf*> outs_b) {
    cudaStream_t s1, s2;
    CHECK_CUDA(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK_CUDA(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    poison(outs_a, s1);
    call(s1, 0);
    CHECK_CUDA(cudaStreamSynchronize(s1));
    std::vector<std::vector<unsigned char>> ref;
    for (Buf* b : outs_a) ref.push_back(b->get());
    std::string why;
    for (int rep = 0; rep < 5 && why.empty(); ++rep) {
        poison(outs_a, s1);
        call(s1, 0);
        CHECK_CUDA(cudaStreamSynchronize(s1));
        for (size_t i = 0; i < outs_a.size(); ++i)
            if (outs_a[i]->get() != ref[i]) why = "run " + std::to_string(rep + 2) + " on one stream differs";
    }
    if (why.empty()) {
        poison(outs_a, s1);
        poison(outs_b, s2);
        CHECK_CUDA(cudaDeviceSynchronize());
        call(s1, 0);
        call(s2, 1);
        CHECK_CUDA(cudaDeviceSynchronize());
        for (size_t i = 0; i < outs_a.size(); ++i)
            if (outs_a[i]->get() != ref[i] || outs_b[i]->get() != ref[i]) why = "two streams at once differ";
    }
    report(why.empty(), name + " (repeats, two streams)", why);
    CHECK_CUDA(cudaStreamDestroy(s1));
    CHECK_CUDA(cudaStreamDestroy(s2));
}

struct FwdCase {
    std::string name;
    bool bf16;
    int b, hq, hk, sq, sk, d;
    int mask_type;  // 0 none, 2 causal bottom-right
    bool v3;
};

void run_fwd(const FwdCase& c, std::mt19937& rng) {
    const size_t e = 2;
    Buf q(size_t(c.b) * c.hq * c.sq * c.d * e), k(size_t(c.b) * c.hk * c.sk * c.d * e),
        v(size_t(c.b) * c.hk * c.sk * c.d * e);
    Buf o(q.bytes), lse(size_t(c.b) * c.hq * c.sq * 4), o2(q.bytes), lse2(lse.bytes);
    fill_random(q, c.bf16, rng), fill_random(k, c.bf16, rng), fill_random(v, c.bf16, rng);
    // BHSD, contiguous; `out` picks the output pair.
    auto call = [&](cudaStream_t s, int out) {
        aiter::mha_fwd_args a;
        a.use_asm_v3 = c.v3;
        a.data_type = c.bf16 ? "bf16" : "fp16";
        a.has_lse = true;
        a.q_ptr = q.p, a.k_ptr = k.p, a.v_ptr = v.p;
        a.o_ptr = out ? o2.p : o.p, a.lse_ptr = out ? lse2.p : lse.p;
        a.batch = c.b, a.seqlen_q = c.sq, a.seqlen_k = c.sk, a.max_seqlen_q = c.sq;
        a.nhead_q = c.hq, a.nhead_k = c.hk, a.hdim_q = c.d, a.hdim_v = c.d;
        a.scale_s = 1.f / std::sqrt(float(c.d));
        a.stride_q = a.stride_o = a.stride_k = a.stride_v = c.d;
        a.nhead_stride_q = a.nhead_stride_o = int64_t(c.sq) * c.d;
        a.nhead_stride_k = a.nhead_stride_v = int64_t(c.sk) * c.d;
        a.batch_stride_q = a.batch_stride_o = int64_t(c.hq) * c.sq * c.d;
        a.batch_stride_k = a.batch_stride_v = int64_t(c.hk) * c.sk * c.d;
        a.nhead_stride_lse = c.sq, a.batch_stride_lse = int64_t(c.hq) * c.sq;
        a.mask_type = c.mask_type, a.window_size_left = -1, a.window_size_right = c.mask_type ? 0 : -1;
        aiter::stream_config sc;
        sc.stream_id_ = s;
        if (c.v3) {
            aiter::mha_fwd_args chk = a;
            chk.v3_api_check = true;
            if (aiter::mha_fwd(chk, sc) < 0) return -1.f;  // v3 must really run
        }
        return aiter::mha_fwd(a, sc);
    };
    check_capture(c.name, [&](cudaStream_t s) { return call(s, 0); }, {&o, &lse});
    if (c.v3 && c.mask_type != 0) check_repeats(c.name, call, {&o, &lse}, {&o2, &lse2});
}

void run_splitkv(std::mt19937& rng) {
    const int b = 3, hq = 8, hk = 2, sq = 1, sk = 3000, d = 128, splits = 4;
    Buf q(size_t(b) * hq * sq * d * 2), k(size_t(b) * hk * sk * d * 2), v(k.bytes);
    Buf o(q.bytes), lse(size_t(b) * hq * sq * 4);
    Buf o_acc(size_t(splits) * b * hq * sq * d * 4), lse_acc(size_t(splits) * b * hq * sq * 4);
    fill_random(q, true, rng), fill_random(k, true, rng), fill_random(v, true, rng);
    auto call = [&](cudaStream_t s) {
        aiter::mha_fwd_splitkv_args a;
        a.data_type = "bf16";
        a.has_lse = true;
        a.q_ptr = q.p, a.k_ptr = k.p, a.v_ptr = v.p, a.o_ptr = o.p, a.lse_ptr = lse.p;
        a.batch = b, a.seqlen_q = sq, a.seqlen_k = sk, a.max_seqlen_q = sq;
        a.nhead_q = hq, a.nhead_k = hk, a.hdim_q = d, a.hdim_v = d;
        a.scale_s = 1.f / std::sqrt(float(d));
        a.stride_q = a.stride_o = a.stride_k = a.stride_v = d;
        a.nhead_stride_q = a.nhead_stride_o = int64_t(sq) * d;
        a.nhead_stride_k = a.nhead_stride_v = int64_t(sk) * d;
        a.batch_stride_q = a.batch_stride_o = int64_t(hq) * sq * d;
        a.batch_stride_k = a.batch_stride_v = int64_t(hk) * sk * d;
        a.nhead_stride_lse = sq, a.batch_stride_lse = int64_t(hq) * sq;
        a.mask_type = 2, a.window_size_left = -1, a.window_size_right = 0;
        a.num_splits = splits;
        a.o_acc_ptr = o_acc.p, a.lse_acc_ptr = lse_acc.p;
        a.stride_o_acc = d, a.nhead_stride_o_acc = int64_t(sq) * d, a.batch_stride_o_acc = int64_t(hq) * sq * d;
        a.split_stride_o_acc = int64_t(b) * hq * sq * d;
        a.nhead_stride_lse_acc = sq, a.batch_stride_lse_acc = int64_t(hq) * sq, a.split_stride_lse_acc = int64_t(b) * hq * sq;
        aiter::stream_config sc;
        sc.stream_id_ = s;
        return aiter::mha_fwd_splitkv(a, sc);
    };
    check_capture("splitkv bf16 d128 GQA causal, 4 splits + combine", call, {&o, &lse});
}

void run_bwd(bool det, bool v3, std::mt19937& rng) {
    const int b = 2, hq = 4, hk = 2, sq = 300, sk = 517, d = 128;
    Buf q(size_t(b) * hq * sq * d * 2), k(size_t(b) * hk * sk * d * 2), v(k.bytes), o(q.bytes), dout(q.bytes);
    Buf lse(size_t(b) * hq * sq * 4), dq(q.bytes), dk(k.bytes), dv(k.bytes);
    fill_random(q, false, rng), fill_random(k, false, rng), fill_random(v, false, rng);
    fill_random(o, false, rng), fill_random(dout, false, rng), fill_random(lse, false, rng, true);
    auto call = [&](cudaStream_t s) {
        aiter::mha_bwd_args a;
        a.data_type = "fp16";
        a.is_deterministic = det;
        a.q_ptr = q.p, a.k_ptr = k.p, a.v_ptr = v.p, a.o_ptr = o.p, a.do_ptr = dout.p, a.lse_ptr = lse.p;
        a.dq_ptr = dq.p, a.dk_ptr = dk.p, a.dv_ptr = dv.p;
        a.batch = b, a.seqlen_q = sq, a.seqlen_k = sk, a.max_seqlen_q = sq, a.max_seqlen_k = sk;
        a.nhead_q = hq, a.nhead_k = hk, a.hdim_q = d, a.hdim_v = d;
        a.scale = 1.f / std::sqrt(float(d));
        a.stride_q = a.stride_o = a.stride_do = a.stride_dq = d;
        a.stride_k = a.stride_v = a.stride_dk = a.stride_dv = d;
        a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_do = a.nhead_stride_dq = int64_t(sq) * d;
        a.nhead_stride_k = a.nhead_stride_v = a.nhead_stride_dk = a.nhead_stride_dv = int64_t(sk) * d;
        a.batch_stride_q = a.batch_stride_o = a.batch_stride_do = a.batch_stride_dq = int64_t(hq) * sq * d;
        a.batch_stride_k = a.batch_stride_v = a.batch_stride_dk = a.batch_stride_dv = int64_t(hk) * sk * d;
        a.nhead_stride_lsed = sq, a.batch_stride_lsed = int64_t(hq) * sq;
        a.mask_type = 2, a.window_size_left = -1, a.window_size_right = 0;
        a.use_asm_v3 = v3;
        aiter::stream_config sc;
        sc.stream_id_ = s;
        if (v3) {
            aiter::mha_bwd_args chk = a;
            chk.v3_api_check = true;
            if (aiter::mha_bwd(chk, sc) < 0) return -1.f;  // v3 must really run
        }
        return aiter::mha_bwd(a, sc);
    };
    if (v3) {
        check_capture("bwd v3 fp16 d128 GQA causal (dK, dV)", call, {&dk, &dv});
    } else if (det) {
        check_capture("bwd fp16 d128 GQA causal deterministic", call, {&dq, &dk, &dv});
    } else {
        check_capture("bwd fp16 d128 GQA causal atomic dQ (dK, dV)", call, {&dk, &dv});
    }
}

}  // namespace

int main() {
    const int major = gpu_test::device_major();
    std::mt19937 rng(20261207);
    const std::vector<FwdCase> fwd = {
        {"fwd v2 fp16 d64 causal", false, 2, 4, 2, 333, 517, 64, 2, false},
        {"fwd v3 bf16 d128 (static tiles)", true, 2, 4, 2, 1000, 1000, 128, 0, true},
        {"fwd v3 bf16 d128 causal (dynamic tiles)", true, 2, 8, 2, 1500, 1500, 128, 2, true},
        {"fwd v3 fp16 d64 causal short (dynamic tiles)", false, 3, 4, 4, 700, 900, 64, 2, true},
        {"fwd v3 bf16 d256 causal short (dynamic tiles)", true, 1, 4, 1, 1024, 1024, 256, 2, true},
    };
    for (const FwdCase& c : fwd) {
        if (c.v3 && major != 9) {
            std::printf("skip %s: not an sm_90 device\n", c.name.c_str());
            continue;
        }
        run_fwd(c, rng);
    }
    run_splitkv(rng);
    run_bwd(true, false, rng);
    run_bwd(false, false, rng);
    bool bwd_v3 = false;
    for (const std::string& n : aiter::mha_bwd_instances()) bwd_v3 = bwd_v3 || n.find("bwd_v3") != std::string::npos;
    if (bwd_v3 && major == 9) run_bwd(false, true, rng);
    else std::printf("skip bwd v3: %s\n", bwd_v3 ? "not an sm_90 device" : "no bwd_v3 instance in libmha_bwd.so");
    std::printf("%d passed, %d failed\n", gpu_test::passed, gpu_test::failed);
    return gpu_test::failed == 0 ? 0 : 1;
}
