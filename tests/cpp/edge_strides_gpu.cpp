// GPU check of accepted edge layouts (issue 30), meant to run under compute-sanitizer memcheck:
//   * K/V broadcast over heads and batches (zero head and batch strides of inputs), forward v2 and
//     v3 and backward (dK/dV then go to distinct outputs);
//   * huge but valid strides: Q and O rows 2^20 elements apart, batches 2^28 elements apart;
// each compared bit for bit with the same problem on compact copies of the same data (same
// kernel, only the addresses differ). Prints "ok <case>" / "FAIL <case>" and "N passed, M failed".
//
// build: nvcc -std=c++20 -I include tests/cpp/edge_strides_gpu.cpp -L build -lmha_fwd -lmha_bwd \
//        -Xlinker=-rpath=$PWD/build -o build/edge_strides_gpu
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "mha_bwd.h"
#include "mha_fwd.h"

namespace {

using gpu_test::Buf;
using gpu_test::report;

// Random bf16 values in [-1, 1).
std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<uint16_t> h(n);
    for (uint16_t& x : h) {
        const float f = u(rng);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        x = uint16_t(bits >> 16);
    }
    return h;
}

// Copies `rows` rows of `d` elements from a host array into device memory at a row stride.
void put_rows(const Buf& dst, int64_t offset, int64_t row_stride, const uint16_t* src, int rows, int d) {
    CHECK_CUDA(cudaMemcpy2D(dst.at(offset), size_t(row_stride) * 2, src, size_t(d) * 2, size_t(d) * 2, rows,
                            cudaMemcpyHostToDevice));
}
std::vector<uint16_t> get_rows(const Buf& src, int64_t offset, int64_t row_stride, int rows, int d) {
    std::vector<uint16_t> h(size_t(rows) * d);
    CHECK_CUDA(cudaMemcpy2D(h.data(), size_t(d) * 2, src.at(offset), size_t(row_stride) * 2, size_t(d) * 2, rows,
                            cudaMemcpyDeviceToHost));
    return h;
}

constexpr int B = 2, HQ = 4, HK = 2, SQ = 257, SK = 300, D = 128;

aiter::mha_fwd_args fwd_args(bool v3) {
    aiter::mha_fwd_args a;
    a.data_type = "bf16";
    a.use_asm_v3 = v3;
    a.batch = B, a.nhead_q = HQ, a.nhead_k = HK, a.hdim_q = D, a.hdim_v = D;
    a.seqlen_q = SQ, a.seqlen_k = SK, a.max_seqlen_q = SQ;
    a.scale_s = 1.f / std::sqrt(float(D));
    a.mask_type = 2, a.window_size_left = -1, a.window_size_right = 0;
    return a;
}

// Compact BHSD strides of a [B, heads, rows, D] tensor.
void compact(int64_t& row, int64_t& head, int64_t& batch, int heads, int rows) {
    row = D, head = int64_t(rows) * D, batch = int64_t(heads) * rows * D;
}

// Every (batch, kv head) of the compact [B, HK, SK, D] copies k and v gets the same rows kv.
void fill_compact_kv(const Buf& k, const Buf& v, const std::vector<uint16_t>& kv) {
    for (int i = 0; i < B * HK; ++i) {
        put_rows(k, int64_t(i) * SK * D, D, kv.data(), SK, D);
        put_rows(v, int64_t(i) * SK * D, D, kv.data(), SK, D);
    }
}

// K and V of a (mha_fwd_args or mha_bwd_args): one [SK, D] block read by every head and batch
// (head and batch strides 0), or the compact copies.
template <class Args>
void set_kv(Args& a, bool broadcast, const Buf& k1, const Buf& v1, const Buf& kc, const Buf& vc) {
    if (broadcast) {
        a.k_ptr = k1.p, a.v_ptr = v1.p;
        a.stride_k = a.stride_v = D, a.nhead_stride_k = a.nhead_stride_v = 0, a.batch_stride_k = a.batch_stride_v = 0;
    } else {
        a.k_ptr = kc.p, a.v_ptr = vc.p;
        compact(a.stride_k, a.nhead_stride_k, a.batch_stride_k, HK, SK);
        compact(a.stride_v, a.nhead_stride_v, a.batch_stride_v, HK, SK);
    }
}

void run_fwd_broadcast(bool v3, std::mt19937& rng) {
    const std::string name = std::string("fwd ") + (v3 ? "v3" : "v2") + " K/V broadcast over heads and batches";
    const auto q = random_bf16(size_t(B) * HQ * SQ * D, rng), kv = random_bf16(size_t(SK) * D, rng);
    Buf dq(q.size() * 2), dk1(kv.size() * 2), dv1(kv.size() * 2), o1(q.size() * 2), o2(q.size() * 2);
    Buf dk(size_t(B) * HK * SK * D * 2), dv(dk.bytes);
    CHECK_CUDA(cudaMemcpy(dq.p, q.data(), dq.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dk1.p, kv.data(), dk1.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(dv1.p, kv.data(), dv1.bytes, cudaMemcpyHostToDevice));
    fill_compact_kv(dk, dv, kv);
    auto run = [&](bool broadcast, const Buf& o) {
        aiter::mha_fwd_args a = fwd_args(v3);
        a.q_ptr = dq.p, a.o_ptr = o.p;
        compact(a.stride_q, a.nhead_stride_q, a.batch_stride_q, HQ, SQ);
        compact(a.stride_o, a.nhead_stride_o, a.batch_stride_o, HQ, SQ);
        set_kv(a, broadcast, dk1, dv1, dk, dv);
        CHECK_CUDA(cudaMemset(o.p, 0x7f, o.bytes));
        return aiter::mha_fwd(a, aiter::stream_config{});
    };
    const float r1 = run(true, o1), r2 = run(false, o2);
    CHECK_CUDA(cudaDeviceSynchronize());
    if (r1 < 0 || r2 < 0) return report(false, name, "not supported");
    const bool same = o1.get() == o2.get();
    report(same, name, same ? "" : "O differs from the compact copy's");
}

void run_fwd_huge_strides(bool v3, std::mt19937& rng) {
    const std::string name = std::string("fwd ") + (v3 ? "v3" : "v2") + " Q/O rows 2^20 apart, batches 2^28 apart";
    constexpr int64_t kRow = int64_t(1) << 20, kBatch = int64_t(1) << 28;  // elements
    const int b = 2, h = 1, sq = 4, sk = 130;
    const auto q = random_bf16(size_t(b) * sq * D, rng), kv = random_bf16(size_t(b) * sk * D, rng);
    Buf qh(size_t(kBatch + (sq - 1) * kRow + D) * 2), oh(qh.bytes);  // 1 GiB + 8 MiB each
    Buf qc(q.size() * 2), oc(q.size() * 2), k(kv.size() * 2), v(kv.size() * 2);
    CHECK_CUDA(cudaMemcpy(k.p, kv.data(), k.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(v.p, kv.data(), v.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(qc.p, q.data(), qc.bytes, cudaMemcpyHostToDevice));
    for (int bi = 0; bi < b; ++bi) put_rows(qh, bi * kBatch, kRow, q.data() + size_t(bi) * sq * D, sq, D);
    auto run = [&](bool huge) {
        aiter::mha_fwd_args a = fwd_args(v3);
        a.batch = b, a.nhead_q = a.nhead_k = h, a.seqlen_q = a.max_seqlen_q = sq, a.seqlen_k = sk;
        a.k_ptr = k.p, a.v_ptr = v.p;
        a.stride_k = a.stride_v = D, a.nhead_stride_k = a.nhead_stride_v = int64_t(sk) * D;
        a.batch_stride_k = a.batch_stride_v = int64_t(sk) * D;
        a.q_ptr = huge ? qh.p : qc.p, a.o_ptr = huge ? oh.p : oc.p;
        a.stride_q = a.stride_o = huge ? kRow : D;
        a.nhead_stride_q = a.nhead_stride_o = huge ? kRow * sq : int64_t(sq) * D;
        a.batch_stride_q = a.batch_stride_o = huge ? kBatch : int64_t(sq) * D;
        return aiter::mha_fwd(a, aiter::stream_config{});
    };
    CHECK_CUDA(cudaMemset(oc.p, 0x7f, oc.bytes));
    const float r1 = run(true), r2 = run(false);
    CHECK_CUDA(cudaDeviceSynchronize());
    if (r1 < 0 || r2 < 0) return report(false, name, "not supported");
    bool same = true;
    for (int bi = 0; bi < b; ++bi)
        same = same && get_rows(oh, bi * kBatch, kRow, sq, D) == get_rows(oc, int64_t(bi) * sq * D, D, sq, D);
    report(same, name, same ? "" : "O differs from the compact layout's");
}

void run_bwd_broadcast(std::mt19937& rng) {
    const std::string name = "bwd v2 K/V broadcast over heads and batches (dK/dV distinct)";
    const size_t nq = size_t(B) * HQ * SQ * D, nk = size_t(B) * HK * SK * D;
    const auto q = random_bf16(nq, rng), o = random_bf16(nq, rng), dout = random_bf16(nq, rng);
    const auto kv = random_bf16(size_t(SK) * D, rng);
    std::vector<float> lse(size_t(B) * HQ * SQ);
    std::uniform_real_distribution<float> u(3.f, 6.f);
    for (float& x : lse) x = u(rng);
    Buf dq_(nq * 2), do_(nq * 2), o_(nq * 2), lse_(lse.size() * 4), k1(kv.size() * 2), v1(kv.size() * 2);
    Buf kc(nk * 2), vc(nk * 2);
    Buf gq1(nq * 2), gk1(nk * 2), gv1(nk * 2), gq2(nq * 2), gk2(nk * 2), gv2(nk * 2), qd(nq * 2);
    CHECK_CUDA(cudaMemcpy(qd.p, q.data(), nq * 2, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(o_.p, o.data(), nq * 2, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(do_.p, dout.data(), nq * 2, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(lse_.p, lse.data(), lse_.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(k1.p, kv.data(), k1.bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(v1.p, kv.data(), v1.bytes, cudaMemcpyHostToDevice));
    fill_compact_kv(kc, vc, kv);
    auto run = [&](bool broadcast, const Buf& gq, const Buf& gk, const Buf& gv) {
        aiter::mha_bwd_args a;
        a.data_type = "bf16";
        a.is_deterministic = true;  // bit-comparable
        a.batch = B, a.nhead_q = HQ, a.nhead_k = HK, a.hdim_q = a.hdim_v = D;
        a.seqlen_q = a.max_seqlen_q = SQ, a.seqlen_k = a.max_seqlen_k = SK;
        a.scale = 1.f / std::sqrt(float(D));
        a.mask_type = 2, a.window_size_left = -1, a.window_size_right = 0;
        a.q_ptr = qd.p, a.o_ptr = o_.p, a.do_ptr = do_.p, a.lse_ptr = lse_.p;
        a.dq_ptr = gq.p, a.dk_ptr = gk.p, a.dv_ptr = gv.p;
        compact(a.stride_q, a.nhead_stride_q, a.batch_stride_q, HQ, SQ);
        compact(a.stride_o, a.nhead_stride_o, a.batch_stride_o, HQ, SQ);
        compact(a.stride_do, a.nhead_stride_do, a.batch_stride_do, HQ, SQ);
        compact(a.stride_dq, a.nhead_stride_dq, a.batch_stride_dq, HQ, SQ);
        compact(a.stride_dk, a.nhead_stride_dk, a.batch_stride_dk, HK, SK);
        compact(a.stride_dv, a.nhead_stride_dv, a.batch_stride_dv, HK, SK);
        a.nhead_stride_lsed = SQ, a.batch_stride_lsed = int64_t(HQ) * SQ;
        set_kv(a, broadcast, k1, v1, kc, vc);
        for (const Buf* g : {&gq, &gk, &gv}) CHECK_CUDA(cudaMemset(g->p, 0x7f, g->bytes));
        return aiter::mha_bwd(a, aiter::stream_config{});
    };
    const float r1 = run(true, gq1, gk1, gv1), r2 = run(false, gq2, gk2, gv2);
    CHECK_CUDA(cudaDeviceSynchronize());
    if (r1 < 0 || r2 < 0) return report(false, name, "not supported");
    const bool same = gq1.get() == gq2.get() && gk1.get() == gk2.get() && gv1.get() == gv2.get();
    report(same, name, same ? "" : "dQ/dK/dV differ from the compact copy's");
}

}  // namespace

int main() {
    const int major = gpu_test::device_major();
    std::mt19937 rng(20261207);
    for (bool v3 : {false, true}) {
        if (v3 && major != 9) {
            std::printf("skip fwd v3: not an sm_90 device\n");
            continue;
        }
        run_fwd_broadcast(v3, rng);
        run_fwd_huge_strides(v3, rng);
    }
    run_bwd_broadcast(rng);
    std::printf("%d passed, %d failed\n", gpu_test::passed, gpu_test::failed);
    return gpu_test::failed == 0 ? 0 : 1;
}
