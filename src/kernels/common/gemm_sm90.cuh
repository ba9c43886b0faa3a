// Warpgroup GEMM steps of the Hopper (sm_90a) kernels: one wgmma batch over all k steps, with
// shared-memory descriptors that can be kept opaque to the compiler.
#pragma once

#include <cute/tensor.hpp>

namespace aiter {

// A shared-memory descriptor tensor whose base the compiler must take as computed here: the
// descriptors of the k steps are then derived from it at each GEMM instead of being hoisted out
// of the loop and kept live (at d256 with 128 keys, 32 descriptors of Q and K took ≈ 40
// registers for the whole main loop, and ptxas serialized the wgmmas for want of registers).
template <class TD>
__device__ __forceinline__ auto opaque_desc(TD const& t) {
    auto it = t.data();
    asm volatile("" : "+r"(it.desc_.reg32_[0]));
    return cute::make_tensor(it, t.layout());
}

// Issues one warpgroup GEMM c (+)= a · b over all k steps and commits it as one batch; the
// caller waits with warpgroup_wait<N>(). kZeroInit: c = a · b (c's old value is ignored).
// kOpaqueDescs: shared-memory operands through opaque_desc.
template <bool kZeroInit, bool kOpaqueDescs = false, class Mma, class TA, class TB, class TC>
__device__ __forceinline__ void wgmma_gemm(Mma& mma, TA& a_in, TB const& b_in, TC& c) {
    using namespace cute;
    // A in registers (RS), not a shared-memory descriptor (SS).
    constexpr bool kARegs = !std::is_same_v<typename TA::iterator, GMMA::DescriptorIterator>;
    auto&& a = [&]() -> decltype(auto) {
        if constexpr (kOpaqueDescs && !kARegs) return opaque_desc(a_in);
        else return (a_in);
    }();
    auto b = [&] {
        if constexpr (kOpaqueDescs) return opaque_desc(b_in);
        else return b_in;
    }();
    if constexpr (kARegs) warpgroup_fence_operand(a);
    warpgroup_fence_operand(c);
    warpgroup_arrive();
    if constexpr (kZeroInit) mma.accumulate_ = GMMA::ScaleOut::Zero;
    CUTE_UNROLL
    for (int k = 0; k < size<2>(a); ++k) {
        gemm(mma, a(_, _, k), b(_, _, k), c);
        mma.accumulate_ = GMMA::ScaleOut::One;
    }
    warpgroup_commit_batch();
    warpgroup_fence_operand(c);
    if constexpr (kARegs) warpgroup_fence_operand(a);
}

}  // namespace aiter
