"""smoke_tests/*.sh on a CPU machine, with a fake benchmark: every case runs, failures are
printed with their command line, the last line is "N passed, M failed" and the exit status is
non-zero on any failure (the runner is smoke_tests/smoke_lib.sh)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO

FAKE = """#!/usr/bin/env bash
case "$*" in
  *"-d=64 "*) echo "[fake] $*, valid:n"; exit 254 ;;
  *"-prec=bf16"*"-d=256"*) echo "[fake] $*, not supported yet" ;;
  *) echo "[fake] $*, valid:y" ;;
esac
"""
SIZES = {"fwd": 608, "bwd": 312, "splitkv": 4638}


@pytest.fixture(scope="module")
def fake_bench(tmp_path_factory):
    p = tmp_path_factory.mktemp("fake") / "bench"
    p.write_text(FAKE)
    p.chmod(0o755)
    return p


def smoke(name, *args):
    return subprocess.run(["bash", str(REPO / "smoke_tests" / f"smoke_test_{name}.sh"), *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", ["fwd", "bwd"])
def test_counts_and_fails_loudly(fake_bench, name):
    res = smoke(name, "-b", fake_bench, "-j", "4", "-q")
    lines = res.stdout.strip().splitlines()
    failed = [l for l in lines if l.startswith("FAILED (")]
    passed, nfailed = (int(x.split()[0]) for x in lines[-1].split(", "))
    assert lines[-1].endswith("failed") and passed + nfailed == SIZES[name]
    assert nfailed == len(failed) > 0 and res.returncode != 0
    assert any(l.startswith("FAILED (exit code 254): ") and "-d=64 " in l for l in failed)
    assert any(l.startswith("FAILED (not supported yet): ") for l in failed)


def test_filter_and_all_pass_exit_zero(fake_bench):
    res = smoke("fwd", "-b", fake_bench, "-f", "-prec=fp16 -mode=1 -iperm=0 -operm=0 -lse=0 .*-d=128 ")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == "7 passed, 0 failed"  # 9 shapes, 2 use -d=16


def test_splitkv_case_list_and_slice(fake_bench):
    res = smoke("splitkv", "-b", fake_bench, "-j", "2", "-q", "-f", "-s=100 -s_k=4097 -num_splits=16 -page_block_size=128")
    assert res.stdout.strip().splitlines()[-1] == "24 passed, 0 failed", res.stdout + res.stderr


def test_bad_options(fake_bench):
    res = smoke("fwd", "-b", "/no/such/bench")
    assert res.returncode == 2 and "not found or not executable" in res.stderr
    res = smoke("fwd", "-b", fake_bench, "-j", "zero")
    assert res.returncode == 2 and "-j expects a positive integer" in res.stderr
    res = smoke("fwd", "-b", fake_bench, "-f", "no-such-case")
    assert res.returncode == 1 and res.stdout.strip() == "0 passed, 0 failed"
    res = smoke("fwd", "-h")
    assert res.returncode == 0 and "Forward smoke sweep" in res.stdout
