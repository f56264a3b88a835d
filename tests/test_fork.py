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
from conftest import make_project
from test_generate import round_trip

from nvmm_port.cli import main

FORK = "47136e7183913db69a33700c4cce256adc0c3ccd"


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> Path:
    from nvmm_port.upstream.sync import find_mirror
    mirror = find_mirror("https://github.com/haiku/haiku")
    if mirror is None:
        pytest.skip("no haiku/haiku mirror: `fetch github:haiku/haiku` brings one")
    proj = make_project(tmp_path_factory.mktemp("fork"))
    assert main(["--project", str(proj), "sync", "--name", "fork", "--git", str(mirror), "--ref", FORK]) == 0
    return proj


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
