"""aiter_mha.jax on a CPU machine (skipped without jax): `compile.py --jax` (part of the
session's ci build, tests/conftest.py) builds libaiter_mha_jax.so with both FFI handlers; the handlers register with JAX for the CUDA
platform; flash_attn and its gradient lower (for CUDA, from this CPU machine) to the custom
calls aiter_mha_fwd / aiter_mha_bwd with the attributes the handlers read; and the custom_vjp
wiring gives the gradients of jnp attention when the two calls are replaced by jnp stand-ins.
The kernels themselves under jax.jit: tests/gpu/test_jax_gpu.py."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

jax = pytest.importorskip("jax", reason="the JAX tests need jax")
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from conftest import CI_BUILD_ARGS, REPO  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "gpu"))
import jax_ref  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jax_mod(ci_build):
    assert "--jax" in CI_BUILD_ARGS  # the session's ci build has libaiter_mha_jax.so (conftest.py)
    assert (ci_build / "libaiter_mha_jax.so").is_file()
    os.environ["AITER_MHA_LIB_DIR"] = str(ci_build)
    sys.path.insert(0, str(REPO / "python"))
    import aiter_mha.jax as aj  # noqa: PLC0415

    return aj


def test_library_exports_both_handlers(jax_mod, ci_build):
    syms = subprocess.run(["nm", "-D", "--defined-only", str(ci_build / "libaiter_mha_jax.so")], capture_output=True,
                          text=True).stdout
    assert " T AiterMhaFwd" in syms and " T AiterMhaBwd" in syms, syms
    jax_mod._register()  # loads it and registers both targets for CUDA


def _lowered(fn, *args):
    return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


def _calls(text, target):
    return [line for line in text.splitlines() if f"custom_call @{target}(" in line]


def test_forward_and_gradient_lower_to_the_custom_calls(jax_mod):
    q = jnp.zeros((2, 40, 8, 64), jnp.bfloat16)
    k = jnp.zeros((2, 70, 2, 64), jnp.bfloat16)
    v = jnp.zeros((2, 70, 2, 32), jnp.bfloat16)
    fwd = _lowered(lambda q, k, v: jax_mod.flash_attn(q, k, v, window_size=(16, 4), softmax_scale=0.5), q, k, v)
    (call,) = _calls(fwd, "aiter_mha_fwd")
    for attr in ("mask_type = 2 : i32", "window_left = 16 : i32", "window_right = 4 : i32", "scale = 5.000000e-01",
                 "use_v3 = 1 : i32"):
        assert attr in call, call
    assert "tensor<2x40x8x32xbf16>" in call and "tensor<2x8x40xf32>" in call, call
    assert not _calls(fwd, "aiter_mha_bwd")

    def loss(q, k, v):
        return jax_mod.flash_attn(q, k, v, causal=True, deterministic=True).astype(jnp.float32).sum()

    bwd = _lowered(jax.grad(loss, argnums=(0, 1, 2)), q, k, v)
    (call,) = _calls(bwd, "aiter_mha_bwd")
    for attr in ("mask_type = 2 : i32", "window_left = -1 : i32", "window_right = 0 : i32", "deterministic = 1 : i32",
                 f"scale = {1 / math.sqrt(64):.6e}"):
        assert attr in call, call
    assert "tensor<2x40x8x64xbf16>, tensor<2x70x2x64xbf16>, tensor<2x70x2x32xbf16>" in call, call


# ---- custom_vjp wiring with jnp stand-ins for the two calls ---------------------------------


def _ref(q, k, v, opts):
    """The calls' contract in jnp: (out in q's dtype, lse)."""
    out, lse = jax_ref.attention(q, k, v, opts.scale, opts.mask[1], opts.mask[2], opts.softcap)
    return out.astype(q.dtype), lse


def _ref_bwd(dout, q, k, v, out, lse, opts):
    _, vjp = jax.vjp(lambda q, k, v: _ref(q, k, v, opts)[0], q, k, v)
    return vjp(dout)


def test_gradients_through_the_custom_vjp(jax_mod, monkeypatch):
    monkeypatch.setattr(jax_mod, "_fwd_call", _ref)
    monkeypatch.setattr(jax_mod, "_bwd_call", _ref_bwd)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q = jax.random.normal(keys[0], (2, 13, 4, 16), jnp.float32)
    k = jax.random.normal(keys[1], (2, 21, 2, 16), jnp.float32)
    v = jax.random.normal(keys[2], (2, 21, 2, 8), jnp.float32)
    w = jax.random.normal(keys[3], (2, 13, 4, 8), jnp.float32)
    opts = jax_mod._Opts(0.3, (2, 5, 0), 0.0, False)

    def ours(q, k, v):
        out, lse = jax_mod.flash_attn(q, k, v, softmax_scale=0.3, causal=True, window_size=(5, 0), return_lse=True)
        return (out * w).sum() + lse.sum()  # the LSE term has no gradient (stop_gradient)

    def plain(q, k, v):
        out, lse = _ref(q, k, v, opts)
        return (out * w).sum() + jax.lax.stop_gradient(lse).sum()

    # _check refuses float32; the stand-ins don't care, so call the custom_vjp function itself
    monkeypatch.setattr(jax_mod, "_check", lambda *a: None)
    got = jax.jit(jax.grad(ours, argnums=(0, 1, 2)))(q, k, v)
    want = jax.grad(plain, argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_softcap_gradient_refused_and_bad_input_named(jax_mod):
    q = jnp.zeros((1, 8, 2, 64), jnp.float16)
    with pytest.raises(NotImplementedError, match="softcap"):
        jax.jit(jax.grad(lambda q: jax_mod.flash_attn(q, q, q, softcap=5.0).astype(jnp.float32).sum())).trace(q)
    with pytest.raises(ValueError, match="q: expected dtype float16 or bfloat16"):
        jax_mod.flash_attn(q.astype(jnp.float32), q, q)
    with pytest.raises(ValueError, match="nhead_k: expected a divisor of nhead_q"):
        jax_mod.flash_attn(jnp.zeros((1, 8, 3, 64), jnp.float16), q, q)
    with pytest.raises(ValueError, match="k: expected 4 dimensions"):
        jax_mod.flash_attn(q, q[0], q)
