"""GPU: flash_attn_func / flash_attn_varlen_func as torch custom ops under torch.compile
(fullgraph, inductor) and in CUDA graphs (torch.cuda.make_graphed_callables, forward and
backward captured), against eager runs of the same calls and the fp32 reference."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the GPU tests compare against torch")
from attn_ref import assert_close_to_ref, attention_grads_ref, attention_ref  # noqa: E402


def _qkv(b, sq, sk, hq, hk, d, dtype=torch.bfloat16, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, device="cuda").to(dtype).requires_grad_()  # noqa: E731
    return r(b, sq, hq, d), r(b, sk, hk, d), r(b, sk, hk, d)


def _run(fn, q, k, v, dout):
    for x in (q, k, v):
        x.grad = None
    out = fn(q, k, v)
    out.backward(dout)
    return out.detach(), tuple(x.grad.clone() for x in (q, k, v))


def _assert_matches_reference(out, grads, q, k, v, dout, causal, window):
    ref, _ = attention_ref(q.detach(), k.detach(), v.detach(), causal, window)
    pt, _ = attention_ref(q.detach(), k.detach(), v.detach(), causal, window, upcast=False)
    assert_close_to_ref(out, ref, pt)
    refs = attention_grads_ref(q, k, v, dout, causal, window)
    pts = attention_grads_ref(q, k, v, dout, causal, window, upcast=False)
    for name, g, r, p in zip(("dq", "dk", "dv"), grads, refs, pts):
        assert_close_to_ref(g, r, p, what=name, factor=3.0, eps=1e-4)


@pytest.mark.parametrize("causal,window", [(True, (-1, -1)), (False, (100, 20))], ids=["causal", "window"])
def test_torch_compile_fullgraph(aiter_mha, causal, window):
    torch._dynamo.reset()
    q, k, v = _qkv(2, 333, 517, 8, 2, 128)
    dout = torch.randn(2, 333, 8, 128, device="cuda", dtype=torch.bfloat16)

    def f(q, k, v):
        return aiter_mha.flash_attn_func(q, k, v, causal=causal, window_size=window, deterministic=True)

    out_e, grads_e = _run(f, q, k, v, dout)
    out_c, grads_c = _run(torch.compile(f, fullgraph=True), q, k, v, dout)
    assert torch.equal(out_c, out_e)  # the same kernels on the same inputs
    for a, b in zip(grads_c, grads_e):
        assert torch.equal(a, b)
    _assert_matches_reference(out_c, grads_c, q, k, v, dout, causal, window)


def test_torch_compile_fullgraph_varlen(aiter_mha):
    torch._dynamo.reset()
    lens = [1, 130, 77, 256]
    cu = torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32, device="cuda")
    q, k, v = (x[0].detach().requires_grad_() for x in _qkv(1, sum(lens), sum(lens), 4, 4, 64, torch.float16))

    def f(q, k, v):
        return aiter_mha.flash_attn_varlen_func(q, k, v, cu, cu, max(lens), max(lens), causal=True,
                                                deterministic=True).float().square().sum()

    def grads(fn):
        for x in (q, k, v):
            x.grad = None
        fn(q, k, v).backward()
        return [x.grad.clone() for x in (q, k, v)]

    for a, b in zip(grads(torch.compile(f, fullgraph=True)), grads(f)):
        assert torch.equal(a, b)


def test_cuda_graph_captures_forward_and_backward(aiter_mha):
    """make_graphed_callables captures the forward and the backward (workspace from torch's
    allocator); replays on new inputs match eager calls on the same inputs."""
    q, k, v = _qkv(2, 300, 300, 4, 4, 128, seed=1)

    def f(q, k, v):
        return aiter_mha.flash_attn_func(q, k, v, causal=True, deterministic=True)

    g = torch.cuda.make_graphed_callables(f, (q, k, v))
    for seed in (2, 3):
        q2, k2, v2 = _qkv(2, 300, 300, 4, 4, 128, seed=seed)
        dout = torch.randn(2, 300, 4, 128, device="cuda", dtype=torch.bfloat16)
        out_g, grads_g = _run(g, q2, k2, v2, dout)
        out_e, grads_e = _run(f, q2, k2, v2, dout)
        assert torch.equal(out_g, out_e)
        for a, b in zip(grads_g, grads_e):
            assert torch.equal(a, b)


def test_backward_workspace_comes_from_torch(aiter_mha):
    """The backward's dQ accumulator is taken from torch's caching allocator (visible in its
    statistics), not from cudaMallocAsync."""
    q, k, v = _qkv(1, 1000, 1000, 8, 8, 128, seed=4)
    out = aiter_mha.flash_attn_func(q, k, v)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out.backward(torch.ones_like(out))
    torch.cuda.synchronize()
    dq_acc = 8 * 1000 * 128 * 4  # fp32 [hq, sq, d], before rounding sq up to the tile
    grads = 3 * 1000 * 8 * 128 * 2
    assert torch.cuda.max_memory_allocated() - base >= grads + dq_acc
