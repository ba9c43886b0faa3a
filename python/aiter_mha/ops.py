"""aiter-named attention functions over the compiled extension `aiter_mha._C`.

Layouts (strides are free; the last dimension must be contiguous):
  mha_fwd / fmha_v3_fwd / mha_bwd / flash_attn_func  q [b, sq, hq, d], k/v [b, sk, hk, d|dv]
  mha_varlen_fwd / mha_varlen_bwd / ..._varlen      q [total_q, hq, d], k/v [total_k, hk, d|dv],
                                                    cu_seqlens_* int32 [b+1]
  mha_fwd_splitkv                                   q [b, sq, hq, d], K/V caches (paged or not)
Returned LSE (and softmax_d of the backward): [b, hq, sq] (batch) or [hq, total_q] (varlen),
float32, natural log. Gradients: dq like q, dk/dv like k/v (at nhead_k: GQA/MQA sum over the
group). Causal is bottom-right aligned (as aiter and FlashAttention); window_size_left/right < 0
are unbounded. flash_attn_func / flash_attn_varlen_func are differentiable (torch.autograd) when
torch is installed and an input requires grad; they run the v3 (Hopper) forward wherever it
supports the call and v2 otherwise, as aiter's flash_attn_func does, while the aiter-named
mha_fwd / mha_varlen_fwd keep aiter's explicit choice (fmha_v3_fwd / fmha_v3_varlen_fwd for v3).
Their backward likewise runs the v3 (Hopper) kernels where they take the call (built with the
bwd_v3 api), v2 otherwise; mha_bwd / mha_varlen_bwd run v2, as aiter's explicit choice.
Not built yet (NotImplementedError): dropout,
bias, ALiBi, fp8 descale, sinks, and gradients of soft-capped logits.
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


def _find_library(names, what: str, build_hint: str) -> Path:
    """The first of `names` in $AITER_MHA_LIB_DIR, the package folder or the repository's build/."""
    dirs = []
    if os.environ.get("AITER_MHA_LIB_DIR"):
        dirs.append(Path(os.environ["AITER_MHA_LIB_DIR"]))
    dirs += [Path(__file__).resolve().parent, Path(__file__).resolve().parents[2] / "build"]
    for d in dirs:
        for n in names:
            if (d / n).is_file():
                return d / n
    raise ImportError(f"aiter_mha: {what} is not built; run `{build_hint}` (it writes build/{names[0]}) or set "
                      f"AITER_MHA_LIB_DIR; looked in {', '.join(map(str, dirs))}")


def _find_extension() -> Path:
    return _find_library([f"_C{s}" for s in importlib.machinery.EXTENSION_SUFFIXES], "the extension _C",
                         "python3 compile.py --python")


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


def _int32(name: str, value: Any) -> int:
    """value as a Python int in the int32 range the library takes, else ValueError naming it."""
    v = int(value)
    if not -2**31 <= v < 2**31:
        raise ValueError(f"{name}: expected a value in [-2^31, 2^31), got {v}")
    return v


def _unsupported(**features: Any) -> None:
    p = features.get("dropout_p")
    if p is not None and not 0.0 <= float(p) < 1.0:  # out of range first: ValueError, not "not supported"
        raise ValueError(f"dropout_p: expected a value in [0, 1), got {p!r}")
    for name, value in features.items():
        if value:
            raise NotImplementedError(f"{name}: not supported yet by aiter-mha for CUDA (got {value!r})")


def _mask(is_causal: bool, left: int, right: int) -> Tuple[int, int, int]:
    """(mask_type, left, right): bottom-right aligned like aiter / FlashAttention."""
    left, right = _int32("window_size_left", left), _int32("window_size_right", right)
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


def _check_ranks_and_dtypes(q, k, v, layout_rank: int, layout: str) -> None:
    """q, k, v of layout_rank dimensions, q float16/bfloat16 and k, v of q's dtype (also what
    aiter_mha.jax checks of its arrays at trace time)."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if len(x.shape) != layout_rank:
            raise ValueError(f"{name}: expected {layout_rank} dimensions {layout}, got shape {tuple(x.shape)}")
    if fw.dtype_name(q) not in ("float16", "bfloat16"):
        raise ValueError(f"q: expected dtype float16 or bfloat16, got {fw.dtype_name(q)}")
    for name, x in (("k", k), ("v", v)):
        if fw.dtype_name(x) != fw.dtype_name(q):
            raise ValueError(f"{name}: expected dtype {fw.dtype_name(q)} (as q), got {fw.dtype_name(x)}")


def _check_inputs(q, k, v, layout_rank: int, layout: str) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        fw.require_dlpack(x, name)
    _check_ranks_and_dtypes(q, k, v, layout_rank, layout)
    for name, x in (("k", k), ("v", v)):
        if fw.device_id(x) != fw.device_id(q):
            raise ValueError(f"{name}: expected a tensor on cuda:{fw.device_id(q)} (where q is), got cuda:{fw.device_id(x)}")


def _run(q, k, v, out, lse, seqstart_q, seqstart_k, cu_q, cu_k, max_seqlen_q, scale, softcap, mask, use_v3, stream,
         check_only=False):
    """Runs the extension's forward on the caller's stream; check_only: only validates and selects,
    returning (supported, kernel name or reason)."""
    s = fw.current_stream(q, stream)
    cap = lambda x: fw.capsule(x, s)  # noqa: E731
    mask_type, left, right = mask
    args = (cap(q), cap(k), cap(v), cap(out), cap(lse), cap(seqstart_q), cap(seqstart_k), cap(cu_q), cap(cu_k), None,
            _int32("max_seqlen_q", max_seqlen_q), float(scale), float(softcap), mask_type, int(left), int(right),
            bool(use_v3))
    if check_only:
        return _ext().fwd_check(*args)
    _ext().fwd(*args, s)


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


def fwd_kernel_name(q, k, v, causal: bool = False, window_size: Tuple[int, int] = (-1, -1),
                    softcap: float = 0.0, use_v3: bool = True) -> str:
    """The forward instance that flash_attn_func (use_v3 True) or mha_fwd (use_v3 False) would
    run for these batch-mode tensors; validates like the call and never launches. Raises
    NotImplementedError with the reason when no compiled kernel supports the call."""
    _check_inputs(q, k, v, 4, "(batch, seqlen, heads, head_dim)")
    b, sq, hq, d = (int(x) for x in q.shape)
    out = fw.empty(q, (b, sq, hq, int(v.shape[3])), "same", "out")
    lse = fw.empty(q, (b, hq, sq), "float32", "softmax_lse")
    ok, name = _run(q, k, v, out, lse, None, None, None, None, sq, _scale(None, d), softcap,
                    _mask(causal, window_size[0], window_size[1]), use_v3, None, check_only=True)
    if not ok:
        raise NotImplementedError(f"fwd_kernel_name: not supported: {name}")
    return name


def _check_bf16_cvt(q, how_v3_bf16_cvt: int) -> None:
    """how_v3_bf16_cvt: 0 round to nearest even (what every kernel does); 1 (RTNA) and 2 (RTZ)
    exist in aiter's API but no kernel here rounds that way, so bf16 with them is refused, as
    aiter::mha_fwd does (-1); fp16 ignores the flag."""
    if how_v3_bf16_cvt not in (0, 1, 2):
        raise ValueError(f"how_v3_bf16_cvt: expected 0 (RTNE), 1 (RTNA) or 2 (RTZ), got {how_v3_bf16_cvt!r}")
    fw.require_dlpack(q, "q")
    if how_v3_bf16_cvt != 0 and fw.dtype_name(q) == "bfloat16":
        raise NotImplementedError(f"how_v3_bf16_cvt: only 0 (round to nearest even) is supported for bfloat16 "
                                  f"by aiter-mha for CUDA, got {how_v3_bf16_cvt}")


def fmha_v3_fwd(q, k, v, dropout_p: float = 0.0, softmax_scale: Optional[float] = None, is_causal: bool = False,
                window_size_left: int = -1, window_size_right: int = -1, return_softmax_lse: bool = True,
                return_dropout_randval: bool = False, how_v3_bf16_cvt: int = 0, out=None, bias=None,
                alibi_slopes=None, gen=None, stream: Optional[int] = None):
    """mha_fwd on the v3 (Hopper-native) path when one exists; falls back to v2 otherwise."""
    _check_bf16_cvt(q, how_v3_bf16_cvt)
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
    _check_bf16_cvt(q, how_v3_bf16_cvt)
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
                       cap(cache_batch_idx), _int32("num_splits", num_splits), _scale(softmax_scale, d),
                       float(logits_soft_cap),
                       mask_type, int(left), int(right), s)
    return out, lse


# ---- backward -------------------------------------------------------------------------------


def _bwd_ext():
    ext = _ext()
    if not getattr(ext, "has_bwd", False):
        raise NotImplementedError("aiter_mha: this extension was built without libmha_bwd.so (the backward "
                                  "pass); rebuild it with bwd among the apis, e.g. `python3 compile.py --python`")
    return ext


def bwd_instances():
    """Names of the backward kernel instances compiled into libmha_bwd.so."""
    return list(_bwd_ext().bwd_instances())


def _check_present(**tensors: Any) -> None:
    for name, x in tensors.items():
        if x is None:
            raise ValueError(f"{name}: required (a GPU tensor)")
        fw.require_dlpack(x, name)


def _check_optional(**tensors: Any) -> None:
    for name, x in tensors.items():
        if x is not None:
            fw.require_dlpack(x, name)


def _run_bwd(dout, q, k, v, out, lse, dq, dk, dv, seqstart_q, seqstart_k, cu_q, cu_k, max_seqlen_q, max_seqlen_k,
             scale, mask, deterministic, stream, zero_tensors=False, use_v3=False, check_only=False):
    """Validates everything first (the extension's bwd_check: argument errors and unsupported
    configurations surface before anything is allocated or launched), then allocates the missing
    gradients and softmax_d in q's framework and runs on the caller's stream. check_only: returns
    bwd_check's (supported, kernel name or reason) instead."""
    ext = _bwd_ext()
    s = fw.current_stream(q, stream)
    mask_type, left, right = mask
    tail = (_int32("max_seqlen_q", max_seqlen_q), _int32("max_seqlen_k", max_seqlen_k), float(scale), mask_type,
            int(left), int(right), bool(deterministic), bool(use_v3))

    def caps(d_out, d_q, d_k, d_v, d_soft):
        return [fw.capsule(x, s) for x in (d_out, q, k, v, out, lse, d_q, d_k, d_v, d_soft, seqstart_q, seqstart_k,
                                            cu_q, cu_k)]

    ok, why = ext.bwd_check(*caps(dout, dq, dk, dv, None), *tail)
    if check_only:
        return ok, why
    if not ok:
        raise NotImplementedError(f"aiter_mha: no compiled kernel supports this configuration: {why}")
    dq = fw.empty(q, tuple(q.shape), "same", "dq") if dq is None else dq
    dk = fw.empty(k, tuple(k.shape), "same", "dk") if dk is None else dk
    dv = fw.empty(v, tuple(v.shape), "same", "dv") if dv is None else dv
    if zero_tensors:
        for x in (dq, dk, dv):
            fw.zero_(x)
    # D = rowsum(dout * out) is returned where the framework can allocate it with softmax_lse's
    # layout, which it must have (packed lse); otherwise it stays in the library's workspace.
    softmax_d = (fw.empty(q, tuple(lse.shape), "float32", "softmax_d")
                 if fw.can_allocate(q) and fw.is_contiguous(lse) else None)
    allocate, held = fw.workspace_allocator(q, stream)
    ext.bwd(*caps(dout, dq, dk, dv, softmax_d), *tail, s, allocate)
    del held  # queued: the pool may hand the memory out again, in the stream's order
    return dq, dk, dv, softmax_d


def bwd_kernel_name(q, k, v, causal: bool = False, window_size: Tuple[int, int] = (-1, -1),
                    deterministic: bool = False, use_v3: bool = True) -> str:
    """The backward instance that flash_attn_func's autograd (use_v3 True) or mha_bwd (use_v3
    False) would run for these batch-mode tensors; validates like the call and never launches.
    Raises NotImplementedError with the reason when no compiled kernel supports the call."""
    _check_inputs(q, k, v, 4, "(batch, seqlen, heads, head_dim)")
    b, sq, hq, d = (int(x) for x in q.shape)
    dv = int(v.shape[3])
    o = fw.empty(q, (b, sq, hq, dv), "same", "out")  # stands in for out and dout
    lse = fw.empty(q, (b, hq, sq), "float32", "softmax_lse")
    ok, why = _run_bwd(o, q, k, v, o, lse, None, None, None, None, None, None, None, sq, int(k.shape[1]),
                       _scale(None, d), _mask(causal, window_size[0], window_size[1]), deterministic, None,
                       use_v3=use_v3, check_only=True)
    if not ok:
        raise NotImplementedError(f"bwd_kernel_name: not supported: {why}")
    return why


def mha_bwd(dout, q, k, v, out, softmax_lse, dropout_p: float = 0.0, softmax_scale: Optional[float] = None,
            is_causal: bool = False, window_size_left: int = -1, window_size_right: int = -1,
            deterministic: bool = False, dq=None, dk=None, dv=None, alibi_slopes=None, rng_state=None, gen=None,
            stream: Optional[int] = None, _use_v3: bool = False):
    """Batch-mode backward of mha_fwd. dout/out [b, sq, hq, dv], q [b, sq, hq, d], k [b, sk, hk, d],
    v [b, sk, hk, dv], softmax_lse [b, hq, sq] fp32 (the forward's). dq/dk/dv: optional outputs
    (allocated like q/k/v when None). deterministic: dQ without atomics (bit-reproducible).
    Returns (dq, dk, dv, softmax_d [b, hq, sq] fp32, or None for frameworks other than torch/cupy and
    for a softmax_lse that is not packed).
    rng_state and gen belong to dropout, which is not supported yet."""
    _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes is not None)
    _check_inputs(q, k, v, 4, "(batch, seqlen, heads, head_dim)")
    _check_present(dout=dout, out=out, softmax_lse=softmax_lse)
    _check_optional(dq=dq, dk=dk, dv=dv)
    b, sq, hq, d = (int(x) for x in q.shape)
    return _run_bwd(dout, q, k, v, out, softmax_lse, dq, dk, dv, None, None, None, None, sq, int(k.shape[1]),
                    _scale(softmax_scale, d), _mask(is_causal, window_size_left, window_size_right), deterministic,
                    stream, use_v3=_use_v3)


def mha_varlen_bwd(dout, q, k, v, out, softmax_lse, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int,
                   max_seqlen_k: int, dropout_p: float = 0.0, softmax_scale: Optional[float] = None,
                   zero_tensors: bool = False, is_causal: bool = False, window_size_left: int = -1,
                   window_size_right: int = -1, deterministic: bool = False, dq=None, dk=None, dv=None,
                   alibi_slopes=None, rng_state=None, gen=None, cu_seqlens_q_padded=None,
                   cu_seqlens_k_padded=None, stream: Optional[int] = None, _use_v3: bool = False):
    """Group-mode backward of mha_varlen_fwd: q/dout/out [total_q, hq, d|dv], k/v [total_k, hk, d|dv],
    softmax_lse [hq, total_q] fp32, cu_seqlens_q/k int32 [b+1] (with cu_seqlens_*_padded: the
    padded prefix sums place the sequences, cu_seqlens_* give the logical lengths). Rows outside
    the logical lengths are not written (zero_tensors=True zeroes dq/dk/dv first).
    Returns (dq, dk, dv, softmax_d [hq, total_q] fp32 or None)."""
    _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes is not None)
    _check_inputs(q, k, v, 3, "(total_tokens, heads, head_dim)")
    _check_present(dout=dout, out=out, softmax_lse=softmax_lse, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k)
    _check_optional(dq=dq, dk=dk, dv=dv, cu_seqlens_q_padded=cu_seqlens_q_padded,
                    cu_seqlens_k_padded=cu_seqlens_k_padded)
    seqstart_q = cu_seqlens_q_padded if cu_seqlens_q_padded is not None else cu_seqlens_q
    seqstart_k = cu_seqlens_k_padded if cu_seqlens_k_padded is not None else cu_seqlens_k
    logical_q = cu_seqlens_q if cu_seqlens_q_padded is not None else None
    logical_k = cu_seqlens_k if cu_seqlens_k_padded is not None else None
    return _run_bwd(dout, q, k, v, out, softmax_lse, dq, dk, dv, seqstart_q, seqstart_k, logical_q, logical_k,
                    max_seqlen_q, max_seqlen_k, _scale(softmax_scale, int(q.shape[2])),
                    _mask(is_causal, window_size_left, window_size_right), deterministic, stream, zero_tensors,
                    use_v3=_use_v3)


# ---- FlashAttention-style functions, differentiable under torch ------------------------------


def _torch_glue():
    """aiter_mha._torch_ops (torch custom ops with fake implementations and autograd), imported
    on first use so that importing aiter_mha never imports torch."""
    from . import _torch_ops

    return _torch_ops


def flash_attn_func(q, k, v, dropout_p: float = 0.0, softmax_scale: Optional[float] = None, causal: bool = False,
                    window_size: Tuple[int, int] = (-1, -1), softcap: float = 0.0, alibi_slopes=None,
                    deterministic: bool = False, return_lse: bool = False, return_attn_probs: bool = False):
    """FlashAttention-style attention: q [b, sq, hq, d], k/v [b, sk, hk, d]; returns out (and the
    LSE [b, hq, sq] with return_lse). The forward runs on the v3 (Hopper) kernels where they
    support the call, else on v2. torch tensors go through the custom op
    torch.ops.aiter_mha.flash_attn_fwd: differentiable (any head dim up to 256; the backward
    takes v3 where it can; with softcap the backward raises NotImplementedError), traceable by
    torch.compile(fullgraph=True) and capturable in CUDA graphs; deterministic makes the
    backward bit-reproducible."""
    _unsupported(return_attn_probs=return_attn_probs)
    if fw.framework(q) == "torch":
        _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes is not None)
        out, lse = _torch_glue().flash_attn_fwd(q, k, v, _scale(softmax_scale, int(q.shape[-1])), bool(causal),
                                                int(window_size[0]), int(window_size[1]), float(softcap),
                                                bool(deterministic))
    else:
        out, lse, _, _ = mha_fwd(q, k, v, dropout_p, softmax_scale, causal, window_size[0], window_size[1], 0,
                                 return_lse, False, alibi_slopes=alibi_slopes, logits_soft_cap=softcap, _use_v3=True)
    return (out, lse) if return_lse else out


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q: int, max_seqlen_k: int,
                           dropout_p: float = 0.0, softmax_scale: Optional[float] = None, causal: bool = False,
                           window_size: Tuple[int, int] = (-1, -1), softcap: float = 0.0, alibi_slopes=None,
                           deterministic: bool = False, return_lse: bool = False, return_attn_probs: bool = False):
    """FlashAttention-style varlen attention (see mha_varlen_fwd); returns out (and the LSE
    [hq, total_q] with return_lse); for torch tensors the custom op
    torch.ops.aiter_mha.flash_attn_varlen_fwd, differentiable and traceable like flash_attn_func."""
    _unsupported(return_attn_probs=return_attn_probs)
    if fw.framework(q) == "torch":
        _unsupported(dropout_p=dropout_p, alibi_slopes=alibi_slopes is not None)
        out, lse = _torch_glue().flash_attn_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, int(max_seqlen_q),
                                                       int(max_seqlen_k), _scale(softmax_scale, int(q.shape[-1])),
                                                       bool(causal), int(window_size[0]), int(window_size[1]),
                                                       float(softcap), bool(deterministic))
    else:
        out, lse, _, _ = mha_varlen_fwd(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, 0,
                                        dropout_p, softmax_scale, softcap, False, causal, window_size[0],
                                        window_size[1], 0, return_lse, False, alibi_slopes=alibi_slopes, _use_v3=True)
    return (out, lse) if return_lse else out
