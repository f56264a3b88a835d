#!/usr/bin/env python3
"""Haiku: the generated port against Haiku's own hand port, measured from both trees in one run.

The hand port is read from the haiku/haiku mirror: its import of DragonFly's NVMM (8b7bc49ce0, the
reference upstream) against the revision the Haiku target builds against (the [sysroot] commit).
The generated port is read from shim/haiku/ (what a porter writes) and the rendered tree
build/haiku/ (run `gen.py build --target haiku` first).  Prints the README's comparison table and
the ratios; asserts nothing.

Rows:
  upstream files edited     hand: upstream files (driver, libnvmm, tests) modified since the
                            import; generated: files of the rendered tree that differ from upstream
                            outside variation-point arms (0 when every difference is an arm)
  hand-written glue lines   hand: the driver's own sources the import did not have (C/C++ and
                            headers, not the Jamfile, not include/); generated: shim/haiku's glue,
                            bridge and variation-point files, and the spec itself
  copied BSD header lines   hand: the driver's include/ (machine/*.h copied from BSD); generated:
                            none copied, the compat headers are generated with only the names used
  kernel lines              hand: src/system/kernel/arch/x86/paging/nested/ (EPT/RVI translation
                            maps, paging method, TLB flushing); generated: none (the nested pmap
                            is shim/common/npt, shared with the Linux target)
  backends                  the backends each one compiles

    python bench/bench_haiku_port.py [--mirror DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMPORT = "8b7bc49ce0"          # Haiku's pristine import of DragonFly's NVMM (upstream dragonfly-2024)
DRIVER = "src/add-ons/kernel/drivers/nvmm"
UPSTREAM_DIRS = (DRIVER, "src/libs/nvmm", "headers/libs/nvmm", "src/tests/add-ons/kernel/drivers/nvmm")
NESTED = "src/system/kernel/arch/x86/paging/nested"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          errors="replace").stdout


def lines_at(repo: Path, rev: str, paths: list[str]) -> int:
    return sum(git(repo, "show", f"{rev}:{p}").count("\n") for p in paths)


def hand_port(repo: Path, rev: str) -> dict[str, str]:
    edited = [ln.split("\t", 1)[1] for ln in git(repo, "diff", "--diff-filter=M", "--name-status", IMPORT, rev,
                                                 "--", *UPSTREAM_DIRS).splitlines()
              if not ln.endswith("/Jamfile")]
    added = [p for p in git(repo, "diff", "--diff-filter=A", "--name-only", IMPORT, rev, "--", DRIVER).split()
             if not p.endswith("Jamfile") and "/include/" not in p]
    include = git(repo, "ls-tree", "-r", "--name-only", rev, f"{DRIVER}/include").split()
    nested = git(repo, "ls-tree", "-r", "--name-only", rev, NESTED).split()
    return {"upstream files edited": f"{len(edited)}",
            "hand-written glue lines": f"{lines_at(repo, rev, added):,} ({len(added)} files)",
            "copied BSD header lines": f"{lines_at(repo, rev, include):,} ({len(include)} files)",
            "kernel lines": f"{lines_at(repo, rev, nested):,} ({len(nested)} files in paging/nested/)",
            "backends": "VMX, SVM"}


def generated_port(tree: Path) -> dict[str, str]:
    spec_dir = ROOT / "shim" / "haiku"
    spec = tomllib.loads((spec_dir / "target.toml").read_text())
    glue = spec.get("glue", {})
    files = [*glue.get("files", []), *glue.get("headers", []), *glue.get("bridge", [])]
    files += sorted({vp["file"] for vp in spec.get("variation_points", {}).values() if "file" in vp})
    glue_lines = sum((spec_dir / f).read_text().count("\n") for f in files)
    toml_lines = (spec_dir / "target.toml").read_text().count("\n")
    npt = [p for p in (ROOT / "shim" / "common" / "npt").glob("nvmm_npt.[ch]")]
    npt_lines = sum(p.read_text().count("\n") for p in npt)
    compat = [p for p in tree.glob("compat*/**/*.h")]
    compat_lines = sum(p.read_text().count("\n") for p in compat)
    prov = (tree / "PROVENANCE").read_text() if (tree / "PROVENANCE").is_file() else ""
    filled = sum(1 for ln in prov.splitlines() if "variation point(s) filled" in ln)
    return {"upstream files edited": f"0 ({filled} files carry variation-point arms; tests/test_haiku.py checks "
                                     "every other line is upstream's)",
            "hand-written glue lines": f"{glue_lines:,} ({len(files)} files) + the spec, target.toml, "
                                       f"{toml_lines} lines",
            "copied BSD header lines": f"0 ({compat_lines:,} generated lines in {len(compat)} compat headers, "
                                       "only the names used)",
            "kernel lines": f"0 (nested paging: shim/common/npt, {npt_lines:,} lines shared with the Linux target)",
            "backends": "VMX, SVM"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default="/work/.mirror/haiku+haiku/repo")
    args = ap.parse_args()
    repo = Path(args.mirror)
    tree = ROOT / "build" / "haiku"
    if not repo.is_dir() or not (tree / "Jamfile").is_file():
        print(f"needs the mirror {repo} and build/haiku/ (run `python gen.py build --target haiku`)")
        return 1
    rev = tomllib.loads((ROOT / "shim" / "haiku" / "target.toml").read_text())["sysroot"]["ref"]
    hand, gen = hand_port(repo, rev), generated_port(tree)
    print(f"| Haiku at {rev[:10]} | hand port (haiku/haiku) | generated (nvmm-port) |")
    print("|---|---|---|")
    for row in hand:
        print(f"| {row} | {hand[row]} | {gen[row]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
