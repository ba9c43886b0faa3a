// TMA views of the attention tensors (sm_90a kernels): the (rows, hdim, heads, batches) global
// tensor a descriptor is built over (host), and one (batch, head)'s (rows, hdim) slice of its
// coordinate tensor (device).
#pragma once

#include <cute/tensor.hpp>

#include <cstdint>

namespace aiter {

using TmaGmemShape  = cute::Shape<int32_t, int32_t, int32_t, int32_t>;
using TmaGmemStride = cute::Stride<int64_t, cute::_1, int64_t, int64_t>;

// (rows, hdim, heads, batches) view of Q/K/V/dO for a TMA descriptor (hdim contiguous). Group
// mode: one "batch" holding every physical row. Extents are at least 1 (a descriptor cannot be
// empty; an empty tensor is never read) and the strides of extent-1 modes, which are never
// used, are replaced by an aligned value so that the descriptor is valid whatever the caller
// passed there.
template <class Element>
auto tma_gmem_view(const void* ptr, int rows, int hdim, int heads, int batches, int64_t row_stride,
                   int64_t head_stride, int64_t batch_stride) {
    using namespace cute;
    rows = rows > 0 ? rows : 1;
    const int64_t filler = row_stride * rows;
    if (heads <= 1) head_stride = filler;
    if (batches <= 1) batch_stride = filler;
    return make_tensor(make_gmem_ptr(static_cast<const Element*>(ptr)),
                       TmaGmemShape{rows, hdim, heads > 0 ? heads : 1, batches > 0 ? batches : 1},
                       TmaGmemStride{row_stride, _1{}, head_stride, batch_stride});
}

// TMA coordinate view of one (batch, head) of a (rows, hdim, head, batch) tensor: (rows, hdim),
// starting at the batch's first physical row.
template <class TmaTensor>
__device__ __forceinline__ auto tma_head_view(TmaTensor const& m, bool group_mode, int row0, int h, int b) {
    using namespace cute;
    return domain_offset(make_coord(group_mode ? row0 : 0, _0{}), m(_, _, h, group_mode ? 0 : b));
}

}  // namespace aiter
