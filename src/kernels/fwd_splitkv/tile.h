// Tile sizes of the split-KV kernels: the ONE place they are chosen. Used by the kernel
// traits (device) and by the host (grid, num_splits heuristic, shared-memory checks).
//
// A CTA owns 16 packed query rows (q heads of one kv head x query rows) and 4 warps; each
// warp takes a quarter of every key tile (kWarpN = block_n / 4 keys), so the 16 rows see all
// keys with no MMA wasted on padding rows beyond the first 16. Stages = K+V tiles in flight.
#pragma once

namespace aiter::fwd {

struct SplitkvTile {
    int block_m;  // packed query rows per CTA (one MMA row tile)
    int block_n;  // keys per main-loop step (split among the warps)
    int warps;
    int stages;   // K/V tiles in shared memory (cp.async pipeline depth)
};

constexpr SplitkvTile splitkv_tile(int hdim) {
    return hdim <= 64    ? SplitkvTile{16, 128, 4, 3}
           : hdim <= 128 ? SplitkvTile{16, 64, 4, 3}
                         : SplitkvTile{16, 64, 4, 2};
}

// Bytes of dynamic shared memory: Q tile + stages x (K tile + V tile), 2-byte elements.
constexpr int splitkv_smem_bytes(int hdim) {
    const SplitkvTile t = splitkv_tile(hdim);
    return 2 * hdim * (t.block_m + t.stages * 2 * t.block_n);
}

}  // namespace aiter::fwd
