"""In-tree PEP 517 build backend of aiter-mha for CUDA (pyproject.toml: `pip install .`,
`pip wheel .`).

A wheel runs our own build driver, `compile.py --python`, and packs python/aiter_mha with the
extension `_C*.so` and `libmha_fwd.so` / `libmha_bwd.so` next to it (the extension finds them
through its rpath $ORIGIN, `import aiter_mha` finds the extension in its own folder: no
environment variables needed). Knobs, read from the environment of the build:

    AITER_MHA_ARCHS      compile.py --arch, e.g. "sm_90a" or "sm_80,sm_90a" (default: GPU_ARCHS,
                         else the GPU present, else sm_80,sm_90a; give it on a machine without a GPU)
    AITER_MHA_APIS       compile.py --api (default: compile.py's: fwd, fwd_splitkv, bwd, and fwd_v3, bwd_v3 on sm_90a)
    AITER_MHA_PRESET     compile.py --preset: default | aligned | ci (default: default)
    AITER_MHA_FILTER     compile.py --filter: fnmatch patterns on instance names
    AITER_MHA_BUILD_DIR  compile.py --output-dir (default: build/wheel-<preset>-<archs> in the
                         source tree, so that a second `pip install .` rebuilds only what changed)
    AITER_MHA_COMPILE_ARGS  extra compile.py arguments, space-separated (e.g. "--bench -j 8"; "--jax"
                         adds libaiter_mha_jax.so for aiter_mha.jax, which needs jax at build time)
    MAX_JOBS             parallel compile jobs (as compile.py)

The CUDA toolkit (nvcc) is needed to build; the wheel needs the CUDA runtime (libcudart.so.13)
and a driver to run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shlex
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent
NAME = "aiter_mha"
DIST = "aiter_mha"
VERSION = "0.1.0"
SUMMARY = "Fused multi-head attention for NVIDIA GPUs with aiter's C++ API (torch-free; DLPack)"
BUILD_REQUIRES = ["jinja2", "ninja", "pybind11", "nvidia-cutlass==4.2.0.0"]


def _metadata() -> str:
    return (f"Metadata-Version: 2.1\nName: aiter-mha\nVersion: {VERSION}\nSummary: {SUMMARY}\n"
            "Requires-Python: >=3.9\nLicense: MIT\n")


def _build_dir(preset: str, archs: str) -> Path:
    env = os.environ.get("AITER_MHA_BUILD_DIR")
    if env:
        return Path(env).resolve()
    return ROOT / "build" / f"wheel-{preset}-{archs.replace(',', '_') or 'auto'}"


def _compile(out: Path) -> None:
    cmd = [sys.executable, str(ROOT / "compile.py"), "--python", "--output-dir", str(out),
           "--preset", os.environ.get("AITER_MHA_PRESET", "default")]
    for env, flag in (("AITER_MHA_ARCHS", "--arch"), ("AITER_MHA_APIS", "--api"), ("AITER_MHA_FILTER", "--filter")):
        if os.environ.get(env):
            cmd += [flag, os.environ[env]]
    cmd += shlex.split(os.environ.get("AITER_MHA_COMPILE_ARGS", ""))
    print("aiter-mha build backend: " + " ".join(cmd), flush=True)
    res = subprocess.run(cmd, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"aiter-mha: compile.py failed (exit {res.returncode}); its output is above")


def _tag() -> str:
    impl = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{impl}-{plat}"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _package_files(out: Path) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}
    pkg = ROOT / "python" / NAME
    for p in sorted(pkg.rglob("*.py")):
        files[f"{NAME}/{p.relative_to(pkg).as_posix()}"] = p.read_bytes()
    ext = sorted(out.glob("_C*.so"))
    if not ext:
        raise RuntimeError(f"aiter-mha: compile.py --python wrote no extension _C*.so into {out}")
    for p in ext + sorted(out.glob("libmha_*.so")) + sorted(out.glob("libaiter_mha_jax.so")):
        files[f"{NAME}/{p.name}"] = p.read_bytes()
    return files


def _write_wheel(wheel_directory: str, files: Dict[str, bytes]) -> str:
    tag = _tag()
    name = f"{DIST}-{VERSION}-{tag}.whl"
    info = f"{DIST}-{VERSION}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata().encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: aiter-mha build_backend\nRoot-Is-Purelib: false\n"
                              f"Tag: {tag}\n").encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = Path(wheel_directory) / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p, d in files.items():
            zi = zipfile.ZipInfo(p, date_time=(2026, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if p.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)
    return name


# ---- PEP 517 hooks --------------------------------------------------------------------------


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return list(BUILD_REQUIRES)


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    out = _build_dir(os.environ.get("AITER_MHA_PRESET", "default"), os.environ.get("AITER_MHA_ARCHS", ""))
    _compile(out)
    return _write_wheel(wheel_directory, _package_files(out))


def _sdist_files() -> List[str]:
    try:
        res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
        return [f for f in res.stdout.splitlines() if (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {"build", ".git", "3rdparty", "prebuilt", "__pycache__", ".pytest_cache"}
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                if p.is_file() and not (set(p.relative_to(ROOT).parts) & skip)]


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    base = f"{DIST}-{VERSION}"
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as tar:
        for f in _sdist_files():
            tar.add(ROOT / f, arcname=f"{base}/{f}")
        data = _metadata().encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    return name
