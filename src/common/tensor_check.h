// The one validation of a tensor's address range and layout, shared by mha_fwd,
// mha_fwd_splitkv and mha_bwd: a tensor is a base pointer, an element size and dims (extent,
// stride in elements, the argument that holds the stride), the last one contiguous.
//   - the pointer is aligned to the element size;
//   - Σ (extent − 1)·stride + 1 elements, in bytes, stays below 2^48 (the device address space;
//     so every 64-bit offset the kernels form fits too);
//   - outputs: no two elements share an address: taken from the smallest stride up, every
//     stride steps over the span of the dims below it (a zero stride only where the extent is
//     1). Inputs may broadcast (zero strides).
// Each refusal throws std::invalid_argument naming the tensor's argument, the expectation and
// the value found (arg_check.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "common/arg_check.h"

namespace aiter::host {

struct TensorDim {
    const char* field;  // the argument that holds the stride ("nhead_stride_o"), or the extent's name
    int64_t extent;
    int64_t stride;     // elements
};

struct TensorDesc {
    const char* name;       // "o"
    const char* ptr_field;  // "o_ptr"
    const void* ptr;
    int elem_bytes;
    bool output;
    std::vector<TensorDim> dims;
};

inline constexpr int64_t kMaxSpanBytes = int64_t(1) << 48;

inline void check_tensor(const char* api, const TensorDesc& t) {
    for (const TensorDim& d : t.dims)
        if (d.extent <= 0) return;  // no element: nothing is read or written
    const uintptr_t addr = reinterpret_cast<uintptr_t>(t.ptr);
    if (addr % uintptr_t(t.elem_bytes) != 0) {
        std::ostringstream got;
        got << "0x" << std::hex << addr;
        fail_arg(api, t.ptr_field,
                 "an address aligned to " + std::to_string(t.elem_bytes) + " bytes (the element size of " + t.name + ")",
                 got.str());
    }
    // The span, with every product and sum checked: strides are >= 0 (validated before).
    int64_t span = 1;
    for (const TensorDim& d : t.dims) {
        int64_t term = 0;
        if (__builtin_mul_overflow(d.extent - 1, d.stride, &term) || __builtin_add_overflow(span, term, &span) ||
            span > kMaxSpanBytes / t.elem_bytes)
            fail_arg(api, d.field,
                     std::string("a stride whose span over ") + t.name +
                         " (sum of (extent - 1) * stride, in bytes) stays below 2^48 (extent " +
                         std::to_string(d.extent) + ")",
                     arg_str(d.stride));
    }
    if (!t.output) return;
    std::vector<TensorDim> dims;
    for (const TensorDim& d : t.dims)
        if (d.extent > 1) dims.push_back(d);
    std::stable_sort(dims.begin(), dims.end(), [](const TensorDim& a, const TensorDim& b) { return a.stride < b.stride; });
    int64_t below = 0;   // span of the dims already placed, in elements, minus one
    std::string placed;  // their fields
    for (const TensorDim& d : dims) {
        if (d.stride < below + 1)
            fail_arg(api, d.field,
                     "a stride >= " + std::to_string(below + 1) + " (extent " + std::to_string(d.extent) +
                         "), past the span of the smaller dims of the output " + t.name + " (" + placed +
                         "), so that no two of its elements share an address",
                     arg_str(d.stride));
        below += (d.extent - 1) * d.stride;  // cannot overflow: checked above
        placed += (placed.empty() ? "" : ", ") + std::string(d.field);
    }
}

}  // namespace aiter::host
