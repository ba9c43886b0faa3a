#!/usr/bin/env bash
# One-call GPU session: build, correctness sweeps, sanitizer, peer benchmarks — pick the steps.
#
# Usage: bash benchmark/gpu_check.sh [steps...]
#   build       compile.py --bench (every api; $API narrows it: compile.py --api)
#   smoke       smoke_test_fwd.sh -j 16                      (forward v2, 608 cases)
#   ref         forward -v=2 (GPU reference) on large shapes, -v=1 vs -v=2 on medium ones
#   validate    tests/cpp/fwd_validation.cpp (device seqlen arrays) + fwd_padding_gpu.cpp +
#               edge_strides_gpu.cpp under memcheck (broadcast inputs, huge valid strides)
#   graph       tests/cpp/graph_capture_gpu.cpp: every API captured in a CUDA graph and replayed
#               (needs the fwd, fwd_v3, fwd_splitkv and bwd apis built)
#   ab          same-run A/B against a baseline: the source tree $BASE_SRC (e.g. a `git archive`
#               of the old revision, carried to the GPU machine in a git-ignored folder) or, where
#               git works, revision $BASE_REV; built into build_base/ with the same API set, then
#               benchmark/sass_diff.py of every kernel and benchmark/ab_compare.sh on $AB_CASES
#               (default benchmark/ab_cases.txt)
#   sanitize    compute-sanitizer memcheck + racecheck on forward cases
#   splitkv     split-KV: quick cases, sanitizer on paged cases (out-of-range table entries
#               included), smoke sweep per dtype
#               (each half under SMOKE_LIMIT seconds, default 170; SPLITKV_FILTER narrows it)
#   v3          v3 (Hopper) forward: quick cases + SASS check, sanitizer, smoke_test_fwd_v3.sh
#               under SMOKE_LIMIT seconds (V3_FILTER narrows the sweep: smoke -f)
#   bwd         backward: smoke_test_bwd.sh, a 100-run determinism check, sanitizer
#   bwd_v3      v3 (Hopper) backward: smoke_test_bwd_v3.sh, memcheck/racecheck/synccheck on v3
#               cases, and v2 vs v3 in the same run (bf16, d64/d128, s 1k-16k, causal and not)
#   fuzz        smoke_tests/fuzz_cli.sh: $FUZZ_CASES random cases over every path (FUZZ_SEED)
#   python      the Python extension (compile.py --python) + pytest tests/gpu
#   perf        peer_compare.py --mode fwd (ours vs SDPA cuDNN / FA2), table + PNG
#   bwd_perf    peer_compare.py --mode bwd
#   decode_perf peer_decode.py (split-KV decode vs SDPA and copy bandwidth)
#   quickperf   peer_compare.py --quick
#   (default: build smoke sanitize validate perf)
# Env: LOG_DIR (default $OUT or ./gpu_logs), MAX_JOBS, API, FILTER (compile.py --filter),
#      SMOKE_FILTER (smoke_test_fwd.sh -f), SMOKE_LIMIT, SPLITKV_FILTER, PERF_ARGS, TAG,
#      PYTEST_ARGS.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG_DIR=${LOG_DIR:-${OUT:-./gpu_logs}}
mkdir -p "$LOG_DIR"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build smoke sanitize validate perf)
BENCH=./build/benchmark_mha_fwd
BENCH_BWD=./build/benchmark_mha_bwd
status=0
note() { echo "=== $* ($(date +%T))"; }

# sanitize_cases BENCH "case" ...: memcheck + racecheck, one line per run, logs appended.
sanitize_cases() {
  local bench=$1 args tool rc
  shift
  for args in "$@"; do
    for tool in memcheck racecheck; do
      compute-sanitizer --tool $tool --error-exitcode 9 $bench $args -v=1 -warmup=0 -repeat=1 > "$LOG_DIR/san.tmp" 2>&1
      rc=$?; echo "[$tool rc=$rc] $args :: $(grep -E 'ERROR SUMMARY|valid' "$LOG_DIR/san.tmp" | tr '\n' ' ')"
      cat "$LOG_DIR/san.tmp" >> "$LOG_DIR/sanitize.log"; [ $rc -eq 0 ] || status=1
    done
  done
}

for step in "${steps[@]}"; do
  case "$step" in
    build)
      note build
      nvidia-smi --query-gpu=name,compute_cap,clocks.sm,clocks.mem --format=csv | tee "$LOG_DIR/gpu.txt"
      t0=$(date +%s)
      python3 compile.py ${API:+--api "$API"} --bench ${FILTER:+--filter "$FILTER"} -j "${MAX_JOBS:-16}" \
        > "$LOG_DIR/build.log" 2>&1 || { tail -50 "$LOG_DIR/build.log"; exit 1; }
      echo "build wall $(( $(date +%s) - t0 )) s"; tail -6 "$LOG_DIR/build.log" ;;
    smoke)
      note smoke
      bash smoke_tests/smoke_test_fwd.sh -b "$BENCH" -j 16 -q ${SMOKE_FILTER:+-f "$SMOKE_FILTER"} > "$LOG_DIR/smoke_fwd.log" 2>&1 || status=1
      grep -E "FAILED" "$LOG_DIR/smoke_fwd.log" | head -40; tail -1 "$LOG_DIR/smoke_fwd.log" ;;
    ref)
      note "GPU reference (-v=2) on large shapes, and -v=1 vs -v=2 on medium ones"
      for args in "-b=1 -h=16 -s=4096 -d=128 -prec=bf16 -mask=2 -lse=1 -iperm=0 -operm=0" \
                  "-b=2 -h=8 -h_k=2 -s=2048 -s_k=3000 -d=256 -mask=t:500,20 -lse=1" \
                  "-mode=1 -b=3 -h=4 -s=1000,3000,17 -s_k=2000,100,4000 -d=64 -mask=b:100,0 -lse=1 -prec=bf16" \
                  "-b=1 -h=8 -s=16384 -d=128 -prec=bf16" "-b=4 -h=8 -s=8192 -d=64 -mask=1 -prec=fp16" \
                  "-b=2 -h=6 -h_k=3 -s=1500 -s_k=2100 -d=111 -d_v=59 -mask=b:300,7 -lse=1 -iperm=0 -operm=0" \
                  "-mode=1 -b=2 -h=2 -s=700,1300 -s_k=900,1 -d=250 -d_v=5 -mask=2 -lse=1 -prec=bf16"; do
        for v in 2 1; do
          [ $v = 1 ] && case "$args" in *16384*|*8192*) continue ;; esac
          out=$($BENCH $args -v=$v -warmup=1 -repeat=2 2>&1); rc=$?
          echo "[v=$v rc=$rc] $(echo "$out" | tail -1)"; [ $rc -eq 0 ] && echo "$out" | grep -q "valid:y" || status=1
        done
      done ;;
    validate)
      note validate
      nvcc -std=c++20 -I include tests/cpp/fwd_validation.cpp -L build -lmha_fwd -Xlinker=-rpath=$PWD/build -o build/fwd_validation \
        && ./build/fwd_validation | grep -vE '^ok '
      nvcc -std=c++20 -I include -I src -I benchmark tests/cpp/fwd_padding_gpu.cpp -L build -lmha_fwd -Xlinker=-rpath=$PWD/build \
        -o build/fwd_padding_gpu && ./build/fwd_padding_gpu || status=1
      nvcc -std=c++20 -I include tests/cpp/edge_strides_gpu.cpp -L build -lmha_fwd -lmha_bwd -Xlinker=-rpath=$PWD/build \
        -o build/edge_strides_gpu && compute-sanitizer --tool memcheck --error-exitcode 9 ./build/edge_strides_gpu || status=1 ;;
    graph)
      note "CUDA graph capture of every API"
      nvcc -std=c++20 -I include tests/cpp/graph_capture_gpu.cpp -L build -lmha_fwd -lmha_bwd -Xlinker=-rpath=$PWD/build \
        -o build/graph_capture_gpu && ./build/graph_capture_gpu || status=1 ;;
    ab)
      note "A/B against ${BASE_SRC:-${BASE_REV:?set BASE_SRC (a source tree) or BASE_REV (a git revision)}}"
      rm -rf build_base && mkdir -p build_base/src
      if [ -n "${BASE_SRC:-}" ]; then cp -r "$BASE_SRC"/. build_base/src/; else git archive "$BASE_REV" | tar -x -C build_base/src; fi
      [ -d 3rdparty/cutlass ] && mkdir -p build_base/src/3rdparty && ln -sfn "$PWD/3rdparty/cutlass" build_base/src/3rdparty/cutlass
      (cd build_base/src && python3 compile.py ${API:+--api "$API"} --bench --output-dir ../ -j "${MAX_JOBS:-16}") \
        > "$LOG_DIR/build_base.log" 2>&1 || { tail -30 "$LOG_DIR/build_base.log"; status=1; continue; }
      python3 benchmark/sass_diff.py build_base build > "$LOG_DIR/sass_diff.txt"; grep -v "^identical\|^params-only" "$LOG_DIR/sass_diff.txt" | tail -30
      bash benchmark/ab_compare.sh build_base build "${AB_CASES:-benchmark/ab_cases.txt}" | tee "$LOG_DIR/ab.txt" ;;
    fuzz)
      note "CLI fuzz (seed ${FUZZ_SEED:-today})"
      bash smoke_tests/fuzz_cli.sh -b "$BENCH" -j 16 -q > "$LOG_DIR/fuzz.log" 2>&1 || status=1
      grep -E "FAILED|FUZZ_SEED" "$LOG_DIR/fuzz.log" | head -40; tail -1 "$LOG_DIR/fuzz.log" ;;
    sanitize)
      note sanitize
      sanitize_cases "$BENCH" "-b=2 -h=2 -h_k=1 -d=64 -s=99 -s_k=131 -mask=b:4,35 -lse=1" \
                     "-mode=1 -b=3 -h=2 -d=128 -s=55,200,1 -s_k=256,0,33 -mask=1 -lse=1" \
                     "-b=1 -h=2 -d=59 -d_v=24 -s=77 -s_k=93 -iperm=0 -operm=0 -prec=bf16" \
                     "-b=1 -h=1 -d=256 -s=130 -s_k=70 -mask=2 -lse=1" ;;
    splitkv)
      note "split-KV quick cases"
      for a in "-b=2 -h=8 -h_k=2 -s=1 -s_k=1000 -num_splits=3 -page_block_size=16 -cache_batch_idx=1 -mask=2" \
               "-b=2 -h=4 -h_k=2 -s=100 -s_k=4097 -num_splits=0 -prec=fp16" "-b=1 -h=4 -h_k=1 -s=4 -s_k=63 -d=256 -num_splits=1 -splitkv=1"; do
        $BENCH $a -prec=bf16 -d=128 -lse=1 -kname=1 -warmup=0 -repeat=1 2>&1 | tail -2
      done
      note "split-KV sanitizer (paged)"
      sanitize_cases "$BENCH" "-b=2 -h=8 -h_k=2 -s=4 -s_k=1000 -num_splits=3 -page_block_size=16 -cache_batch_idx=1 -mask=2 -lse=1" \
                     "-b=2 -h=16 -h_k=2 -s=1 -s_k=777 -num_splits=0 -page_block_size=128 -iperm=0 -operm=0 -d=64 -lse=1" \
                     "-b=3 -h=8 -h_k=2 -s=4 -s_k=1000 -num_splits=2 -page_block_size=16 -cache_batch_idx=1 -bad_cache_entries=1 -lse=1" \
                     "-b=3 -h=4 -h_k=4 -s=2 -s_k=300 -cache_batch_idx=1 -bad_cache_entries=1 -mask=2"
      for prec in bf16 fp16; do
        note "split-KV smoke $prec"; t0=$(date +%s)
        timeout "${SMOKE_LIMIT:-170}" bash smoke_tests/smoke_test_splitkv.sh -b $BENCH -j 16 -q \
          -f "prec=$prec${SPLITKV_FILTER:+.*$SPLITKV_FILTER}" > "$LOG_DIR/smoke_splitkv_$prec.log" 2>&1 || status=1
        echo "wall $(( $(date +%s) - t0 )) s"; grep FAILED "$LOG_DIR/smoke_splitkv_$prec.log" | head -15
        tail -1 "$LOG_DIR/smoke_splitkv_$prec.log"
      done ;;
    v3)
      note "v3 quick cases"
      for a in "-prec=bf16 -d=128 -b=2 -h=4 -h_k=2 -s=1024 -s_k=1058 -mask=0 -lse=1" \
               "-prec=fp16 -d=64 -b=1 -h=3 -s=301 -s_k=700 -mask=2 -iperm=0 -operm=0" \
               "-prec=bf16 -d=192 -d_v=128 -mode=1 -b=2 -h=4 -h_k=2 -s=127,300 -s_k=512,0 -mask=b:4,35 -lse=1" \
               "-prec=bf16 -d=256 -b=1 -h=1 -s=512 -s_k=512 -mask=1 -lse=1" \
               "-prec=bf16 -d=96 -b=1 -h=2 -s=200 -s_k=333 -mask=t:128,30"; do
        timeout 60 $BENCH $a -fwd_v3=1 -kname=1 -det_runs=5 -warmup=0 -repeat=1 2>&1 | tail -1
      done
      cuobjdump -sass build/libmha_fwd.so 2>/dev/null | awk '/Function :/ { f = ($3 ~ /fwd_v3/) } f && /HGMMA/ { h++ } f && /(LDL|STL)/ { l++ } END { print "v3 SASS: HGMMA", h + 0, "local-memory ops", l + 0 }'
      note "v3 sanitizer"
      sanitize_cases "$BENCH" "-fwd_v3=1 -prec=bf16 -d=128 -b=2 -h=4 -h_k=2 -s=301 -s_k=129 -mask=2 -lse=1" \
                     "-fwd_v3=1 -prec=fp16 -d=64 -mode=1 -b=2 -h=2 -s=127,200 -s_k=700,0 -mask=t:128,30 -lse=1"
      note "v3 smoke"; t0=$(date +%s)
      SMOKE_CASE_TIMEOUT=60 timeout "${SMOKE_LIMIT:-300}" bash smoke_tests/smoke_test_fwd_v3.sh -b "$BENCH" -j 16 -q ${V3_FILTER:+-f "$V3_FILTER"} \
        > "$LOG_DIR/smoke_fwd_v3.log" 2>&1 || status=1
      echo "wall $(( $(date +%s) - t0 )) s"; grep -E "FAILED" "$LOG_DIR/smoke_fwd_v3.log" | head -30; tail -1 "$LOG_DIR/smoke_fwd_v3.log" ;;
    bwd)
      note "backward smoke"
      bash smoke_tests/smoke_test_bwd.sh -b "$BENCH_BWD" -j 16 -q > "$LOG_DIR/smoke_bwd.log" 2>&1 || status=1
      grep FAILED "$LOG_DIR/smoke_bwd.log" | head -30; tail -1 "$LOG_DIR/smoke_bwd.log"
      note "backward determinism (100 runs)"
      $BENCH_BWD -deterministic=1 -det_runs=100 -prec=bf16 -d=128 -mask=1 -b=1 -s=500 -s_k=251 -h=4 -h_k=1 2>&1 | tail -3 || status=1
      note "backward sanitizer"
      sanitize_cases "$BENCH_BWD" "-d=64 -mask=2 -h=2 -h_k=1 -mode=1 -b=2 -s=77,130 -s_k=203,64" \
                     "-d=128 -mask=t:40,3 -h=4 -h_k=2 -b=1 -s=100 -s_k=70 -deterministic=1" \
                     "-d=59 -d_v=24 -mask=2 -h=4 -h_k=2 -mode=1 -b=2 -s=77,130 -s_k=203,64 -iperm=0 -operm=0" ;;
    bwd_v3)
      note "v3 backward smoke"
      bash smoke_tests/smoke_test_bwd_v3.sh -b "$BENCH_BWD" -j 16 -q > "$LOG_DIR/smoke_bwd_v3.log" 2>&1 || status=1
      grep FAILED "$LOG_DIR/smoke_bwd_v3.log" | head -30; tail -1 "$LOG_DIR/smoke_bwd_v3.log"
      note "v3 backward sanitizer (memcheck, racecheck, synccheck: named barriers between warpgroups)"
      for args in "-bwd_v3=1 -prec=bf16 -d=128 -mode=1 -b=3 -h=4 -h_k=2 -s=77,1,300 -s_k=203,0,129 -mask=2" \
                  "-bwd_v3=1 -prec=fp16 -d=64 -mode=1 -b=3 -h=4 -h_k=2 -s=77,1,300 -s_k=203,0,129 -mask=1" \
                  "-bwd_v3=1 -prec=fp16 -d=64 -b=2 -h=2 -s=300 -s_k=259 -mask=t:40,3"; do
        for tool in memcheck racecheck synccheck; do
          compute-sanitizer --tool $tool --error-exitcode 9 $BENCH_BWD $args -kname=1 -v=1 -warmup=0 -repeat=1 > "$LOG_DIR/san.tmp" 2>&1
          rc=$?; echo "[$tool rc=$rc] $args :: $(grep -E 'ERROR SUMMARY|valid|fmha_bwd_v3' "$LOG_DIR/san.tmp" | tr '\n' ' ' | cut -c1-200)"
          cat "$LOG_DIR/san.tmp" >> "$LOG_DIR/sanitize.log"; [ $rc -eq 0 ] || status=1
        done
      done
      note "v2 vs v3 backward, same run (TFLOP/s)"
      for args in "-d=128 -b=16 -h=16 -s=1024" "-d=128 -b=8 -h=16 -s=2048" "-d=128 -b=2 -h=16 -s=8192" \
                  "-d=128 -b=2 -h=16 -s=8192 -mask=2" "-d=128 -b=1 -h=16 -s=16384" "-d=64 -b=8 -h=32 -s=2048" \
                  "-d=64 -b=2 -h=32 -s=8192 -mask=2" "-d=64 -b=1 -h=32 -s=16384"; do
        for v in 0 1; do
          $BENCH_BWD -prec=bf16 $args -bwd_v3=$v -kname=1 -v=0 -warmup=3 -repeat=10 2>&1 | tail -1 \
            | grep -oE "b:.*mask:[a-z], fmha_bwd_v[23][a-z0-9_]*, [0-9.]+ ms, [0-9.]+ TFlops"
        done
      done 2>&1 | tee "$LOG_DIR/bwd_v3_perf.log" ;;
    python)
      note "python extension + tests/gpu (torch and cupy tensors)"
      python3 -c "import sysconfig, os; p = sysconfig.get_paths()['include']; print('Python.h:', os.path.isfile(p + '/Python.h'), p)"
      python3 compile.py ${API:+--api "$API"} --bench --python $(python3 -c "import jax" 2>/dev/null && echo --jax) ${FILTER:+--filter "$FILTER"} -j "${MAX_JOBS:-16}" > "$LOG_DIR/build_python.log" 2>&1 \
        || { tail -30 "$LOG_DIR/build_python.log"; status=1; continue; }
      AITER_MHA_PY_BUILD_DIR=$PWD/build python3 -m pytest -q -p no:cacheprovider tests/gpu ${PYTEST_ARGS:-} 2>&1 | tee "$LOG_DIR/pytest_gpu.log" | tail -15
      [ "${PIPESTATUS[0]}" -eq 0 ] || status=1 ;;
    perf)
      note perf
      python3 benchmark/peer_compare.py --mode fwd --copy-bw --out-dir "$LOG_DIR" ${TAG:+--tag "$TAG"} ${PERF_ARGS:-} 2>&1 | tee "$LOG_DIR/perf.log" | tail -90 ;;
    bwd_perf)
      note bwd_perf
      python3 benchmark/peer_compare.py --mode bwd --out-dir "$LOG_DIR" ${TAG:+--tag "$TAG"} ${PERF_ARGS:-} 2>&1 | tee "$LOG_DIR/perf_bwd.log" | tail -90 ;;
    decode_perf)
      note decode_perf
      timeout "${PERF_LIMIT:-240}" python3 benchmark/peer_decode.py --out-dir "$LOG_DIR" ${PERF_ARGS:-} 2>&1 | tail -30 ;;
    quickperf)
      note quickperf
      python3 benchmark/peer_compare.py --mode fwd --quick --no-plot --out-dir "$LOG_DIR" ${PERF_ARGS:-} 2>&1 | tail -30 ;;
    *) echo "unknown step $step (see the header of $0)"; exit 2 ;;
  esac
done
exit $status
