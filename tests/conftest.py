"""Shared fixtures and helpers of the test suite (CPU machines with nvcc; GPU tests skip).

* `ci_build` (session fixture): the build folder of
  `compile.py --preset ci --bench --python --arch sm_90a` (plus `--jax` where jax is installed),
  holding libmha_fwd.so (and the other libraries), the benchmarks, the Python extension _C*.so
  and libaiter_mha_jax.so. Built once per session into
  the pytest cache (incremental across sessions: ninja rebuilds only what changed), or into
  $AITER_MHA_TEST_BUILD_DIR when set. A failed build fails every test that uses it, with the
  compiler output.
* `python_build` (session fixture): where _C*.so lives: $AITER_MHA_PY_BUILD_DIR, else ci_build.
* `gpu_available()` / `gpu_skip_reason()`: whether an NVIDIA GPU is usable. Tests under
  tests/gpu/ and tests marked `@pytest.mark.gpu` are skipped with the reason when there is none.
* Markers: `slow` (builds with nvcc; runs by default, deselect with -m "not slow"), `gpu`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPILE_PY = REPO / "compile.py"
# --jax where jax is installed: libaiter_mha_jax.so is part of the one ci build, so that no test
# rewrites the shared build folder's build.ninja with other options.
CI_BUILD_ARGS = ["--preset", "ci", "--bench", "--python", "--arch", "sm_90a"] + (
    ["--jax"] if importlib.util.find_spec("jax") is not None else [])


def run(cmd, cwd=None, env=None, timeout=3600) -> subprocess.CompletedProcess:
    """Runs `cmd`, capturing stdout and stderr as text (never raises on a non-zero exit)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd) if cwd else None, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def compile_py(*args, cwd=None, env=None, timeout=3600) -> subprocess.CompletedProcess:
    return run([sys.executable, COMPILE_PY, *args], cwd=cwd, env=env, timeout=timeout)


@functools.lru_cache(maxsize=None)
def gpu_skip_reason() -> str:
    """'' when an NVIDIA GPU is usable, else why not."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "no NVIDIA GPU: nvidia-smi not found"
    try:
        res = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"no NVIDIA GPU: nvidia-smi failed ({e})"
    if res.returncode != 0 or "GPU" not in res.stdout:
        return f"no NVIDIA GPU: nvidia-smi -L said {(res.stdout + res.stderr).strip()[:200]!r}"
    return ""


def gpu_available() -> bool:
    return gpu_skip_reason() == ""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds with nvcc (minutes on 2 cores); runs by default, "
                                       "deselect with -m 'not slow'")
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU; skipped with a reason when there is none")


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip = pytest.mark.skip(reason=gpu_skip_reason())
    gpu_dir = REPO / "tests" / "gpu"
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath)))
        if "gpu" in item.keywords or gpu_dir in path.parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ci_build(request, tmp_path_factory) -> Path:
    """Build folder with libmha_fwd.so (+ benchmark_mha_fwd) of the ci preset, built once."""
    env_dir = os.environ.get("AITER_MHA_TEST_BUILD_DIR")
    if env_dir:
        out = Path(env_dir).resolve()
    elif getattr(request.config, "cache", None) is not None:
        out = Path(request.config.cache.mkdir("aiter_mha_ci_build"))
    else:
        out = tmp_path_factory.mktemp("aiter_mha_ci_build")
    out.mkdir(parents=True, exist_ok=True)
    res = compile_py(*CI_BUILD_ARGS, "--output-dir", out, cwd=out)
    (out / "compile_log.txt").write_text(res.stdout + res.stderr)
    if res.returncode != 0 or not (out / "libmha_fwd.so").is_file():
        pytest.fail(f"compile.py {' '.join(CI_BUILD_ARGS)} failed (exit {res.returncode}):\n"
                    f"{res.stdout[-20000:]}\n{res.stderr[-20000:]}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def python_build(request) -> Path:
    """Folder holding the Python extension _C*.so (next to libmha_fwd.so): $AITER_MHA_PY_BUILD_DIR
    when set (e.g. a full `compile.py --python` build on the GPU machine), else the ci build."""
    env_dir = os.environ.get("AITER_MHA_PY_BUILD_DIR")
    if env_dir:
        return Path(env_dir).resolve()
    return request.getfixturevalue("ci_build")


@pytest.fixture(scope="session")
def aiter_mha(python_build):
    """The Python package python/aiter_mha, loading _C from python_build."""
    os.environ["AITER_MHA_LIB_DIR"] = str(python_build)
    sys.path.insert(0, str(REPO / "python"))
    import aiter_mha  # noqa: PLC0415

    return aiter_mha
