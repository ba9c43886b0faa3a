// XLA FFI handlers for aiter_mha.jax: the batch-mode forward and backward on JAX's stream.
// Arrays arrive dense row-major: q [b, sq, hq, d], k [b, sk, hk, d], v [b, sk, hk, dv],
// lse [b, hq, sq] fp32. Attributes carry the scale, the mask as the library takes it (mask_type,
// window_left, window_right: aiter_mha.ops._mask turns causal / window_size into them) and the
// soft-cap. The backward's workspace
// comes from XLA's scratch allocator, so nothing allocates outside XLA and the calls can live in
// jit-compiled and graph-captured programs. Errors (bad input, no kernel for the configuration)
// are returned to XLA as ffi::Error with the library's message.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

#include "mha_bwd.h"
#include "mha_fwd.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct Dims {
    int64_t b, sq, hq, d, sk, hk, dv;
};

ffi::Error dims_of(const ffi::AnyBuffer& q, const ffi::AnyBuffer& k, const ffi::AnyBuffer& v, Dims& m,
                   std::string& dtype) {
    const auto dq = q.dimensions(), dk = k.dimensions(), dv = v.dimensions();
    if (dq.size() != 4 || dk.size() != 4 || dv.size() != 4)
        return ffi::Error::InvalidArgument("aiter_mha: q, k, v: expected 4 dimensions (batch, seqlen, heads, head_dim)");
    if (q.element_type() == ffi::DataType::F16) dtype = "fp16";
    else if (q.element_type() == ffi::DataType::BF16) dtype = "bf16";
    else return ffi::Error::InvalidArgument("aiter_mha: q: expected float16 or bfloat16");
    if (k.element_type() != q.element_type() || v.element_type() != q.element_type())
        return ffi::Error::InvalidArgument("aiter_mha: k, v: expected the dtype of q");
    m = {dq[0], dq[1], dq[2], dq[3], dk[1], dk[2], dv[3]};
    return ffi::Error::Success();
}

// Strides (elements) of a dense [b, s, h, d] array: row, head, batch.
void dense(int64_t s, int64_t h, int64_t d, int64_t& row, int64_t& head, int64_t& batch) {
    row = h * d, head = d, batch = s * h * d;
}

// What the forward and backward arguments share: sizes, mask, Q/K/V and the dense strides of
// Q/K/V/O (the O pointer is set by the caller: an output of the forward, an input of the backward).
template <class Args>
void set_common(Args& a, const Dims& m, const std::string& dtype, int32_t mask_type, int32_t left, int32_t right,
                const ffi::AnyBuffer& q, const ffi::AnyBuffer& k, const ffi::AnyBuffer& v) {
    a.data_type = dtype;
    a.batch = int(m.b), a.seqlen_q = int(m.sq), a.seqlen_k = int(m.sk);
    a.nhead_q = int(m.hq), a.nhead_k = int(m.hk), a.hdim_q = int(m.d), a.hdim_v = int(m.dv);
    a.mask_type = mask_type, a.window_size_left = left, a.window_size_right = right;
    a.q_ptr = q.untyped_data(), a.k_ptr = k.untyped_data(), a.v_ptr = v.untyped_data();
    dense(m.sq, m.hq, m.d, a.stride_q, a.nhead_stride_q, a.batch_stride_q);
    dense(m.sk, m.hk, m.d, a.stride_k, a.nhead_stride_k, a.batch_stride_k);
    dense(m.sk, m.hk, m.dv, a.stride_v, a.nhead_stride_v, a.batch_stride_v);
    dense(m.sq, m.hq, m.dv, a.stride_o, a.nhead_stride_o, a.batch_stride_o);
}

// The library throws std::invalid_argument for bad arguments and std::runtime_error for CUDA
// errors; both become errors XLA raises in Python.
template <class Fn>
ffi::Error guarded(Fn&& fn) {
    try {
        return fn();
    } catch (const std::invalid_argument& e) {
        return ffi::Error::InvalidArgument(std::string("aiter_mha: ") + e.what());
    } catch (const std::exception& e) {
        return ffi::Error::Internal(std::string("aiter_mha: ") + e.what());
    }
}

ffi::Error fwd_impl(cudaStream_t stream, ffi::AnyBuffer q, ffi::AnyBuffer k, ffi::AnyBuffer v,
                    ffi::Result<ffi::AnyBuffer> out, ffi::Result<ffi::Buffer<ffi::F32>> lse, float scale,
                    int32_t mask_type, int32_t left, int32_t right, float softcap, int32_t use_v3) {
    return guarded([&]() -> ffi::Error {
        Dims m;
        std::string dtype;
        if (auto e = dims_of(q, k, v, m, dtype); e.failure()) return e;
        aiter::mha_fwd_args a;
        set_common(a, m, dtype, mask_type, left, right, q, k, v);
        a.o_ptr = out->untyped_data();
        a.use_asm_v3 = use_v3 != 0;
        a.has_lse = true;
        a.scale_s = scale, a.logits_soft_cap = softcap;
        a.lse_ptr = lse->untyped_data();
        a.nhead_stride_lse = m.sq, a.batch_stride_lse = m.hq * m.sq;
        aiter::stream_config s;
        s.stream_id_ = stream;
        if (aiter::mha_fwd(a, s) < 0.f)
            return ffi::Error(ffi::ErrorCode::kUnimplemented,
                              "aiter_mha: no compiled forward kernel supports this call: " + aiter::mha_fwd_check(a).reason);
        return ffi::Error::Success();
    });
}

ffi::Error bwd_impl(cudaStream_t stream, ffi::ScratchAllocator scratch, ffi::AnyBuffer dout, ffi::AnyBuffer q,
                    ffi::AnyBuffer k, ffi::AnyBuffer v, ffi::AnyBuffer out, ffi::Buffer<ffi::F32> lse,
                    ffi::Result<ffi::AnyBuffer> dq, ffi::Result<ffi::AnyBuffer> dk, ffi::Result<ffi::AnyBuffer> dv,
                    float scale, int32_t mask_type, int32_t left, int32_t right, int32_t deterministic,
                    int32_t use_v3) {
    return guarded([&]() -> ffi::Error {
        Dims m;
        std::string dtype;
        if (auto e = dims_of(q, k, v, m, dtype); e.failure()) return e;
        aiter::mha_bwd_args a;
        set_common(a, m, dtype, mask_type, left, right, q, k, v);
        a.o_ptr = out.untyped_data();
        a.use_asm_v3 = use_v3 != 0;
        a.is_deterministic = deterministic != 0;
        a.scale = scale;
        a.do_ptr = dout.untyped_data(), a.lse_ptr = lse.untyped_data();
        a.dq_ptr = dq->untyped_data(), a.dk_ptr = dk->untyped_data(), a.dv_ptr = dv->untyped_data();
        dense(m.sq, m.hq, m.dv, a.stride_do, a.nhead_stride_do, a.batch_stride_do);
        dense(m.sq, m.hq, m.d, a.stride_dq, a.nhead_stride_dq, a.batch_stride_dq);
        dense(m.sk, m.hk, m.d, a.stride_dk, a.nhead_stride_dk, a.batch_stride_dk);
        dense(m.sk, m.hk, m.dv, a.stride_dv, a.nhead_stride_dv, a.batch_stride_dv);
        a.nhead_stride_lsed = m.sq, a.batch_stride_lsed = m.hq * m.sq;
        a.workspace_alloc = [&](size_t bytes) -> void* {
            const auto p = scratch.Allocate(bytes, 256);
            if (!p) throw std::runtime_error("XLA's scratch allocator could not provide " + std::to_string(bytes) +
                                             " bytes of workspace");
            return *p;
        };
        aiter::stream_config s;
        s.stream_id_ = stream;
        if (aiter::mha_bwd(a, s) < 0.f)
            return ffi::Error(ffi::ErrorCode::kUnimplemented,
                              "aiter_mha: no compiled backward kernel supports this call: " +
                                  aiter::mha_bwd_check(a).reason);
        return ffi::Error::Success();
    });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(AiterMhaFwd, fwd_impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("scale")
                                  .Attr<int32_t>("mask_type")
                                  .Attr<int32_t>("window_left")
                                  .Attr<int32_t>("window_right")
                                  .Attr<float>("softcap")
                                  .Attr<int32_t>("use_v3"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(AiterMhaBwd, bwd_impl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::PlatformStream<cudaStream_t>>()
                                  .Ctx<ffi::ScratchAllocator>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<float>("scale")
                                  .Attr<int32_t>("mask_type")
                                  .Attr<int32_t>("window_left")
                                  .Attr<int32_t>("window_right")
                                  .Attr<int32_t>("deterministic")
                                  .Attr<int32_t>("use_v3"));
