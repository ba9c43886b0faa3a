#!/usr/bin/env bash
# Same-run A/B of two builds (GPU machine): every case of CASES runs with build A's and build B's
# benchmark, in alternating order for ROUNDS rounds; prints one line per case with the median
# TFLOP/s of each build and B/A.
#
# usage: bash benchmark/ab_compare.sh BUILD_A BUILD_B CASES_FILE
#   CASES_FILE: one case per line, "fwd|bwd <flags>" (e.g. "fwd -prec=bf16 -b=1 -h=16 -s=16384
#   -d=128 -fwd_v3=1"); blank lines and lines starting with # are skipped.
# env: ROUNDS (3), WARMUP (5), REPEAT (30)
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BUILD_A BUILD_B CASES_FILE" >&2; exit 2; }
A=$1 B=$2 CASES=$3
ROUNDS=${ROUNDS:-3}
tflops() {  # dir kind flags...
  local dir=$1 kind=$2
  shift 2
  "$dir/benchmark_mha_$kind" "$@" -v=0 -warmup="${WARMUP:-5}" -repeat="${REPEAT:-30}" < /dev/null 2>&1 | tail -1 |
    grep -oE '[0-9.]+ TFlops' | cut -d' ' -f1
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-70s %9s %9s %7s\n' case A B B/A
while read -r kind flags; do
  case "$kind" in "" | \#*) continue ;; esac
  ra=() rb=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
      ra+=("$(tflops "$A" "$kind" $flags)"); rb+=("$(tflops "$B" "$kind" $flags)")
    else
      rb+=("$(tflops "$B" "$kind" $flags)"); ra+=("$(tflops "$A" "$kind" $flags)")
    fi
  done
  ma=$(printf '%s\n' "${ra[@]}" | median) mb=$(printf '%s\n' "${rb[@]}" | median)
  printf '%-70s %9s %9s %7s\n' "$kind $flags" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')"
done < "$CASES"
