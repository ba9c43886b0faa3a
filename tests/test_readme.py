"""The README and docs/ stay true of the code, as far as a CPU machine can tell: every relative
link resolves; the test command is what .ci/run installs and runs; every flag the shell blocks
pass to a benchmark is one it knows (`-?` of the ci build) and every compile.py command line
parses (`--list`, nothing built); the Python blocks are valid Python; the C++ example of
docs/API.md compiles against include/."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, compile_py, run

DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))


def _blocks(path: Path, lang: str):
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def _commands(lang="sh"):
    """Every shell command of the README's and docs' `sh` blocks (split at && and newlines)."""
    out = []
    for path in DOCS:
        for block in _blocks(path, lang):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                out += [(path.name, c.strip()) for c in line.split("&&") if c.strip()]
    return out


def test_relative_links_resolve():
    bad = []
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
            if "://" in target:
                continue
            if not (path.parent / target).exists():
                bad.append(f"{path.relative_to(REPO)}: {target}")
    assert not bad, bad


def test_the_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    cmd = re.search(r"python3 -m pip install (nvidia-cutlass[^&\n]*) && python3 -m pytest -q tests", readme)
    assert cmd, "the README's test command is missing"
    assert f"python3 -m pip install -q {cmd.group(1).strip()}" in ci
    assert "python3 -m pytest -q tests" in ci


@pytest.mark.slow
def test_benchmark_flags_in_the_docs_exist(ci_build):
    known = {}
    for exe in ("benchmark_mha_fwd", "benchmark_mha_bwd"):
        res = run([ci_build / exe, "-?"])
        assert res.returncode == 0, res.stdout + res.stderr
        known[exe] = set(re.findall(r"^\s*-(\w+)\s", res.stdout, flags=re.M))
    checked = 0
    for doc, cmd in _commands():
        words = shlex.split(cmd)
        exe = Path(words[0]).name
        if exe not in known:
            continue
        for w in words[1:]:
            name = w.lstrip("-").split("=")[0]
            assert name in known[exe], f"{doc}: {cmd}: {exe} has no flag -{name}"
        checked += 1
    assert checked >= 3, checked


@pytest.mark.slow
def test_compile_py_command_lines_parse():
    """Every `python3 compile.py ...` / `bash build_mha.sh ...` line of the docs, with --list
    added (so nothing is built) and an arch given where the line has none (no GPU here)."""
    checked = 0
    for doc, cmd in _commands():
        words = shlex.split(cmd.replace("…", ""))
        if words[:2] == ["python3", "compile.py"]:
            args = words[2:]
        elif words[:2] == ["bash", "build_mha.sh"]:
            args = (["--api", words[2]] if len(words) > 2 and not words[2].startswith("-") else []) + \
                   [w for w in words[3 if len(words) > 2 and not words[2].startswith("-") else 2:]] + ["--bench"]
        else:
            continue
        if any(a in ("[--api", "[--arch") or a.startswith("[") for a in args):
            continue  # a synopsis, not a command
        if "--arch" not in args:
            args += ["--arch", "sm_90a"]
        res = compile_py(*args, "--list", cwd=REPO)
        assert res.returncode == 0 and res.stdout.strip(), f"{doc}: {cmd}\n{res.stdout[-2000:]}{res.stderr[-2000:]}"
        checked += 1
    assert checked >= 5, checked


def test_python_blocks_are_valid_python():
    for path in DOCS:
        for block in _blocks(path, "python"):
            compile(block, f"{path.name} python block", "exec")


def test_cpp_blocks_compile(tmp_path):
    """The complete example of docs/API.md (the README's short block is a fragment)."""
    (block,) = [b for b in _blocks(REPO / "docs" / "API.md", "cpp") if "#include" in b]
    src = tmp_path / "example.cpp"
    src.write_text(block)
    res = subprocess.run(["nvcc", "-std=c++17", "-I", str(REPO / "include"), "-c", str(src), "-o",
                          str(tmp_path / "example.o")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
