"""The ONE instance table of aiter-mha for CUDA.

Every compiled kernel configuration is listed here, once. The instance `.cu` files, the
dispatcher tables and `manifest.json` are all derived from this table by `generate.py`;
nothing else in the project builds instance names.

Structure:
    Family   a kernel family (e.g. the CuTe mma.sync forward "fwd_v2") belonging to one API
             (`--api fwd`) and linked into one library (libmha_fwd.so). A family knows its
             instances and the templates that render them.
    Presets  ("receipts") curated subsets by name: `default` (the full set) and `ci`.

Families with no instances yet (bwd, fwd_splitkv, fwd_v3, bwd_v3) are listed so that asking
for them answers "no <api> instances yet" instead of failing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

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
# Families
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str                 # "fwd_v2"
    api: str                  # the --api value that selects it
    library: str              # the library it is linked into: "mha_fwd" -> libmha_fwd.so
    presets: Dict[str, Callable[[], List[object]]] = field(default_factory=dict)
    instance_template: Optional[str] = None  # templates/<this>: one file per instance
    table_template: Optional[str] = None     # templates/<this>: the dispatcher table
    table_file: Optional[str] = None         # generated name of the table

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
        instance_template="fwd_v2_instance.cu.j2",
        table_template="fwd_v2_table.cu.j2",
        table_file="fwd_v2_table.cu",
    ),
    # Room for the next families: add instances (and templates) here and nowhere else.
    Family(name="fwd_splitkv", api="fwd_splitkv", library="mha_fwd"),
    Family(name="fwd_v3", api="fwd_v3", library="mha_fwd"),
    Family(name="bwd_v2", api="bwd", library="mha_bwd"),
    Family(name="bwd_v3", api="bwd_v3", library="mha_bwd"),
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
