#!/usr/bin/env bash
# Random fuzz of the CLI (issue 30): $FUZZ_CASES (default 300) cases drawn from $FUZZ_SEED
# (default: the date, printed) over the four paths (forward v2, forward v3 = -fwd_v3=1,
# split-KV / paged decode, backward), each with a random dtype, batch/group mode, GQA ratio,
# head dims (multiples of 8 and not), lengths (0, 1, primes, tile multiples ± 1), layout,
# mask (causal top-left / bottom-right, windows), LSE, padding, soft-cap, determinism, a capped
# v3 grid and, for split-KV, splits / pages / cache index / planted out-of-range table entries.
# Every case is validated against the CPU reference with its outputs poisoned first (the
# benchmarks fill O, LSE, dQ/dK/dV with NaN patterns before the run), so unwritten or wrong
# elements fail. A case fails as in the other smoke scripts (smoke_lib.sh).
#
# usage: fuzz_cli.sh [-b path/to/benchmark_mha_fwd] [-f pattern] [-j N] [-q]
#   the backward cases run $BENCH_BWD (default: benchmark_mha_bwd next to the -b benchmark)
# Reproduce a failure: its command line is printed; rerun the same draw with FUZZ_SEED.
set -u -o pipefail

DEFAULT_BENCH=./build/benchmark_mha_fwd

cases() {
    local bwd="${BENCH_BWD:-$(dirname "$BENCH")/benchmark_mha_bwd}"
    FUZZ_SEED="${FUZZ_SEED:-$(date +%Y%m%d)}"
    echo "fuzz_cli.sh: FUZZ_SEED=$FUZZ_SEED FUZZ_CASES=${FUZZ_CASES:-300}" >&2
    python3 - "$BENCH" "$bwd" "$FUZZ_SEED" "${FUZZ_CASES:-300}" "$COMMON_ARGS" <<'PY'
import random, sys
fwd, bwd, seed, n, common = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
r = random.Random(seed)
LENS = [1, 2, 7, 16, 17, 63, 64, 65, 127, 128, 129, 191, 255, 256, 257, 331, 509]
def lens(b, zero_ok):
    pool = LENS + ([0] if zero_ok else [])
    return ",".join(str(r.choice(pool)) for _ in range(b))
def mask():
    return r.choice(["0", "0", "1", "2", f"t:{r.randint(1, 200)},{r.randint(0, 50)}",
                     f"b:{r.randint(1, 200)},{r.randint(0, 50)}", "b:-1,0"])
for i in range(n):
    path = r.choice(["v2", "v3", "v3", "splitkv", "bwd", "bwd"])
    prec = r.choice(["fp16", "bf16"])
    hk = r.randint(1, 3)
    h = hk * r.choice([1, 1, 2, 3])
    d = r.choice([32, 40, 59, 64, 72, 96, 111, 128, 128, 160, 192, 256])
    dv = r.choice([d, d, r.choice([8, 24, 64, 128, d])])
    dv = min(dv, 256)
    perm = r.randint(0, 1)
    a = [f"-prec={prec}", f"-h={h}", f"-h_k={hk}", f"-iperm={perm}", f"-operm={r.randint(0, 1)}"]
    if path == "splitkv":
        d, dv = r.choice([(64, 64), (128, 128), (96, 128), (256, 256), (64, 32)])
        b = r.randint(1, 3)
        a += [f"-b={b}", f"-d={d}", f"-d_v={dv}", f"-s={r.choice([1, 1, 2, 4, 7])}",
              f"-s_k={r.choice([1, 15, 16, 17, 300, 777, 1500])}", f"-mask={mask()}",
              f"-num_splits={r.choice([0, 1, 2, 3, 5])}", "-splitkv=1", f"-lse={r.randint(0, 1)}"]
        page = r.choice([0, 0, 16, 32, 64, 256])
        ci = r.randint(0, 1)
        a += [f"-page_block_size={page}", f"-cache_batch_idx={ci}"]
        if (page or ci) and r.random() < 0.3:
            a.append("-bad_cache_entries=1")
        if r.random() < 0.15:
            a.append("-logits_soft_cap=2")
        print(" ".join([fwd] + a + ["-kname=1", common]))
        continue
    mode = r.randint(0, 1)
    b = r.randint(1, 3)
    a += [f"-mode={mode}", f"-b={b}", f"-d={d}", f"-d_v={dv}", f"-mask={mask()}"]
    if mode == 1:
        a += [f"-s={lens(b, True)}", f"-s_k={lens(b, True)}"]
    else:
        a += [f"-s={r.choice(LENS)}", f"-s_k={r.choice(LENS)}"]
    if path == "bwd":
        a.append(f"-deterministic={r.randint(0, 1)}")
        print(" ".join([bwd] + a + ["-kname=1", common]))
        continue
    a.append(f"-lse={r.randint(0, 1)}")
    if r.random() < 0.15:
        a.append("-logits_soft_cap=2")
    if path == "v3":
        a.append("-fwd_v3=1")
        if r.random() < 0.3:
            a.append(f"-v3_max_ctas={r.randint(1, 3)}")
    print(" ".join([fwd] + a + ["-kname=1", common]))
PY
}

# shellcheck source=smoke_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/smoke_lib.sh"
smoke_main "$@"
