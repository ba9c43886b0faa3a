"""The torch custom ops of python/aiter_mha/_torch_ops.py on a CPU machine (skipped without torch).

The ops' CUDA implementation needs a GPU; here each op gets a CPU kernel computing attention and
its gradients by the textbook formulas in fp32 (tests/torch_cpu_kernels.py, registered with
torch.library.register_kernel for the test process only). That checks what is ours besides the kernels: the op schemas, the fake
implementations (torch.library.opcheck compares them with real outputs), the autograd
registration (which tensors are saved, which arguments reach the backward, GQA folding of
dK/dV, the LSE not differentiable), varlen plumbing, and that torch.compile(fullgraph=True)
traces flash_attn_func / flash_attn_varlen_func into one graph whose results match eager. The
gradients are compared with torch autograd through tests/gpu/attn_ref.py's reference, so the
CPU kernels themselves are checked too. The same properties on the GPU, with our kernels:
tests/gpu/test_torch_integration.py."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="the custom-op tests need torch")

from conftest import REPO  # noqa: E402

from torch_cpu_kernels import REPO_PYTHON, fwd_cpu, segments  # noqa: E402  (registers CPU kernels)

sys.path.insert(0, REPO_PYTHON)
import aiter_mha  # noqa: E402
from attn_ref import attention_ref  # noqa: E402


# ---- helpers -------------------------------------------------------------------------------


def _qkv(b, sq, sk, hq, hk, d, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen).to(dtype).requires_grad_()  # noqa: E731
    return r(b, sq, hq, d), r(b, sk, hk, d), r(b, sk, hk, d)


def _ref_grads(q, k, v, dout, causal, window):
    """out and (dq, dk, dv) by torch autograd through attention_ref, in fp32."""
    leaves = [x.detach().float().requires_grad_() for x in (q, k, v)]
    out, _ = attention_ref(*leaves, causal=causal, window=window)
    out.backward(dout.float())
    return out.detach(), tuple(x.grad for x in leaves)


def _grads(fn, *xs):
    out = fn(*xs)
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
    out.backward(dout)
    grads = tuple(x.grad.clone() for x in xs)
    for x in xs:
        x.grad = None
    return out.detach(), dout, grads


def _close(a, b, tol=2e-5):
    assert (a.float() - b.float()).abs().max().item() <= tol * max(1.0, b.abs().max().item())


# ---- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (6, 1)], ids=["mha", "gqa", "mqa"])
@pytest.mark.parametrize("causal,window", [(False, (-1, -1)), (True, (-1, -1)), (False, (9, 3))],
                         ids=["none", "causal", "window"])
def test_flash_attn_func_grads_match_autograd_reference(heads, causal, window):
    q, k, v = _qkv(2, 37, 53, heads[0], heads[1], 16)
    out, dout, grads = _grads(lambda *x: aiter_mha.flash_attn_func(*x, causal=causal, window_size=window), q, k, v)
    out_ref, grads_ref = _ref_grads(q, k, v, dout, causal, window)
    _close(out, out_ref)
    for g, r in zip(grads, grads_ref):
        _close(g, r)


def test_lse_is_returned_and_not_differentiable():
    q, k, v = _qkv(1, 20, 20, 2, 2, 8)
    out, lse = aiter_mha.flash_attn_func(q, k, v, causal=True, return_lse=True)
    assert out.requires_grad and not lse.requires_grad
    assert lse.shape == (1, 2, 20) and lse.dtype == torch.float32
    _close(lse, attention_ref(q.detach(), k.detach(), v.detach(), causal=True)[1])


def test_softcap_forward_runs_and_its_backward_is_refused():
    q, k, v = _qkv(1, 12, 12, 2, 2, 8)
    out = aiter_mha.flash_attn_func(q, k, v, softcap=5.0)  # grad mode on: the forward still runs
    _close(out, attention_ref(q.detach(), k.detach(), v.detach(), softcap=5.0)[0])
    with pytest.raises(NotImplementedError, match="softcap"):
        out.sum().backward()


def test_varlen_grads_match_per_sequence_reference():
    lens_q, lens_k = [5, 1, 17], [9, 4, 17]
    cu_q = torch.tensor([0] + list(torch.tensor(lens_q).cumsum(0)), dtype=torch.int32)
    cu_k = torch.tensor([0] + list(torch.tensor(lens_k).cumsum(0)), dtype=torch.int32)
    q, k, v = (x[0] for x in _qkv(1, sum(lens_q), sum(lens_k), 4, 2, 16))
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    out, dout, grads = _grads(lambda *x: aiter_mha.flash_attn_varlen_func(*x, cu_q, cu_k, max(lens_q), max(lens_k),
                                                                          causal=True), q, k, v)
    for (q0, q1), (k0, k1) in zip(segments(cu_q), segments(cu_k)):
        o_ref, (dq, dk, dv) = _ref_grads(q[None, q0:q1], k[None, k0:k1], v[None, k0:k1], dout[None, q0:q1], True,
                                         (-1, -1))
        _close(out[q0:q1], o_ref[0])
        _close(grads[0][q0:q1], dq[0])
        _close(grads[1][k0:k1], dk[0])
        _close(grads[2][k0:k1], dv[0])


def test_opcheck_fake_implementations_and_autograd_registration():
    q, k, v = _qkv(2, 13, 29, 4, 2, 16)
    ops = torch.ops.aiter_mha
    out, lse = ops.flash_attn_fwd(q, k, v, 0.25, True, -1, -1, 0.0, False)
    torch.library.opcheck(ops.flash_attn_fwd.default, (q, k, v, 0.25, True, -1, -1, 0.0, False))
    torch.library.opcheck(ops.flash_attn_bwd.default,
                          (torch.randn_like(out), q.detach(), k.detach(), v.detach(), out.detach(), lse, 0.25, True,
                           -1, -1, False))
    cu_q = torch.tensor([0, 4, 13], dtype=torch.int32)
    cu_k = torch.tensor([0, 11, 29], dtype=torch.int32)
    qv, kv, vv = (x[0].detach().requires_grad_() for x in (q, k, v))
    torch.library.opcheck(ops.flash_attn_varlen_fwd.default, (qv, kv, vv, cu_q, cu_k, 9, 18, 0.25, False, 5, 2, 0.0,
                                                              True))
    o, l_ = ops.flash_attn_varlen_fwd(qv, kv, vv, cu_q, cu_k, 9, 18, 0.25, False, 5, 2, 0.0, True)
    torch.library.opcheck(ops.flash_attn_varlen_bwd.default,
                          (torch.randn_like(o), qv.detach(), kv.detach(), vv.detach(), o.detach(), l_, cu_q, cu_k, 9,
                           18, 0.25, False, 5, 2, True))


def _one_graph(fn, *args):
    """Runs torch.compile(fn, fullgraph=True) through aot_eager, recording the graphs dynamo
    hands over; returns (result, the call_function targets of the one forward graph)."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        from functorch.compile import make_boxed_func
        from torch._dynamo.backends.common import aot_autograd

        keep = lambda g, _: make_boxed_func(g.forward)  # noqa: E731
        return aot_autograd(fw_compiler=keep, bw_compiler=keep)(gm, example_inputs)

    torch._dynamo.reset()
    result = torch.compile(fn, fullgraph=True, backend=backend)(*args)
    assert len(graphs) == 1
    return result, [str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"]


def test_torch_compile_fullgraph_matches_eager():
    q, k, v = _qkv(2, 31, 31, 4, 2, 16, seed=3)

    def f(q, k, v):
        out, lse = aiter_mha.flash_attn_func(q * 1.5, k, v, causal=True, return_lse=True, deterministic=True)
        return (out * lse.transpose(1, 2).unsqueeze(-1).detach()).sin()

    out_e, dout, grads_e = _grads(f, q, k, v)
    out_c, targets = _one_graph(f, q, k, v)
    assert "aiter_mha.flash_attn_fwd.default" in targets, targets
    out_c.backward(dout)
    _close(out_c.detach(), out_e)
    for g, x in zip(grads_e, (q, k, v)):
        _close(x.grad, g)


def test_torch_compile_fullgraph_varlen():
    cu = torch.tensor([0, 7, 20], dtype=torch.int32)
    q, k, v = (x[0].detach().requires_grad_() for x in _qkv(1, 20, 20, 2, 1, 8, seed=4))

    def f(q, k, v):
        return aiter_mha.flash_attn_varlen_func(q, k, v, cu, cu, 13, 13, window_size=(4, 0)).square().sum()

    f(q, k, v).backward()
    grads_e = [x.grad.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.grad = None
    loss, targets = _one_graph(f, q, k, v)
    assert "aiter_mha.flash_attn_varlen_fwd.default" in targets, targets
    loss.backward()
    for g, x in zip(grads_e, (q, k, v)):
        _close(x.grad, g)


@pytest.mark.parametrize("torch_first", [True, False], ids=["torch-then-aiter_mha", "aiter_mha-then-torch"])
def test_compile_traces_one_graph_whatever_the_import_order(torch_first):
    """Importing aiter_mha before torch leaves the ops unregistered until the first call; dynamo
    must still trace that first call (inside torch.compile) without a graph break."""
    imports = "import torch, aiter_mha" if torch_first else "import aiter_mha, torch"
    code = f"""
import sys; sys.path.insert(0, {str(REPO / 'python')!r})
{imports}
assert ("aiter_mha._torch_ops" in sys.modules) == {torch_first}
graphs = []
def backend(gm, _):
    graphs.append(gm); return gm.forward
q = torch.randn(1, 8, 2, 16)
try:
    torch.compile(lambda q: aiter_mha.flash_attn_func(q, q, q, causal=True), fullgraph=True, backend=backend)(q)
except ValueError as e:  # no CPU kernel in this process: the op itself refuses a CPU tensor
    assert "expected a CUDA tensor" in str(e), e
assert len(graphs) == 1, graphs
print([str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"])
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "aiter_mha.flash_attn_fwd.default" in res.stdout


def test_cpu_kernels_match_the_reference_math():
    """The CPU stand-in kernels above agree with attention_ref (so the comparisons mean something)."""
    q, k, v = _qkv(1, 9, 14, 2, 1, 8, seed=9)
    out, lse = fwd_cpu(q.detach(), k.detach(), v.detach(), 1 / math.sqrt(8), False, 3, 2, 0.0, False)
    o_ref, l_ref = attention_ref(q.detach(), k.detach(), v.detach(), window=(3, 2))
    _close(out, o_ref)
    _close(lse, l_ref)
