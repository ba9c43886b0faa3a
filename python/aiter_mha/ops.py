"""aiter-named attention functions over the compiled extension `aiter_mha._C`.

Layouts (strides are free; the last dimension must be contiguous):
  mha_fwd / fmha_v3_fwd / flash_attn_func        q [b, sq, hq, d], k/v [b, sk, hk, d|dv]
  mha_varlen_fwd / fmha_v3_varlen_fwd / ..._varlen q [total_q, hq, d], k/v [total_k, hk, d|dv],
                                                  cu_seqlens_* int32 [b+1]
  mha_fwd_splitkv                                q [b, sq, hq, d], K/V caches (paged or not)
Returned LSE: [b, hq, sq] (batch) or [hq, total_q] (varlen), float32, natural log.
Causal is bottom-right aligned (as aiter and FlashAttention); window_size_left/right < 0 are
unbounded. Not built yet (NotImplementedError): dropout, bias, ALiBi, fp8 descale, sinks,
and the backward pass (so flash_attn_func cannot be differentiated yet).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
from pathlib import Path
from typing import Any, Optional, Tuple

from . import _frameworks as fw

_EXT = None


def _find_extension() -> Path:
    names = [f"_C{s}" for s in importlib.machinery.EXTENSION_SUFFIXES]
    dirs = []
    if os.environ.get("AITER_MHA_LIB_DIR"):
        dirs.append(Path(os.environ["AITER_MHA_LIB_DIR"]))
    dirs += [Path(__file__).resolve().parent, Path(__file__).resolve().parents[2] / "build"]
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise ImportError("aiter_mha: the extension _C is not built; run `python3 compile.py --python` "
                      f"(it writes build/_C*.so) or set AITER_MHA_LIB_DIR; looked in {', '.join(map(str, dirs))}")


def _ext():
    """The compiled extension, loaded on first use (import aiter_mha needs no GPU and no build)."""
    global _EXT
    if _EXT is None:
        path = _find_extension()
        loader = importlib.machinery.ExtensionFileLoader("aiter_mha._C", str(path))
        spec = importlib.util.spec_from_file_location("aiter_mha._C", str(path), loader=loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        _EXT = mod
    return _EXT


def fwd_instances():
    """Names of the forward kernel instances compiled into libmha_fwd.so."""
    return list(_ext().fwd_instances())


def _unsupported(**features: Any) -> None:
    for name, value in features.items():
        if value:
            raise NotImplementedError(f"{name}: not supported yet by aiter-mha for CUDA (got {value!r})")


def _mask(is_causal: bool, left: int, right: int) -> Tuple[int, int, int]:
    """(mask_type, left, right): bottom-right aligned like aiter / FlashAttention."""
    if is_causal:
        return 2, (left if left >= 0 else -1), 0
    if left >= 0 or right >= 0:
        return 2, left, right
    return 0, -1, -1


def _scale(softmax_scale: Optional[float], d: int) -> float:
    s = 1.0 / math.sqrt(d) if softmax_scale is None else float(softmax_scale)
    if not (s > 0.0 and math.isfinite(s)):
        raise ValueError(f"softmax_scale: expected a finite value > 0, got {softmax_scale!r}")
    return s


def _check_inputs(q, k, v, layout_rank: int, layout: str) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        fw.require_dlpack(x, name)
        if len(x.shape) != layout_rank:
            raise ValueError(f"{name}: expected {layout_rank} dimensions {layout}, got shape {tuple(x.shape)}")
    if fw.dtype_name(q) not in ("float16", "bfloat16"):
        raise ValueError(f"q: expected dtype float16 or bfloat16, got {fw.dtype_name(q)}")
    for name, x in (("k", k), ("v", v)):
        if fw.dtype_name(x) != fw.dtype_name(q):
            raise ValueError(f"{name}: expected dtype {fw.dtype_name(q)} (as q), got {fw.dtype_name(x)}")
        if fw.device_id(x) != fw.device_id(q):
            raise ValueError(f"{name}: expected a tensor on cuda:{fw.device_id(q)} (where q is), got cuda:{fw.device_id(x)}")


def _run(q, k, v, out, lse, seqstart_q, seqstart_k, cu_q, cu_k, max_seqlen_q, scale, softcap, mask, use_v3, stream):
    s = fw.current_stream(q, stream)
    cap = lambda x: fw.capsule(x, s)  # noqa: E731
    mask_type, left, right = mask
    _ext().fwd(cap(q), cap(k), cap(v), cap(out), cap(lse), cap(seqstart_q), cap(seqstart_k), cap(cu_q), cap(cu_k),
               None, int(max_seqlen_q), float(scale), float(softcap), mask_type, int(left), int(right), bool(use_v3), s)


def mha_fwd(q, k, v, dropout_p: float = 0.0, softmax_scale: Optional[float] = None, is_causal: bool = False,
            window_size_left: int = -1, window_size_right: int = -1, sink_size: int = 0,
            return_softmax_lse: bool = True, return_dropout_randval: bool = False, cu_seqlens_q=None,
            cu_seqlens_kv=None, out=None, bias=None, alibi_slopes=None, q_descale=None, k_descale=None,
            v_descale=None, gen=None, logits_soft_cap: float = 0.0, stream: Optional[int] = None,
            _use_v3: bool = False):
    """Batch-mode forward. q [b, sq, hq, d], k [b, sk, hk, d], v [b, sk, hk, dv].
    cu_seqlens_q / cu_seqlens_kv (int32 [b+1], optional): logical lengths of padded batches.
    Returns (out [b, sq, hq, dv], softmax_lse [b, hq, sq] or None, None, None)."""
    _unsupported(dropout_p=dropout_p, sink_size=sink_size, return_dropout_randval=return_dropout_randval,
                 bias=bias is not None, alibi_slopes=alibi_slopes is not None,
                 fp8_descale=any(x is not None for x in (q_descale, k_descale, v_descale)))
    _check_inputs(q, k, v, 4, "(batch, seqlen, heads, head_dim)")
    b, sq, hq, d = (int(x) for x in q.shape)
    dv = int(v.shape[3])
    if out is None:
        out = fw.empty(q, (b, sq, hq, dv), "same", "out")
    lse = fw.empty(q, (b, hq, sq), "float32", "softmax_lse") if return_softmax_lse else None
    _run(q, k, v, out, lse, None, None, cu_seqlens_q, cu_seqlens_kv, sq, _scale(softmax_scale, d), logits_soft_cap,
         _mask(is_causal, window_size_left, window_size_right), _use_v3, stream)
    return out, lse, None, None


def fmha_v3_fwd(q, k, v, dropout_p: float = 0.0, softmax_scale: Optional[float] = None, is_causal: bool = False,
                window_size_left: int = -1, window_size_right: int = -1, return_softmax_lse: bool = True,
                return_dropout_randval: bool = False, how_v3_bf16_cvt: int = 0, out=None, bias=None,
                alibi_slopes=None, gen=None, stream: Optional[int] = None):
    """mha_fwd on the v3 (Hopper-native) path when one exists; falls back to v2 otherwise."""
    if how_v3_bf16_cvt not in (0, 1, 2):
        raise ValueError(f"how_v3_bf16_cvt: expected 0 (RTNE), 1 (RTNA) or 2 (RTZ), got {how_v3_bf16_cvt!r}")
    return mha_fwd(q, k, v, dropout_p, softmax_scale, is_causal, window_size_left, window_size_right, 0,
                   return_softmax_lse, return_dropout_randval, out=out, bias=bias, alibi_slopes=alibi_slopes,
                   gen=gen, stream=stream, _use_v3=True)


def mha_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int, max_seqlen_k: int,
                   min_seqlen_q: int = 0, dropout_p: float = 0.0, softmax_scale: Optional[float] = None,
                   logits_soft_cap: float = 0.0, zero_tensors: bool = False, is_causal: bool = False,
                   window_size_left: int = -1, window_size_right: int = -1, sink_size: int = 0,
                   return_softmax_lse: bool = True, return_dropout_randval: bool = False, out=None,
                   block_table=None, bias=None, alibi_slopes=None, gen=None, cu_seqlens_q_padded=None,
                   cu_seqlens_k_padded=None, stream: Optional[int] = None, _use_v3: bool = False):
    """Group-mode forward over packed sequences. q [total_q, hq, d], k [total_k, hk, d],
    cu_seqlens_q/k int32 [b+1] prefix sums of the sequence lengths. With cu_seqlens_*_padded
    the padded prefix sums place the sequences and cu_seqlens_* give their logical lengths.
    Returns (out [total_q, hq, dv], softmax_lse [hq, total_q] or None, None, None)."""
    _unsupported(dropout_p=dropout_p, sink_size=sink_size, return_dropout_randval=return_dropout_randval,
                 block_table=block_table is not None, bias=bias is not None,
                 alibi_slopes=alibi_slopes is not None)
    _check_inputs(q, k, v, 3, "(total_tokens, heads, head_dim)")
    for name, x in (("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)):
        if x is None:
            raise ValueError(f"{name}: required (int32 [batch + 1] on the GPU)")
        fw.require_dlpack(x, name)
    tq, hq, d = (int(x) for x in q.shape)
    dv = int(v.shape[2])
    if out is None:
        out = fw.empty(q, (tq, hq, dv), "same", "out")
    if zero_tensors:
        fw.zero_(out)
    lse = fw.empty(q, (hq, tq), "float32", "softmax_lse") if return_softmax_lse else None
    seqstart_q = cu_seqlens_q_padded if cu_seqlens_q_padded is not None else cu_seqlens_q
    seqstart_k = cu_seqlens_k_padded if cu_seqlens_k_padded is not None else cu_seqlens_k
    logical_q = cu_seqlens_q if cu_seqlens_q_padded is not None else None
    logical_k = cu_seqlens_k if cu_seqlens_k_padded is not None else None
    _run(q, k, v, out, lse, seqstart_q, seqstart_k, logical_q, logical_k, max_seqlen_q,
         _scale(softmax_scale, d), logits_soft_cap, _mask(is_causal, window_size_left, window_size_right),
         _use_v3, stream)
    return out, lse, None, None


def fmha_v3_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int, max_seqlen_k: int,
                       min_seqlen_q: int = 0, dropout_p: float = 0.0, softmax_scale: Optional[float] = None,
                       logits_soft_cap: float = 0.0, zero_tensors: bool = False, is_causal: bool = False,
                       window_size_left: int = -1, window_size_right: int = -1, return_softmax_lse: bool = True,
                       return_dropout_randval: bool = False, how_v3_bf16_cvt: int = 0, out=None,
                       block_table=None, bias=None, alibi_slopes=None, gen=None, cu_seqlens_q_padded=None,
                       cu_seqlens_k_padded=None, stream: Optional[int] = None):
    """mha_varlen_fwd on the v3 path when one exists; falls back to v2 otherwise."""
    if how_v3_bf16_cvt not in (0, 1, 2):
        raise ValueError(f"how_v3_bf16_cvt: expected 0 (RTNE), 1 (RTNA) or 2 (RTZ), got {how_v3_bf16_cvt!r}")
    return mha_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, min_seqlen_q,
                          dropout_p, softmax_scale, logits_soft_cap, zero_tensors, is_causal, window_size_left,
                          window_size_right, 0, return_softmax_lse, return_dropout_randval, out, block_table,
                          bias, alibi_slopes, gen, cu_seqlens_q_padded, cu_seqlens_k_padded, stream, _use_v3=True)


def mha_fwd_splitkv(q, k_cache, v_cache, cache_seqlens=None, block_table=None, cache_batch_idx=None,
                    num_splits: int = 0, softmax_scale: Optional[float] = None, is_causal: bool = False,
                    window_size_left: int = -1, window_size_right: int = -1, logits_soft_cap: float = 0.0,
                    return_softmax_lse: bool = True, out=None, stream: Optional[int] = None):
    """Decode / KV-cache attention through aiter::mha_fwd_splitkv (batch mode).
    q [b, sq, hq, d]; k_cache / v_cache [b_cache, s_cap, hk, d|dv], or paged
    [num_pages, page_size, hk, d|dv] with block_table int32 [b, max_blocks] (page_size a power of
    two >= 16); cache_seqlens int32 [b] logical key lengths; cache_batch_idx int32 [b] picks each
    sequence's cache row (or block-table row). num_splits 0 = the library's heuristic.
    Returns (out [b, sq, hq, dv], softmax_lse [b, hq, sq] or None)."""
    _check_inputs(q, k_cache, v_cache, 4, "(batch, seqlen, heads, head_dim)")
    for name, x in (("cache_seqlens", cache_seqlens), ("block_table", block_table),
                    ("cache_batch_idx", cache_batch_idx)):
        if x is not None:
            fw.require_dlpack(x, name)
    b, sq, hq, d = (int(x) for x in q.shape)
    dv = int(v_cache.shape[3])
    if out is None:
        out = fw.empty(q, (b, sq, hq, dv), "same", "out")
    lse = fw.empty(q, (b, hq, sq), "float32", "softmax_lse") if return_softmax_lse else None
    s = fw.current_stream(q, stream)
    cap = lambda x: fw.capsule(x, s)  # noqa: E731
    mask_type, left, right = _mask(is_causal, window_size_left, window_size_right)
    _ext().fwd_splitkv(cap(q), cap(k_cache), cap(v_cache), cap(out), cap(lse), cap(block_table), cap(cache_seqlens),
                       cap(cache_batch_idx), int(num_splits), _scale(softmax_scale, d), float(logits_soft_cap),
                       mask_type, int(left), int(right), s)
    return out, lse


def _needs_grad(*xs) -> bool:
    return any(getattr(x, "requires_grad", False) for x in xs)


def flash_attn_func(q, k, v, dropout_p: float = 0.0, softmax_scale: Optional[float] = None, causal: bool = False,
                    window_size: Tuple[int, int] = (-1, -1), softcap: float = 0.0, alibi_slopes=None,
                    deterministic: bool = False, return_lse: bool = False, return_attn_probs: bool = False):
    """FlashAttention-style forward: q [b, sq, hq, d], k/v [b, sk, hk, d]; returns out
    (and lse with return_lse). The backward pass is not built yet: inputs that require grad
    raise NotImplementedError instead of silently dropping gradients."""
    if _needs_grad(q, k, v):
        raise NotImplementedError("flash_attn_func: the backward pass is not built yet; call it under "
                                  "torch.no_grad() or on tensors that do not require grad")
    _unsupported(return_attn_probs=return_attn_probs)
    out, lse, _, _ = mha_fwd(q, k, v, dropout_p, softmax_scale, causal, window_size[0], window_size[1], 0,
                             return_lse, False, alibi_slopes=alibi_slopes, logits_soft_cap=softcap)
    return (out, lse) if return_lse else out


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int, max_seqlen_k: int,
                           dropout_p: float = 0.0, softmax_scale: Optional[float] = None, causal: bool = False,
                           window_size: Tuple[int, int] = (-1, -1), softcap: float = 0.0, alibi_slopes=None,
                           deterministic: bool = False, return_lse: bool = False, return_attn_probs: bool = False):
    """FlashAttention-style varlen forward (see mha_varlen_fwd); same backward caveat."""
    if _needs_grad(q, k, v):
        raise NotImplementedError("flash_attn_varlen_func: the backward pass is not built yet; call it under "
                                  "torch.no_grad() or on tensors that do not require grad")
    _unsupported(return_attn_probs=return_attn_probs)
    out, lse, _, _ = mha_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, 0, dropout_p,
                                    softmax_scale, softcap, False, causal, window_size[0], window_size[1], 0,
                                    return_lse, False, alibi_slopes=alibi_slopes)
    return (out, lse) if return_lse else out
