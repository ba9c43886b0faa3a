// Argument fixtures of the host-only C++ checks (bad_args, bwd_validation, check_vs_call): valid
// calls whose pointers are never dereferenced (validation or selection answers first).
#pragma once

#include "mha_bwd.h"

// mha_bwd: fp16, b=2, hq=8, hk=2, s=64 (q and k), head dim d, BHSD, contiguous; every pointer `p`.
inline aiter::mha_bwd_args bwd_fixture(void* p, int d = 128) {
    aiter::mha_bwd_args a;
    a.data_type = "fp16";
    a.batch = 2, a.nhead_q = 8, a.nhead_k = 2, a.hdim_q = d, a.hdim_v = d;
    a.seqlen_q = 64, a.seqlen_k = 64, a.max_seqlen_q = 64, a.max_seqlen_k = 64, a.scale = 0.125f;
    a.q_ptr = a.k_ptr = a.v_ptr = a.o_ptr = a.do_ptr = a.lse_ptr = p;
    a.dq_ptr = a.dk_ptr = a.dv_ptr = p;
    a.stride_q = a.stride_k = a.stride_v = a.stride_o = a.stride_do = d;
    a.stride_dq = a.stride_dk = a.stride_dv = d;
    a.nhead_stride_q = a.nhead_stride_o = a.nhead_stride_do = a.nhead_stride_dq = 64 * d;
    a.nhead_stride_k = a.nhead_stride_v = a.nhead_stride_dk = a.nhead_stride_dv = 64 * d;
    a.nhead_stride_lsed = 64;
    a.batch_stride_q = a.batch_stride_o = a.batch_stride_do = a.batch_stride_dq = 8 * 64 * d;
    a.batch_stride_k = a.batch_stride_v = a.batch_stride_dk = a.batch_stride_dv = 2 * 64 * d;
    a.batch_stride_lsed = 8 * 64;
    return a;
}
