"""Reference attention in torch for the GPU tests: fp32 (`upcast=True`) or the same math in the
input precision (`upcast=False`, the "out_pt" baseline of the pass rule). Bottom-right aligned
masks as aiter / FlashAttention: row i keeps keys j with
    i + sk - sq - left <= j <= i + sk - sq + right   (a negative bound is unbounded)."""

from __future__ import annotations

import math

import torch


def visible(sq, sk, causal=False, window=(-1, -1), device=None):
    """[sq, sk] bool: which keys each query row sees."""
    left, right = window[0], (0 if causal else window[1])
    i = torch.arange(sq, device=device).view(-1, 1)
    j = torch.arange(sk, device=device).view(1, -1)
    diag = i + sk - sq
    keep = torch.ones(sq, sk, dtype=torch.bool, device=device)
    if left >= 0:
        keep &= j >= diag - left
    if right >= 0:
        keep &= j <= diag + right
    return keep


def attention_ref(q, k, v, causal=False, window=(-1, -1), scale=None, softcap=0.0, upcast=True):
    """q [b, sq, hq, d], k [b, sk, hk, d], v [b, sk, hk, dv] -> (out [b, sq, hq, dv], lse [b, hq, sq]).
    Differentiable (attention_grads_ref uses that)."""
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
    keep = visible(sq, sk, causal, window, q.device)
    s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)  # -inf for fully masked rows
    # Rows with no visible key get P = 0, without NaNs (so autograd through it stays finite too).
    row_ok = keep.any(dim=-1, keepdim=True)
    p = torch.softmax(s.masked_fill(~row_ok, 0.0), dim=-1) * keep
    if not upcast:
        p = p.to(dtype)
    out = torch.einsum("bhqk,bkhd->bqhd", p, v)
    return out.to(dtype if not upcast else torch.float32), lse


def attention_grads_ref(q, k, v, dout, causal=False, window=(-1, -1), scale=None, upcast=True):
    """(dq, dk, dv) of attention_ref by torch autograd: in fp32 (upcast=True, the reference) or in
    the inputs' precision (upcast=False, the "grad_pt" baseline of the pass rule)."""
    dt = torch.float32 if upcast else q.dtype
    leaves = [x.detach().to(dt).requires_grad_() for x in (q, k, v)]
    with torch.enable_grad():
        out, _ = attention_ref(*leaves, causal=causal, window=window, scale=scale, upcast=False)
        out.backward(dout.to(dt))
    return tuple(x.grad for x in leaves)


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
