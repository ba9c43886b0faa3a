"""aiter-mha for CUDA, Python interface.

Importable without torch: functions take any CUDA tensor that speaks DLPack (torch, cupy,
jax) without copying, run on the caller's current stream, and allocate outputs in the caller's
framework (torch or cupy; other frameworks pass `out=`). Names and arguments follow aiter's
`aiter/ops/mha.py`. flash_attn_func / flash_attn_varlen_func are differentiable through
torch.autograd when torch is installed (the backward runs mha_bwd / mha_varlen_bwd) and run the
v3 (Hopper) forward and backward where they support the call; fwd_kernel_name / bwd_kernel_name
say which instance would run.
"""

import sys as _sys

from .ops import (  # noqa: F401
    bwd_instances,
    bwd_kernel_name,
    flash_attn_func,
    flash_attn_varlen_func,
    fmha_v3_fwd,
    fmha_v3_varlen_fwd,
    fwd_instances,
    fwd_kernel_name,
    mha_bwd,
    mha_fwd,
    mha_fwd_splitkv,
    mha_varlen_bwd,
    mha_varlen_fwd,
)

if _sys.modules.get("torch") is not None:  # register the custom ops now, so that torch.compile never traces an import
    from . import _torch_ops  # noqa: F401
