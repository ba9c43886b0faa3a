#!/usr/bin/env python3
"""Render the instance table of codegen/instances.py into build files.

Generates into --output-dir:
    <instance name>.cu   one explicit instantiation per selected instance
    <family>_table.cu    the dispatcher table of each family with a table (e.g. fwd_v2_table.cu)
    manifest.json        the selection: instances with their fields, the files, preset, filter

Files are rewritten only when their content changes, so ninja rebuilds only what changed.
Files that an earlier run generated (per its manifest) and this run does not are removed.

    python3 codegen/generate.py --api fwd --list
    python3 codegen/generate.py --api fwd --preset ci --filter '*_mask' --output-dir build/gen

Also importable: `generate(...)` returns a `Generation` (compile.py and tests use it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

if __package__ in (None, ""):  # run as a script: make `instances` importable
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import instances as table  # type: ignore
else:
    from . import instances as table

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
MANIFEST = "manifest.json"


@dataclass
class Library:
    """What one shared library (libmha_fwd.so, libmha_bwd.so) gets from codegen."""

    name: str                                            # "mha_fwd"
    apis: List[str] = field(default_factory=list)        # requested apis linked into it
    instances: List[object] = field(default_factory=list)  # selected instances
    instance_files: Dict[str, Path] = field(default_factory=dict)  # name -> .cu
    table_files: List[Path] = field(default_factory=list)
    catalog_size: int = 0                                # instances of its requested families before --filter

    @property
    def sources(self) -> List[Path]:
        return list(self.instance_files.values()) + self.table_files


@dataclass
class Generation:
    output_dir: Path
    apis: List[str]
    preset: str
    filters: List[str]
    libraries: Dict[str, Library]
    apis_without_instances: List[str]   # requested apis whose families have no instances yet
    files: List[Path]                   # every generated file, manifest included
    written: List[Path]                 # files whose content changed in this run
    removed: List[Path]                 # stale files of an earlier run

    @property
    def instances(self) -> List[object]:
        return [i for lib in self.libraries.values() for i in lib.instances]

    @property
    def names(self) -> List[str]:
        return [i.name for i in self.instances]


def write_if_changed(path: Path, content: str) -> bool:
    """Writes `content` unless `path` already holds exactly that. Returns True when written."""
    path = Path(path)
    try:
        if path.read_text() == content:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)
    return True


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def plan(apis: Sequence[str] = ("fwd",), preset: str = "default", filters: Sequence[str] = ()):
    """Selection without writing: (libraries, apis_without_instances)."""
    apis = table.parse_list(apis) or ["fwd"]
    filters = table.parse_list(filters)
    if preset not in table.PRESETS:
        raise ValueError(f"--preset: expected one of {', '.join(table.PRESETS)}, got {preset!r}")
    requested = table.families_for(apis)
    empty = [a for a in apis if not any(f.instances(preset) for f in requested if f.api == a)]
    libraries: Dict[str, Library] = {}
    for fam in requested:
        lib = libraries.setdefault(fam.library, Library(fam.library))
        if fam.api not in lib.apis:
            lib.apis.append(fam.api)
        lib.catalog_size += len(fam.instances(preset))
        lib.instances += table.select(fam, preset, filters)
    return apis, filters, libraries, empty


def generate(output_dir, apis: Sequence[str] = ("fwd",), preset: str = "default",
             filters: Sequence[str] = ()) -> Generation:
    out = Path(output_dir).resolve()
    apis, filters, libraries, empty = plan(apis, preset, filters)
    env = _env()
    contents: Dict[Path, str] = {}

    for lib in libraries.values():
        for inst in lib.instances:
            fam = next(f for f in table.FAMILIES if f.name == inst.family)
            path = out / inst.filename
            contents[path] = env.get_template("instance.cu.j2").render(inst=inst, fam=fam)
            lib.instance_files[inst.name] = path
        # Every table of the library is generated (empty when its family is not selected),
        # so the library's host code always links.
        for fam in table.FAMILIES:
            if fam.library != lib.name or not fam.tables:
                continue
            selected = [i for i in lib.instances if i.family == fam.name]
            path = out / fam.table_file
            contents[path] = env.get_template("table.cu.j2").render(
                fam=fam, instances=selected, preset=preset, filter=",".join(filters))
            lib.table_files.append(path)

    manifest = {
        "generator": "codegen/generate.py",
        "api": apis,
        "preset": preset,
        "filter": filters,
        "apis_without_instances": empty,
        "libraries": {
            lib.name: {
                "apis": lib.apis,
                "instances": [i.name for i in lib.instances],
                "sources": [p.name for p in lib.sources],
            }
            for lib in libraries.values()
        },
        "instances": [
            {
                "name": i.name,
                "api": i.api,
                "family": i.family,
                "library": lib.name,
                "fields": i.fields(),
                "cpp_key": i.cpp_key,
                "file": i.filename,
            }
            for lib in libraries.values()
            for i in lib.instances
        ],
        "files": sorted(p.name for p in contents),
    }
    contents[out / MANIFEST] = json.dumps(manifest, indent=2) + "\n"

    # Remove files an earlier run generated that this run does not.
    removed: List[Path] = []
    old = out / MANIFEST
    if old.exists():
        try:
            old_files = json.loads(old.read_text()).get("files", [])
        except (ValueError, AttributeError):
            old_files = []
        for name in old_files:
            p = out / Path(name).name
            if p not in contents and p.exists():
                p.unlink()
                removed.append(p)

    written = [p for p, text in contents.items() if write_if_changed(p, text)]
    return Generation(out, apis, preset, filters, libraries, empty, list(contents), written, removed)


def _no_instances_message(api: str) -> str:
    return f"no {api} instances yet"


def _filter_message(libs: Dict[str, Library], filters: Sequence[str], preset: str) -> Optional[str]:
    if not filters:
        return None
    for lib in libs.values():
        if lib.catalog_size and not lib.instances:
            return (f"--filter {','.join(filters)!r} matches no instance of --api {','.join(lib.apis)} "
                    f"(preset {preset!r}); see --list")
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", action="append", default=[],
                    help=f"repeatable or comma list of {', '.join(table.APIS)} (default fwd)")
    ap.add_argument("--list", action="store_true", help="print the selected instance names, one per line")
    ap.add_argument("--filter", action="append", default=[],
                    help="fnmatch pattern(s) on instance names, comma-separated or repeated")
    ap.add_argument("--preset", "--receipt", default="default", choices=table.PRESETS,
                    help="curated subset (default: the full set)")
    ap.add_argument("--output-dir", default=os.path.join("build", "gen"),
                    help="where to write the files (default ./build/gen)")
    args = ap.parse_args(argv)

    try:
        if args.list:
            apis, filters, libs, empty = plan(args.api, args.preset, args.filter)
        else:
            gen = generate(args.output_dir, args.api, args.preset, args.filter)
            apis, filters, libs, empty = gen.apis, gen.filters, gen.libraries, gen.apis_without_instances
    except ValueError as e:
        print(f"generate.py: error: {e}", file=sys.stderr)
        return 2

    for api in empty:
        print(f"generate.py: {_no_instances_message(api)}", file=sys.stderr)
    msg = _filter_message(libs, filters, args.preset)
    if msg:
        print(f"generate.py: warning: {msg}", file=sys.stderr)

    if args.list:
        for lib in libs.values():
            for inst in lib.instances:
                print(inst.name)
    else:
        n = sum(len(l.instances) for l in libs.values())
        print(f"generate.py: {n} instance(s), {len(gen.written)} file(s) written, "
              f"{len(gen.files) - len(gen.written)} unchanged, in {gen.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
