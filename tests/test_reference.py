"""CPU reference (benchmark/reference/mha_fwd_ref.h) against an independent numpy float64 model.

The shim benchmark/reference/ref_capi.cpp is built with g++ into a tmp dir and called through
ctypes. The numpy model below writes its own mask rule from SPEC §2 (it does not use MaskSpec):
    top-left     keeps  i - left <= j <= i + right
    bottom-right keeps  i + (sk - sq) - left <= j <= i + (sk - sq) + right
    negative left/right = unbounded on that side; mask type 0 keeps everything.
"""
import ctypes
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "libmha_ref.so"
    cmd = ["g++", "-O2", "-std=c++20", "-shared", "-fPIC", "-I", str(ROOT / "src"),
           "-I", str(ROOT / "benchmark"), str(ROOT / "benchmark/reference/ref_capi.cpp"),
           "-o", str(out), "-pthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    so = ctypes.CDLL(str(out))
    P = ctypes.c_void_p
    so.mha_fwd_ref_c.restype = ctypes.c_int
    so.mha_fwd_ref_c.argtypes = [P, P, P, P, P,                     # q k v o lse
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_int64, ctypes.c_int64, ctypes.c_int,
                                 P, P, P, P,                        # seqstart q/k, seqlen q/k
                                 ctypes.c_float, ctypes.c_float, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                 P, ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    for f in (so.ref_float_to_bits_c, so.ref_bits_to_float_c):
        f.restype = None
        f.argtypes = [P, P, ctypes.c_int64, ctypes.c_int]
    return so


def ptr(a):
    return None if a is None else a.ctypes.data


# ---------------------------------------------------------------------------------------------
# problem construction: per-batch tensors scattered into flat buffers with real strides
# ---------------------------------------------------------------------------------------------
def layout_strides(bhsd, nhead, rows, dim, group):
    """(row, head, batch) strides of a [b,h,s,d] (bhsd) or [b,s,h,d] tensor; rows = physical
    rows of one batch (batch mode) or of all batches (group mode, batch stride 0)."""
    if bhsd:
        return dim, rows * dim, 0 if group else nhead * rows * dim
    return nhead * dim, dim, 0 if group else rows * nhead * dim


class Problem:
    def __init__(self, rng, *, batch, hq, hk, dq, dv, phys_q, phys_k, log_q=None, log_k=None,
                 group=False, iperm=True, operm=True, scale=None, cap=0.0, mask=(0, -1, -1),
                 p_round=0):
        self.batch, self.hq, self.hk, self.dq, self.dv = batch, hq, hk, dq, dv
        self.group, self.cap, self.mask, self.p_round = group, cap, mask, p_round
        self.scale = scale if scale is not None else 1.0 / np.sqrt(dq)
        self.phys_q = list(phys_q) if group else [phys_q] * batch
        self.phys_k = list(phys_k) if group else [phys_k] * batch
        self.log_q = list(log_q) if log_q is not None else None
        self.log_k = list(log_k) if log_k is not None else None
        if group:
            self.seqstart_q = np.concatenate([[0], np.cumsum(self.phys_q)]).astype(np.int32)
            self.seqstart_k = np.concatenate([[0], np.cumsum(self.phys_k)]).astype(np.int32)
            rows_q, rows_k, nb = int(self.seqstart_q[-1]), int(self.seqstart_k[-1]), 1
        else:
            self.seqstart_q = self.seqstart_k = None
            rows_q, rows_k, nb = phys_q, phys_k, batch
        self.rows_q, self.rows_k = rows_q, rows_k
        self.sq_ = layout_strides(iperm, hq, rows_q, dq, group)
        self.sk_ = layout_strides(iperm, hk, rows_k, dq, group)
        self.sv_ = layout_strides(iperm, hk, rows_k, dv, group)
        self.so_ = layout_strides(operm, hq, rows_q, dv, group)
        self.lse_ = (rows_q, 0 if group else hq * rows_q)  # nhead, batch strides
        # Fresh random data everywhere, padding included (the reference must ignore it).
        self.q = rng.uniform(-1, 1, nb * hq * rows_q * dq).astype(np.float32)
        self.k = rng.uniform(-1, 1, nb * hk * rows_k * dq).astype(np.float32)
        self.v = rng.uniform(-1, 1, nb * hk * rows_k * dv).astype(np.float32)
        self.o_size = nb * hq * rows_q * dv
        self.lse_size = nb * hq * rows_q

    def view(self, buf, strides, b, nhead, first_row, rows, dim):
        """[nhead, rows, dim] slice of batch b starting at physical row first_row."""
        rs, hs, bs = strides
        bb = 0 if self.group else b
        h = np.arange(nhead)[:, None, None]
        i = (first_row + np.arange(rows))[None, :, None]
        d = np.arange(dim)[None, None, :]
        return buf[bb * bs + h * hs + i * rs + d]

    def row0(self, b, which):
        if not self.group:
            return 0
        return int((self.seqstart_q if which == "q" else self.seqstart_k)[b])

    def logical(self, b):
        sq = self.log_q[b] if self.log_q is not None else self.phys_q[b]
        sk = self.log_k[b] if self.log_k is not None else self.phys_k[b]
        return sq, sk

    def lse_index(self, b, rows):
        hs, bs = self.lse_
        bb = 0 if self.group else b
        return bb * bs + np.arange(self.hq)[:, None] * hs + self.row0(b, "q") + np.arange(rows)[None, :]

    # -----------------------------------------------------------------------------------------
    def run_ref(self, lib, with_lse=True, num_threads=3):
        o = np.full(self.o_size, np.nan, np.float32)
        lse = np.full(self.lse_size, np.nan, np.float32) if with_lse else None
        strides = np.array([*self.sq_, *self.sk_, *self.sv_, *self.so_, *self.lse_], np.int64)
        i32 = lambda x: None if x is None else np.ascontiguousarray(x, np.int32)
        ssq, ssk, lq, lk = i32(self.seqstart_q), i32(self.seqstart_k), i32(self.log_q), i32(self.log_k)
        err = ctypes.create_string_buffer(512)
        rc = lib.mha_fwd_ref_c(ptr(self.q), ptr(self.k), ptr(self.v), ptr(o), ptr(lse),
                               self.batch, self.hq, self.hk, self.dq, self.dv,
                               self.phys_q[0] if not self.group else 0,
                               self.phys_k[0] if not self.group else 0, int(self.group),
                               ptr(ssq), ptr(ssk), ptr(lq), ptr(lk),
                               self.scale, self.cap, *self.mask, ptr(strides), self.p_round,
                               num_threads, err, 512)
        return rc, err.value.decode(), o, lse


# ---------------------------------------------------------------------------------------------
# independent numpy float64 model
# ---------------------------------------------------------------------------------------------
def keep_matrix(mask, sq, sk):
    mtype, left, right = mask
    i = np.arange(sq)[:, None]
    j = np.arange(sk)[None, :]
    if mtype == 0:
        return np.ones((sq, sk), bool)
    off = sk - sq if mtype == 2 else 0
    keep = np.ones((sq, sk), bool)
    if left >= 0:
        keep &= j >= i + off - left
    if right >= 0:
        keep &= j <= i + off + right
    return keep


def round_p(p, mode):
    if mode == 0:
        return p
    p32 = p.astype(np.float32)
    if mode == 1:
        return p32.astype(np.float16).astype(np.float64)
    u = p32.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return u.view(np.float32).astype(np.float64)


def numpy_attention(q, k, v, scale, cap, mask, p_round):
    """q [sq,dq], k [sk,dq], v [sk,dv] float64 -> o [sq,dv], lse [sq]."""
    sq, sk = q.shape[0], k.shape[0]
    s = scale * (q @ k.T)
    if cap > 0:
        s = cap * np.tanh(s / cap)
    keep = keep_matrix(mask, sq, sk)
    s = np.where(keep, s, -np.inf)
    o = np.zeros((sq, v.shape[1]))
    lse = np.full(sq, -np.inf)
    rows = keep.any(axis=1)
    if rows.any():
        sr = s[rows]
        m = sr.max(axis=1, keepdims=True)
        p = np.exp(sr - m)
        l = p.sum(axis=1, keepdims=True)
        o[rows] = (round_p(p, p_round) @ v) / l
        lse[rows] = (m + np.log(l))[:, 0]
    return o, lse


def check(prob, lib, with_lse=True, expect_masked_rows=False):
    rc, err, o, lse = prob.run_ref(lib, with_lse)
    assert rc == 0, err
    touched_o = np.zeros(prob.o_size, bool)
    saw_masked = False
    for b in range(prob.batch):
        sq, sk = prob.logical(b)
        qb = prob.view(prob.q, prob.sq_, b, prob.hq, prob.row0(b, "q"), sq, prob.dq).astype(np.float64)
        kb = prob.view(prob.k, prob.sk_, b, prob.hk, prob.row0(b, "k"), sk, prob.dq).astype(np.float64)
        vb = prob.view(prob.v, prob.sv_, b, prob.hk, prob.row0(b, "k"), sk, prob.dv).astype(np.float64)
        rs, hs, bs = prob.so_
        bb = 0 if prob.group else b
        oidx = (bb * bs + np.arange(prob.hq)[:, None, None] * hs
                + (prob.row0(b, "q") + np.arange(sq))[None, :, None] * rs
                + np.arange(prob.dv)[None, None, :])
        touched_o[oidx.ravel()] = True
        group_size = prob.hq // prob.hk
        for h in range(prob.hq):
            eo, el = numpy_attention(qb[h], kb[h // group_size], vb[h // group_size],
                                     prob.scale, prob.cap, prob.mask, prob.p_round)
            np.testing.assert_allclose(o[oidx[h]], eo, rtol=RTOL, atol=ATOL,
                                       err_msg=f"O mismatch batch {b} head {h}")
            masked = np.isneginf(el)
            saw_masked |= bool(masked.any())
            assert (o[oidx[h]][masked] == 0).all(), "fully masked rows must give O = 0"
            if with_lse:
                got = lse[prob.lse_index(b, sq)[h]]
                assert np.array_equal(np.isneginf(got), masked), f"LSE -inf rows, batch {b} head {h}"
                np.testing.assert_allclose(got[~masked], el[~masked], rtol=RTOL, atol=ATOL,
                                           err_msg=f"LSE mismatch batch {b} head {h}")
    # Everything outside the logical rows stays untouched (still the NaN sentinel).
    assert np.isnan(o[~touched_o]).all()
    assert not np.isnan(o[touched_o]).any()
    if expect_masked_rows:
        assert saw_masked, "test case was meant to contain fully masked rows"
    return o, lse


# ---------------------------------------------------------------------------------------------
MASKS = {
    "none": (0, -1, -1),
    "causal_tl": (1, -1, 0),
    "causal_br": (2, -1, 0),
    "window_tl": (1, 5, 3),
    "window_br": (2, 4, 35),
    "left_only_tl": (1, 3, -1),
    "right_only_br": (2, -1, 2),
    "generic_g3_2": (3, 2, 1),     # CLI g:3,2 -> left = y-1, right = x-1
    "zero_window": (1, 0, 0),      # diagonal only
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("shape", [(17, 23), (23, 17), (1, 40), (33, 33)])
def test_masks_batch_mode(lib, mask, shape):
    rng = np.random.default_rng(zlib.crc32(f"{mask}{shape}".encode()))
    sq, sk = shape
    prob = Problem(rng, batch=2, hq=3, hk=3, dq=16, dv=24, phys_q=sq, phys_k=sk, mask=MASKS[mask])
    check(prob, lib)


@pytest.mark.parametrize("iperm,operm", [(True, True), (False, False), (True, False), (False, True)])
@pytest.mark.parametrize("hq,hk", [(6, 2), (4, 1), (2, 2)])
def test_gqa_and_layouts(lib, iperm, operm, hq, hk):
    rng = np.random.default_rng(7 + hq * 10 + hk + 100 * iperm + 1000 * operm)
    prob = Problem(rng, batch=2, hq=hq, hk=hk, dq=32, dv=8, phys_q=19, phys_k=29,
                   iperm=iperm, operm=operm, mask=MASKS["causal_br"])
    check(prob, lib)


@pytest.mark.parametrize("mask", ["none", "causal_br", "window_tl", "generic_g3_2"])
@pytest.mark.parametrize("perm", [True, False])
def test_group_mode_with_padding(lib, mask, perm):
    rng = np.random.default_rng(11 + perm)
    prob = Problem(rng, batch=3, hq=4, hk=2, dq=24, dv=16, group=True,
                   phys_q=[5, 12, 9], phys_k=[32, 7, 20], log_q=[5, 10, 1], log_k=[10, 7, 0],
                   iperm=perm, operm=not perm, mask=MASKS[mask])
    check(prob, lib)


def test_batch_mode_logical_k_padding(lib):
    rng = np.random.default_rng(5)
    prob = Problem(rng, batch=2, hq=2, hk=1, dq=16, dv=16, phys_q=1, phys_k=32, log_k=[10, 3],
                   mask=MASKS["causal_br"])
    check(prob, lib)


@pytest.mark.parametrize("group", [False, True])
def test_seqlen_k_zero(lib, group):
    rng = np.random.default_rng(3)
    kw = dict(phys_q=[33, 4], phys_k=[0, 0]) if group else dict(phys_q=33, phys_k=0)
    prob = Problem(rng, batch=2, hq=2, hk=1, dq=16, dv=8, group=group, mask=MASKS["causal_br"], **kw)
    o, lse = check(prob, lib, expect_masked_rows=True)
    assert (o == 0).all() and np.isneginf(lse).all()


@pytest.mark.parametrize("m", [(2, -1, 0), (2, 2, 1), (2, 0, 0), (1, 3, -1)])
def test_fully_masked_rows(lib, m):
    # sq = 20 > sk = 8. Bottom-right kinds: the first rows see nothing. Top-left window with
    # left = 3 (right unbounded): rows i >= 11 start past the last key and see nothing.
    rng = np.random.default_rng(9)
    prob = Problem(rng, batch=2, hq=2, hk=2, dq=8, dv=8, phys_q=20, phys_k=8, mask=m)
    check(prob, lib, expect_masked_rows=True)


@pytest.mark.parametrize("cap", [0.5, 3.0])
def test_soft_cap(lib, cap):
    rng = np.random.default_rng(int(cap * 10))
    prob = Problem(rng, batch=2, hq=2, hk=1, dq=64, dv=32, phys_q=21, phys_k=37, cap=cap,
                   scale=1.3, mask=MASKS["window_tl"])
    check(prob, lib)


@pytest.mark.parametrize("p_round", [1, 2])
def test_p_rounding(lib, p_round):
    rng = np.random.default_rng(20 + p_round)
    prob = Problem(rng, batch=1, hq=2, hk=2, dq=32, dv=32, phys_q=16, phys_k=50, scale=2.0,
                   p_round=p_round)
    check(prob, lib)


def test_without_lse_and_single_thread(lib):
    rng = np.random.default_rng(1)
    prob = Problem(rng, batch=3, hq=2, hk=1, dq=16, dv=16, phys_q=9, phys_k=9, mask=MASKS["causal_tl"])
    check(prob, lib, with_lse=False)
    rc, err, o1, l1 = prob.run_ref(lib, True, num_threads=1)
    rc2, _, o2, l2 = prob.run_ref(lib, True, num_threads=8)
    assert rc == 0 and rc2 == 0
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(l1, l2)


def test_bad_arguments_are_reported(lib):
    rng = np.random.default_rng(2)
    prob = Problem(rng, batch=1, hq=3, hk=2, dq=8, dv=8, phys_q=4, phys_k=4)
    rc, err, _, _ = prob.run_ref(lib)
    assert rc == -1 and "nhead_q" in err
    prob = Problem(rng, batch=1, hq=2, hk=2, dq=8, dv=8, phys_q=4, phys_k=4, log_k=[5])
    rc, err, _, _ = prob.run_ref(lib)
    assert rc == -1 and "logical" in err


# ---------------------------------------------------------------------------------------------
# half_types.h
# ---------------------------------------------------------------------------------------------
def _to_bits(lib, x, t):
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty(x.size, np.uint16)
    lib.ref_float_to_bits_c(ptr(x), ptr(out), x.size, t)
    return out


def _to_float(lib, bits, t):
    bits = np.ascontiguousarray(bits, np.uint16)
    out = np.empty(bits.size, np.float32)
    lib.ref_bits_to_float_c(ptr(bits), ptr(out), bits.size, t)
    return out


def test_fp16_conversions_match_numpy(lib):
    all_bits = np.arange(65536, dtype=np.uint16)
    want = all_bits.view(np.float16).astype(np.float32)
    got = _to_float(lib, all_bits, 0)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.standard_normal(200000).astype(np.float32) * np.float32(2.0) ** rng.integers(-30, 18, 200000),
        want[~nan],                                   # exact values
        (want[~nan][:-1] + want[~nan][1:]) / 2,       # ties (incl. subnormal and overflow ties)
        np.array([65504, 65519.99, 65520, 1e9, -1e9, 2.0**-25, 2.0**-24 * 1.5, 1e-30, 0.0, -0.0,
                  np.inf, -np.inf], np.float32)]).astype(np.float32)
    x = x[np.isfinite(x) | np.isinf(x)]
    got = _to_bits(lib, x, 0)
    with np.errstate(over="ignore"):
        want_bits = x.astype(np.float16).view(np.uint16)
    bad = np.nonzero(got != want_bits)[0]
    assert bad.size == 0, [(float(x[i]), hex(got[i]), hex(want_bits[i])) for i in bad[:5]]
    assert np.isnan(_to_float(lib, _to_bits(lib, np.array([np.nan], np.float32), 0), 0)).all()


def test_bf16_conversions(lib):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(100000) * 10.0 ** rng.integers(-30, 30, 100000)).astype(np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    want = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    got = _to_bits(lib, x, 1)
    assert np.array_equal(got, want)
    # exact ties: lower half exactly 0x8000
    t = (np.arange(1, 2000, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    gt = _to_bits(lib, t, 1)
    hi = np.arange(1, 2000, dtype=np.uint32)
    assert np.array_equal(gt, np.where(hi & 1, hi + 1, hi).astype(np.uint16))
    back = _to_float(lib, got, 1)
    assert np.array_equal(back.view(np.uint32), got.astype(np.uint32) << 16)
    assert np.isnan(_to_float(lib, _to_bits(lib, np.array([np.nan], np.float32), 1), 1)).all()
