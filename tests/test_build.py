"""compile.py / build_mha.sh / CMakeLists.txt: the ci-preset build and the build's error messages.

The slow tests share one build (the session fixture `ci_build` in conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from conftest import CI_BUILD_ARGS, REPO, compile_py, run

# What libmha_fwd.so may depend on: the CUDA runtime and the C/C++ runtime.
ALLOWED_NEEDED = re.compile(r"^(libcudart\.so\.13|libstdc\+\+\.so\.6|libm\.so\.6|libgcc_s\.so\.1|"
                            r"libc\.so\.6|ld-linux-x86-64\.so\.2)$")
HAS_BENCH_SOURCE = (REPO / "benchmark" / "benchmark_mha_fwd.cpp").is_file()


def needed(path):
    out = run(["readelf", "-d", path]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


# --- the ci build ------------------------------------------------------------------------


@pytest.mark.slow
def test_library_is_built(ci_build):
    so = ci_build / "libmha_fwd.so"
    assert so.is_file() and so.stat().st_size > 0
    log = (ci_build / "compile_log.txt").read_text()
    assert "build wall time" in log


@pytest.mark.slow
def test_library_exports_the_api(ci_build):
    syms = run(["nm", "-DC", "--defined-only", ci_build / "libmha_fwd.so"]).stdout
    assert "aiter::mha_fwd(aiter::mha_fwd_args, aiter::stream_config const&)" in syms
    assert "aiter::mha_fwd_check(" in syms
    assert "aiter::mha_fwd_instances" in syms


@pytest.mark.slow
def test_library_depends_only_on_the_cuda_runtime(ci_build):
    libs = needed(ci_build / "libmha_fwd.so")
    assert "libcudart.so.13" in libs
    assert all(ALLOWED_NEEDED.match(l) for l in libs), libs
    soname = run(["readelf", "-d", ci_build / "libmha_fwd.so"]).stdout
    assert "Library soname: [libmha_fwd.so]" in soname


@pytest.mark.slow
def test_generated_files_are_in_the_build_folder(ci_build):
    gen = ci_build / "gen"
    assert (gen / "manifest.json").is_file() and (gen / "fwd_v2_table.cu").is_file()
    assert sorted(p.name for p in gen.glob("fmha_fwd_v2_*.cu")) == [
        "fmha_fwd_v2_fp16_d64_mask.cu", "fmha_fwd_v2_fp16_d64_nomask.cu",
        "fmha_fwd_v2_fp16_d64_nomask_unaligned.cu"]
    assert sorted(p.name for p in gen.glob("fmha_bwd_*.cu")) == ["fmha_bwd_v2_fp16_d64_mask.cu"]
    assert (gen / "bwd_v2_table.cu").is_file()
    text = (ci_build / "build.ninja").read_text()
    assert "deps = gcc" in text and "-MD -MF $out.d" in text
    assert "-gencode=arch=compute_90a,code=sm_90a" in text
    assert "compute_80" not in text


@pytest.mark.slow
@pytest.mark.skipif(not HAS_BENCH_SOURCE, reason="benchmark/benchmark_mha_fwd.cpp does not exist yet")
def test_benchmark_links_the_library_with_origin_rpath(ci_build):
    exe = ci_build / "benchmark_mha_fwd"
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert "libmha_fwd.so" in needed(exe)
    assert "[$ORIGIN]" in run(["readelf", "-d", exe]).stdout


@pytest.mark.slow
def test_second_run_is_a_no_op(ci_build):
    res = compile_py(*CI_BUILD_ARGS, "--output-dir", ci_build, cwd=REPO / "docs")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ninja: no work to do." in res.stdout
    assert "wrote" not in res.stdout  # build.ninja unchanged


@pytest.mark.slow
def test_build_mha_sh_passes_options_through(ci_build):
    # no api argument: the same default apis (fwd, fwd_splitkv, bwd) as the ci_build fixture
    res = run(["bash", REPO / "build_mha.sh", "--preset", "ci", "--arch", "sm_90a"],
              cwd=ci_build, env={"BUILD_DIR": str(ci_build), "MAX_JOBS": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ninja: no work to do." in res.stdout
    assert "-j 1" in res.stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not found")
def test_cmake_consumer(ci_build, tmp_path):
    """add_subdirectory() + aiter::mha_fwd and aiter::mha_bwd, reusing the ci build (compile.py is a no-op)."""
    build = tmp_path / "consumer"
    res = run(["cmake", "-S", REPO / "examples" / "cmake_consumer", "-B", build,
               # the fixture's apis (compile.py's default), so that reusing its folder is a no-op
               "-DAITER_MHA_API=fwd,fwd_splitkv,fwd_v3,bwd",
               "-DAITER_MHA_PRESET=ci", "-DAITER_MHA_ARCH=sm_90a", f"-DAITER_MHA_BUILD_DIR={ci_build}",
               "-DAITER_MHA_COMPILE_ARGS=--bench"])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(["cmake", "--build", build])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ninja: no work to do." in res.stdout
    res = run([build / "consumer"])
    out = res.stdout + res.stderr
    assert "fmha_fwd_v2_fp16_d64_nomask" in out and "fmha_fwd_v2_fp16_d64_mask" in out
    assert "compiled backward instances:" in out and "fmha_bwd_v2_fp16_d64_mask" in out  # aiter::mha_bwd
    assert "mha_fwd_check: invalid_argument:" in out, out
    assert "mha_fwd: invalid_argument:" in out, out
    assert "nhead" in out, out
    assert res.returncode == 0, out


# --- errors, reported plainly ------------------------------------------------------------


def test_filter_matching_nothing_is_an_error(tmp_path):
    res = compile_py("--preset", "ci", "--arch", "sm_90a", "--filter", "fmha_fwd_v2_fp8*",
                     "--output-dir", tmp_path)
    assert res.returncode != 0
    assert "--filter 'fmha_fwd_v2_fp8*' matches no instance of --api fwd" in res.stderr
    assert "--list" in res.stderr
    assert not (tmp_path / "gen").exists()


def test_invalid_arch_names_it_and_the_valid_list(tmp_path):
    res = compile_py("--arch", "sm_80,sm_75", "--output-dir", tmp_path)
    assert res.returncode != 0
    assert "'sm_75'" in res.stderr
    assert "sm_80, sm_86, sm_89, sm_90, sm_90a" in res.stderr


def test_zero_jobs_is_rejected(tmp_path):
    res = compile_py("--preset", "ci", "--arch", "sm_90a", "-j", "0", "--output-dir", tmp_path)
    assert res.returncode != 0
    assert "-j/--jobs: expected a positive integer, got 0" in res.stderr
    assert not (tmp_path / "build.ninja").exists()


def test_no_gpu_says_which_archs(tmp_path):
    """Without --arch / GPU_ARCHS and with no GPU, the build says so and which archs it takes
    (a filter that matches nothing stops it before anything is compiled)."""
    env = dict(os.environ, PATH="/nonexistent:" + os.environ.get("PATH", ""))
    env.pop("GPU_ARCHS", None)
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine: the archs come from nvidia-smi")
    res = compile_py("--filter", "no_such_instance*", "--output-dir", tmp_path, env=env)
    assert "no GPU found (nvidia-smi): building for sm_80,sm_90a" in res.stdout, res.stdout + res.stderr


def test_invalid_gpu_archs_env(tmp_path):
    res = compile_py("--output-dir", tmp_path, env={"GPU_ARCHS": "gfx942"})
    assert res.returncode != 0
    assert "GPU_ARCHS" in res.stderr and "'gfx942'" in res.stderr


def test_apis_without_instances_are_skipped(tmp_path):
    res = compile_py("--api", "bwd_v3", "--preset", "ci", "--arch", "sm_90a", "--bench", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "no bwd_v3 instances yet: skipping libmha_bwd.so" in res.stdout
    assert "nothing to build" in res.stdout
    assert not (tmp_path / "build" / "libmha_bwd.so").exists()


def test_missing_cutlass_says_how_to_install(tmp_path):
    res = compile_py("--preset", "ci", "--arch", "sm_90a", "--output-dir", tmp_path,
                     env={"CUTLASS_DIR": str(tmp_path / "no_cutlass_here")})
    assert res.returncode != 0
    assert "pip install nvidia-cutlass==4.2.0.0" in res.stderr


def test_compile_error_names_the_instance(tmp_path):
    """A failing compile is reported with the instance name and the compiler output."""
    broken = tmp_path / "broken.h"
    broken.write_text("#error forced compile error for the test\n")
    res = compile_py("--api", "fwd", "--filter", "fmha_fwd_v2_bf16_d32_mask", "--arch", "sm_90a", "--keep-going",
                     "--output-dir", tmp_path / "build",
                     env={"NVCC_APPEND_FLAGS": f"-include {broken}"})
    assert res.returncode == 1
    assert "FAILED: instance fmha_fwd_v2_bf16_d32_mask" in res.stderr
    assert "forced compile error for the test" in res.stderr
    assert "build FAILED" in res.stderr


def test_build_mha_sh_rejects_unknown_api():
    res = run(["bash", REPO / "build_mha.sh", "fwdd"])
    assert res.returncode == 2
    assert "unknown api 'fwdd'" in res.stderr


def test_ptxas_wgmma_serialization_is_collected(tmp_path, monkeypatch):
    """ptxas reports serialized wgmmas as "info"; run_ninja collects them (the build repeats
    them at its end) and leaves every other line alone."""
    import sys
    sys.path.insert(0, str(REPO))
    import compile as cp
    fake = tmp_path / "bin" / "ninja"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    "echo '[1/2] CUDA instance fmha_fwd_v3_bf16_d256_nomask'\n"
                    "echo \"ptxas info    : (C7520) Potential Performance Loss: wgmma.mma_async instructions are "
                    "serialized due to program dependence on compiler-inserted WG.AR in divergent path in the "
                    "function '_ZN5aiter3fwd13fwd_v3_kernelE'\"\n"
                    "echo 'ptxas info    : Used 168 registers, used 16 barriers'\n"
                    "echo '[2/2] LINK libmha_fwd.so'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    found = []
    assert cp.run_ninja(tmp_path, 1, False, {}, serialized=found) == 0
    assert found == ["C7520 _ZN5aiter3fwd13fwd_v3_kernelE: wgmma.mma_async instructions are serialized due to "
                     "program dependence on compiler-inserted WG.AR in divergent path"]
    assert cp.serialized_wgmma("ptxas info    : Used 168 registers, used 16 barriers") is None


def test_list_prints_the_selection_only():
    """compile.py --list: the selected instance names on stdout (messages on stderr), nothing built."""
    res = compile_py("--list", "--api", "fwd_v3", "--arch", "sm_90a", "--filter", "*d128*")
    assert res.returncode == 0, res.stderr
    names = res.stdout.split()
    assert names and all(n.startswith("fmha_fwd_v3_") and "d128" in n for n in names), res.stdout
    res = compile_py("--list", "--arch", "sm_80")
    assert res.returncode == 0, res.stderr
    assert all(n.startswith("fmha_") for n in res.stdout.split()), res.stdout
    assert "fwd_v3" not in res.stdout and "without the fwd_v3" in res.stderr


def test_build_line_gives_a_rough_time(ci_build):
    log = (ci_build / "compile_log.txt").read_text()
    assert re.search(r"a clean build takes roughly [0-9.]+ min at -j \d+", log), log[-2000:]
