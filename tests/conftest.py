"""Shared fixtures.  Tests on the real upstream need its synced cache; without it they skip
and say how to get it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nvmm_port.project import Project  # noqa: E402

REFERENCE = "dragonfly-2024"
FIXTURES = ROOT / "tests" / "fixtures"
MINI = FIXTURES / "mini-nvmm"
TOYOS = FIXTURES / "targets" / "toyos"
GOLDEN = ROOT / "tests" / "golden"

HOW_TO_SYNC = (
    f"upstream cache for {REFERENCE} is not synced: run `python gen.py sync --name {REFERENCE}` "
    "(it reads the haiku/haiku mirror named in upstream/{REFERENCE}.lock; look for one under "
    "$NVMM_PORT_MIRRORS or /work/.mirror, or pass --git PATH --ref 8b7bc49ce0)"
).format(REFERENCE=REFERENCE)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the generator's current output instead of comparing")


@pytest.fixture()
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def reference_cache() -> Path | None:
    project = Project.find(ROOT)
    cache = project.cache_dir(REFERENCE)
    if not project.lock_path(REFERENCE).is_file() or not cache.is_dir():
        return None
    from nvmm_port.upstream.lock import Lock, verify_cache
    if not verify_cache(Lock.load(project.lock_path(REFERENCE)), cache).ok:
        return None
    return cache


@pytest.fixture(scope="session")
def reference_surface():
    """The analysis of the real reference upstream (fresh, not from the parse cache)."""
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    from nvmm_port.analysis.analyze import analyze_project
    return analyze_project(Project.find(ROOT), REFERENCE, use_cache=False)


@pytest.fixture()
def reference_copy(tmp_path):
    """A writable copy of the reference cache (for edits such as shifting lines)."""
    cache = reference_cache()
    if cache is None:
        pytest.skip(HOW_TO_SYNC)
    dest = tmp_path / "upstream"
    shutil.copytree(cache, dest)
    return dest


def upstream_changes_outside_variation_points(surface, tree, cache: Path) -> tuple[int, list[str]]:
    """How many upstream files a rendered tree changes, and every change that lies outside all of
    that file's variation points (a target may change upstream only at its variation points)."""
    import difflib
    vps: dict[str, list[tuple[int, int]]] = {}
    for v in surface.variation_points:
        vps.setdefault(v.file, []).append((v.line_start, v.line_end))
    changed_files = 0
    outside = []
    for rel in surface.upstream.files:
        old = (cache / rel).read_text(errors="surrogateescape").splitlines()
        new = tree.files[rel].decode(errors="surrogateescape").splitlines()
        ops = [op for op in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes() if op[0] != "equal"]
        if ops:
            changed_files += 1
        for _tag, i1, i2, j1, j2 in ops:
            lo, hi = i1 + 1, max(i1 + 1, i2)          # 1-based upstream lines touched (an insert: before i1+1)
            if not any(s <= lo and hi <= e + 1 for s, e in vps.get(rel, [])):
                outside.append(f"{rel}: lines {lo}-{hi} changed outside any variation point: {new[j1:j2][:3]}")
    return changed_files, outside


def haiku_project(where: Path, revisions: list[tuple[str, str]]) -> Path:
    """A project with haiku/haiku revisions synced as upstreams (name, ref); skips the test when
    the mirror is absent."""
    from nvmm_port.cli import main
    from nvmm_port.upstream.sync import find_mirror
    mirror = find_mirror("https://github.com/haiku/haiku")
    if mirror is None:
        pytest.skip("no haiku/haiku mirror: `fetch github:haiku/haiku` brings one")
    proj = make_project(where)
    for name, ref in revisions:
        assert main(["--project", str(proj), "sync", "--name", name, "--git", str(mirror), "--ref", ref]) == 0
    return proj


def make_project(tmp_path: Path) -> Path:
    """An empty project that shares this checkout's catalog and templates."""
    proj = tmp_path / "proj"
    (proj / "upstream").mkdir(parents=True)
    (proj / "shim").mkdir()
    shutil.copytree(ROOT / "shim" / "bsd", proj / "shim" / "bsd")
    shutil.copytree(ROOT / "templates", proj / "templates")
    return proj


@pytest.fixture()
def mini_project(tmp_path, capsys):
    """A project with the mini-NVMM fixture synced as upstream 'mini'."""
    from nvmm_port.cli import main
    p = make_project(tmp_path)
    assert main(["--project", str(p), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    capsys.readouterr()
    return p
