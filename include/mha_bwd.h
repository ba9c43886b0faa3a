// aiter-mha for CUDA: backward attention API (libmha_bwd.so).
//
// Forward (what is differentiated), per (batch, q head), logical lengths sq, sk:
//   S = scale · Q Kᵀ ;  P = softmax(mask(S)) = exp(S − LSE) on kept positions, 0 elsewhere
//   O = P V
// Backward, given dO and the forward's O and LSE:
//   D   = rowsum(dO ∘ O)                         fp32 [b, hq, sq]   (d_ptr, or workspace)
//   dV  = Pᵀ dO          dP = dO Vᵀ              dS = P ∘ (dP − D)
//   dQ  = scale · dS K   dK = scale · dSᵀ Q
// GQA/MQA: dK/dV of kv head hk are summed over the q heads hk·r … hk·r + r − 1 (r = nhead_q /
// nhead_k) and written at nhead_k. A query row with no visible key (LSE = −inf) has P = 0 and
// dQ = 0; a key no row sees gets dK = dV = 0.
//
// Tensors (elements, last dimension contiguous; same conventions as include/mha_fwd.h):
//   q, dq [b, hq, sq, dq]   k, dk [b, hk, sk, dq]   v, dv [b, hk, sk, dv]   o, do [b, hq, sq, dv]
//   lse, d fp32: batch mode  ptr + b*batch_stride_lsed + h*nhead_stride_lsed + i
//                group mode  ptr + h*nhead_stride_lsed + (seqstart_q[b] + i)
// Group mode (is_group_mode): batch strides are ignored; seqstart_{q,k}_ptr (int32 [b+1]) are the
// physical prefix sums; seqlen_{q,k}_ptr (int32 [b]) or cu_seqlen_{q,k}_ptr (int32 [b+1]) give
// logical lengths (padding) in either mode. Rows beyond the logical lengths are not written.
//
// Workspace: the fp32 dQ accumulator (non-deterministic mode; b·hq·(rows_q rounded up to the
// kernel's query tile)·(hdim bucket) floats, plus one tile per batch in group mode) and D
// (when d_ptr is null), plus packed copies of all eight tensors when a row is not 16-byte
// aligned, come from `workspace_alloc(bytes)`, which must return device memory that
// stays valid until the work queued on s.stream_id_ by this call has finished; the caller owns
// it. When workspace_alloc is empty, mha_bwd allocates with cudaMallocAsync on the stream and
// frees with cudaFreeAsync after the kernels (stream-ordered; no synchronization).
//
// Determinism: is_deterministic = true computes dQ in a separate kernel (one CTA per query block,
// looping over the key blocks in a fixed order) instead of fp32 atomics, so dQ/dK/dV are
// bit-identical from run to run. dK/dV never use atomics.
//
// Return value of mha_bwd: mean ms per call (accumulator zeroing + pre-kernel + main kernel(s) +
// dQ conversion) when s.time_kernel_, 0 when launched untimed, -1 when no compiled kernel
// supports the configuration (mha_bwd_check says why: dropout, bias, dbias are not supported
// yet). Head dims, strides or pointers that are not multiples of 8 / 16-byte aligned run on
// packed workspace copies (more workspace and memory traffic, same kernels).
// Invalid arguments throw std::invalid_argument naming the field, the expectation and the value.
// A CUDA error while launching throws std::runtime_error. Nothing here synchronizes the device.
#pragma once

#include <cstddef>
#include <functional>

#include "mha_common.h"

namespace aiter {

struct mha_bwd_args {
    // --- selection -------------------------------------------------------------------
    bool use_asm_v3     = false;  // try the Hopper-native v3 family first (falls back to v2)
    bool v3_atomic_fp32 = false;  // v3: fp32 atomics for dQ (accepted; v2 always accumulates in fp32)
    int v3_bf16_cvt     = 0;      // bf16 output rounding: 0 RTNE (the only value v2 honours)
    bool v3_api_check   = false;  // only answer 1 (a v3 kernel exists) or -1, no launch

    int hdim_q = 0;
    int hdim_v = 0;
    std::string data_type  = "fp16";  // "fp16" | "bf16"
    bool is_group_mode     = false;
    int mask_type          = 0;  // mask_enum (see include/mha_common.h)
    int bias_type          = 0;  // 0 none, 1 elementwise, 2 alibi (not supported yet)
    bool has_dbias         = false;
    bool has_dropout       = false;
    bool is_store_randval  = false;
    bool is_deterministic  = false;

    // --- pointers (device) ----------------------------------------------------------
    const void* q_ptr    = nullptr;
    const void* k_ptr    = nullptr;
    const void* v_ptr    = nullptr;
    const void* bias_ptr = nullptr;  // bias or alibi slopes
    const void* o_ptr    = nullptr;
    const void* lse_ptr  = nullptr;  // fp32, from the forward
    const void* do_ptr   = nullptr;
    void* d_ptr          = nullptr;  // fp32 rowsum(dO∘O); null: taken from the workspace
    void* dq_ptr         = nullptr;
    void* dk_ptr         = nullptr;
    void* dv_ptr         = nullptr;
    void* dbias_ptr      = nullptr;
    void* rand_val_ptr   = nullptr;

    const void* seqstart_q_ptr  = nullptr;  // int32 [b+1], group mode, physical prefix sums
    const void* seqstart_k_ptr  = nullptr;  // int32 [b+1], group mode
    const void* seqlen_q_ptr    = nullptr;  // int32 [b], logical q lengths (optional)
    const void* seqlen_k_ptr    = nullptr;  // int32 [b], logical key lengths (optional)
    const void* cu_seqlen_q_ptr = nullptr;  // int32 [b+1], logical prefix sums (optional)
    const void* cu_seqlen_k_ptr = nullptr;  // int32 [b+1], logical prefix sums (optional)

    // --- sizes -------------------------------------------------------------------------
    int seqlen_q     = 0;  // batch mode: rows of every batch; group mode: total physical rows
    int seqlen_k     = 0;
    int batch        = 0;
    int max_seqlen_q = 0;  // group mode: the longest q sequence (0: use seqlen_q)
    int max_seqlen_k = 0;  // group mode: the longest k sequence (0: use seqlen_k)
    int nhead_q      = 0;
    int nhead_k      = 0;
    float scale      = 0.f;  // multiplies QKᵀ; must be > 0

    // --- strides, in elements ---------------------------------------------------------
    int64_t stride_q = 0, stride_k = 0, stride_v = 0, stride_bias = 0, stride_o = 0,
            stride_randval = 0, stride_do = 0, stride_dq = 0, stride_dk = 0, stride_dv = 0,
            stride_dbias = 0;
    int64_t nhead_stride_q = 0, nhead_stride_k = 0, nhead_stride_v = 0, nhead_stride_bias = 0,
            nhead_stride_o = 0, nhead_stride_randval = 0, nhead_stride_do = 0,
            nhead_stride_lsed = 0, nhead_stride_dq = 0, nhead_stride_dk = 0, nhead_stride_dv = 0,
            nhead_stride_dbias = 0;
    int64_t batch_stride_q = 0, batch_stride_k = 0, batch_stride_v = 0, batch_stride_bias = 0,
            batch_stride_o = 0, batch_stride_randval = 0, batch_stride_do = 0,
            batch_stride_lsed = 0, batch_stride_dq = 0, batch_stride_dk = 0, batch_stride_dv = 0,
            batch_stride_dbias = 0;

    // --- mask --------------------------------------------------------------------------
    int window_size_left  = -1;
    int window_size_right = -1;

    // --- dropout (not supported yet) ------------------------------------------------------
    float p_drop   = 0.f;
    float p_undrop = 1.f;
    drop_seed_offset_t drop_seed_offset = std::pair<uint64_t, uint64_t>{0, 0};

    // --- workspace ------------------------------------------------------------------------
    // Returns `bytes` of device memory valid until this call's work on the stream finishes
    // (caller-owned). Empty: cudaMallocAsync / cudaFreeAsync on s.stream_id_.
    std::function<void*(size_t bytes)> workspace_alloc;
};

// Runs the backward pass (see the top of this file for the return contract).
float mha_bwd(mha_bwd_args args, const stream_config& s);

// Says whether (and which) compiled kernel would run `args`, or why none can.
// Throws std::invalid_argument for invalid arguments, like mha_bwd. Never launches.
mha_check_result mha_bwd_check(const mha_bwd_args& args);

// Names of every backward instance compiled into this library.
std::vector<std::string> mha_bwd_instances();

}  // namespace aiter
