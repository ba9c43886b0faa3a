"""Host-side validation of aiter::mha_fwd: bad arguments give std::invalid_argument naming the
field (no crash, no CUDA call), unsupported-but-valid ones give -1 plus a reason. Runs on a
machine without a GPU: tests/cpp/fwd_validation.cpp is linked against the ci build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def validation_exe(ci_build, tmp_path_factory):
    exe = tmp_path_factory.mktemp("validation") / "fwd_validation"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", REPO / "tests/cpp/fwd_validation.cpp",
               "-L", ci_build, "-lmha_fwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    return exe


def test_every_bad_argument_names_its_field(validation_exe):
    res = run([validation_exe])
    lines = res.stdout.splitlines()
    assert lines and lines[-1] == "0 failed", res.stdout + res.stderr
    assert res.returncode == 0
    oks = [l for l in lines if l.startswith("ok ")]
    # 23 invalid cases x (mha_fwd, mha_fwd_check) + the unsupported alibi case + 7 v3 selections
    assert len(oks) == 23 * 2 + 1 + 7, res.stdout
    # s = 64 prefers d64's short-sequence tile; the ci build has only the default one, which runs
    assert any(l.startswith("ok v3 compiled bucket: answer 1 fmha_fwd_v3_fp16_d64_mask") for l in lines), res.stdout
    assert any(l.startswith("ok v3 long sequence, default tile: answer 1 fmha_fwd_v3_fp16_d64_mask")
               for l in lines), res.stdout
    assert any(l.startswith("ok v3 2^31 tiles or more (masked): answer -1") and "at most 2^31 - 1" in l
               for l in lines), res.stdout
    assert not [l for l in lines if l.startswith("FAIL")]
    # spot-check wording: field, expectation and value
    assert any("nhead_k: expected a divisor of nhead_q (8), got 3" in l for l in lines), res.stdout
    assert any("hdim_q: expected a value in [1, 256], got 257" in l for l in lines), res.stdout


def run_host_check(tmp_path, compiler, source, n_ok):
    """Builds a host-only check program (prints "ok <case>" / "FAIL <case>: ..." and
    "<n> failed" last), runs it, and requires n_ok passing cases and no failure."""
    exe = tmp_path / Path(source).stem
    res = run([compiler, "-std=c++20", "-O1", "-I", REPO / "include", "-I", REPO / "src", REPO / source, "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    lines = res.stdout.splitlines()
    assert lines and lines[-1] == "0 failed" and res.returncode == 0, res.stdout + res.stderr
    assert len([l for l in lines if l.startswith("ok ")]) == n_ok, res.stdout


def test_bwd_dq_accumulator_layout(tmp_path):
    """The backward's dQ accumulator tiles: group-mode batches never share a tile and fit the
    workspace; inside a tile every float is addressed once and a warp's pair is contiguous
    (tests/cpp/bwd_acc_layout.cpp)."""
    run_host_check(tmp_path, "g++", "tests/cpp/bwd_acc_layout.cpp", 2 * (10 + 20) + 4)


def test_tile_order_visits_every_tile_once(tmp_path):
    """The forward tile order (masked: heaviest first inside L2 sections) is a permutation of
    the tiles for many grids and section sizes, the v3 kernels' TileDecoder gives the same
    tiles, and FastDiv divides exactly (tests/cpp/tile_order.cu)."""
    run_host_check(tmp_path, "nvcc", "tests/cpp/tile_order.cu", 7 * 7 * 2 + 1)


def test_graph_capture_check_builds_and_needs_a_gpu(ci_build, tmp_path):
    """tests/cpp/graph_capture_gpu.cpp (every API captured in a CUDA graph and replayed; run on
    the GPU machine by benchmark/gpu_check.sh graph) builds against both libraries; without a
    GPU it says so and fails instead of passing."""
    exe = tmp_path / "graph_capture_gpu"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", REPO / "tests/cpp/graph_capture_gpu.cpp",
               "-L", ci_build, "-lmha_fwd", "-lmha_bwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    if res.returncode == 2:
        assert res.stdout.strip() == "no CUDA device", res.stdout
    else:  # a machine with a GPU runs the real check
        assert res.returncode == 0 and res.stdout.splitlines()[-1].endswith(" 0 failed"), res.stdout


def test_bad_arguments_are_refused_by_call_and_check(ci_build, tmp_path):
    """tests/cpp/bad_args.cpp: the arguments that could corrupt memory or silently give a wrong
    answer (overlapping outputs, misaligned pointers, spans past 2^48 bytes, lengths and grids
    past 32 bits) through mha_fwd (v2 and v3 selection), mha_fwd_splitkv and mha_bwd, each
    refused with std::invalid_argument naming the field by the call and by its *_check alike;
    valid edge cases (broadcast inputs, unused workspaces) accepted."""
    exe = tmp_path / "bad_args"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", REPO / "tests/cpp/bad_args.cpp",
               "-L", ci_build, "-lmha_fwd", "-lmha_bwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    lines = res.stdout.splitlines()
    assert res.returncode == 0 and not [l for l in lines if l.startswith("FAIL")], res.stdout
    passed, failed = (int(w) for w in re.match(r"(\d+) passed, (\d+) failed$", lines[-1]).groups())
    assert failed == 0 and passed >= 150, lines[-1]
    # every output family and every kind of hole is covered
    for needle in ("outputs overlap", "2^60", "odd ", "not 4-byte aligned", "near 2^31", "past 2^48",
                   "splitkv: ", "bwd: ", "fwd v3: ", "valid: "):
        assert any(needle in l for l in lines), needle


def test_check_answers_what_the_call_does(ci_build, tmp_path):
    """tests/cpp/check_vs_call.cpp: over an enumeration of the selection flags (dtype, mask, v3,
    v3_api_check, soft-cap, head dims, deterministic, dropout/ALiBi, paging, splits), every
    *_check says supported exactly when its call selects a kernel (on a machine without a GPU
    the call then fails at the launch) and unsupported exactly when the call returns -1."""
    exe = tmp_path / "check_vs_call"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", REPO / "tests/cpp/check_vs_call.cpp",
               "-L", ci_build, "-lmha_fwd", "-lmha_bwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    assert res.returncode == 0, res.stdout[-5000:]
    last = res.stdout.splitlines()[-1]
    if "skipped" not in last:
        passed, failed = (int(w) for w in re.match(r"(\d+) passed, (\d+) failed$", last).groups())
        assert failed == 0 and passed >= 800, last
