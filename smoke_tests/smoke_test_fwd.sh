#!/usr/bin/env bash
# Forward smoke sweep (after CK's fmha smoke test), validated against the CPU reference:
#   prec {fp16,bf16} x mode {1,0} x perm {0,1} x hdim {32,64,128,256} x lse {0,1}
#   x the nine shape cases below  =  576 runs,
# plus 32 runs with head dims that are not multiples of 8 (the element-wise "_unaligned"
# instances): prec x mode x perm x lse x {d=59/d_v=111 causal, d=200/d_v=3 window}.
# A case fails on a non-zero exit code, "valid:n", "not supported yet", or a missing result
# line (one containing "valid:y"). Every failing command line is printed; the script ends with
# "N passed, M failed" and exits non-zero on any failure.
#
# usage: smoke_test_fwd.sh [-b path/to/benchmark_mha_fwd] [-f pattern] [-j N] [-q]
#   -b  benchmark executable (default: $BENCH, else ./build/benchmark_mha_fwd)
#   -f  run only the cases whose command line matches this grep pattern
#   -j  cases run in parallel (default 1); the CPU references of different cases overlap
#   -q  quiet: print only failures and the summary
# Extra benchmark flags can be given in $SMOKE_ARGS (default "-warmup=0 -repeat=1").
set -u -o pipefail

DEFAULT_BENCH=./build/benchmark_mha_fwd
SMOKE_BATCH=${SMOKE_BATCH:-8}  # cases per benchmark process (smoke_lib.sh)

# ---- the case list ------------------------------------------------------------------------
cases() {
    local prec mode perm hd lse base
    for prec in fp16 bf16; do
    for mode in 1 0; do
    for perm in 0 1; do
    for hd in 32 64 128 256; do
    for lse in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=$perm -operm=$perm -lse=$lse -kname=1 $COMMON_ARGS"
        echo "$base -b=2 -h=2 -h_k=1 -d=16 -d_v=$hd -s=55 -s_k=256"
        echo "$base -b=1 -h=3 -d=$hd -s=100 -s_k=51"
        echo "$base -b=2 -h=1 -d=16 -d_v=$hd -s=99 -s_k=256 -mask=1"
        echo "$base -b=1 -h=2 -h_k=1 -d=$hd -s=1024 -s_k=256 -mask=2"
        echo "$base -b=2 -h=1 -d=$hd -d_v=24 -s=3 -s_k=99 -mask=2"
        echo "$base -b=3 -h=2 -h_k=1 -d=$hd -s=200 -s_k=520 -mask=t:128,30"
        echo "$base -b=2 -h=1 -d=$hd -s=99 -s_k=32 -mask=b:4,35"
        echo "$base -b=1 -h=2 -h_k=1 -d=$hd -s=33 -s_k=0 -mask=2"
        echo "$base -b=1 -h=2 -h_k=1 -d=$hd -s=1 -s_k=10 -s_kpad=32 -mask=2"
    done; done; done; done; done
    for prec in fp16 bf16; do
    for mode in 1 0; do
    for perm in 0 1; do
    for lse in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=$perm -operm=$perm -lse=$lse -kname=1 $COMMON_ARGS"
        echo "$base -b=2 -h=4 -h_k=2 -d=59 -d_v=111 -s=77 -s_k=203 -mask=2"
        echo "$base -b=1 -h=3 -h_k=1 -d=200 -d_v=3 -s=130 -s_k=64 -mask=t:20,5"
    done; done; done; done
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
