// Tile sizes and warp layouts of the v2 backward kernels: the ONE place they are chosen. Used
// by the kernel traits (device) and by the host (grid sizes, shared-memory checks).
#pragma once

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

// hdim is the padded bucket (32, 64, 128, 256). 64 x 128 tiles with 8 warps keep every warp's
// GEMM tile at least 32 x 32 (ldmatrix traffic per mma.sync low enough to feed the tensor
// cores); d256 halves the key block so that dK, dV (128 fp32 accumulators per thread) and two
// Q/dO stages (208 KiB of shared memory, Hopper only) fit.
// Tuning: -DAITER_BWD_V2_TILE_D<h>_{M,N} override block_m / block_n of one bucket.
constexpr BwdV2Tile bwd_v2_tile(int hdim) {
#if defined(AITER_BWD_V2_TILE_D64_M) && defined(AITER_BWD_V2_TILE_D64_N)
    if (hdim == 64) return BwdV2Tile{AITER_BWD_V2_TILE_D64_M, AITER_BWD_V2_TILE_D64_N, 8, 2, 4, 4, 2};
#endif
#if defined(AITER_BWD_V2_TILE_D128_M) && defined(AITER_BWD_V2_TILE_D128_N)
    if (hdim == 128) return BwdV2Tile{AITER_BWD_V2_TILE_D128_M, AITER_BWD_V2_TILE_D128_N, 8, 2, 4, 4, 2};
#endif
    return hdim <= 128 ? BwdV2Tile{64, 128, 8, 2, 4, 4, 2} : BwdV2Tile{64, 64, 8, 4, 4, 4, 2};
}

}  // namespace aiter::bwd
