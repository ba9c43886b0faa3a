"""Split-KV (aiter::mha_fwd_splitkv) on a CPU machine: codegen of the fwd_splitkv family, host
validation errors and the num_splits heuristic (tests/cpp/splitkv_checks.cpp, linked against the
ci build, no GPU), and the benchmark's split-KV flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run

sys.path.insert(0, str(REPO))
from codegen import generate as gen  # noqa: E402
from codegen import instances as table  # noqa: E402

GENERATE = REPO / "codegen" / "generate.py"


def generate_cli(*args):
    return run([sys.executable, GENERATE, *args])


# --- codegen ---------------------------------------------------------------------------------


def test_default_splitkv_set():
    names = generate_cli("--api", "fwd_splitkv", "--list").stdout.split()
    assert len(names) == 18 and len(set(names)) == 18
    assert "fmha_fwd_splitkv_bf16_d128_mask" in names
    # the deep tile exists for the d128 bucket only
    assert sorted(n for n in names if n.endswith("_deep")) == sorted(
        f"fmha_fwd_splitkv_{dt}_d128_{mk}_deep" for dt in ("fp16", "bf16") for mk in ("mask", "nomask"))
    assert "fmha_fwd_splitkv_combine_fp16" in names and "fmha_fwd_splitkv_combine_bf16" in names
    assert all(n.startswith("fmha_fwd_splitkv_") for n in names)


def test_ci_preset_has_one_splitkv_instance_and_its_combine():
    names = generate_cli("--api", "fwd_splitkv", "--preset", "ci", "--list").stdout.split()
    assert names == ["fmha_fwd_splitkv_fp16_d64_nomask", "fmha_fwd_splitkv_combine_fp16"]


def test_invalid_splitkv_fields_are_named():
    with pytest.raises(ValueError, match="SplitkvInstance.hdim"):
        table.SplitkvInstance("fp16", 32, "mask")
    with pytest.raises(ValueError, match="SplitkvInstance.deep"):
        table.SplitkvInstance("bf16", 64, "mask", deep=True)
    with pytest.raises(ValueError, match="SplitkvCombineInstance.dtype"):
        table.SplitkvCombineInstance("fp8")


def test_generated_splitkv_files(tmp_path):
    g = gen.generate(tmp_path, ["fwd_splitkv"], "default", ["*bf16_d128_mask", "*bf16_d128_mask_deep", "*combine_bf16"])
    assert sorted(g.names) == ["fmha_fwd_splitkv_bf16_d128_mask", "fmha_fwd_splitkv_bf16_d128_mask_deep",
                               "fmha_fwd_splitkv_combine_bf16"]
    deep = (tmp_path / "fmha_fwd_splitkv_bf16_d128_mask_deep.cu").read_text()
    assert "launch_fwd_splitkv<SplitkvKey{DType::bf16, 128, MaskKind::window, true}>" in deep
    inst = (tmp_path / "fmha_fwd_splitkv_bf16_d128_mask.cu").read_text()
    key = "SplitkvKey{DType::bf16, 128, MaskKind::window}"
    assert '#include "kernels/fwd_splitkv/launch.cuh"' in inst
    assert f"template cudaError_t launch_fwd_splitkv<{key}>(const SplitkvParams&, cudaStream_t);" in inst
    comb = (tmp_path / "fmha_fwd_splitkv_combine_bf16.cu").read_text()
    assert "template cudaError_t launch_fwd_splitkv_combine<DType::bf16>" in comb
    tab = (tmp_path / "fwd_splitkv_table.cu").read_text()
    assert "const int kNumSplitkvInstances = 2;" in tab and "const int kNumSplitkvCombineInstances = 1;" in tab
    assert (tmp_path / "fwd_v2_table.cu").is_file()  # the library's other table, empty
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert {i["family"] for i in m["instances"]} == {"fwd_splitkv"}


def test_empty_splitkv_tables(tmp_path):
    gen.generate(tmp_path, ["fwd"], "ci")
    tab = (tmp_path / "fwd_splitkv_table.cu").read_text()
    assert "const int kNumSplitkvInstances = 0;" in tab and "const int kNumSplitkvCombineInstances = 0;" in tab


# --- host API: validation and heuristic ------------------------------------------------------


@pytest.mark.slow
def test_splitkv_validation_and_heuristic(ci_build, tmp_path):
    exe = tmp_path / "splitkv_checks"
    res = run(["nvcc", "-std=c++20", "-O1", "-I", REPO / "include", "-I", REPO / "src",
               REPO / "tests/cpp/splitkv_checks.cpp", REPO / "src/fwd/splitkv_heuristic.cpp",
               "-L", ci_build, "-lmha_fwd", f"-Xlinker=-rpath={ci_build}", "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    lines = res.stdout.splitlines()
    assert lines and lines[-1] == "0 failed", res.stdout + res.stderr
    assert not [l for l in lines if l.startswith("FAIL")]
    assert len([l for l in lines if l.startswith("ok ")]) >= 30, res.stdout
    assert any("page_block_size: expected a power of two >= 16" in l for l in lines), res.stdout
    assert any("o_acc_ptr: expected a device pointer" in l for l in lines), res.stdout


# --- benchmark flags -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench(ci_build):
    exe = Path(ci_build) / "benchmark_mha_fwd"
    if not exe.is_file():
        pytest.fail(f"{exe} was not built", pytrace=False)
    return exe


@pytest.mark.slow
@pytest.mark.parametrize("args,named", [
    (["-page_block_size=24"], "-page_block_size"),
    (["-page_block_size=8"], "-page_block_size"),
    (["-num_splits=129"], "-num_splits"),
    (["-num_splits=-1"], "-num_splits"),
    (["-splitkv=x"], "-splitkv"),
])
def test_bad_splitkv_flags(bench, args, named):
    r = subprocess.run([str(bench), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 255, r.stdout + r.stderr
    assert named in r.stderr


@pytest.mark.slow
def test_help_lists_splitkv_flag(bench):
    r = subprocess.run([str(bench), "-?"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "-splitkv " in r.stdout
