// CPU reference of the backward attention pass (header only, plain C++20, no CUDA).
//
// For each batch b, kv head hk and each q head h of its group (h / (nhead_q / nhead_k) == hk),
// logical lengths sq, sk, everything in double:
//   s_ij  = scale_s * Σ_d q[i,d] k[j,d]            keep = aiter::MaskSpec::visible(i, j, sq, sk)
//   P_ij  = exp(s_ij - m_i) / l_i                   recomputed here (exact softmax; the LSE of the
//                                                    forward is not read), 0 where not kept
//   D_i   = Σ_d dO[i,d] O[i,d]                      O as given (what the library reads too)
//   dP_ij = Σ_d dO[i,d] v[j,d] ;  dS_ij = P_ij (dP_ij - D_i)
//   dQ[i] = scale_s Σ_j dS_ij k[j] ;  dK[j] += scale_s Σ_i dS_ij q[i] ;  dV[j] += Σ_i P_ij dO[i]
// dK/dV of a kv head are summed over the q heads of its group (GQA/MQA). A row with no kept key
// gets dQ = 0; a key no row keeps gets dK = dV = 0. Results are stored as fp32 at the strides of
// the arguments; rows past the logical lengths are left untouched.
//
// Addressing: as reference/mha_fwd_ref.h (FwdRefArgs: q, k, v, o and their strides); dO uses
// o's strides, dQ q's, dK k's and dV v's. Soft-cap is not modelled (throws).
//
// Work is split over (batch, kv head) pairs with std::thread.
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
#include "reference/mha_fwd_ref.h"

namespace bench {

namespace detail {

inline void bwd_ref_one_kv_head(const FwdRefArgs& a, const float* q, const float* k, const float* v,
                                const float* o, const float* dout, float* dq, float* dk, float* dv, int b,
                                int hk) {
    const int64_t phys_q = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
    const int64_t phys_k = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
    const int64_t sq     = a.seqlen_q_log ? a.seqlen_q_log[b] : phys_q;
    const int64_t sk     = a.seqlen_k_log ? a.seqlen_k_log[b] : phys_k;
    const int ratio      = a.nhead_q / a.nhead_k;
    const int64_t row_q  = a.is_group_mode ? a.seqstart_q[b] : 0;
    const int64_t row_k  = a.is_group_mode ? a.seqstart_k[b] : 0;
    const int64_t bb     = a.is_group_mode ? 0 : b;
    const double scale   = a.scale_s;

    const float* kb = k + bb * a.batch_stride_k + hk * a.nhead_stride_k + row_k * a.stride_k;
    const float* vb = v + bb * a.batch_stride_v + hk * a.nhead_stride_v + row_k * a.stride_v;
    float* dkb      = dk + bb * a.batch_stride_k + hk * a.nhead_stride_k + row_k * a.stride_k;
    float* dvb      = dv + bb * a.batch_stride_v + hk * a.nhead_stride_v + row_k * a.stride_v;

    std::vector<double> dk_acc(static_cast<size_t>(sk) * a.hdim_q, 0.0);
    std::vector<double> dv_acc(static_cast<size_t>(sk) * a.hdim_v, 0.0);
    std::vector<double> p(static_cast<size_t>(sk)), ds(static_cast<size_t>(sk)), dq_row(a.hdim_q);
    constexpr double kNegInf = -std::numeric_limits<double>::infinity();

    for (int r = 0; r < ratio; ++r) {
        const int h      = hk * ratio + r;
        const float* qb  = q + bb * a.batch_stride_q + h * a.nhead_stride_q + row_q * a.stride_q;
        const float* ob  = o + bb * a.batch_stride_o + h * a.nhead_stride_o + row_q * a.stride_o;
        const float* dob = dout + bb * a.batch_stride_o + h * a.nhead_stride_o + row_q * a.stride_o;
        float* dqb       = dq + bb * a.batch_stride_q + h * a.nhead_stride_q + row_q * a.stride_q;
        for (int64_t i = 0; i < sq; ++i) {
            const float* qi  = qb + i * a.stride_q;
            const float* doi = dob + i * a.stride_o;
            double m         = kNegInf;
            for (int64_t j = 0; j < sk; ++j) {
                if (!a.mask.visible(i, j, sq, sk)) { p[j] = kNegInf; continue; }
                const float* kj = kb + j * a.stride_k;
                double dot      = 0.0;
                for (int d = 0; d < a.hdim_q; ++d) dot += static_cast<double>(qi[d]) * kj[d];
                p[j] = scale * dot;
                m    = std::max(m, p[j]);
            }
            std::fill(dq_row.begin(), dq_row.end(), 0.0);
            if (m != kNegInf) {
                double l = 0.0;
                for (int64_t j = 0; j < sk; ++j) {
                    p[j] = p[j] == kNegInf ? 0.0 : std::exp(p[j] - m);
                    l += p[j];
                }
                double dsum = 0.0;
                const float* oi = ob + i * a.stride_o;
                for (int d = 0; d < a.hdim_v; ++d) dsum += static_cast<double>(doi[d]) * oi[d];
                for (int64_t j = 0; j < sk; ++j) {
                    p[j] /= l;
                    if (p[j] == 0.0) { ds[j] = 0.0; continue; }
                    const float* vj = vb + j * a.stride_v;
                    double dp       = 0.0;
                    for (int d = 0; d < a.hdim_v; ++d) dp += static_cast<double>(doi[d]) * vj[d];
                    ds[j] = p[j] * (dp - dsum);
                }
                for (int64_t j = 0; j < sk; ++j) {
                    if (p[j] == 0.0 && ds[j] == 0.0) continue;
                    const float* kj = kb + j * a.stride_k;
                    double* dkj     = &dk_acc[static_cast<size_t>(j) * a.hdim_q];
                    double* dvj     = &dv_acc[static_cast<size_t>(j) * a.hdim_v];
                    for (int d = 0; d < a.hdim_q; ++d) {
                        dq_row[d] += ds[j] * kj[d];
                        dkj[d] += ds[j] * qi[d];
                    }
                    for (int d = 0; d < a.hdim_v; ++d) dvj[d] += p[j] * doi[d];
                }
            }
            float* dqi = dqb + i * a.stride_q;
            for (int d = 0; d < a.hdim_q; ++d) dqi[d] = static_cast<float>(scale * dq_row[d]);
        }
    }
    for (int64_t j = 0; j < sk; ++j) {
        float* dkj = dkb + j * a.stride_k;
        float* dvj = dvb + j * a.stride_v;
        for (int d = 0; d < a.hdim_q; ++d) dkj[d] = static_cast<float>(scale * dk_acc[static_cast<size_t>(j) * a.hdim_q + d]);
        for (int d = 0; d < a.hdim_v; ++d) dvj[d] = static_cast<float>(dv_acc[static_cast<size_t>(j) * a.hdim_v + d]);
    }
}

}  // namespace detail

// Runs the reference: dq/dk/dv (fp32) receive the gradients at the strides of q/k/v in `a`.
// num_threads <= 0: std::thread::hardware_concurrency(). Throws std::invalid_argument on
// inconsistent arguments.
inline void mha_bwd_ref(const FwdRefArgs& a, const float* q, const float* k, const float* v, const float* o,
                        const float* dout, float* dq, float* dk, float* dv, int num_threads = 0) {
    if (a.batch < 0 || a.nhead_q <= 0 || a.nhead_k <= 0 || a.hdim_q <= 0 || a.hdim_v <= 0)
        throw std::invalid_argument("mha_bwd_ref: batch >= 0 and positive nhead/hdim expected");
    if (a.nhead_q % a.nhead_k != 0)
        throw std::invalid_argument("mha_bwd_ref: nhead_q (" + std::to_string(a.nhead_q) +
                                    ") must be a multiple of nhead_k (" + std::to_string(a.nhead_k) + ")");
    if (a.logits_soft_cap > 0.f) throw std::invalid_argument("mha_bwd_ref: logits_soft_cap is not modelled");
    if (a.is_group_mode && (!a.seqstart_q || !a.seqstart_k))
        throw std::invalid_argument("mha_bwd_ref: group mode needs seqstart_q and seqstart_k");
    for (int b = 0; b < a.batch; ++b) {
        const int64_t pq = a.is_group_mode ? a.seqstart_q[b + 1] - a.seqstart_q[b] : a.seqlen_q;
        const int64_t pk = a.is_group_mode ? a.seqstart_k[b + 1] - a.seqstart_k[b] : a.seqlen_k;
        if (pq < 0 || pk < 0)
            throw std::invalid_argument("mha_bwd_ref: negative physical length in batch " + std::to_string(b));
        if ((a.seqlen_q_log && (a.seqlen_q_log[b] < 0 || a.seqlen_q_log[b] > pq)) ||
            (a.seqlen_k_log && (a.seqlen_k_log[b] < 0 || a.seqlen_k_log[b] > pk)))
            throw std::invalid_argument("mha_bwd_ref: logical length outside [0, physical] in batch " +
                                        std::to_string(b));
    }
    const int64_t tasks = static_cast<int64_t>(a.batch) * a.nhead_k;
    if (num_threads <= 0) num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    num_threads = static_cast<int>(std::min<int64_t>(num_threads, std::max<int64_t>(tasks, 1)));
    std::atomic<int64_t> next{0};
    auto worker = [&] {
        for (int64_t t = next++; t < tasks; t = next++)
            detail::bwd_ref_one_kv_head(a, q, k, v, o, dout, dq, dk, dv, static_cast<int>(t / a.nhead_k),
                                        static_cast<int>(t % a.nhead_k));
    };
    if (num_threads == 1) { worker(); return; }
    std::vector<std::thread> pool;
    pool.reserve(num_threads);
    for (int t = 0; t < num_threads; ++t) pool.emplace_back(worker);
    for (auto& th : pool) th.join();
}

}  // namespace bench
