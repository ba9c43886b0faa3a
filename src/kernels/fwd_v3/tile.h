// Tile sizes of the v3 (Hopper-native) forward kernels: the ONE place they are chosen. Used by
// the kernel traits (device) and by the host (grid size, shared-memory checks).
//
// A CTA owns block_m query rows: block_m / 64 consumer warpgroups, each running wgmma on its
// own 64 rows, plus one producer warpgroup that issues the TMA loads. K and V stream through
// `stages` shared-memory buffers each. Shared memory = Q + stages · (K + V) tiles (O reuses Q).
#pragma once

namespace aiter::fwd {

struct FwdV3Tile {
    int block_m;  // query rows per CTA (a multiple of 64: one consumer warpgroup per 64 rows)
    int block_n;  // keys per main-loop step (a multiple of 16)
    int stages;   // K/V shared-memory buffers
};

// Tuning knob for benchmarks only: -DAITER_FWD_V3_TUNE_HDIM=<hdim_q> with
// -DAITER_FWD_V3_TUNE_{M,N,S}=<int> overrides the tile of one bucket. Never set in a normal build.
#ifndef AITER_FWD_V3_TUNE_HDIM
#define AITER_FWD_V3_TUNE_HDIM 0
#endif

// (hdim_q, hdim_v) is one of the v3 buckets: (64,64), (128,128), (192,128), (256,256).
constexpr FwdV3Tile fwd_v3_tile(int hdim_q, int hdim_v) {
#if AITER_FWD_V3_TUNE_HDIM
    if (hdim_q == AITER_FWD_V3_TUNE_HDIM) return FwdV3Tile{AITER_FWD_V3_TUNE_M, AITER_FWD_V3_TUNE_N, AITER_FWD_V3_TUNE_S};
#endif
    (void)hdim_v;
    // Measured on an H100 (docs/PERF.md, v3 optimization log). d64: 3 consumer warpgroups at
    // 160 registers; N = 128 and 112 spill there. (192,128): 48 + 2·(48 + 32) KiB; N = 112 ran
    // 36% slower than 128. d256: 64 + 2·(32 + 32) KiB; N = 80 spilled and ran 25% slower.
    return hdim_q <= 64    ? FwdV3Tile{192, 96, 2}
           : hdim_q <= 128 ? FwdV3Tile{128, 128, 2}
           : hdim_q <= 192 ? FwdV3Tile{128, 128, 2}
                           : FwdV3Tile{128, 64, 2};
}

}  // namespace aiter::fwd
