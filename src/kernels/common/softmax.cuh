// Online softmax over key blocks, in the exp2 domain (FlashAttention-2 style):
//   m_new = max(m, rowmax(S));  P = exp2(S·c − m_new·c);  l = l·exp2((m − m_new)·c) + rowsum(P)
//   O     = O·exp2((m − m_new)·c)                                (c = scale_log2)
// and at the end O /= l, LSE = (m·c + log2 l)·ln 2. Rows with no visible key keep m = −inf,
// l = 0 and finish with O = 0, LSE = −inf (never NaN).
//
// s and o are (rows, cols) register views of accumulators (fragment.cuh): the four threads
// of a quad share a row, so row reductions finish with two shuffles.
#pragma once

#include <cute/tensor.hpp>

#include <cmath>

namespace aiter {

__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffff, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffff, v, 1);
    return v + __shfl_xor_sync(0xffffffff, v, 2);
}

template <int kRows>
struct OnlineSoftmax {
    float row_max[kRows];
    float row_sum[kRows];  // partial: this thread's columns only, until finalize()

    __device__ __forceinline__ OnlineSoftmax() {
        CUTE_UNROLL
        for (int r = 0; r < kRows; ++r) {
            row_max[r] = -INFINITY;
            row_sum[r] = 0.f;
        }
    }

    // s: (rows, cols) scores of this key block, replaced by unnormalized probabilities.
    // corr[r]: the factor the output rows must be multiplied by (new row maximum); split from
    // rescale() so that a caller can compute P while the previous P·V is still running.
    template <class TS>
    __device__ __forceinline__ void update_scores(TS& s, float scale_log2, float (&corr)[kRows]) {
        using namespace cute;
        static_assert(decltype(size<0>(s))::value == kRows);
        CUTE_UNROLL
        for (int r = 0; r < kRows; ++r) {
            float mx = row_max[r];
            CUTE_UNROLL
            for (int c = 0; c < size<1>(s); ++c) mx = fmaxf(mx, s(r, c));
            mx = quad_max(mx);
            corr[r] = row_max[r] == -INFINITY ? 0.f : fast_exp2((row_max[r] - mx) * scale_log2);
            row_max[r] = mx;
            const float base = mx == -INFINITY ? 0.f : mx * scale_log2;
            float sum = 0.f;
            CUTE_UNROLL
            for (int c = 0; c < size<1>(s); ++c) {
                const float p = fast_exp2(s(r, c) * scale_log2 - base);
                s(r, c) = p;
                sum += p;
            }
            row_sum[r] = row_sum[r] * corr[r] + sum;
        }
    }

    // o: (rows, dv) output accumulator, rescaled to the new row maximum.
    template <class TO>
    __device__ __forceinline__ void rescale(TO& o, const float (&corr)[kRows]) {
        using namespace cute;
        CUTE_UNROLL
        for (int r = 0; r < kRows; ++r) {
            CUTE_UNROLL
            for (int c = 0; c < size<1>(o); ++c) o(r, c) *= corr[r];
        }
    }

    template <class TS, class TO>
    __device__ __forceinline__ void update(TS& s, TO& o, float scale_log2) {
        float corr[kRows];
        update_scores(s, scale_log2, corr);
        rescale(o, corr);
    }

    // O /= l; lse[r] = natural-log LSE of row r (−inf for rows that saw no key).
    template <class TO>
    __device__ __forceinline__ void finalize(TO& o, float scale_log2, float (&lse)[kRows]) {
        using namespace cute;
        CUTE_UNROLL
        for (int r = 0; r < kRows; ++r) {
            const float l = quad_sum(row_sum[r]);
            const bool empty = !(l > 0.f);
            const float inv = empty ? 0.f : 1.f / l;
            lse[r] = empty ? -INFINITY : (row_max[r] * scale_log2 + __log2f(l)) * 0.69314718055994530942f;
            CUTE_UNROLL
            for (int c = 0; c < size<1>(o); ++c) o(r, c) *= inv;
        }
    }
};

}  // namespace aiter
