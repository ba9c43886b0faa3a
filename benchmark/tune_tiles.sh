#!/usr/bin/env bash
# Tile-size sweep of the v2 forward kernels (benchmark tool, GPU machine).
# Builds one library per variant (compile.py into build_tune/<hdim>_<name>, with -D overrides
# of src/kernels/fwd_v2/tile.h passed through NVCC_APPEND_FLAGS), all builds in parallel, then
# times each variant on the 16k-token shapes of docs/PERF.md, one line per (variant, shape).
#
# usage: bash benchmark/tune_tiles.sh "HDIM/name:FLAGS" ["HDIM/name:FLAGS" ...]
#   e.g. bash benchmark/tune_tiles.sh "128/base:" "128/n32:-DAITER_FWD_V2_TILE_D128_N=32"
# env:   PRECS (default bf16), SEQS (default "1024 4096 16384"), MASKS (default "0 2"), JOBS (4)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PRECS=${PRECS:-bf16}; SEQS=${SEQS:-"1024 4096 16384"}; MASKS=${MASKS:-"0 2"}
pids=()
for v in "$@"; do
  hd=${v%%/*}; rest=${v#*/}; name=${rest%%:*}; flags=${rest#*:}
  filter=""
  for p in $PRECS; do filter="$filter${filter:+,}fmha_fwd_v2_${p}_d${hd}_*"; done
  ( NVCC_APPEND_FLAGS="$flags" python3 compile.py --api fwd --bench --filter "$filter" \
      --output-dir "build_tune/${hd}_$name" -j "${JOBS:-4}" > "build_tune_${hd}_$name.log" 2>&1 \
      || { echo "build ${hd}_$name failed"; tail -20 "build_tune_${hd}_$name.log"; } ) &
  pids+=($!)
done
wait "${pids[@]}"
for v in "$@"; do
  hd=${v%%/*}; rest=${v#*/}; name=${rest%%:*}
  h=$((2048 / hd))
  for p in $PRECS; do for m in $MASKS; do for s in $SEQS; do
    b=$((16384 / s))
    line=$(./build_tune/${hd}_$name/benchmark_mha_fwd -prec=$p -b=$b -h=$h -s=$s -d=$hd -mask=$m -iperm=0 -operm=0 -lse=1 -v=0 -warmup=3 -repeat=10 2>&1 | tail -1)
    printf 'd%-4s %-8s %s mask=%s s=%-6s %s\n' "$hd" "$name" "$p" "$m" "$s" "$(echo "$line" | grep -oE '[0-9.]+ TFlops' || echo "$line")"
  done; done; done
done
