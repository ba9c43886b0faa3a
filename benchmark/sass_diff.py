#!/usr/bin/env python3
"""Compare the SASS of every kernel in two builds (e.g. before and after a refactor).

    python3 benchmark/sass_diff.py BUILD_A BUILD_B [--cuobjdump PATH] [--filter SUBSTRING]

BUILD_* are build folders (their libmha_fwd.so / libmha_bwd.so) or .so / .o files. Kernels
are matched by name with the namespace and parameter-type text removed (a refactor may move
types between namespaces). One line per kernel:
    identical        the same instructions, operands and all
    params-only      identical once constant-bank offsets c[0x0][...] are masked (the
                     parameter struct's layout moved; the code did not)
    same-ops         the same multiset of opcodes (registers, immediates and .reuse flags
                     masked): a different schedule or register allocation
    differs N        N instructions differ as a multiset (and the counts A -> B)
plus, for kernels that differ, the main loop: the span from the first to the last matrix
instruction (HGMMA, else HMMA) compared as a sequence with branch targets masked ("loop same"
or "loop N changed"): a refactor that only moved the epilogue's registers leaves it unchanged;
and local-memory (LDL/STL) and HGMMA counts where they change. Exit 0; the summary is last.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

FUNC = re.compile(r"^\s+Function : (\S+)")
INSTR = re.compile(r"^\s+/\*[0-9a-f]{4,6}\*/\s+(.*?)\s*;")


def binaries(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in (path / "libmha_fwd.so", path / "libmha_bwd.so") if p.is_file())
    return [path]


def kernel_key(mangled: str) -> str:
    """A name that survives namespace moves: demangled, with namespaces and argument types cut."""
    try:
        name = subprocess.run(["c++filt", mangled], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        name = mangled
    if name.endswith(")"):  # cut the parameter list: the last top-level parenthesis
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    return re.sub(r"\b[A-Za-z_]\w*::", "", name)  # namespaces


def sass(cuobjdump: str, files: List[Path]) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for f in files:
        text = subprocess.run([cuobjdump, "-sass", str(f)], capture_output=True, text=True, check=True).stdout
        cur = None
        for line in text.splitlines():
            m = FUNC.match(line)
            if m:
                cur = kernel_key(m.group(1))
                out[cur] = []
                continue
            m = INSTR.match(line)
            if m and cur is not None:
                out[cur].append(m.group(1))
    return out


def masked(instrs: List[str], level: int) -> List[str]:
    res = []
    for i in instrs:
        i = re.sub(r"c\[0x0\]\[0x[0-9a-f]+\]", "c[P]", i)
        if level >= 2:
            i = re.sub(r"\bU?R\d+\b", "R", i)
            i = re.sub(r"\bU?P\d\b", "P", i)
            i = re.sub(r"\bB\d+\b", "B", i)
            i = re.sub(r"0x[0-9a-f]+|-?\d+\.\d+(e[-+]?\d+)?", "IMM", i)
            i = i.replace(".reuse", "")
        res.append(i)
    return res if level < 2 else sorted(res)


def loop_span(instrs: List[str]) -> List[str]:
    """The instructions from the first to the last HGMMA (else HMMA), branch targets masked."""
    for op in ("HGMMA", "HMMA"):
        idx = [k for k, i in enumerate(instrs) if re.search(rf"\b{op}\b", i)]
        if idx:
            return [re.sub(r"\b(BRA|BSSY|CALL\S*|BRA\.DIV)(.*?)0x[0-9a-f]+", r"\1\2ADDR", i)
                    for i in instrs[idx[0]:idx[-1] + 1]]
    return []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--cuobjdump", default=os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump") or "cuobjdump")
    ap.add_argument("--filter", default="", help="only kernels whose name contains this")
    args = ap.parse_args(argv)
    sa, sb = sass(args.cuobjdump, binaries(args.a)), sass(args.cuobjdump, binaries(args.b))
    counts = collections.Counter()
    for name in sorted(set(sa) | set(sb)):
        if args.filter not in name:
            continue
        if name not in sa or name not in sb:
            print(f"{'only in A' if name in sa else 'only in B'}: {name}")
            counts["unmatched"] += 1
            continue
        a, b = sa[name], sb[name]
        extra = ""
        for what, pat in (("LDL/STL", r"\b(LDL|STL)\b"), ("HGMMA", r"\bHGMMA\b")):
            na = sum(bool(re.search(pat, i)) for i in a)
            nb = sum(bool(re.search(pat, i)) for i in b)
            if na != nb:
                extra += f"; {what} {na} -> {nb}"
        if a == b:
            verdict = "identical"
        elif masked(a, 1) == masked(b, 1):
            verdict = "params-only"
        else:
            ma, mb = collections.Counter(masked(a, 2)), collections.Counter(masked(b, 2))
            n = sum(((ma - mb) + (mb - ma)).values())
            verdict = "same-ops" if n == 0 else f"differs {n} ({len(a)} -> {len(b)} instructions)"
            la, lb = loop_span(a), loop_span(b)
            if la or lb:
                sm = difflib.SequenceMatcher(None, masked(la, 1), masked(lb, 1), autojunk=False)
                changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in sm.get_opcodes() if tag != "equal")
                extra = (f"; loop same ({len(la)})" if changed == 0 else f"; loop {changed} changed ({len(la)} -> {len(lb)})") + extra
        counts[verdict.split()[0]] += 1
        print(f"{verdict:<40} {name}{extra}")
    print("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
