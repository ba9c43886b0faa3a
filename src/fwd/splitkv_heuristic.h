// num_splits = 0: how many splits a split-KV call runs, chosen to fill the GPU.
//
// Work units = batch x nhead_k x m_blocks (CTAs without splitting); slots = SMs x CTAs per SM
// (from the kernel's shared memory). The kernel splits in whole key tiles: n splits give the
// longest split per = ⌈tiles / n⌉ tiles, and only n_eff = ⌈tiles / per⌉ of them get any (n = 31
// over 64 tiles is 22 splits of 3 tiles, slower than 32 splits of 2). Among n = 2 .. min(128,
// key_tiles / kMinTilesPerSplit) the heuristic minimizes the modelled time
//   waves(units · n_eff) · (per + kSplitOverheadTiles),   waves(c) = ⌈c / slots⌉,
// against no split (per = key_tiles), and returns n_eff: every split it launches has work. A
// larger count must beat the best smaller one by more than 3% (less combine traffic, and the
// model is rough). kSplitOverheadTiles is a CTA's fixed cost (prologue latency, merge and store)
// in key tiles; without it, many small splits in many waves look as fast as one wave, which the
// H100 sweep contradicts (b=8 s_k=32k: 4 splits 0.366 ms, 128 splits 0.408 ms). Batches that
// already fill the GPU still split when their last wave would be mostly empty (d128, b=64, h_k=8:
// 512 CTAs on 396 slots -> 3 splits, 2.57 -> 1.96 ms on an H200), but only into splits of at
// least kMinTilesPerSplitFull tiles (b=64 s_k=1k: 2 splits of 8 tiles took 0.088 ms on an H200,
// unsplit with the previous 3-stage tile 0.079). Work whose unsplit CTAs do not reach one per SM
// (units <= SMs: the decode shapes that need splitting to fill the GPU) is split onto at most
// kMaxSplitCtasPerSm CTAs per SM, even where shared memory holds more: two per SM read faster
// than a mix of two and three (H100 and H200, b=1..16 h_k=8 s_k=1k..128k, all 14 shapes 0-5%
// faster; b=1 s_k=128k 49 -> 32 splits: 0.184 -> 0.181 ms on an H100, 0.129 -> 0.128 on an H200).
// Host only, pure: tests/cpp/splitkv_checks.cpp checks its answers without a GPU.
#pragma once

#include <cstdint>

namespace aiter::fwd {

struct SplitkvWork {
    int64_t batch = 0, nhead_k = 0;
    int64_t m_blocks = 0;   // ⌈seqlen_q · nhead_q/nhead_k / block_m⌉
    int64_t key_tiles = 0;  // ⌈seqlen_k / block_n⌉
    int num_sms = 0;        // streaming multiprocessors of the device
    int ctas_per_sm = 1;    // resident CTAs per SM (shared-memory bound)
};

constexpr int kMaxSplits        = 128;
constexpr int kMinTilesPerSplit = 2;
constexpr int kSplitOverheadTiles = 2;
constexpr int kMinTilesPerSplitFull = 16;  // when units >= slots
constexpr int kMaxSplitCtasPerSm = 2;      // when units <= SMs

int splitkv_heuristic(const SplitkvWork& w);

// Whether to run `splits` splits of w (measured with the bucket's default tile) on the bucket's
// deep tile instead (kernels/fwd_splitkv/tile.h: fewer CTAs per SM, deeper pipeline): when the
// work is not split and its CTAs overfill one wave of the default tile. Such a batch cannot be
// split (its splits would be shorter than kMinTilesPerSplitFull tiles), and the default tile's
// last wave runs mostly empty: b=64 h_k=8 s_k=1k, 512 CTAs of 16 tiles, 2-stage tile on 396
// slots 0.113 ms (H100) / 0.090 ms (H200), 3-stage on 264 slots 0.099 / 0.079 ms.
bool splitkv_prefer_deep(const SplitkvWork& w, int splits);

}  // namespace aiter::fwd
