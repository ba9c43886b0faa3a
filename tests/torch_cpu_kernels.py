"""CPU kernels for aiter_mha's torch custom ops, for the CPU tests of the Python glue
(test_torch_ops.py, test_transformers_integration.py): attention and its gradients by the
textbook formulas in fp32, with the same output shapes, dtypes and (packed) strides as the CUDA
implementation. Importing this module registers them for the current process."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
REPO_PYTHON = str(REPO / "python")
sys.path.insert(0, REPO_PYTHON)
sys.path.insert(0, str(REPO / "tests" / "gpu"))
from aiter_mha import _torch_ops  # noqa: E402,F401  (defines the ops)
from attn_ref import visible  # noqa: E402

# batch mode; varlen runs each sequence through the batch kernels


def probs(q, k, scale, causal, left, right, softcap=0.0):
    """P [b, hq, sq, sk] and LSE [b, hq, sq] in fp32; k already repeated to hq heads."""
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    keep = visible(q.shape[1], k.shape[1], causal, (left, right))
    s = s.masked_fill(~keep, float("-inf"))
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse.masked_fill(torch.isinf(lse), 0).unsqueeze(-1)) * keep
    return p, lse


def fwd_cpu(q, k, v, scale, causal, left, right, softcap, deterministic):
    g = q.shape[2] // k.shape[2]
    p, lse = probs(q.float(), k.float().repeat_interleave(g, 2), scale, causal, left, right, softcap)
    out = torch.einsum("bhqk,bkhd->bqhd", p, v.float().repeat_interleave(g, 2))
    return out.to(q.dtype).contiguous(), lse.contiguous()


def bwd_cpu(dout, q, k, v, out, lse, scale, causal, left, right, deterministic):
    hk, g = k.shape[2], q.shape[2] // k.shape[2]
    qf, do, of = q.float(), dout.float(), out.float()
    kf, vf = k.float().repeat_interleave(g, 2), v.float().repeat_interleave(g, 2)
    p, _ = probs(qf, kf, scale, causal, left, right)
    dp = torch.einsum("bqhd,bkhd->bhqk", do, vf)
    d = torch.einsum("bqhd,bqhd->bhq", do, of).unsqueeze(-1)  # rowsum(dO * O), as the kernels use
    ds = p * (dp - d)
    dq = torch.einsum("bhqk,bkhd->bqhd", ds, kf) * scale
    dk = torch.einsum("bhqk,bqhd->bkhd", ds, qf) * scale
    dv = torch.einsum("bhqk,bqhd->bkhd", p, do)
    fold = lambda x: x.unflatten(2, (hk, g)).sum(3)  # noqa: E731  (GQA: sum over the group)
    return tuple(x.to(y.dtype).contiguous() for x, y in ((dq, q), (fold(dk), k), (fold(dv), v)))


def segments(cu):
    return [(int(a), int(b)) for a, b in zip(cu[:-1], cu[1:])]


def varlen_fwd_cpu(q, k, v, cu_q, cu_k, max_q, max_k, scale, causal, left, right, softcap, deterministic):
    out = q.new_empty((q.shape[0], q.shape[1], v.shape[2]))
    lse = torch.empty((q.shape[1], q.shape[0]))
    for (q0, q1), (k0, k1) in zip(segments(cu_q), segments(cu_k)):
        o, l_ = fwd_cpu(q[None, q0:q1], k[None, k0:k1], v[None, k0:k1], scale, causal, left, right, softcap, False)
        out[q0:q1], lse[:, q0:q1] = o[0], l_[0]
    return out, lse


def varlen_bwd_cpu(dout, q, k, v, out, lse, cu_q, cu_k, max_q, max_k, scale, causal, left, right, deterministic):
    dq, dk, dv = q.new_zeros(q.shape), k.new_zeros(k.shape), v.new_zeros(v.shape)
    for (q0, q1), (k0, k1) in zip(segments(cu_q), segments(cu_k)):
        g = bwd_cpu(dout[None, q0:q1], q[None, q0:q1], k[None, k0:k1], v[None, k0:k1], out[None, q0:q1], None,
                     scale, causal, left, right, False)
        dq[q0:q1], dk[k0:k1], dv[k0:k1] = (x[0] for x in g)
    return dq, dk, dv


for _name, _fn in (("flash_attn_fwd", fwd_cpu), ("flash_attn_bwd", bwd_cpu),
                   ("flash_attn_varlen_fwd", varlen_fwd_cpu), ("flash_attn_varlen_bwd", varlen_bwd_cpu)):
    torch.library.register_kernel(f"aiter_mha::{_name}", "cpu", _fn)
