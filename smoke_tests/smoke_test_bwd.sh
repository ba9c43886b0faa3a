#!/usr/bin/env bash
# Backward smoke sweep (after CK's fmha bwd smoke test), validated against the CPU reference
# (dQ, dK, dV; benchmark/reference/mha_bwd_ref.h):
#   prec {fp16,bf16} x perm {0,1} x hdim {32,64,128,256} x mode {0,1} x the six shape cases
#   below  =  192 runs (atomic dQ),
# plus the same six cases with -deterministic=1 for prec x hdim x mode (perm 1) = 96 runs,
# plus head dims / strides that are not multiples of 8 (mha_bwd's packed path): prec x perm x
# mode x the three cases in unaligned_shapes = 24 runs.
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

DEFAULT_BENCH=./build/benchmark_mha_bwd

shapes() {  # $1 = hdim
    local hd="$1"
    echo "-b=1 -h=4 -h_k=2 -d=$hd -s=259"
    echo "-b=2 -h=2 -d=$hd -s=516 -s_k=253"
    echo "-b=1 -h=4 -h_k=1 -d=$hd -s=500 -s_k=251 -mask=1"
    echo "-b=1 -h=2 -d=$hd -s=900 -s_k=258 -mask=2"
    echo "-b=2 -h=1 -d=$hd -s=987 -s_k=219 -mask=t:128,30"
    echo "-b=2 -h=3 -h_k=1 -d=$hd -s=244 -s_k=499 -mask=b:4,35"
}

unaligned_shapes() {
    echo "-b=2 -h=4 -h_k=2 -d=59 -s=130 -s_k=77 -mask=2"
    echo "-b=1 -h=2 -d=111 -d_v=24 -s=200 -s_k=321"
    echo "-b=2 -h=3 -h_k=1 -d=250 -d_v=5 -s=99 -s_k=140 -mask=t:40,3 -deterministic=1"
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
    for prec in fp16 bf16; do
    for perm in 0 1; do
    for mode in 0 1; do
        base="$BENCH -prec=$prec -mode=$mode -iperm=$perm -operm=$perm -kname=1 $COMMON_ARGS"
        unaligned_shapes | while read -r shape; do echo "$base $shape"; done
    done; done; done
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
