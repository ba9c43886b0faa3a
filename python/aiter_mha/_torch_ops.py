"""flash_attn_func / flash_attn_varlen_func for torch tensors as torch.library custom ops
(aiter_mha::flash_attn_fwd, ::flash_attn_bwd, ::flash_attn_varlen_fwd, ::flash_attn_varlen_bwd)
with fake (meta) implementations and registered autograd, so torch.compile(fullgraph=True)
traces them without graph breaks. Imported only once torch is: by aiter_mha's __init__ when
torch was imported first, else on the first call with torch tensors.

Each op runs the library on the caller's current stream and allocates its outputs (and the
backward's workspace) through torch's allocator, so calls can be captured in CUDA graphs. The
forward runs v3 (Hopper) where it supports the call, v2 otherwise; so does the backward."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import ops


@torch.library.custom_op("aiter_mha::flash_attn_fwd", mutates_args=())
def flash_attn_fwd(q: Tensor, k: Tensor, v: Tensor, softmax_scale: float, causal: bool, window_left: int,
                   window_right: int, softcap: float, deterministic: bool) -> Tuple[Tensor, Tensor]:
    out, lse, _, _ = ops.mha_fwd(q, k, v, 0.0, softmax_scale, causal, window_left, window_right, 0, True, False,
                                 logits_soft_cap=softcap, _use_v3=True)
    return out, lse


@flash_attn_fwd.register_fake
def _(q, k, v, softmax_scale, causal, window_left, window_right, softcap, deterministic):
    b, sq, hq, _ = q.shape
    return q.new_empty((b, sq, hq, v.shape[3])), q.new_empty((b, hq, sq), dtype=torch.float32)


@torch.library.custom_op("aiter_mha::flash_attn_bwd", mutates_args=())
def flash_attn_bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, softmax_scale: float,
                   causal: bool, window_left: int, window_right: int,
                   deterministic: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dout, q, k, v, out = (_bwd_ready(x) for x in (dout, q, k, v, out))
    dq, dk, dv, _ = ops.mha_bwd(dout, q, k, v, out, lse, 0.0, softmax_scale, causal, window_left, window_right,
                                deterministic, _use_v3=True)
    return dq, dk, dv


@flash_attn_bwd.register_fake
def _(dout, q, k, v, out, lse, softmax_scale, causal, window_left, window_right, deterministic):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)  # packed, as ops.mha_bwd allocates


@torch.library.custom_op("aiter_mha::flash_attn_varlen_fwd", mutates_args=())
def flash_attn_varlen_fwd(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k: Tensor,
                          max_seqlen_q: int, max_seqlen_k: int, softmax_scale: float, causal: bool, window_left: int,
                          window_right: int, softcap: float, deterministic: bool) -> Tuple[Tensor, Tensor]:
    out, lse, _, _ = ops.mha_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, 0, 0.0,
                                        softmax_scale, softcap, False, causal, window_left, window_right, 0, True,
                                        False, _use_v3=True)
    return out, lse


@flash_attn_varlen_fwd.register_fake
def _(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, softmax_scale, causal, window_left,
      window_right, softcap, deterministic):
    tq, hq, _ = q.shape
    return q.new_empty((tq, hq, v.shape[2])), q.new_empty((hq, tq), dtype=torch.float32)


@torch.library.custom_op("aiter_mha::flash_attn_varlen_bwd", mutates_args=())
def flash_attn_varlen_bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                          cu_seqlens_q: Tensor, cu_seqlens_k: Tensor, max_seqlen_q: int, max_seqlen_k: int,
                          softmax_scale: float, causal: bool, window_left: int, window_right: int,
                          deterministic: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dout, q, k, v, out = (_bwd_ready(x) for x in (dout, q, k, v, out))
    dq, dk, dv, _ = ops.mha_varlen_bwd(dout, q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                                       max_seqlen_k, 0.0, softmax_scale, False, causal, window_left, window_right,
                                       deterministic, _use_v3=True)
    return dq, dk, dv


@flash_attn_varlen_bwd.register_fake
def _(dout, q, k, v, out, lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, softmax_scale, causal,
      window_left, window_right, deterministic):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)  # packed, as ops.mha_bwd allocates


def _bwd_ready(x: Tensor) -> Tensor:
    """x as mha_bwd accepts it: a contiguous last dimension and rows that do not overlap. Autograd
    can hand over broadcast views (stride 0, e.g. from out.sum().backward()); those are copied.
    Other strides and alignments go as they are: the C++ side packs what the kernels cannot read."""
    strides, shape = x.stride(), x.shape
    if strides[-1] == 1 and (shape[-3] <= 1 or strides[-3] >= shape[-1]):
        return x
    return x.contiguous()


# ---- autograd: the forward saves q, k, v, out and the LSE; the LSE is not differentiable ----


def _no_softcap_grad(softcap: float) -> None:
    if softcap:
        raise NotImplementedError(f"softcap: the backward pass does not support soft-capped logits yet (got "
                                  f"{softcap!r}); run the forward under torch.no_grad() or without softcap")


def _setup_fwd(ctx, inputs, output):
    q, k, v, scale, causal, left, right, softcap, deterministic = inputs
    ctx.save_for_backward(q, k, v, *output)
    ctx.opts = (scale, causal, left, right, deterministic)
    ctx.softcap = softcap
    ctx.mark_non_differentiable(output[1])


def _backward_fwd(ctx, dout, _dlse):
    _no_softcap_grad(ctx.softcap)
    grads = torch.ops.aiter_mha.flash_attn_bwd(dout, *ctx.saved_tensors, *ctx.opts)
    return (*grads,) + (None,) * 6


def _setup_varlen(ctx, inputs, output):
    q, k, v, cu_q, cu_k, max_q, max_k, scale, causal, left, right, softcap, deterministic = inputs
    ctx.save_for_backward(q, k, v, *output, cu_q, cu_k)
    ctx.opts = (max_q, max_k, scale, causal, left, right, deterministic)
    ctx.softcap = softcap
    ctx.mark_non_differentiable(output[1])


def _backward_varlen(ctx, dout, _dlse):
    _no_softcap_grad(ctx.softcap)
    grads = torch.ops.aiter_mha.flash_attn_varlen_bwd(dout, *ctx.saved_tensors, *ctx.opts)
    return (*grads,) + (None,) * 10


flash_attn_fwd.register_autograd(_backward_fwd, setup_context=_setup_fwd)
flash_attn_varlen_fwd.register_autograd(_backward_varlen, setup_context=_setup_varlen)
