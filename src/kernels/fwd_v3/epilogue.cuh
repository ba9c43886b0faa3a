// Epilogue of the v3 forward kernel, per tile and consumer thread: O /= l and the LSE
// (OnlineSoftmax::finalize), the LSE rows to global memory, and O in the element type to
// global memory one of two ways (traits.cuh):
//   kDirectO  straight from the registers: 16-byte stores after a 4 × 4 transpose of 32-bit
//             words within each quad, or 8-byte stores after one exchange (kDirectOBytes)
//   staged    through shared memory (O's own buffer, or Q's, released to the producer after),
//             then 16-byte coalesced stores
// Rows past the sequence and columns past hdim_v are never written; a tile without visible keys
// writes O = 0 (and LSE = -inf).
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/arch/barrier.h>

#include "fwd/fwd_params.h"
#include "kernels/common/epilogue.cuh"
#include "kernels/common/fragment.cuh"
#include "kernels/common/softmax.cuh"
#include "kernels/common/tile_copy.cuh"
#include "kernels/fwd_v3/tile_scheduler.cuh"
#include "kernels/fwd_v3/traits.cuh"

namespace aiter::fwd {

// One thread per warpgroup tells the producer that this warpgroup no longer reads Q's buffer qb.
template <class T>
__device__ __forceinline__ void fwd_v3_release_q(typename T::SharedStorage& ss, int qb) {
    if (threadIdx.x % 128 == 0) ss.bar_q_free[qb].arrive();
}

template <class T>
struct FwdV3Epilogue {
    using Element = typename T::Element;
    static constexpr int kBlockM = T::kBlockM;
    static constexpr int kDV     = T::kHeadDimV;
    using SmemCopyO = decltype(cute::make_tiled_copy_C(
        cute::Copy_Atom<cute::AutoVectorizingCopyWithAssumedAlignment<32>, Element>{}, typename T::TiledMmaO{}));
    using GmemCopyO = typename T::GmemTiledCopyO;
    using SmemThrO  = decltype(std::declval<SmemCopyO&>().get_thread_slice(0));
    using GmemThrO  = decltype(std::declval<GmemCopyO&>().get_thread_slice(0));
    using TensorSO  = decltype(cute::make_tensor(cute::make_smem_ptr(static_cast<Element*>(nullptr)),
                                                 typename T::SmemLayoutO{}));
    using CoordsO   = decltype(std::declval<GmemThrO&>().partition_D(
        cute::make_identity_tensor(cute::Shape<cute::Int<kBlockM>, cute::Int<kDV>>{})));

    typename T::SharedStorage& ss;
    TensorSO sO;  // (M, dv) staging buffer: O's own, or Q's
    SmemCopyO smem_copy_O;
    SmemThrO smem_thr_O;
    GmemCopyO gmem_copy_O;
    GmemThrO gmem_thr_O;
    CoordsO tOcO_g;  // identity coordinates of this thread's staged-O chunks

    __device__ FwdV3Epilogue(typename T::SharedStorage& ss_, int ctid)
        : ss(ss_),
          sO(cute::make_tensor(cute::make_smem_ptr(staging(ss_)), typename T::SmemLayoutO{})),
          smem_copy_O(),
          smem_thr_O(smem_copy_O.get_thread_slice(ctid)),
          gmem_copy_O(),
          gmem_thr_O(gmem_copy_O.get_thread_slice(ctid)),
          tOcO_g(gmem_thr_O.partition_D(cute::make_identity_tensor(cute::Shape<cute::Int<kBlockM>, cute::Int<kDV>>{}))) {}

    static __device__ Element* staging(typename T::SharedStorage& s) {
        if constexpr (T::kSeparateO) return s.o.data();
        else return s.q.data();
    }

    // acc_o / acc_o_rc: the tile's O accumulator and its (rows, cols) view; tOcO_rc: its identity
    // coordinates (rows, cols); qb: the tile's Q buffer (released here when O is staged in it).
    template <int kRows, class TAcc, class TAccRC, class TCoordRC>
    __device__ __forceinline__ void store(const FwdParams& p, const FwdV3WorkTile& tl, OnlineSoftmax<kRows>& softmax,
                                          TAcc& acc_o, TAccRC& acc_o_rc, TCoordRC const& tOcO_rc, int qb) {
        using namespace cute;
        const BlockInfo& bi = tl.bi;
        auto release_q = [&](int b) { fwd_v3_release_q<T>(ss, b); };
        float lse[kRows];
        softmax.finalize(acc_o_rc, p.scale_log2, lse);
        if (p.lse != nullptr) store_lse(p.lse + bi.lse_offset, lse, tOcO_rc, tl.m0, bi.sq);
        if constexpr (T::kDirectO) {
            // Straight from registers (traits.cuh, kDirectO), 16- or 8-byte stores
            // (kDirectOBytes). Rows past the sequence and columns past hdim_v (a multiple of
            // 8) are not written. No visible key: O = 0.
            Tensor rO = make_tensor_like<Element>(acc_o);
            if (tl.any_keys()) convert_fragment(rO, acc_o);
            else clear(rO);
            Tensor rO_rc  = make_tensor(rO.data(), acc_o_rc.layout());
            Element* o_ptr = static_cast<Element*>(p.o) + bi.o_offset;
            // Column pairs as 32-bit words; thread q of a quad holds columns 8j + 2q, +1 of
            // each 8-column group j. Every lane takes part in the exchanges; the stores are
            // predicated (the four lanes of a quad share a row).
            auto word = [&](int r, int c) {
                return uint32_t(rO_rc(r, c).raw()) | (uint32_t(rO_rc(r, c + 1).raw()) << 16);
            };
            const bool b0 = threadIdx.x & 1, b1 = threadIdx.x & 2;  // the lane's bits in its quad
            const int q = threadIdx.x & 3;
            CUTE_UNROLL
            for (int r = 0; r < kRows; ++r) {
                const int row = tl.m0 + get<0>(tOcO_rc(r, 0));
                Element* o_row = o_ptr + int64_t(row) * p.o_row_stride;
                if constexpr (T::kDirectOBytes == 16) {
                    // 16-byte stores: per four 8-column groups, the quad's 4 × 4 words (thread
                    // q, group g) are transposed in two exchanges (lane bit 0, then bit 1),
                    // after which thread q holds the 8 contiguous columns of group g + q.
                    CUTE_UNROLL
                    for (int c = 0; c < size<1>(rO_rc); c += 8) {
                        uint32_t w[4] = {word(r, c), word(r, c + 2), word(r, c + 4), word(r, c + 6)};
                        CUTE_UNROLL
                        for (int k = 0; k < 2; ++k) {  // words whose index bit 0 differs from q's
                            const uint32_t got = __shfl_xor_sync(0xffffffffu, b0 ? w[2 * k] : w[2 * k + 1], 1);
                            if (b0) w[2 * k] = got;
                            else w[2 * k + 1] = got;
                        }
                        CUTE_UNROLL
                        for (int k = 0; k < 2; ++k) {  // then bit 1
                            const uint32_t got = __shfl_xor_sync(0xffffffffu, b1 ? w[k] : w[k + 2], 2);
                            if (b1) w[k] = got;
                            else w[k + 2] = got;
                        }
                        // This thread's first pair is at column 8·g + 2q; group g + q starts at 8·(g + q).
                        const int col = get<1>(tOcO_rc(r, c)) + 6 * q;
                        if (row < bi.sq && col < p.hdim_v)
                            *reinterpret_cast<uint4*>(o_row + col) = make_uint4(w[0], w[1], w[2], w[3]);
                    }
                } else {
                    // 8-byte stores: one exchange with the neighbour (q ^ 1) per two groups
                    // gives each thread 4 contiguous columns: even q stores group j's columns
                    // 2q..2q+3, odd q group j + 1's columns 2q-2..2q+1.
                    CUTE_UNROLL
                    for (int c = 0; c < size<1>(rO_rc); c += 4) {
                        const uint32_t w0 = word(r, c), w1 = word(r, c + 2);
                        const uint32_t got = __shfl_xor_sync(0xffffffffu, b0 ? w0 : w1, 1);
                        const int col = get<1>(tOcO_rc(r, b0 ? c + 2 : c)) - (b0 ? 2 : 0);
                        if (row < bi.sq && col < p.hdim_v)
                            *reinterpret_cast<uint2*>(o_row + col) = b0 ? make_uint2(got, w1) : make_uint2(w0, got);
                    }
                }
            }
        } else {
            Tensor mO = make_tensor(make_gmem_ptr(static_cast<Element*>(p.o) + bi.o_offset),
                                    make_shape(bi.sq, Int<kDV>{}), make_stride(p.o_row_stride, _1{}));
            Tensor gO   = local_tile(mO, Shape<Int<kBlockM>, Int<kDV>>{}, make_coord(tl.m_block, 0));
            Tensor tOgO = gmem_thr_O.partition_D(gO);
            Tensor tOrO = make_tensor<Element>(shape(tOgO));
            if (tl.any_keys()) {
                Tensor rO = make_tensor_like<Element>(acc_o);
                convert_fragment(rO, acc_o);
                // Own buffer: free since the last tile's final barrier. Q's buffer: wait until
                // every warpgroup is done reading Q.
                if constexpr (!T::kSeparateO) cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);
                copy(smem_copy_O, smem_thr_O.retile_S(rO), smem_thr_O.partition_D(sO));
                cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);
                copy(gmem_copy_O, gmem_thr_O.partition_S(sO), tOrO);
                cutlass::arch::NamedBarrier::sync(T::kNumMmaThreads, T::kBarEpilogue);  // O's staging buffer is free
                if constexpr (!T::kSeparateO) release_q(qb);               // the next Q may land
            } else {
                clear(tOrO);  // no visible key: O = 0 (and LSE = -inf above); Q's buffer untouched
            }
            store_tile<true>(gmem_copy_O, tOrO, tOgO, tOcO_g, bi.sq - tl.m0, p.hdim_v);
        }
    }
};

}  // namespace aiter::fwd
