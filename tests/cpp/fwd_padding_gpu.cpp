// GPU check of the logical-length (padding) arrays cu_seqlen_q_ptr / cu_seqlen_k_ptr of
// aiter::mha_fwd in batch and group mode, against the CPU reference (benchmark/reference).
// Outputs are poisoned first: logical rows must match the reference, padded rows (past the
// logical q length) must stay untouched. Needs a GPU; prints "N passed, M failed".
//
// build: nvcc -std=c++20 -I include -I src -I benchmark tests/cpp/fwd_padding_gpu.cpp \
//          -L build -lmha_fwd -Xlinker=-rpath=$PWD/build -o build/fwd_padding_gpu
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "cuda_check.h"

#include "mha_fwd.h"
#include "reference/half_types.h"
#include "reference/mha_fwd_ref.h"

namespace {

template <class T>
T* upload(const std::vector<T>& h) {
    T* d = nullptr;
    CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&d), std::max<size_t>(1, h.size()) * sizeof(T)));
    if (!h.empty()) CHECK_CUDA(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

struct Case {
    std::string name;
    bool group;
    bench::ElemType dtype;
    int nhead_q, nhead_k, hdim_q, hdim_v;
    std::vector<int> phys_q, phys_k;  // per batch physical lengths
    std::vector<int> log_q, log_k;    // per batch logical lengths
    aiter::MaskSpec mask;
};

std::vector<int> prefix(const std::vector<int>& v) {
    std::vector<int> p(v.size() + 1, 0);
    for (size_t i = 0; i < v.size(); ++i) p[i + 1] = p[i] + v[i];
    return p;
}

bool run_case(const Case& c, unsigned seed) {
    const int b = int(c.phys_q.size());
    // BSHD-like packing: rows of all heads interleaved (row stride = h * d).
    const int64_t rows_q = c.group ? prefix(c.phys_q).back() : c.phys_q[0];
    const int64_t rows_k = c.group ? prefix(c.phys_k).back() : c.phys_k[0];
    const int64_t nb = c.group ? 1 : b;
    const int64_t q_n = nb * rows_q * c.nhead_q * c.hdim_q, k_n = nb * rows_k * c.nhead_k * c.hdim_q,
                  v_n = nb * rows_k * c.nhead_k * c.hdim_v, o_n = nb * rows_q * c.nhead_q * c.hdim_v,
                  lse_n = nb * c.nhead_q * rows_q;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto make = [&](int64_t n, std::vector<float>& f, std::vector<uint16_t>& bits) {
        f.resize(n);
        bits.resize(n);
        for (int64_t i = 0; i < n; ++i) {
            bits[i] = bench::float_to_bits(c.dtype, dist(rng));
            f[i]    = bench::bits_to_float(c.dtype, bits[i]);
        }
    };
    std::vector<float> qf, kf, vf;
    std::vector<uint16_t> qb, kb, vb;
    make(q_n, qf, qb);
    make(k_n, kf, kb);
    make(v_n, vf, vb);

    aiter::mha_fwd_args a;
    a.data_type = c.dtype == bench::ElemType::bf16 ? "bf16" : "fp16";
    a.is_group_mode = c.group;
    a.has_lse = true;
    a.batch = b;
    a.nhead_q = c.nhead_q;
    a.nhead_k = c.nhead_k;
    a.hdim_q = c.hdim_q;
    a.hdim_v = c.hdim_v;
    a.seqlen_q = int(rows_q);
    a.seqlen_k = int(rows_k);
    a.max_seqlen_q = *std::max_element(c.phys_q.begin(), c.phys_q.end());
    a.scale_s = 1.f / std::sqrt(float(c.hdim_q));
    a.stride_q = int64_t(c.nhead_q) * c.hdim_q, a.nhead_stride_q = c.hdim_q, a.batch_stride_q = rows_q * a.stride_q;
    a.stride_k = int64_t(c.nhead_k) * c.hdim_q, a.nhead_stride_k = c.hdim_q, a.batch_stride_k = rows_k * a.stride_k;
    a.stride_v = int64_t(c.nhead_k) * c.hdim_v, a.nhead_stride_v = c.hdim_v, a.batch_stride_v = rows_k * a.stride_v;
    a.stride_o = int64_t(c.nhead_q) * c.hdim_v, a.nhead_stride_o = c.hdim_v, a.batch_stride_o = rows_q * a.stride_o;
    a.nhead_stride_lse = rows_q, a.batch_stride_lse = int64_t(c.nhead_q) * rows_q;
    a.mask_type = c.mask.type, a.window_size_left = c.mask.left, a.window_size_right = c.mask.right;

    uint16_t* q_d = upload(qb);
    uint16_t* k_d = upload(kb);
    uint16_t* v_d = upload(vb);
    uint16_t* o_d = upload(std::vector<uint16_t>(o_n, 0xFFFF));  // NaN poison
    float* lse_d  = upload(std::vector<float>(lse_n, std::nanf("")));
    const auto ss_q = prefix(c.phys_q), ss_k = prefix(c.phys_k), cu_q = prefix(c.log_q), cu_k = prefix(c.log_k);
    int* ssq_d = c.group ? upload(ss_q) : nullptr;
    int* ssk_d = c.group ? upload(ss_k) : nullptr;
    int* cuq_d = upload(cu_q);
    int* cuk_d = upload(cu_k);
    a.q_ptr = q_d, a.k_ptr = k_d, a.v_ptr = v_d, a.o_ptr = o_d, a.lse_ptr = lse_d;
    a.seqstart_q_ptr = ssq_d, a.seqstart_k_ptr = ssk_d, a.cu_seqlen_q_ptr = cuq_d, a.cu_seqlen_k_ptr = cuk_d;

    bool ok = true;
    try {
        aiter::mha_fwd_check_seqlens(a);
        const float r = aiter::mha_fwd(a, aiter::stream_config{});
        if (r < 0) {
            std::printf("FAIL %s: not supported: %s\n", c.name.c_str(), aiter::mha_fwd_check(a).reason.c_str());
            return false;
        }
    } catch (const std::exception& e) {
        std::printf("FAIL %s: %s\n", c.name.c_str(), e.what());
        return false;
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<uint16_t> ob(o_n);
    std::vector<float> lse(lse_n);
    CHECK_CUDA(cudaMemcpy(ob.data(), o_d, o_n * 2, cudaMemcpyDeviceToHost));
    CHECK_CUDA(cudaMemcpy(lse.data(), lse_d, lse_n * 4, cudaMemcpyDeviceToHost));

    bench::FwdRefArgs r;
    r.batch = b, r.nhead_q = c.nhead_q, r.nhead_k = c.nhead_k, r.hdim_q = c.hdim_q, r.hdim_v = c.hdim_v;
    r.is_group_mode = c.group, r.seqlen_q = rows_q, r.seqlen_k = rows_k, r.max_seqlen_q = a.max_seqlen_q;
    r.seqstart_q = c.group ? ss_q.data() : nullptr, r.seqstart_k = c.group ? ss_k.data() : nullptr;
    r.seqlen_q_log = c.log_q.data(), r.seqlen_k_log = c.log_k.data();
    r.scale_s = a.scale_s, r.mask = c.mask;
    r.stride_q = a.stride_q, r.nhead_stride_q = a.nhead_stride_q, r.batch_stride_q = a.batch_stride_q;
    r.stride_k = a.stride_k, r.nhead_stride_k = a.nhead_stride_k, r.batch_stride_k = a.batch_stride_k;
    r.stride_v = a.stride_v, r.nhead_stride_v = a.nhead_stride_v, r.batch_stride_v = a.batch_stride_v;
    r.stride_o = a.stride_o, r.nhead_stride_o = a.nhead_stride_o, r.batch_stride_o = a.batch_stride_o;
    r.nhead_stride_lse = a.nhead_stride_lse, r.batch_stride_lse = a.batch_stride_lse;
    std::vector<float> o_ref(o_n, std::nanf("")), lse_ref(lse_n, std::nanf(""));
    bench::mha_fwd_ref(r, qf.data(), kf.data(), vf.data(), o_ref.data(), lse_ref.data());

    const float tol = c.dtype == bench::ElemType::bf16 ? 1e-2f : 1e-3f;
    int bad = 0;
    for (int bi = 0; bi < b; ++bi) {
        const int64_t row0 = c.group ? ss_q[bi] : 0;
        for (int h = 0; h < c.nhead_q; ++h) {
            for (int i = 0; i < c.phys_q[bi]; ++i) {
                const bool logical = i < c.log_q[bi];
                const int64_t lse_i = (c.group ? 0 : bi * a.batch_stride_lse) + h * a.nhead_stride_lse + row0 + i;
                const float got_l = lse[lse_i], ref_l = lse_ref[lse_i];
                if (logical ? !((std::isinf(ref_l) && got_l == ref_l) || std::fabs(got_l - ref_l) <= 1e-3f + 1e-4f * std::fabs(ref_l))
                            : !std::isnan(got_l)) {
                    if (bad++ < 5) std::printf("  %s lse b%d h%d i%d: got %g ref %g (logical %d)\n", c.name.c_str(), bi, h, i, got_l, ref_l, int(logical));
                }
                for (int d = 0; d < c.hdim_v; ++d) {
                    const int64_t oi = (c.group ? 0 : bi * a.batch_stride_o) + (row0 + i) * a.stride_o + h * a.nhead_stride_o + d;
                    if (logical) {
                        const float got = bench::bits_to_float(c.dtype, ob[oi]), ref = o_ref[oi];
                        if (!(std::fabs(got - ref) <= tol + tol * std::fabs(ref))) {
                            if (bad++ < 5) std::printf("  %s o b%d h%d i%d d%d: got %g ref %g\n", c.name.c_str(), bi, h, i, d, got, ref);
                        }
                    } else if (ob[oi] != 0xFFFF) {
                        if (bad++ < 5) std::printf("  %s padded row written: b%d h%d i%d d%d\n", c.name.c_str(), bi, h, i, d);
                    }
                }
            }
        }
    }
    ok = bad == 0;
    std::printf("%s %s\n", ok ? "ok" : "FAIL", c.name.c_str());
    for (void* p : {(void*)q_d, (void*)k_d, (void*)v_d, (void*)o_d, (void*)lse_d, (void*)ssq_d, (void*)ssk_d, (void*)cuq_d, (void*)cuk_d})
        if (p) cudaFree(p);
    return ok;
}

}  // namespace

int main() {
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        std::printf("no CUDA device\n0 passed, 1 failed\n");
        return 1;
    }
    using E = bench::ElemType;
    const aiter::MaskSpec none{}, causal_br{2, -1, 0}, win_tl{1, 20, 5}, win_br{2, 100, 0};
    const std::vector<Case> cases = {
        {"batch bf16 d64 gqa causal-br, cu_seqlen_q+k", false, E::bf16, 4, 2, 64, 64, {100, 100, 100}, {150, 150, 150}, {100, 37, 0}, {150, 1, 77}, causal_br},
        {"batch fp16 d128 nomask, zero logical keys", false, E::fp16, 2, 2, 128, 128, {70, 70}, {300, 300}, {70, 70}, {0, 299}, none},
        {"group fp16 d128 window-tl, cu_seqlen_q+k", true, E::fp16, 3, 1, 128, 128, {50, 130, 1}, {64, 0, 237}, {40, 130, 1}, {64, 0, 200}, win_tl},
        {"group bf16 d59/d111 (unaligned) window-br", true, E::bf16, 2, 2, 59, 111, {33, 200}, {129, 65}, {17, 199}, {128, 3}, win_br},
        {"group fp16 d256 causal-br empty batches", true, E::fp16, 2, 1, 256, 256, {0, 90, 65}, {10, 0, 140}, {0, 90, 64}, {10, 0, 139}, causal_br},
    };
    int passed = 0, failed = 0;
    unsigned seed = 1234;
    for (const auto& c : cases) (run_case(c, seed++) ? passed : failed)++;
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
