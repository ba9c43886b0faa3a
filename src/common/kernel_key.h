// The fields every kernel-configuration key is made of (FwdV2Key, FwdV3Key, SplitkvKey,
// BwdV2Key): the element type and the mask kind. Host and device.
#pragma once

namespace aiter {

enum class DType : int { fp16 = 0, bf16 = 1 };
enum class MaskKind : int { none = 0, window = 1 };  // window covers mask types 1, 2, 3

}  // namespace aiter
