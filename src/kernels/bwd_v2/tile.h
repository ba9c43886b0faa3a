// Tile sizes of the v2 backward kernels: the ONE place they are chosen. Used by the kernel
// traits (device) and by the host (grid sizes, shared-memory checks).
#pragma once

namespace aiter::bwd {

struct BwdV2Tile {
    int block_m;  // query rows per step (the dK/dV kernel loops over them)
    int block_n;  // keys per CTA of the dK/dV kernel (per step of the dQ kernel)
    int warps;    // 4 along the first GEMM dimension x (warps / 4) along the second
};

// hdim is the padded bucket (32, 64, 128, 256). block_m = block_n = 64 = 4 warps x 16 rows:
// every GEMM of the backward (S, dP: M x N; dV, dK: N x D; dQ: M x D) has a first dimension of
// 64, so one TiledMMA serves them all. Wider heads get 8 warps to halve the per-thread dK/dV
// accumulators.
constexpr BwdV2Tile bwd_v2_tile(int hdim) {
    return hdim <= 64 ? BwdV2Tile{64, 64, 4} : BwdV2Tile{64, 64, 8};
}

}  // namespace aiter::bwd
