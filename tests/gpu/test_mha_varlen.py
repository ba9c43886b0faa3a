"""GPU: aiter_mha.mha_varlen_fwd / fmha_v3_varlen_fwd (group mode) against the per-sequence
fp32 torch reference, with zero-length sequences and padded varlen (cu_seqlens_*_padded).
Pass rule as in test_mha.py; padded rows must stay untouched (NaN poison)."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch", reason="the GPU tests compare against torch")
from attn_ref import assert_close_to_ref, assert_lse_close, attention_ref  # noqa: E402

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
