// Tile sizes and warp layouts of the v2 backward kernels: the ONE place they are chosen. Used
// by the kernel traits (device) and by the host (grid sizes, shared-memory checks).
#pragma once

#include "kernels/tuning.h"

namespace aiter::bwd {

struct BwdV2Tile {
    int block_m;      // query rows per step (the dK/dV kernel loops over them)
    int block_n;      // keys per CTA of the dK/dV kernel (per step of the dQ kernel)
    int warps;
    int sdp_warps_m;  // S, dP (block_m x block_n): warps along the rows; the rest along the keys
    int dkv_warps_n;  // dK, dV (block_n x hdim):   warps along the keys; the rest along hdim
    int dq_warps_m;   // dQ (block_m x hdim):       warps along the rows; the rest along hdim
    int q_stages;     // shared-memory buffers for Q, dO (2: the next block loads during the math)
};

// hdim is the padded bucket (32, 64, 128, 256). 8 warps with tiles of 128 x 128 (d <= 64) or
// 64 x 128 (d128) keep every warp's GEMM tile at least 16 x 64 or 32 x 32 (ldmatrix traffic per
// mma.sync low enough to feed the tensor cores); d256 halves the key block so that dK, dV
// (128 fp32 accumulators per thread) and two Q/dO stages (208 KiB of shared memory, Hopper
// only) fit. Chosen by the H200 sweep in docs/PERF.md (benchmark/tune_tiles.sh, MODE=bwd);
// d <= 64 unmasked spreads S/dP over 4 warps along the rows (H100 sweep after the dQ-atomics
// rework: +2-3% unmasked, -2% masked, so the masked kernels keep 2).
// Tuning builds may replace one bucket's tile (kernels/tuning.h).
constexpr BwdV2Tile bwd_v2_tile(int hdim, bool masked) {
    if (tuning::kBwdV2Hdim != 0 && hdim == tuning::kBwdV2Hdim)
        return BwdV2Tile{tuning::kBwdV2M, tuning::kBwdV2N, 8, tuning::kBwdV2Sdp, tuning::kBwdV2Dkv, tuning::kBwdV2Dq, 2};
    return hdim <= 64    ? BwdV2Tile{128, 128, 8, masked ? 2 : 4, 4, 4, 2}
           : hdim <= 128 ? BwdV2Tile{64, 128, 8, 2, 4, 2, 2}
                         : BwdV2Tile{64, 64, 8, 4, 2, 2, 2};
}

}  // namespace aiter::bwd
