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
