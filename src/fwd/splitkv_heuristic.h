// num_splits = 0: how many splits a split-KV call runs, chosen to fill the GPU.
//
// Work units = batch x nhead_k x m_blocks (CTAs without splitting); slots = SMs x CTAs per SM
// (from the kernel's shared memory). Splitting multiplies the units; each split must keep at
// least kMinTilesPerSplit key tiles. Among n = 1 .. min(128, key_tiles / kMinTilesPerSplit),
// the wave efficiency  eff(n) = units·n / (⌈units·n / slots⌉ · slots)  is computed and the
// smallest n reaching 95% of the best eff is taken (fewer splits = less combine traffic).
// One full wave of units already (units >= slots) gives 1.
// Host only, pure: tests/cpp/splitkv_heuristic.cpp checks its answers without a GPU.
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

int splitkv_heuristic(const SplitkvWork& w);

}  // namespace aiter::fwd
