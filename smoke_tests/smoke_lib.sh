# Shared runner of the smoke scripts (sourced, not run). A script sets DEFAULT_BENCH, defines
# cases() — one benchmark command line per output line, built from $BENCH and $COMMON_ARGS —
# and ends with:   source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"; smoke_main "$@"
#
# Options: -b benchmark (default $BENCH, else $DEFAULT_BENCH), -f grep pattern on the command
# lines, -j parallel cases (default 1), -q quiet, -h the script's header. Extra benchmark flags
# come from $SMOKE_ARGS (default "-warmup=0 -repeat=1"). A script may set SMOKE_REQUIRE: a string
# every passing output must contain (e.g. the kernel family that has to run).
# SMOKE_CASE_TIMEOUT (seconds, default none) stops a case that hangs; it then fails (exit 124).
# A case fails on a non-zero exit code, "valid:n", "not supported yet", or a missing result
# line (one containing "valid:y"). Every failing command line is printed, the run ends with
# "N passed, M failed" and the exit status is non-zero on any failure. A TERM / INT (e.g. from
# `timeout`) stops the sweep but still reports: cases that did not run count as failed.

smoke_usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# Case n (1-based line of $WORK/cases): writes $WORK/n.status ("PASS" / "FAIL why").
smoke_run_case() {
    local n="$1" cmd out rc why=""
    cmd="$(sed -n "${n}p" "$WORK/cases")"
    out="$WORK/$n.out"
    # shellcheck disable=SC2086  # the command line is split into words on purpose
    if [[ -n "${SMOKE_CASE_TIMEOUT:-}" ]]; then
        timeout "$SMOKE_CASE_TIMEOUT" $cmd > "$out" 2>&1
    else
        $cmd > "$out" 2>&1
    fi
    rc=$?
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

    export -f smoke_run_case
    export WORK
    seq 1 "$total" | xargs -P "$JOBS" -I{} bash -c 'smoke_run_case {}' &
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
