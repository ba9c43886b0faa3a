#!/usr/bin/env bash
# Builds the libraries and the benchmark executables (a thin wrapper of compile.py --bench).
#
#   ./build_mha.sh [fwd|bwd|fwd_v3|bwd_v3|fwd_splitkv] [--filter PATTERNS] [--arch LIST] [...]
#
# No api argument = compile.py's default: fwd, fwd_splitkv, bwd, and fwd_v3 and bwd_v3 when
# sm_90a is built. Anything after the api is passed to compile.py
# (--filter, --arch, --preset, -j, --verbose ...). Output: ./build (or $BUILD_DIR):
#   build/libmha_fwd.so, build/benchmark_mha_fwd (rpath $ORIGIN), and the bwd pair once it exists.
# Environment passed through: MAX_JOBS, GPU_ARCHS, CUTLASS_DIR, CUDA_HOME; PYTHON picks the
# interpreter (default python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

api=""
if [[ $# -gt 0 && "$1" != -* ]]; then
    api="$1"
    shift
fi
case "$api" in
    "") ;;  # compile.py's default set
    fwd | bwd | fwd_v3 | bwd_v3 | fwd_splitkv) ;;
    *)
        echo "build_mha.sh: unknown api '$api'; expected one of fwd, bwd, fwd_v3, bwd_v3, fwd_splitkv" >&2
        echo "usage: $0 [fwd|bwd|fwd_v3|bwd_v3|fwd_splitkv] [--filter PATTERNS] [--arch LIST]" >&2
        exit 2
        ;;
esac

api_args=()
[[ -n "$api" ]] && api_args=(--api "$api")
exec "${PYTHON:-python3}" "$here/compile.py" "${api_args[@]}" --bench --output-dir "${BUILD_DIR:-build}" "$@"
