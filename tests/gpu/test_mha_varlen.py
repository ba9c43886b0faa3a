"""GPU: aiter_mha.mha_varlen_fwd / fmha_v3_varlen_fwd (group mode) against the per-sequence
fp32 torch reference, with zero-length sequences and padded varlen (cu_seqlens_*_padded).
Pass rule as in test_mha.py; padded rows must stay untouched (NaN poison). Backward
(mha_varlen_bwd, flash_attn_varlen_func + autograd): per-sequence autograd references, the
gradient rule of test_mha.py (3x the input-precision error + eps)."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch", reason="the GPU tests compare against torch")
from attn_ref import assert_close_to_ref, assert_lse_close, attention_grads_ref, attention_ref  # noqa: E402

CASES = list(itertools.product(["float16", "bfloat16"], [32, 59, 64, 128, (192, 128), 256],
                               [(4, 4), (4, 1)], ["none", "causal", "local"], [False, True]))


def _prefix(lens):
    out = [0]
    for n in lens:
        out.append(out[-1] + n)
    return out


@pytest.mark.parametrize("dtype,hd,heads,mask,padded", CASES,
                         ids=[f"{c[0]}-d{c[1]}-h{c[2][0]}x{c[2][1]}-{c[3]}-{'pad' if c[4] else 'nopad'}" for c in CASES])
def test_mha_varlen_fwd(aiter_mha, dtype, hd, heads, mask, padded):
    d, dv = hd if isinstance(hd, tuple) else (hd, hd)
    hq, hk = heads
    gen = torch.Generator(device="cuda").manual_seed(7)
    lq = [113, 0, 1, 300, 57]
    lk = [203, 17, 147, 300, 0]
    pad = [5, 0, 3, 8, 1] if padded else [0] * 5
    pq, pk = [a + p for a, p in zip(lq, pad)], [a + p for a, p in zip(lk, pad)]
    dt = getattr(torch, dtype)
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda").to(dt)  # noqa: E731
    q, k, v = r(sum(pq), hq, d), r(sum(pk), hk, d), r(sum(pk), hk, dv)
    i32 = lambda xs: torch.tensor(xs, dtype=torch.int32, device="cuda")  # noqa: E731
    cu_q, cu_k = i32(_prefix(lq)), i32(_prefix(lk))
    causal = mask == "causal"
    window = (32, 8) if mask == "local" else (-1, -1)
    out = torch.full((sum(pq), hq, dv), float("nan"), dtype=dt, device="cuda")
    fn = aiter_mha.fmha_v3_varlen_fwd if padded else aiter_mha.mha_varlen_fwd
    kw = dict(is_causal=causal, window_size_left=window[0], window_size_right=window[1], out=out,
              cu_seqlens_q_padded=i32(_prefix(pq)) if padded else None,
              cu_seqlens_k_padded=i32(_prefix(pk)) if padded else None)
    o, lse, _, _ = fn(q, k, v, cu_q, cu_k, max(pq), max(pk), **kw)
    sq0, sk0 = _prefix(pq), _prefix(pk)
    for bi in range(len(lq)):
        rows = slice(sq0[bi], sq0[bi] + lq[bi])
        if lq[bi] == 0:
            continue
        qb, kb, vb = q[rows][None], k[sk0[bi]:sk0[bi] + lk[bi]][None], v[sk0[bi]:sk0[bi] + lk[bi]][None]
        ref, lse_ref = attention_ref(qb, kb, vb, causal, window)
        pt, _ = attention_ref(qb, kb, vb, causal, window, upcast=False)
        assert not torch.isnan(o[rows]).any(), f"batch {bi}: unwritten output"
        assert_close_to_ref(o[rows][None], ref, pt, what=f"batch {bi}")
        assert_lse_close(lse[:, rows], lse_ref[0], atol=1e-3)
        if padded and pad[bi]:
            pad_rows = slice(sq0[bi] + lq[bi], sq0[bi + 1])
            assert torch.isnan(o[pad_rows]).all(), f"batch {bi}: padded rows were written"


# ---- backward ---------------------------------------------------------------------------------

BWD_CASES = [c + (n % 2 == 1,) for n, c in enumerate(itertools.product(
    ["float16", "bfloat16"], [32, 59, 64, 96, 128, (192, 128), 256], [(4, 4), (4, 2), (4, 1)],
    ["none", "causal", "local"]))]


def _varlen_grads_ref(q, k, v, dout, lq, lk, sq0, sk0, causal, window, upcast):
    """Per-sequence autograd gradients assembled into packed [total, h, d] tensors (zero rows for
    keys of a sequence without queries)."""
    dt = torch.float32 if upcast else q.dtype
    grads = [torch.zeros(x.shape, dtype=dt, device="cuda") for x in (q, k, v)]
    for bi in range(len(lq)):
        rq, rk = slice(sq0[bi], sq0[bi] + lq[bi]), slice(sk0[bi], sk0[bi] + lk[bi])
        if lq[bi] == 0:
            continue
        g = attention_grads_ref(q[rq][None], k[rk][None], v[rk][None], dout[rq][None], causal, window, upcast=upcast)
        for full, part, rows in zip(grads, g, (rq, rk, rk)):
            full[rows] = part[0]
    return grads


@pytest.mark.parametrize("dtype,hd,heads,mask,deterministic", BWD_CASES,
                         ids=[f"{c[0]}-d{c[1]}-h{c[2][0]}x{c[2][1]}-{c[3]}" + ("-det" if c[4] else "") for c in BWD_CASES])
def test_mha_varlen_bwd(aiter_mha, dtype, hd, heads, mask, deterministic):
    """Sequences of lengths q/k (113/203), (0/17), (1/147), (300/300), (57/0): a sequence without
    queries (its keys get zero gradients) and one without keys (its queries get dq = 0). Head dim
    59 goes through flash_attn_varlen_func + autograd (padded to 64), the others through
    mha_varlen_bwd with NaN-poisoned outputs."""
    d, dv = hd if isinstance(hd, tuple) else (hd, hd)
    hq, hk = heads
    gen = torch.Generator(device="cuda").manual_seed(17)
    lq, lk = [113, 0, 1, 300, 57], [203, 17, 147, 300, 0]
    dt = getattr(torch, dtype)
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda").to(dt)  # noqa: E731
    q, k, v = r(sum(lq), hq, d), r(sum(lk), hk, d), r(sum(lk), hk, dv)
    dout = r(sum(lq), hq, dv)
    i32 = lambda xs: torch.tensor(xs, dtype=torch.int32, device="cuda")  # noqa: E731
    sq0, sk0 = _prefix(lq), _prefix(lk)
    cu_q, cu_k = i32(sq0), i32(sk0)
    causal = mask == "causal"
    window = (32, 8) if mask == "local" else (-1, -1)
    if d % 8:
        q, k, v = (x.requires_grad_() for x in (q, k, v))
        out = aiter_mha.flash_attn_varlen_func(q, k, v, cu_q, cu_k, max(lq), max(lk), causal=causal,
                                               window_size=window, deterministic=deterministic)
        out.backward(dout)
        grads = (q.grad, k.grad, v.grad)
    else:
        out, lse, _, _ = aiter_mha.mha_varlen_fwd(q, k, v, cu_q, cu_k, max(lq), max(lk), is_causal=causal,
                                                  window_size_left=window[0], window_size_right=window[1])
        poison = [torch.full(x.shape, float("nan"), dtype=dt, device="cuda") for x in (q, k, v)]
        grads = aiter_mha.mha_varlen_bwd(dout, q, k, v, out, lse, cu_q, cu_k, max(lq), max(lk), 0.0, None, False,
                                         causal, window[0], window[1], deterministic, *poison)[:3]
        assert all(g.data_ptr() == p.data_ptr() for g, p in zip(grads, poison))
    torch.cuda.synchronize()
    refs = _varlen_grads_ref(q, k, v, dout, lq, lk, sq0, sk0, causal, window, True)
    pts = _varlen_grads_ref(q, k, v, dout, lq, lk, sq0, sk0, causal, window, False)
    for name, g, ref, pt in zip(("dq", "dk", "dv"), grads, refs, pts):
        assert not torch.isnan(g).any(), f"{name}: unwritten (NaN) rows"
        assert_close_to_ref(g, ref, pt, what=name, factor=3.0, eps=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mha_varlen_bwd_padded(aiter_mha, dtype):
    """cu_seqlens_*_padded place the sequences, cu_seqlens_* give their lengths: padded rows of
    dq/dk/dv stay untouched (NaN poison), unless zero_tensors zeroes them first."""
    dt = getattr(torch, dtype)
    gen = torch.Generator(device="cuda").manual_seed(23)
    lq, lk, pad = [113, 1, 64], [203, 147, 64], [5, 3, 8]
    pq, pk = [a + p for a, p in zip(lq, pad)], [a + p for a, p in zip(lk, pad)]
    hq, hk, d = 4, 2, 128
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda").to(dt)  # noqa: E731
    q, k, v, dout = r(sum(pq), hq, d), r(sum(pk), hk, d), r(sum(pk), hk, d), r(sum(pq), hq, d)
    i32 = lambda xs: torch.tensor(xs, dtype=torch.int32, device="cuda")  # noqa: E731
    sq0, sk0 = _prefix(pq), _prefix(pk)
    kw = dict(cu_seqlens_q_padded=i32(sq0), cu_seqlens_k_padded=i32(sk0))
    cu_q, cu_k = i32(_prefix(lq)), i32(_prefix(lk))
    out, lse, _, _ = aiter_mha.mha_varlen_fwd(q, k, v, cu_q, cu_k, max(pq), max(pk), is_causal=True, **kw)
    poison = [torch.full(x.shape, float("nan"), dtype=dt, device="cuda") for x in (q, k, v)]
    grads = aiter_mha.mha_varlen_bwd(dout, q, k, v, out, lse, cu_q, cu_k, max(pq), max(pk), is_causal=True,
                                     dq=poison[0], dk=poison[1], dv=poison[2], **kw)[:3]
    torch.cuda.synchronize()
    for bi in range(len(lq)):
        rq, rk = slice(sq0[bi], sq0[bi] + lq[bi]), slice(sk0[bi], sk0[bi] + lk[bi])
        args = (q[rq][None], k[rk][None], v[rk][None], dout[rq][None], True, (-1, -1))
        refs, pts = attention_grads_ref(*args), attention_grads_ref(*args, upcast=False)
        for name, g, rows, ref, pt in zip(("dq", "dk", "dv"), grads, (rq, rk, rk), refs, pts):
            assert_close_to_ref(g[rows][None], ref, pt, what=f"batch {bi} {name}", factor=3.0, eps=1e-4)
        for g, start, n, end in ((grads[0], sq0[bi], lq[bi], sq0[bi + 1]), (grads[1], sk0[bi], lk[bi], sk0[bi + 1])):
            assert torch.isnan(g[start + n:end]).all(), f"batch {bi}: padded rows were written"
    zeroed = aiter_mha.mha_varlen_bwd(dout, q, k, v, out, lse, cu_q, cu_k, max(pq), max(pk), is_causal=True,
                                      zero_tensors=True, **kw)[:3]
    assert not any(torch.isnan(g).any() for g in zeroed)
