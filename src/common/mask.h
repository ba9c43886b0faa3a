// The one definition of "visible" for attention masks, shared by the kernels (device), the
// host dispatch (block ranges) and the CPU / GPU references.
//
// For query row i and key column j of one batch with logical lengths sq, sk:
//   off     = 0           for top-left kinds (mask_type 1, 3)
//           = sk - sq     for bottom-right   (mask_type 2)
//   visible = (left  < 0 || j >= i + off - left) &&
//             (right < 0 || j <= i + off + right)     and always 0 <= j < sk
// mask_type 0 keeps every j < sk. Causal is left = -1, right = 0.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define AITER_HD __host__ __device__ __forceinline__
#else
#define AITER_HD inline
#endif

namespace aiter {

struct MaskSpec {
    int type  = 0;   // mask_enum: 0 none, 1 top-left, 2 bottom-right, 3 generic window (top-left)
    int left  = -1;  // < 0: unbounded
    int right = -1;  // < 0: unbounded

    AITER_HD bool enabled() const { return type != 0; }

    // Diagonal offset of this batch: where row i's "own" key column sits.
    AITER_HD int64_t offset(int64_t sq, int64_t sk) const { return type == 2 ? sk - sq : 0; }

    AITER_HD bool visible(int64_t i, int64_t j, int64_t sq, int64_t sk) const {
        if (j < 0 || j >= sk) return false;
        if (type == 0) return true;
        const int64_t d = i + offset(sq, sk);
        if (left >= 0 && j < d - left) return false;
        if (right >= 0 && j > d + right) return false;
        return true;
    }

    // Key columns [lo, hi) that rows [row_begin, row_end) may see: a superset used to skip
    // whole key blocks. Empty (lo >= hi) when no row in the range sees any key.
    AITER_HD void key_range(int64_t row_begin, int64_t row_end, int64_t sq, int64_t sk,
                            int64_t* lo, int64_t* hi) const {
        int64_t l = 0, h = sk;
        if (type != 0 && row_end > row_begin) {
            const int64_t off = offset(sq, sk);
            if (left >= 0) { const int64_t v = row_begin + off - left; l = v > 0 ? v : 0; }
            if (right >= 0) { const int64_t v = row_end - 1 + off + right + 1; h = v < sk ? v : sk; }
        }
        *lo = l;
        *hi = h;
    }

    // Query rows [lo, hi) that may see some key of [col_begin, col_end): the transpose of
    // key_range (row i sees j iff j - off - right <= i <= j - off + left), used by the
    // backward pass to skip whole query blocks. Clamped to [0, sq).
    AITER_HD void row_range(int64_t col_begin, int64_t col_end, int64_t sq, int64_t sk,
                            int64_t* lo, int64_t* hi) const {
        int64_t l = 0, h = sq;
        if (type != 0 && col_end > col_begin) {
            const int64_t off = offset(sq, sk);
            if (right >= 0) { const int64_t v = col_begin - off - right; l = v > 0 ? v : 0; }
            if (left >= 0) { const int64_t v = col_end - 1 - off + left + 1; h = v < sq ? v : sq; }
        }
        *lo = l;
        *hi = h;
    }
};

}  // namespace aiter
