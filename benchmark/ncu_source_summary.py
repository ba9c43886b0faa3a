#!/usr/bin/env python3
"""Summarize Nsight Compute's per-instruction (SASS) source page: where a kernel's warps spend
their samples and why they stall (how docs/PERF.md's v3 log step 13 was made).

On the GPU machine:
  ncu --clock-control none --section SourceCounters --section WarpStateStats -k regex:fwd_v3 \\
      -s 2 -c 1 -o rep ./build/benchmark_mha_fwd ... -fwd_v3=1
  ncu -i rep.ncu-rep --page source --csv --print-source sass > src.csv
Then, anywhere:
  python3 benchmark/ncu_source_summary.py src.csv [--top 30] [--cuts 116,596,675]

Prints the total sample count, the hottest instructions (share of samples, executions, the
three largest stall reasons), samples per opcode, stall reasons over the whole kernel, and,
with --cuts, the share of each range of instruction indices [0, c1), [c1, c2), ... (index =
row of the SASS listing, as printed in the hot list).
"""
import argparse
import csv
import sys


def load(path):
    """Rows of the source page as dicts, plus the stall-reason columns over all samples (the
    "(Not Issued)" variants are left out)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    # The page starts with a "Kernel Name" line; the header is the first row naming "Source".
    h = next(i for i, r in enumerate(rows) if "Source" in r and "# Samples" in r)
    hdr = rows[h]
    recs = [dict(zip(hdr, r)) for r in rows[h + 1:] if len(r) == len(hdr)]
    stalls = [c for c in hdr if c.startswith("stall_") and "Not Issued" not in c]
    return recs, stalls


def num(v):
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return 0


def stall_totals(recs, stalls):
    """Samples per stall reason summed over the given rows, largest first."""
    tot = {c: sum(num(r[c]) for r in recs) for c in stalls}
    return sorted(tot.items(), key=lambda kv: -kv[1])


def opcode(src):
    toks = src.split()
    if not toks:
        return ""
    tok = toks[1] if toks[0].startswith("@") and len(toks) > 1 else toks[0]
    return tok.split(".")[0]


def summarize(recs, stalls, top=30, cuts=()):
    """The report as a list of lines (also used by the tests)."""
    samples = [num(r["# Samples"]) for r in recs]
    total = sum(samples)
    out = [f"instructions {len(recs)}, samples {total}"]
    if total == 0:
        return out + ["no samples (was the SourceCounters section collected?)"]
    pct = lambda v: 100.0 * v / total  # noqa: E731

    out.append(f"-- hottest {top} instructions: index, % of samples, executions, source, top stalls")
    hot = sorted(range(len(recs)), key=lambda i: -samples[i])[:top]
    for i in sorted(hot):
        r = recs[i]
        reasons = sorted(((num(r[c]), c[6:]) for c in stalls), reverse=True)[:3]
        why = " ".join(f"{n}:{v}" for v, n in reasons if v)
        out.append(f"{i:6d} {pct(samples[i]):5.2f}% {num(r.get('Instructions Executed')):9d}  "
                   f"{r['Source'].strip()[:64]:64s} {why}")

    out.append("-- samples per opcode (% of samples, count of instructions)")
    per_op = {}
    for r, s in zip(recs, samples):
        op = opcode(r["Source"])
        n, c = per_op.get(op, (0, 0))
        per_op[op] = (n + s, c + 1)
    for op, (n, c) in sorted(per_op.items(), key=lambda kv: -kv[1][0])[:20]:
        out.append(f"{op:24s} {pct(n):6.2f}% {c:6d}")

    out.append("-- stall reasons, whole kernel (% of samples)")
    for c, v in stall_totals(recs, stalls):
        if v:
            out.append(f"{c[6:]:24s} {pct(v):6.2f}%")

    if cuts:
        out.append("-- ranges of instruction indices: % of samples, top stalls")
        bounds = [0] + sorted({c for c in cuts if 0 < c < len(recs)}) + [len(recs)]
        for a, b in zip(bounds, bounds[1:]):
            why = " ".join(f"{c[6:]}:{pct(v):.1f}" for c, v in stall_totals(recs[a:b], stalls)[:4] if v)
            out.append(f"[{a:6d},{b:6d}) {pct(sum(samples[a:b])):6.2f}%  {why}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", help="output of: ncu -i REP --page source --csv --print-source sass")
    ap.add_argument("--top", type=int, default=30, help="hottest instructions to list (default 30)")
    ap.add_argument("--cuts", default="", help="comma-separated instruction indices that split the listing into ranges")
    a = ap.parse_args(argv)
    try:
        cuts = tuple(int(c) for c in a.cuts.split(",") if c.strip())
    except ValueError:
        ap.error(f"--cuts: expected comma-separated integers, got {a.cuts!r}")
    try:
        recs, stalls = load(a.csv)
    except StopIteration:
        sys.exit(f"{a.csv}: no header row with 'Source' and '# Samples' (not an ncu --page source --csv file?)")
    print("\n".join(summarize(recs, stalls, a.top, cuts)))


if __name__ == "__main__":
    main()
