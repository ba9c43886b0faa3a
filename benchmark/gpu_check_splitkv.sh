#!/usr/bin/env bash
# One-call GPU session for the split-KV path: build, quick cases, sanitizer on paged cases,
# smoke sweep (both dtypes, each under its own time limit), decode benchmark vs peers.
# Usage: bash benchmark/gpu_check_splitkv.sh   Env: LOG_DIR (default $OUT or ./gpu_logs),
#        SMOKE_LIMIT (s per dtype half, default 170), PERF_LIMIT (s, default 120), PERF_ARGS.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_DIR=${LOG_DIR:-${OUT:-./gpu_logs}}
mkdir -p "$LOG_DIR"
B=./build/benchmark_mha_fwd
note() { echo "=== $* ($(date +%T))"; }
note build
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader
t0=$(date +%s)
python3 compile.py --api fwd_splitkv --bench -j 16 > "$LOG_DIR/build.log" 2>&1 || { tail -60 "$LOG_DIR/build.log"; exit 1; }
echo "build wall $(( $(date +%s) - t0 )) s"
note quick
for a in "-b=2 -h=8 -h_k=2 -s=1 -s_k=1000 -num_splits=3 -page_block_size=16 -cache_batch_idx=1 -mask=2" \
         "-b=2 -h=4 -h_k=2 -s=100 -s_k=4097 -num_splits=0 -prec=fp16" "-b=1 -h=4 -h_k=1 -s=4 -s_k=63 -d=256 -num_splits=1 -splitkv=1"; do
  $B $a -prec=bf16 -d=128 -lse=1 -kname=1 -warmup=0 -repeat=1 2>&1 | tail -4
done
note sanitize
for a in "-b=2 -h=8 -h_k=2 -s=4 -s_k=1000 -num_splits=3 -page_block_size=16 -cache_batch_idx=1 -mask=2 -lse=1" \
         "-b=2 -h=16 -h_k=2 -s=1 -s_k=777 -num_splits=0 -page_block_size=128 -iperm=0 -operm=0 -d=64 -lse=1"; do
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 $B $a -v=1 -warmup=0 -repeat=1 > "$LOG_DIR/san.tmp" 2>&1
    echo "[$tool rc=$?] $a :: $(grep -E 'ERROR SUMMARY|valid' "$LOG_DIR/san.tmp" | tr '\n' ' ')"; cat "$LOG_DIR/san.tmp" >> "$LOG_DIR/sanitize.log"
  done
done
for prec in bf16 fp16; do
  note "smoke $prec"; t0=$(date +%s)
  timeout "${SMOKE_LIMIT:-170}" bash smoke_tests/smoke_test_splitkv.sh -b $B -j 16 -q -f "prec=$prec" > "$LOG_DIR/smoke_$prec.log" 2>&1
  echo "rc=$? wall $(( $(date +%s) - t0 )) s"; grep FAILED "$LOG_DIR/smoke_$prec.log" | head -15; tail -1 "$LOG_DIR/smoke_$prec.log"
done
note perf
timeout "${PERF_LIMIT:-120}" python3 benchmark/peer_decode.py --out-dir "$LOG_DIR" ${PERF_ARGS:-} 2>&1 | tail -30
