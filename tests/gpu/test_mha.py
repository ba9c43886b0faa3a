"""GPU: aiter_mha.mha_fwd / fmha_v3_fwd against an fp32 torch reference (after aiter's
op_tests/test_mha.py). Pass rule: max|out - ref| <= 2 * max|out_pt - ref| + eps, where out_pt
is the same math in the input precision; LSE within 1e-3 of the fp32 LSE. Outputs are poisoned
(NaN) before every call.
Backward (mha_bwd, flash_attn_func under torch.autograd): max|grad - ref| <= 3 * max|grad_pt - ref|
+ eps, ref by autograd of the fp32 reference, grad_pt by autograd of the same math in the input
precision."""

from __future__ import annotations

import itertools
import zlib

import pytest

torch = pytest.importorskip("torch", reason="the GPU tests compare against torch")
from attn_ref import assert_close_to_ref, assert_lse_close, attention_grads_ref, attention_ref  # noqa: E402

HDIMS = [32, 40, 59, 64, 96, 111, 128, 160, 192, 224, 256, (192, 128)]
SEQLENS = [(113, 203), (128, 217), (113, 211), (108, 256), (256, 512), (512, 256), (1024, 1024),
           (1023, 1024), (1024, 1023), (2048, 2048), (1, 147)]
LAYOUTS = ["BSHD", "BHSD", "SBHD", "KVPACKED"]
DTYPES = ["float16", "bfloat16"]
HEADS = [(4, 4), (4, 2), (4, 1)]  # MHA, GQA, MQA
MASKS = [("none", False, (-1, -1)), ("causal", True, (-1, -1)), ("local", False, (64, 16))]


def _cases():
    out = []
    for n, (layout, dtype, hd, sl) in enumerate(itertools.product(LAYOUTS, DTYPES, HDIMS, SEQLENS)):
        d, dv = hd if isinstance(hd, tuple) else (hd, hd)
        if layout == "KVPACKED" and d != dv:
            continue
        heads = HEADS[n % 3]
        mask = MASKS[(n // 3) % 3]
        v3 = n % 2 == 1
        out.append(pytest.param(layout, dtype, d, dv, sl, heads, mask, v3,
                                id=f"{layout}-{dtype}-d{d}x{dv}-s{sl[0]}x{sl[1]}-h{heads[0]}x{heads[1]}-{mask[0]}"
                                   + ("-v3" if v3 else "")))
    return out


def make_qkv(layout, dtype, b, sq, sk, hq, hk, d, dv, gen):
    dt = getattr(torch, dtype)
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda", dtype=torch.float32).to(dt)  # noqa: E731
    if layout == "BSHD":
        return r(b, sq, hq, d), r(b, sk, hk, d), r(b, sk, hk, dv)
    if layout == "BHSD":
        return r(b, hq, sq, d).transpose(1, 2), r(b, hk, sk, d).transpose(1, 2), r(b, hk, sk, dv).transpose(1, 2)
    if layout == "SBHD":
        return r(sq, b, hq, d).transpose(0, 1), r(sk, b, hk, d).transpose(0, 1), r(sk, b, hk, dv).transpose(0, 1)
    kv = r(b, sk, 2, hk, d)
    return r(b, sq, hq, d), kv[:, :, 0], kv[:, :, 1]


@pytest.mark.parametrize("layout,dtype,d,dv,seqlens,heads,mask,v3", _cases())
def test_mha_fwd(aiter_mha, layout, dtype, d, dv, seqlens, heads, mask, v3):
    gen = torch.Generator(device="cuda").manual_seed(zlib.crc32(repr((layout, dtype, d, dv, seqlens, heads)).encode()))
    b, (sq, sk), (hq, hk) = 2, seqlens, heads
    q, k, v = make_qkv(layout, dtype, b, sq, sk, hq, hk, d, dv, gen)
    _, causal, window = mask
    out = torch.full((b, sq, hq, dv), float("nan"), dtype=q.dtype, device="cuda")
    fn = aiter_mha.fmha_v3_fwd if v3 else aiter_mha.mha_fwd
    kwargs = dict(is_causal=causal, window_size_left=window[0], window_size_right=window[1],
                  return_softmax_lse=True, out=out)
    o, lse, _, _ = fn(q, k, v, 0.0, None, **kwargs)
    assert o.data_ptr() == out.data_ptr()
    out_ref, lse_ref = attention_ref(q, k, v, causal, window)
    out_pt, _ = attention_ref(q, k, v, causal, window, upcast=False)
    assert not torch.isnan(o).any(), "unwritten (NaN) output elements"
    assert_close_to_ref(o, out_ref, out_pt)
    assert_lse_close(lse, lse_ref)


def test_runs_on_the_current_stream(aiter_mha):
    q = torch.randn(2, 300, 4, 64, device="cuda", dtype=torch.float16)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        o, _, _, _ = aiter_mha.mha_fwd(q, q, q, return_softmax_lse=False)
    s.synchronize()
    ref, _ = attention_ref(q, q, q)
    pt, _ = attention_ref(q, q, q, upcast=False)
    assert_close_to_ref(o, ref, pt)


def test_cupy_tensors(aiter_mha):
    cupy = pytest.importorskip("cupy")
    q_t = torch.randn(1, 130, 2, 64, device="cuda", dtype=torch.float16)
    k_t = torch.randn(1, 257, 2, 64, device="cuda", dtype=torch.float16)
    q, k = cupy.asarray(q_t), cupy.asarray(k_t)
    o, lse, _, _ = aiter_mha.mha_fwd(q, k, k, is_causal=True)
    assert isinstance(o, cupy.ndarray) and isinstance(lse, cupy.ndarray)
    cupy.cuda.get_current_stream().synchronize()
    ref, lse_ref = attention_ref(q_t, k_t, k_t, causal=True)
    pt, _ = attention_ref(q_t, k_t, k_t, causal=True, upcast=False)
    assert_close_to_ref(torch.as_tensor(o, device="cuda"), ref, pt)
    assert_lse_close(torch.as_tensor(lse, device="cuda"), lse_ref)


def test_flash_attn_func_takes_v3_on_hopper(aiter_mha):
    """flash_attn_func runs the v3 forward where it is built and supports the call (sm_90a), v2
    elsewhere; the aiter-named mha_fwd keeps v2 unless asked."""
    q = torch.randn(1, 64, 2, 128, device="cuda", dtype=torch.bfloat16)
    hopper = torch.cuda.get_device_capability() == (9, 0) and any("fwd_v3" in n for n in aiter_mha.fwd_instances())
    name = aiter_mha.fwd_kernel_name(q, q, q, causal=True)
    assert ("fwd_v3" in name) == hopper, name
    assert "fwd_v2" in aiter_mha.fwd_kernel_name(q, q, q, causal=True, use_v3=False)


def test_flash_attn_func_forward(aiter_mha):
    q = torch.randn(2, 100, 4, 128, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        o, lse = aiter_mha.flash_attn_func(q, q, q, causal=True, return_lse=True)
    ref, lse_ref = attention_ref(q, q, q, causal=True)
    pt, _ = attention_ref(q, q, q, causal=True, upcast=False)
    assert_close_to_ref(o, ref, pt)
    assert_lse_close(lse, lse_ref)
    with torch.no_grad():  # inputs that require grad, but no graph is recorded: forward only
        o2 = aiter_mha.flash_attn_func(q.clone().requires_grad_(), q, q, causal=True)
    assert o2.grad_fn is None
    assert_close_to_ref(o2, ref, pt)


# ---- backward ---------------------------------------------------------------------------------

BWD_HDIMS = [32, 59, 64, 96, 128, 256, (192, 128)]
BWD_SEQLENS = [(113, 203), (1, 147), (1023, 1024), (217, 128)]
BWD_MASKS = MASKS + [("causal+local", True, (48, 0))]


def _bwd_cases():
    """BSHD/BHSD x fp16/bf16 x head dims x seqlens (112 cases); heads, mask, deterministic and the
    entry point (mha_bwd, or flash_attn_func + autograd) rotate. Head dim 59 (not a multiple of 8)
    runs on the C++ side's packed copies either way."""
    out = []
    for n, (layout, dtype, hd, sl) in enumerate(itertools.product(["BSHD", "BHSD"], DTYPES, BWD_HDIMS, BWD_SEQLENS)):
        d, dv = hd if isinstance(hd, tuple) else (hd, hd)
        heads = HEADS[n % 3]
        mask = BWD_MASKS[(n // 3) % 4]
        det = (n // 2) % 2 == 1
        autograd = n % 3 == 2
        out.append(pytest.param(layout, dtype, d, dv, sl, heads, mask, det, autograd,
                                id=f"{layout}-{dtype}-d{d}x{dv}-s{sl[0]}x{sl[1]}-h{heads[0]}x{heads[1]}-{mask[0]}"
                                   + ("-det" if det else "") + ("-autograd" if autograd else "")))
    return out


def _assert_grads(grads, q, k, v, dout, causal, window, what=""):
    refs = attention_grads_ref(q, k, v, dout, causal, window)
    pts = attention_grads_ref(q, k, v, dout, causal, window, upcast=False)
    for name, g, ref, pt in zip(("dq", "dk", "dv"), grads, refs, pts):
        assert g.shape == ref.shape and g.dtype == q.dtype, f"{what}{name}: {tuple(g.shape)} {g.dtype}"
        assert not torch.isnan(g).any(), f"{what}{name}: unwritten (NaN) elements"
        assert_close_to_ref(g, ref, pt, what=what + name, factor=3.0, eps=1e-4)


@pytest.mark.parametrize("layout,dtype,d,dv,seqlens,heads,mask,deterministic,autograd", _bwd_cases())
def test_mha_bwd(aiter_mha, layout, dtype, d, dv, seqlens, heads, mask, deterministic, autograd):
    seed = zlib.crc32(repr(("bwd", layout, dtype, d, dv, seqlens, heads, mask)).encode())
    gen = torch.Generator(device="cuda").manual_seed(seed)
    b, (sq, sk), (hq, hk) = 2, seqlens, heads
    q, k, v = make_qkv(layout, dtype, b, sq, sk, hq, hk, d, dv, gen)
    dout = torch.randn(b, sq, hq, dv, generator=gen, device="cuda").to(q.dtype)
    _, causal, window = mask
    if autograd:
        q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
        out = aiter_mha.flash_attn_func(q, k, v, causal=causal, window_size=window, deterministic=deterministic)
        out.backward(dout)
        grads = (q.grad, k.grad, v.grad)
    else:
        out, lse, _, _ = aiter_mha.mha_fwd(q, k, v, 0.0, None, causal, window[0], window[1])
        poison = [torch.full(x.shape, float("nan"), dtype=x.dtype, device="cuda") for x in (q, k, v)]
        dq, dk, dvv, softmax_d = aiter_mha.mha_bwd(dout, q, k, v, out, lse, 0.0, None, causal, window[0], window[1],
                                                   deterministic, *poison)
        assert all(g.data_ptr() == p.data_ptr() for g, p in zip((dq, dk, dvv), poison))
        d_ref = (dout.float() * out.float()).sum(-1).transpose(1, 2)  # D = rowsum(dO * O), [b, hq, sq]
        torch.testing.assert_close(softmax_d, d_ref, atol=2e-2, rtol=1e-2)
        grads = (dq, dk, dvv)
    torch.cuda.synchronize()
    _assert_grads(grads, q, k, v, dout, causal, window)


@pytest.mark.parametrize("deterministic", [False, True])
def test_mha_bwd_unaligned_hdim_strides_and_pointers(aiter_mha, deterministic):
    """Head dim 59 / 37, rows 61 elements apart (not 16-byte aligned), q and dout starting one
    element past a 16-byte boundary, GQA, causal: mha_bwd runs on packed copies and writes the
    caller's (poisoned, strided) dq/dk/dv, leaving the gaps between rows untouched."""
    gen = torch.Generator(device="cuda").manual_seed(59 + deterministic)
    dt = torch.float16
    b, sq, sk, hq, hk, d, dv = 2, 133, 70, 4, 2, 59, 37
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda").to(dt)  # noqa: E731
    q = r(b * sq * hq * 61 + 1)[1:].view(b, sq, hq, 61)[..., :d]       # pointer + 2 bytes, row stride 61
    k, v = r(b, sk, hk, 61)[..., :d], r(b, hk, sk, dv).transpose(1, 2)
    dout = r(b * sq * hq * 41 + 3)[3:].view(b, sq, hq, 41)[..., :dv]
    out, lse, _, _ = aiter_mha.mha_fwd(*(x.contiguous() for x in (q, k, v)), 0.0, None, True, -1, -1, 0, True, False)
    outs = [torch.full((b, s, h, w + 5), float("nan"), dtype=dt, device="cuda")
            for s, h, w in ((sq, hq, d), (sk, hk, d), (sk, hk, dv))]
    dq, dk, dvv = (o[..., :o.shape[-1] - 5] for o in outs)
    got = aiter_mha.mha_bwd(dout, q, k, v, out, lse, 0.0, None, True, -1, -1, deterministic, dq, dk, dvv)[:3]
    assert all(g.data_ptr() == p.data_ptr() for g, p in zip(got, (dq, dk, dvv)))
    torch.cuda.synchronize()
    assert all(torch.isnan(o[..., -5:]).all() for o in outs), "wrote past the head dim (into the row gaps)"
    _assert_grads(got, q, k, v, dout, True, (-1, -1))


def _bwd_v3_built(aiter_mha):
    return torch.cuda.get_device_capability() == (9, 0) and any("bwd_v3" in n for n in aiter_mha.bwd_instances())


def test_flash_attn_func_backward_takes_v3_on_hopper(aiter_mha):
    """flash_attn_func's autograd runs the v3 backward where it is built and takes the call
    (sm_90a, not deterministic), v2 elsewhere; mha_bwd keeps v2 unless asked."""
    q = torch.randn(1, 64, 2, 128, device="cuda", dtype=torch.bfloat16)
    name = aiter_mha.bwd_kernel_name(q, q, q, causal=True)
    assert ("bwd_v3" in name) == _bwd_v3_built(aiter_mha), name
    assert "bwd_v2" in aiter_mha.bwd_kernel_name(q, q, q, causal=True, use_v3=False)
    assert "bwd_v2" in aiter_mha.bwd_kernel_name(q, q, q, causal=True, deterministic=True)


@pytest.mark.parametrize("layout,dtype,d,seqlens,heads,mask", [
    ("BSHD", "bfloat16", 128, (1023, 1024), (4, 4), MASKS[0]),
    ("BHSD", "float16", 64, (113, 203), (4, 2), MASKS[1]),
    ("BSHD", "float16", 128, (1, 147), (4, 1), MASKS[2]),
    ("BSHD", "bfloat16", 64, (777, 300), (6, 2), BWD_MASKS[3]),
    ("BHSD", "bfloat16", 96, (217, 128), (4, 4), MASKS[1]),
])
def test_mha_bwd_v3(aiter_mha, layout, dtype, d, seqlens, heads, mask):
    """The v3 backward (mha_bwd with _use_v3, what the autograd functions take) on poisoned
    gradients: every element written and within the v2 tolerance of the fp32 reference."""
    if not _bwd_v3_built(aiter_mha):
        pytest.skip("no v3 backward here (needs sm_90a and the bwd_v3 api)")
    gen = torch.Generator(device="cuda").manual_seed(zlib.crc32(repr(("v3", layout, dtype, d, seqlens)).encode()))
    (sq, sk), (hq, hk) = seqlens, heads
    q, k, v = make_qkv(layout, dtype, 2, sq, sk, hq, hk, d, d, gen)
    dout = torch.randn(2, sq, hq, d, generator=gen, device="cuda").to(q.dtype)
    _, causal, window = mask
    assert "bwd_v3" in aiter_mha.bwd_kernel_name(q, k, v, causal=causal, window_size=window)
    out, lse, _, _ = aiter_mha.mha_fwd(q, k, v, 0.0, None, causal, window[0], window[1])
    poison = [torch.full(x.shape, float("nan"), dtype=x.dtype, device="cuda") for x in (q, k, v)]
    grads = aiter_mha.mha_bwd(dout, q, k, v, out, lse, 0.0, None, causal, window[0], window[1], False, *poison,
                              _use_v3=True)[:3]
    torch.cuda.synchronize()
    _assert_grads(grads, q, k, v, dout, causal, window, "v3 ")


def test_mha_bwd_deterministic_is_bitwise_reproducible(aiter_mha):
    gen = torch.Generator(device="cuda").manual_seed(3)
    q, k, v = make_qkv("BSHD", "bfloat16", 2, 333, 517, 8, 2, 128, 128, gen)
    dout = torch.randn(q.shape, generator=gen, device="cuda").to(q.dtype)
    out, lse, _, _ = aiter_mha.mha_fwd(q, k, v, is_causal=True)
    first = aiter_mha.mha_bwd(dout, q, k, v, out, lse, is_causal=True, deterministic=True)[:3]
    for _ in range(3):
        again = aiter_mha.mha_bwd(dout, q, k, v, out, lse, is_causal=True, deterministic=True)[:3]
        assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_flash_attn_func_grad_of_expanded_dout_and_return_lse(aiter_mha):
    """out.sum().backward() hands autograd an expanded (stride-0) dout; lse is not differentiable."""
    q, k, v = (torch.randn(2, 77, 4, 64, device="cuda", dtype=torch.float16, requires_grad=True) for _ in range(3))
    out, lse = aiter_mha.flash_attn_func(q, k, v, causal=True, return_lse=True)
    assert not lse.requires_grad
    out.sum().backward()
    _assert_grads((q.grad, k.grad, v.grad), q, k, v, torch.ones_like(out), True, (-1, -1))


def test_flash_attn_func_softcap_grad_refused(aiter_mha):
    q = torch.randn(1, 16, 2, 64, device="cuda", dtype=torch.float16, requires_grad=True)
    out = aiter_mha.flash_attn_func(q, q, q, softcap=30.0)
    with pytest.raises(NotImplementedError, match="softcap"):
        out.sum().backward()


def test_mha_bwd_cupy_tensors(aiter_mha):
    cupy = pytest.importorskip("cupy")
    gen = torch.Generator(device="cuda").manual_seed(5)
    q_t, k_t, v_t = make_qkv("BSHD", "float16", 1, 130, 257, 4, 2, 64, 64, gen)
    dout_t = torch.randn(q_t.shape, generator=gen, device="cuda").to(q_t.dtype)
    q, k, v, dout = (cupy.asarray(x) for x in (q_t, k_t, v_t, dout_t))
    out, lse, _, _ = aiter_mha.mha_fwd(q, k, v, is_causal=True)
    dq, dk, dv, softmax_d = aiter_mha.mha_bwd(dout, q, k, v, out, lse, is_causal=True)
    assert all(isinstance(x, cupy.ndarray) for x in (dq, dk, dv, softmax_d))
    cupy.cuda.get_current_stream().synchronize()
    grads = tuple(torch.as_tensor(x, device="cuda") for x in (dq, dk, dv))
    _assert_grads(grads, q_t, k_t, v_t, dout_t, True, (-1, -1))


@pytest.mark.parametrize("paged", [False, True])
@pytest.mark.parametrize("num_splits", [0, 1, 3])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_mha_fwd_splitkv(aiter_mha, paged, num_splits, dtype):
    """Decode over a K/V cache (paged or not, pages in random order) against the reference."""
    dt = getattr(torch, dtype)
    gen = torch.Generator(device="cuda").manual_seed(11 + num_splits)
    b, sq, hq, hk, d, page, cap = 3, 4, 8, 2, 128, 16, 320
    lens = [300, 1, 77]
    q = torch.randn(b, sq, hq, d, generator=gen, device="cuda").to(dt)
    k = torch.randn(b, cap, hk, d, generator=gen, device="cuda").to(dt)
    v = torch.randn(b, cap, hk, d, generator=gen, device="cuda").to(dt)
    seqlens = torch.tensor(lens, dtype=torch.int32, device="cuda")
    kw = dict(cache_seqlens=seqlens, num_splits=num_splits, is_causal=True)
    if paged:
        nblk = cap // page
        perm = torch.randperm(b * nblk, generator=torch.Generator().manual_seed(5)).to("cuda")
        k_pages = torch.empty(b * nblk, page, hk, d, device="cuda", dtype=dt)
        v_pages = torch.empty_like(k_pages)
        k_pages[perm] = k.reshape(b * nblk, page, hk, d)
        v_pages[perm] = v.reshape(b * nblk, page, hk, d)
        block_table = perm.view(b, nblk).to(torch.int32)
        o, lse = aiter_mha.mha_fwd_splitkv(q, k_pages, v_pages, block_table=block_table, **kw)
    else:
        o, lse = aiter_mha.mha_fwd_splitkv(q, k, v, **kw)
    for i, n in enumerate(lens):
        ref, lse_ref = attention_ref(q[i:i + 1], k[i:i + 1, :n], v[i:i + 1, :n], causal=True)
        pt, _ = attention_ref(q[i:i + 1], k[i:i + 1, :n], v[i:i + 1, :n], causal=True, upcast=False)
        assert_close_to_ref(o[i:i + 1], ref, pt, what=f"batch {i}")
        assert_lse_close(lse[i:i + 1], lse_ref)
