// The per-block math shared by both backward kernels, for the query rows [m0, m0+M) and the
// keys [n0, n0+N) of one (batch, q head), operands in shared memory:
//   S  = Q·Kᵀ                     (M × N, fp32)          masked entries −inf (mask_apply.cuh)
//   P  = exp2(S·scale·log2e − LSE·log2e)                 0 where masked or the row saw no key
//   dP = dO·Vᵀ                    (M × N, fp32)
//   dS = P ∘ (dP − D)             D = rowsum(dO∘O) of the row
// and the shared-memory GEMM steps built on one of the TiledMMAs of the traits:
//   acc += A·Bᵀ with A, B given as (rows, K) views (plain or transposed) of shared tiles.
#pragma once

#include <cute/tensor.hpp>

#include "common/mask.h"
#include "kernels/bwd_v2/traits.cuh"
#include "kernels/common/fragment.cuh"
#include "kernels/common/gemm_sm80.cuh"
#include "kernels/common/mask_apply.cuh"
#include "kernels/common/softmax.cuh"

namespace aiter::bwd {

// acc += A·Bᵀ where sA is (rows, K) and sB is (cols, K), each loaded with the given copy atom
// (ldmatrix plain for K-contiguous views, transposed for the Xᵀ views). sA_frag / sB_frag are
// tensors (e.g. non-swizzled views) that only shape the register fragments.
template <class Mma, class CopyAtomA, class CopyAtomB, class Acc, class SA, class SB, class FA, class FB>
__device__ __forceinline__ void gemm_ss(Acc& acc, SA const& sA, SB const& sB, FA const& sA_frag, FB const& sB_frag,
                                        int tidx) {
    using namespace cute;
    Mma mma;
    auto thr_mma = mma.get_thread_slice(tidx);
    Tensor rA = thr_mma.partition_fragment_A(sA_frag);
    Tensor rB = thr_mma.partition_fragment_B(sB_frag);
    auto copy_a = make_tiled_copy_A(CopyAtomA{}, mma);
    auto thr_a  = copy_a.get_thread_slice(tidx);
    auto copy_b = make_tiled_copy_B(CopyAtomB{}, mma);
    auto thr_b  = copy_b.get_thread_slice(tidx);
    Tensor tsA = thr_a.partition_S(sA);
    Tensor tsB = thr_b.partition_S(sB);
    gemm_smem_smem(acc, rA, rB, tsA, tsB, mma, copy_a, copy_b, thr_a, thr_b);
}

// Register accumulator (C layout of the TiledMMA Mma) -> shared tile, converted to Element.
template <class T, class Mma, class Acc, class S>
__device__ __forceinline__ void store_acc_to_smem(Acc const& acc, S& s, int tidx) {
    using namespace cute;
    Mma mma;
    Tensor r = make_tensor_like<typename T::Element>(acc);
    convert_fragment(r, acc);
    auto copy_c = make_tiled_copy_C(typename T::SmemCopyAtomC{}, mma);
    auto thr_c  = copy_c.get_thread_slice(tidx);
    Tensor src = thr_c.retile_S(r);
    Tensor dst = thr_c.partition_D(s);
    copy(copy_c, src, dst);
}

// Fills acc_p with P and acc_ds with dS for the block (m0, n0) (C layout of T::MmaSdP). s_lse2 / s_d: per tile row,
// LSE·log2e (+inf for rows that must get P = 0) and D.
template <class T, class Acc, class SQ, class SK, class SdO, class SV>
__device__ __forceinline__ void compute_p_ds(Acc& acc_p, Acc& acc_ds, SQ const& sQ, SK const& sK, SdO const& sdO,
                                             SV const& sV, const float* s_lse2, const float* s_d,
                                             const MaskSpec& mask, int m0, int n0, int sq, int sk,
                                             float scale_log2, int tidx) {
    using namespace cute;
    using Plain = typename T::SmemCopyAtom;
    using Mma   = typename T::MmaSdP;
    clear(acc_p);
    gemm_ss<Mma, Plain, Plain>(acc_p, sQ, sK, sQ, sK, tidx);     // S = Q·Kᵀ
    clear(acc_ds);
    gemm_ss<Mma, Plain, Plain>(acc_ds, sdO, sV, sdO, sV, tidx);  // dP = dO·Vᵀ

    Mma mma;
    auto thr_mma = mma.get_thread_slice(tidx);
    Tensor cS    = thr_mma.partition_C(make_identity_tensor(Shape<Int<T::kBlockM>, Int<T::kBlockN>>{}));
    Tensor cS_rc = make_tensor(cS.data(), acc_rowcol(cS.layout()));
    Tensor s     = make_tensor(acc_p.data(), acc_rowcol(acc_p.layout()));   // (rows, cols)
    Tensor dp    = make_tensor(acc_ds.data(), acc_rowcol(acc_ds.layout()));
    const int m_last = min(m0 + T::kBlockM, sq) - 1;
    if (block_needs_mask<T::kMasked>(mask, m0, m_last, n0, T::kBlockN, sq, sk))
        apply_mask<T::kMasked>(s, cS_rc, mask, m0, n0, sq, sk);
    CUTE_UNROLL
    for (int r = 0; r < size<0>(s); ++r) {
        const int row    = get<0>(cS_rc(r, 0));
        const float lse2 = s_lse2[row];
        const float dsum = s_d[row];
        CUTE_UNROLL
        for (int c = 0; c < size<1>(s); ++c) {
            const float pv = fast_exp2(s(r, c) * scale_log2 - lse2);
            s(r, c)  = pv;
            dp(r, c) = pv * (dp(r, c) - dsum);
        }
    }
}

}  // namespace aiter::bwd
