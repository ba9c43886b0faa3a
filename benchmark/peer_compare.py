#!/usr/bin/env python3
"""Compare our attention kernels with PyTorch SDPA's cuDNN and FlashAttention-2 backends.

One run times, on the same GPU and the same shapes:
  * ours  - the benchmark executable (``build/benchmark_mha_fwd`` / ``build/benchmark_mha_bwd``)
            run once per shape with ``-v=0 -kname=1``; its one result line is parsed;
  * cudnn - ``F.scaled_dot_product_attention`` under ``sdpa_kernel(SDPBackend.CUDNN_ATTENTION)``;
  * fa2   - the same under ``sdpa_kernel(SDPBackend.FLASH_ATTENTION)``.

and writes ``<out-dir>/<tag>_<mode>.md`` (header + table), ``.json`` (raw results) and ``.png``
(TFLOP/s vs seqlen, one subplot per dtype x head dim x causal).

Shapes (SPEC section 8): a fixed token budget (16k) split as b = tokens / s, hidden 2048 split as
h = hidden / d heads, h_k = h (or h / --gqa), seqlen_q == seqlen_k in {512 ... 16384}, causal and
not, bf16 and fp16.  Only sq == sk shapes are used, so torch's ``is_causal`` (top-left) is the
same mask as our ``-mask=2`` (bottom-right).

FLOPs (identical to the benchmark executable's count):
  fwd = sum over batches of h * (2 * kept * d + 2 * kept * d_v)
        kept = number of (i, j) positions the mask keeps: sq * sk without a mask,
               s * (s + 1) / 2 for causal with sq == sk (about half);
  bwd = 2.5 * fwd.
TFLOP/s = FLOPs / time, for every implementation.

Timing:
  * ours: the executable's own timer (``-warmup``/``-repeat``; mean ms per call, CUDA events).
  * peers: CUDA events around a loop of ``--repeat`` calls after ``--warmup`` calls; the mean
    ms per call (the same statistic as ours).
  * ``--mode bwd`` times the backward pass ALONE: the forward is run once with autograd, then
    ``torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)`` is timed (this includes the
    backend's preprocessing kernels such as dot(dO, O), not the forward).

Runs without torch for ``--help``; torch / matplotlib are imported only when needed. The record's
``git`` line is ``$AITER_GIT_REV`` when set (pass it where the tree was copied without its git
state, e.g. ``AITER_GIT_REV=<rev> python3 benchmark/peer_compare.py ...`` on the device machine),
else ``git describe --always --dirty`` of the checkout.

Example (on the GPU machine, from the repo root):
  python3 benchmark/peer_compare.py --mode fwd --extra-args="-fwd_v3=1" --tag h100_v3 --copy-bw
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_TOKENS = 16384
DEFAULT_HIDDEN = 2048
DEFAULT_DTYPES = ("bf16", "fp16")
DEFAULT_HDIMS = ((64, 64), (128, 128), (256, 256))
DEFAULT_SEQLENS = (512, 1024, 2048, 4096, 8192, 16384)
DEFAULT_CAUSAL = (False, True)
QUICK_DTYPES = ("bf16",)
QUICK_HDIMS = ((128, 128),)
QUICK_SEQLENS = (1024, 8192)

PEERS = ("cudnn", "fa2")
IMPL_LABELS = {"ours": "ours", "cudnn": "cuDNN", "fa2": "FA2"}
BWD_FLOP_FACTOR = 2.5


# ----------------------------------------------------------------------------------------------
# Shapes and FLOPs
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    dtype: str      # "bf16" | "fp16"
    causal: bool
    b: int
    h: int
    h_k: int
    s: int          # seqlen_q
    s_k: int        # seqlen_k
    d: int          # hdim_q
    d_v: int        # hdim_v

    def key(self) -> str:
        return (f"{self.dtype}|{'causal' if self.causal else 'full'}|d{self.d}x{self.d_v}"
                f"|b{self.b}|h{self.h}/{self.h_k}|s{self.s}/{self.s_k}")


def kept_positions(sq: int, sk: int, causal: bool) -> int:
    """Number of (i, j) score positions a bottom-right causal mask (or no mask) keeps.

    Bottom-right causal keeps j <= i + (sk - sq); for sq == sk it equals top-left causal and
    the count is s * (s + 1) / 2.
    """
    if not causal:
        return sq * sk
    offset = sk - sq
    # row i keeps min(sk, max(0, i + offset + 1)) columns; sum that in closed form.
    total = 0
    first_full = max(0, sk - offset - 1)   # rows i >= first_full keep all sk columns
    first_some = max(0, -offset)           # rows i >= first_some keep at least one column
    lo, hi = first_some, min(sq, first_full)  # rows in [lo, hi) keep i + offset + 1 columns
    if hi > lo:
        total += (hi - lo) * (offset + 1) + (lo + hi - 1) * (hi - lo) // 2
    if sq > max(first_full, first_some):
        total += (sq - max(first_full, first_some)) * sk
    return total


def fwd_flops(shape: Shape) -> int:
    """Forward FLOPs: sum over batches of h * (2 * kept * d + 2 * kept * d_v)."""
    kept = kept_positions(shape.s, shape.s_k, shape.causal)
    return shape.b * shape.h * (2 * kept * shape.d + 2 * kept * shape.d_v)


def flops(shape: Shape, mode: str) -> float:
    f = fwd_flops(shape)
    return f * BWD_FLOP_FACTOR if mode == "bwd" else float(f)


def tflops_from_ms(nflops: float, ms: Optional[float]) -> Optional[float]:
    if ms is None or ms <= 0:
        return None
    return nflops / (ms * 1e-3) / 1e12


def parse_hdims(text: str) -> List[Tuple[int, int]]:
    """``"64,128,192x128"`` -> ``[(64, 64), (128, 128), (192, 128)]``."""
    out = []
    for item in _split_list(text):
        m = re.fullmatch(r"(\d+)(?:[x:/](\d+))?", item)
        if not m:
            raise argparse.ArgumentTypeError(f"bad head dim {item!r}: expected D or DxDV")
        d = int(m.group(1))
        out.append((d, int(m.group(2)) if m.group(2) else d))
    return out


def parse_int_list(text: str) -> List[int]:
    try:
        return [int(x) for x in _split_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}")


def parse_causal(text: str) -> List[bool]:
    vals = []
    for item in _split_list(text):
        if item not in ("0", "1"):
            raise argparse.ArgumentTypeError(f"--causal takes 0 and/or 1, got {item!r}")
        vals.append(item == "1")
    return vals


def _split_list(text: str) -> List[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def make_shapes(dtypes: Sequence[str] = DEFAULT_DTYPES,
                hdims: Sequence[Tuple[int, int]] = DEFAULT_HDIMS,
                seqlens: Sequence[int] = DEFAULT_SEQLENS,
                causals: Sequence[bool] = DEFAULT_CAUSAL,
                tokens: int = DEFAULT_TOKENS,
                hidden: int = DEFAULT_HIDDEN,
                gqa: int = 1) -> List[Shape]:
    """The SPEC section 8 sweep: b = tokens // s, h = hidden // d, h_k = h // gqa, sq == sk."""
    shapes = []
    for dtype in dtypes:
        for d, d_v in hdims:
            h = max(1, hidden // d)
            if h % gqa:
                raise ValueError(f"h={h} (hidden {hidden} / d {d}) is not divisible by --gqa {gqa}")
            for causal in causals:
                for s in seqlens:
                    b = max(1, tokens // s)
                    shapes.append(Shape(dtype=dtype, causal=causal, b=b, h=h, h_k=h // gqa,
                                        s=s, s_k=s, d=d, d_v=d_v))
    return shapes


# ----------------------------------------------------------------------------------------------
# Our benchmark executable
# ----------------------------------------------------------------------------------------------

@dataclass
class Result:
    ms: Optional[float] = None
    tflops: Optional[float] = None
    kernel: Optional[str] = None
    error: Optional[str] = None
    extra: Dict[str, object] = field(default_factory=dict)


_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|inf|nan)"
_MS_RE = re.compile(_NUM + r"\s*ms\b")
_TFLOPS_RE = re.compile(_NUM + r"\s*TFlops\b", re.IGNORECASE)
_GBS_RE = re.compile(_NUM + r"\s*GB/s\b")
_PREFIX_RE = re.compile(r"^\s*\[([^|\]]+)\|([^|\]]+)\|([^|\]]+)\]")
_UNSUPPORTED = "not supported yet"


def parse_result_line(line: str) -> Optional[dict]:
    """Parse one result line of benchmark_mha_fwd / benchmark_mha_bwd.

    Returns None if ``line`` is not a result line, else a dict with keys prec, mode, layout,
    fields (the ``key:value`` pairs), kernel (or None), ms, tflops, gbs (floats or None),
    valid (str or None) and supported (bool).
    """
    m = _PREFIX_RE.match(line)
    if not m:
        return None
    rest = line[m.end():].strip()
    supported = _UNSUPPORTED not in rest
    ms_m, tf_m = _MS_RE.search(rest), _TFLOPS_RE.search(rest)
    if supported and not (ms_m and tf_m):
        return None
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    fields: Dict[str, str] = {}
    kernel = None
    for p in parts:
        kv = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*)", p)
        if kv:
            fields[kv.group(1)] = kv.group(2)
            continue
        if p == _UNSUPPORTED or _MS_RE.fullmatch(p) or _TFLOPS_RE.fullmatch(p) \
                or _GBS_RE.fullmatch(p):
            continue
        if kernel is None and re.fullmatch(r"[A-Za-z_][\w.\-<>]*", p):
            kernel = p
    def num(mm):
        return float(mm.group(1)) if mm else None
    return {
        "prec": m.group(1).strip(), "mode": m.group(2).strip(), "layout": m.group(3).strip(),
        "fields": fields, "kernel": kernel, "supported": supported,
        "ms": num(ms_m) if supported else None,
        "tflops": num(tf_m) if supported else None,
        "gbs": num(_GBS_RE.search(rest)) if supported else None,
        "valid": fields.get("valid"),
    }


def find_result_line(output: str) -> Optional[dict]:
    """The last result line in an executable's output (None if there is none)."""
    found = None
    for line in output.splitlines():
        parsed = parse_result_line(line)
        if parsed is not None:
            found = parsed
    return found


def ours_command(exe: str, shape: Shape, mode: str, warmup: int, repeat: int,
                 extra_args: Sequence[str] = ()) -> List[str]:
    cmd = [exe, "-v=0", f"-warmup={warmup}", f"-repeat={repeat}", "-kname=1",
           f"-prec={shape.dtype}", f"-b={shape.b}", f"-h={shape.h}", f"-h_k={shape.h_k}",
           f"-s={shape.s}", f"-s_k={shape.s_k}", f"-d={shape.d}", f"-d_v={shape.d_v}",
           f"-mask={2 if shape.causal else 0}", "-iperm=0", "-operm=0"]
    if mode == "fwd":
        cmd.append("-lse=1")
    cmd.extend(extra_args)
    return cmd


def run_ours(exe: str, shape: Shape, mode: str, warmup: int, repeat: int,
             extra_args: Sequence[str], timeout_s: float) -> Result:
    if not os.path.isfile(exe):
        return Result(error=f"executable not found: {exe}")
    cmd = ours_command(exe, shape, mode, warmup, repeat, extra_args)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return Result(error=f"timed out after {timeout_s:.0f} s")
    except OSError as e:
        return Result(error=f"could not run {exe}: {e}")
    parsed = find_result_line(proc.stdout)
    rc = proc.returncode
    if parsed is None:
        tail = [l for l in proc.stdout.strip().splitlines() if l.strip()]
        return Result(error=f"no result line (exit {rc}): {tail[-1] if tail else '<no output>'}",
                      extra={"rc": rc})
    if not parsed["supported"]:
        return Result(kernel=parsed["kernel"], error="not supported yet", extra={"rc": rc})
    return Result(ms=parsed["ms"], tflops=parsed["tflops"], kernel=parsed["kernel"],
                  extra={"rc": rc, "reported_tflops": parsed["tflops"], "gbs": parsed["gbs"],
                         "valid": parsed["valid"]})


# ----------------------------------------------------------------------------------------------
# PyTorch SDPA peers (torch imported lazily)
# ----------------------------------------------------------------------------------------------

def _torch():
    import torch  # noqa: PLC0415  (lazy on purpose: --help and the tests run without torch)
    return torch


def _first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:300]
    return str(text)[:300]


def sdpa_failure_reasons(messages: Iterable[str], keep: int = 2) -> List[str]:
    """The informative lines among torch's SDPA warnings.

    torch explains "No available kernel" in warnings: "<backend> kernel not used because:"
    headers, "<other backend> has been runtime disabled" (sdpa_kernel disabled it), and the
    reason itself; each ends in "(Triggered internally at ...)".  Keep the reasons only.
    """
    out = []
    for msg in messages:
        line = re.sub(r"\s*\(Triggered internally at [^)]*\)\.?\s*$", "", _first_line(msg))
        if not line or line.endswith(":") or "runtime disabled" in line:
            continue
        if line not in out:
            out.append(line)
    return out[:keep]


def cuda_time_ms(fn: Callable[[], object], warmup: int, repeat: int) -> float:
    """Mean ms per call of ``fn`` over ``repeat`` calls after ``warmup`` calls (CUDA events)."""
    torch = _torch()
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeat):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / max(1, repeat)


def make_inputs(shape: Shape, requires_grad: bool, seed: int = 0):
    """q, k, v in BSHD memory viewed as B,H,S,D (what torch's SDPA takes); random normal."""
    torch = _torch()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}[shape.dtype]
    g = torch.Generator(device="cuda").manual_seed(seed)

    def rnd(s, h, d):
        t = torch.randn(shape.b, s, h, d, device="cuda", dtype=dt, generator=g)
        return t.requires_grad_(requires_grad)

    q_l = rnd(shape.s, shape.h, shape.d)
    k_l = rnd(shape.s_k, shape.h_k, shape.d)
    v_l = rnd(shape.s_k, shape.h_k, shape.d_v)
    return (q_l, k_l, v_l), (q_l.transpose(1, 2), k_l.transpose(1, 2), v_l.transpose(1, 2))


def run_peer(peer: str, shape: Shape, mode: str, warmup: int, repeat: int) -> Result:
    import warnings
    torch = _torch()
    F = torch.nn.functional
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "fa2": SDPBackend.FLASH_ATTENTION}[peer]
    kwargs = {"is_causal": shape.causal, "scale": 1.0 / math.sqrt(shape.d)}
    if shape.h_k != shape.h:
        kwargs["enable_gqa"] = True
    tensors = None
    try:
        with warnings.catch_warnings(record=True) as caught, sdpa_kernel(backend):
            warnings.simplefilter("always")
            try:
                leaves, (q, k, v) = make_inputs(shape, requires_grad=(mode == "bwd"))
                tensors = leaves
                if mode == "fwd":
                    with torch.no_grad():
                        ms = cuda_time_ms(lambda: F.scaled_dot_product_attention(q, k, v, **kwargs),
                                          warmup, repeat)
                else:
                    out = F.scaled_dot_product_attention(q, k, v, **kwargs)
                    dout = torch.randn_like(out)
                    ms = cuda_time_ms(
                        lambda: torch.autograd.grad(out, leaves, dout, retain_graph=True),
                        warmup, repeat)
            except Exception as e:  # noqa: BLE001 - a backend failure is a result, not a crash
                msg = _first_line(e)
                reasons = sdpa_failure_reasons(str(w.message) for w in caught)
                if reasons:
                    msg += " | " + " | ".join(reasons)
                return Result(error=f"{type(e).__name__}: {msg}")
    finally:
        del tensors
        torch.cuda.synchronize()
    return Result(ms=ms)


def measure_copy_bandwidth(nbytes: int = 1 << 30, warmup: int = 3, repeat: int = 20) -> dict:
    """Device-to-device copy bandwidth of ``dst.copy_(src)``; bytes counted = read + write."""
    torch = _torch()
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_(0, 255)
    dst = torch.empty_like(src)
    ms = cuda_time_ms(lambda: dst.copy_(src), warmup, repeat)
    gbs = 2 * nbytes / (ms * 1e-3) / 1e9
    del src, dst
    torch.cuda.empty_cache()
    return {"bytes_per_copy": nbytes, "ms": ms, "GB/s": gbs}


def measure_gemm_ceiling(dtypes: Sequence[str], n: int = 8192, warmup: int = 3,
                         repeat: int = 20) -> Dict[str, dict]:
    """Dense n x n x n ``torch.matmul`` (cuBLAS) per dtype: the tensor-core rate a large GEMM
    reaches on this GPU at the clock it runs at, the ceiling an attention kernel is read
    against (2*n^3 FLOPs per call)."""
    torch = _torch()
    out = {}
    for dt in dtypes:
        tdt = {"bf16": torch.bfloat16, "fp16": torch.float16}[dt]
        a = torch.randn(n, n, device="cuda", dtype=tdt)
        b = torch.randn(n, n, device="cuda", dtype=tdt)
        ms = cuda_time_ms(lambda: torch.matmul(a, b), warmup, repeat)
        out[dt] = {"n": n, "ms": ms, "TFLOP/s": 2.0 * n ** 3 / (ms * 1e-3) / 1e12}
        del a, b
    torch.cuda.empty_cache()
    return out


# ----------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------

def _fmt(x: Optional[float], digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _d_label(d: int, d_v: int) -> str:
    return str(d) if d == d_v else f"{d}x{d_v}"


def markdown_table(rows: Sequence[dict]) -> str:
    """Rows are the JSON records (see ``make_record``); None entries print as '—'."""
    head = ["dtype", "causal", "d", "b", "h", "s", "ours ms", "ours TFLOP/s", "cuDNN TFLOP/s",
            "FA2 TFLOP/s", "ours/cuDNN", "ours/FA2", "kernel"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 3 + ["---:"] * 9 + ["---"]) + "|"]
    for r in rows:
        sh, res = r["shape"], r["results"]
        ours, cudnn, fa2 = (res.get(k, {}) or {} for k in ("ours", "cudnn", "fa2"))
        h = str(sh["h"]) if sh["h"] == sh["h_k"] else f"{sh['h']}/{sh['h_k']}"
        s = str(sh["s"]) if sh["s"] == sh["s_k"] else f"{sh['s']}/{sh['s_k']}"
        cells = [sh["dtype"], "y" if sh["causal"] else "n", _d_label(sh["d"], sh["d_v"]),
                 str(sh["b"]), h, s,
                 _fmt(ours.get("ms"), 3), _fmt(ours.get("tflops")), _fmt(cudnn.get("tflops")),
                 _fmt(fa2.get("tflops")),
                 _fmt(_ratio(ours.get("tflops"), cudnn.get("tflops")), 2),
                 _fmt(_ratio(ours.get("tflops"), fa2.get("tflops")), 2),
                 f"`{ours['kernel']}`" if ours.get("kernel") else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _geomean(xs: Iterable[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summary_table(rows: Sequence[dict]) -> str:
    """Geometric-mean ratio of ours to each peer, per (dtype, d, causal)."""
    groups: Dict[Tuple, List[dict]] = {}
    for r in rows:
        sh = r["shape"]
        groups.setdefault((sh["dtype"], sh["d"], sh["d_v"], sh["causal"]), []).append(r)
    lines = ["| dtype | d | causal | geomean ours/cuDNN | geomean ours/FA2 | ours/cuDNN at max s |",
             "|---|---|---|---:|---:|---:|"]
    for (dtype, d, d_v, causal), rs in groups.items():
        def ratios(peer):
            return [_ratio(r["results"].get("ours", {}).get("tflops"),
                           r["results"].get(peer, {}).get("tflops")) for r in rs]
        last = max(rs, key=lambda r: r["shape"]["s"])
        lines.append(f"| {dtype} | {_d_label(d, d_v)} | {'y' if causal else 'n'} | "
                     f"{_fmt(_geomean(ratios('cudnn')), 2)} | {_fmt(_geomean(ratios('fa2')), 2)} | "
                     f"{_fmt(_ratio(last['results'].get('ours', {}).get('tflops'), last['results'].get('cudnn', {}).get('tflops')), 2)} |")
    return "\n".join(lines)


def error_notes(rows: Sequence[dict]) -> str:
    """One line per distinct (implementation, error) with the number of shapes it hit."""
    seen: Dict[Tuple[str, str], int] = {}
    for r in rows:
        for impl, res in r["results"].items():
            if res and res.get("error"):
                seen[(impl, res["error"])] = seen.get((impl, res["error"]), 0) + 1
    return "\n".join(f"- {IMPL_LABELS.get(i, i)} ({n} shape{'s' if n > 1 else ''}): {e}"
                     for (i, e), n in seen.items())


def make_record(shape: Shape, mode: str, results: Dict[str, Result]) -> dict:
    nflops = flops(shape, mode)
    out = {}
    for impl, res in results.items():
        rd = asdict(res)
        if res.ms is not None:
            computed = tflops_from_ms(nflops, res.ms)
            if rd["tflops"] is None:
                rd["tflops"] = computed
            rd["extra"]["tflops_from_ms"] = computed
        out[impl] = rd
    return {"shape": asdict(shape), "mode": mode, "flops": nflops, "results": out}


def plot(rows: Sequence[dict], path: str, title: str) -> Optional[str]:
    """TFLOP/s vs seqlen, one subplot per (dtype, d, causal); returns an error string or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001
        return f"matplotlib unavailable: {_first_line(e)}"
    panels: Dict[Tuple, List[dict]] = {}
    for r in rows:
        sh = r["shape"]
        panels.setdefault((sh["dtype"], sh["d"], sh["d_v"], sh["causal"]), []).append(r)
    if not panels:
        return "nothing to plot"
    col_keys = sorted({(k[1], k[2]) for k in panels})
    row_keys = sorted({(k[0], k[3]) for k in panels})
    fig, axes = plt.subplots(len(row_keys), len(col_keys), squeeze=False,
                             figsize=(4.2 * len(col_keys), 3.2 * len(row_keys)))
    impls = [i for i in ("ours", "cudnn", "fa2") if any(i in r["results"] for r in rows)]
    styles = {"ours": ("tab:red", "o"), "cudnn": ("tab:blue", "s"), "fa2": ("tab:green", "^")}
    for ri, (dtype, causal) in enumerate(row_keys):
        for ci, (d, d_v) in enumerate(col_keys):
            ax = axes[ri][ci]
            rs = sorted(panels.get((dtype, d, d_v, causal), []), key=lambda r: r["shape"]["s"])
            ax.set_title(f"{dtype} d{_d_label(d, d_v)} {'causal' if causal else 'non-causal'}",
                         fontsize=9)
            if not rs:
                ax.set_visible(False)
                continue
            for impl in impls:
                pts = [(r["shape"]["s"], r["results"].get(impl, {}).get("tflops")) for r in rs]
                pts = [(s, t) for s, t in pts if t is not None]
                if pts:
                    color, marker = styles.get(impl, (None, "x"))
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker,
                            color=color, label=IMPL_LABELS.get(impl, impl))
            seqs = [r["shape"]["s"] for r in rs]
            ax.set_xscale("log", base=2)
            ax.set_xticks(seqs)
            ax.set_xticklabels([f"{s // 1024}k" if s >= 1024 else str(s) for s in seqs],
                               fontsize=8)
            ax.set_ylim(bottom=0)
            ax.grid(True, alpha=0.3)
            if ci == 0:
                ax.set_ylabel("TFLOP/s")
            if ri == len(row_keys) - 1:
                ax.set_xlabel("seqlen")
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def env_header(argv: Sequence[str], info: dict) -> str:
    lines = [f"- date: {info['date']}",
             f"- device: {info.get('device', 'n/a')}",
             f"- torch {info.get('torch', 'n/a')} (CUDA {info.get('cuda', 'n/a')}), "
             f"cuDNN {info.get('cudnn', 'n/a')}, triton {info.get('triton', 'n/a')}",
             f"- ours: `{info.get('ours_exe')}` {info.get('ours_extra', '')}".rstrip(),
             f"- git: {info.get('git', 'n/a')}",
             f"- mode: {info['mode']}, warmup {info['warmup']}, repeat {info['repeat']}; "
             f"FLOPs fwd = sum_b h*(2*kept*d + 2*kept*d_v), bwd = 2.5x fwd"
             + ("; bwd peers time autograd.grad alone (forward excluded)"
                if info["mode"] == "bwd" else ""),
             f"- command: `{shlex.join(['python3'] + list(argv))}`"]
    if info.get("copy_bw"):
        cb = info["copy_bw"]
        lines.append(f"- device copy bandwidth (read+write): {cb['GB/s']:.0f} GB/s "
                     f"({cb['bytes_per_copy'] >> 20} MiB copy, {cb['ms']:.3f} ms)")
    if info.get("gemm"):
        parts = [f"{dt} {g['TFLOP/s']:.0f} TFLOP/s" for dt, g in info["gemm"].items()]
        n = next(iter(info["gemm"].values()))["n"]
        lines.append(f"- dense GEMM ceiling (torch.matmul {n}x{n}x{n}, cuBLAS): " + ", ".join(parts))
    return "\n".join(lines)


def collect_env(args) -> dict:
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host": platform.node(), "mode": args.mode, "warmup": args.warmup,
            "repeat": args.repeat,
            "ours_exe": "not run (--no-ours)" if args.no_ours else args.bench_path,
            "ours_extra": args.extra_args or ""}
    # AITER_GIT_REV: the revision as the caller knows it (a copied tree, e.g. on the device
    # machine, may carry stale or no git metadata); otherwise `git describe` of this checkout.
    info["git"] = os.environ.get("AITER_GIT_REV", "")
    if not info["git"]:
        try:
            info["git"] = subprocess.run(["git", "-C", REPO_ROOT, "describe", "--always", "--dirty"],
                                         capture_output=True, text=True, timeout=10).stdout.strip() or "n/a"
        except Exception:  # noqa: BLE001
            info["git"] = "n/a"

    try:
        torch = _torch()
        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        if torch.cuda.is_available():
            info["device"] = torch.cuda.get_device_name()
    except Exception as e:  # noqa: BLE001
        info["torch"] = f"unavailable ({_first_line(e)})"
    try:
        import triton
        info["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        pass
    return info


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "peer"


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Time our MHA kernels and PyTorch SDPA's cuDNN / FlashAttention-2 backends "
                    "on the same shapes; write a markdown table, JSON and a PNG plot.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Default sweep (SPEC section 8): 16k tokens (b = 16384/s), hidden 2048 "
               "(d 64/128/256 -> h 32/16/8), s 512..16384, causal and not, bf16 and fp16.\n"
               "Example: python3 benchmark/peer_compare.py --extra-args=-fwd_v3=1 --copy-bw")
    p.add_argument("--mode", choices=("fwd", "bwd"), default="fwd",
                   help="fwd, or bwd (backward alone; FLOPs 2.5x fwd) (default: %(default)s)")
    p.add_argument("--bench-fwd", default=os.path.join(REPO_ROOT, "build", "benchmark_mha_fwd"),
                   help="forward benchmark executable (default: %(default)s)")
    p.add_argument("--bench-bwd", default=os.path.join(REPO_ROOT, "build", "benchmark_mha_bwd"),
                   help="backward benchmark executable (default: %(default)s)")
    p.add_argument("--extra-args", default="",
                   help="extra flags passed to our executable, e.g. --extra-args=\"-fwd_v3=1\" "
                        "(use '=' so argparse does not read the leading '-' as an option)")
    p.add_argument("--no-ours", action="store_true", help="time only the peers")
    p.add_argument("--peers", default="cudnn,fa2",
                   help="comma list from {cudnn, fa2}, or 'none' (default: %(default)s)")
    p.add_argument("--dtypes", default=None, help="comma list of bf16,fp16 (default: both)")
    p.add_argument("--hdims", type=parse_hdims, default=None,
                   help="comma list of head dims; DxDV for different q/v dims, e.g. 64,128,192x128 "
                        "(default: 64,128,256)")
    p.add_argument("--seqlens", type=parse_int_list, default=None,
                   help="comma list (default: 512,1024,2048,4096,8192,16384)")
    p.add_argument("--causal", type=parse_causal, default=None,
                   help="0, 1 or 0,1 (default: 0,1)")
    p.add_argument("--tokens", type=int, default=DEFAULT_TOKENS,
                   help="tokens per shape, b = tokens / s (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=DEFAULT_HIDDEN,
                   help="hidden size, h = hidden / d (default: %(default)s)")
    p.add_argument("--gqa", type=int, default=1, help="h / h_k (default: %(default)s, MHA)")
    p.add_argument("--quick", action="store_true",
                   help="4-shape smoke subset: bf16, d128, s 1024 and 8192, causal and not "
                        "(explicit --dtypes/--hdims/--seqlens/--causal still win)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=10, help="timed calls (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds allowed per run of our executable (default: %(default)s)")
    p.add_argument("--out-dir", default=os.path.join(REPO_ROOT, "docs", "perf"),
                   help="where the .md/.json/.png go (default: %(default)s)")
    p.add_argument("--tag", default=None,
                   help="file name prefix (default: the device name, e.g. nvidia_h100_80gb_hbm3)")
    p.add_argument("--copy-bw", action="store_true",
                   help="also measure device-to-device copy bandwidth (read+write bytes)")
    p.add_argument("--copy-bw-only", action="store_true",
                   help="measure and print the copy bandwidth, then stop")
    p.add_argument("--gemm-ceiling", action="store_true",
                   help="also time a dense 8192^3 torch.matmul (cuBLAS) per dtype, the "
                        "tensor-core ceiling of this GPU, and print it in the header")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


def resolve_args(args) -> Tuple[List[str], List[Tuple[int, int]], List[int], List[bool], List[str]]:
    dtypes = _split_list(args.dtypes) if args.dtypes else list(
        QUICK_DTYPES if args.quick else DEFAULT_DTYPES)
    for dt in dtypes:
        if dt not in ("bf16", "fp16"):
            raise SystemExit(f"--dtypes: unknown dtype {dt!r} (expected bf16 or fp16)")
    hdims = args.hdims or list(QUICK_HDIMS if args.quick else DEFAULT_HDIMS)
    seqlens = args.seqlens or list(QUICK_SEQLENS if args.quick else DEFAULT_SEQLENS)
    causals = args.causal if args.causal is not None else list(DEFAULT_CAUSAL)
    peers = [] if args.peers.strip().lower() in ("", "none") else _split_list(args.peers.lower())
    for peer in peers:
        if peer not in PEERS:
            raise SystemExit(f"--peers: unknown peer {peer!r} (expected one of {', '.join(PEERS)})")
    return dtypes, hdims, seqlens, causals, peers


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    dtypes, hdims, seqlens, causals, peers = resolve_args(args)
    args.bench_path = args.bench_fwd if args.mode == "fwd" else args.bench_bwd
    extra = shlex.split(args.extra_args)

    torch = _torch()
    if not torch.cuda.is_available():
        print("peer_compare: no CUDA device visible to torch", file=sys.stderr)
        return 2
    info = collect_env(args)
    if args.copy_bw or args.copy_bw_only:
        info["copy_bw"] = measure_copy_bandwidth()
        print(f"device copy bandwidth (read+write): {info['copy_bw']['GB/s']:.1f} GB/s", flush=True)
        if args.copy_bw_only:
            return 0
    if args.gemm_ceiling:
        info["gemm"] = measure_gemm_ceiling(dtypes)
        for dt, g in info["gemm"].items():
            print(f"dense GEMM {g['n']}^3 {dt}: {g['TFLOP/s']:.1f} TFLOP/s", flush=True)

    try:
        shapes = make_shapes(dtypes, hdims, seqlens, causals, args.tokens, args.hidden, args.gqa)
    except ValueError as e:
        raise SystemExit(f"peer_compare: {e}")
    run_ours_too = not args.no_ours
    if run_ours_too and not os.path.isfile(args.bench_path):
        print(f"peer_compare: WARNING: {args.bench_path} not found; 'ours' will be empty "
              f"(build it with build_mha.sh, or pass --bench-{args.mode}, or --no-ours)",
              file=sys.stderr)
    print(f"# peer comparison ({args.mode}), {len(shapes)} shapes", flush=True)
    rows = []
    for i, shape in enumerate(shapes):
        results: Dict[str, Result] = {}
        if run_ours_too:
            results["ours"] = run_ours(args.bench_path, shape, args.mode, args.warmup,
                                       args.repeat, extra, args.timeout)
        for peer in peers:
            results[peer] = run_peer(peer, shape, args.mode, args.warmup, args.repeat)
        rec = make_record(shape, args.mode, results)
        rows.append(rec)
        ours = rec["results"].get("ours") or {}
        comp = (ours.get("extra") or {}).get("tflops_from_ms")
        if ours.get("tflops") and comp and abs(comp / ours["tflops"] - 1) > 0.03:
            print(f"peer_compare: WARNING: {shape.key()}: executable reports "
                  f"{ours['tflops']:.1f} TFlops, our FLOP formula with its ms gives {comp:.1f}",
                  file=sys.stderr)
        summary = ", ".join(
            f"{IMPL_LABELS[k]} {_fmt(v['tflops'])}" + (f" ({v['error']})" if v["error"] else "")
            for k, v in rec["results"].items())
        print(f"[{i + 1}/{len(shapes)}] {shape.key()}: {summary}", flush=True)

    tag = args.tag or _slug(info.get("device", "peer"))
    os.makedirs(args.out_dir, exist_ok=True)
    base = os.path.join(args.out_dir, f"{tag}_{args.mode}")
    header = env_header([os.path.relpath(__file__, os.getcwd())] + argv, info)
    notes = error_notes(rows)
    md = (f"## {args.mode} — ours vs PyTorch SDPA (cuDNN, FlashAttention-2)\n\n{header}\n\n"
          f"{markdown_table(rows)}\n\n{summary_table(rows)}\n"
          + (f"\nErrors / unsupported:\n{notes}\n" if notes else "")
          + f"\n![{tag} {args.mode}]({os.path.basename(base)}.png)\n")
    print()
    print(md)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump({"env": info, "argv": argv, "rows": rows}, f, indent=1)
    written = [base + ".md", base + ".json"]
    if not args.no_plot:
        err = plot(rows, base + ".png", f"{args.mode}: TFLOP/s vs seqlen — {info.get('device', '')}")
        if err:
            print(f"peer_compare: no plot: {err}", file=sys.stderr)
        else:
            written.append(base + ".png")
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
