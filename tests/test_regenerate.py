"""The real regenerate run: Haiku's own port of NVMM (haiku/haiku 47136e7183) taken as an upstream
by the Linux target.  `gen.py drift` lists what breaks in shim/linux; the entries in
tests/fixtures/regenerate/ fill exactly that list; after `stamp` (the porter's review) the spec is
complete, generates, builds against the installed kernel headers, and (e2e) runs in the emulated
VT-x and AMD-V machines.  Skipped without the haiku/haiku mirror.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, haiku_project

from nvmm_port.cli import main

FORK = "47136e7183913db69a33700c4cce256adc0c3ccd"
BASE = "8b7bc49ce0"
OVERLAY = ROOT / "tests" / "fixtures" / "regenerate" / "linux-on-haiku-47136e7183.toml"


def merge(spec_dir: Path, overlay: Path) -> set[str]:
    """Merge the overlay's tables into spec_dir/target.toml (same id: replaced); the entries' keys."""
    text = (spec_dir / "target.toml").read_text()
    add = overlay.read_text()
    keys = set()
    for table in ("primitives", "variation_points"):
        for key in tomllib.loads(add).get(table, {}):
            header = f'[{table}."{key}"]' if table == "variation_points" else f"[{table}.{key}]"
            keys.add(header)
            at = text.find(header + "\n")
            if at >= 0:
                end = text.find("\n[", at + len(header))
                text = text[:at] + (text[end + 1:] if end >= 0 else "")
    (spec_dir / "target.toml").write_text(text.rstrip("\n") + "\n\n" + add)
    # the two fragments the overlay names: ours for dragonfly-2024, adapted to the fork's assembly
    vp = spec_dir / "vp"
    (vp / "asm_prologue_segments.S").write_text((vp / "asm_prologue.S").read_text()
                                                + "#include <machine/segments.h>\n")
    restore = (vp / "host_restore_tr.S").read_text()
    head = "\tpopq\t%rax\t\t\t\t;\\\n"
    assert head in restore
    (vp / "host_restore_tr_gdt.S").write_text(restore.replace(head, head + "\taddq\t$8,%rsp\t\t\t;\\\n", 1))
    return keys


def _project(tmp_path_factory) -> Path:
    proj = haiku_project(tmp_path_factory.mktemp("regen"), [("base", BASE), ("fork", FORK)])
    for part in ("linux", "common"):
        shutil.copytree(ROOT / "shim" / part, proj / "shim" / part)
    return proj


@pytest.fixture(scope="module")
def fork_project(tmp_path_factory) -> Path:
    return _project(tmp_path_factory)


def _have_kernel_build() -> bool:
    return bool(sorted(Path("/usr/src").glob("linux-headers-*-amd64"))) and shutil.which("make") is not None


@pytest.fixture(scope="module")
def built_fork(tmp_path_factory) -> Path:
    """The Linux target on the fork: overlay merged, stamped, built."""
    if not _have_kernel_build():
        pytest.skip("no Linux kernel headers to build against (gen.py setup --for build installs them)")
    proj = _project(tmp_path_factory)
    merge(proj / "shim" / "linux", OVERLAY)
    assert main(["--project", str(proj), "stamp", "--target", "linux", "--upstream", "fork"]) == 0
    assert main(["--project", str(proj), "build", "--target", "linux", "--upstream", "fork"]) == 0
    return proj


def _drift_json(proj: str, capsys) -> str:
    capsys.readouterr()
    assert main(["--project", proj, "drift", "--from", "base", "--to", "fork", "--target", "linux",
                 "--format", "json"]) == 1
    return str(capsys.readouterr().out)


def test_drift_lists_what_the_overlay_fills_and_the_spec_then_builds(fork_project: Path, capsys):
    proj = str(fork_project)
    listed = json.loads(_drift_json(proj, capsys))["targets"][0]
    ids = set()
    for line in listed["refused"] + listed["review"]:
        m = re.search(r"(\[(?:primitives|variation_points)[^\]]*\])", line) or \
            re.search(r"\(add (\[[^\]]+\])\)", line)
        if m:
            ids.add(m.group(1))
        m2 = re.search(r"^\S+: (\S.*?) \(.*\(add (\[.+\])\)$", line)
        if m2:
            ids.add(m2.group(2))
    added = merge(fork_project / "shim" / "linux", OVERLAY)
    missing = {x for x in ids if x not in added}
    # what drift lists and the overlay does not fill only needs the porter's review (stamp):
    # entries whose upstream text changed but whose fill still holds
    reviewed = {"[primitives.os_pa_zalloc]", "[primitives.os_pa_free]", "[primitives.os_vmobj_map]",
                "[primitives.os_vmobj_unmap]", '[variation_points."driver/x86/nvmm_x86_vmx.c:vmx_machine_create#1"]'}
    assert missing == reviewed, sorted(missing ^ reviewed)
    # and nothing in the overlay that drift did not point at: os_pa_zalloc#1 now holds the
    # prototypes of os_pa_zalloc/os_pa_free, whose lost common definition drift lists;
    # HOST_RESTORE_TR#1 answers the fork's edit of HOST_SAVE_TR, one of drift's shared-code hunks
    assert added - ids == {'[variation_points."driver/nvmm_os.h:os_pa_zalloc#1"]',
                           '[variation_points."driver/x86/nvmm_x86_svmfunc.S:HOST_RESTORE_TR#1"]'}
    hunks = json.loads(_drift_json(proj, capsys))["shared_edits"]
    assert any(h["file"] == "driver/x86/nvmm_x86_svmfunc.S" and "pushq\t%rdx" in h["hunk"] for h in hunks)
    assert main(["--project", proj, "stamp", "--target", "linux", "--upstream", "fork"]) == 0
    assert main(["--project", proj, "surface", "--target", "linux", "--upstream", "fork"]) == 0
    assert "complete" in capsys.readouterr().out
    if _have_kernel_build():
        assert main(["--project", proj, "build", "--target", "linux", "--upstream", "fork"]) == 0
        assert (fork_project / "build" / "linux.obj" / "nvmm.ko").is_file()


@pytest.mark.e2e
@pytest.mark.parametrize("cpu", ["vmx", "svm"])
def test_linux_on_the_fork_runs(built_fork: Path, cpu: str, capsys):
    assert main(["--project", str(built_fork), "e2e", "--target", "linux", "--cpu", cpu, "--smp", "2",
                 "--upstream", "fork"]) == 0
    assert "\nPASS" in capsys.readouterr().out
