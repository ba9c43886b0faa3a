"""codegen/: the one instance table, its CLI and the generated files."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest

from conftest import REPO, run

sys.path.insert(0, str(REPO))
from codegen import generate as gen  # noqa: E402
from codegen import instances as table  # noqa: E402

GENERATE_PY = REPO / "codegen" / "generate.py"
NAME_RE = re.compile(r"^fmha_fwd_v2_(fp16|bf16)_d(32|64|128|256)_(nomask|mask)(_unaligned)?$")
CI_NAMES = ["fmha_fwd_v2_fp16_d64_nomask", "fmha_fwd_v2_fp16_d64_mask", "fmha_fwd_v2_fp16_d64_nomask_unaligned"]


def generate_cli(*args, cwd=None):
    return run([sys.executable, GENERATE_PY, *args], cwd=cwd)


def fwd_v2(preset="default"):
    fam = next(f for f in table.FAMILIES if f.name == "fwd_v2")
    return fam.instances(preset)


# --- the table ---------------------------------------------------------------------------


def test_default_set_has_32_unique_names():
    names = [i.name for i in fwd_v2()]
    assert len(names) == 32
    assert len(set(names)) == 32
    assert all(NAME_RE.match(n) for n in names), names
    # dtype x hdim bucket x mask, each once aligned and once unaligned
    assert sum(n.endswith("_unaligned") for n in names) == 16


def test_aligned_preset_is_the_aligned_half():
    names = [i.name for i in fwd_v2("aligned")]
    assert len(names) == 16 and not any(n.endswith("_unaligned") for n in names)
    assert set(names) <= set(i.name for i in fwd_v2())


def test_name_and_cpp_key():
    inst = table.FwdV2Instance("fp16", 128, "mask")
    assert inst.name == "fmha_fwd_v2_fp16_d128_mask"
    assert inst.cpp_key == "FwdV2Key{DType::fp16, 128, MaskKind::window, true}"
    inst = table.FwdV2Instance("bf16", 32, "nomask")
    assert inst.name == "fmha_fwd_v2_bf16_d32_nomask"
    assert inst.cpp_key == "FwdV2Key{DType::bf16, 32, MaskKind::none, true}"
    assert inst.fields() == {"dtype": "bf16", "hdim": 32, "mask": "nomask", "aligned": True}
    inst = table.FwdV2Instance("bf16", 256, "mask", aligned=False)
    assert inst.name == "fmha_fwd_v2_bf16_d256_mask_unaligned"
    assert inst.cpp_key == "FwdV2Key{DType::bf16, 256, MaskKind::window, false}"


@pytest.mark.parametrize("bad", [("fp8", 64, "mask"), ("fp16", 96, "mask"), ("fp16", 64, "causal"),
                                 ("fp16", 64, "mask", "yes")])
def test_invalid_instance_fields_are_named(bad):
    with pytest.raises(ValueError, match=r"FwdV2Instance\.(dtype|hdim|mask|aligned)"):
        table.FwdV2Instance(*bad)


def test_ci_preset():
    assert [i.name for i in fwd_v2("ci")] == CI_NAMES


def test_every_ci_instance_is_in_the_default_set():
    assert set(i.name for i in fwd_v2("ci")) <= set(i.name for i in fwd_v2())


# --- the CLI -----------------------------------------------------------------------------


def test_list_prints_the_default_names():
    res = generate_cli("--api", "fwd", "--list")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [i.name for i in fwd_v2()]


def test_list_ci_preset():
    res = generate_cli("--list", "--preset", "ci")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == CI_NAMES


def test_filter_fnmatch_and_comma_list():
    res = generate_cli("--list", "--filter", "*bf16_d128*")
    assert res.stdout.split() == ["fmha_fwd_v2_bf16_d128_nomask", "fmha_fwd_v2_bf16_d128_mask",
                                  "fmha_fwd_v2_bf16_d128_nomask_unaligned", "fmha_fwd_v2_bf16_d128_mask_unaligned"]
    res = generate_cli("--list", "--filter", "*_d32_mask,fmha_fwd_v2_bf16_d256_nomask")
    assert res.stdout.split() == ["fmha_fwd_v2_fp16_d32_mask", "fmha_fwd_v2_bf16_d32_mask",
                                  "fmha_fwd_v2_bf16_d256_nomask"]
    res = generate_cli("--list", "--filter", "*_mask", "--filter", "*fp16_d64*")
    names = res.stdout.split()
    assert len(names) == 8 + 3 and "fmha_fwd_v2_fp16_d64_nomask" in names


def test_filter_combines_with_preset():
    res = generate_cli("--list", "--preset", "ci", "--filter", "*_mask")
    assert res.stdout.split() == ["fmha_fwd_v2_fp16_d64_mask"]


def test_filter_matching_nothing_warns():
    res = generate_cli("--list", "--filter", "no_such_instance*")
    assert res.returncode == 0
    assert res.stdout == ""
    assert "matches no instance" in res.stderr


@pytest.mark.parametrize("api", ["bwd_v3"])
def test_apis_without_instances_say_so(api, tmp_path):
    """bwd_v3 has no instance in the ci preset."""
    res = generate_cli("--api", api, "--preset", "ci", "--list")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert f"no {api} instances yet" in res.stderr
    res = generate_cli("--api", api, "--preset", "ci", "--output-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"no {api} instances yet" in res.stderr


def test_bwd_v3_instances():
    """The v3 backward: 2 dtypes x buckets 64, 128 x 2 masks, names and C++ keys."""
    res = generate_cli("--api", "bwd_v3", "--list")
    assert res.returncode == 0, res.stderr
    names = res.stdout.split()
    assert len(names) == 8 and len(set(names)) == 8
    assert "fmha_bwd_v3_bf16_d128_mask" in names and "fmha_bwd_v3_fp16_d64_nomask" in names
    inst = table.BwdV3Instance("bf16", 128, "mask")
    assert inst.cpp_key == "BwdV3Key{DType::bf16, 128, MaskKind::window}"
    with pytest.raises(ValueError, match="hdim"):
        table.BwdV3Instance("bf16", 256, "mask")


def test_fwd_v3_instances():
    """The v3 family: 2 dtypes x (4 (hdim_q, hdim_v) buckets x 2 masks + 4 short-sequence
    variants: d64 both masks, (192,128) and d256 masked), names and C++ keys."""
    res = generate_cli("--api", "fwd_v3", "--list")
    assert res.returncode == 0, res.stderr
    names = res.stdout.split()
    assert len(names) == 24 and len(set(names)) == 24
    assert "fmha_fwd_v3_bf16_d192x128_mask" in names and "fmha_fwd_v3_fp16_d256_nomask" in names
    short = sorted(n for n in names if "_short_" in n)
    assert short == sorted(f"fmha_fwd_v3_{dt}_{hd}_short_{mk}" for dt in ("fp16", "bf16")
                           for hd, mk in (("d64", "nomask"), ("d64", "mask"), ("d192x128", "mask"), ("d256", "mask")))
    inst = table.FwdV3Instance("bf16", 192, 128, "mask")
    assert inst.cpp_key == "FwdV3Key{DType::bf16, 192, 128, MaskKind::window}"
    assert table.FwdV3Instance("fp16", 64, 64, "nomask", True).cpp_key == \
        "FwdV3Key{DType::fp16, 64, 64, MaskKind::none, true}"
    with pytest.raises(ValueError, match="hdim_q, hdim_v"):
        table.FwdV3Instance("bf16", 128, 64, "mask")
    with pytest.raises(ValueError, match="short_seq"):
        table.FwdV3Instance("bf16", 128, 128, "mask", True)
    with pytest.raises(ValueError, match="short_seq"):
        table.FwdV3Instance("bf16", 256, 256, "nomask", True)
    res = generate_cli("--api", "fwd_v3", "--list", "--preset", "ci")
    assert res.stdout.split() == ["fmha_fwd_v3_fp16_d64_mask"]


def test_fwd_v3_short_variants_have_their_own_tile(tmp_path):
    """Which buckets have a short-sequence variant is written once, in FWD_V3_SHORT (the host
    takes a variant only where the table has one); every variant listed there must be a
    different kernel from its bucket's default: another tile, or dynamic tiles."""
    src = tmp_path / "short_tile.cpp"
    src.write_text('#include <cstdio>\n#include "kernels/fwd_v3/tile.h"\nint main() {\n' + "".join(
        f'    {{ constexpr auto d = aiter::fwd::fwd_v3_tile({hq}, {hv}), s = aiter::fwd::fwd_v3_tile({hq}, {hv}, true);\n'
        f'      std::printf("{hq} {hv} %d\\n", int(d.block_m != s.block_m || d.block_n != s.block_n || '
        f'd.stages != s.stages || d.dynamic_tiles != s.dynamic_tiles)); }}\n'
        for hq, hv in table.FWD_V3_HDIMS) + "}\n")
    exe = tmp_path / "short_tile"
    res = run(["g++", "-std=c++20", "-I", REPO / "src", src, "-o", exe])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([exe])
    assert res.returncode == 0, res.stderr
    differs = {(int(hq), int(hv)) for hq, hv, d in (l.split() for l in res.stdout.splitlines()) if d == "1"}
    assert {bucket for bucket, _ in table.FWD_V3_SHORT} <= differs


def test_fwd_v3_table_rendered(tmp_path):
    res = generate_cli("--api", "fwd_v3", "--filter", "*bf16_d128*", "--output-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    table_src = (tmp_path / "fwd_v3_table.cu").read_text()
    assert "kNumFwdV3Instances = 2" in table_src
    assert "&launch_fwd_v3<FwdV3Key{DType::bf16, 128, 128, MaskKind::none}>" in table_src
    # the v2 table of the same library is generated too (empty), so the host code links
    assert "kNumFwdV2Instances = 0" in (tmp_path / "fwd_v2_table.cu").read_text()


def test_api_comma_list_and_unknown_api():
    res = generate_cli("--api", "fwd,bwd", "--list", "--preset", "ci")
    assert res.returncode == 0
    assert res.stdout.split() == CI_NAMES + ["fmha_bwd_v2_fp16_d64_mask"]
    assert "instances yet" not in res.stderr
    res = generate_cli("--api", "fwdd", "--list")
    assert res.returncode == 2
    assert "'fwdd'" in res.stderr and "fwd_splitkv" in res.stderr


# --- generated files ---------------------------------------------------------------------


def test_generated_files_and_manifest(tmp_path):
    res = generate_cli("--preset", "ci", "--filter", "*fp16*", "--output-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    # every table of libmha_fwd.so is generated (fwd_splitkv's and fwd_v3's empty here), so the host code links
    assert files == sorted([n + ".cu" for n in CI_NAMES] + ["fwd_v2_table.cu", "fwd_splitkv_table.cu", "fwd_v3_table.cu", "manifest.json"])
    unaligned = (tmp_path / "fmha_fwd_v2_fp16_d64_nomask_unaligned.cu").read_text()
    assert "FwdV2Key{DType::fp16, 64, MaskKind::none, false}" in unaligned

    inst = (tmp_path / "fmha_fwd_v2_fp16_d64_mask.cu").read_text()
    assert '#include "kernels/fwd_v2/launch.cuh"' in inst
    assert "namespace aiter::fwd {" in inst
    key = "FwdV2Key{DType::fp16, 64, MaskKind::window, true}"
    assert f"template cudaError_t launch_fwd_v2<{key}>(const FwdParams&, cudaStream_t);" in inst
    assert f"template KernelInfo fwd_v2_info<{key}>();" in inst

    tab = (tmp_path / "fwd_v2_table.cu").read_text()
    assert '#include "fwd/fwd_key.h"' in tab
    assert f'{{"fmha_fwd_v2_fp16_d64_mask", {key}, &launch_fwd_v2<{key}>, &fwd_v2_info<{key}>}}' in tab
    assert "const int kNumFwdV2Instances = 3;" in tab

    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["api"] == ["fwd"]
    assert m["preset"] == "ci"
    assert m["filter"] == ["*fp16*"]
    assert [i["name"] for i in m["instances"]] == CI_NAMES
    assert m["instances"][1]["fields"] == {"dtype": "fp16", "hdim": 64, "mask": "mask", "aligned": True}
    assert m["instances"][1]["cpp_key"] == key
    assert m["instances"][1]["file"] == "fmha_fwd_v2_fp16_d64_mask.cu"
    assert sorted(m["files"]) == sorted([n + ".cu" for n in CI_NAMES] + ["fwd_v2_table.cu", "fwd_splitkv_table.cu", "fwd_v3_table.cu"])
    assert m["libraries"]["mha_fwd"]["instances"] == CI_NAMES


def test_second_generation_changes_nothing(tmp_path):
    first = gen.generate(tmp_path, ["fwd"], "default")
    assert len(first.written) == 32 + 4  # instances, fwd_v2 + fwd_splitkv + fwd_v3 tables, manifest
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    second = gen.generate(tmp_path, ["fwd"], "default")
    assert second.written == [] and second.removed == []
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_narrower_selection_removes_stale_files(tmp_path):
    gen.generate(tmp_path, ["fwd"], "default")
    result = gen.generate(tmp_path, ["fwd"], "ci")
    assert len(result.removed) == 32 - 3
    assert sorted(p.name for p in tmp_path.glob("fmha_*.cu")) == sorted(n + ".cu" for n in CI_NAMES)


def test_empty_selection_table(tmp_path):
    res = generate_cli("--filter", "nothing_matches", "--output-dir", tmp_path)
    assert res.returncode == 0, res.stderr
    tab = (tmp_path / "fwd_v2_table.cu").read_text()
    assert "const int kNumFwdV2Instances = 0;" in tab
    assert not list(tmp_path.glob("fmha_*.cu"))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
@pytest.mark.parametrize("filt", ["nothing_matches", "*"])
def test_table_compiles(tmp_path, filt):
    """The table compiles on its own (it only needs fwd/fwd_key.h), also when empty."""
    gen.generate(tmp_path, ["fwd"], "ci", [filt])
    obj = tmp_path / "table.o"
    res = run(["nvcc", "-std=c++20", "-O3", "--expt-relaxed-constexpr", "-Xcompiler=-fPIC",
               "-I", REPO / "include", "-I", REPO / "src",
               "-gencode=arch=compute_90a,code=sm_90a", "-c", tmp_path / "fwd_v2_table.cu", "-o", obj])
    assert res.returncode == 0, res.stdout + res.stderr
    syms = run(["nm", "-C", obj]).stdout
    assert "aiter::fwd::kFwdV2Instances" in syms and "aiter::fwd::kNumFwdV2Instances" in syms
