"""aiter_mha.jax: flash attention for JAX through XLA's FFI, usable inside jax.jit.

    from aiter_mha.jax import flash_attn
    out = flash_attn(q, k, v, causal=True)          # q [b, sq, hq, d], k/v [b, sk, hk, d|dv]
    out, lse = flash_attn(q, k, v, return_lse=True)  # lse [b, hq, sq] float32

The forward and the backward are XLA custom calls (targets aiter_mha_fwd / aiter_mha_bwd of
libaiter_mha_jax.so, built by `compile.py --python --jax`) running the library on JAX's stream;
the backward takes its workspace from XLA's scratch allocator. jax.grad works through a
custom_vjp (the LSE is not differentiable: it is returned through stop_gradient). Like
flash_attn_func, the calls run the v3 (Hopper) kernels where they support the call and v2
otherwise. float16 / bfloat16, batch mode, any head dims the library takes, GQA/MQA, causal
(bottom-right aligned) and sliding windows, soft-cap in the forward. Under jax.vmap the calls run
once per mapped element."""

from __future__ import annotations

import ctypes
import functools
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from .ops import _check_ranks_and_dtypes, _find_library, _mask, _scale

_LIB = None


def _register() -> None:
    """Loads libaiter_mha_jax.so and registers its handlers for the CUDA platform (once)."""
    global _LIB
    if _LIB is not None:
        return
    lib = ctypes.cdll.LoadLibrary(str(_find_library(["libaiter_mha_jax.so"], "the JAX FFI library",
                                                    "python3 compile.py --python --jax")))
    jax.ffi.register_ffi_target("aiter_mha_fwd", jax.ffi.pycapsule(lib.AiterMhaFwd), platform="CUDA")
    jax.ffi.register_ffi_target("aiter_mha_bwd", jax.ffi.pycapsule(lib.AiterMhaBwd), platform="CUDA")
    _LIB = lib


class _Opts(NamedTuple):
    scale: float
    mask: Tuple[int, int, int]  # (mask_type, window_left, window_right), as ops._mask gives them
    softcap: float
    deterministic: bool

    def attrs(self):
        mask_type, left, right = self.mask
        return dict(scale=np.float32(self.scale), mask_type=np.int32(mask_type), window_left=np.int32(left),
                    window_right=np.int32(right), use_v3=np.int32(1))


def _fwd_call(q, k, v, opts: _Opts):
    _register()
    b, sq, hq, _ = q.shape
    shapes = (jax.ShapeDtypeStruct((b, sq, hq, v.shape[3]), q.dtype), jax.ShapeDtypeStruct((b, hq, sq), jnp.float32))
    return jax.ffi.ffi_call("aiter_mha_fwd", shapes, vmap_method="sequential")(
        q, k, v, softcap=np.float32(opts.softcap), **opts.attrs())


def _bwd_call(dout, q, k, v, out, lse, opts: _Opts):
    _register()
    shapes = tuple(jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (q, k, v))
    return jax.ffi.ffi_call("aiter_mha_bwd", shapes, vmap_method="sequential")(
        dout, q, k, v, out, lse, deterministic=np.int32(opts.deterministic), **opts.attrs())


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _attention(q, k, v, opts: _Opts):
    return _fwd_call(q, k, v, opts)


def _attention_fwd(q, k, v, opts: _Opts):
    out, lse = _fwd_call(q, k, v, opts)
    return (out, lse), (q, k, v, out, lse)


def _attention_bwd(opts: _Opts, residuals, cotangents):
    if opts.softcap:
        raise NotImplementedError(f"flash_attn: softcap: the backward pass does not support soft-capped logits yet "
                                  f"(got {opts.softcap!r})")
    dout, _ = cotangents  # the LSE leaves flash_attn through stop_gradient: its cotangent is zero
    return _bwd_call(dout.astype(residuals[3].dtype), *residuals, opts)


_attention.defvjp(_attention_fwd, _attention_bwd)


def _check(q, k, v) -> None:
    _check_ranks_and_dtypes(q, k, v, 4, "(batch, seqlen, heads, head_dim)")
    b, _, hq, d = q.shape
    if k.shape[0] != b or k.shape[3] != d:
        raise ValueError(f"k: expected shape [{b}, seqlen_k, nhead_k, {d}], got {list(k.shape)}")
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"v: expected shape [{', '.join(map(str, k.shape[:3]))}, head_dim_v], got {list(v.shape)}")
    if k.shape[2] == 0 or hq % k.shape[2]:
        raise ValueError(f"nhead_k: expected a divisor of nhead_q ({hq}), got {k.shape[2]}")


def flash_attn(q, k, v, softmax_scale: Optional[float] = None, causal: bool = False,
               window_size: Tuple[int, int] = (-1, -1), softcap: float = 0.0, deterministic: bool = False,
               return_lse: bool = False):
    """Attention of q [b, sq, hq, d] over k [b, sk, hk, d], v [b, sk, hk, dv] (hq a multiple of
    hk); returns out [b, sq, hq, dv] (and the LSE [b, hq, sq], natural log, with return_lse).
    softmax_scale defaults to 1/sqrt(d); causal and window_size are bottom-right aligned as in
    FlashAttention (negative window bounds are unbounded); deterministic makes the backward
    bit-reproducible. Differentiable in q, k, v (not with softcap yet)."""
    _check(q, k, v)
    opts = _Opts(_scale(softmax_scale, q.shape[3]), _mask(causal, *window_size), float(softcap), bool(deterministic))
    out, lse = _attention(q, k, v, opts)
    lse = jax.lax.stop_gradient(lse)
    return (out, lse) if return_lse else out
