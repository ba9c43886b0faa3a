"""libmha_bwd.so of the ci build (one bwd instance, built by the shared `ci_build` fixture):
exported API, dependencies, the benchmark, and host-side validation (no GPU needed)."""

from __future__ import annotations

import os
import re

import pytest

from conftest import REPO, run

pytestmark = pytest.mark.slow

ALLOWED_NEEDED = re.compile(r"^(libcudart\.so\.13|libstdc\+\+\.so\.6|libm\.so\.6|libgcc_s\.so\.1|"
                            r"libc\.so\.6|ld-linux-x86-64\.so\.2)$")


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", path]).stdout)


def test_library_exports_the_bwd_api(ci_build):
    so = ci_build / "libmha_bwd.so"
    assert so.is_file()
    syms = run(["nm", "-DC", "--defined-only", so]).stdout
    assert "aiter::mha_bwd(aiter::mha_bwd_args, aiter::stream_config const&)" in syms
    assert "aiter::mha_bwd_check(" in syms and "aiter::mha_bwd_instances" in syms
    libs = needed(so)
    assert "libcudart.so.13" in libs and all(ALLOWED_NEEDED.match(l) for l in libs), libs


def test_benchmark_links_the_bwd_library(ci_build):
    exe = ci_build / "benchmark_mha_bwd"
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert "libmha_bwd.so" in needed(exe)
    assert "[$ORIGIN]" in run(["readelf", "-d", exe]).stdout


def test_benchmark_help_and_bad_flags_need_no_gpu(ci_build):
    exe = ci_build / "benchmark_mha_bwd"
    res = run([exe, "-?"])
    assert res.returncode == 0
    for flag in ("-deterministic", "-dbias", "-bwd_v3", "-v3_atomic_fp32", "-det_runs", "-mask"):
        assert flag in res.stdout, flag
    assert "2.5 x the forward FLOPs" in res.stdout
    res = run([exe, "-prec=fp8bf16"])
    assert res.returncode == 256 - 3 and "-prec" in res.stderr
    res = run([exe, "-h=3", "-h_k=2"])
    assert res.returncode == 255 and "-h_k" in res.stderr


@pytest.fixture(scope="module")
def validation_exe(ci_build, tmp_path_factory):
    exe = tmp_path_factory.mktemp("bwd_validation") / "bwd_validation"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", REPO / "tests/cpp/bwd_validation.cpp",
               "-L", ci_build, "-lmha_bwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    return exe


def test_every_bad_argument_names_its_field(validation_exe):
    res = run([validation_exe])
    lines = res.stdout.splitlines()
    assert lines and lines[-1] == "0 failed", res.stdout + res.stderr
    assert res.returncode == 0
    assert not [l for l in lines if l.startswith("FAIL")]
    # 18 invalid cases x (mha_bwd, mha_bwd_check) + 5 unsupported cases
    assert len([l for l in lines if l.startswith("ok ")]) == 18 * 2 + 5, res.stdout
    assert any("nhead_k: expected a divisor of nhead_q (8), got 3" in l for l in lines), res.stdout
    assert any("dropout" in l and "not supported yet" in l for l in lines), res.stdout


def test_benchmarks_say_when_there_is_no_gpu(ci_build):
    """On a machine without a GPU both benchmarks stop with "no CUDA device found" (exit 1),
    not with the runtime's driver-version error."""
    from conftest import gpu_skip_reason
    if not gpu_skip_reason():
        pytest.skip("a GPU is present")
    for name in ("benchmark_mha_fwd", "benchmark_mha_bwd"):
        res = run([ci_build / name, "-b=1", "-h=1", "-s=64", "-d=64"])
        assert res.returncode == 1 and "no CUDA device found" in res.stderr, res.stderr
