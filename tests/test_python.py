"""The Python package (python/aiter_mha) on a CPU machine: it imports without torch and without
a GPU, and argument errors are raised before anything touches the device. Tensors that claim to
be on the GPU are faked with hand-made DLPack capsules (their data pointer is never used: every
case fails validation first)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from conftest import REPO

PYDIR = REPO / "python"
pytestmark = pytest.mark.slow


# ---- a minimal DLPack producer (ctypes) -------------------------------------------------


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


# A prototype of our own: ctypes.pythonapi.PyCapsule_New is shared, and other modules in the same
# process (jax.ffi.pycapsule) set its argtypes to theirs.
_PyCapsule_New = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi))

_CODES = {"float16": (2, 16), "bfloat16": (4, 16), "float32": (2, 32), "int32": (0, 32)}


class FakeCudaTensor:
    """Claims to be a CUDA tensor (device 0) of the given shape/dtype/strides; never dereferenced."""

    def __init__(self, shape, dtype="float16", strides=None, device_type=2, data=0x10000):
        self.shape = tuple(shape)
        self.dtype = dtype
        n = len(shape)
        if strides is None:
            strides, run = [0] * n, 1
            for i in reversed(range(n)):
                strides[i], run = run, run * shape[i]
        self._shape = (ctypes.c_int64 * n)(*shape)
        self._strides = (ctypes.c_int64 * n)(*strides)
        code, bits = _CODES[dtype]
        self._device_type = device_type
        self._mt = _DLManagedTensor()
        self._mt.dl_tensor = _DLTensor(data, _DLDevice(device_type, 0), n, _DLDataType(code, bits, 1),
                                       self._shape, self._strides, 0)
        self._mt.deleter = None

    def __dlpack_device__(self):
        return (self._device_type, 0)

    def __dlpack__(self, stream=None):
        return _PyCapsule_New(ctypes.addressof(self._mt), b"dltensor", None)


# ---- tests (fixtures aiter_mha / python_build: tests/conftest.py) ---------------------------


def test_imports_without_torch_and_without_gpu(python_build):
    code = ("import sys, aiter_mha; assert 'torch' not in sys.modules and 'cupy' not in sys.modules; "
            "names = aiter_mha.fwd_instances(); assert 'torch' not in sys.modules; "
            "bwd = aiter_mha.bwd_instances(); assert 'torch' not in sys.modules; print(len(names), len(bwd))")
    env = dict(os.environ, PYTHONPATH=str(PYDIR), AITER_MHA_LIB_DIR=str(python_build), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    n_fwd, n_bwd = (int(x) for x in res.stdout.split())
    assert n_fwd >= 1 and n_bwd >= 1


def test_backward_entry_points_work_without_torch(python_build):
    """With torch unimportable (even where it is installed), flash_attn_func takes the forward-only
    path and mha_bwd validates; neither tries to import torch."""
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, sys.argv[1])\n"
            "from test_python import FakeCudaTensor as T\n"
            "import aiter_mha\n"
            "q = T((1, 8, 2, 64))\n"
            "try:\n    aiter_mha.flash_attn_func(q, q, q, causal=True)\n"
            "except TypeError as e:\n    assert 'out: cannot allocate' in str(e), e\n"
            "try:\n    aiter_mha.mha_bwd(q, q, q, q, q, T((1, 2, 8), 'float16'))\n"
            "except ValueError as e:\n    assert 'softmax_lse: expected dtype float32' in str(e), e\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(PYDIR), AITER_MHA_LIB_DIR=str(python_build), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", code, str(REPO / "tests")], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


def test_cpu_tensor_is_rejected(aiter_mha):
    q = FakeCudaTensor((1, 8, 2, 64), device_type=1)
    k = FakeCudaTensor((1, 8, 2, 64))
    with pytest.raises(ValueError, match=r"q: expected a CUDA tensor"):
        aiter_mha.mha_fwd(q, k, k, out=FakeCudaTensor((1, 8, 2, 64)), return_softmax_lse=False)


def test_non_dlpack_object_is_rejected(aiter_mha):
    with pytest.raises(TypeError, match=r"q: expected a GPU tensor that supports DLPack"):
        aiter_mha.mha_fwd([[1.0]], None, None)


def _fwd(aiter_mha, q, k, v, out, **kw):
    return aiter_mha.mha_fwd(q, k, v, out=out, return_softmax_lse=False, stream=0, **kw)


@pytest.mark.parametrize("case,match", [
    ("k_head_dim", r"k: expected shape \[2, 16, 2, 64\]"),
    ("gqa", r"nhead_k: expected a divisor of nhead_q \(4\), got 3"),
    ("strided_last_dim", r"q: expected the last dimension to be contiguous"),
    ("out_shape", r"out: expected shape \[2, 8, 4, 64\]"),
    ("dtype_mix", r"k: expected dtype float16 \(as q\), got bfloat16"),
    ("fp32", r"q: expected dtype float16 or bfloat16, got float32"),
    ("rank", r"q: expected 4 dimensions"),
])
def test_argument_errors_name_the_argument(aiter_mha, case, match):
    q, k, v, o = (1, 8, 4, 64), (1, 16, 2, 64), (1, 16, 2, 64), (1, 8, 4, 64)
    q, k, v, o = ((2,) + s[1:] for s in (q, k, v, o))
    args = dict(q=FakeCudaTensor(q), k=FakeCudaTensor(k), v=FakeCudaTensor(v), out=FakeCudaTensor(o))
    if case == "k_head_dim":
        args["k"] = FakeCudaTensor((2, 16, 2, 32))
    elif case == "gqa":
        args["k"], args["v"] = FakeCudaTensor((2, 16, 3, 64)), FakeCudaTensor((2, 16, 3, 64))
    elif case == "strided_last_dim":
        args["q"] = FakeCudaTensor(q, strides=(8 * 4 * 128, 4 * 128, 128, 2))
    elif case == "out_shape":
        args["out"] = FakeCudaTensor((2, 8, 4, 32))
    elif case == "dtype_mix":
        args["k"] = FakeCudaTensor(k, dtype="bfloat16")
    elif case == "fp32":
        args = {n: FakeCudaTensor(t.shape, dtype="float32") for n, t in args.items()}
    elif case == "rank":
        args["q"] = FakeCudaTensor((2, 8, 256))
    with pytest.raises(ValueError, match=match):
        _fwd(aiter_mha, args["q"], args["k"], args["v"], args["out"])


def test_unsupported_features_say_so(aiter_mha):
    q = FakeCudaTensor((1, 8, 2, 64))
    with pytest.raises(NotImplementedError, match=r"dropout_p"):
        _fwd(aiter_mha, q, q, q, q, dropout_p=0.1)
    with pytest.raises(NotImplementedError, match=r"alibi_slopes"):
        _fwd(aiter_mha, q, q, q, q, alibi_slopes=q)


def test_varlen_argument_errors(aiter_mha):
    q = FakeCudaTensor((40, 4, 64))
    kv = FakeCudaTensor((50, 2, 64))
    cu = FakeCudaTensor((3,), dtype="int32")
    with pytest.raises(ValueError, match=r"max_seqlen_q: expected the longest query sequence"):
        aiter_mha.mha_varlen_fwd(q, kv, kv, cu, cu, 0, 30, out=FakeCudaTensor((40, 4, 64)),
                                 return_softmax_lse=False, stream=0)
    with pytest.raises(ValueError, match=r"cu_seqlens_k: expected dtype int32, got float16"):
        aiter_mha.mha_varlen_fwd(q, kv, kv, cu, FakeCudaTensor((3,)), 20, 30, out=FakeCudaTensor((40, 4, 64)),
                                 return_softmax_lse=False, stream=0)
    with pytest.raises(ValueError, match=r"cu_seqlens_q: required"):
        aiter_mha.mha_varlen_fwd(q, kv, kv, None, cu, 20, 30, out=FakeCudaTensor((40, 4, 64)), stream=0)


def test_bad_scale_and_cvt(aiter_mha):
    q = FakeCudaTensor((1, 8, 2, 64))
    with pytest.raises(ValueError, match=r"softmax_scale: expected a finite value > 0"):
        _fwd(aiter_mha, q, q, q, q, softmax_scale=0.0)
    with pytest.raises(ValueError, match=r"how_v3_bf16_cvt"):
        aiter_mha.fmha_v3_fwd(q, q, q, how_v3_bf16_cvt=5)
    # bf16 with RTNA/RTZ is refused (the kernels round to nearest even), as aiter::mha_fwd does
    qb = FakeCudaTensor((1, 8, 2, 64), dtype="bfloat16")
    with pytest.raises(NotImplementedError, match=r"how_v3_bf16_cvt: only 0 .* got 2"):
        aiter_mha.fmha_v3_fwd(qb, qb, qb, how_v3_bf16_cvt=2)
    cu = FakeCudaTensor((2,), dtype="int32")
    with pytest.raises(NotImplementedError, match=r"how_v3_bf16_cvt: only 0 .* got 1"):
        packed = FakeCudaTensor((8, 2, 64), dtype="bfloat16")
        aiter_mha.fmha_v3_varlen_fwd(packed, packed, packed, cu, cu, 8, 8, how_v3_bf16_cvt=1)


def test_outputs_of_unknown_frameworks_must_be_passed(aiter_mha):
    q = FakeCudaTensor((1, 8, 2, 64))
    with pytest.raises(TypeError, match=r"out: cannot allocate it for a"):
        aiter_mha.mha_fwd(q, q, q, stream=0)


@pytest.mark.parametrize("case,match", [
    ("block_table_dtype", r"block_table: expected dtype int32, got float16"),
    ("block_table_rows", r"block_table: expected shape \[2, max_blocks\]"),
    ("cache_rows_without_idx", r"k_cache: expected shape\[0\] == batch \(2\) without cache_batch_idx, got 5"),
    ("v_cache_shape", r"v_cache: expected shape \[2, 64, 2, 64\]"),
    ("seqlens_len", r"cache_seqlens: expected shape \[2\]"),
    ("page_size", r"page_block_size: expected a power of two >= 16"),
])
def test_splitkv_argument_errors(aiter_mha, case, match):
    q = FakeCudaTensor((2, 1, 4, 64))
    k = v = FakeCudaTensor((2, 64, 2, 64))
    kw = dict(out=FakeCudaTensor((2, 1, 4, 64)), return_softmax_lse=False, stream=0)
    if case == "block_table_dtype":
        kw["block_table"] = FakeCudaTensor((2, 4))
    elif case == "block_table_rows":
        kw["block_table"] = FakeCudaTensor((3, 4), dtype="int32")
    elif case == "cache_rows_without_idx":
        k = v = FakeCudaTensor((5, 64, 2, 64))
    elif case == "v_cache_shape":
        v = FakeCudaTensor((2, 32, 2, 64))
    elif case == "seqlens_len":
        kw["cache_seqlens"] = FakeCudaTensor((3,), dtype="int32")
    elif case == "page_size":
        k = v = FakeCudaTensor((10, 24, 2, 64))
        kw["block_table"] = FakeCudaTensor((2, 4), dtype="int32")
    with pytest.raises(ValueError, match=match):
        aiter_mha.mha_fwd_splitkv(q, k, v, **kw)


# ---- backward: mha_bwd / mha_varlen_bwd argument errors (raised before any allocation or launch) --


def _bwd_args(**over):
    """Batch-mode mha_bwd arguments: q [2, 8, 4, 64], k/v [2, 16, 2, 64] (GQA), fp16, causal (the
    ci preset's backward instance is fp16 d64 masked)."""
    args = dict(dout=FakeCudaTensor((2, 8, 4, 64)), q=FakeCudaTensor((2, 8, 4, 64)), k=FakeCudaTensor((2, 16, 2, 64)),
                v=FakeCudaTensor((2, 16, 2, 64)), out=FakeCudaTensor((2, 8, 4, 64)),
                softmax_lse=FakeCudaTensor((2, 4, 8), "float32"), is_causal=True, stream=0)
    args.update(over)
    return args


@pytest.mark.parametrize("case,match", [
    ("dout_shape", r"dout: expected shape \[2, 8, 4, 64\]"),
    ("dout_dtype", r"dout: expected dtype float16 \(as q\), got bfloat16"),
    ("out_missing", r"out: required"),
    ("lse_dtype", r"softmax_lse: expected dtype float32, got float16"),
    ("lse_shape", r"softmax_lse: expected shape \[2, 4, 8\] \(batch, heads, seqlen_q\), got \[2, 8, 4\]"),
    ("dk_at_nhead_q", r"dk: expected shape \[2, 16, 2, 64\]"),
    ("dq_dtype", r"dq: expected dtype float16 \(as q\), got float32"),
    ("dv_strided", r"dv: expected the last dimension to be contiguous"),
    ("gqa", r"nhead_k: expected a divisor of nhead_q \(4\), got 3"),
    ("fp32", r"q: expected dtype float16 or bfloat16, got float32"),
    ("rank", r"k: expected 4 dimensions"),
    ("cpu_dout", r"dout: expected a CUDA tensor"),
    ("scale", r"softmax_scale: expected a finite value > 0"),
])
def test_bwd_argument_errors_name_the_argument(aiter_mha, case, match):
    over = {}
    if case == "dout_shape":
        over["dout"] = FakeCudaTensor((2, 8, 4, 32))
    elif case == "dout_dtype":
        over["dout"] = FakeCudaTensor((2, 8, 4, 64), "bfloat16")
    elif case == "out_missing":
        over["out"] = None
    elif case == "lse_dtype":
        over["softmax_lse"] = FakeCudaTensor((2, 4, 8))
    elif case == "lse_shape":
        over["softmax_lse"] = FakeCudaTensor((2, 8, 4), "float32")
    elif case == "dk_at_nhead_q":
        over["dk"] = FakeCudaTensor((2, 16, 4, 64))
    elif case == "dq_dtype":
        over["dq"] = FakeCudaTensor((2, 8, 4, 64), "float32")
    elif case == "dv_strided":
        over["dv"] = FakeCudaTensor((2, 16, 2, 64), strides=(16 * 2 * 128, 2 * 128, 128, 2))
    elif case == "gqa":
        over["k"], over["v"] = FakeCudaTensor((2, 16, 3, 64)), FakeCudaTensor((2, 16, 3, 64))
    elif case == "fp32":
        over = {n: FakeCudaTensor(t.shape, "float32") for n, t in _bwd_args().items()
                if isinstance(t, FakeCudaTensor)}
    elif case == "rank":
        over["k"] = FakeCudaTensor((2, 16, 128))
    elif case == "cpu_dout":
        over["dout"] = FakeCudaTensor((2, 8, 4, 64), device_type=1)
    elif case == "scale":
        over["softmax_scale"] = -1.0
    # dq/dk/dv are not passed (except where the case is about them): the error comes before
    # anything is allocated (a fake tensor's framework could not allocate them: TypeError).
    with pytest.raises(ValueError, match=match):
        aiter_mha.mha_bwd(**_bwd_args(**over))


def test_bwd_unsupported_configurations_say_why_before_allocating(aiter_mha):
    with pytest.raises(NotImplementedError, match=r"dropout_p"):
        aiter_mha.mha_bwd(**_bwd_args(dropout_p=0.1))
    with pytest.raises(NotImplementedError, match=r"alibi_slopes"):
        aiter_mha.mha_bwd(**_bwd_args(alibi_slopes=FakeCudaTensor((4,), "float32")))


def test_bwd_unaligned_head_dim_reaches_allocation(aiter_mha):
    """Head dim 59 (not a multiple of 8) is supported: mha_bwd runs the kernels on packed copies,
    so the call passes every check and stops only at allocating dq in the fake framework."""
    if "fmha_bwd_v2_fp16_d64_mask" not in aiter_mha.bwd_instances():
        pytest.skip("needs the fp16 d64 masked backward instance")
    t = lambda *s, dt="float16": FakeCudaTensor(s, dt)  # noqa: E731
    with pytest.raises(TypeError, match=r"dq: cannot allocate it for a"):
        aiter_mha.mha_bwd(t(2, 8, 4, 59), t(2, 8, 4, 59), t(2, 16, 2, 59), t(2, 16, 2, 59), t(2, 8, 4, 59),
                          t(2, 4, 8, dt="float32"), is_causal=True, stream=0)


def test_bwd_supported_configuration_reaches_allocation(aiter_mha):
    """A valid call passes every check and only then allocates dq/dk/dv in the caller's framework,
    which fake tensors do not have: the first thing that would touch the device."""
    if "fmha_bwd_v2_fp16_d64_mask" not in aiter_mha.bwd_instances():
        pytest.skip("needs the fp16 d64 masked backward instance")
    with pytest.raises(TypeError, match=r"dq: cannot allocate it for a"):
        aiter_mha.mha_bwd(**_bwd_args())


def test_bwd_needs_an_extension_with_the_backward(aiter_mha, monkeypatch):
    import aiter_mha.ops as ops

    monkeypatch.setattr(ops, "_ext", lambda: type("Ext", (), {"has_bwd": False})())
    with pytest.raises(NotImplementedError, match=r"built without libmha_bwd.so"):
        aiter_mha.mha_bwd(**_bwd_args())


def _varlen_bwd(aiter_mha, **over):
    args = dict(dout=FakeCudaTensor((40, 4, 64)), q=FakeCudaTensor((40, 4, 64)), k=FakeCudaTensor((50, 2, 64)),
                v=FakeCudaTensor((50, 2, 64)), out=FakeCudaTensor((40, 4, 64)),
                softmax_lse=FakeCudaTensor((4, 40), "float32"), cu_seqlens_q=FakeCudaTensor((3,), "int32"),
                cu_seqlens_k=FakeCudaTensor((3,), "int32"), max_seqlen_q=20, max_seqlen_k=30, is_causal=True,
                stream=0)
    args.update(over)
    return aiter_mha.mha_varlen_bwd(**args)


@pytest.mark.parametrize("over,match", [
    (dict(max_seqlen_q=0), r"max_seqlen_q: expected the longest query sequence"),
    (dict(max_seqlen_k=-1), r"max_seqlen_k: expected the longest key sequence"),
    (dict(cu_seqlens_k=FakeCudaTensor((3,))), r"cu_seqlens_k: expected dtype int32, got float16"),
    (dict(cu_seqlens_k=FakeCudaTensor((4,), "int32")), r"cu_seqlens_k: expected shape \[3\]"),
    (dict(cu_seqlens_q=None), r"cu_seqlens_q: required"),
    (dict(softmax_lse=FakeCudaTensor((2, 4, 20), "float32")),
     r"softmax_lse: expected shape \[4, 40\] \(heads, total_q\), got \[2, 4, 20\]"),
    (dict(dout=FakeCudaTensor((40, 4, 32))), r"dout: expected shape \[40, 4, 64\]"),
    (dict(dk=FakeCudaTensor((50, 4, 64))), r"dk: expected shape \[50, 2, 64\]"),
    (dict(q=FakeCudaTensor((2, 20, 4, 64))), r"q: expected 3 dimensions"),
])
def test_varlen_bwd_argument_errors(aiter_mha, over, match):
    with pytest.raises(ValueError, match=match):
        _varlen_bwd(aiter_mha, **over)


def test_out_of_range_integers_and_dropout_are_value_errors(aiter_mha):
    """Out-of-range values are ValueErrors naming the argument, before any allocation: no pybind
    TypeError dumps for integers past int32, no NotImplementedError for an invalid dropout_p, and
    a 2-D cu_seqlens_q is reported by its rank."""
    q = FakeCudaTensor((1, 8, 2, 64))
    with pytest.raises(ValueError, match=r"dropout_p: expected a value in \[0, 1\), got 1.5"):
        _fwd(aiter_mha, q, q, q, q, dropout_p=1.5)
    with pytest.raises(ValueError, match=r"window_size_left: expected a value in \[-2\^31, 2\^31\)"):
        _fwd(aiter_mha, q, q, q, q, window_size_left=2**40)
    qv, kv, cu = FakeCudaTensor((40, 4, 64)), FakeCudaTensor((50, 2, 64)), FakeCudaTensor((3,), dtype="int32")
    with pytest.raises(ValueError, match=r"max_seqlen_q: expected a value in \[-2\^31, 2\^31\)"):
        aiter_mha.mha_varlen_fwd(qv, kv, kv, cu, cu, 2**31, 30, out=FakeCudaTensor((40, 4, 64)),
                                 return_softmax_lse=False, stream=0)
    with pytest.raises(ValueError, match=r"cu_seqlens_q: expected a 1-D int32 tensor \[batch \+ 1\], got shape \[3, 1\]"):
        aiter_mha.mha_varlen_fwd(qv, kv, kv, FakeCudaTensor((3, 1), dtype="int32"), cu, 20, 30,
                                 out=FakeCudaTensor((40, 4, 64)), return_softmax_lse=False, stream=0)


# ---- table: tensors that would corrupt memory are refused, naming the stride or pointer ---------
# Batch layout [b, s, h, d] = [2, 16, 4, 64] (contiguous strides (4096, 256, 64, 1)); K/V share it.
# Varlen layout [total, h, d] = [32, 4, 64] (strides (256, 64, 1)), two sequences of 16.
_SHAPE, _STRIDES = (2, 16, 4, 64), (16 * 4 * 64, 4 * 64, 64, 1)
_VSHAPE, _VSTRIDES = (32, 4, 64), (4 * 64, 64, 1)
_DIM_FIELD = {0: "batch_stride", 1: "stride", 2: "nhead_stride"}  # the C++ field of each dim, + _<tensor>
_VDIM_FIELD = {0: "stride", 1: "nhead_stride"}
_FWD_IO = ({"out": "o"}, {"q": "q", "k": "k", "v": "v"})
_BWD_IO = ({"dq": "dq", "dk": "dk", "dv": "dv"}, {"q": "q", "k": "k", "v": "v", "out": "o", "dout": "do"})


def _bad_tensor_cases():
    """(entry point, tensor, mutation, expected field) of every output dim's overlap and every
    tensor's span past 2^48 bytes and misaligned pointer."""
    cases = []
    for entry, (outputs, inputs) in (("mha_fwd", _FWD_IO), ("fmha_v3_fwd", _FWD_IO), ("mha_bwd", _BWD_IO),
                                     ("mha_varlen_fwd", _FWD_IO), ("fmha_v3_varlen_fwd", _FWD_IO),
                                     ("mha_varlen_bwd", _BWD_IO)):
        dims = _VDIM_FIELD if "varlen" in entry else _DIM_FIELD
        for arg, cxx in outputs.items():
            for dim, field in dims.items():
                cases.append((entry, arg, ("zero", dim), f"{field}_{cxx}"))
                cases.append((entry, arg, ("half", dim), f"{field}_{cxx}"))
                cases.append((entry, arg, ("huge", dim), f"{field}_{cxx}"))
            cases.append((entry, arg, ("odd", None), f"{cxx}_ptr"))
        for arg, cxx in inputs.items():
            for dim, field in dims.items():
                cases.append((entry, arg, ("huge", dim), f"{field}_{cxx}"))
            cases.append((entry, arg, ("odd", None), f"{cxx}_ptr"))
    return cases


def _tensor(kind, dim, varlen=False):
    strides = list(_VSTRIDES if varlen else _STRIDES)
    data = 0x10000
    if kind == "zero":
        strides[dim] = 0
    elif kind == "half":  # steps over only half of the dims below it: elements collide
        strides[dim] = ({0: 64, 1: 32} if varlen else {0: 16 * 4 * 64 // 2, 1: 64, 2: 32})[dim]
    elif kind == "huge":
        strides[dim] = 2**50
    elif kind == "odd":
        data += 1
    return FakeCudaTensor(_VSHAPE if varlen else _SHAPE, strides=strides, data=data)


@pytest.mark.parametrize("entry,arg,mutation,field", _bad_tensor_cases(),
                         ids=lambda x: x if isinstance(x, str) else "-".join(map(str, x)) if isinstance(x, tuple) else None)
def test_tensors_that_would_corrupt_memory_are_refused(aiter_mha, entry, arg, mutation, field):
    varlen = "varlen" in entry
    t = {n: FakeCudaTensor(_VSHAPE if varlen else _SHAPE) for n in ("q", "k", "v", "out", "dout", "dq", "dk", "dv")}
    t[arg] = _tensor(*mutation, varlen=varlen)
    cu = FakeCudaTensor((3,), dtype="int32")
    with pytest.raises(ValueError, match=field):
        if entry == "mha_varlen_bwd":
            lse = FakeCudaTensor((4, 32), dtype="float32")
            aiter_mha.mha_varlen_bwd(t["dout"], t["q"], t["k"], t["v"], t["out"], lse, cu, cu, 16, 16, dq=t["dq"],
                                     dk=t["dk"], dv=t["dv"], stream=0)
        elif varlen:
            getattr(aiter_mha, entry)(t["q"], t["k"], t["v"], cu, cu, 16, 16, out=t["out"], return_softmax_lse=False,
                                      stream=0)
        elif entry == "mha_bwd":
            lse = FakeCudaTensor((2, 4, 16), dtype="float32")
            aiter_mha.mha_bwd(t["dout"], t["q"], t["k"], t["v"], t["out"], lse, dq=t["dq"], dk=t["dk"], dv=t["dv"],
                              stream=0)
        else:
            getattr(aiter_mha, entry)(t["q"], t["k"], t["v"], out=t["out"], return_softmax_lse=False, stream=0)


def test_the_bad_tensor_table_is_large_enough():
    assert len(_bad_tensor_cases()) >= 150
