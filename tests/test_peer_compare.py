"""CPU tests for benchmark/peer_compare.py: result-line parser, FLOPs, shapes, markdown writer.

No GPU, no torch: only the pure-Python parts are exercised.
"""

import importlib.util
import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmark", "peer_compare.py")


def _load():
    spec = importlib.util.spec_from_file_location("peer_compare", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["peer_compare"] = mod
    spec.loader.exec_module(mod)
    return mod


sys.dont_write_bytecode = True
pc = _load()
sys.dont_write_bytecode = False

LINE_KNAME = ("[bf16|batch|bshd] b:2, h:8/8, s:3328/3328, d:128/128, scale_s:0.0883883, bias:n, "
              "p_drop:0, lse:0, mask:n, v:r, fmha_fwd_v2_bf16_d128_nomask, 1.234 ms, "
              "456.78 TFlops, 123.45 GB/s, valid:y")


# ---------------------------------------------------------------- parser

def test_parse_supported_line_with_kernel_name():
    r = pc.parse_result_line(LINE_KNAME)
    assert r["supported"]
    assert (r["prec"], r["mode"], r["layout"]) == ("bf16", "batch", "bshd")
    assert r["ms"] == pytest.approx(1.234)
    assert r["tflops"] == pytest.approx(456.78)
    assert r["gbs"] == pytest.approx(123.45)
    assert r["kernel"] == "fmha_fwd_v2_bf16_d128_nomask"
    assert r["valid"] == "y"
    assert r["fields"]["h"] == "8/8" and r["fields"]["s"] == "3328/3328"


def test_parse_supported_line_without_kernel_name():
    line = LINE_KNAME.replace(" fmha_fwd_v2_bf16_d128_nomask,", "")
    r = pc.parse_result_line(line)
    assert r["supported"] and r["kernel"] is None
    assert r["ms"] == pytest.approx(1.234) and r["tflops"] == pytest.approx(456.78)


def test_parse_group_mode_line():
    line = ("[fp16|group|bhsd] b:3, h:4/2, s:100/256, d:64/64, scale_s:0.125, bias:n, "
            "p_drop:0, lse:1, mask:b(-1:0), v:r, fmha_fwd_v3_fp16_d64_causal_group, "
            "0.05 ms, 12 TFlops, 3.5 GB/s, valid:y")
    r = pc.parse_result_line(line)
    assert (r["prec"], r["mode"], r["layout"]) == ("fp16", "group", "bhsd")
    assert r["kernel"] == "fmha_fwd_v3_fp16_d64_causal_group"
    assert r["ms"] == pytest.approx(0.05) and r["tflops"] == pytest.approx(12.0)


def test_parse_unsupported_line():
    line = ("[bf16|batch|bshd] b:2, h:8/8, s:3328/3328, d:96/96, scale_s:0.1, bias:n, "
            "p_drop:0, lse:0, mask:n, v:r, not supported yet")
    r = pc.parse_result_line(line)
    assert r is not None and not r["supported"]
    assert r["ms"] is None and r["tflops"] is None and r["kernel"] is None


def test_parse_ignores_other_lines_and_find_takes_result():
    assert pc.parse_result_line("using device NVIDIA H100") is None
    assert pc.parse_result_line("") is None
    out = "some log line\n" + LINE_KNAME + "\n"
    assert pc.find_result_line(out)["kernel"] == "fmha_fwd_v2_bf16_d128_nomask"
    assert pc.find_result_line("no result here\n") is None


def test_run_ours_with_fake_executable(tmp_path):
    exe = tmp_path / "fake_bench"
    exe.write_text("#!/bin/sh\necho \"args: $*\"\necho '" + LINE_KNAME + "'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    shape = pc.Shape("bf16", True, 2, 8, 8, 3328, 3328, 128, 128)
    res = pc.run_ours(str(exe), shape, "fwd", 3, 10, ["-fwd_v3=1"], timeout_s=30)
    assert res.error is None
    assert res.ms == pytest.approx(1.234) and res.kernel == "fmha_fwd_v2_bf16_d128_nomask"
    missing = pc.run_ours(str(tmp_path / "nope"), shape, "fwd", 3, 10, [], timeout_s=30)
    assert missing.ms is None and "not found" in missing.error


def test_ours_command_flags():
    shape = pc.Shape("fp16", True, 4, 16, 8, 4096, 4096, 128, 64)
    cmd = pc.ours_command("bench", shape, "fwd", 3, 10, ["-fwd_v3=1"])
    for flag in ("-v=0", "-warmup=3", "-repeat=10", "-kname=1", "-prec=fp16", "-b=4", "-h=16",
                 "-h_k=8", "-s=4096", "-s_k=4096", "-d=128", "-d_v=64", "-mask=2", "-iperm=0",
                 "-operm=0", "-lse=1", "-fwd_v3=1"):
        assert flag in cmd
    bwd = pc.ours_command("bench", pc.Shape("bf16", False, 1, 1, 1, 8, 8, 64, 64), "bwd", 1, 1)
    assert "-mask=0" in bwd and "-lse=1" not in bwd


# ---------------------------------------------------------------- FLOPs

def test_fwd_flops_noncausal():
    sh = pc.Shape("bf16", False, 2, 8, 8, 3328, 3328, 128, 128)
    assert pc.fwd_flops(sh) == 2 * 8 * (2 * 3328 * 3328 * 128 + 2 * 3328 * 3328 * 128)
    assert pc.flops(sh, "bwd") == pytest.approx(2.5 * pc.fwd_flops(sh))
    sh2 = pc.Shape("bf16", False, 1, 4, 2, 100, 300, 192, 128)
    assert pc.fwd_flops(sh2) == 4 * (2 * 100 * 300 * 192 + 2 * 100 * 300 * 128)


def test_fwd_flops_causal_square():
    s = 4096
    sh = pc.Shape("fp16", True, 4, 16, 16, s, s, 128, 128)
    kept = s * (s + 1) // 2
    assert pc.fwd_flops(sh) == 4 * 16 * (2 * kept * 128 + 2 * kept * 128)
    # TFLOP/s = flops / time
    assert pc.tflops_from_ms(1e12, 1.0) == pytest.approx(1000.0)
    assert pc.tflops_from_ms(1e12, None) is None


@pytest.mark.parametrize("sq,sk", [(1, 1), (5, 5), (3, 7), (7, 3), (1, 10), (10, 1), (4, 0),
                                   (0, 4), (33, 64)])
def test_kept_positions_bottom_right_matches_brute_force(sq, sk):
    brute = sum(1 for i in range(sq) for j in range(sk) if j <= i + (sk - sq))
    assert pc.kept_positions(sq, sk, True) == brute
    assert pc.kept_positions(sq, sk, False) == sq * sk


# ---------------------------------------------------------------- shapes and options

def test_default_shapes_are_16k_tokens_hidden_2048():
    shapes = pc.make_shapes()
    assert len(shapes) == 2 * 3 * 2 * 6
    for sh in shapes:
        assert sh.b * sh.s == 16384
        assert sh.h * sh.d == 2048 and sh.h_k == sh.h
        assert sh.s == sh.s_k and sh.d == sh.d_v
    assert {(sh.d, sh.h) for sh in shapes} == {(64, 32), (128, 16), (256, 8)}
    assert {sh.s for sh in shapes} == {512, 1024, 2048, 4096, 8192, 16384}
    assert {sh.dtype for sh in shapes} == {"bf16", "fp16"}
    assert {sh.causal for sh in shapes} == {False, True}


def test_gqa_and_hdim_pairs():
    shapes = pc.make_shapes(["bf16"], pc.parse_hdims("192x128"), [1024], [True], gqa=2)
    (sh,) = shapes
    assert (sh.d, sh.d_v, sh.h, sh.h_k, sh.b) == (192, 128, 10, 5, 16)
    assert pc.parse_hdims("64,128,192x128") == [(64, 64), (128, 128), (192, 128)]
    assert pc.parse_causal("0,1") == [False, True]
    assert pc.parse_int_list("512, 1024") == [512, 1024]


def test_quick_is_four_shapes():
    args = pc.build_parser().parse_args(["--quick"])
    dtypes, hdims, seqlens, causals, peers = pc.resolve_args(args)
    assert len(pc.make_shapes(dtypes, hdims, seqlens, causals)) == 4
    assert peers == ["cudnn", "fa2"]
    args = pc.build_parser().parse_args(["--quick", "--peers", "none", "--hdims", "64"])
    dtypes, hdims, seqlens, causals, peers = pc.resolve_args(args)
    assert peers == [] and hdims == [(64, 64)]


def test_help_runs_without_torch():
    out = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--copy-bw" in out.stdout


# ---------------------------------------------------------------- reporting

def _rows():
    sh1 = pc.Shape("bf16", False, 8, 16, 16, 2048, 2048, 128, 128)
    sh2 = pc.Shape("bf16", True, 1, 16, 16, 16384, 16384, 128, 128)
    r1 = pc.make_record(sh1, "fwd", {
        "ours": pc.Result(ms=1.0, tflops=None, kernel="fmha_fwd_v3_bf16_d128"),
        "cudnn": pc.Result(ms=1.1),
        "fa2": pc.Result(error="RuntimeError: No available kernel. Aborting execution."),
    })
    r2 = pc.make_record(sh2, "fwd", {
        "ours": pc.Result(error="not supported yet"),
        "cudnn": pc.Result(ms=2.0),
        "fa2": pc.Result(ms=3.0),
    })
    return [r1, r2]


def test_markdown_table_with_none_entries():
    rows = _rows()
    md = pc.markdown_table(rows)
    lines = md.splitlines()
    assert lines[0].startswith("| dtype | causal | d | b | h | s | ours ms | ours TFLOP/s")
    assert "cuDNN TFLOP/s" in lines[0] and "ours/FA2" in lines[0] and "kernel" in lines[0]
    assert len(lines) == 4
    ncol = lines[0].count("|")
    assert all(l.count("|") == ncol for l in lines)
    row1 = [c.strip() for c in lines[2].strip("|").split("|")]
    ours_tf = pc.fwd_flops(pc.Shape(**rows[0]["shape"])) / 1e-3 / 1e12
    assert row1[6] == "1.000" and row1[7] == f"{ours_tf:.1f}"
    assert row1[10] == "1.10"          # ours/cuDNN = 1.1 ms / 1.0 ms
    assert row1[9] == "—" and row1[11] == "—"   # FA2 failed
    assert row1[12] == "`fmha_fwd_v3_bf16_d128`"
    row2 = [c.strip() for c in lines[3].strip("|").split("|")]
    assert row2[1] == "y" and row2[6] == "—" and row2[10] == "—" and row2[12] == "—"
    notes = pc.error_notes(rows)
    assert "FA2 (1 shape): RuntimeError: No available kernel" in notes
    assert "ours (1 shape): not supported yet" in notes
    summary = pc.summary_table(rows)
    assert "| bf16 | 128 | n | 1.10 | — |" in summary


def test_records_are_json_serialisable():
    import json
    text = json.dumps(_rows())
    assert json.loads(text)[1]["results"]["ours"]["error"] == "not supported yet"


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    assert pc.plot(_rows(), str(path), "test") is None
    assert path.stat().st_size > 1000


def test_sdpa_failure_reasons_keep_only_the_reason():
    msgs = [
        "Memory efficient kernel not used because: (Triggered internally at /x/sdp_utils.cpp:986.)",
        "Memory Efficient attention has been runtime disabled. (Triggered internally at /x.h:552.)",
        "Flash attention kernel not used because: (Triggered internally at /x/sdp_utils.cpp:988.)",
        "Flash attention requires q,k,v to have the same last dimension and to be less than or "
        "equal to 256. Got Query.size(-1): 100 instead. (Triggered internally at /x.cpp:180.)",
    ]
    assert pc.sdpa_failure_reasons(msgs) == [
        "Flash attention requires q,k,v to have the same last dimension and to be less than or "
        "equal to 256. Got Query.size(-1): 100 instead."]


def test_git_revision_can_come_from_the_caller(monkeypatch):
    """A copied tree (the device machine) may carry stale git metadata: AITER_GIT_REV wins;
    without it the record holds `git describe` of the checkout (or n/a)."""
    args = pc.build_parser().parse_args(["--no-ours", "--peers", "none"])
    monkeypatch.setenv("AITER_GIT_REV", "abc1234")
    assert pc.collect_env(args)["git"] == "abc1234"
    monkeypatch.delenv("AITER_GIT_REV")
    assert pc.collect_env(args)["git"] not in ("", "abc1234")


def test_header_reports_the_gemm_ceiling():
    """--gemm-ceiling puts the measured dense-GEMM rate per dtype in the header (the ceiling
    the attention numbers are read against); without it the header has no such line."""
    info = {"date": "2026-11-23", "mode": "fwd", "warmup": 3, "repeat": 10,
            "gemm": {"bf16": {"n": 8192, "ms": 1.5, "TFLOP/s": 733.04},
                     "fp16": {"n": 8192, "ms": 1.4, "TFLOP/s": 785.4}}}
    head = pc.env_header(["benchmark/peer_compare.py", "--gemm-ceiling"], info)
    assert "- dense GEMM ceiling (torch.matmul 8192x8192x8192, cuBLAS): bf16 733 TFLOP/s, fp16 785 TFLOP/s" in head
    del info["gemm"]
    assert "GEMM" not in pc.env_header(["x"], info)
    assert pc.build_parser().parse_args(["--gemm-ceiling"]).gemm_ceiling
