"""Framework glue without importing any framework: recognise torch / cupy tensors by their
type, allocate outputs in the caller's framework, find the caller's current stream, and turn
any DLPack-capable tensor into a capsule for the extension."""

from __future__ import annotations

from typing import Any, Optional, Sequence


def framework(x: Any) -> str:
    mod = type(x).__module__.split(".")[0]
    return mod if mod in ("torch", "cupy", "jax", "jaxlib") else "other"


def require_dlpack(x: Any, name: str) -> None:
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        raise TypeError(f"{name}: expected a GPU tensor that supports DLPack (__dlpack__), got {type(x).__name__}")
    dev_type, _ = x.__dlpack_device__()
    if int(dev_type) not in (2, 13):  # kDLCUDA, kDLCUDAManaged
        raise ValueError(f"{name}: expected a CUDA tensor, got DLPack device type {int(dev_type)}")


def device_id(x: Any) -> int:
    return int(x.__dlpack_device__()[1])


def current_stream(x: Any, stream: Optional[int]) -> int:
    """The stream to run on: the explicit `stream`, else the framework's current stream."""
    if stream is not None:
        return int(stream)
    fw = framework(x)
    if fw == "torch":
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    if fw == "cupy":
        import cupy

        with cupy.cuda.Device(device_id(x)):
            return int(cupy.cuda.get_current_stream().ptr)
    return 0  # the legacy default stream


def capsule(x: Any, stream: int) -> Any:
    """x.__dlpack__ for use on `stream` (DLPack: 1 names the legacy default stream)."""
    if x is None:
        return None
    if getattr(x, "requires_grad", False):  # torch refuses to export those; the call only reads/writes data
        x = x.detach()
    try:
        return x.__dlpack__(stream=stream if stream != 0 else 1)
    except TypeError:
        return x.__dlpack__()


_TORCH_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "int32": "int32"}


def dtype_name(x: Any) -> str:
    """float16 / bfloat16 / float32 / int32 / ... from the framework's dtype."""
    return str(getattr(x, "dtype", "?")).replace("torch.", "")


def can_allocate(like: Any) -> bool:
    """Whether `empty` can allocate in like's framework (torch and cupy)."""
    return framework(like) in ("torch", "cupy")


def empty(like: Any, shape: Sequence[int], dtype: str, name: str) -> Any:
    """A new tensor of the caller's framework on `like`'s device; dtype 'same' copies like's."""
    fw = framework(like)
    if fw == "torch":
        import torch

        dt = like.dtype if dtype == "same" else getattr(torch, dtype)
        return torch.empty(tuple(shape), dtype=dt, device=like.device)
    if fw == "cupy":
        import cupy

        dt = like.dtype if dtype == "same" else dtype
        with cupy.cuda.Device(device_id(like)):
            return cupy.empty(tuple(shape), dtype=dt)
    raise TypeError(f"{name}: cannot allocate it for a {type(like).__module__} tensor; pass it in "
                    f"(out= / the output argument) — only torch and cupy outputs are allocated here")


def data_ptr(x: Any) -> int:
    """The device address of x's first element (torch / cupy)."""
    return int(x.data_ptr()) if framework(x) == "torch" else int(x.data.ptr)


def workspace_allocator(like: Any, stream: Optional[int]):
    """(allocate, held) for the library's workspace: allocate(bytes) -> address takes memory from
    like's framework (torch's caching allocator, CuPy's pool) and keeps it in `held`, which the
    caller drops once the work is queued; the pools reuse it in the current stream's order, which
    is safe for work on that stream and lets CUDA graphs capture it. None where the framework
    cannot allocate or the work runs on an explicit stream (the library then allocates
    stream-ordered itself)."""
    if stream is not None or not can_allocate(like):
        return None, []
    held = []

    def allocate(nbytes: int) -> int:
        t = empty(like, (max(int(nbytes), 1),), "uint8", "workspace")
        held.append(t)
        return data_ptr(t)

    return allocate, held


def is_contiguous(x: Any) -> bool:
    """Whether x's elements are packed in row-major order (torch / cupy; others: False)."""
    fw = framework(x)
    if fw == "torch":
        return bool(x.is_contiguous())
    if fw == "cupy":
        return bool(x.flags.c_contiguous)
    return False


def zero_(x: Any) -> None:
    fw = framework(x)
    if fw in ("torch", "cupy"):
        x.fill(0) if fw == "cupy" else x.zero_()
    else:
        raise TypeError("zero_tensors: only torch and cupy outputs can be zeroed here")
