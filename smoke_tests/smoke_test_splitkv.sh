#!/usr/bin/env bash
# Split-KV / paged-KV smoke sweep (aiter::mha_fwd_splitkv), validated against the CPU reference:
#   prec {fp16,bf16} x seqlen_q {1,4,16,100} x seqlen_k {1,63,1000,4097} x num_splits {0,1,3,16}
#   x page_block_size {0,16,128} x cache_batch_idx {0,1} x GQA ratio {1,4,8} x mask {0,2}
#   = 4608 runs, each -b=2 -h_k=2 -h=2*ratio -d=128 -lse=1 -splitkv=1 (small, so the CPU
#   reference stays cheap), plus 30 runs with sliding windows, hdim 64/256, d_v != d, a padded
#   capacity (-s_kpad) and large batches that run d128's deep tile.
# A case fails on a non-zero exit code, "valid:n", "not supported yet", or a missing result
# line (one containing "valid:y"). Every failing command line is printed; the script ends with
# "N passed, M failed" and exits non-zero on any failure.
#
# usage: smoke_test_splitkv.sh [-b path/to/benchmark_mha_fwd] [-f pattern] [-j N] [-q]
#   -b  benchmark executable (default: $BENCH, else ./build/benchmark_mha_fwd)
#   -f  run only the cases whose command line matches this grep pattern
#   -j  cases run in parallel (default 1)
#   -q  quiet: print only failures and the summary
# Extra benchmark flags can be given in $SMOKE_ARGS (default "-warmup=0 -repeat=1").
# Run time: 16 cases per benchmark process by default (SMOKE_BATCH=16; batches are strided, so
# the heavy -s=100 -s_k=4097 cases spread over all of them): the whole sweep in 156 s with -j 16
# on an H100 (2026-11-22). One process per case (SMOKE_BATCH=1) took 460-500 s per dtype, because
# CUDA contexts are created one at a time (~0.2 s each).
set -u -o pipefail

DEFAULT_BENCH=./build/benchmark_mha_fwd
SMOKE_BATCH=${SMOKE_BATCH:-16}

# ---- the case list ------------------------------------------------------------------------
cases() {
    local prec sq sk ns pg ci gqa mask base
    for prec in fp16 bf16; do
    for sq in 1 4 16 100; do
    for sk in 1 63 1000 4097; do
    for ns in 0 1 3 16; do
    for pg in 0 16 128; do
    for ci in 0 1; do
    for gqa in 1 4 8; do
    for mask in 0 2; do
        echo "$BENCH -prec=$prec -b=2 -h_k=2 -h=$((2 * gqa)) -d=128 -s=$sq -s_k=$sk -num_splits=$ns -page_block_size=$pg -cache_batch_idx=$ci -mask=$mask -lse=1 -splitkv=1 -kname=1 $COMMON_ARGS"
    done; done; done; done; done; done; done; done
    for prec in fp16 bf16; do
        base="$BENCH -prec=$prec -lse=1 -splitkv=1 -kname=1 $COMMON_ARGS"
        echo "$base -b=3 -h=8 -h_k=2 -d=128 -s=1 -s_k=3000 -mask=b:500,0 -num_splits=0 -page_block_size=32"
        echo "$base -b=2 -h=4 -h_k=1 -d=128 -s=7 -s_k=2000 -mask=b:100,0 -num_splits=5 -page_block_size=64 -cache_batch_idx=1"
        echo "$base -b=2 -h=6 -h_k=3 -d=64 -s=3 -s_k=777 -mask=2 -num_splits=0 -page_block_size=16 -iperm=0 -operm=0"
        echo "$base -b=2 -h=6 -h_k=3 -d=64 -d_v=32 -s=1 -s_k=1500 -num_splits=4"
        echo "$base -b=2 -h=4 -h_k=2 -d=256 -s=2 -s_k=1234 -mask=2 -num_splits=0 -page_block_size=256"
        echo "$base -b=1 -h=16 -h_k=2 -d=256 -s=1 -s_k=5000 -num_splits=7 -cache_batch_idx=1 -iperm=0 -operm=0"
        echo "$base -b=2 -h=8 -h_k=8 -d=128 -s=5 -s_k=900 -s_kpad=1024 -mask=2 -num_splits=3 -page_block_size=128"
        echo "$base -b=2 -h=8 -h_k=2 -d=128 -s=1 -s_k=700 -s_kpad=1000 -num_splits=0 -cache_batch_idx=1"
        echo "$base -b=2 -h=4 -h_k=2 -d=96 -s=4 -s_k=333 -mask=t:20,0 -num_splits=2 -page_block_size=16"
        echo "$base -b=2 -h=4 -h_k=2 -d=128 -s=1 -s_k=0 -num_splits=3"
        echo "$base -b=2 -h=4 -h_k=2 -d=128 -s=16 -s_k=100 -logits_soft_cap=2 -num_splits=2 -page_block_size=16"
        echo "$base -b=4 -h=32 -h_k=8 -d=128 -s=1 -s_k=8192 -num_splits=0 -page_block_size=16 -cache_batch_idx=1"
        # d128 deep tile (unsplit batches that overfill a wave of the default tile: b * h_k > 3 * SMs)
        echo "$base -b=64 -h=32 -h_k=8 -d=128 -s=1 -s_k=1000 -num_splits=0"
        echo "$base -b=64 -h=16 -h_k=8 -d=128 -s=3 -s_k=777 -mask=2 -num_splits=0 -page_block_size=16 -cache_batch_idx=1"
        echo "$base -b=50 -h=40 -h_k=10 -d=96 -d_v=128 -s=2 -s_k=555 -mask=b:100,0 -num_splits=1 -page_block_size=64 -iperm=0 -operm=0"
    done
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
