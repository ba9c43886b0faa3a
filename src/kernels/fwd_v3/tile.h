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
    // (kernel.cuh, opaque_desc): fewer registers live, a few more instructions per GEMM.
    bool opaque_descs = false;
    // Masked kernels: persistent CTAs drawing tiles from a counter even where O has no buffer
    // of its own (traits.cuh, kDynamicTiles; with one they always do).
    bool dynamic_tiles = false;
};

// Tuning knob for benchmarks only: -DAITER_FWD_V3_TUNE_HDIM=<hdim_q> with
// -DAITER_FWD_V3_TUNE_{M,N,S}=<int> overrides the default tile of one bucket (not its
// short-sequence tile). Never set in a normal build.
// -DAITER_FWD_V3_TUNE_O=0 turns the intra-warpgroup overlap off, -DAITER_FWD_V3_TUNE_P=1 the
// ping-pong on, -DAITER_FWD_V3_TUNE_D=1 the opaque descriptors on, for that bucket (unset: the
// overlap on, the other two off, whatever the bucket's default).
#ifndef AITER_FWD_V3_TUNE_HDIM
#define AITER_FWD_V3_TUNE_HDIM 0
#endif
#ifndef AITER_FWD_V3_TUNE_O
#define AITER_FWD_V3_TUNE_O 1
#endif
#ifndef AITER_FWD_V3_TUNE_P
#define AITER_FWD_V3_TUNE_P 0
#endif
#ifndef AITER_FWD_V3_TUNE_D
#define AITER_FWD_V3_TUNE_D 0
#endif

// (hdim_q, hdim_v) is one of the v3 buckets: (64,64), (128,128), (192,128), (256,256).
// short_seq: the bucket's variant for short query sequences, where it has one
// (fwd_v3_has_short): d64 128 x 128 tiles; (192,128) and d256 masked, dynamic tiles. The
// variants have no logits soft-cap (traits.cuh, kSoftcap).
constexpr FwdV3Tile fwd_v3_tile(int hdim_q, int hdim_v, bool short_seq = false) {
#if AITER_FWD_V3_TUNE_HDIM
    if (hdim_q == AITER_FWD_V3_TUNE_HDIM && !short_seq)
        return FwdV3Tile{AITER_FWD_V3_TUNE_M, AITER_FWD_V3_TUNE_N, AITER_FWD_V3_TUNE_S,
                         AITER_FWD_V3_TUNE_O != 0, AITER_FWD_V3_TUNE_P != 0, AITER_FWD_V3_TUNE_D != 0};
#endif
    (void)hdim_v;
    // d64 short sequences: 192 rows leave up to 191 padded rows per sequence (12.5 % more rows
    // at s = 1024); 128 x 128 (2 consumer warpgroups, 240 registers) is 2-17 % slower where
    // both tiles divide s, +6 % at s = 1024 and up to +17 % at 512-640 (v3 log step 21).
    if (short_seq && hdim_q <= 64) return FwdV3Tile{128, 128, 2};
    // Measured on an H100 (docs/PERF.md, v3 optimization log). d64: 3 consumer warpgroups at
    // 160 registers; N = 128 and 112 spill there. (192,128): 48 + 2·(48 + 32) KiB; N = 112 ran
    // 36% slower than 128. d128 and (192,128) without the overlap (ping-pong instead): up to
    // 14 % slower (6-11 % at s = 16k). d256: 64 + 64 + 64 KiB, one K/V stage, 128 keys per
    // step (at 64 the S GEMM's two shared-memory operands alone take the whole shared-memory
    // bandwidth); S (64 registers), P (32) and O (128) do not fit at once, so no
    // intra-warpgroup overlap but ping-pong: +6 % at s >= 4k over 128 x 64 with the overlap,
    // 2 stages. Without ping-pong it ran 11-15 % slower.
    // Short sequences, (192,128) and d256 masked: persistent with dynamic tiles, +6-18 % at
    // s = 512-1024 over one CTA per tile, -4-10 % at s >= 4k (v3 log step 22).
    return hdim_q <= 64    ? FwdV3Tile{192, 96, 2}
           : hdim_q <= 128 ? FwdV3Tile{128, 128, 2}
           : hdim_q <= 192 ? FwdV3Tile{128, 128, 2, true, false, false, /*dynamic_tiles=*/short_seq}
                           : FwdV3Tile{128, 128, 1, /*overlap=*/false, /*pingpong=*/true, /*opaque_descs=*/true,
                                       /*dynamic_tiles=*/short_seq};
}

// Whether the bucket has a short-sequence variant for this mask kind (the instances of
// codegen/instances.py, FWD_V3_SHORT, follow it).
constexpr bool fwd_v3_has_short(int hdim_q, int hdim_v, bool masked) {
    (void)hdim_v;
    return hdim_q <= 64 || (masked && hdim_q > 128);
}

// Whether a call whose longest query sequence has max_seqlen_q rows (and whose key sequences
// have seqlen_k keys; 0: as many as the queries) runs faster with the bucket's short-sequence
// variant. d64 masked: when the default 192-row tile computes more than 6 % more rows
// (padding the sequence to whole row blocks) than 128-row tiles; fitted to the sweep of the v3
// log, step 21 (H100, bf16, s = 384 ... 4096). d64 unmasked: when the default 192 × 96 tile
// computes more than 5 % more scores (rows times keys, each padded to whole blocks) than the
// short 128 × 128 tile; fitted to step 37 (H100 and H200, bf16, s = 768 ... 8192, since the
// short variant stores O from registers): where the two compute the same the short tile ran
// 2-6 % slower, at 2048 (6.4 % more) 2.3-2.7 % faster, at 1280 (10 %) 8 % faster, at 2000
// (1.5 %) 3 % slower and at 4096 (3.9 %) even. (192,128) and d256 masked: up to s = 2048
// (step 22: +7 % and +1 % there, -3...-4 % at 4096).
// Benchmark knob: -DAITER_FWD_V3_TUNE_SHORT=1 prefers the short-sequence variant at every
// length wherever one exists, =-1 never. Never set in a normal build.
#ifndef AITER_FWD_V3_TUNE_SHORT
#define AITER_FWD_V3_TUNE_SHORT 0
#endif
constexpr bool fwd_v3_prefer_short(int hdim_q, int hdim_v, bool masked, int max_seqlen_q, int seqlen_k = 0) {
    if (!fwd_v3_has_short(hdim_q, hdim_v, masked) || max_seqlen_q <= 0) return false;
    if (AITER_FWD_V3_TUNE_SHORT) return AITER_FWD_V3_TUNE_SHORT > 0;
    if (hdim_q > 64) return max_seqlen_q <= 2048;
    const FwdV3Tile def = fwd_v3_tile(hdim_q, hdim_v), sht = fwd_v3_tile(hdim_q, hdim_v, true);
    auto up = [](int n, int block) { return double((int64_t(n) + block - 1) / block * block); };
    if (masked) return up(max_seqlen_q, def.block_m) * 100 > up(max_seqlen_q, sht.block_m) * 106;
    const int keys = seqlen_k > 0 ? seqlen_k : max_seqlen_q;
    return up(max_seqlen_q, def.block_m) * up(keys, def.block_n) * 100 >
           up(max_seqlen_q, sht.block_m) * up(keys, sht.block_n) * 105;
}
#if !AITER_FWD_V3_TUNE_HDIM && !AITER_FWD_V3_TUNE_SHORT
static_assert(fwd_v3_prefer_short(64, 64, false, 512) && fwd_v3_prefer_short(64, 64, true, 640) &&
                  fwd_v3_prefer_short(64, 64, false, 896) && fwd_v3_prefer_short(64, 64, true, 1024) &&
                  !fwd_v3_prefer_short(64, 64, false, 384) && !fwd_v3_prefer_short(64, 64, true, 768) &&
                  !fwd_v3_prefer_short(64, 64, false, 1152) && !fwd_v3_prefer_short(64, 64, true, 1280) &&
                  !fwd_v3_prefer_short(64, 64, true, 2048) && !fwd_v3_prefer_short(128, 128, true, 1024),
              "the measured d64 choices of the v3 log, step 21");
static_assert(fwd_v3_prefer_short(64, 64, false, 2048) && fwd_v3_prefer_short(64, 64, false, 1280) &&
                  fwd_v3_prefer_short(64, 64, false, 1664) && !fwd_v3_prefer_short(64, 64, false, 2000) &&
                  !fwd_v3_prefer_short(64, 64, false, 4096) && !fwd_v3_prefer_short(64, 64, false, 1536) &&
                  !fwd_v3_prefer_short(64, 64, false, 3072) && !fwd_v3_prefer_short(64, 64, false, 8192) &&
                  !fwd_v3_prefer_short(64, 64, false, 768),
              "the measured d64 unmasked choices of the v3 log, step 37");
static_assert(fwd_v3_prefer_short(192, 128, true, 2048) && !fwd_v3_prefer_short(192, 128, true, 4096) &&
                  !fwd_v3_prefer_short(192, 128, false, 1024) && fwd_v3_prefer_short(256, 256, true, 512) &&
                  !fwd_v3_prefer_short(256, 256, true, 4096) && !fwd_v3_prefer_short(256, 256, false, 512),
              "the measured (192,128) and d256 choices of the v3 log, step 22");
#endif

}  // namespace aiter::fwd
