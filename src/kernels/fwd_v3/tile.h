// Tile sizes and main-loop shape of the v3 (Hopper-native) forward kernels: the ONE place they
// are chosen. Used by the kernel traits (device) and by the host (grid size, shared-memory
// checks).
//
// A CTA owns block_m query rows: block_m / 64 consumer warpgroups, each running wgmma on its
// own 64 rows, plus one producer warpgroup that issues the TMA loads. K and V stream through
// `stages` shared-memory buffers each. Shared memory = Q + stages · (K + V) tiles (where O is
// staged rather than stored from registers: plus its own buffer, or it reuses Q; traits.cuh).
#pragma once

#include <cstdint>

#include "kernels/tuning.h"

namespace aiter::fwd {

struct FwdV3Tile {
    int block_m;  // query rows per CTA (a multiple of 64: one consumer warpgroup per 64 rows)
    int block_n;  // keys per main-loop step (a multiple of 16)
    int stages;   // K/V shared-memory buffers
    // Intra-warpgroup overlap: S_n = Q·K_nᵀ is issued together with the P·V of the block
    // before, so that the softmax of S_n runs under that P·V. Needs S, P and O in registers at
    // once while the softmax runs. Without it, S, softmax and P·V run in turn (P's registers
    // are free during S and the softmax), and the warpgroups must take turns (ping-pong) for
    // one warpgroup's softmax to run under another's GEMMs.
    bool overlap = true;
    bool pingpong = false;  // consumer warpgroups take turns issuing S = Q·Kᵀ (named barriers)
    // wgmma shared-memory descriptors derived at each GEMM instead of hoisted out of the loop
    // (kernels/common/gemm_sm90.cuh, opaque_desc): fewer registers live, a few more instructions per GEMM.
    bool opaque_descs = false;
    // Masked kernels: persistent CTAs drawing tiles from a counter even where O has no buffer
    // of its own (traits.cuh, kDynamicTiles; with one they always do).
    bool dynamic_tiles = false;
};

// (hdim_q, hdim_v) is one of the v3 buckets: (64,64), (128,128), (192,128), (256,256).
// short_seq: the bucket's variant for short query sequences, where the instance table has one
// (codegen/instances.py, FWD_V3_SHORT): d64 128 x 128 tiles; (192,128) and d256 masked, dynamic
// tiles. The variants have no logits soft-cap (traits.cuh, kSoftcap).
constexpr FwdV3Tile fwd_v3_tile(int hdim_q, int hdim_v, bool short_seq = false) {
    if (tuning::kFwdV3Hdim != 0 && hdim_q == tuning::kFwdV3Hdim && !short_seq)  // kernels/tuning.h
        return FwdV3Tile{tuning::kFwdV3M, tuning::kFwdV3N, tuning::kFwdV3S, tuning::kFwdV3Overlap,
                         tuning::kFwdV3TilePingPong, tuning::kFwdV3OpaqueDescs};
    (void)hdim_v;
    // d64 short sequences: 128 x 128 (2 consumer warpgroups at 240 registers) pads fewer rows
    // than 192 x 96. d64: 3 consumer warpgroups at 160 registers (N = 128 spills there).
    // d128 and (192,128): 2 K/V stages with the intra-warpgroup overlap. d256: one stage of
    // 128 keys; S, P and O do not fit in registers at once, so no overlap but ping-pong, and
    // opaque descriptors. Short sequences of (192,128) and d256 masked: dynamic tiles.
    // Each choice was measured (docs/PERF.md, v3 optimization log, steps 17-22).
    if (short_seq && hdim_q <= 64) return FwdV3Tile{128, 128, 2};
    return hdim_q <= 64    ? FwdV3Tile{192, 96, 2}
           : hdim_q <= 128 ? FwdV3Tile{128, 128, 2}
           : hdim_q <= 192 ? FwdV3Tile{128, 128, 2, true, false, false, /*dynamic_tiles=*/short_seq}
                           : FwdV3Tile{128, 128, 1, /*overlap=*/false, /*pingpong=*/true, /*opaque_descs=*/true,
                                       /*dynamic_tiles=*/short_seq};
}

// Whether a call whose longest query sequence has max_seqlen_q rows (and whose key sequences
// have seqlen_k keys; 0: as many as the queries) runs faster with the bucket's short-sequence
// variant. d64 masked: when the default 192-row tile computes more than 6 % more rows (padding
// to whole row blocks) than 128-row tiles. d64 unmasked: when the default 192 × 96 tile
// computes more than 5 % more scores (rows times keys, each padded to whole blocks) than the
// 128 × 128 tile. (192,128) and d256 masked: up to s = 2048. Fitted to the sweeps of
// docs/PERF.md (v3 log steps 21, 22, 37); the static_asserts below pin the measured choices.
// Which buckets have the variant is the instance table's fact (codegen/instances.py,
// FWD_V3_SHORT): the host takes it where it is compiled (mha_fwd.cpp, select_v3). Tuning
// builds may prefer it always or never (kernels/tuning.h).
constexpr bool fwd_v3_prefer_short(int hdim_q, int hdim_v, bool masked, int max_seqlen_q, int seqlen_k = 0) {
    if (max_seqlen_q <= 0) return false;
    if (tuning::kFwdV3Short != 0) return tuning::kFwdV3Short > 0;
    if (hdim_q > 64) return max_seqlen_q <= 2048;
    const FwdV3Tile def = fwd_v3_tile(hdim_q, hdim_v), sht = fwd_v3_tile(hdim_q, hdim_v, true);
    auto up = [](int n, int block) { return double((int64_t(n) + block - 1) / block * block); };
    if (masked) return up(max_seqlen_q, def.block_m) * 100 > up(max_seqlen_q, sht.block_m) * 106;
    const int keys = seqlen_k > 0 ? seqlen_k : max_seqlen_q;
    return up(max_seqlen_q, def.block_m) * up(keys, def.block_n) * 100 >
           up(max_seqlen_q, sht.block_m) * up(keys, sht.block_n) * 105;
}
static_assert(tuning::kAny ||
                  (fwd_v3_prefer_short(64, 64, false, 512) && fwd_v3_prefer_short(64, 64, true, 640) &&
                   fwd_v3_prefer_short(64, 64, false, 896) && fwd_v3_prefer_short(64, 64, true, 1024) &&
                   !fwd_v3_prefer_short(64, 64, false, 384) && !fwd_v3_prefer_short(64, 64, true, 768) &&
                   !fwd_v3_prefer_short(64, 64, false, 1152) && !fwd_v3_prefer_short(64, 64, true, 1280) &&
                   !fwd_v3_prefer_short(64, 64, true, 2048)),
              "the measured d64 choices of the v3 log, step 21");
static_assert(tuning::kAny ||
                  (fwd_v3_prefer_short(64, 64, false, 2048) && fwd_v3_prefer_short(64, 64, false, 1280) &&
                   fwd_v3_prefer_short(64, 64, false, 1664) && !fwd_v3_prefer_short(64, 64, false, 2000) &&
                   !fwd_v3_prefer_short(64, 64, false, 4096) && !fwd_v3_prefer_short(64, 64, false, 1536) &&
                   !fwd_v3_prefer_short(64, 64, false, 3072) && !fwd_v3_prefer_short(64, 64, false, 8192) &&
                   !fwd_v3_prefer_short(64, 64, false, 768)),
              "the measured d64 unmasked choices of the v3 log, step 37");
static_assert(tuning::kAny ||
                  (fwd_v3_prefer_short(192, 128, true, 2048) && !fwd_v3_prefer_short(192, 128, true, 4096) &&
                   fwd_v3_prefer_short(256, 256, true, 512) && !fwd_v3_prefer_short(256, 256, true, 4096)),
              "the measured (192,128) and d256 masked choices of the v3 log, step 22");

}  // namespace aiter::fwd
