"""CPU tests for benchmark/ncu_source_summary.py on a small hand-made ncu source page."""

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmark", "ncu_source_summary.py")

spec = importlib.util.spec_from_file_location("ncu_source_summary", SCRIPT)
nss = importlib.util.module_from_spec(spec)
sys.dont_write_bytecode = True
spec.loader.exec_module(nss)
sys.dont_write_bytecode = False

HEADER = ["Address", "Source", "# Samples", "Instructions Executed", "stall_barrier", "stall_wait",
          "stall_mio", "stall_barrier (Not Issued)"]
# (source, samples, executions, barrier, wait, mio): 100 samples in all.
ROWS = [
    ("LDC R1, c[0x0][0x28]", 5, 10, 0, 5, 0),
    ("HGMMA.64x128x16.F32.BF16 R88, gdesc[UR20], RZ, !UPT", 20, 40, 0, 2, 18),
    ("@!P0  BRA 0x7f0", 15, 40, 0, 15, 0),
    ("WARPGROUP.DEPBAR.LE gsb0, 0x0", 60, 40, 55, 5, 0),
]


def _write(tmp_path):
    lines = ['"Kernel Name","fwd_v3_kernel"']
    lines.append(",".join(f'"{h}"' for h in HEADER))
    for i, (src, s, ex, b, w, m) in enumerate(ROWS):
        lines.append(",".join(f'"{v}"' for v in (hex(0x100 + 16 * i), src, s, ex, b, w, m, b)))
    p = tmp_path / "src.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_load_skips_the_kernel_line_and_finds_stall_columns(tmp_path):
    recs, stalls = nss.load(_write(tmp_path))
    assert len(recs) == 4
    assert stalls == ["stall_barrier", "stall_wait", "stall_mio"]  # "(Not Issued)" columns left out
    assert recs[3]["Source"].startswith("WARPGROUP")


def test_summary_shares_opcodes_stalls_and_ranges(tmp_path):
    recs, stalls = nss.load(_write(tmp_path))
    out = nss.summarize(recs, stalls, top=2, cuts=(2,))
    text = "\n".join(out)
    assert out[0] == "instructions 4, samples 100"
    hot = [l for l in out if l.startswith("     1 ") or l.startswith("     3 ")]
    assert len(hot) == 2  # the two hottest, in listing order
    assert "60.00%" in hot[1] and "barrier:55" in hot[1]
    assert "mio:18" in hot[0]
    # the predicated branch counts as BRA, the GEMM as HGMMA
    assert any(l.startswith("BRA ") and "15.00%" in l for l in out)
    assert any(l.startswith("HGMMA ") and "20.00%" in l for l in out)
    assert any(l.startswith("barrier ") and "55.00%" in l for l in out)
    assert "[     0,     2)  25.00%" in text and "[     2,     4)  75.00%" in text
    # cuts in any order, repeated or out of range: the same ranges
    assert nss.summarize(recs, stalls, top=2, cuts=(2, 9, 2, 0))[-2:] == out[-2:]


def test_no_samples_and_bad_file(tmp_path):
    recs, stalls = nss.load(_write(tmp_path))
    for r in recs:
        r["# Samples"] = "0"
    assert nss.summarize(recs, stalls)[-1].startswith("no samples")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = subprocess.run([sys.executable, SCRIPT, str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "no header row" in r.stderr
    r = subprocess.run([sys.executable, SCRIPT, str(_write(tmp_path)), "--cuts", "x"], capture_output=True, text=True)
    assert r.returncode != 0 and "--cuts" in r.stderr
