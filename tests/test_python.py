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


_PyCapsule_New = ctypes.pythonapi.PyCapsule_New
_PyCapsule_New.restype = ctypes.py_object
_PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]

_CODES = {"float16": (2, 16), "bfloat16": (4, 16), "float32": (2, 32), "int32": (0, 32)}


class FakeCudaTensor:
    """Claims to be a CUDA tensor (device 0) of the given shape/dtype/strides; never dereferenced."""

    def __init__(self, shape, dtype="float16", strides=None, device_type=2):
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
        self._mt.dl_tensor = _DLTensor(0x10000, _DLDevice(device_type, 0), n, _DLDataType(code, bits, 1),
                                       self._shape, self._strides, 0)
        self._mt.deleter = None

    def __dlpack_device__(self):
        return (self._device_type, 0)

    def __dlpack__(self, stream=None):
        return _PyCapsule_New(ctypes.addressof(self._mt), b"dltensor", None)


# ---- tests (fixtures aiter_mha / python_build: tests/conftest.py) ---------------------------


def test_imports_without_torch_and_without_gpu(python_build):
    code = ("import sys, aiter_mha; assert 'torch' not in sys.modules and 'cupy' not in sys.modules; "
            "names = aiter_mha.fwd_instances(); assert 'torch' not in sys.modules; print(len(names))")
    env = dict(os.environ, PYTHONPATH=str(PYDIR), AITER_MHA_LIB_DIR=str(python_build), CUDA_VISIBLE_DEVICES="")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(res.stdout.strip()) >= 1


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
