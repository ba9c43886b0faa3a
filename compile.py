#!/usr/bin/env python3
"""Build driver of aiter-mha for CUDA (torch-free, cpp_extension style).

    python3 compile.py [--api fwd,bwd] [--arch sm_80,sm_90a] [--preset default|ci]
                       [--filter PATTERNS] [--output-dir DIR] [-j N] [--bench] [--verbose]

Steps: codegen (codegen/generate.py) into <out>/gen/ -> <out>/build.ninja (one build line per
source, nvcc depfiles, absolute paths; rewritten only when it changes) -> ninja -> <out>/libmha_fwd.so
(and, with --bench, <out>/benchmark_mha_fwd linked to it with rpath $ORIGIN).

Environment: MAX_JOBS (default of -j), GPU_ARCHS (default of --arch, ',' or ';' separated),
CUTLASS_DIR (a CUTLASS checkout: its include/ is used), CUDA_HOME / CUDA_PATH (where nvcc is).
Output goes under the current directory by default (./build), like aiter's compile.py.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
from codegen import generate as codegen  # noqa: E402
from codegen import instances as table  # noqa: E402

VALID_ARCHS = ("sm_80", "sm_86", "sm_89", "sm_90", "sm_90a")
DEFAULT_ARCHS = ("sm_80", "sm_90a")
# No --api: everything that has kernels (fwd_v3 and bwd_v3 only when sm_90a is among the archs).
DEFAULT_APIS = ("fwd", "fwd_splitkv", "fwd_v3", "bwd", "bwd_v3")
# nvidia-smi compute_cap -> the arch we compile for (Hopper gets the arch-specific sm_90a).
COMPUTE_CAP_TO_ARCH = {"8.0": "sm_80", "8.6": "sm_86", "8.9": "sm_89", "9.0": "sm_90a"}
# Direction of each library: its host sources live in src/<dir>/, its benchmark is benchmark_mha_<dir>.
LIBRARY_DIR = {"mha_fwd": "fwd", "mha_bwd": "bwd"}
BASE_FLAGS = ["-std=c++20", "-O3", "--expt-relaxed-constexpr", "-DNDEBUG", "-Xcompiler=-fPIC"]
CUTLASS_PIP = "pip install nvidia-cutlass==4.2.0.0"


class BuildError(Exception):
    """A problem reported to the user as one message, exit status 2 (bad input) or 1."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------------
# Toolchain discovery
# ------------------------------------------------------------------------------------------


def find_nvcc() -> Path:
    for env in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(env)
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return Path(root) / "bin" / "nvcc"
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    if Path("/usr/local/cuda/bin/nvcc").is_file():
        return Path("/usr/local/cuda/bin/nvcc")
    raise BuildError("nvcc not found: put the CUDA toolkit's bin/ on PATH or set CUDA_HOME")


def cuda_include_dir(nvcc: Path) -> Path:
    """The toolkit's include dir. nvcc may be a wrapper script, so ask it for its TOP."""
    roots = [nvcc.resolve().parent.parent]
    try:
        dry = subprocess.run([str(nvcc), "-dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                             capture_output=True, text=True, timeout=60)
        m = re.search(r"^#\$ TOP=(.*)$", dry.stdout + dry.stderr, re.M)
        if m:
            roots.insert(0, Path(m.group(1).strip().strip('"')).resolve())
    except (OSError, subprocess.SubprocessError):
        pass
    roots += [Path(os.environ[e]) for e in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(e)]
    roots.append(Path("/usr/local/cuda"))
    for root in roots:
        for cand in (root / "include", root / "targets" / "x86_64-linux" / "include"):
            if (cand / "cuda_runtime_api.h").is_file():
                return cand.resolve()
    raise BuildError(f"cuda_runtime_api.h not found for {nvcc} (looked under {', '.join(map(str, roots))})")


def find_cutlass_include() -> Path:
    """CuTe headers: $CUTLASS_DIR/include, then 3rdparty/cutlass/include, then the pip package."""
    env = os.environ.get("CUTLASS_DIR")
    if env:
        inc = Path(env).resolve() / "include"
        if (inc / "cute" / "tensor.hpp").is_file():
            return inc
        raise BuildError(f"CUTLASS_DIR={env} has no include/cute/tensor.hpp; unset it or point it "
                         f"at a CUTLASS checkout (or: {CUTLASS_PIP})")
    inc = REPO / "3rdparty" / "cutlass" / "include"
    if (inc / "cute" / "tensor.hpp").is_file():
        return inc
    spec = importlib.util.find_spec("cutlass_library")
    if spec is not None and spec.origin:
        inc = Path(spec.origin).resolve().parent / "source" / "include"
        if (inc / "cute" / "tensor.hpp").is_file():
            return inc
    raise BuildError("CUTLASS/CuTe headers not found. Install them with:\n"
                     f"    {CUTLASS_PIP}\n"
                     "or set CUTLASS_DIR to a CUTLASS checkout, or place one at 3rdparty/cutlass "
                     "(see 3rdparty/README.md)")


def detect_archs() -> Optional[List[str]]:
    """Archs of the GPUs present (nvidia-smi), or None when there is no usable answer."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        res = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    archs: List[str] = []
    for cap in (l.strip() for l in res.stdout.splitlines() if l.strip()):
        arch = COMPUTE_CAP_TO_ARCH.get(cap)
        if arch is None:
            print(f"compile.py: GPU with compute capability {cap} has no matching arch in "
                  f"{', '.join(VALID_ARCHS)}; using the default {','.join(DEFAULT_ARCHS)}")
            return None
        if arch not in archs:
            archs.append(arch)
    return archs or None


def resolve_archs(arg: Optional[str]) -> List[str]:
    raw = arg if arg else os.environ.get("GPU_ARCHS", "")
    source = "--arch" if arg else "GPU_ARCHS"
    parts = [p.strip() for p in re.split(r"[,;\s]+", raw) if p.strip()]
    if not parts:
        found = detect_archs()
        if found:
            return found
        print(f"compile.py: no GPU found (nvidia-smi): building for {','.join(DEFAULT_ARCHS)}, every instance once per "
              f"arch; give --arch (e.g. --arch sm_90a) or GPU_ARCHS to build for one")
        return list(DEFAULT_ARCHS)
    archs: List[str] = []
    for p in parts:
        a = p.lower()
        if re.fullmatch(r"\d+a?", a):
            a = "sm_" + a
        if a not in VALID_ARCHS:
            raise BuildError(f"{source}: unsupported architecture {p!r}; valid: {', '.join(VALID_ARCHS)}")
        if a not in archs:
            archs.append(a)
    return archs


def gencode_flags(archs: Sequence[str]) -> List[str]:
    return [f"-gencode=arch=compute_{a[3:]},code={a}" for a in archs]


def jax_include_dir() -> str:
    """XLA's FFI headers, shipped with jaxlib (for --jax)."""
    try:
        import jax.ffi  # noqa: PLC0415
    except ImportError as e:
        raise BuildError(f"--jax needs jax (for XLA's FFI headers): pip install jax ({e})") from e
    return jax.ffi.include_dir()


def python_include_flags() -> List[str]:
    """-I flags of the running Python's headers and pybind11 (for --python)."""
    try:
        import pybind11  # noqa: PLC0415
    except ImportError:
        raise BuildError("--python needs pybind11: pip install pybind11")
    inc = sysconfig.get_paths().get("include")
    if not inc or not (Path(inc) / "Python.h").is_file():
        raise BuildError(f"--python needs the Python headers (Python.h not found in {inc}); install python3-dev")
    return ["-I", pybind11.get_include(), "-I", inc]


def default_jobs() -> int:
    env = os.environ.get("MAX_JOBS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise BuildError(f"MAX_JOBS: expected a positive integer, got {env!r}")
    return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------
# build.ninja, assembled from blocks
# ------------------------------------------------------------------------------------------


def _ninja_path(p: Path) -> str:
    return str(p).replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def _ninja_cmd(args: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in args).replace("$", "$$")


@dataclass
class Step:
    """One compile step: source -> object, with the label used in messages."""

    source: Path
    obj: Path
    label: str     # "instance fmha_fwd_v2_fp16_d64_mask" or "src/fwd/mha_fwd.cpp"
    flags_var: str  # "cuda_flags" or "bench_flags"


@dataclass
class Target:
    output: Path
    rule: str
    steps: List[Step]
    variables: Dict[str, str] = field(default_factory=dict)
    implicit: List[Path] = field(default_factory=list)


def obj_path(out: Path, src: Path, gen_dir: Path) -> Path:
    try:
        rel = Path("gen") / src.relative_to(gen_dir)
    except ValueError:
        rel = src.relative_to(REPO)
    return out / "obj" / (str(rel) + ".o")


def render_ninja(nvcc: Path, cuda_flags: List[str], bench_flags: List[str], targets: List[Target],
                 extra_flags: Optional[Dict[str, List[str]]] = None) -> str:
    blocks = [
        "# Generated by compile.py -- do not edit; re-run compile.py to regenerate.\n"
        "ninja_required_version = 1.3\n",
        f"nvcc = {_ninja_cmd([nvcc])}\n"
        f"cuda_flags = {_ninja_cmd(cuda_flags)}\n"
        f"bench_flags = {_ninja_cmd(bench_flags)}\n"
        + "".join(f"{name} = {_ninja_cmd(flags)}\n" for name, flags in (extra_flags or {}).items()),
        "rule cuda_compile\n"
        "  command = $nvcc -MD -MF $out.d $flags -c $in -o $out\n"
        "  depfile = $out.d\n"
        "  deps = gcc\n"
        "  description = CUDA $label\n",
        "rule shared_link\n"
        "  command = $nvcc -shared --cudart shared -Xlinker -soname,$soname -Xlinker --as-needed $in -o $out\n"
        "  description = LINK $out\n",
        # '$$ORIGIN' reaches ld as the literal $ORIGIN (nvcc does not re-run a shell).
        "rule exe_link\n"
        "  command = $nvcc --cudart shared -Xlinker --as-needed $in -o $out $libs -Xlinker -rpath,'$$ORIGIN'\n"
        "  description = LINK $out\n",
        # The Python extension: a shared object that finds libmha_*.so next to itself.
        "rule ext_link\n"
        "  command = $nvcc -shared --cudart shared -Xlinker --as-needed $in -o $out $libs -Xlinker -rpath,'$$ORIGIN'\n"
        "  description = LINK $out\n",
    ]
    emitted = set()  # an object shared by several targets (e.g. a benchmark helper) is built once
    for t in targets:
        lines = []
        for s in t.steps:
            if s.obj in emitted:
                continue
            emitted.add(s.obj)
            lines.append(f"build {_ninja_path(s.obj)}: cuda_compile {_ninja_path(s.source)}\n"
                         f"  flags = ${s.flags_var}\n"
                         f"  label = {s.label}\n")
        implicit = (" | " + " ".join(_ninja_path(p) for p in t.implicit)) if t.implicit else ""
        objs = " ".join(_ninja_path(s.obj) for s in t.steps)
        link = f"build {_ninja_path(t.output)}: {t.rule} {objs}{implicit}\n"
        link += "".join(f"  {k} = {v}\n" for k, v in t.variables.items())
        blocks.append("".join(lines) + link)
    blocks.append("default " + " ".join(_ninja_path(t.output) for t in targets) + "\n")
    return "\n".join(blocks)


def host_sources(libname: str) -> List[Path]:
    d = LIBRARY_DIR[libname]
    srcs: List[Path] = []
    for folder in (REPO / "src" / "common", REPO / "src" / d):
        srcs += sorted(folder.glob("*.cpp")) + sorted(folder.glob("*.cu"))
    return srcs


def bench_sources(libname: str) -> Optional[List[Path]]:
    """benchmark/benchmark_mha_<dir>.cpp + every .cu helper under benchmark/ (e.g.
    reference/gpu_reference.cu); helpers named for the other direction (bwd/fwd) are left out.
    .cpp files other than the main are not helpers (e.g. reference/ref_capi.cpp is a ctypes
    shim). None when the main file does not exist."""
    d = LIBRARY_DIR[libname]
    other = "bwd" if d == "fwd" else "fwd"
    main = REPO / "benchmark" / f"benchmark_mha_{d}.cpp"
    if not main.is_file():
        return None
    helpers = [p for p in sorted((REPO / "benchmark").rglob("*.cu")) if other not in p.name]
    return [main] + helpers


# ------------------------------------------------------------------------------------------
# ninja
# ------------------------------------------------------------------------------------------

_PROGRESS = re.compile(r"^\[\d+/\d+\] ")
# ptxas reports wgmma serialization ("(C7510)"..."(C7520) Potential Performance Loss: wgmma.mma_async
# instructions are serialized ...") as "info", not as a warning, and the build succeeds, yet such
# a kernel can run 40x slower (docs/PERF.md, v3 log step 39). The build collects these lines and
# repeats them at its end.
_SERIALIZED = re.compile(r"\((C75\d\d)\) Potential Performance Loss: (.*?)(?: in the function '([^']+)')?\s*$")


def serialized_wgmma(line: str) -> Optional[str]:
    """The kernel and reason of a ptxas wgmma-serialization message, or None for any other line."""
    m = _SERIALIZED.search(line)
    if not m:
        return None
    return f"{m.group(1)} {m.group(3) or '(function not named)'}: {m.group(2)}"


def run_ninja(out: Path, jobs: int, verbose: bool, labels: Dict[str, str], keep_going: bool = False,
              serialized: Optional[List[str]] = None) -> int:
    """Runs ninja, echoing its progress; returns its exit status. Failed steps are reported
    at the end with their label (instance name) and the compiler output. ptxas's wgmma
    serialization messages are appended to `serialized`."""
    ninja = shutil.which("ninja")
    if not ninja:
        raise BuildError("ninja not found: pip install ninja")
    cmd = [ninja, "-C", str(out), "-j", str(jobs)] + (["-v"] if verbose else []) + (["-k", "0"] if keep_going else [])
    env = dict(os.environ, NINJA_STATUS="[%f/%t] ")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env=env)
    failures: List[List[str]] = []
    in_failure = False
    assert proc.stdout is not None
    for line in proc.stdout:
        note = serialized_wgmma(line)
        if note is not None and serialized is not None:
            serialized.append(note)
        if line.startswith("FAILED: "):
            failures.append([line])
            in_failure = True
            continue
        if in_failure and (_PROGRESS.match(line) or line.startswith("ninja: ")):
            in_failure = False
        if in_failure:
            failures[-1].append(line)
        else:
            sys.stdout.write(line)
            sys.stdout.flush()
    rc = proc.wait()
    sys.stdout.flush()
    for block in failures:
        outputs = block[0][len("FAILED: "):].split()
        what = next((labels[o] for o in outputs if o in labels), " ".join(outputs))
        # block[1] is the command line; the compiler output follows.
        print(f"\ncompile.py: FAILED: {what}", file=sys.stderr)
        if len(block) > 1:
            print(f"command: {block[1].strip()}", file=sys.stderr)
        sys.stderr.write("".join(block[2:]))
    return rc


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", action="append", default=[],
                    help="fwd, bwd, fwd_v3, bwd_v3, fwd_splitkv (repeatable or comma list; "
                         "empty = fwd, fwd_splitkv, bwd, and fwd_v3 and bwd_v3 when sm_90a is built)")
    ap.add_argument("--arch", default=None,
                    help=f"comma list of {', '.join(VALID_ARCHS)} (default: $GPU_ARCHS, else the GPU "
                         f"present, else {','.join(DEFAULT_ARCHS)})")
    ap.add_argument("--filter", action="append", default=[],
                    help="fnmatch pattern(s) on instance names (comma list); see codegen/generate.py --list")
    ap.add_argument("--preset", "--receipt", default="default", choices=table.PRESETS,
                    help="curated instance subset (default: the full set)")
    ap.add_argument("--output-dir", default="build", help="build folder (default ./build)")
    ap.add_argument("-j", "--jobs", type=int, default=None, help="parallel jobs (default $MAX_JOBS or nproc)")
    ap.add_argument("--bench", action="store_true", help="also build benchmark_mha_fwd / benchmark_mha_bwd")
    ap.add_argument("--verbose", action="store_true", help="print every command (ninja -v)")
    ap.add_argument("--list", action="store_true",
                    help="print the instances the other options select, one per line, and exit (builds nothing)")
    ap.add_argument("-k", "--keep-going", action="store_true",
                    help="keep compiling after a failure and report every failed instance")
    ap.add_argument("--python", action="store_true",
                    help="also build the Python extension <out>/_C<ext> (python/src/module.cpp, pybind11; "
                         "linked to libmha_fwd.so and, when bwd is built, libmha_bwd.so; "
                         "import it through python/aiter_mha with AITER_MHA_LIB_DIR=<out>)")
    ap.add_argument("--jax", action="store_true",
                    help="also build <out>/libaiter_mha_jax.so, the XLA FFI handlers of aiter_mha.jax "
                         "(python/src/jax/jax_ffi.cpp; needs jax installed for its FFI headers)")
    ap.add_argument("--ptxas-verbose", action="store_true",
                    help="add -Xptxas=-v (registers/spills per kernel; changes the flags, so it rebuilds)")
    return ap.parse_args(argv)


def build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    explicit = table.parse_list(args.api)
    apis = explicit or list(DEFAULT_APIS)
    bad = [a for a in apis if a not in table.APIS]
    if bad:
        raise BuildError(f"--api: unknown {', '.join(map(repr, bad))}; expected one of {', '.join(table.APIS)}")
    with contextlib.redirect_stdout(sys.stderr if args.list else sys.stdout):  # --list: stdout holds names only
        archs = resolve_archs(args.arch)
    for v3 in ("fwd_v3", "bwd_v3"):
        if v3 in apis and "sm_90a" not in archs:
            if v3 in explicit:
                raise BuildError(f"--api {v3}: the v3 kernels are sm_90a (Hopper) code, but the archs are "
                                 f"{','.join(archs)}; add sm_90a to --arch")
            apis.remove(v3)
            print(f"compile.py: archs {','.join(archs)} have no sm_90a: building without the {v3} (Hopper) kernels",
                  file=sys.stderr if args.list else sys.stdout)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    if jobs < 1:
        raise BuildError(f"-j/--jobs: expected a positive integer, got {jobs}")
    if args.list:
        _, _, planned, _ = codegen.plan(apis, args.preset, args.filter)
        for lib in planned.values():
            for inst in lib.instances:
                print(inst.name)
        return 0
    nvcc = find_nvcc()
    cuda_inc = cuda_include_dir(nvcc)
    cutlass_inc = find_cutlass_include()
    out = Path(args.output_dir).resolve()
    gen_dir = out / "gen"

    # Check the selection before writing anything, so a bad --filter leaves gen/ untouched.
    _, filters, planned, _ = codegen.plan(apis, args.preset, args.filter)
    for lib in planned.values():
        if lib.catalog_size and not lib.instances:
            raise BuildError(f"--filter {','.join(filters)!r} matches no instance of --api "
                             f"{','.join(lib.apis)} (preset {args.preset!r}); list them with: "
                             f"python3 codegen/generate.py --api {','.join(lib.apis)} --preset {args.preset} --list")
    gen = codegen.generate(gen_dir, apis, args.preset, args.filter)
    libs = []
    for lib in gen.libraries.values():
        if lib.catalog_size == 0:
            print(f"compile.py: no {','.join(lib.apis)} instances yet: skipping lib{lib.name}.so")
            continue
        for api in lib.apis:
            if api in gen.apis_without_instances:
                print(f"compile.py: no {api} instances yet: lib{lib.name}.so is built without them")
        libs.append(lib)
    if not libs:
        print("compile.py: nothing to build")
        return 0

    cuda_flags = BASE_FLAGS + ["-I", str(REPO / "include"), "-I", str(REPO / "src"), "-I", str(cutlass_inc),
                               "-I", str(gen_dir), "-I", str(cuda_inc)] + gencode_flags(archs)
    if args.ptxas_verbose:
        cuda_flags.append("-Xptxas=-v")
    bench_flags = cuda_flags + ["-I", str(REPO / "benchmark")]

    targets: List[Target] = []
    labels: Dict[str, str] = {}
    inst_of_file = {p: name for lib in libs for name, p in lib.instance_files.items()}

    def steps_for(sources: Sequence[Path], flags_var: str) -> List[Step]:
        steps = []
        for src in sources:
            src = Path(src)
            if src in inst_of_file:
                label = f"instance {inst_of_file[src]}"
            elif src.parent == gen_dir:
                label = f"generated {src.name}"
            else:
                label = str(src.relative_to(REPO))
            steps.append(Step(src, obj_path(out, src, gen_dir), label, flags_var))
            labels[str(steps[-1].obj)] = f"{label} ({src})"
        return steps

    products: List[Path] = []

    def add_linked(output: Path, rule: str, steps: List[Step], libnames: Sequence[str]) -> None:
        """A program or shared object linked against lib<name>.so of this build (rpath $ORIGIN)."""
        linked = " ".join(f"-l{name}" for name in libnames)
        targets.append(Target(output, rule, steps, {"libs": f"-L{shlex.quote(str(out))} {linked}".replace("$", "$$")},
                              [out / f"lib{name}.so" for name in libnames]))
        labels[str(output)] = f"link of {output.name}"
        products.append(output)

    for lib in libs:
        host = host_sources(lib.name)
        if not host:
            print(f"compile.py: warning: no host sources in src/{LIBRARY_DIR[lib.name]}/ for lib{lib.name}.so")
        so = out / f"lib{lib.name}.so"
        # Instances first: they are the long poles, so ninja starts them first.
        targets.append(Target(so, "shared_link", steps_for(lib.sources + host, "cuda_flags"),
                              {"soname": so.name}))
        labels[str(so)] = f"link of {so.name}"
        products.append(so)
    if args.bench:
        for libname in gen.libraries:
            name = f"benchmark_mha_{LIBRARY_DIR[libname]}"
            srcs = bench_sources(libname)
            if srcs is None:
                print(f"compile.py: skipping {name}: benchmark/{name}.cpp does not exist yet")
                continue
            if libname not in [l.name for l in libs]:
                print(f"compile.py: skipping {name}: lib{libname}.so is not built")
                continue
            add_linked(out / name, "exe_link", steps_for(srcs, "bench_flags"), [libname])

    extra_flags: Dict[str, List[str]] = {}
    built = [l.name for l in libs]
    if args.python:
        if "mha_fwd" not in built:
            raise BuildError("--python needs libmha_fwd.so: add fwd to --api")
        # The backward bindings are compiled in (AITER_MHA_WITH_BWD) when libmha_bwd.so is built too;
        # without it the extension has the forward only (aiter_mha.mha_bwd then says so).
        linked_libs = [name for name in built if name in ("mha_fwd", "mha_bwd")]
        py_flags = cuda_flags + ["-I", str(REPO / "python" / "src")] + python_include_flags()
        if "mha_bwd" in linked_libs:
            py_flags.append("-DAITER_MHA_WITH_BWD")
        else:
            print("compile.py: libmha_bwd.so is not built: the Python extension gets the forward only")
        extra_flags["py_flags"] = py_flags
        add_linked(out / f"_C{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}", "ext_link",
                   steps_for(sorted((REPO / "python" / "src").glob("*.cpp")), "py_flags"), linked_libs)
    if args.jax:
        if "mha_fwd" not in built or "mha_bwd" not in built:
            raise BuildError("--jax needs libmha_fwd.so and libmha_bwd.so: add fwd and bwd to --api")
        extra_flags["jax_flags"] = cuda_flags + ["-isystem", jax_include_dir()]
        add_linked(out / "libaiter_mha_jax.so", "ext_link",
                   steps_for([REPO / "python" / "src" / "jax" / "jax_ffi.cpp"], "jax_flags"), ["mha_fwd", "mha_bwd"])

    out.mkdir(parents=True, exist_ok=True)
    ninja_text = render_ninja(nvcc, cuda_flags, bench_flags, targets, extra_flags)
    if codegen.write_if_changed(out / "build.ninja", ninja_text):
        print(f"compile.py: wrote {out / 'build.ninja'}")
    # A clean build costs about kCpuSecondsPerInstance of one core per instance and arch (the
    # default sm_90a set: 78.8 CPU minutes for 106 instances, docs/PERF.md).
    kCpuSecondsPerInstance = 45
    est_min = len(gen.instances) * len(archs) * kCpuSecondsPerInstance / min(jobs, max(len(gen.instances), 1)) / 60
    print(f"compile.py: archs {','.join(archs)}; {len(gen.instances)} instance(s); -j {jobs}; "
          f"CuTe from {cutlass_inc}; a clean build takes roughly {max(est_min, 0.1):.1f} min at -j {jobs} "
          f"(about {kCpuSecondsPerInstance} s of one core per instance and arch; an incremental one, less)")

    serialized: List[str] = []
    rc = run_ninja(out, jobs, args.verbose, labels, args.keep_going, serialized)
    wall = time.monotonic() - t0
    if rc != 0:
        print(f"\ncompile.py: build FAILED after {wall:.1f} s (failed steps are listed above; "
              f"-k reports every failure, --verbose prints every command)", file=sys.stderr)
        return 1
    for p in products:
        size = p.stat().st_size
        print(f"compile.py: {p} ({size / 2**20:.2f} MiB, {size} bytes)")
    print(f"compile.py: build wall time {wall:.2f} s")
    if serialized:
        print(f"compile.py: WARNING: ptxas serialized the wgmma instructions of {len(serialized)} kernel(s); "
              f"they run correctly but many times slower (see docs/PERF.md, v3 log step 39):", file=sys.stderr)
        for note in serialized:
            print(f"  {note}", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # keep progress and errors in order when piped
        sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    try:
        return build(args)
    except BuildError as e:
        print(f"compile.py: error: {e}", file=sys.stderr)
        return e.status
    except ValueError as e:  # codegen validation (e.g. --preset)
        print(f"compile.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
