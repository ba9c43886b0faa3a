"""Reference attention in jnp for the JAX tests (the CPU stand-ins of tests/test_jax.py, the GPU
checks of test_jax_gpu.py): in fp32 (`upcast=True`) or in the inputs' precision. Masks as in
attn_ref.py, bottom-right aligned: row i keeps keys j with
    i + sk - sq - left <= j <= i + sk - sq + right   (a negative bound is unbounded)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def visible(sq: int, sk: int, left: int, right: int) -> np.ndarray:
    i, j = np.arange(sq)[:, None], np.arange(sk)[None, :]
    keep = np.ones((sq, sk), bool)
    if left >= 0:
        keep &= j >= i + sk - sq - left
    if right >= 0:
        keep &= j <= i + sk - sq + right
    return keep


def attention(q, k, v, scale, left=-1, right=-1, softcap=0.0, upcast=True):
    """q [b, sq, hq, d], k [b, sk, hk, d], v [b, sk, hk, dv] -> (out [b, sq, hq, dv] fp32, lse [b, hq, sq])."""
    dt = jnp.float32 if upcast else q.dtype
    g = q.shape[2] // k.shape[2]
    qf, kf, vf = q.astype(dt), jnp.repeat(k.astype(dt), g, axis=2), jnp.repeat(v.astype(dt), g, axis=2)
    s = jnp.einsum("bqhd,bkhd->bhqk", qf, kf).astype(jnp.float32) * scale
    if softcap:
        s = softcap * jnp.tanh(s / softcap)
    s = jnp.where(visible(q.shape[1], k.shape[1], left, right), s, -jnp.inf)
    lse = jax.nn.logsumexp(s, axis=-1)
    p = jax.nn.softmax(s, axis=-1).astype(dt)
    return jnp.einsum("bhqk,bkhd->bqhd", p, vf).astype(jnp.float32), lse
