// Tile sizes of the v2 forward kernels: the ONE place they are chosen. Used by the kernel
// traits (device) and by the host (grid size, shared-memory checks).
#pragma once

#include "kernels/tuning.h"

namespace aiter::fwd {

struct FwdV2Tile {
    int block_m;  // query rows per CTA
    int block_n;  // keys per main-loop step
    int warps;    // each warp owns block_m / warps rows
};

// hdim is the padded bucket (32, 64, 128, 256). Chosen by benchmark/tune_tiles.sh on an H200
// (docs/PERF.md, "v2 tile sweep"); tuning builds may override one bucket (kernels/tuning.h).
constexpr FwdV2Tile fwd_v2_tile(int hdim) {
    if (tuning::kFwdV2Hdim != 0 && hdim == tuning::kFwdV2Hdim)
        return FwdV2Tile{tuning::kFwdV2M, tuning::kFwdV2N, tuning::kFwdV2W};
    return hdim <= 32    ? FwdV2Tile{128, 128, 4}
           : hdim <= 64  ? FwdV2Tile{128, 64, 4}
           : hdim <= 128 ? FwdV2Tile{128, 64, 4}
                         : FwdV2Tile{128, 64, 8};
}

}  // namespace aiter::fwd
