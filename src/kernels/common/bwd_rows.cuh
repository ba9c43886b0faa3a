// Per-query-row facts every backward kernel reads the same way: the row statistics of the
// forward (LSE, D) as the P/dS math wants them, and where a (batch, q head, query block)'s tile
// of the fp32 dQ accumulator starts (BwdParams::dq_acc; the order inside a tile is the kernel's).
#pragma once

#include <cstdint>

#include "bwd/bwd_params.h"

namespace aiter::bwd {

// LSE·log2e and D of one query row: rows outside the logical length, and rows that saw no key
// (LSE = −inf), get +inf so that P = 0 there.
struct RowStats {
    float lse2, d;
};
__device__ __forceinline__ RowStats fetch_row_stats(const float* lse, const float* d, int row, int sq) {
    RowStats r{INFINITY, 0.f};
    if (row < sq) {
        const float l = lse[row];
        r.lse2 = l == -INFINITY ? INFINITY : l * 1.4426950408889634f;
        r.d    = d[row];
    }
    return r;
}

// Float offset of the dQ accumulator tile of (batch b, q head h) that starts at query row m0,
// for tiles of block_m rows × hdim (the kernel's head-dim bucket) floats.
__device__ __forceinline__ int64_t bwd_acc_tile_offset(const BwdParams& p, int b, int h, int m0, int block_m,
                                                       int hdim) {
    const int64_t batch0 = p.is_group_mode ? bwd_acc_group_row0(p.seqstart_q[b], b, block_m) * hdim
                                           : int64_t(b) * p.acc_batch_stride;
    return batch0 + int64_t(h) * p.acc_head_stride + int64_t(m0) * hdim;
}

}  // namespace aiter::bwd
