// Host-side validation of aiter::mha_fwd_args. Every failure throws std::invalid_argument
// whose message names the field, what was expected and what was found:
//   "mha_fwd: nhead_k: expected a divisor of nhead_q (8), got 3"
#pragma once

#include <string>

#include "common/arg_check.h"
#include "mha_fwd.h"

namespace aiter::fwd {

// The extents of K/V's batch and row dims where they are not (batch, seqlen_k): split-KV
// caches reached through cache_batch_idx (num_cache_batches, seqlen_k) or a page table
// (num_pages, page_block_size).
struct KvExtents {
    int64_t batches;
    int64_t rows;
};

// Throws std::invalid_argument for arguments no configuration could accept. `api` prefixes
// the message ("mha_fwd", "mha_fwd_splitkv"); kv: K/V's extents when not (batch, seqlen_k).
void validate_fwd_args(const mha_fwd_args& a, const char* api = "mha_fwd", const KvExtents* kv = nullptr);

// The helpers behind it (src/common/arg_check.h), also used by mha_fwd_splitkv.
using host::arg_str;
using host::fail_arg;
using host::require_nonneg;
using host::require_ptr;

// Empty when some kernel family can, in principle, run `a`; otherwise why not (valid but
// unsupported configuration: the API returns -1).
std::string unsupported_feature(const mha_fwd_args& a);

}  // namespace aiter::fwd
