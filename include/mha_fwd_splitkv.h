// aiter-mha for CUDA: split-KV / KV-cache forward attention (libmha_fwd.so), for decode.
//
//   O = softmax(mask(softcap(scale_s * Q Kᵀ))) V      per (batch, q head), as aiter::mha_fwd
//
// The keys of a (batch, q-row block) are cut into num_splits contiguous ranges. Each split
// writes an fp32 partial output and its log-sum-exp to the workspaces; a combine kernel
// weights the splits by exp(lse_acc[s] - LSE):
//   LSE = ln Σ_s exp(lse_acc[s]),   O = Σ_s exp(lse_acc[s] - LSE) · o_acc[s]
// With one split the kernel writes O and LSE directly and the workspaces are not used.
// Split boundaries: the key tiles a CTA's rows can see (mask) are divided evenly among the
// splits, in whole tiles of the kernel (64 or 128 keys); a split that gets no tile stores
// lse_acc = -inf and is skipped by the combine. (SPEC §2 describes ⌈sk/n⌉ ranges: the result
// is the same, only the workspace contents differ.)
// On sm_90+ the combine kernel is launched with cudaLaunchAttributeProgrammaticStreamSerialization
// (programmatic dependent launch): it is scheduled while the split kernel drains and waits for
// it in-kernel, so the results and stream order are those of two ordinary launches.
//
// Tensors (elements, last dimension contiguous):
//   q, o, lse             as mha_fwd_args, batch mode only (is_group_mode = false)
//   k, v  not paged       [b_cache, hk, sk, d] via batch_stride_k / nhead_stride_k / stride_k;
//                         batch b reads cache batch cache_batch_idx[b] (or b when null)
//   k, v  paged           [num_pages, page_block_size, hk, d] (vLLM / FlashAttention layout, any
//                         strides): batch_stride_k = page stride, stride_k = row stride within a
//                         page, nhead_stride_k = head stride. Key j of sequence b lives in page
//                         block_table[kb * batch_stride_block_table + j / page_block_size], row
//                         j % page_block_size, with kb = cache_batch_idx[b] (or b when null).
//                         seqlen_k is the capacity of a sequence (max_blocks * page_block_size).
//   Cache extents         num_cache_batches: batches of the K/V cache (not paged) or rows of
//                         block_table (paged), required with cache_batch_idx; num_pages: pages of
//                         the paged K/V cache, required with block_table_ptr. The host checks the
//                         K/V address ranges against them, and the kernel clamps every
//                         cache_batch_idx entry to [0, num_cache_batches) and every block-table
//                         entry to [0, num_pages), so a bad index reads a wrong but existing
//                         batch / page, never memory outside the cache.
//                         mha_fwd_splitkv_check_tables finds such entries (it synchronizes).
//   seqlen_k_ptr          int32 [b]: logical key length of each sequence (clamped to seqlen_k)
//   lse_acc               fp32 [splits, b, hq, sq]: lse_acc_ptr + s*split_stride_lse_acc +
//                         b*batch_stride_lse_acc + h*nhead_stride_lse_acc + i
//   o_acc                 fp32 [splits, b, hq, sq, dv]: o_acc_ptr + s*split_stride_o_acc +
//                         b*batch_stride_o_acc + h*nhead_stride_o_acc + i*stride_o_acc + d
//                         (16-byte aligned, strides multiples of 4)
// Workspaces are needed when the number of splits that will run (num_splits, or
// mha_fwd_splitkv_num_splits(args) when num_splits = 0) is > 1.
//
// Supported: fp16 / bf16; hdim_q, hdim_v <= 256, multiples of 8, 16-byte aligned rows (strides
// multiples of 8 elements, 16-byte aligned base pointers); GQA/MQA (the q heads of one kv head
// are packed into one 16-row tile, so K and V are read once per kv head); masks 0..3 (causal
// bottom-right and sliding windows included); logits soft-cap; LSE; page_block_size any power
// of two >= 16 (and >= 16 is all: smaller or non-power-of-two pages are invalid arguments).
// Not supported (returns -1 with a reason from mha_fwd_splitkv_check): group mode, bias,
// dropout, fp8, unaligned hdims or strides.
// Errors: invalid arguments throw std::invalid_argument naming the field, as mha_fwd.
#pragma once

#include "mha_common.h"
#include "mha_fwd_args.h"

namespace aiter {

// The fields of mha_fwd_args plus the split-KV / KV-cache fields (aiter's names).
struct mha_fwd_splitkv_args : mha_fwd_args {
    void* lse_acc_ptr = nullptr;            // fp32 [splits, b, hq, sq]      (splits > 1)
    void* o_acc_ptr   = nullptr;            // fp32 [splits, b, hq, sq, dv]  (splits > 1)
    const void* block_table_ptr = nullptr;  // int32 [b, max_blocks]; null: K/V not paged
    int64_t batch_stride_block_table = 0;   // elements between block_table rows
    int page_block_size = 0;                // keys per page: a power of two >= 16 (paged)
    const void* cache_batch_idx = nullptr;  // int32 [b]: cache batch of each sequence (optional)
    int num_cache_batches = 0;              // with cache_batch_idx: K/V cache batches (block_table rows when paged)
    int num_pages = 0;                      // paged: pages of the K/V cache
    int num_splits = 0;                     // 0: heuristic (mha_fwd_splitkv_num_splits), 1..128

    int64_t split_stride_lse_acc = 0, split_stride_o_acc = 0;
    int64_t nhead_stride_lse_acc = 0, nhead_stride_o_acc = 0;
    int64_t batch_stride_lse_acc = 0, batch_stride_o_acc = 0;
    int64_t stride_o_acc = 0;
};

// Runs split-KV attention: mean ms per call when s.time_kernel_, 0 when launched untimed,
// -1 when no compiled kernel supports `args` (mha_fwd_splitkv_check says why).
float mha_fwd_splitkv(mha_fwd_splitkv_args args, const stream_config& s);

// Which instance would run, or why none can. Throws std::invalid_argument like the call.
mha_check_result mha_fwd_splitkv_check(const mha_fwd_splitkv_args& args);

// The number of splits a call with `args` runs: args.num_splits when > 0, else the heuristic's
// choice from batch, heads, seqlen_q/k and the current device's SM count (size the workspaces
// with it). Never launches. Throws std::invalid_argument like the call.
int mha_fwd_splitkv_num_splits(const mha_fwd_splitkv_args& args);

// Reads cache_batch_idx, the block-table entries the key lengths use and seqlen_k_ptr back to
// the host (on s.stream_id_, synchronizing it) and reports entries outside the cache:
// supported = true when every entry is in range, else reason names the first bad entries
// ("block_table[2][7] = 1200, outside [0, 1000)"). A debugging aid, not part of the call: the
// call itself clamps such entries. Throws std::invalid_argument like the call, and
// std::runtime_error when a copy fails.
mha_check_result mha_fwd_splitkv_check_tables(const mha_fwd_splitkv_args& args, const stream_config& s);

// Names of every split-KV instance (main and combine kernels) compiled into this library.
std::vector<std::string> mha_fwd_splitkv_instances();

}  // namespace aiter
