#!/usr/bin/env bash
# v3 (Hopper-native) forward smoke sweep, validated against the CPU reference. Every case runs
# with -fwd_v3=1 and must name an fmha_fwd_v3_* kernel (a silent fallback to v2 fails).
#   prec {fp16,bf16} x (hdim_q,hdim_v) {(64,64),(128,128),(192,128),(256,256)} x mode {0,1}
#   x mask {0, 2, t:128,30, b:4,35} x sq {127,192,301,512,1024} x sk {0,129,512,700,1023,1058}
#   (+ mask 1 where sq == sk)  =  1936 runs,
#   + 16 long masked runs of (192,128) and d256 (max seqlen_q > 2048: their default kernels;
#   the sweep above runs their short-sequence variants, see src/kernels/fwd_v3/tile.h)  =  1952,
#   + 24 logits soft-cap runs (cap 2; prec x hdim x mask {0, 2, b:4,35}, short lengths, where the
#   host must take the default kernel: the short-sequence variants have no soft-cap)  =  1976,
#   + 96 multi-tile runs: prec x hdim x mask {0, 2, b:4,35, t:128,30} x 3 shapes with many row
#   blocks (batch s = s_k = 1000; batch s = 700, s_k = 300, where bottom-right masks leave rows
#   without keys; group mode with lengths 1000, 1, 0, 517), with -v3_max_ctas 1, 2 or 3 so
#   that each CTA of a persistent kernel walks many tiles (the sweep above fits in one wave,
#   one tile per CTA)  =  2072.
# The full product with (b,h,h_k) {(2,4,2),(1,3,1),(1,1,1)} x iperm x operm x lse on top would be
# ~46k runs; instead those four vary with the (sq, sk) case so that, for every prec x hdim x
# mode x mask, each of their 24 combinations appears at least once.
# A case fails on a non-zero exit code, "valid:n", "not supported yet", a missing result line
# or a kernel name that is not fmha_fwd_v3_*. Every failing command line is printed; the script
# ends with "N passed, M failed" and exits non-zero on any failure.
#
# usage: smoke_test_fwd_v3.sh [-b path/to/benchmark_mha_fwd] [-f pattern] [-j N] [-q]
#   -b  benchmark executable (default: $BENCH, else ./build/benchmark_mha_fwd)
#   -f  run only the cases whose command line matches this grep pattern
#   -j  cases run in parallel (default 1)
#   -q  quiet: print only failures and the summary
# Extra benchmark flags can be given in $SMOKE_ARGS (default "-warmup=0 -repeat=1").
set -u -o pipefail

DEFAULT_BENCH=./build/benchmark_mha_fwd
SMOKE_BATCH=${SMOKE_BATCH:-16}  # cases per benchmark process (smoke_lib.sh)
SMOKE_REQUIRE="fmha_fwd_v3_"

cases() {
    local prec hd dq dv mode mask sq sk i bhk b h hk ip op lse
    local bhks=("2 4 2" "1 3 1" "1 1 1")
    for prec in fp16 bf16; do
    for hd in 64:64 128:128 192:128 256:256; do
    dq=${hd%:*}; dv=${hd#*:}
    for mode in 0 1; do
    for mask in 0 2 t:128,30 b:4,35 1; do
        i=0
        for sq in 127 192 301 512 1024; do
        for sk in 0 129 512 700 1023 1058; do
            if [[ "$mask" == 1 && "$sq" != "$sk" ]]; then continue; fi
            # (b,h,h_k) x iperm x operm x lse: 24 combinations over the 30 (sq, sk) cases.
            bhk=(${bhks[$((i % 3))]}); b=${bhk[0]}; h=${bhk[1]}; hk=${bhk[2]}
            ip=$(((i / 3) % 2)); op=$(((i / 6) % 2)); lse=$(((i / 12) % 2))
            [[ $i -ge 24 ]] && { ip=$(((i + 1) % 2)); op=$((i % 2)); lse=$(((i / 2) % 2)); }
            echo "$BENCH -prec=$prec -mode=$mode -b=$b -h=$h -h_k=$hk -d=$dq -d_v=$dv -s=$sq -s_k=$sk -mask=$mask -iperm=$ip -operm=$op -lse=$lse -fwd_v3=1 -kname=1 $COMMON_ARGS"
            i=$((i + 1))
        done; done
    done; done; done; done
    for prec in fp16 bf16; do
    for hd in 192:128 256:256; do
    dq=${hd%:*}; dv=${hd#*:}
    for mask in 2 b:4,35; do
        echo "$BENCH -prec=$prec -mode=0 -b=1 -h=2 -h_k=1 -d=$dq -d_v=$dv -s=2500 -s_k=2600 -mask=$mask -iperm=1 -operm=0 -lse=1 -fwd_v3=1 -kname=1 $COMMON_ARGS"
        echo "$BENCH -prec=$prec -mode=1 -b=2 -h=2 -h_k=1 -d=$dq -d_v=$dv -s=2113,100 -s_k=2200,701 -mask=$mask -iperm=0 -operm=1 -lse=0 -fwd_v3=1 -kname=1 $COMMON_ARGS"
    done; done; done
    i=0
    for prec in fp16 bf16; do
    for hd in 64:64 128:128 192:128 256:256; do
    dq=${hd%:*}; dv=${hd#*:}
    for mask in 0 2 b:4,35; do
        echo "$BENCH -prec=$prec -mode=$((i % 2)) -b=2 -h=4 -h_k=2 -d=$dq -d_v=$dv -s=301 -s_k=700 -mask=$mask -logits_soft_cap=2 -iperm=$(((i / 2) % 2)) -operm=$((i % 2)) -lse=1 -fwd_v3=1 -kname=1 $COMMON_ARGS"
        i=$((i + 1))
    done; done; done
    i=0
    local shapes=("-mode=0 -b=3 -h=4 -h_k=2 -s=1000 -s_k=1000" "-mode=0 -b=2 -h=6 -h_k=1 -s=700 -s_k=300"
                  "-mode=1 -b=4 -h=3 -h_k=3 -s=1000,1,0,517 -s_k=900,0,33,517")
    for prec in fp16 bf16; do
    for hd in 64:64 128:128 192:128 256:256; do
    dq=${hd%:*}; dv=${hd#*:}
    for mask in 0 2 b:4,35 t:128,30; do
    for sh in "${shapes[@]}"; do
        echo "$BENCH -prec=$prec $sh -d=$dq -d_v=$dv -mask=$mask -iperm=$((i % 2)) -operm=$(((i / 2) % 2)) -lse=$(((i / 4) % 2)) -v3_max_ctas=$((1 + i % 3)) -fwd_v3=1 -kname=1 $COMMON_ARGS"
        i=$((i + 1))
    done; done; done; done
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
