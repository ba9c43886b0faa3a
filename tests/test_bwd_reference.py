"""CPU backward reference (benchmark/reference/mha_bwd_ref.h) against numpy float64.

Two independent checks on tiny shapes, through the ctypes shim benchmark/reference/ref_bwd_capi.cpp:
  * an analytic numpy model (softmax backward written from the formulas, its own mask rule from
    SPEC §2, GQA by summing over the q heads of a kv head);
  * central finite differences of L = Σ O ∘ dO with O = softmax(scale·Q Kᵀ + mask) V (numpy),
    which needs no backward formula at all. The reference takes O as given (D = rowsum(dO∘O)),
    so it is fed the exact O of the same inputs.
"""
import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("bwdref") / "libmha_bwd_ref.so"
    cmd = ["g++", "-O2", "-std=c++20", "-shared", "-fPIC", "-I", str(ROOT / "src"), "-I", str(ROOT / "benchmark"),
           str(ROOT / "benchmark/reference/ref_bwd_capi.cpp"), "-o", str(out), "-pthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    so = ctypes.CDLL(str(out))
    P = ctypes.c_void_p
    so.mha_bwd_ref_c.restype = ctypes.c_int
    so.mha_bwd_ref_c.argtypes = [P] * 8 + [ctypes.c_int] * 5 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_float,
                                                                  ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                                  ctypes.c_char_p, ctypes.c_int]
    return so


def keep_mask(sq, sk, mask_type, left, right):
    i = np.arange(sq)[:, None]
    j = np.arange(sk)[None, :]
    if mask_type == 0:
        return np.ones((sq, sk), bool)
    off = sk - sq if mask_type == 2 else 0
    keep = np.ones((sq, sk), bool)
    if left >= 0:
        keep &= j >= i + off - left
    if right >= 0:
        keep &= j <= i + off + right
    return keep


def forward(q, k, v, scale, keep):
    """q [h,sq,d], k/v [h,sq,d] (already expanded to q heads). Returns O, P (float64)."""
    s = scale * np.einsum("hid,hjd->hij", q, k)
    s = np.where(keep, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(keep, np.exp(s - m), 0.0)
    l = e.sum(-1, keepdims=True)
    p = np.where(l > 0, e / np.where(l > 0, l, 1.0), 0.0)
    return np.einsum("hij,hjd->hid", p, v), p


def run_ref(lib, q, k, v, o, do, scale, mask):
    b, hq, sq, d = q.shape
    _, hk, sk, dv_ = v.shape
    f32 = [np.ascontiguousarray(x, np.float32) for x in (q, k, v, o, do)]
    dq = np.zeros(q.shape, np.float32)
    dk = np.zeros(k.shape, np.float32)
    dv = np.zeros(v.shape, np.float32)
    err = ctypes.create_string_buffer(256)
    rc = lib.mha_bwd_ref_c(*[x.ctypes.data for x in f32], dq.ctypes.data, dk.ctypes.data, dv.ctypes.data,
                           b, hq, hk, d, dv_, sq, sk, scale, *mask, err, 256)
    assert rc == 0, err.value
    return dq, dk, dv


def numpy_bwd(q, k, v, do, scale, keep):
    """Analytic float64 gradients for one batch: q [hq,sq,d], k/v [hk,sk,·]."""
    r = q.shape[0] // k.shape[0]
    ke, ve = np.repeat(k, r, 0), np.repeat(v, r, 0)
    o, p = forward(q, ke, ve, scale, keep)
    dv = np.einsum("hij,hid->hjd", p, do)
    dp = np.einsum("hid,hjd->hij", do, ve)
    ds = p * (dp - (do * o).sum(-1, keepdims=True))
    dq = scale * np.einsum("hij,hjd->hid", ds, ke)
    dk = scale * np.einsum("hij,hid->hjd", ds, q)
    fold = lambda x: x.reshape(k.shape[0], r, *x.shape[1:]).sum(1)
    return o, dq, fold(dk), fold(dv)


CASES = [  # b, hq, hk, sq, sk, d, dv, mask (type, left, right)
    (1, 2, 2, 5, 7, 4, 3, (0, -1, -1)),
    (2, 4, 2, 6, 6, 8, 8, (1, -1, 0)),
    (1, 3, 1, 7, 4, 5, 6, (2, -1, 0)),
    (2, 2, 1, 9, 11, 4, 4, (1, 2, 1)),
    (1, 2, 1, 4, 9, 3, 5, (2, 1, 2)),   # rows with no visible key (bottom-right window)
]


@pytest.mark.parametrize("case", CASES)
def test_reference_matches_numpy_analytic(lib, case):
    b, hq, hk, sq, sk, d, dv_, mask = case
    rng = np.random.default_rng(hash(case) % 2**32)
    q = rng.uniform(-1, 1, (b, hq, sq, d)).astype(np.float32)
    k = rng.uniform(-1, 1, (b, hk, sk, d)).astype(np.float32)
    v = rng.uniform(-1, 1, (b, hk, sk, dv_)).astype(np.float32)
    do = rng.uniform(-1, 1, (b, hq, sq, dv_)).astype(np.float32)
    scale = 1.0 / np.sqrt(d)
    keep = keep_mask(sq, sk, *mask)
    o = np.zeros((b, hq, sq, dv_), np.float64)
    want = []
    for bi in range(b):
        o[bi], *g = numpy_bwd(q[bi].astype(np.float64), k[bi].astype(np.float64), v[bi].astype(np.float64),
                              do[bi].astype(np.float64), scale, keep)
        want.append(g)
    dq, dk, dv = run_ref(lib, q, k, v, o, do, scale, mask)
    for bi in range(b):
        np.testing.assert_allclose(dq[bi], want[bi][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dk[bi], want[bi][1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dv[bi], want[bi][2], rtol=1e-5, atol=1e-6)
    if not keep.any(axis=1).all():  # rows that see nothing have dQ = 0
        assert np.all(dq[:, :, ~keep.any(axis=1)] == 0)


def test_reference_matches_finite_differences(lib):
    rng = np.random.default_rng(7)
    b, hq, hk, sq, sk, d, dv_ = 1, 2, 1, 4, 5, 3, 2
    mask = (2, 2, 0)
    keep = keep_mask(sq, sk, *mask)
    scale = 0.7
    q = rng.uniform(-1, 1, (b, hq, sq, d))
    k = rng.uniform(-1, 1, (b, hk, sk, d))
    v = rng.uniform(-1, 1, (b, hk, sk, dv_))
    do = rng.uniform(-1, 1, (b, hq, sq, dv_))

    def loss(q_, k_, v_):
        o, _ = forward(q_[0], np.repeat(k_[0], hq // hk, 0), np.repeat(v_[0], hq // hk, 0), scale, keep)
        return float((o * do[0]).sum())

    def fd(x, which):
        g = np.zeros_like(x)
        eps = 1e-6
        for idx in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            args_p = [q, k, v]
            args_m = [q, k, v]
            args_p[which], args_m[which] = xp, xm
            g[idx] = (loss(*args_p) - loss(*args_m)) / (2 * eps)
        return g

    # float32 inputs: use values exactly representable so the shim sees the same problem
    q, k, v, do = (x.astype(np.float32).astype(np.float64) for x in (q, k, v, do))
    o, _ = forward(q[0], np.repeat(k[0], hq // hk, 0), np.repeat(v[0], hq // hk, 0), scale, keep)
    dq, dk, dv = run_ref(lib, q, k, v, o[None], do, scale, mask)
    np.testing.assert_allclose(dq, fd(q, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dk, fd(k, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dv, fd(v, 2), rtol=1e-4, atol=1e-5)
