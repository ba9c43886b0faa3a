"""Hugging Face transformers attention implementation "aiter_mha".

    import aiter_mha.integrations.transformers  # registers it
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="aiter_mha", dtype=torch.bfloat16)

Importing this module registers the attention function with transformers' AttentionInterface and
the mask builder FlashAttention-2 uses (a 2-D padding mask, or None when nothing is padded) with
AttentionMaskInterface. Calls without padding run flash_attn_func on the [b, s, h, d] views;
padded batches are unpadded into flash_attn_varlen_func (the query rows are the last s_q columns
of the mask, so left-padded generation with a KV cache works); packed sequences given as
cu_seq_lens_q / cu_seq_lens_k (transformers' DataCollatorWithFlattening) go to varlen directly.
Causal masks are bottom-right aligned, as in FlashAttention; sliding_window = W keeps the W most
recent keys (window_size (W - 1, 0)); softcap runs in the forward (its gradient is not built yet:
the backward raises). Dropout during training and attention sinks (s_aux) raise
NotImplementedError; fp32 activations are cast to the autocast dtype when autocast is on and
refused otherwise."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

from ..ops import flash_attn_func, flash_attn_varlen_func

NAME = "aiter_mha"


def _half(x: torch.Tensor) -> torch.Tensor:
    if x.dtype in (torch.float16, torch.bfloat16):
        return x
    if x.dtype == torch.float32 and torch.is_autocast_enabled(x.device.type):
        return x.to(torch.get_autocast_dtype(x.device.type))
    raise ValueError(f"attn_implementation={NAME!r}: expected float16 or bfloat16 activations, got {x.dtype}; "
                     f"load the model with dtype=torch.bfloat16 (or float16) or run it under torch.autocast")


def _cu_seqlens(lengths: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))


def aiter_mha_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                                value: torch.Tensor, attention_mask: Optional[torch.Tensor], dropout: float = 0.0,
                                scaling: Optional[float] = None, sliding_window: Optional[int] = None,
                                softcap: Optional[float] = None, is_causal: Optional[bool] = None,
                                s_aux: Optional[torch.Tensor] = None, **kwargs) -> Tuple[torch.Tensor, None]:
    """query [b, hq, sq, d], key/value [b, hk, sk, d|dv] (transformers' layout); attention_mask: the
    2-D padding mask of flash_attention_mask ([b, sk], True = keep) or None. Returns
    (out [b, sq, hq, dv], None)."""
    if dropout and module.training:
        raise NotImplementedError(f"attn_implementation={NAME!r}: attention dropout is not supported yet "
                                  f"(attention_dropout={dropout}); set it to 0")
    if s_aux is not None:
        raise NotImplementedError(f"attn_implementation={NAME!r}: attention sinks (s_aux) are not supported yet")
    dtype = query.dtype
    q, k, v = (_half(x).transpose(1, 2) for x in (query, key, value))
    k, v = k.to(q.dtype), v.to(q.dtype)
    causal = bool(is_causal if is_causal is not None else getattr(module, "is_causal", True))
    window = (sliding_window - 1, 0 if causal else sliding_window - 1) if sliding_window else (-1, -1)
    opts = dict(softmax_scale=scaling, causal=causal, window_size=window, softcap=float(softcap or 0.0),
                deterministic=bool(kwargs.get("deterministic") or False))
    b, sq = q.shape[0], q.shape[1]

    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is not None and cu_k is not None and b == 1:  # packed sequences: one row holds them all
        out = flash_attn_varlen_func(q[0], k[0], v[0], cu_q.to(torch.int32), cu_k.to(torch.int32),
                                     int(kwargs["max_length_q"]), int(kwargs["max_length_k"]), **opts)
        return out.unsqueeze(0).to(dtype), None
    if attention_mask is None:
        return flash_attn_func(q, k, v, **opts).to(dtype), None

    mask_k = attention_mask.bool()
    mask_q = mask_k[:, -sq:]
    idx_q = mask_q.flatten().nonzero().squeeze(1)
    idx_k = mask_k.flatten().nonzero().squeeze(1)
    lens_q, lens_k = mask_q.sum(1, dtype=torch.int32), mask_k.sum(1, dtype=torch.int32)
    max_q, max_k = (int(x) for x in torch.stack([lens_q.max(), lens_k.max()]).tolist())
    flat = lambda x: x.flatten(0, 1)  # noqa: E731  [b, s, h, d] -> [b*s, h, d]
    out = flash_attn_varlen_func(flat(q)[idx_q], flat(k)[idx_k], flat(v)[idx_k], _cu_seqlens(lens_q),
                                 _cu_seqlens(lens_k), max(max_q, 1), max_k, **opts)
    full = out.new_zeros((b * sq,) + tuple(out.shape[1:]))
    full = full.index_copy(0, idx_q, out)  # padded query rows stay zero
    return full.unflatten(0, (b, sq)).to(dtype), None


def register(name: str = NAME) -> None:
    """Registers the attention function and its mask builder under `name` (done on import)."""
    AttentionInterface.register(name, aiter_mha_attention_forward)
    AttentionMaskInterface.register(name, flash_attention_mask)


register()
