// Tile sizes of the v2 forward kernels: the ONE place they are chosen. Used by the kernel
// traits (device) and by the host (grid size, shared-memory checks).
#pragma once

namespace aiter::fwd {

struct FwdV2Tile {
    int block_m;  // query rows per CTA
    int block_n;  // keys per main-loop step
    int warps;    // each warp owns block_m / warps rows
};

// Tuning knob for benchmarks only: -DAITER_FWD_V2_TILE_D<hdim>_{M,N,W}=<int> overrides one
// field of one bucket (e.g. -DAITER_FWD_V2_TILE_D128_N=32). Never set in a normal build.
#ifndef AITER_FWD_V2_TILE_D32_M
#define AITER_FWD_V2_TILE_D32_M 128
#endif
#ifndef AITER_FWD_V2_TILE_D32_N
#define AITER_FWD_V2_TILE_D32_N 128
#endif
#ifndef AITER_FWD_V2_TILE_D32_W
#define AITER_FWD_V2_TILE_D32_W 4
#endif
#ifndef AITER_FWD_V2_TILE_D64_M
#define AITER_FWD_V2_TILE_D64_M 128
#endif
#ifndef AITER_FWD_V2_TILE_D64_N
#define AITER_FWD_V2_TILE_D64_N 64
#endif
#ifndef AITER_FWD_V2_TILE_D64_W
#define AITER_FWD_V2_TILE_D64_W 4
#endif
#ifndef AITER_FWD_V2_TILE_D128_M
#define AITER_FWD_V2_TILE_D128_M 128
#endif
#ifndef AITER_FWD_V2_TILE_D128_N
#define AITER_FWD_V2_TILE_D128_N 64
#endif
#ifndef AITER_FWD_V2_TILE_D128_W
#define AITER_FWD_V2_TILE_D128_W 4
#endif
#ifndef AITER_FWD_V2_TILE_D256_M
#define AITER_FWD_V2_TILE_D256_M 128
#endif
#ifndef AITER_FWD_V2_TILE_D256_N
#define AITER_FWD_V2_TILE_D256_N 64
#endif
#ifndef AITER_FWD_V2_TILE_D256_W
#define AITER_FWD_V2_TILE_D256_W 8
#endif

// hdim is the padded bucket (32, 64, 128, 256). Chosen by benchmark/tune_tiles.sh on an H200
// (docs/PERF.md, "v2 tile sweep").
constexpr FwdV2Tile fwd_v2_tile(int hdim) {
    return hdim <= 32    ? FwdV2Tile{AITER_FWD_V2_TILE_D32_M, AITER_FWD_V2_TILE_D32_N, AITER_FWD_V2_TILE_D32_W}
           : hdim <= 64  ? FwdV2Tile{AITER_FWD_V2_TILE_D64_M, AITER_FWD_V2_TILE_D64_N, AITER_FWD_V2_TILE_D64_W}
           : hdim <= 128 ? FwdV2Tile{AITER_FWD_V2_TILE_D128_M, AITER_FWD_V2_TILE_D128_N, AITER_FWD_V2_TILE_D128_W}
                         : FwdV2Tile{AITER_FWD_V2_TILE_D256_M, AITER_FWD_V2_TILE_D256_N, AITER_FWD_V2_TILE_D256_W};
}

}  // namespace aiter::fwd
