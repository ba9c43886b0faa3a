#!/usr/bin/env python3
"""Decode (split-KV) benchmark: ours vs PyTorch SDPA (cuDNN, FlashAttention-2) vs copy bandwidth.

Shapes (issue 4): b in {1, 8, 64}, h = 32, h_k = 8, d = 128 (--d for others), s_q = 1, s_k in {1k, 4k, 32k, 128k},
bf16; ours not paged and paged with page_block_size 16 and 128 (-num_splits=0: the heuristic).
Peers: ``F.scaled_dot_product_attention(q, k, v, enable_gqa=True)`` with q [b, 32, 1, d] and
k, v [b, 8, s_k, d] (contiguous, not paged) under ``sdpa_kernel(CUDNN_ATTENTION)`` and
``sdpa_kernel(FLASH_ATTENTION)``; a backend that refuses the shape shows "—".

GB/s for everyone = (K + V bytes + Q + O bytes) / time, K/V = b * s_k * h_k * d * 2 bytes each:
the bytes a decode step must read. Copy bandwidth = ``dst.copy_(src)`` of 1 GiB (read + write).
Writes <out-dir>/decode.md and decode.json.

    python3 benchmark/peer_decode.py --out-dir $OUT [--bench build/benchmark_mha_fwd] [--quick] [--d 64]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmark"))


def ours(bench: str, b: int, sk: int, page: int, repeat: int, d: int = 128):
    cmd = [bench, "-v=0", "-prec=bf16", f"-b={b}", "-h=32", "-h_k=8", f"-d={d}", "-s=1", f"-s_k={sk}",
           "-num_splits=0", f"-page_block_size={page}", "-splitkv=1", "-kname=1", "-iperm=0", "-operm=0",
           "-warmup=5", f"-repeat={repeat}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"nsplit:(\d+).*?, ([\d.]+) ms, [\d.]+ TFlops, ([\d.]+) GB/s", r.stdout)
    if r.returncode != 0 or not m:
        return {"error": (r.stdout + r.stderr)[-300:]}
    return {"splits": int(m.group(1)), "ms": float(m.group(2)), "GB/s": float(m.group(3))}


def peers(b: int, sk: int, repeat: int, d: int = 128):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from peer_compare import cuda_time_ms

    q = torch.randn(b, 32, 1, d, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(b, 8, sk, d, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    out = {}
    for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("fa2", SDPBackend.FLASH_ATTENTION)):
        try:
            with sdpa_kernel(be), torch.no_grad():
                ms = cuda_time_ms(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True), 5, repeat)
            out[name] = ms
        except Exception as e:  # noqa: BLE001 - a refusing backend is a result, not an error
            out[name] = None
            out[name + "_error"] = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
    del q, k, v
    torch.cuda.empty_cache()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default=os.path.join(REPO, "build", "benchmark_mha_fwd"))
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="b in {1, 8}, s_k in {4k, 32k} only")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--d", type=int, default=128, help="head dim (q, k and v; default 128, the issue's shapes)")
    a = ap.parse_args()
    from peer_compare import measure_copy_bandwidth

    copy = measure_copy_bandwidth()["GB/s"]
    bs = (1, 8) if a.quick else (1, 8, 64)
    sks = (4096, 32768) if a.quick else (1024, 4096, 32768, 131072)
    rows, raw = [], []
    for b in bs:
        for sk in sks:
            byt = 2 * (2 * b * sk * 8 * a.d + 2 * b * 32 * a.d)
            p = {} if a.no_peers else peers(b, sk, a.repeat, a.d)
            res = {pg: ours(a.bench, b, sk, pg, a.repeat, a.d) for pg in (0, 16, 128)}
            best_peer = min([x for x in (p.get("cudnn"), p.get("fa2")) if x], default=None)
            rec = {"b": b, "s_k": sk, "bytes": byt, "ours": res, "peers": p, "copy_GB/s": copy}
            raw.append(rec)

            def gbs(ms):
                return None if not ms else byt / ms / 1e6

            def f(x, d=0):
                return "—" if x is None else f"{x:.{d}f}"
            o0 = res[0].get("ms")
            rows.append(
                f"| {b} | {sk // 1024}k | {b * sk // 1024}k | {res[0].get('splits', '—')} | "
                + " | ".join(f"{f(r.get('ms'), 3)} / {f(r.get('GB/s'))} ({f(100 * r['GB/s'] / copy if 'GB/s' in r else None)}%)"
                             for r in (res[0], res[16], res[128]))
                + f" | {f(p.get('cudnn'), 3)} / {f(gbs(p.get('cudnn')))} | {f(p.get('fa2'), 3)} / {f(gbs(p.get('fa2')))} | "
                + f"{f(best_peer / o0 if best_peer and o0 else None, 2)} |")
            print(rows[-1], flush=True)
    head = (f"d = {a.d}. Copy bandwidth (dst.copy_(src), 1 GiB, read+write): {copy:.0f} GB/s\n\n"
            "| b | s_k | b·s_k tokens | splits | ours ms / GB/s (% copy) | ours page 16 | ours page 128 | "
            "cuDNN ms / GB/s | FA2 ms / GB/s | best peer / ours (not paged) |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    table = head + "\n".join(rows) + "\n"
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "decode.md"), "w") as fh:
        fh.write(table)
    with open(os.path.join(a.out_dir, "decode.json"), "w") as fh:
        json.dump(raw, fh, indent=1)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
