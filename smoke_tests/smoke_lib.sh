# Shared runner of the smoke scripts (sourced, not run). A script sets DEFAULT_BENCH, defines
# cases() — one benchmark command line per output line, built from $BENCH and $COMMON_ARGS —
# and ends with:   source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"; smoke_main "$@"
#
# Options: -b benchmark (default $BENCH, else $DEFAULT_BENCH), -f grep pattern on the command
# lines, -j parallel cases (default 1), -q quiet, -h the script's header. Extra benchmark flags
# come from $SMOKE_ARGS (default "-warmup=0 -repeat=1"). A script may set SMOKE_REQUIRE: a string
# every passing output must contain (e.g. the kernel family that has to run).
# SMOKE_CASE_TIMEOUT (seconds, default none) stops a case that hangs; it then fails (exit 124).
# SMOKE_BATCH (default 1; a script may set its own default) runs up to that many cases per
# benchmark process (every NBATCH-th case of the list, NBATCH = ⌈cases / SMOKE_BATCH⌉) through
# `benchmark -cases=FILE` (benchmark_mha_fwd), which pays for one CUDA context per batch instead
# of one per case (~0.2 s each, created one at a time even by parallel processes).
# A batch whose process dies (crash, CUDA error, timeout = SMOKE_CASE_TIMEOUT x batch) fails the
# case it was running; its remaining cases are rerun one process each. An interrupted sweep
# counts every case of an unfinished batch as not run.
# A case fails on a non-zero exit code, "valid:n", "not supported yet", or a missing result
# line (one containing "valid:y"). Every failing command line is printed, the run ends with
# "N passed, M failed" and the exit status is non-zero on any failure. A TERM / INT (e.g. from
# `timeout`) stops the sweep but still reports: cases that did not run count as failed.

smoke_usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# Case n (1-based line of $WORK/cases): writes $WORK/n.status ("PASS" / "FAIL why").
smoke_run_case() {
    local n="$1" cmd out rc
    cmd="$(sed -n "${n}p" "$WORK/cases")"
    out="$WORK/$n.out"
    # shellcheck disable=SC2086  # the command line is split into words on purpose
    if [[ -n "${SMOKE_CASE_TIMEOUT:-}" ]]; then
        timeout "$SMOKE_CASE_TIMEOUT" $cmd > "$out" 2>&1
    else
        $cmd > "$out" 2>&1
    fi
    rc=$?
    smoke_judge "$n" "$rc"
}

# Batch k (1 .. $NBATCH) in one process: cases k, k + NBATCH, k + 2 NBATCH, ... (strided, so
# the expensive cases, which sit together in a list, spread over the batches instead of filling
# a few), through `benchmark -cases=FILE` with the case lines minus their first word (the
# benchmark). Its output is split at the "=== case i exit code" lines into the cases' n.out, then
# every case is judged as above.
smoke_run_batch() {
    local k="$1" i rc bench nums list="$WORK/batch$1.list" out="$WORK/batch$1.out"
    read -r -a nums <<< "$(seq "$k" "$NBATCH" "$TOTAL" | tr '\n' ' ')"
    bench="$(sed -n "${nums[0]}p" "$WORK/cases" | cut -d' ' -f1)"
    awk -v nums="${nums[*]}" 'BEGIN { n = split(nums, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        NR in want { sub(/^[^ ]+ /, ""); print }' "$WORK/cases" > "$list"
    if [[ -n "${SMOKE_CASE_TIMEOUT:-}" ]]; then
        timeout $((SMOKE_CASE_TIMEOUT * ${#nums[@]})) "$bench" -cases="$list" > "$out" 2>&1
    else
        "$bench" -cases="$list" > "$out" 2>&1
    fi
    rc=$?
    # (files of this batch's cases only: a case after the last marker belongs to no file)
    awk -v dir="$WORK" -v nums="${nums[*]}" '
        BEGIN { cnt = split(nums, num, " "); i = 1 }
        /^=== case [0-9]+ exit [0-9]+$/ { if (i <= cnt) { f = dir "/" num[i] ".out"; if (!wrote) printf "" > f; close(f)
                                          r = dir "/" num[i] ".rc"; print $5 > r; close(r) }
                                          i++; wrote = 0; next }
        i <= cnt { f = dir "/" num[i] ".out"; print > f; wrote = 1 }' "$out"
    for ((i = 0; i < ${#nums[@]}; i++)); do
        if [[ -f "$WORK/${nums[i]}.rc" ]]; then
            smoke_judge "${nums[i]}" "$(cat "$WORK/${nums[i]}.rc")"
            rm -f "$WORK/${nums[i]}.rc"
        else  # the process ended inside this case: it fails with the process's code, the rest rerun alone
            [[ $rc -ne 0 ]] || rc=1
            smoke_judge "${nums[i]}" "$rc"
            for ((i = i + 1; i < ${#nums[@]}; i++)); do smoke_run_case "${nums[i]}"; done
        fi
    done
    rm -f "$list" "$out"
}

# Writes $WORK/n.status for case n from its output $WORK/n.out and exit code rc.
smoke_judge() {
    local n="$1" rc="$2" out="$WORK/$1.out" why=""
    if [[ $rc -ne 0 ]]; then
        why="exit code $rc"
    elif grep -q "not supported yet" "$out"; then
        why="not supported yet"
    elif grep -q "valid:n" "$out"; then
        why="valid:n"
    elif ! grep -q "valid:y" "$out"; then
        why="no result line"
    elif [[ -n "${SMOKE_REQUIRE:-}" ]] && ! grep -q -- "$SMOKE_REQUIRE" "$out"; then
        why="the output does not name '$SMOKE_REQUIRE' (another kernel ran)"
    fi
    if [[ -z "$why" ]]; then echo "PASS" > "$WORK/$n.status"; else echo "FAIL $why" > "$WORK/$n.status"; fi
}

smoke_main() {
    local name opt OPTIND
    name="$(basename "$0")"
    BENCH="${BENCH:-$DEFAULT_BENCH}"
    FILTER=""
    JOBS=1
    QUIET=0
    while getopts "b:f:j:qh" opt; do
        case "$opt" in
            b) BENCH="$OPTARG" ;;
            f) FILTER="$OPTARG" ;;
            j) JOBS="$OPTARG" ;;
            q) QUIET=1 ;;
            h) smoke_usage; exit 0 ;;
            *) echo "usage: $0 [-b benchmark] [-f pattern] [-j N] [-q]" >&2; exit 2 ;;
        esac
    done
    if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
        echo "$name: -j expects a positive integer, got '$JOBS'" >&2
        exit 2
    fi
    if [[ ! -x "$BENCH" ]]; then
        echo "$name: benchmark '$BENCH' not found or not executable (use -b or BENCH=)" >&2
        exit 2
    fi
    COMMON_ARGS="-v=1 ${SMOKE_ARGS:--warmup=0 -repeat=1}"

    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    if [[ -n "$FILTER" ]]; then
        cases | grep -e "$FILTER" > "$WORK/cases" || true
    else
        cases > "$WORK/cases"
    fi
    local total
    total=$(wc -l < "$WORK/cases")
    if [[ "$total" -eq 0 ]]; then
        echo "$name: no case matches -f '$FILTER'" >&2
        echo "0 passed, 0 failed"
        exit 1
    fi

    export -f smoke_run_case smoke_run_batch smoke_judge
    export WORK TOTAL="$total" SMOKE_BATCH="${SMOKE_BATCH:-1}" SMOKE_REQUIRE="${SMOKE_REQUIRE:-}"
    if ! [[ "$SMOKE_BATCH" =~ ^[1-9][0-9]*$ ]]; then
        echo "$name: SMOKE_BATCH expects a positive integer, got '$SMOKE_BATCH'" >&2
        exit 2
    fi
    export NBATCH=$(((total + SMOKE_BATCH - 1) / SMOKE_BATCH))  # batches of at most SMOKE_BATCH cases
    if [[ "$SMOKE_BATCH" -gt 1 ]]; then
        seq 1 "$NBATCH" | xargs -P "$JOBS" -I{} bash -c 'smoke_run_batch {}' &
    else
        seq 1 "$total" | xargs -P "$JOBS" -I{} bash -c 'smoke_run_case {}' &
    fi
    local xargs_pid=$!
    trap 'kill "$xargs_pid" 2>/dev/null; echo "$name: interrupted, reporting the cases that ran" >&2' TERM INT
    wait "$xargs_pid"
    trap - TERM INT

    local passed=0 failed=0 n=0 cmd status
    while IFS= read -r cmd; do
        n=$((n + 1))
        status="$(cat "$WORK/$n.status" 2>/dev/null || echo "FAIL did not run")"
        if [[ "$status" == PASS ]]; then
            passed=$((passed + 1))
            [[ $QUIET -eq 1 ]] || grep -h "valid:y" "$WORK/$n.out"
        else
            failed=$((failed + 1))
            echo "FAILED (${status#FAIL }): $cmd"
            if [[ $QUIET -eq 0 && -f "$WORK/$n.out" ]]; then sed 's/^/    /' "$WORK/$n.out" | head -n 20; fi
        fi
    done < "$WORK/cases"

    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
