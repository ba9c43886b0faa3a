#!/usr/bin/env bash
# v3 (Hopper) backward smoke sweep, validated against the CPU reference (dQ, dK, dV;
# benchmark/reference/mha_bwd_ref.h); every case must run a v3 kernel (-bwd_v3=1 falls back to
# v2 where v3 does not take the call, and such a case fails here):
#   prec {fp16,bf16} x perm {0,1} x hdim {32, 64, 72, 96, 128, (64,32), (128,96)} x mode {0,1}
#   x the seven shape cases below (GQA, lengths 1 and not tile multiples, every mask)  =  392 runs
# A case fails on a non-zero exit code, "valid:n", "not supported yet", a missing result line
# (one containing "valid:y") or an output that does not name a v3 kernel. Every failing command
# line is printed; the script ends with "N passed, M failed" and exits non-zero on any failure.
#
# usage: smoke_test_bwd_v3.sh [-b path/to/benchmark_mha_bwd] [-f pattern] [-j N] [-q]
#   -b  benchmark executable (default: $BENCH, else ./build/benchmark_mha_bwd)
#   -f  run only the cases whose command line matches this grep pattern
#   -j  cases run in parallel (default 1)
#   -q  quiet: print only failures and the summary
# Extra benchmark flags can be given in $SMOKE_ARGS (default "-warmup=0 -repeat=1").
set -u -o pipefail

DEFAULT_BENCH=./build/benchmark_mha_bwd
SMOKE_REQUIRE=fmha_bwd_v3

shapes() {  # $1 = "-d=.. -d_v=.."
    local hd="$1"
    echo "-b=1 -h=4 -h_k=2 $hd -s=259"
    echo "-b=2 -h=2 $hd -s=516 -s_k=253"
    echo "-b=1 -h=4 -h_k=1 $hd -s=500 -s_k=251 -mask=1"
    echo "-b=1 -h=2 $hd -s=900 -s_k=258 -mask=2"
    echo "-b=2 -h=1 $hd -s=987 -s_k=219 -mask=t:128,30"
    echo "-b=2 -h=3 -h_k=1 $hd -s=244 -s_k=499 -mask=b:4,35"
    echo "-b=3 -h=6 -h_k=2 $hd -s=1 -s_k=129 -mask=2"
}

cases() {
    local prec perm hd mode base
    for prec in fp16 bf16; do
    for perm in 0 1; do
    for hd in "-d=32" "-d=64" "-d=72" "-d=96" "-d=128" "-d=64 -d_v=32" "-d=128 -d_v=96"; do
    for mode in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=$perm -operm=$perm -bwd_v3=1 -kname=1 $COMMON_ARGS"
        shapes "$hd" | while read -r shape; do echo "$base $shape"; done
    done; done; done; done
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
