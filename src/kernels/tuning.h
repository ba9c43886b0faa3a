// TUNING BUILDS ONLY. Every -D knob of the kernels is read here, once, and nowhere else; a
// normal build sets none of them, and every value below then means "no override": the tile
// functions and traits choose what docs/PERF.md measured. benchmark/tune_tiles.sh passes them
// through NVCC_APPEND_FLAGS to build the variants it times.
//
//   fwd_v2   -DAITER_FWD_V2_TUNE_HDIM=<bucket> -DAITER_FWD_V2_TUNE_{M,N,W}=<int>
//            block_m, block_n, warps of that bucket's tile (kernels/fwd_v2/tile.h)
//   fwd_v3   -DAITER_FWD_V3_TUNE_HDIM=<hdim_q> -DAITER_FWD_V3_TUNE_{M,N,S}=<int>
//            block_m, block_n, stages of that bucket's default tile (kernels/fwd_v3/tile.h), with
//            -DAITER_FWD_V3_TUNE_{O,P,D}=0|1: intra-warpgroup overlap (default 1), ping-pong
//            (0), opaque descriptors (0) of that tile
//            -DAITER_FWD_V3_TUNE_SHORT=1|-1: the short-sequence variant at every length / never
//            -DAITER_FWD_V3_PINGPONG=1: ping-pong in every kernel with 2+ consumer warpgroups
//            -DAITER_FWD_V3_TUNE_DYN=1|-1: dynamic tiles in every / no masked kernel
//            -DAITER_FWD_V3_TUNE_SPLIT=0|1: softmax under its own P·V in no / every kernel with the overlap
//            -DAITER_FWD_V3_TUNE_DIRECT_O=0|1: O stored from registers in no / every kernel
//            -DAITER_FWD_V3_TUNE_O_BYTES=8|16: the width of those stores in every kernel
//            -DAITER_FWD_V3_TUNE_XTILE=0|1: across tiles in no / every kernel where possible
//            (kernels/fwd_v3/traits.cuh)
//   splitkv  -DAITER_SPLITKV_TUNE_D128_{N,W,S}=<int>: block_n, warps, stages of the d128 tile
//            (kernels/fwd_splitkv/tile.h)
//   bwd_v2   -DAITER_BWD_V2_TUNE_HDIM=<bucket> -DAITER_BWD_V2_TUNE_{M,N,SDP,DKV,DQ}=<int>
//            block_m, block_n and the three warp layouts of that bucket (kernels/bwd_v2/tile.h)
#pragma once

namespace aiter::tuning {

// 0 everywhere: no override.
#ifdef AITER_FWD_V2_TUNE_HDIM
inline constexpr int kFwdV2Hdim = AITER_FWD_V2_TUNE_HDIM;
inline constexpr int kFwdV2M = AITER_FWD_V2_TUNE_M, kFwdV2N = AITER_FWD_V2_TUNE_N, kFwdV2W = AITER_FWD_V2_TUNE_W;
#else
inline constexpr int kFwdV2Hdim = 0, kFwdV2M = 0, kFwdV2N = 0, kFwdV2W = 0;
#endif

#ifdef AITER_FWD_V3_TUNE_HDIM
inline constexpr int kFwdV3Hdim = AITER_FWD_V3_TUNE_HDIM;
inline constexpr int kFwdV3M = AITER_FWD_V3_TUNE_M, kFwdV3N = AITER_FWD_V3_TUNE_N, kFwdV3S = AITER_FWD_V3_TUNE_S;
#else
inline constexpr int kFwdV3Hdim = 0, kFwdV3M = 0, kFwdV3N = 0, kFwdV3S = 0;
#endif
#ifdef AITER_FWD_V3_TUNE_O
inline constexpr bool kFwdV3Overlap = AITER_FWD_V3_TUNE_O != 0;
#else
inline constexpr bool kFwdV3Overlap = true;
#endif
#ifdef AITER_FWD_V3_TUNE_P
inline constexpr bool kFwdV3TilePingPong = AITER_FWD_V3_TUNE_P != 0;
#else
inline constexpr bool kFwdV3TilePingPong = false;
#endif
#ifdef AITER_FWD_V3_TUNE_D
inline constexpr bool kFwdV3OpaqueDescs = AITER_FWD_V3_TUNE_D != 0;
#else
inline constexpr bool kFwdV3OpaqueDescs = false;
#endif

// -1 / 0 / 1 where a knob can force a feature off, leave the rule (0, or -1 for the 0|1
// knobs) or force it on.
#ifdef AITER_FWD_V3_TUNE_SHORT
inline constexpr int kFwdV3Short = AITER_FWD_V3_TUNE_SHORT;
#else
inline constexpr int kFwdV3Short = 0;
#endif
#ifdef AITER_FWD_V3_PINGPONG
inline constexpr bool kFwdV3PingPongAll = AITER_FWD_V3_PINGPONG != 0;
#else
inline constexpr bool kFwdV3PingPongAll = false;
#endif
#ifdef AITER_FWD_V3_TUNE_DYN
inline constexpr int kFwdV3Dynamic = AITER_FWD_V3_TUNE_DYN;
#else
inline constexpr int kFwdV3Dynamic = 0;
#endif
#ifdef AITER_FWD_V3_TUNE_SPLIT
inline constexpr int kFwdV3Split = AITER_FWD_V3_TUNE_SPLIT;
#else
inline constexpr int kFwdV3Split = -1;
#endif
#ifdef AITER_FWD_V3_TUNE_DIRECT_O
inline constexpr int kFwdV3DirectO = AITER_FWD_V3_TUNE_DIRECT_O;
#else
inline constexpr int kFwdV3DirectO = -1;
#endif
#ifdef AITER_FWD_V3_TUNE_O_BYTES
inline constexpr int kFwdV3OBytes = AITER_FWD_V3_TUNE_O_BYTES;
#else
inline constexpr int kFwdV3OBytes = 0;
#endif
#ifdef AITER_FWD_V3_TUNE_XTILE
inline constexpr int kFwdV3CrossTile = AITER_FWD_V3_TUNE_XTILE;
#else
inline constexpr int kFwdV3CrossTile = -1;
#endif

#ifdef AITER_SPLITKV_TUNE_D128_N
inline constexpr int kSplitkvD128N = AITER_SPLITKV_TUNE_D128_N;
#else
inline constexpr int kSplitkvD128N = 0;
#endif
#ifdef AITER_SPLITKV_TUNE_D128_W
inline constexpr int kSplitkvD128W = AITER_SPLITKV_TUNE_D128_W;
#else
inline constexpr int kSplitkvD128W = 0;
#endif
#ifdef AITER_SPLITKV_TUNE_D128_S
inline constexpr int kSplitkvD128S = AITER_SPLITKV_TUNE_D128_S;
#else
inline constexpr int kSplitkvD128S = 0;
#endif

#ifdef AITER_BWD_V2_TUNE_HDIM
inline constexpr int kBwdV2Hdim = AITER_BWD_V2_TUNE_HDIM;
inline constexpr int kBwdV2M = AITER_BWD_V2_TUNE_M, kBwdV2N = AITER_BWD_V2_TUNE_N, kBwdV2Sdp = AITER_BWD_V2_TUNE_SDP,
                     kBwdV2Dkv = AITER_BWD_V2_TUNE_DKV, kBwdV2Dq = AITER_BWD_V2_TUNE_DQ;
#else
inline constexpr int kBwdV2Hdim = 0, kBwdV2M = 0, kBwdV2N = 0, kBwdV2Sdp = 0, kBwdV2Dkv = 0, kBwdV2Dq = 0;
#endif

// Whether any knob is set: the tile headers pin their measured choices with static_asserts
// only in normal builds.
inline constexpr bool kAny = kFwdV2Hdim || kFwdV3Hdim || !kFwdV3Overlap || kFwdV3TilePingPong || kFwdV3OpaqueDescs ||
                             kFwdV3Short || kFwdV3PingPongAll || kFwdV3Dynamic || kFwdV3Split >= 0 ||
                             kFwdV3DirectO >= 0 || kFwdV3OBytes || kFwdV3CrossTile >= 0 || kSplitkvD128N ||
                             kSplitkvD128W || kSplitkvD128S || kBwdV2Hdim;

}  // namespace aiter::tuning
