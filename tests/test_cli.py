"""benchmark_mha_fwd command line, on a CPU machine (no GPU needed).

Flags are parsed before any CUDA call, so `-?`, unknown flags, malformed values and a bad
`-prec` answer without a device. Exit codes: -1 (255) bad argument, -3 (253) bad prec.
The mask spellings are also checked host-only through a tiny g++ program over
benchmark/common/cli_mask.h.
"""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FLAGS = ["v", "mode", "b", "h", "h_k", "s", "s_k", "s_kpad", "d", "d_v", "scale_s",
         "logits_soft_cap", "iperm", "operm", "bias", "prec", "mask", "vlayout", "lse", "kname",
         "det_runs", "init", "seed", "p_drop", "drop_seed", "drop_offset", "drop_prefs", "timer", "num_splits",
         "page_block_size", "cache_batch_idx", "bad_cache_entries", "warmup", "repeat", "fwd_v3", "v3_bf16_cvt",
         "is_v3_check", "v3_max_ctas", "cases"]


@pytest.fixture(scope="module")
def bench(ci_build):
    exe = Path(ci_build) / "benchmark_mha_fwd"
    if not exe.is_file():
        pytest.fail(f"{exe} was not built (see {Path(ci_build) / 'compile_log.txt'})", pytrace=False)
    return exe


def run(bench, *args):
    return subprocess.run([str(bench), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_flag(bench):
    r = run(bench, "-?")
    assert r.returncode == 0, r.stderr
    for flag in FLAGS:
        assert f"-{flag} " in r.stdout, f"-{flag} missing from -? output"
        line = next(l for l in r.stdout.splitlines() if l.strip().startswith(f"-{flag} "))
        assert len(line.split(None, 1)) == 2, f"-{flag} has no help text"
    assert "(default:3328)" in r.stdout and "(default:fp16)" in r.stdout
    assert "FLOPs" in r.stdout  # the formula is documented


@pytest.mark.parametrize("args,named", [
    (["-foo=1"], "-foo"),
    (["-b=2", "-bogus"], "-bogus"),
    (["-b"], "-b"),                      # no value
    (["-b=two"], "-b"),
    (["-d=1.5"], "-d"),
    (["-scale_s=abc"], "-scale_s"),
    (["-iperm=2"], "-iperm"),
    (["-mode=3"], "-mode"),
    (["-h=8", "-h_k=3"], "-h_k"),
    (["-bias=x"], "-bias"),
    (["-vlayout=z"], "-vlayout"),
    (["-timer=wall"], "-timer"),
    (["-init=7"], "-init"),
    (["-det_runs=-1"], "-det_runs"),
    (["-v3_max_ctas=-2"], "-v3_max_ctas"),
    (["-det_runs=2", "-num_splits=2"], "-det_runs"),
    (["-s_kpad=3", "-s=10"], "-s_kpad"),
    (["positional"], "positional"),
])
def test_bad_argument_exits_minus_one(bench, args, named):
    r = run(bench, *args)
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert named in r.stderr


def test_cases_file_runs_each_line_and_marks_its_end(bench, tmp_path):
    # -cases=FILE: one case per line in this process, "=== case n exit code" after each; host-only
    # failures (a bad flag, a bad -prec, -cases inside a case) need no GPU
    f = tmp_path / "cases.txt"
    f.write_text("-no_such_flag=1\n\n-prec=fp7\n-cases=x\n")
    r = run(bench, f"-cases={f}")
    assert r.returncode == 2, r.stdout + r.stderr
    marks = [l for l in r.stdout.splitlines() if l.startswith("=== case ")]
    assert marks == ["=== case 1 exit 255", "=== case 2 exit 253", "=== case 3 exit 255"]
    assert "unknown flag -no_such_flag" in r.stderr and "-cases=FILE must be the only flag" in r.stderr
    r = run(bench, f"-cases={tmp_path / 'missing.txt'}")
    assert r.returncode == 255 and "-cases: cannot read" in r.stderr


@pytest.mark.parametrize("prec", ["fp32", "int8", "FP16", ""])
def test_bad_prec_exits_minus_three(bench, prec):
    r = run(bench, f"-prec={prec}")
    assert r.returncode == 253, (r.returncode, r.stderr)
    assert "-prec" in r.stderr


@pytest.mark.parametrize("mask", ["t:1", "t:a,b", "x", "3", "g:1,2,3", "xt:", "b:1,", "q:1,2", "t:"])
def test_malformed_mask(bench, mask):
    r = run(bench, f"-mask={mask}")
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert "-mask" in r.stderr and f"'{mask}'" in r.stderr


@pytest.mark.parametrize("args,named", [
    (["-mode=1", "-s=55,abc"], "-s"),
    (["-mode=1", "-s=55,,3"], "-s"),
    (["-mode=1", "-b=2", "-s=1,2,3"], "-s"),          # more values than batches
    (["-mode=1", "-b=2", "-s_k=4,5,6"], "-s_k"),
    (["-mode=1", "-b=2", "-s=5", "-s_kpad=1,x"], "-s_kpad"),
    (["-mode=1", "-s=-4"], "-s"),
    (["-mode=0", "-s=55,60"], "-s"),                   # lists need group mode
])
def test_bad_comma_lists(bench, args, named):
    r = run(bench, *args)
    assert r.returncode == 255, (r.returncode, r.stderr)
    assert named + ":" in r.stderr


# ---------------------------------------------------------------------------------------------
# cli_mask.h, host only
# ---------------------------------------------------------------------------------------------
MASK_PROGRAM = r"""
#include <cstdio>
#include <stdexcept>
#include "common/cli_mask.h"
int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        try {
            const bench::CliMask m = bench::parse_cli_mask(argv[i]);
            std::printf("%s %d %d %d %s\n", argv[i], m.spec.type, m.spec.left, m.spec.right, m.name.c_str());
        } catch (const std::invalid_argument& e) {
            std::printf("%s error %s\n", argv[i], e.what());
        }
    }
}
"""


@pytest.fixture(scope="module")
def mask_tool(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_mask")
    (d / "main.cpp").write_text(MASK_PROGRAM)
    cmd = ["g++", "-std=c++20", "-O1", "-I", str(ROOT / "src"), "-I", str(ROOT / "benchmark"),
           str(d / "main.cpp"), "-o", str(d / "mask_tool")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return d / "mask_tool"


MASK_CASES = {
    # spelling: (mask_type, left, right, printed name)
    "0": (0, -1, -1, "n"),
    "n": (0, -1, -1, "n"),
    "1": (1, -1, 0, "t"),
    "t": (1, -1, 0, "t"),
    "2": (2, -1, 0, "b"),
    "b": (2, -1, 0, "b"),
    "t:128,30": (1, 128, 30, "t(128:30)"),
    "b:4,35": (2, 4, 35, "b(4:35)"),
    "t:-1,0": (1, -1, 0, "t"),
    "b:-1,-1": (2, -1, -1, "b(-1:-1)"),
    "xt:0": (1, -1, 0, "t"),
    "xb:-3": (2, -1, 0, "b"),
    "xt:16": (1, 8, 7, "t(8:7)"),
    "xb:5": (2, 2, 2, "b(2:2)"),
    "xt:1": (1, 0, 0, "t(0:0)"),
    "g:3,2": (3, 2, 1, "g(3:2)"),
    "g:0,5": (3, -1, 4, "g(0:5)"),
}


def test_cli_mask_spellings(mask_tool):
    bad = ["t:1", "t:a,b", "x", "3", "g:1,2,3", "xt:", "b:1,", "q:1,2", "", "t:1.5,2", "xt:9999999999"]
    r = subprocess.run([str(mask_tool), *MASK_CASES, *bad], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(MASK_CASES) + len(bad)
    for line, (spelling, want) in zip(lines, MASK_CASES.items()):
        got = line.split()
        assert got[0] == spelling
        assert (int(got[1]), int(got[2]), int(got[3]), got[4]) == want, line
    for line, spelling in zip(lines[len(MASK_CASES):], bad):
        assert " error -mask: malformed mask '" + spelling + "'" in line, line
