// Which tiles a v3 forward CTA computes, and in which order. A tile is rows [m0, m0 + kBlockM)
// of one (batch, q head); tiles are numbered in the order of kernels/common/tile_order.cuh
// (unmasked: the row blocks of one (batch, head) in turn; masked: heaviest first within L2
// sections, decoded with the host's precomputed divisions, TileDecoder). Two walks behind one
// interface:
//   FwdV3StaticScheduler   CTA i takes tiles i, i + gridDim.x, ... (a persistent grid), or only
//                          tile i (a grid of one CTA per tile)
//   FwdV3DynamicScheduler  persistent; after its first tile a CTA's producer draws the next
//                          index from a global counter and hands it to the consumers through a
//                          shared-memory ring, so that CTAs with light tiles take more of them
// Interface (producer: its one TMA thread; consumers: every consumer thread):
//   tile_at(t)               the work tile of index t
//   producer_begin()         before the producer's first tile
//   producer_next(t)         the index after t (>= num_tiles: none)
//   producer_end()           after its last tile
//   consumer_first()         the consumers' first index
//   consumer_next(t)         the index after t, as the producer walked it
// Producer and consumers walk the same sequence and skip the same empty tiles, so the barrier
// phases of the pipelines stay in step.
#pragma once

#include <cute/tensor.hpp>
#include <cutlass/pipeline/sm90_pipeline.hpp>

#include "fwd/fwd_params.h"
#include "kernels/common/block_info.cuh"
#include "kernels/common/block_range.cuh"
#include "kernels/common/tile_order.cuh"
#include "kernels/fwd_v3/traits.cuh"

namespace aiter::fwd {

// Rows [m0, m_last] of q head h (kv head hk) of batch b, where they live (bi), and the key
// blocks [n_begin, n_end) they may see.
struct FwdV3WorkTile {
    int m_block, h, hk, b, m0, m_last, n_begin, n_end;
    BlockInfo bi;
    __device__ bool empty() const { return m0 >= bi.sq; }  // no query row: nothing to do
    __device__ bool any_keys() const { return n_begin < n_end; }
};

// Index -> work tile, shared by both walks.
template <class T>
struct FwdV3TileOrder {
    const FwdV3KernelParams<T>& kp;
    const int m_blocks;
    const int64_t num_tiles;

    __device__ explicit FwdV3TileOrder(const FwdV3KernelParams<T>& kp_)
        : kp(kp_),
          m_blocks((kp_.p.max_seqlen_q + T::kBlockM - 1) / T::kBlockM),
          num_tiles(int64_t(m_blocks) * kp_.p.nhead_q * kp_.p.batch) {}

    __device__ __forceinline__ FwdV3WorkTile tile_at(int64_t t) const {
        const FwdParams& p = kp.p;
        FwdV3WorkTile tl;
        // Masked: the host's precomputed divisions (the host keeps masked grids below 2^31
        // tiles). Unmasked: 64-bit divisions, which measured faster there (docs/PERF.md, v3 log
        // step 27).
        if constexpr (T::kMasked) {
            kp.dec.decode(uint32_t(t), &tl.m_block, &tl.h, &tl.b);
            tl.hk = kp.dec.kv_head(tl.h);
        } else {
            tile_from_index<false>(t, m_blocks, p.nhead_q, p.batch, p.tile_section, &tl.m_block, &tl.h, &tl.b);
            tl.hk = tl.h / p.h_ratio;
        }
        tl.bi     = block_info(p, tl.b, tl.h, tl.hk);
        tl.m0     = tl.m_block * T::kBlockM;
        tl.m_last = min(tl.m0 + T::kBlockM, tl.bi.sq) - 1;
        tl.n_begin = tl.n_end = 0;
        if (!tl.empty())
            key_block_range<T::kMasked>(p.mask, tl.m0, tl.m_last, tl.bi.sq, tl.bi.sk, T::kBlockN, &tl.n_begin,
                                        &tl.n_end);
        return tl;
    }
};

template <class T>
struct FwdV3StaticScheduler : FwdV3TileOrder<T> {
    __device__ FwdV3StaticScheduler(const FwdV3KernelParams<T>& kp, typename T::SharedStorage&,
                                    typename T::PipelineTile&)
        : FwdV3TileOrder<T>(kp) {}

    __device__ __forceinline__ void producer_begin() {}
    __device__ __forceinline__ int64_t producer_next(int64_t t) { return t + gridDim.x; }
    __device__ __forceinline__ void producer_end() {}
    __device__ __forceinline__ int64_t consumer_first() { return blockIdx.x; }
    __device__ __forceinline__ int64_t consumer_next(int64_t t) { return t + gridDim.x; }
};

// The counter reads 0 at launch (launch.cuh) and is left at 0: every CTA draws until it gets an
// index past the tiles, so a launch makes exactly num_tiles draws, and the CTA that gets
// num_tiles - 1 (the last draw) resets it. Across tiles (T::kCrossTile) the consumers look for
// a tile's successor before its last P·V, so each index is published as soon as it is drawn,
// a tile ahead; otherwise each tile is published as the producer starts it.
template <class T>
struct FwdV3DynamicScheduler : FwdV3TileOrder<T> {
    using PipelineTile = typename T::PipelineTile;
    typename T::SharedStorage& ss;
    PipelineTile& pipe;
    cutlass::PipelineState<T::kTileSlots> st;  // the consumers' side: index 0, phase 0

    __device__ FwdV3DynamicScheduler(const FwdV3KernelParams<T>& kp, typename T::SharedStorage& ss_,
                                     PipelineTile& pipe_)
        : FwdV3TileOrder<T>(kp), ss(ss_), pipe(pipe_) {}

    __device__ __forceinline__ void publish(int64_t t) {
        pipe.producer_acquire(st);
        ss.tile_index[st.index()] = t;
        pipe.producer_commit(st);
        ++st;
    }
    __device__ __forceinline__ void producer_begin() {
        st = cutlass::make_producer_start_state<PipelineTile>();
        if constexpr (T::kCrossTile) publish(blockIdx.x);
    }
    __device__ __forceinline__ int64_t producer_next(int64_t t) {
        unsigned long long* counter = this->kp.tile_counter;
        const unsigned long long drawn = atomicAdd(counter, 1ull);
        if (drawn == static_cast<unsigned long long>(this->num_tiles - 1)) atomicExch(counter, 0ull);
        const int64_t next = gridDim.x + int64_t(drawn);
        publish(T::kCrossTile ? next : t);
        return next;
    }
    __device__ __forceinline__ void producer_end() {
        if constexpr (!T::kCrossTile) publish(this->num_tiles);  // no more tiles
    }
    __device__ __forceinline__ int64_t consumer_next(int64_t) {
        pipe.consumer_wait(st);
        const int64_t n = ss.tile_index[st.index()];
        pipe.consumer_release(st);
        ++st;
        return n;
    }
    __device__ __forceinline__ int64_t consumer_first() { return consumer_next(0); }
};

template <class T>
using FwdV3TileScheduler =
    std::conditional_t<T::kDynamicTiles, FwdV3DynamicScheduler<T>, FwdV3StaticScheduler<T>>;

}  // namespace aiter::fwd
