#!/usr/bin/env bash
# Backward smoke sweep (after CK's fmha bwd smoke test), validated against the CPU reference
# (dQ, dK, dV; benchmark/reference/mha_bwd_ref.h):
#   prec {fp16,bf16} x perm {0,1} x hdim {32,64,128,256} x mode {0,1} x the six shape cases
#   below  =  192 runs (atomic dQ),
# plus the same six cases with -deterministic=1 for prec x hdim x mode (perm 1) = 96 runs.
# A case fails on a non-zero exit code, "valid:n", "not supported yet", or a missing result
# line (one containing "valid:y"). Every failing command line is printed; the script ends with
# "N passed, M failed" and exits non-zero on any failure.
#
# usage: smoke_test_bwd.sh [-b path/to/benchmark_mha_bwd] [-f pattern] [-j N] [-q]
#   -b  benchmark executable (default: $BENCH, else ./build/benchmark_mha_bwd)
#   -f  run only the cases whose command line matches this grep pattern
#   -j  cases run in parallel (default 1)
#   -q  quiet: print only failures and the summary
# Extra benchmark flags can be given in $SMOKE_ARGS (default "-warmup=0 -repeat=1").
set -u -o pipefail

BENCH="${BENCH:-./build/benchmark_mha_bwd}"
FILTER=""
JOBS=1
QUIET=0
while getopts "b:f:j:qh" opt; do
    case "$opt" in
        b) BENCH="$OPTARG" ;;
        f) FILTER="$OPTARG" ;;
        j) JOBS="$OPTARG" ;;
        q) QUIET=1 ;;
        h) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "usage: $0 [-b benchmark] [-f pattern] [-j N] [-q]" >&2; exit 2 ;;
    esac
done
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
    echo "smoke_test_bwd.sh: -j expects a positive integer, got '$JOBS'" >&2
    exit 2
fi
if [[ ! -x "$BENCH" ]]; then
    echo "smoke_test_bwd.sh: benchmark '$BENCH' not found or not executable (use -b or BENCH=)" >&2
    exit 2
fi
COMMON_ARGS="-v=1 ${SMOKE_ARGS:--warmup=0 -repeat=1}"

# ---- the case list ------------------------------------------------------------------------
shapes() {  # $1 = hdim
    local hd="$1"
    echo "-b=1 -h=4 -h_k=2 -d=$hd -s=259"
    echo "-b=2 -h=2 -d=$hd -s=516 -s_k=253"
    echo "-b=1 -h=4 -h_k=1 -d=$hd -s=500 -s_k=251 -mask=1"
    echo "-b=1 -h=2 -d=$hd -s=900 -s_k=258 -mask=2"
    echo "-b=2 -h=1 -d=$hd -s=987 -s_k=219 -mask=t:128,30"
    echo "-b=2 -h=3 -h_k=1 -d=$hd -s=244 -s_k=499 -mask=b:4,35"
}

cases() {
    local prec perm hd mode base shape
    for prec in fp16 bf16; do
    for perm in 0 1; do
    for hd in 32 64 128 256; do
    for mode in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=$perm -operm=$perm -kname=1 $COMMON_ARGS"
        shapes "$hd" | while read -r shape; do echo "$base $shape"; done
    done; done; done; done
    for prec in fp16 bf16; do
    for hd in 32 64 128 256; do
    for mode in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=1 -operm=1 -deterministic=1 -kname=1 $COMMON_ARGS"
        shapes "$hd" | while read -r shape; do echo "$base $shape"; done
    done; done; done
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ -n "$FILTER" ]]; then
    cases | grep -e "$FILTER" > "$WORK/cases" || true
else
    cases > "$WORK/cases"
fi
TOTAL=$(wc -l < "$WORK/cases")
if [[ "$TOTAL" -eq 0 ]]; then
    echo "smoke_test_bwd.sh: no case matches -f '$FILTER'" >&2
    echo "0 passed, 0 failed"
    exit 1
fi

# ---- case n (1-based line of $WORK/cases): writes $WORK/n.status ("PASS" / "FAIL why") ------
run_case() {
    local n="$1" cmd out rc why=""
    cmd="$(sed -n "${n}p" "$WORK/cases")"
    out="$WORK/$n.out"
    # shellcheck disable=SC2086  # the command line is split into words on purpose
    $cmd > "$out" 2>&1
    rc=$?
    if [[ $rc -ne 0 ]]; then
        why="exit code $rc"
    elif grep -q "not supported yet" "$out"; then
        why="not supported yet"
    elif grep -q "valid:n" "$out"; then
        why="valid:n"
    elif ! grep -q "valid:y" "$out"; then
        why="no result line"
    fi
    if [[ -z "$why" ]]; then echo "PASS" > "$WORK/$n.status"; else echo "FAIL $why" > "$WORK/$n.status"; fi
}
export -f run_case
export WORK

seq 1 "$TOTAL" | xargs -P "$JOBS" -I{} bash -c 'run_case {}'

# ---- report --------------------------------------------------------------------------------
PASSED=0
FAILED=0
n=0
while IFS= read -r cmd; do
    n=$((n + 1))
    status="$(cat "$WORK/$n.status" 2>/dev/null || echo "FAIL did not run")"
    if [[ "$status" == PASS ]]; then
        PASSED=$((PASSED + 1))
        [[ $QUIET -eq 1 ]] || grep -h "valid:y" "$WORK/$n.out"
    else
        FAILED=$((FAILED + 1))
        echo "FAILED (${status#FAIL }): $cmd"
        if [[ $QUIET -eq 0 ]]; then sed 's/^/    /' "$WORK/$n.out" | head -n 20; fi
    fi
done < "$WORK/cases"

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
