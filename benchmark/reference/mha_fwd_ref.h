// CPU reference of the forward attention pass (header only, plain C++20, no CUDA).
//
// For each batch b, q head h (kv head h / (nhead_q / nhead_k)), logical lengths sq, sk:
//   s_ij  = scale_s * Σ_d q[i,d] k[j,d]                 products summed in double
//   s_ij  = cap * tanh(s_ij / cap)                        when logits_soft_cap = cap > 0
//   keep  = aiter::MaskSpec::visible(i, j, sq, sk)        the one mask definition (src/common/mask.h)
//   m_i   = max_{kept j} s_ij ;  p_ij = exp(s_ij - m_i) ;  l_i = Σ_{kept j} p_ij      (double)
//   O[i,:] = Σ_j p'_ij v[j,:] / l_i ;  LSE[i] = m_i + ln l_i     (stored as fp32)
// where p'_ij = p_ij (p_round = none, the default: an exact-softmax reference), or p_ij rounded
// to fp16 / bf16 (p_round = fp16 / bf16), modelling kernels that feed the unnormalized
// probabilities to a 16-bit P·V MMA while summing l_i from the unrounded values.
// A row with no kept key (fully masked, or sk = 0) gets O = 0 and LSE = -inf.
//
// Addressing, in elements (same conventions as aiter::mha_fwd_args):
//   batch mode: q[b,h,i,d] = q + b*batch_stride_q + h*nhead_stride_q + i*stride_q + d
//   group mode: batch strides are ignored; row i of batch b is physical row seqstart_q[b] + i
//               (and seqstart_k[b] + j for K/V)
//   lse: batch mode lse + b*batch_stride_lse + h*nhead_stride_lse + i
//        group mode lse + h*nhead_stride_lse + seqstart_q[b] + i
// Physical lengths: seqlen_q / seqlen_k (batch mode) or seqstart differences (group mode).
// Logical lengths (padding): seqlen_q_log[b] / seqlen_k_log[b] when non-null, each <= physical.
// Rows i >= logical sq are left untouched in O and LSE.
//
// Work is split over (batch, q head) pairs with std::thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/mask.h"
#include "reference/half_types.h"

namespace bench {

enum class PRound : int { none = 0, fp16 = 1, bf16 = 2 };

// Shapes, strides and mask of one forward problem. The pointers in this struct are host
// pointers for the CPU reference and device pointers for the GPU reference (gpu_reference.h).
struct FwdRefArgs {
    int batch   = 0;
    int nhead_q = 0;
    int nhead_k = 0;
    int hdim_q  = 0;
    int hdim_v  = 0;

    bool is_group_mode   = false;
    int64_t seqlen_q     = 0;  // batch mode: physical rows per batch
    int64_t seqlen_k     = 0;
    int64_t max_seqlen_q = 0;  // group mode: the longest physical q sequence (GPU grid size)
    int64_t max_seqlen_k = 0;  // group mode: the longest physical k sequence (GPU backward grid)
    const int32_t* seqstart_q   = nullptr;  // [batch+1] physical prefix sums (group mode)
    const int32_t* seqstart_k   = nullptr;
    const int32_t* seqlen_q_log = nullptr;  // [batch] logical lengths (optional, either mode)
    const int32_t* seqlen_k_log = nullptr;

    float scale_s         = 1.f;
    float logits_soft_cap = 0.f;  // <= 0: off
    aiter::MaskSpec mask{};
    PRound p_round = PRound::none;

    int64_t stride_q = 0, nhead_stride_q = 0, batch_stride_q = 0;
    int64_t stride_k = 0, nhead_stride_k = 0, batch_stride_k = 0;
    int64_t stride_v = 0, nhead_stride_v = 0, batch_stride_v = 0;
    int64_t stride_o = 0, nhead_stride_o = 0, batch_stride_o = 0;
    int64_t nhead_stride_lse = 0, batch_stride_lse = 0;
};

namespace detail {

inline double round_p(PRound r, double p) {
    switch (r) {
        case PRound::fp16: return round_to(ElemType::fp16, static_cast<float>(p));
        case PRound::bf16: return round_to(ElemType::bf16, static_cast<float>(p));
        default: return p;
    }
}

// One (batch, q head) pair.
inline void ref_one_head(const FwdRefArgs& a, const float* q, const float* k, const float* v,
                         float* o, float* lse, int b, int h) {
    const int64_t phys_q = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
    const int64_t phys_k = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
    const int64_t sq     = a.seqlen_q_log ? a.seqlen_q_log[b] : phys_q;
    const int64_t sk     = a.seqlen_k_log ? a.seqlen_k_log[b] : phys_k;
    const int hk         = h / (a.nhead_q / a.nhead_k);

    const int64_t row_q = a.is_group_mode ? a.seqstart_q[b] : 0;  // first physical row
    const int64_t row_k = a.is_group_mode ? a.seqstart_k[b] : 0;
    const int64_t bq    = a.is_group_mode ? 0 : b;                // batch index for strides

    const float* qb = q + bq * a.batch_stride_q + h * a.nhead_stride_q + row_q * a.stride_q;
    const float* kb = k + bq * a.batch_stride_k + hk * a.nhead_stride_k + row_k * a.stride_k;
    const float* vb = v + bq * a.batch_stride_v + hk * a.nhead_stride_v + row_k * a.stride_v;
    float* ob       = o + bq * a.batch_stride_o + h * a.nhead_stride_o + row_q * a.stride_o;
    float* lb       = lse ? lse + bq * a.batch_stride_lse + h * a.nhead_stride_lse + row_q : nullptr;

    const double cap = a.logits_soft_cap;
    std::vector<double> s(static_cast<size_t>(sk));
    std::vector<double> acc(static_cast<size_t>(a.hdim_v));
    constexpr double kNegInf = -std::numeric_limits<double>::infinity();

    for (int64_t i = 0; i < sq; ++i) {
        const float* qi = qb + i * a.stride_q;
        double m        = kNegInf;
        for (int64_t j = 0; j < sk; ++j) {
            if (!a.mask.visible(i, j, sq, sk)) { s[j] = kNegInf; continue; }
            const float* kj = kb + j * a.stride_k;
            double dot      = 0.0;
            for (int d = 0; d < a.hdim_q; ++d) dot += static_cast<double>(qi[d]) * kj[d];
            double sij = static_cast<double>(a.scale_s) * dot;
            if (cap > 0.0) sij = cap * std::tanh(sij / cap);
            s[j] = sij;
            m    = std::max(m, sij);
        }
        float* oi = ob + i * a.stride_o;
        if (m == kNegInf) {  // no visible key: O = 0, LSE = -inf
            for (int d = 0; d < a.hdim_v; ++d) oi[d] = 0.f;
            if (lb) lb[i] = -std::numeric_limits<float>::infinity();
            continue;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double l = 0.0;
        for (int64_t j = 0; j < sk; ++j) {
            if (s[j] == kNegInf) continue;
            const double p  = std::exp(s[j] - m);
            l              += p;
            const double pr = round_p(a.p_round, p);
            const float* vj = vb + j * a.stride_v;
            for (int d = 0; d < a.hdim_v; ++d) acc[d] += pr * vj[d];
        }
        for (int d = 0; d < a.hdim_v; ++d) oi[d] = static_cast<float>(acc[d] / l);
        if (lb) lb[i] = static_cast<float>(m + std::log(l));
    }
}

}  // namespace detail

// Runs the reference; o (and lse when non-null) receive the results (fp32) at the strides of
// `a`. num_threads <= 0: std::thread::hardware_concurrency(). Throws std::invalid_argument on
// inconsistent arguments.
inline void mha_fwd_ref(const FwdRefArgs& a, const float* q, const float* k, const float* v,
                        float* o, float* lse, int num_threads = 0) {
    if (a.batch < 0 || a.nhead_q <= 0 || a.nhead_k <= 0 || a.hdim_q <= 0 || a.hdim_v <= 0)
        throw std::invalid_argument("mha_fwd_ref: batch >= 0 and positive nhead/hdim expected");
    if (a.nhead_q % a.nhead_k != 0)
        throw std::invalid_argument("mha_fwd_ref: nhead_q (" + std::to_string(a.nhead_q) +
                                    ") must be a multiple of nhead_k (" +
                                    std::to_string(a.nhead_k) + ")");
    if (a.is_group_mode && (!a.seqstart_q || !a.seqstart_k))
        throw std::invalid_argument("mha_fwd_ref: group mode needs seqstart_q and seqstart_k");
    int64_t max_q = 0, max_k = 0;
    for (int b = 0; b < a.batch; ++b) {
        const int64_t pq = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
        const int64_t pk = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
        if (pq < 0 || pk < 0)
            throw std::invalid_argument("mha_fwd_ref: negative physical length in batch " +
                                        std::to_string(b));
        if ((a.seqlen_q_log && (a.seqlen_q_log[b] < 0 || a.seqlen_q_log[b] > pq)) ||
            (a.seqlen_k_log && (a.seqlen_k_log[b] < 0 || a.seqlen_k_log[b] > pk)))
            throw std::invalid_argument("mha_fwd_ref: logical length outside [0, physical] in batch " +
                                        std::to_string(b));
        max_q = std::max(max_q, pq);
        max_k = std::max(max_k, pk);
    }
    // Empty tensors may come as null pointers (e.g. K and V when every seqlen_k is 0).
    if ((max_q > 0 && (!q || !o)) || (max_k > 0 && (!k || !v)))
        throw std::invalid_argument("mha_fwd_ref: null q/k/v/o pointer for a non-empty tensor");

    const int64_t tasks = static_cast<int64_t>(a.batch) * a.nhead_q;
    if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    num_threads = static_cast<int>(std::min<int64_t>(num_threads, std::max<int64_t>(tasks, 1)));

    std::atomic<int64_t> next{0};
    auto worker = [&] {
        for (int64_t t = next++; t < tasks; t = next++)
            detail::ref_one_head(a, q, k, v, o, lse, static_cast<int>(t / a.nhead_q),
                                 static_cast<int>(t % a.nhead_q));
    };
    if (num_threads == 1) { worker(); return; }
    std::vector<std::thread> pool;
    pool.reserve(num_threads);
    for (int t = 0; t < num_threads; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
}

}  // namespace bench
