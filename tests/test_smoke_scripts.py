"""smoke_tests/*.sh on a CPU machine, with a fake benchmark: every case runs, failures are
printed with their command line, the last line is "N passed, M failed" and the exit status is
non-zero on any failure (the runner is smoke_tests/smoke_lib.sh)."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO

FAKE = """#!/usr/bin/env bash
if [[ "$1" == -cases=* ]]; then  # benchmark_mha_fwd's one-process mode
  [[ -z "${FAKE_CASES_LOG:-}" ]] || { paste -sd'|' "${1#-cases=}" >> "$FAKE_CASES_LOG"; }
  n=0
  while read -r line; do
    n=$((n + 1))
    case "$line" in *"-d=96 "*) echo "[fake] crash"; exit 139 ;; esac
    "$0" $line; echo "=== case $n exit $?"
  done < "${1#-cases=}"
  exit 0
fi
[[ -z "${FAKE_ORDER_LOG:-}" ]] || echo "$*" >> "$FAKE_ORDER_LOG"
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


def test_batches_of_cases_in_one_process(fake_bench, monkeypatch):
    # 32 cases per process give the same verdicts as one per case; smoke_test_fwd.sh batches by
    # default (8 per process)
    monkeypatch.setenv("SMOKE_BATCH", "32")
    res = smoke("splitkv", "-b", fake_bench, "-j", "3", "-q", "-f", "-prec=fp16 -b=2 .*-s=4 ")
    monkeypatch.delenv("SMOKE_BATCH")
    assert res.stdout.strip().splitlines()[-1] == "576 passed, 0 failed", res.stdout + res.stderr
    res = smoke("fwd", "-b", fake_bench, "-j", "4", "-q")
    lines = res.stdout.strip().splitlines()
    passed, nfailed = (int(x.split()[0]) for x in lines[-1].split(", "))
    assert passed + nfailed == SIZES["fwd"] and res.returncode != 0
    assert any(l.startswith("FAILED (exit code 254): ") and "-d=64 " in l for l in lines)


def test_a_batch_that_dies_fails_its_case_and_reruns_the_rest(fake_bench, monkeypatch):
    # the fake dies on -d=96 in -cases mode: that case fails and the rest of its batch reruns
    # one process each, so every other case still gets its own verdict. 15 cases in batches of
    # at most 5 are 3 strided batches (cases k, k+3, k+6, ...): the two -d=96 cases (9th and
    # 15th) share batch 3, so the 9th fails by the crash and the 15th, rerun alone, passes; the
    # two -d=64 cases fail as always.
    monkeypatch.setenv("SMOKE_BATCH", "5")
    res = smoke("splitkv", "-b", fake_bench, "-q", "-f", "-prec=fp16 -lse=1")
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "12 passed, 3 failed", res.stdout + res.stderr
    crashed = [l for l in lines if l.startswith("FAILED (exit code 139): ")]
    assert len(crashed) == 1 and "-d=96 -s=4 " in crashed[0]
    assert sum(l.startswith("FAILED (exit code 254): ") and "-d=64 " in l for l in lines) == 2


def test_batches_are_strided(fake_bench, monkeypatch, tmp_path):
    # batch k of NBATCH runs cases k, k + NBATCH, ... of the list (the fake logs the list order
    # when run one case at a time, and each -cases file it gets)
    order, lists = tmp_path / "order", tmp_path / "lists"
    monkeypatch.setenv("FAKE_ORDER_LOG", str(order))
    monkeypatch.setenv("SMOKE_BATCH", "1")  # one process per case, in list order (-j 1)
    smoke("splitkv", "-b", fake_bench, "-q", "-f", "-prec=bf16 -lse=1")
    monkeypatch.delenv("FAKE_ORDER_LOG")
    monkeypatch.setenv("FAKE_CASES_LOG", str(lists))
    monkeypatch.setenv("SMOKE_BATCH", "5")
    res = smoke("splitkv", "-b", fake_bench, "-q", "-j", "2", "-f", "-prec=bf16 -lse=1")
    # (the fake fails -d=64, -d=256 in bf16 and crashes on -d=96: 10 pass, 5 fail)
    assert res.stdout.strip().splitlines()[-1] == "10 passed, 5 failed", res.stdout + res.stderr
    cases = order.read_text().splitlines()
    assert len(cases) == 15
    got = sorted(l.split("|") for l in lists.read_text().splitlines())
    assert got == sorted(cases[k::3] for k in range(3))


def test_bad_options(fake_bench):
    res = smoke("fwd", "-b", "/no/such/bench")
    assert res.returncode == 2 and "not found or not executable" in res.stderr
    res = smoke("fwd", "-b", fake_bench, "-j", "zero")
    assert res.returncode == 2 and "-j expects a positive integer" in res.stderr
    res = smoke("fwd", "-b", fake_bench, "-f", "no-such-case")
    assert res.returncode == 1 and res.stdout.strip() == "0 passed, 0 failed"
    res = subprocess.run(["bash", str(REPO / "smoke_tests" / "smoke_test_fwd.sh"), "-b", str(fake_bench)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "SMOKE_BATCH": "x"})
    assert res.returncode == 2 and "SMOKE_BATCH expects a positive integer" in res.stderr
    res = smoke("fwd", "-b", fake_bench, "-f", "no-such-case")
    assert res.returncode == 1 and res.stdout.strip() == "0 passed, 0 failed"
    res = smoke("fwd", "-h")
    assert res.returncode == 0 and "Forward smoke sweep" in res.stdout


def test_bwd_v3_sweep_requires_a_v3_kernel(fake_bench):
    """smoke_test_bwd_v3.sh: 392 cases, each must name a v3 kernel (the fake names none, so the
    cases that pass validation fail on the requirement)."""
    res = smoke("bwd_v3", "-b", fake_bench, "-j", "4", "-q")
    lines = res.stdout.strip().splitlines()
    passed, nfailed = (int(x.split()[0]) for x in lines[-1].split(", "))
    assert passed == 0 and nfailed == 392 and res.returncode != 0
    assert any("another kernel ran" in l and "-bwd_v3=1" in l for l in lines)


def test_fuzz_is_seeded_and_covers_every_path(fake_bench, tmp_path):
    """fuzz_cli.sh: FUZZ_CASES cases from FUZZ_SEED, the same list for the same seed, over the
    forward (v2, v3), split-KV and backward benchmarks."""
    import os  # noqa: PLC0415
    bwd = tmp_path / "benchmark_mha_bwd"
    bwd.write_text(FAKE)
    bwd.chmod(0o755)
    logs = []
    for i in range(2):
        log = tmp_path / f"order{i}.log"
        env = dict(os.environ, FUZZ_SEED="7", FUZZ_CASES="120", FAKE_ORDER_LOG=str(log), BENCH_BWD=str(bwd))
        res = subprocess.run(["bash", str(REPO / "smoke_tests" / "fuzz_cli.sh"), "-b", str(fake_bench), "-q"],
                             capture_output=True, text=True, timeout=600, env=env)
        last = res.stdout.strip().splitlines()[-1]
        passed, nfailed = (int(x.split()[0]) for x in last.split(", "))
        assert passed + nfailed == 120, res.stdout[-2000:]
        logs.append(log.read_text())
    assert logs[0] == logs[1]
    for needle in ("-fwd_v3=1", "-splitkv=1", "-deterministic=", "-mode=1"):
        assert needle in logs[0], needle
