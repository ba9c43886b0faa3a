"""benchmark/sass_diff.py: kernel names survive namespace moves; the verdict levels."""

from __future__ import annotations

import importlib.util

from conftest import REPO

spec = importlib.util.spec_from_file_location("sass_diff", REPO / "benchmark" / "sass_diff.py")
sd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sd)


def test_kernel_key_drops_namespaces_and_parameters():
    # aiter::fwd::fwd_v2_kernel<(aiter::fwd::DType)0, 64, (aiter::fwd::MaskKind)1, true>(aiter::fwd::FwdParams)
    old = "_ZN5aiter3fwd13fwd_v2_kernelILNS0_5DTypeE0ELi64ELNS0_8MaskKindE1ELb1EEEvNS0_9FwdParamsE"
    # the same kernel once DType / MaskKind / the parameter type moved to namespace aiter
    new = "_ZN5aiter3fwd13fwd_v2_kernelILNS_5DTypeE0ELi64ELNS_8MaskKindE1ELb1EEEvNS_10AttnParamsE"
    assert sd.kernel_key(old) == sd.kernel_key(new) == "void fwd_v2_kernel<(DType)0, 64, (MaskKind)1, true>"


def test_masking_levels():
    a = ["LDC R1, c[0x0][0x210]", "FFMA R2, R3.reuse, R4, 0.5", "IADD3 R5, R5, 0x10, RZ"]
    b = ["LDC R1, c[0x0][0x218]", "FFMA R2, R3.reuse, R4, 0.5", "IADD3 R5, R5, 0x10, RZ"]
    c = ["IADD3 R7, R7, 0x20, RZ", "LDC R9, c[0x0][0x218]", "FFMA R2, R3, R8, 0.25"]
    assert a != b and sd.masked(a, 1) == sd.masked(b, 1)       # params-only
    assert sd.masked(a, 1) != sd.masked(c, 1) and sd.masked(a, 2) == sd.masked(c, 2)  # same-ops
