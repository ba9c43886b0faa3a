"""codegen/: the bwd_v2 family of the one instance table (--api bwd)."""

from __future__ import annotations

import json
import re
import sys

import pytest

from conftest import REPO, run

sys.path.insert(0, str(REPO))
from codegen import generate as gen  # noqa: E402
from codegen import instances as table  # noqa: E402

NAME_RE = re.compile(r"^fmha_bwd_v2_(fp16|bf16)_d(32|64|128|256)_(nomask|mask)(_det)?$")


def bwd_v2(preset="default"):
    return next(f for f in table.FAMILIES if f.name == "bwd_v2").instances(preset)


def test_default_set_is_dtype_x_hdim_x_mask_x_deterministic():
    names = [i.name for i in bwd_v2()]
    assert len(names) == 32 and len(set(names)) == 32
    assert all(NAME_RE.match(n) for n in names), names
    assert sum(n.endswith("_det") for n in names) == 16


def test_ci_preset_is_one_small_instance():
    assert [i.name for i in bwd_v2("ci")] == ["fmha_bwd_v2_fp16_d64_mask"]


def test_cpp_key_spells_the_struct():
    inst = table.BwdV2Instance("bf16", 128, "nomask", True)
    assert inst.name == "fmha_bwd_v2_bf16_d128_nomask_det"
    assert inst.cpp_key == "BwdV2Key{DType::bf16, 128, MaskKind::none, true}"
    assert inst.api == "bwd" and inst.family == "bwd_v2"


@pytest.mark.parametrize("bad", [("fp8", 64, "mask"), ("fp16", 96, "mask"), ("fp16", 64, "causal"),
                                 ("fp16", 64, "mask", 1)])
def test_invalid_fields_are_named(bad):
    with pytest.raises(ValueError, match=r"BwdV2Instance\.(dtype|hdim|mask|deterministic)"):
        table.BwdV2Instance(*bad)


def test_generate_writes_instances_table_and_manifest(tmp_path):
    g = gen.generate(tmp_path, apis=["bwd"], preset="ci")
    assert g.names == ["fmha_bwd_v2_fp16_d64_mask"]
    inst = (tmp_path / "fmha_bwd_v2_fp16_d64_mask.cu").read_text()
    assert '#include "kernels/bwd_v2/launch.cuh"' in inst
    assert "template cudaError_t launch_bwd_v2<BwdV2Key{DType::fp16, 64, MaskKind::window, false}>" in inst
    tbl = (tmp_path / "bwd_v2_table.cu").read_text()
    assert "kNumBwdV2Instances = 1" in tbl and '"fmha_bwd_v2_fp16_d64_mask"' in tbl
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["libraries"]["mha_bwd"]["instances"] == ["fmha_bwd_v2_fp16_d64_mask"]


def test_filter_selects_deterministic_instances():
    res = run([sys.executable, REPO / "codegen" / "generate.py", "--api", "bwd", "--list", "--filter", "*_d128_*_det"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["fmha_bwd_v2_fp16_d128_nomask_det", "fmha_bwd_v2_fp16_d128_mask_det",
                                  "fmha_bwd_v2_bf16_d128_nomask_det", "fmha_bwd_v2_bf16_d128_mask_det"]


def test_empty_selection_still_renders_a_linkable_table(tmp_path):
    gen.generate(tmp_path, apis=["fwd", "bwd"], preset="ci", filters=["fmha_fwd_*"])
    tbl = (tmp_path / "bwd_v2_table.cu").read_text()
    assert "kNumBwdV2Instances = 0" in tbl
