"""The ONE instance table of aiter-mha for CUDA.

Every compiled kernel configuration is listed here, once. The instance `.cu` files, the
dispatcher tables and `manifest.json` are all derived from this table by `generate.py`;
nothing else in the project builds instance names.

Structure:
    Family   a kernel family (e.g. the CuTe mma.sync forward "fwd_v2") belonging to one API
             (`--api fwd`) and linked into one library (libmha_fwd.so). A family knows its
             instances and the templates that render them.
    Presets  ("receipts") curated subsets by name: `default` (the full set) and `ci`.

A family may have no instances in a preset (bwd_v3 in `ci`): asking for it then answers
"no <api> instances" instead of failing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

APIS = ("fwd", "fwd_splitkv", "bwd", "fwd_v3", "bwd_v3")
PRESETS = ("default", "aligned", "ci")
# default : every instance (any hdim <= 256, any stride)
# aligned : only the 16-byte-aligned instances (half the compile time and size; hdims and
#           strides must be multiples of 8 elements, or the API answers -1 with the reason)
# ci      : the smallest set that exercises every code path of the build and the host API

# --------------------------------------------------------------------------------------
# fwd_v2: CuTe mma.sync + cp.async forward kernels (sm_80+)
# --------------------------------------------------------------------------------------

FWD_V2_DTYPES = ("fp16", "bf16")
FWD_V2_HDIMS = (32, 64, 128, 256)
FWD_V2_MASKS = ("nomask", "mask")

_CPP_DTYPE = {"fp16": "DType::fp16", "bf16": "DType::bf16"}
_CPP_MASK = {"nomask": "MaskKind::none", "mask": "MaskKind::window"}


@dataclass(frozen=True)
class FwdV2Instance:
    """One v2 forward kernel: the fields of `aiter::fwd::FwdV2Key` (src/fwd/fwd_key.h)."""

    dtype: str  # 'fp16' | 'bf16'
    hdim: int   # head-dim bucket: 32 | 64 | 128 | 256
    mask: str   # 'nomask' (MaskKind::none) | 'mask' (MaskKind::window, mask types 1/2/3)
    aligned: bool = True  # True: 16-byte cp.async rows (hdims and strides multiples of 8);
                          # False: element-wise loads for any hdim/stride ("_unaligned" suffix)

    api = "fwd"
    family = "fwd_v2"
    entry = "FwdV2Instance"
    launch_fn = "launch_fwd_v2"
    info_fn = "fwd_v2_info"
    params = "FwdParams"

    def __post_init__(self) -> None:
        if self.dtype not in FWD_V2_DTYPES:
            raise ValueError(f"FwdV2Instance.dtype: expected one of {FWD_V2_DTYPES}, got {self.dtype!r}")
        if self.hdim not in FWD_V2_HDIMS:
            raise ValueError(f"FwdV2Instance.hdim: expected one of {FWD_V2_HDIMS}, got {self.hdim!r}")
        if self.mask not in FWD_V2_MASKS:
            raise ValueError(f"FwdV2Instance.mask: expected one of {FWD_V2_MASKS}, got {self.mask!r}")
        if not isinstance(self.aligned, bool):
            raise ValueError(f"FwdV2Instance.aligned: expected True or False, got {self.aligned!r}")

    @property
    def name(self) -> str:
        return f"fmha_fwd_v2_{self.dtype}_d{self.hdim}_{self.mask}" + ("" if self.aligned else "_unaligned")

    @property
    def description(self) -> str:
        loads = "aligned (16-byte loads)" if self.aligned else "unaligned (element-wise loads)"
        return f"dtype {self.dtype}, hdim bucket {self.hdim}, mask {self.mask}, {loads}"

    @property
    def cpp_key(self) -> str:
        """C++ expression of the template argument, valid inside namespace aiter::fwd."""
        aligned = "true" if self.aligned else "false"
        return f"FwdV2Key{{{_CPP_DTYPE[self.dtype]}, {self.hdim}, {_CPP_MASK[self.mask]}, {aligned}}}"

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _fwd_v2_all() -> List[FwdV2Instance]:
    return [FwdV2Instance(dt, hd, mk, al) for al in (True, False) for dt in FWD_V2_DTYPES for hd in FWD_V2_HDIMS
            for mk in FWD_V2_MASKS]


def _fwd_v2_aligned() -> List[FwdV2Instance]:
    return [i for i in _fwd_v2_all() if i.aligned]


def _fwd_v2_ci() -> List[FwdV2Instance]:
    return [FwdV2Instance("fp16", 64, "nomask"), FwdV2Instance("fp16", 64, "mask"),
            FwdV2Instance("fp16", 64, "nomask", aligned=False)]


# --------------------------------------------------------------------------------------
# fwd_splitkv: split-KV / paged-KV decode kernels (CuTe mma.sync, sm_80+) + combine kernels
# --------------------------------------------------------------------------------------

SPLITKV_DTYPES = ("fp16", "bf16")
SPLITKV_HDIMS = (64, 128, 256)
SPLITKV_MASKS = ("nomask", "mask")
SPLITKV_DEEP_HDIMS = (128,)  # buckets with a deep tile (its shape: splitkv_tile in src/kernels/fwd_splitkv/tile.h)


@dataclass(frozen=True)
class SplitkvInstance:
    """One split-KV kernel: the fields of `aiter::fwd::SplitkvKey` (src/fwd/splitkv_key.h).
    Always 16-byte-aligned loads (hdims multiples of 8; the API rejects others with a reason)."""

    dtype: str  # 'fp16' | 'bf16'
    hdim: int   # head-dim bucket: 64 | 128 | 256
    mask: str   # 'nomask' | 'mask' (mask types 1/2/3)
    deep: bool = False  # the bucket's deeper-pipeline tile (hdim 128 only; src/kernels/fwd_splitkv/tile.h)

    api = "fwd_splitkv"
    family = "fwd_splitkv"
    entry = "SplitkvInstance"
    launch_fn = "launch_fwd_splitkv"
    info_fn = "fwd_splitkv_info"
    params = "SplitkvParams"

    def __post_init__(self) -> None:
        if self.dtype not in SPLITKV_DTYPES:
            raise ValueError(f"SplitkvInstance.dtype: expected one of {SPLITKV_DTYPES}, got {self.dtype!r}")
        if self.hdim not in SPLITKV_HDIMS:
            raise ValueError(f"SplitkvInstance.hdim: expected one of {SPLITKV_HDIMS}, got {self.hdim!r}")
        if self.mask not in SPLITKV_MASKS:
            raise ValueError(f"SplitkvInstance.mask: expected one of {SPLITKV_MASKS}, got {self.mask!r}")
        if self.deep and self.hdim not in SPLITKV_DEEP_HDIMS:
            raise ValueError(f"SplitkvInstance.deep: only hdim buckets {SPLITKV_DEEP_HDIMS} have a deep tile, got hdim {self.hdim}")

    @property
    def name(self) -> str:
        return f"fmha_fwd_splitkv_{self.dtype}_d{self.hdim}_{self.mask}" + ("_deep" if self.deep else "")

    @property
    def description(self) -> str:
        return f"split-KV, dtype {self.dtype}, hdim bucket {self.hdim}, mask {self.mask}" + (", deep tile" if self.deep else "")

    @property
    def cpp_key(self) -> str:
        deep = ", true" if self.deep else ""
        return f"SplitkvKey{{{_CPP_DTYPE[self.dtype]}, {self.hdim}, {_CPP_MASK[self.mask]}{deep}}}"

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SplitkvCombineInstance:
    """The combine kernel of one output dtype (any hdim_v <= 256), used when num_splits > 1."""

    dtype: str

    api = "fwd_splitkv"
    family = "fwd_splitkv"
    entry = "SplitkvCombineInstance"
    launch_fn = "launch_fwd_splitkv_combine"
    info_fn = "fwd_splitkv_combine_info"
    params = "SplitkvParams"

    def __post_init__(self) -> None:
        if self.dtype not in SPLITKV_DTYPES:
            raise ValueError(f"SplitkvCombineInstance.dtype: expected one of {SPLITKV_DTYPES}, got {self.dtype!r}")

    @property
    def name(self) -> str:
        return f"fmha_fwd_splitkv_combine_{self.dtype}"

    @property
    def description(self) -> str:
        return f"split-KV combine kernel, output dtype {self.dtype}"

    @property
    def cpp_key(self) -> str:
        return _CPP_DTYPE[self.dtype]

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _splitkv_all() -> List[object]:
    return ([SplitkvInstance(dt, hd, mk) for dt in SPLITKV_DTYPES for hd in SPLITKV_HDIMS for mk in SPLITKV_MASKS]
            + [SplitkvInstance(dt, hd, mk, deep=True) for dt in SPLITKV_DTYPES for hd in SPLITKV_DEEP_HDIMS
               for mk in SPLITKV_MASKS]
            + [SplitkvCombineInstance(dt) for dt in SPLITKV_DTYPES])


def _splitkv_ci() -> List[object]:
    return [SplitkvInstance("fp16", 64, "nomask"), SplitkvCombineInstance("fp16")]


# --------------------------------------------------------------------------------------
# fwd_v3: Hopper-native forward kernels (sm_90a only): TMA + wgmma + warp specialization
# --------------------------------------------------------------------------------------

FWD_V3_DTYPES = FWD_V2_DTYPES
FWD_V3_HDIMS = ((64, 64), (128, 128), (192, 128), (256, 256))  # (hdim_q, hdim_v) buckets
FWD_V3_MASKS = FWD_V2_MASKS
# (bucket, mask) pairs that also have a variant for short query sequences, written here only
# (their tiles: fwd_v3_tile in src/kernels/fwd_v3/tile.h: d64 128-row tiles; (192,128) and d256
# masked, dynamic tiles); the host takes one where it is compiled and max_seqlen_q says it is
# faster (fwd_v3_prefer_short).
FWD_V3_SHORT = (((64, 64), "nomask"), ((64, 64), "mask"), ((192, 128), "mask"), ((256, 256), "mask"))


@dataclass(frozen=True)
class FwdV3Instance:
    """One v3 forward kernel: the fields of `aiter::fwd::FwdV3Key` (src/fwd/fwd_key.h).
    Compiled only for sm_90a; head dims and strides must be multiples of 8 (TMA)."""

    dtype: str   # 'fp16' | 'bf16'
    hdim_q: int  # (hdim_q, hdim_v): one of FWD_V3_HDIMS
    hdim_v: int
    mask: str    # 'nomask' | 'mask' (mask types 1/2/3)
    short_seq: bool = False  # the short-sequence variant (FWD_V3_SHORT pairs only)

    api = "fwd_v3"
    family = "fwd_v3"
    entry = "FwdV3Instance"
    launch_fn = "launch_fwd_v3"
    info_fn = "fwd_v3_info"
    params = "FwdParams"

    def __post_init__(self) -> None:
        if self.dtype not in FWD_V3_DTYPES:
            raise ValueError(f"FwdV3Instance.dtype: expected one of {FWD_V3_DTYPES}, got {self.dtype!r}")
        if (self.hdim_q, self.hdim_v) not in FWD_V3_HDIMS:
            raise ValueError(f"FwdV3Instance.(hdim_q, hdim_v): expected one of {FWD_V3_HDIMS}, "
                             f"got {(self.hdim_q, self.hdim_v)!r}")
        if self.mask not in FWD_V3_MASKS:
            raise ValueError(f"FwdV3Instance.mask: expected one of {FWD_V3_MASKS}, got {self.mask!r}")
        if self.short_seq and ((self.hdim_q, self.hdim_v), self.mask) not in FWD_V3_SHORT:
            raise ValueError(f"FwdV3Instance.short_seq: only the (bucket, mask) pairs {FWD_V3_SHORT} have a "
                             f"short-sequence variant, got {((self.hdim_q, self.hdim_v), self.mask)!r}")

    @property
    def name(self) -> str:
        hd = f"d{self.hdim_q}" if self.hdim_q == self.hdim_v else f"d{self.hdim_q}x{self.hdim_v}"
        return f"fmha_fwd_v3_{self.dtype}_{hd}{'_short' if self.short_seq else ''}_{self.mask}"

    @property
    def description(self) -> str:
        short = ", the short-sequence variant" if self.short_seq else ""
        return f"dtype {self.dtype}, (hdim_q, hdim_v) bucket ({self.hdim_q}, {self.hdim_v}), mask {self.mask}{short}; sm_90a only"

    @property
    def cpp_key(self) -> str:
        """C++ expression of the template argument, valid inside namespace aiter::fwd."""
        short = ", true" if self.short_seq else ""
        return f"FwdV3Key{{{_CPP_DTYPE[self.dtype]}, {self.hdim_q}, {self.hdim_v}, {_CPP_MASK[self.mask]}{short}}}"

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _fwd_v3_all() -> List[FwdV3Instance]:
    return [FwdV3Instance(dt, hq, hv, mk, short)
            for dt in FWD_V3_DTYPES for hq, hv in FWD_V3_HDIMS for short in (False, True) for mk in FWD_V3_MASKS
            if not short or ((hq, hv), mk) in FWD_V3_SHORT]


def _fwd_v3_ci() -> List[FwdV3Instance]:
    return [FwdV3Instance("fp16", 64, 64, "mask")]


# --------------------------------------------------------------------------------------
# bwd_v2: CuTe mma.sync + cp.async backward kernels (sm_80+)
# --------------------------------------------------------------------------------------

BWD_V2_DTYPES = FWD_V2_DTYPES
BWD_V2_HDIMS = FWD_V2_HDIMS
BWD_V2_MASKS = FWD_V2_MASKS


@dataclass(frozen=True)
class BwdV2Instance:
    """One v2 backward kernel: the fields of `aiter::bwd::BwdV2Key` (src/bwd/bwd_key.h).
    Only 16-byte-aligned rows (hdims and strides multiples of 8) for now."""

    dtype: str           # 'fp16' | 'bf16'
    hdim: int            # head-dim bucket: 32 | 64 | 128 | 256
    mask: str            # 'nomask' | 'mask' (mask types 1/2/3)
    deterministic: bool = False  # True: dQ by a separate kernel, no atomics ("_det" suffix)

    api = "bwd"
    family = "bwd_v2"
    entry = "BwdV2Instance"
    launch_fn = "launch_bwd_v2"
    info_fn = "bwd_v2_info"
    params = "BwdParams"

    def __post_init__(self) -> None:
        if self.dtype not in BWD_V2_DTYPES:
            raise ValueError(f"BwdV2Instance.dtype: expected one of {BWD_V2_DTYPES}, got {self.dtype!r}")
        if self.hdim not in BWD_V2_HDIMS:
            raise ValueError(f"BwdV2Instance.hdim: expected one of {BWD_V2_HDIMS}, got {self.hdim!r}")
        if self.mask not in BWD_V2_MASKS:
            raise ValueError(f"BwdV2Instance.mask: expected one of {BWD_V2_MASKS}, got {self.mask!r}")
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"BwdV2Instance.deterministic: expected True or False, got {self.deterministic!r}")

    @property
    def name(self) -> str:
        return f"fmha_bwd_v2_{self.dtype}_d{self.hdim}_{self.mask}" + ("_det" if self.deterministic else "")

    @property
    def description(self) -> str:
        dq = "deterministic (separate dQ kernel, no atomics)" if self.deterministic else "fp32 atomic dQ accumulation"
        return f"dtype {self.dtype}, hdim bucket {self.hdim}, mask {self.mask}, {dq}"

    @property
    def cpp_key(self) -> str:
        """C++ expression of the template argument, valid inside namespace aiter::bwd."""
        det = "true" if self.deterministic else "false"
        return f"BwdV2Key{{{_CPP_DTYPE[self.dtype]}, {self.hdim}, {_CPP_MASK[self.mask]}, {det}}}"

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _bwd_v2_all() -> List[BwdV2Instance]:
    return [BwdV2Instance(dt, hd, mk, det) for det in (False, True) for dt in BWD_V2_DTYPES
            for hd in BWD_V2_HDIMS for mk in BWD_V2_MASKS]


def _bwd_v2_ci() -> List[BwdV2Instance]:
    return [BwdV2Instance("fp16", 64, "mask")]


# --------------------------------------------------------------------------------------
# bwd_v3: Hopper-native backward kernels (sm_90a only): TMA + wgmma + warp specialization
# --------------------------------------------------------------------------------------

BWD_V3_DTYPES = FWD_V2_DTYPES
BWD_V3_HDIMS = (64, 128)
BWD_V3_MASKS = FWD_V2_MASKS


@dataclass(frozen=True)
class BwdV3Instance:
    """One v3 backward kernel: the fields of `aiter::bwd::BwdV3Key` (src/bwd/bwd_key.h).
    Compiled only for sm_90a; atomic dQ (deterministic calls run v2); head dims and strides
    multiples of 8 (TMA)."""

    dtype: str  # 'fp16' | 'bf16'
    hdim: int   # head-dim bucket: 64 | 128 (hdim_q, hdim_v <= hdim)
    mask: str   # 'nomask' | 'mask' (mask types 1/2/3)

    api = "bwd_v3"
    family = "bwd_v3"
    entry = "BwdV3Instance"
    launch_fn = "launch_bwd_v3"
    info_fn = "bwd_v3_info"
    params = "BwdParams"

    def __post_init__(self) -> None:
        if self.dtype not in BWD_V3_DTYPES:
            raise ValueError(f"BwdV3Instance.dtype: expected one of {BWD_V3_DTYPES}, got {self.dtype!r}")
        if self.hdim not in BWD_V3_HDIMS:
            raise ValueError(f"BwdV3Instance.hdim: expected one of {BWD_V3_HDIMS}, got {self.hdim!r}")
        if self.mask not in BWD_V3_MASKS:
            raise ValueError(f"BwdV3Instance.mask: expected one of {BWD_V3_MASKS}, got {self.mask!r}")

    @property
    def name(self) -> str:
        return f"fmha_bwd_v3_{self.dtype}_d{self.hdim}_{self.mask}"

    @property
    def description(self) -> str:
        return f"dtype {self.dtype}, hdim bucket {self.hdim}, mask {self.mask}, fp32 atomic dQ; sm_90a only"

    @property
    def cpp_key(self) -> str:
        """C++ expression of the template argument, valid inside namespace aiter::bwd."""
        return f"BwdV3Key{{{_CPP_DTYPE[self.dtype]}, {self.hdim}, {_CPP_MASK[self.mask]}}}"

    @property
    def filename(self) -> str:
        return f"{self.name}.cu"

    def fields(self) -> Dict[str, object]:
        return dataclasses.asdict(self)


def _bwd_v3_all() -> List[BwdV3Instance]:
    return [BwdV3Instance(dt, hd, mk) for dt in BWD_V3_DTYPES for hd in BWD_V3_HDIMS for mk in BWD_V3_MASKS]


# --------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One generated dispatcher table (C++ array of `entry`, see src/common/dispatch.h)."""

    entry: str     # entry type, e.g. "FwdV2Instance"; instances with this `entry` go in it
    array: str     # "kFwdV2Instances"
    count: str     # "kNumFwdV2Instances"
    sentinel: str  # the key of the null entry that keeps an empty array legal


@dataclass(frozen=True)
class Family:
    name: str                 # "fwd_v2"
    api: str                  # the --api value that selects it
    library: str              # the library it is linked into: "mha_fwd" -> libmha_fwd.so
    presets: Dict[str, Callable[[], List[object]]] = field(default_factory=dict)
    namespace: str = ""       # C++ namespace of its launch functions and tables
    launch_header: str = ""   # what an instance file includes (defines the launch templates)
    key_header: str = ""      # what the table file includes (declares the entry types)
    tables: Tuple[Table, ...] = ()
    table_file: Optional[str] = None  # generated name of the tables' file

    def instances(self, preset: str = "default") -> List[object]:
        if preset not in PRESETS:
            raise ValueError(f"preset: expected one of {PRESETS}, got {preset!r}")
        make = self.presets.get(preset)
        return make() if make else []


FAMILIES: List[Family] = [
    Family(
        name="fwd_v2",
        api="fwd",
        library="mha_fwd",
        presets={"default": _fwd_v2_all, "aligned": _fwd_v2_aligned, "ci": _fwd_v2_ci},
        namespace="aiter::fwd",
        launch_header="kernels/fwd_v2/launch.cuh",
        key_header="fwd/fwd_key.h",
        tables=(Table("FwdV2Instance", "kFwdV2Instances", "kNumFwdV2Instances",
                      "FwdV2Key{DType::fp16, 0, MaskKind::none, true}"),),
        table_file="fwd_v2_table.cu",
    ),
    # Room for the next families: add instances here and nowhere else.
    Family(
        name="fwd_splitkv",
        api="fwd_splitkv",
        library="mha_fwd",
        presets={"default": _splitkv_all, "aligned": _splitkv_all, "ci": _splitkv_ci},
        namespace="aiter::fwd",
        launch_header="kernels/fwd_splitkv/launch.cuh",
        key_header="fwd/splitkv_key.h",
        tables=(Table("SplitkvInstance", "kSplitkvInstances", "kNumSplitkvInstances",
                      "SplitkvKey{DType::fp16, 0, MaskKind::none}"),
                Table("SplitkvCombineInstance", "kSplitkvCombineInstances", "kNumSplitkvCombineInstances",
                      "DType::fp16")),
        table_file="fwd_splitkv_table.cu",
    ),
    Family(
        name="fwd_v3",
        api="fwd_v3",
        library="mha_fwd",
        presets={"default": _fwd_v3_all, "aligned": _fwd_v3_all, "ci": _fwd_v3_ci},
        namespace="aiter::fwd",
        launch_header="kernels/fwd_v3/launch.cuh",
        key_header="fwd/fwd_key.h",
        tables=(Table("FwdV3Instance", "kFwdV3Instances", "kNumFwdV3Instances",
                      "FwdV3Key{DType::fp16, 0, 0, MaskKind::none}"),),
        table_file="fwd_v3_table.cu",
    ),
    Family(
        name="bwd_v2",
        api="bwd",
        library="mha_bwd",
        presets={"default": _bwd_v2_all, "aligned": _bwd_v2_all, "ci": _bwd_v2_ci},
        namespace="aiter::bwd",
        launch_header="kernels/bwd_v2/launch.cuh",
        key_header="bwd/bwd_key.h",
        tables=(Table("BwdV2Instance", "kBwdV2Instances", "kNumBwdV2Instances",
                      "BwdV2Key{DType::fp16, 0, MaskKind::none, false}"),),
        table_file="bwd_v2_table.cu",
    ),
    Family(
        name="bwd_v3",
        api="bwd_v3",
        library="mha_bwd",
        presets={"default": _bwd_v3_all, "aligned": _bwd_v3_all},
        namespace="aiter::bwd",
        launch_header="kernels/bwd_v3/launch.cuh",
        key_header="bwd/bwd_key.h",
        tables=(Table("BwdV3Instance", "kBwdV3Instances", "kNumBwdV3Instances",
                      "BwdV3Key{DType::fp16, 0, MaskKind::none}"),),
        table_file="bwd_v3_table.cu",
    ),
]


def families_for(apis: Sequence[str]) -> List[Family]:
    """Families selected by --api values (validated), in table order."""
    bad = [a for a in apis if a not in APIS]
    if bad:
        raise ValueError(f"--api: unknown {', '.join(map(repr, bad))}; expected one of {', '.join(APIS)}")
    return [f for f in FAMILIES if f.api in apis]


def parse_list(values: Optional[Sequence[str]]) -> List[str]:
    """['a,b', 'c'] -> ['a', 'b', 'c'] (repeatable and comma-separated options)."""
    out: List[str] = []
    for v in values or []:
        out += [p.strip() for p in str(v).split(",") if p.strip()]
    return out


def matches(name: str, patterns: Sequence[str]) -> bool:
    """fnmatch of an instance name against any of `patterns` (empty: everything matches)."""
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def select(family: Family, preset: str = "default", filter_patterns: Sequence[str] = ()) -> List[object]:
    return [i for i in family.instances(preset) if matches(i.name, filter_patterns)]
