"""GPU: aiter_mha.jax.flash_attn inside jax.jit (XLA FFI custom calls on JAX's stream) against a
jnp reference: the forward, the LSE and jax.grad, with the pass rule of test_mha.py
(max|ours - ref| <= factor * max|same math in the input precision - ref| + eps)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch in this process
jax = pytest.importorskip("jax", reason="the JAX tests need jax")
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jax_ref  # noqa: E402


@pytest.fixture(scope="module")
def aj(aiter_mha, python_build):
    if not (python_build / "libaiter_mha_jax.so").is_file():
        pytest.skip(f"libaiter_mha_jax.so is not in {python_build}: build with compile.py --python --jax")
    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip(f"jax sees no GPU: {jax.devices()}")
    import aiter_mha.jax as mod  # noqa: PLC0415

    return mod


def _ref(q, k, v, causal, window, upcast=True):
    return jax_ref.attention(q, k, v, 1 / np.sqrt(q.shape[3]), window[0], 0 if causal else window[1], upcast=upcast)


def _err(a, b):
    return float(jnp.max(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32))))


CASES = [(2, 113, 203, 4, 4, 64, 64, True, (-1, -1)), (1, 300, 300, 8, 2, 128, 128, False, (64, 16)),
         (2, 1, 147, 4, 1, 128, 128, True, (-1, -1)), (1, 257, 129, 4, 2, 192, 128, False, (-1, -1))]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "b{}-s{}x{}-h{}x{}-d{}x{}-{}".format(
    *c[:7], "causal" if c[7] else f"w{c[8][0]}_{c[8][1]}"))
def test_flash_attn_forward_and_grad_under_jit(aj, dtype, case):
    b, sq, sk, hq, hk, d, dv, causal, window = case
    keys = jax.random.split(jax.random.PRNGKey(sq * 7 + sk), 4)
    dt = getattr(jnp, dtype)
    q = jax.random.normal(keys[0], (b, sq, hq, d), jnp.float32).astype(dt)
    k = jax.random.normal(keys[1], (b, sk, hk, d), jnp.float32).astype(dt)
    v = jax.random.normal(keys[2], (b, sk, hk, dv), jnp.float32).astype(dt)
    dout = jax.random.normal(keys[3], (b, sq, hq, dv), jnp.float32).astype(dt)

    fwd = jax.jit(lambda q, k, v: aj.flash_attn(q, k, v, causal=causal, window_size=window, return_lse=True))
    out, lse = fwd(q, k, v)
    ref, lse_ref = _ref(q, k, v, causal, window)
    pt, _ = _ref(q, k, v, causal, window, upcast=False)
    assert out.dtype == dt and out.shape == (b, sq, hq, dv)
    assert _err(out, ref) <= 2 * _err(pt, ref) + 1e-5
    finite = np.isfinite(np.asarray(lse_ref))
    assert np.array_equal(np.isfinite(np.asarray(lse)), finite)
    assert float(np.max(np.abs(np.asarray(lse)[finite] - np.asarray(lse_ref)[finite]), initial=0)) <= 1e-3

    def vjp_of(fn, *xs):
        _, pull = jax.vjp(fn, *xs[:3])
        return pull(xs[3])

    grads = jax.jit(lambda *xs: vjp_of(lambda q, k, v: aj.flash_attn(q, k, v, causal=causal, window_size=window),
                                       *xs))(q, k, v, dout)
    f32 = [x.astype(jnp.float32) for x in (q, k, v, dout)]
    refs = vjp_of(lambda q, k, v: _ref(q, k, v, causal, window)[0], *f32)
    pts = vjp_of(lambda q, k, v: _ref(q, k, v, causal, window, upcast=False)[0].astype(dt), q, k, v, dout)
    for name, g, r, p in zip(("dq", "dk", "dv"), grads, refs, pts):
        assert g.dtype == dt
        assert _err(g, r) <= 3 * _err(p, r) + 1e-4, name


def test_deterministic_backward_is_bitwise_reproducible(aj):
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    q, k, v = (jax.random.normal(kk, (2, 500, 8, 128), jnp.float32).astype(jnp.bfloat16) for kk in keys)
    grad = jax.jit(jax.grad(lambda q, k, v: aj.flash_attn(q, k, v, causal=True, deterministic=True)
                            .astype(jnp.float32).sum(), argnums=(0, 1, 2)))
    first = grad(q, k, v)
    for _ in range(3):
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, grad(q, k, v)))


def test_unsupported_call_raises_with_the_reason(aj):
    q = jnp.zeros((1, 16, 2, 512), jnp.bfloat16)
    with pytest.raises(Exception, match="aiter_mha: no compiled forward kernel supports this call"):
        jax.block_until_ready(jax.jit(aj.flash_attn)(q, q, q))
