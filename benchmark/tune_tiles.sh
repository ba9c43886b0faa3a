#!/usr/bin/env bash
# Tile-size sweep of the v2 forward / backward or the v3 forward kernels (benchmark tool, GPU machine).
# Builds one library per variant (compile.py into build_tune/<hdim>_<name>, with the -D knobs
# of src/kernels/tuning.h passed through NVCC_APPEND_FLAGS), all builds in parallel, then
# times each variant on the 16k-token shapes of docs/PERF.md, one line per (variant, shape).
#
# usage: bash benchmark/tune_tiles.sh "HDIM/name:FLAGS" ["HDIM/name:FLAGS" ...]
#   e.g. bash benchmark/tune_tiles.sh "128/base:" "128/n32:-DAITER_FWD_V2_TUNE_HDIM=128 -DAITER_FWD_V2_TUNE_M=128 -DAITER_FWD_V2_TUNE_N=32 -DAITER_FWD_V2_TUNE_W=4"
#        MODE=bwd bash benchmark/tune_tiles.sh "64/m128:-DAITER_BWD_V2_TUNE_HDIM=64 -DAITER_BWD_V2_TUNE_M=128 ..."
#        MODE=fwd_v3 bash benchmark/tune_tiles.sh "256/n64:-DAITER_FWD_V3_TUNE_HDIM=256 -DAITER_FWD_V3_TUNE_M=128 -DAITER_FWD_V3_TUNE_N=64 -DAITER_FWD_V3_TUNE_S=2"
#          (every knob and its meaning: src/kernels/tuning.h; for fwd_v3 only each bucket's default
#           instances are built, so the short-sequence variants are not used)
#   HDIM is one head dim or DQxDV (e.g. 192x128: TUNE_HDIM=192); h = 2048 / DQ.
# env:   MODE (fwd | bwd | fwd_v3, default fwd), PRECS (default bf16), SEQS (default "1024 4096 16384"),
#        MASKS (default "0 2"), JOBS (4)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=${MODE:-fwd}
PRECS=${PRECS:-bf16}; SEQS=${SEQS:-"1024 4096 16384"}; MASKS=${MASKS:-"0 2"}
pids=()
for v in "$@"; do
  hd=${v%%/*}; rest=${v#*/}; name=${rest%%:*}; flags=${rest#*:}
  filter=""
  for p in $PRECS; do
    if [ "$MODE" = bwd ]; then filter="$filter${filter:+,}fmha_bwd_v2_${p}_d${hd}_nomask,fmha_bwd_v2_${p}_d${hd}_mask"
    elif [ "$MODE" = fwd_v3 ]; then filter="$filter${filter:+,}fmha_fwd_v3_${p}_d${hd}_nomask,fmha_fwd_v3_${p}_d${hd}_mask"
    else filter="$filter${filter:+,}fmha_fwd_v2_${p}_d${hd}_*"; fi
  done
  ( NVCC_APPEND_FLAGS="$flags" python3 compile.py --api "$MODE" --arch sm_90a --bench --filter "$filter" \
      --output-dir "build_tune/${hd}_$name" -j "${JOBS:-4}" > "build_tune_${hd}_$name.log" 2>&1 \
      || { echo "build ${hd}_$name failed"; tail -20 "build_tune_${hd}_$name.log"; } ) &
  pids+=($!)
done
wait "${pids[@]}"
for v in "$@"; do
  hd=${v%%/*}; rest=${v#*/}; name=${rest%%:*}
  dq=${hd%%x*}; dv=${hd##*x}
  h=$((2048 / dq))
  for p in $PRECS; do for m in $MASKS; do for s in $SEQS; do
    b=$((16384 / s))
    if [ "$MODE" = bwd ]; then
      line=$(./build_tune/${hd}_$name/benchmark_mha_bwd -prec=$p -b=$b -h=$h -s=$s -d=$dq -d_v=$dv -mask=$m -iperm=0 -operm=0 -v=0 -warmup=3 -repeat=10 2>&1 | tail -1)
    else
      v3=""; [ "$MODE" = fwd_v3 ] && v3="-fwd_v3=1"
      line=$(./build_tune/${hd}_$name/benchmark_mha_fwd -prec=$p -b=$b -h=$h -s=$s -d=$dq -d_v=$dv -mask=$m -iperm=0 -operm=0 -lse=1 -v=0 -warmup=3 -repeat=10 $v3 2>&1 | tail -1)
    fi
    printf 'd%-4s %-8s %s mask=%s s=%-6s %s\n' "$hd" "$name" "$p" "$m" "$s" "$(echo "$line" | grep -oE '[0-9.]+ TFlops' || echo "$line")"
  done; done; done
done
