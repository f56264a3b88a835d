"""`gen.py drift` on a synthetic pair: the mini fixture and a v2 written here with every kind of drift
(the kinds DragonFly's contract went through by 2026 and a fork's wrappers): a primitive removed, one
added, a prototype changed, a header added, a variation point removed from the tests, an arm edited,
a block wrapped in a new `#ifndef __HAIKU__` (its id would otherwise rebind silently) and an edit to
shared code.  Plus the real pair, when the haiku/haiku mirror is here: dragonfly-2024 against Haiku's
own port at the Haiku target's sysroot commit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import MINI, ROOT, TOYOS, make_project

from nvmm_port.cli import main
from nvmm_port.project import Project
from nvmm_port.targets.drift import drift

NVMM = "sys/dev/virtual/nvmm"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def make_v2(dest: Path) -> Path:
    shutil.copytree(MINI, dest)
    os_h = dest / NVMM / "nvmm_os.h"
    # a primitive removed from both arms, one added to both, a prototype changed
    _edit(os_h, "#define os_atomic_inc_uint(p)\tatomic_inc_uint(p)\n", "#define os_mem_alloc(sz)\tkmem_alloc(sz, KM_SLEEP)\n")
    _edit(os_h, "#define os_atomic_inc_uint(p)\tatomic_add_int(p, 1)\n",
          "#define os_mem_alloc(sz)\tkmalloc(sz, M_DEVBUF, M_WAITOK)\n")
    _edit(os_h, "void os_pagemem_free(void *, size_t);", "void os_pagemem_free(void *, size_t, int);")
    # an arm edited (DragonFly's)
    _edit(dest / NVMM / "nvmm_internal.h", "(64ULL << 30)", "(32ULL << 30)")
    # a block wrapped by a fork: the new wrapper takes the id vmx_vcpu_run#1
    _edit(dest / NVMM / "x86/nvmm_x86_vmx.c",
          "#ifdef __NetBSD__\n\tvm_map_pmap(&mach->vm->vm_map)->pm_tlb_flush = vmx_tlb_flush;\n#endif\n",
          "#ifndef __HAIKU__\n#ifdef __NetBSD__\n\tvm_map_pmap(&mach->vm->vm_map)->pm_tlb_flush = vmx_tlb_flush;\n"
          "#endif\n#endif\n")
    # shared code edited, in nvmm_ioctl()
    _edit(dest / NVMM / "nvmm.c", "\tdefault:\n\t\treturn EINVAL;", "\tdefault:\n\t\treturn ENOTTY;")
    # a header added; a variation point removed from the tests
    (dest / NVMM / "nvmm_extra.h").write_text("/* v2 */\n#define NVMM_EXTRA 1\n")
    _edit(dest / "test/testcases/libnvmm/h_io_assist/h_io_assist.c",
          "#ifdef __NetBSD__\n\t/* The guest page must stay resident while the vcpu runs. */\n"
          "\tif (mlock(hva, PAGE_SIZE) == -1)\n\t\terr(EXIT_FAILURE, \"mlock\");\n#endif\n", "")
    return dest


@pytest.fixture
def pair(tmp_path: Path, capsys) -> Path:
    proj = make_project(tmp_path)
    shutil.copytree(TOYOS, proj / "shim" / "toyos")
    assert main(["--project", str(proj), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    v2 = make_v2(tmp_path / "mini2-src")
    assert main(["--project", str(proj), "sync", "--name", "mini2", "--dir", str(v2)]) == 0
    capsys.readouterr()
    return proj


def test_every_kind_of_drift_is_reported(pair: Path):
    d = drift(Project(pair), "mini", "mini2", ["toyos"])
    files = {(f.path, f.status) for f in d.files}
    assert ("driver/nvmm_extra.h", "added") in files and ("driver/nvmm.c", "changed") in files
    prims = {p.name: p for p in d.primitives}
    assert prims["os_atomic_inc_uint"].change == "removed"
    assert prims["os_mem_alloc"].change == "added"
    assert prims["os_pagemem_free"].change == "prototype"
    assert prims["os_pagemem_free"].after.endswith("os_pagemem_free(void *, size_t, int)")
    vps = [(v.change, v.id_from, v.id_to) for v in d.variation_points]
    run = "driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run"
    # the wrapped block keeps its identity under its new id; its old id is reported as rebound
    assert ("moved", f"{run}#1", f"{run}#2") in vps
    assert ("rebound", f"{run}#1", f"{run}#1") in vps
    assert ("moved", f"{run}#2", f"{run}#3") in vps
    assert ("added", "", f"{run}#1") in vps
    changed = [v for v in d.variation_points if v.change == "changed"]
    # the edited arm; and the contract block whose arms lost one primitive and gained another
    assert [(v.id_from, v.arms) for v in changed] == [("driver/nvmm_internal.h:NVMM_MAX_RAM#1", ["dragonfly"]),
                                                      ("driver/nvmm_os.h:os_mtx_t#1", ["dragonfly", "netbsd"])]
    assert ("removed", "tests/h_io_assist/h_io_assist.c:main#1", "") in vps
    # the shared-code edits, with their functions: the contract's prototype at file scope and the
    # frontend's; no hunk inside a variation point counts as shared
    assert [(e.file, e.function) for e in d.shared] == [("driver/nvmm.c", "nvmm_ioctl"), ("driver/nvmm_os.h", "")]
    assert "+\t\treturn ENOTTY;" in d.shared[0].hunk
    assert "+void os_pagemem_free(void *, size_t, int);" in d.shared[1].hunk
    # the target: what generate refuses, and what changed under its entries
    (t,) = d.targets
    assert t.broken
    assert any("os_atomic_inc_uint" in x and "not a primitive" in x for x in t.refused)
    assert any("os_mem_alloc" in x for x in t.refused)
    assert any(f"{run}#1: changed upstream: review" in x and "rebound" not in x for x in t.review)
    assert any("NVMM_MAX_RAM#1: changed upstream: review (arms changed: dragonfly)" in x for x in t.review)
    assert any("os_pagemem_free: changed upstream: review" in x for x in t.review)


def test_cli_exit_codes_and_json(pair: Path, capsys):
    rc = main(["--project", str(pair), "drift", "--from", "mini", "--to", "mini2", "--target", "toyos",
               "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["broken"] is True
    assert out["summary"]["primitives"] == {"added": 1, "prototype": 1, "removed": 1}
    assert set(out) >= {"from", "to", "summary", "files", "primitives", "variation_points", "shared_edits",
                        "foreign_identifiers", "targets", "broken"}
    # no target: nothing can break
    assert main(["--project", str(pair), "drift", "--from", "mini", "--to", "mini2"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Drift: mini → mini2") and "## Edits to shared code" in md
    # an upstream that is not synced: one line, exit 2
    assert main(["--project", str(pair), "drift", "--from", "mini", "--to", "nope"]) == 2
    assert "no lock for upstream 'nope'" in capsys.readouterr().err


def test_no_drift_between_an_upstream_and_its_copy(tmp_path: Path, capsys):
    proj = make_project(tmp_path)
    shutil.copytree(TOYOS, proj / "shim" / "toyos")
    for name in ("mini", "mini-copy"):
        assert main(["--project", str(proj), "sync", "--name", name, "--dir", str(MINI)]) == 0
    d = drift(Project(proj), "mini", "mini-copy", ["toyos"])
    assert (d.files, d.primitives, d.variation_points, d.shared, d.foreign) == ([], [], [], [], [])
    assert not d.broken


def test_real_fork_haiku_against_dragonfly_2024(tmp_path: Path, capsys):
    """dragonfly-2024 against Haiku's hand port at the Haiku target's sysroot commit, facts checked by
    hand in the mirror: the contract gained os_vmspace_get_vmmap, os_vmobj_map's first parameter
    became os_vmmap_t *, and svm_vmrun's call gained an argument in shared code."""
    from nvmm_port.upstream.sync import find_mirror
    mirror = find_mirror("https://github.com/haiku/haiku")
    if mirror is None:
        pytest.skip("no haiku/haiku mirror: `fetch github:haiku/haiku` brings one")
    proj = make_project(tmp_path)
    for name, ref in (("base", "8b7bc49ce0"), ("fork", "47136e7183")):
        assert main(["--project", str(proj), "sync", "--name", name, "--git", str(mirror), "--ref", ref]) == 0
    capsys.readouterr()
    shutil.copytree(ROOT / "shim" / "linux", proj / "shim" / "linux")
    shutil.copytree(ROOT / "shim" / "common", proj / "shim" / "common")
    d = drift(Project(proj), "base", "fork", ["linux"])
    prims = {p.name: p for p in d.primitives}
    assert prims["os_vmspace_get_vmmap"].change == "added"
    assert prims["os_vmobj_map"].change == "prototype" and "os_vmmap_t *" in prims["os_vmobj_map"].after
    # the ids the issue saw rebind: a new #ifndef __HAIKU__ wrapper takes #1, a scope was renamed
    vps = {(v.change, v.id_from, v.id_to) for v in d.variation_points}
    os_h, x86_h = "driver/nvmm_os.h", "driver/x86/nvmm_x86.h"
    assert {("moved", f"{os_h}:os_return_needed#1", f"{os_h}:os_return_needed#2"),
            ("rebound", f"{os_h}:os_return_needed#1", f"{os_h}:os_return_needed#1"),
            ("moved", f"{x86_h}:__BIT#1", f"{x86_h}:__BIT#2"), ("rebound", f"{x86_h}:__BIT#1", f"{x86_h}:__BIT#1"),
            ("moved", f"{os_h}:os_vmspace_t#1", f"{os_h}:os_vmmap_t#1")} <= vps
    # three primitives lost their common definition
    assert {n for n, p in prims.items() if p.change == "common definition"} == \
        {"os_pa_zalloc", "os_pa_free", "os_return_needed"}
    svm = [e for e in d.shared if e.file == "driver/x86/nvmm_x86_svm.c" and "svm_vmrun(" in e.hunk]
    assert svm, "svm_vmrun's call gained an argument outside any variation point"
    (t,) = d.targets
    assert t.broken and any("os_vmobj_map: changed upstream: review" in x for x in t.review)
    # the Linux spec's entry for __BIT#1 is held back, not applied to the new wrapper
    assert any("__BIT#1: changed upstream: review" in x for x in t.review)


def test_stamped_entries_are_refused_when_upstream_changes_under_them(pair: Path, capsys):
    """A stamped spec never fills a block it was not written for: against v2 the entry of the wrapped
    block is refused and points at the block's new id; surface and generate say the same."""
    assert main(["--project", str(pair), "stamp", "--target", "toyos", "--upstream", "mini"]) == 0
    toml = (pair / "shim" / "toyos" / "target.toml").read_text()
    assert toml.count("fingerprint = ") > 20
    assert main(["--project", str(pair), "stamp", "--target", "toyos", "--upstream", "mini"]) == 0
    assert "0 entries stamped against mini" in capsys.readouterr().out        # idempotent
    assert main(["--project", str(pair), "surface", "--target", "toyos", "--upstream", "mini"]) == 0
    capsys.readouterr()
    run = "driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run"
    assert main(["--project", str(pair), "surface", "--target", "toyos", "--upstream", "mini2"]) == 1
    surface_out = capsys.readouterr().out
    assert main(["--project", str(pair), "generate", "--target", "toyos", "--upstream", "mini2",
                 "--out", str(pair / "out")]) == 2
    err = capsys.readouterr().err
    for text in (surface_out, err):
        assert f'[variation_points."{run}#1"]: changed upstream: review' in text
        assert f"the block it was written for is now {run}#2" in text
        assert '[variation_points."driver/nvmm_internal.h:NVMM_MAX_RAM#1"]: changed upstream: review' in text
        assert "[primitives.os_pagemem_free]: changed upstream: review" in text
    assert not (pair / "out").exists()


def test_a_split_primitive_and_a_frontend_block_removed(tmp_path: Path, capsys):
    """The 2026 kinds of contract change DragonFly made: a function split in two (os_vmobj_map into
    _user and _kern; here os_vmspace_fault), and the frontend losing its OS-conditional blocks."""
    proj = make_project(tmp_path)
    v1 = tmp_path / "v1"
    shutil.copytree(MINI, v1)
    _edit(v1 / NVMM / "nvmm.c", "\targs->cap.max_ram = NVMM_MAX_RAM;\n",
          "\targs->cap.max_ram = NVMM_MAX_RAM;\n#if defined(__NetBSD__)\n\targs->cap.version |= 0;\n#endif\n")
    v2 = tmp_path / "v2"
    shutil.copytree(MINI, v2)
    _edit(v2 / NVMM / "nvmm_os.h", "int os_vmspace_fault(os_vmspace_t *, vaddr_t, vm_prot_t);",
          "int os_vmspace_fault_user(os_vmspace_t *, vaddr_t, vm_prot_t);\n"
          "int os_vmspace_fault_kern(os_vmspace_t *, vaddr_t, vm_prot_t);")
    text = (v2 / NVMM / "nvmm.c").read_text()
    assert "os_vmspace_fault(" in text
    (v2 / NVMM / "nvmm.c").write_text(text.replace("os_vmspace_fault(", "os_vmspace_fault_user("))
    for name, src in (("v1", v1), ("v2", v2)):
        assert main(["--project", str(proj), "sync", "--name", name, "--dir", str(src)]) == 0
    d = drift(Project(proj), "v1", "v2")
    prims = {p.name: p for p in d.primitives}
    split = prims["os_vmspace_fault"]
    assert split.change == "split" and split.after == "os_vmspace_fault_kern, os_vmspace_fault_user"
    assert split.call_sites == (1, 1)
    assert prims["os_vmspace_fault_user"].change == "added"
    removed = [v for v in d.variation_points if v.change == "removed"]
    assert [v.id_from for v in removed] == ["driver/nvmm.c:nvmm_capability#1"]
    capsys.readouterr()
    assert main(["--project", str(proj), "drift", "--from", "v1", "--to", "v2"]) == 0
    out = capsys.readouterr().out
    assert "`os_vmspace_fault`: split (" in out and "removed: `driver/nvmm.c:nvmm_capability#1`" in out
