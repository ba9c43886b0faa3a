"""pip wheel . (pyproject.toml + build_backend.py) on the ci preset: the wheel holds aiter_mha with
its extension and both libraries, installs into a fresh virtual environment and imports there
without environment variables. Reuses the session's ci build folder (AITER_MHA_BUILD_DIR), so
that compile.py finds everything built; no GPU is needed."""

from __future__ import annotations

import os
import sys
import zipfile

import pytest

from conftest import CI_BUILD_ARGS, REPO, run

pytestmark = pytest.mark.slow


def test_wheel_builds_installs_and_imports(ci_build, tmp_path):
    env = dict(os.environ, AITER_MHA_PRESET="ci", AITER_MHA_ARCHS="sm_90a", AITER_MHA_BUILD_DIR=str(ci_build),
               AITER_MHA_COMPILE_ARGS=" ".join(a for a in CI_BUILD_ARGS if a in ("--bench", "--jax")))
    env.pop("AITER_MHA_LIB_DIR", None)
    dist = tmp_path / "dist"
    res = run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-build-isolation", "--no-deps", "-q",
               "-w", str(dist)], env=env)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    wheels = list(dist.glob("aiter_mha-0.1.0-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    for want in ("aiter_mha/__init__.py", "aiter_mha/ops.py", "aiter_mha/_torch_ops.py",
                 "aiter_mha/integrations/transformers.py", "aiter_mha/libmha_fwd.so", "aiter_mha/libmha_bwd.so",
                 "aiter_mha-0.1.0.dist-info/METADATA", "aiter_mha-0.1.0.dist-info/RECORD"):
        assert want in names, names
    assert any(n.startswith("aiter_mha/_C") and n.endswith(".so") for n in names), names

    venv = tmp_path / "venv"
    res = run([sys.executable, "-m", "venv", str(venv)])
    assert res.returncode == 0, res.stderr
    py = venv / "bin" / "python"
    res = run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheels[0])])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    probe = ("import aiter_mha, pathlib; f = aiter_mha.fwd_instances(); b = aiter_mha.bwd_instances(); "
             "assert pathlib.Path(aiter_mha.__file__).is_relative_to(pathlib.Path(r'%s')), aiter_mha.__file__; "
             "print(len(f), len(b), f[0])" % venv)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AITER_MHA", "PYTHONPATH"))}
    res = run([py, "-c", probe], cwd=tmp_path, env=clean)
    assert res.returncode == 0, res.stdout + res.stderr
    nf, nb, first = res.stdout.split()
    assert int(nf) > 0 and int(nb) > 0 and first.startswith("fmha_")
