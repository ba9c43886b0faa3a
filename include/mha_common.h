// aiter-mha for CUDA: types shared by the forward and backward APIs.
//
// Field names follow aiter's struct-based API (csrc/include/mha_*.h) so code written
// against aiter ports by replacing hipStream_t with cudaStream_t.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace aiter {

// How a call is launched and (optionally) timed.
//   time_kernel_ = false : launch once on stream_id_, return 0.
//   time_kernel_ = true  : cold_niters_ warm-up launches, then nrepeat_ timed launches; return
//                          the mean milliseconds per launch, measured with CUDA events
//                          (is_gpu_timer_) or with the host clock around the launches and a
//                          cudaStreamSynchronize of stream_id_ (!is_gpu_timer_).
//   flush_cache_, rotating_count_ : accepted for aiter compatibility, not used yet.
struct stream_config {
    cudaStream_t stream_id_ = nullptr;
    bool time_kernel_       = false;
    int log_level_          = 0;
    int cold_niters_        = 3;
    int nrepeat_            = 10;
    bool is_gpu_timer_      = true;
    bool flush_cache_       = false;
    int rotating_count_     = 1;
};

// Mask kinds (mha_*_args::mask_type). For query row i and key column j of one batch with
// logical lengths sq, sk, a mask keeps
//     (left  < 0 || j >= i + off - left) && (right < 0 || j <= i + off + right)
// with off = 0 (top-left; kinds 1 and 3) or off = sk - sq (bottom-right; kind 2).
// Causal = left -1, right 0. Kind 3 ("g:y,x" on the CLI) is a top-left window given by
// generic coordinates, converted by the CLI to left = y - 1, right = x - 1.
enum class mask_enum : int {
    no_mask           = 0,
    mask_top_left     = 1,
    mask_bottom_right = 2,
    window_generic    = 3,
};

// Dropout seed/offset: host values, or device pointers to uint64 values.
using drop_seed_offset_t =
    std::variant<std::pair<uint64_t, uint64_t>, std::pair<const void*, const void*>>;

// Answer of the companion query functions (mha_fwd_check ...).
struct mha_check_result {
    bool supported = false;
    std::string kernel_name;              // instance that would run, when supported
    std::string reason;                   // why not, when unsupported
    std::vector<std::string> candidates;  // compiled instances of the same family
};

}  // namespace aiter
