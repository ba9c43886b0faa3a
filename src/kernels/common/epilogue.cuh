// Epilogue pieces shared by the forward kernels.
#pragma once

#include <cute/tensor.hpp>

namespace aiter {

// Row r of this thread's accumulator rows -> lse[m0 + tile row] (natural-log LSE, fp32), for
// the rows below sq; the thread of each quad that holds column 0 writes. coords_rc: the
// (rows, cols) view of the accumulator's identity coordinates (fragment.cuh).
template <int kRows, class TC>
__device__ __forceinline__ void store_lse(float* lse, const float (&v)[kRows], TC const& coords_rc, int m0, int sq) {
    using namespace cute;
    CUTE_UNROLL
    for (int r = 0; r < kRows; ++r) {
        const int row = m0 + get<0>(coords_rc(r, 0));
        if (get<1>(coords_rc(r, 0)) == 0 && row < sq) lse[row] = v[r];
    }
}

}  // namespace aiter
