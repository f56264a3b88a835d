"""A fork as an upstream: Haiku's own port of NVMM (haiku/haiku at the Haiku target's sysroot commit),
which adds a third OS to DragonFly's tree by hand.  Extraction must read every OS it has arms for,
Haiku's included (a `static` function without `inline`, prototypes inside OS arms, a GNU named
variadic macro, an `#ifndef __HAIKU__` wrapper around a function that varies inside, a block shared
by two OSes), and each extracted spec must give the tree back byte for byte, and, flattened, exactly
what that OS compiles (unifdef as the oracle).  Skipped without the haiku/haiku mirror.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import haiku_project
from test_generate import round_trip

from nvmm_port.cli import main

FORK = "47136e7183913db69a33700c4cce256adc0c3ccd"


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> Path:
    return haiku_project(tmp_path_factory.mktemp("fork"), [("fork", FORK)])


@pytest.mark.parametrize("os_name", ["haiku", "dragonfly", "netbsd"])
def test_a_fork_round_trips_for_every_os_it_has(fork: Path, tmp_path: Path, os_name: str, capsys):
    n = round_trip(["--project", str(fork)], fork / "upstream/cache/fork", tmp_path, os_name)
    assert n >= 15      # C, headers and assembly compared token by token after flattening
    spec = tomllib.loads((tmp_path / f"spec-{os_name}" / "target.toml").read_text())
    prims = spec["primitives"]
    if os_name == "haiku":
        # a static function without inline, and a prototype inside Haiku's arm, written out as they stand
        assert prims["haiku_dummy_ipi"]["declaration"].startswith("static void")
        assert prims["os_return_needed"]["declaration"] == "bool os_return_needed();"
        assert prims["TRACE_ALWAYS"]["params"] == ["a..."]
    else:
        # the function the fork wrapped in #ifndef __HAIKU__ keeps every branch it holds
        body = prims["os_return_needed"]["body"]
        assert "#if defined(__NetBSD__)" in body and "#elif defined(__DragonFly__)" in body
        assert prims["os_pa_zalloc"]["declaration"] == "paddr_t\t\tos_pa_zalloc(void);"


def test_surface_and_generate_list_the_same_problems_in_one_run(fork: Path, tmp_path: Path, capsys):
    """The Linux spec, written for dragonfly-2024, applied to the fork: surface and generate both
    name every entry upstream changed under it and every entry missing, in one run, the same ones."""
    import re
    import shutil

    from conftest import ROOT
    for part in ("linux", "common"):
        shutil.copytree(ROOT / "shim" / part, fork / "shim" / part, dirs_exist_ok=True)
    capsys.readouterr()
    assert main(["--project", str(fork), "surface", "--target", "linux"]) == 1
    surface_out = capsys.readouterr().out
    assert main(["--project", str(fork), "generate", "--target", "linux", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    def review(text: str) -> set[str]:
        return set(re.findall(r"\[(\S+)\]: changed upstream: review", text))

    missing_s = {("primitives." + m) for m in re.findall(r"^\s+primitive (\S+): no entry", surface_out, re.M)} | \
        {f'variation_points."{m}"' for m in re.findall(r"^\s+variation point (.+): no entry", surface_out, re.M)}
    missing_g = set(re.findall(r"\(add \[(.+)\]\)$", err, re.M))
    assert review(surface_out) == review(err) and len(review(err)) >= 5
    assert {"primitives.os_vmobj_map", 'variation_points."driver/x86/nvmm_x86.h:__BIT#1"'} <= review(err)
    assert missing_s == missing_g and len(missing_g) >= 30
    assert "primitives.os_vmmap_t" in missing_g     # the contract gained a type every OS defines
    # Haiku's own helpers, defined and used only by Haiku's code, are not asked of Linux
    assert not {"primitives.os_vmspace_get_vmmap", "primitives.haiku_get_cpu_struct",
                "primitives.TRACE_ALWAYS"} & missing_g
    assert "11 primitive(s) as not needed (private to haiku)" in surface_out


def test_os_private_helpers_are_told_apart_from_the_contract(fork: Path):
    from nvmm_port.analysis.analyze import analyze_project
    from nvmm_port.project import Project
    prims = {p.name: p for p in analyze_project(Project(fork), "fork").primitives}
    assert prims["haiku_thread_pin"].private_to == ["haiku"]            # used by Haiku's definitions only
    assert prims["os_vmspace_get_vmmap"].private_to == ["haiku"]        # called in Haiku's arms of nvmm.c only
    assert prims["os_pa_zalloc"].private_to == ["netbsd", "dragonfly"]  # Haiku switched its caller off
    assert prims["os_vmmap_t"].private_to == [] and prims["curlwp_bind"].private_to == []


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    """Haiku's port as it grew: the pristine import, the 2024 GSoC port, the 2026 port."""
    return haiku_project(tmp_path_factory.mktemp("series"),
                         [("base", "8b7bc49ce0"), ("mid", "099de13932"), ("head", FORK)])


def test_drift_across_the_series_of_haiku_ports(series: Path):
    """Facts checked by hand in the mirror (git grep at each commit)."""
    from nvmm_port.analysis.analyze import analyze_project
    from nvmm_port.project import Project
    from nvmm_port.targets.drift import drift
    proj = Project(series)
    one = drift(proj, "base", "mid", [])
    two = drift(proj, "mid", "head", [])
    files = {f.status: 0 for f in one.files}
    for f in one.files:
        files[f.status] += 1
    assert files == {"added": 8, "changed": 13}     # nvmm_haiku.cpp, VMVirtualAddressSpace.*, Jamfiles, ...
    p1 = {p.name: p for p in one.primitives}
    p2 = {p.name: p for p in two.primitives}
    # 099de13932 adds os_get_curproc_map (nvmm_os.h:144, 3 calls in nvmm.c); 47136e7183 drops it again
    assert p1["os_get_curproc_map"].change == "added" and p1["os_get_curproc_map"].call_sites == (0, 3)
    assert p2["os_get_curproc_map"].change == "removed"
    # haiku_thread_bind became haiku_thread_pin, and curlwp_bind's Haiku arm with it
    assert p2["haiku_thread_bind"].change == "removed" and p2["haiku_thread_pin"].change == "added"
    assert p2["haiku_thread_pin"].private_to == ["haiku"] and p2["curlwp_bind"].change == "arms"
    assert p1["os_vmobj_map"].change == "prototype" and "os_vmmap_t *" in p1["os_vmobj_map"].after
    # the #ifndef __HAIKU__ around os_return_needed arrives in 2026: the id moves then, not in 2024
    moved1 = {(v.id_from, v.id_to) for v in one.variation_points if v.change == "moved"}
    moved2 = {(v.id_from, v.id_to) for v in two.variation_points if v.change == "moved"}
    assert ("driver/nvmm_os.h:os_return_needed#1", "driver/nvmm_os.h:os_return_needed#2") in moved2
    assert not any("os_return_needed" in a for a, _ in moved1)
    assert ("driver/x86/nvmm_x86.h:__BIT#1", "driver/x86/nvmm_x86.h:__BIT#2") in moved1
    # the Haiku blocks in vmx_cli/vmx_sti of 2024 are gone in 2026
    removed2 = {v.id_from for v in two.variation_points if v.change == "removed"}
    assert {"driver/x86/nvmm_x86_vmx.c:vmx_cli#1", "driver/x86/nvmm_x86_vmx.c:vmx_sti#1"} <= removed2
    # ids are stable: 2024 puts most of SVM inside `#if 0`, and its blocks keep their function ids
    mid = analyze_project(proj, "mid")
    svm = {v.id for v in mid.variation_points if v.file == "driver/x86/nvmm_x86_svm.c"}
    assert not any(":top#" in i for i in svm)
    assert {"driver/x86/nvmm_x86_svm.c:svm_vcpu_run#1", "driver/x86/nvmm_x86_svm.c:svm_tlb_flush#1"} <= svm
    base = {v.id for v in analyze_project(proj, "base").variation_points}
    head = {v.id for v in analyze_project(proj, "head").variation_points}
    assert len(moved1) + len(moved2) <= 4 and len(base - head) <= 4    # the rest keep their ids


def test_adopt_haiku_port_onto_its_base(series: Path, tmp_path: Path, capsys):
    """Haiku's hand port adopted onto dragonfly-2024 (its base): the spec carries the arms and the files
    the fork adds; generating BASE + spec and applying the reported edits gives the fork back, file for
    file (`patch` applies them: the report is complete and exact)."""
    import shutil
    import subprocess

    from nvmm_port.targets import origins
    spec = tmp_path / "adopt-haiku"
    assert main(["--project", str(series), "adopt", "--base", "base", "--port", "head", "--os", "haiku",
                 "-o", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "8 added files carried verbatim" in out and "15 files equal, 12 differ" in out
    assert (spec / ".gitignore").read_text().endswith("*\n")                 # derived from the fork: never committed
    assert (spec / "tree" / "driver" / "nvmm_haiku.cpp").is_file()
    report = (spec / "ADOPTED.md").read_text()
    assert "svm_vmrun" in report and "os_vmobj_map(os_vmmap_t *" in report   # shared edits, reported
    toml = tomllib.loads((spec / "target.toml").read_text())
    assert toml["variation_points"]["driver/nvmm_os.h:uimin#1"] == {"fingerprint": toml["variation_points"][
        "driver/nvmm_os.h:uimin#1"]["fingerprint"], "same_as": "dragonfly"}   # `|| defined(__HAIKU__)`

    gen = tmp_path / "gen"
    assert main(["--project", str(series), "generate", "--target", str(spec), "--upstream", "base",
                 "--out", str(gen)]) == 0
    port = series / "upstream/cache/head"
    patch_text = []
    for rel in sorted(p.relative_to(port).as_posix() for p in port.rglob("*") if p.is_file()):
        text = (gen / rel).read_text()
        (gen / rel).write_text(origins.strip(text) if "#line " in text else text)
    from nvmm_port.project import Project
    from nvmm_port.targets.adopt import adopt, compare
    a = adopt(Project(series), "base", "head", "haiku")
    compare(Project(series), a, spec)
    for rel in a.differ:
        patch_text.append(f"--- a/{rel}\n+++ b/{rel}\n")
        patch_text += [h.text + "\n" for h in a.hunks if h.file == rel]
    assert len(a.hunks) >= 40 and not a.refused
    r = subprocess.run([shutil.which("patch") or "patch", "-p1", "-s", "--no-backup-if-mismatch"],
                       input="".join(patch_text), cwd=gen, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in port.rglob("*"):
        if f.is_file():
            rel = f.relative_to(port).as_posix()
            assert (gen / rel).read_bytes() == f.read_bytes(), rel


def test_a_forks_own_cxx_glue_is_read_as_cxx_against_its_contract(fork: Path):
    """Haiku's nvmm_haiku.cpp (and VMVirtualAddressSpace.cpp) parsed as C++ with __HAIKU__: which of
    the out-of-line primitives Haiku's contract declares they define.  Checked by hand: `flsll` is
    declared in Haiku's arm of nvmm_os.h (and used by a macro there) and defined nowhere in the tree."""
    from nvmm_port.analysis.analyze import analyze_project
    from nvmm_port.project import Project
    (glue,) = analyze_project(Project(fork), "fork").glue
    assert glue.os == "haiku" and "driver/nvmm_haiku.cpp" in glue.files
    assert glue.defined["os_vmobj_create"].startswith("driver/nvmm_haiku.cpp:")
    assert {"os_vmspace_get_vmmap", "haiku_thread_pin", "os_pagemem_zalloc"} <= set(glue.defined)
    assert glue.missing == ["flsll"] and len(glue.defined) >= 30
