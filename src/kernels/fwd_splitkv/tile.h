// Tile sizes of the split-KV kernels: the ONE place they are chosen. Used by the kernel
// traits (device) and by the host (grid, num_splits heuristic, shared-memory checks).
//
// A CTA owns 16 packed query rows (q heads of one kv head x query rows) and 4 warps; each
// warp takes a quarter of every key tile (kWarpN = block_n / 4 keys), so the 16 rows see all
// keys with no MMA wasted on padding rows beyond the first 16. Stages = K+V tiles in flight.
#pragma once

#include "kernels/tuning.h"

// d128 uses 2 stages (69.6 KB: 3 CTAs per SM): the H200 reads faster with 12 warps per SM than
// with 3 stages and 8 (docs/perf/splitkv_tiles.log, docs/PERF.md). Its "deep" variant (3 stages,
// 102 KB: 2 CTAs per SM) runs batches that fill the GPU without splitting and cannot be split
// (short contexts): there 3 x 132 slots leave a mostly empty last wave (b=64 h_k=8: 512 CTAs on
// 396 slots) and 2 x 132 do not. The host picks it (splitkv_prefer_deep, splitkv_heuristic.h)
// where the instance table has it (codegen/instances.py, SPLITKV_DEEP_HDIMS).
namespace aiter::fwd {

struct SplitkvTile {
    int block_m;  // packed query rows per CTA (one MMA row tile)
    int block_n;  // keys per main-loop step (split among the warps)
    int warps;
    int stages;   // K/V tiles in shared memory (cp.async pipeline depth)
};

constexpr SplitkvTile splitkv_tile(int hdim, bool deep = false) {
    return hdim <= 64    ? SplitkvTile{16, 128, 4, 3}
           : hdim <= 128 ? (deep ? SplitkvTile{16, 64, 4, 3}
                                 : SplitkvTile{16, tuning::kSplitkvD128N ? tuning::kSplitkvD128N : 64,
                                               tuning::kSplitkvD128W ? tuning::kSplitkvD128W : 4,
                                               tuning::kSplitkvD128S ? tuning::kSplitkvD128S : 2})
                         : SplitkvTile{16, 64, 4, 2};
}

// Bytes of dynamic shared memory: Q tile + stages x (K tile + V tile), 2-byte elements.
constexpr int splitkv_smem_bytes(int hdim, bool deep = false) {
    const SplitkvTile t = splitkv_tile(hdim, deep);
    return 2 * hdim * (t.block_m + t.stages * 2 * t.block_n);
}

}  // namespace aiter::fwd
