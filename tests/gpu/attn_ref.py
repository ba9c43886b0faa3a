"""Reference attention in torch for the GPU tests: fp32 (`upcast=True`) or the same math in the
input precision (`upcast=False`, the "out_pt" baseline of the pass rule). Bottom-right aligned
masks as aiter / FlashAttention: row i keeps keys j with
    i + sk - sq - left <= j <= i + sk - sq + right   (a negative bound is unbounded)."""

from __future__ import annotations

import math

import torch


def attention_ref(q, k, v, causal=False, window=(-1, -1), scale=None, softcap=0.0, upcast=True):
    """q [b, sq, hq, d], k [b, sk, hk, d], v [b, sk, hk, dv] -> (out [b, sq, hq, dv], lse [b, hq, sq])."""
    dtype = q.dtype
    if upcast:
        q, k, v = q.float(), k.float(), v.float()
    b, sq, hq, d = q.shape
    sk, hk = k.shape[1], k.shape[2]
    if hq != hk:
        k = k.repeat_interleave(hq // hk, dim=2)
        v = v.repeat_interleave(hq // hk, dim=2)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    s = torch.einsum("bqhd,bkhd->bhqk", q, k).float() * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    left, right = window
    if causal:
        right = 0
    i = torch.arange(sq, device=q.device).view(-1, 1)
    j = torch.arange(sk, device=q.device).view(1, -1)
    diag = i + sk - sq
    keep = torch.ones(sq, sk, dtype=torch.bool, device=q.device)
    if left >= 0:
        keep &= j >= diag - left
    if right >= 0:
        keep &= j <= diag + right
    s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # -inf for fully masked rows
    p = torch.softmax(s, dim=-1).nan_to_num(0.0)
    if not upcast:
        p = p.to(dtype)
    out = torch.einsum("bhqk,bkhd->bqhd", p, v)
    return out.to(dtype if not upcast else torch.float32), lse


def assert_close_to_ref(out, out_ref, out_pt, what="out", factor=2.0, eps=1e-5):
    err = (out.float() - out_ref.float()).abs().max().item()
    base = (out_pt.float() - out_ref.float()).abs().max().item()
    assert err <= factor * base + eps, f"{what}: max|ours - ref| = {err:.3e} > {factor} * {base:.3e} + {eps}"


def assert_lse_close(lse, lse_ref, atol=1e-3):
    both_inf = torch.isinf(lse_ref) & (lse == lse_ref)
    diff = (lse - lse_ref).abs().masked_fill(both_inf, 0.0)
    assert not torch.isnan(lse).any(), "lse has NaN"
    assert diff.max().item() <= atol + 1e-4 * lse_ref.abs().masked_fill(torch.isinf(lse_ref), 0).max().item(), \
        f"lse: max diff {diff.max().item():.3e}"
