// Warp-level GEMM steps of the v2 kernel: shared memory -> registers with ldmatrix, one
// k-slice ahead of the mma.sync that consumes the previous one.
#pragma once

#include <cute/tensor.hpp>

namespace aiter {

// acc += A·Bᵀ with both operands in shared memory (S = Q·Kᵀ).
template <class Acc, class RA, class RB, class SA, class SB, class Mma, class CopyA, class CopyB,
          class ThrCopyA, class ThrCopyB>
__device__ __forceinline__ void gemm_smem_smem(Acc& acc, RA& rA, RB& rB, SA const& sA, SB const& sB,
                                               Mma const& mma, CopyA const& copy_a, CopyB const& copy_b,
                                               ThrCopyA const& thr_a, ThrCopyB const& thr_b) {
    using namespace cute;
    Tensor rA_view = thr_a.retile_D(rA);
    Tensor rB_view = thr_b.retile_D(rB);
    copy(copy_a, sA(_, _, _0{}), rA_view(_, _, _0{}));
    copy(copy_b, sB(_, _, _0{}), rB_view(_, _, _0{}));
    CUTE_UNROLL
    for (int k = 0; k < size<2>(rA); ++k) {
        if (k + 1 < size<2>(rA)) {
            copy(copy_a, sA(_, _, k + 1), rA_view(_, _, k + 1));
            copy(copy_b, sB(_, _, k + 1), rB_view(_, _, k + 1));
        }
        gemm(mma, rA(_, _, k), rB(_, _, k), acc);
    }
}

// acc += A·Bᵀ with A already in registers (O += P·V).
template <class Acc, class RA, class RB, class SB, class Mma, class CopyB, class ThrCopyB>
__device__ __forceinline__ void gemm_reg_smem(Acc& acc, RA const& rA, RB& rB, SB const& sB, Mma const& mma,
                                              CopyB const& copy_b, ThrCopyB const& thr_b) {
    using namespace cute;
    Tensor rB_view = thr_b.retile_D(rB);
    copy(copy_b, sB(_, _, _0{}), rB_view(_, _, _0{}));
    CUTE_UNROLL
    for (int k = 0; k < size<2>(rA); ++k) {
        if (k + 1 < size<2>(rA)) copy(copy_b, sB(_, _, k + 1), rB_view(_, _, k + 1));
        gemm(mma, rA(_, _, k), rB(_, _, k), acc);
    }
}

}  // namespace aiter
