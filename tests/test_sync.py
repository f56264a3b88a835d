"""Tests for layout detection, the lock file and `gen.py sync`.

Every upstream tree here is synthetic: a few invented lines per file, laid
out like DragonFly, NetBSD or Haiku, built in tmp_path (upstream NVMM code is
third-party and never committed).  Only the test marked ``upstream`` reads
the real Haiku mirror, and it is skipped when that mirror is absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.upstream import sync as sync_mod
from nvmm_port.upstream.layout import (
    LAYOUTS_BY_NAME,
    PathMap,
    detect_layout,
    flat_test_groups,
    glob_match,
    layout_of_maps,
    map_path,
    normalise,
)
from nvmm_port.upstream.lock import Lock, LockedFile, verify_cache

# -- synthetic upstream trees --------------------------------------------------------------------

TREES = {
    "dragonfly": {
        "sys/dev/virtual/nvmm/nvmm.c": "driver/nvmm.c",
        "sys/dev/virtual/nvmm/nvmm.h": "driver/nvmm.h",
        "sys/dev/virtual/nvmm/nvmm_os.h": "driver/nvmm_os.h",
        "sys/dev/virtual/nvmm/nvmm_dragonfly.c": "driver/nvmm_dragonfly.c",
        "sys/dev/virtual/nvmm/Makefile": "driver/Makefile",
        "sys/dev/virtual/nvmm/x86/nvmm_x86.c": "driver/x86/nvmm_x86.c",
        "sys/dev/virtual/nvmm/x86/nvmm_x86_svmfunc.S": "driver/x86/nvmm_x86_svmfunc.S",
        "lib/libnvmm/libnvmm.c": "libnvmm/libnvmm.c",
        "lib/libnvmm/nvmm.h": "libnvmm/nvmm.h",
        "test/testcases/libnvmm/Makefile": "tests/Makefile",
        "test/testcases/libnvmm/h_io_assist/h_io_assist.c": "tests/h_io_assist/h_io_assist.c",
        "sys/dev/virtual/other/other.c": None,  # outside every layout root
    },
    "netbsd": {
        "sys/dev/nvmm/nvmm.c": "driver/nvmm.c",
        "sys/dev/nvmm/nvmm_internal.h": "driver/nvmm_internal.h",
        "sys/dev/nvmm/nvmm_netbsd.c": "driver/nvmm_netbsd.c",
        "sys/dev/nvmm/x86/nvmm_x86.c": "driver/x86/nvmm_x86.c",
        "sys/dev/nvmm/x86/nvmm_x86.h": "driver/x86/nvmm_x86.h",
        "lib/libnvmm/libnvmm.c": "libnvmm/libnvmm.c",
        "lib/libnvmm/libnvmm.3": "libnvmm/libnvmm.3",
        "tests/lib/libnvmm/Makefile": "tests/Makefile",
        "tests/lib/libnvmm/h_io_assist.c": "tests/h_io_assist/h_io_assist.c",
        "tests/lib/libnvmm/h_io_assist_asm.S": "tests/h_io_assist/h_io_assist_asm.S",
        "tests/lib/libnvmm/h_mem_assist.c": "tests/h_mem_assist/h_mem_assist.c",
        "tests/lib/libnvmm/h_mem_assist_asm.S": "tests/h_mem_assist/h_mem_assist_asm.S",
    },
    "haiku": {
        "src/add-ons/kernel/drivers/nvmm/nvmm.c": "driver/nvmm.c",
        "src/add-ons/kernel/drivers/nvmm/nvmm.h": "driver/nvmm.h",
        "src/add-ons/kernel/drivers/nvmm/include/machine/cpufunc.h": None,  # Haiku's BSD headers
        "src/add-ons/kernel/drivers/nvmm/include/sys/param.h": None,
        "src/add-ons/kernel/drivers/nvmm/x86/nvmm_x86.c": "driver/x86/nvmm_x86.c",
        "src/libs/nvmm/libnvmm.c": "libnvmm/libnvmm.c",
        "headers/libs/nvmm/nvmm.h": "libnvmm/nvmm.h",
        "src/tests/add-ons/kernel/drivers/nvmm/h_mem_assist/h_mem_assist.c": "tests/h_mem_assist/h_mem_assist.c",
    },
}


def expected(layout: str) -> set[str]:
    """The internal paths a synthetic tree of ``layout`` syncs to."""
    return {v for v in TREES[layout].values() if v}


def content(rel: str) -> str:
    fn = "".join(c if c.isalnum() else "_" for c in Path(rel).stem)
    return f"/* synthetic {rel} */\nint mini_{fn}(void) {{ return 0; }}\n"


def write_tree(root: Path, files: dict[str, object] | list[str]) -> Path:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content(rel))
    return root


GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(path: Path, layout: str = "netbsd") -> Path:
    write_tree(path, TREES[layout])
    git("init", "-q", "-b", "main", str(path))
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "synthetic upstream", cwd=path)
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    for var in ("NVMM_PORT_PROJECT", "NVMM_PORT_CACHE", "SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NVMM_PORT_MIRRORS", str(tmp_path / "no-mirrors"))
    for var, value in GIT_ENV.items():
        monkeypatch.setenv(var, value)


@pytest.fixture
def proj(tmp_path) -> Path:
    p = tmp_path / "proj"
    (p / "upstream").mkdir(parents=True)
    return p


def run(capsys, proj: Path, *args: str) -> tuple[int, str, str]:
    rc = main(["--project", str(proj), "sync", *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def cache(proj: Path, name: str = "up") -> Path:
    return proj / "upstream" / "cache" / name


def cache_listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in [root, *root.rglob("*")]}


def leftovers(proj: Path) -> list[str]:
    """Temp files or folders a sync may have left in upstream/ or the cache root."""
    found = []
    for d in (proj / "upstream", proj / "upstream" / "cache"):
        if d.is_dir():
            found += [p.name for p in d.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    return found


# -- layout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TREES))
def test_detect_and_normalise_each_layout(name):
    layout = detect_layout(TREES[name])
    assert layout.name == name
    groups = flat_test_groups(TREES[name])
    for rel, internal in TREES[name].items():
        assert normalise(layout, rel, groups) == internal, rel


def test_detect_by_header_only_and_plain_dir_paths():
    assert detect_layout(["sys/dev/nvmm/nvmm.h", "lib/libnvmm/libnvmm.c"]).name == "netbsd"


def test_detect_unknown_names_the_tree_and_the_expected_paths():
    with pytest.raises(PortError) as err:
        detect_layout(["src/hv/core.c", "sys/dev/nvmm/readme.txt"], "/some/tree")
    text = err.value.one_line()
    assert text.startswith("/some/tree:")
    for layout in ("dragonfly", "netbsd", "haiku", "sys/dev/virtual/nvmm", "src/add-ons/kernel/drivers/nvmm"):
        assert layout in text
    assert "sys/dev/nvmm exists but has no nvmm.c" in text


def test_flat_tests_are_grouped_per_program():
    netbsd = LAYOUTS_BY_NAME["netbsd"]
    groups = {"mem_assist", "mem_assist_big"}
    assert normalise(netbsd, "tests/lib/libnvmm/h_mem_assist_big_asm.S", groups) == \
        "tests/h_mem_assist_big/h_mem_assist_big_asm.S"
    assert normalise(netbsd, "tests/lib/libnvmm/h_mem_assist_asm.S", groups) == \
        "tests/h_mem_assist/h_mem_assist_asm.S"
    # Without the list of programs the name is guessed from the file name.
    assert normalise(netbsd, "tests/lib/libnvmm/h_io_assist_asm.S") == "tests/h_io_assist/h_io_assist_asm.S"
    assert normalise(netbsd, "tests/lib/libnvmm/t_thing.sh") == "tests/t_thing.sh"
    assert normalise(netbsd, "sys/dev/nvmmx/nvmm.c") is None


def test_globs_and_custom_maps():
    assert glob_match("src/a/include/**", "src/a/include/machine/x.h")
    assert not glob_match("src/a/include/**", "src/a/nvmm.c")
    assert glob_match("*.orig", "sys/dev/nvmm/nvmm.c.orig")
    assert glob_match("sys/*/x.c", "sys/dev/x.c") and not glob_match("sys/*/x.c", "sys/dev/nvmm/x.c")
    assert glob_match("sys/**/x.c", "sys/x.c")
    maps = [PathMap("src/hv", "driver"), PathMap("src/hv/arch", "driver/x86")]
    assert map_path(maps, "src/hv/arch/vmx.c") == "driver/x86/vmx.c"
    assert layout_of_maps(maps) == "custom"
    assert layout_of_maps([PathMap("sys/dev/nvmm", "driver")]) == "netbsd"


# -- lock -------------------------------------------------------------------------------------------

def sample_lock() -> Lock:
    return Lock("up", "netbsd", "2026-01-01T00:00:00Z", "0.1.0",
                {"kind": "git", "url": "/r \"q\"", "ref": "main", "commit": "a" * 40,
                 "paths": [{"from": "sys/dev/nvmm", "to": "driver", "exclude": ["x/**"]}]},
                [LockedFile("driver/b.c", "sys/dev/nvmm/b.c", "b" * 64, 2),
                 LockedFile("driver/a.c", "sys/dev/nvmm/a.c", "c" * 64, 1)])


def test_lock_dump_is_deterministic_toml_and_round_trips(tmp_path):
    text = sample_lock().dump()
    assert text.startswith("# nvmm-port upstream lock")
    data = tomllib.loads(text)
    assert [f["path"] for f in data["files"]] == ["driver/a.c", "driver/b.c"]
    path = tmp_path / "up.lock"
    path.write_text(text)
    again = Lock.load(path)
    assert again.dump() == text
    assert again.source["url"] == '/r "q"'


@pytest.mark.parametrize("mangle, says", [
    (lambda t: t.replace('sha256 = "' + "b" * 64, 'sha256 = "' + "b" * 63 + "Z"), "bad sha256"),
    (lambda t: t.replace('commit = "' + "a" * 40 + '"', ""), "missing key 'source.commit'"),
    (lambda t: t.replace('name = "up"', 'name = "other"'), "names upstream 'other'"),
    (lambda t: t + "\n[[files]\n", "cannot be read"),
    (lambda t: t.replace("size = 1", "size = -1"), "negative size"),
])
def test_bad_locks_name_the_file_and_the_fix(tmp_path, mangle, says):
    path = tmp_path / "up.lock"
    path.write_text(mangle(sample_lock().dump()))
    with pytest.raises(PortError) as err:
        Lock.load(path)
    text = err.value.one_line()
    assert str(path) in text and says in text and "re-run `gen.py sync`" in text and "restore" in text


def test_verify_cache_reports_changed_missing_extra(tmp_path):
    root = tmp_path / "c"
    (root / "driver").mkdir(parents=True)
    (root / "driver" / "a.c").write_bytes(b"x")
    (root / "driver" / "extra.c").write_bytes(b"y")
    lock = Lock("up", "netbsd", "", "", {"kind": "dir", "path": "/"},
                [LockedFile("driver/a.c", "a.c", hashlib.sha256(b"z").hexdigest(), 1),
                 LockedFile("driver/gone.c", "gone.c", "0" * 64, 0)])
    report = verify_cache(lock, root)
    assert report.lines() == ["changed driver/a.c", "extra driver/extra.c", "missing driver/gone.c"]


# -- sync from directories ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TREES))
def test_sync_dir_each_layout(tmp_path, proj, capsys, name):
    src = write_tree(tmp_path / f"{name}-src", TREES[name])
    rc, out, err = run(capsys, proj, "--name", "up", "--dir", str(src))
    assert rc == 0, err
    assert out.strip() == f"synced up: {len(expected(name))} files, layout {name}, dir {src}"
    assert cache_listing(cache(proj)) == expected(name)
    lock = Lock.load(proj / "upstream" / "up.lock")
    assert lock.layout == name and lock.source == {**lock.source, "kind": "dir", "path": str(src)}
    for f in lock.files:
        assert (src / f.source).read_bytes() == (cache(proj) / f.path).read_bytes()
    if name == "haiku":
        assert not any(p.startswith("driver/include") for p in cache_listing(cache(proj)))
        assert lock.source["paths"][0]["exclude"] == ["src/add-ons/kernel/drivers/nvmm/include/**"]
        # never silently: what the layout's excludes leave out is named
        assert "2 file(s) under the layout's folders left out by its excludes: " \
            "src/add-ons/kernel/drivers/nvmm/include/machine/ (1), src/add-ons/kernel/drivers/nvmm/include/sys/ (1)" \
            " (import them with --include GLOB)" in err
    else:
        assert "left out" not in err


def test_include_imports_what_the_layout_leaves_out_and_is_recorded(tmp_path, proj, capsys):
    src = write_tree(tmp_path / "haiku-src", TREES["haiku"])
    glob = "src/add-ons/kernel/drivers/nvmm/include/machine/**"
    rc, out, err = run(capsys, proj, "--name", "up", "--dir", str(src), "--include", glob)
    assert rc == 0, err
    listing = cache_listing(cache(proj))
    # the one under machine/ comes in, at its place under the driver; sys/ stays out, and is named
    assert [p for p in listing if p.startswith("driver/include/")] == \
        [p for p in listing if p.startswith("driver/include/machine/")] != []
    assert "1 file(s) under the layout's folders left out by its excludes: " \
        "src/add-ons/kernel/drivers/nvmm/include/sys/ (1) (import them with --include GLOB)" in err
    lock = Lock.load(proj / "upstream" / "up.lock")
    assert lock.source["include"] == [glob]
    # re-sync from the lock: the same files, nothing to do
    rc, out, err = run(capsys, proj, "--name", "up")
    assert rc == 0 and out.startswith("up to date up:"), (out, err)


def test_exclude_globs_leave_files_out_and_are_recorded(tmp_path, proj, capsys):
    src = write_tree(tmp_path / "src", TREES["netbsd"])
    rc, _, err = run(capsys, proj, "--name", "up", "--dir", str(src), "--exclude", "*.S",
                     "--exclude", "tests/lib/libnvmm/Makefile")
    assert rc == 0, err
    listing = cache_listing(cache(proj))
    assert not any(p.endswith(".S") for p in listing) and "tests/Makefile" not in listing
    assert Lock.load(proj / "upstream" / "up.lock").source["exclude"] == ["*.S", "tests/lib/libnvmm/Makefile"]


# -- sync from git ------------------------------------------------------------------------------------

def test_sync_git_records_commit_and_hashes(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo")
    head = git("rev-parse", "HEAD", cwd=repo)
    rc, out, err = run(capsys, proj, "--name", "up", "--git", str(repo), "--ref", "main")
    assert rc == 0, err
    assert out.strip() == f"synced up: {len(expected('netbsd'))} files, layout netbsd, commit {head}"
    lock_path = proj / "upstream" / "up.lock"
    data = tomllib.loads(lock_path.read_text())
    assert data["name"] == "up" and data["layout"] == "netbsd" and data["tool_version"]
    assert data["source"] == {**data["source"], "kind": "git", "url": str(repo), "ref": "main", "commit": head}
    assert "local" not in data["source"]
    paths = [f["path"] for f in data["files"]]
    assert paths == sorted(paths) and set(paths) == expected("netbsd")
    for f in data["files"]:
        blob = (repo / f["source"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(blob).hexdigest() and f["size"] == len(blob)
        assert (cache(proj) / f["path"]).read_bytes() == blob


def test_sync_from_bare_mirror_without_work_tree(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo", "dragonfly")
    mirror = tmp_path / "mirrors" / "acme+nvmm" / "repo"
    git("clone", "-q", "--bare", str(repo), str(mirror))
    assert git("rev-parse", "--is-bare-repository", cwd=mirror) == "true"
    rc, out, err = run(capsys, proj, "--name", "up", "--git", str(mirror), "--ref", "main")
    assert rc == 0, err
    assert "layout dragonfly" in out
    lock = Lock.load(proj / "upstream" / "up.lock")
    assert lock.source["url"] == "https://github.com/acme/nvmm"
    assert lock.source["local"] == str(mirror)
    assert cache_listing(cache(proj)) == expected("dragonfly")


def test_resync_is_idempotent_and_touches_nothing(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo", "haiku")
    assert run(capsys, proj, "--name", "up", "--git", str(repo), "--ref", "main")[0] == 0
    lock_path = proj / "upstream" / "up.lock"
    past = 1_000_000_000
    for p in [lock_path, *cache(proj).rglob("*"), cache(proj)]:
        os.utime(p, (past, past))
    before_lock, before_cache = snapshot(lock_path), snapshot(cache(proj))
    for args in (["--name", "up", "--git", str(repo), "--ref", "main"], []):
        rc, out, err = run(capsys, proj, *args)
        assert rc == 0, err
        assert out.startswith("up to date up: ") and "layout haiku" in out
        assert snapshot(lock_path) == before_lock and snapshot(cache(proj)) == before_cache


def test_resync_from_lock_restores_cache_from_a_moved_mirror(tmp_path, proj, capsys, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    first = tmp_path / "m1" / "acme+nvmm" / "repo"
    git("clone", "-q", "--bare", str(repo), str(first))
    assert run(capsys, proj, "--name", "up", "--git", str(first), "--ref", "main")[0] == 0
    lock_text = (proj / "upstream" / "up.lock").read_text()
    # A fresh checkout of the project: no cache, the mirror lives elsewhere now.
    shutil.rmtree(proj / "upstream" / "cache")
    (tmp_path / "m2").mkdir()
    (tmp_path / "m1" / "acme+nvmm").rename(tmp_path / "m2" / "acme+nvmm")
    git("commit", "-q", "--allow-empty", "-m", "later", cwd=repo)  # the lock pins the commit, not the branch
    monkeypatch.setenv("NVMM_PORT_MIRRORS", os.pathsep.join([str(tmp_path / "none"), str(tmp_path / "m2")]))
    rc, out, err = run(capsys, proj)
    assert rc == 0, err
    assert out.startswith(f"restored up: {len(expected('netbsd'))} files")
    assert (proj / "upstream" / "up.lock").read_text() == lock_text
    assert run(capsys, proj, "--check")[0:2] == (0, out.replace("restored", "cache matches lock").split(" (")[0] + "\n")


def test_new_commit_updates_cache_and_lock(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo")
    assert run(capsys, proj, "--name", "up", "--git", str(repo))[0] == 0
    (repo / "sys/dev/nvmm/nvmm.c").write_text("int mini_core(void) { return 1; }\n")
    (repo / "lib/libnvmm/libnvmm.3").unlink()
    git("commit", "-q", "-am", "change", cwd=repo)
    rc, out, _ = run(capsys, proj, "--git", str(repo))  # the only lock: no --name needed
    assert rc == 0 and out.startswith(f"synced up: {len(expected('netbsd')) - 1} files")
    assert (cache(proj) / "driver/nvmm.c").read_text() == "int mini_core(void) { return 1; }\n"
    assert not (cache(proj) / "libnvmm/libnvmm.3").exists()
    assert Lock.load(proj / "upstream" / "up.lock").source["commit"] == git("rev-parse", "HEAD", cwd=repo)
    assert leftovers(proj) == []


def test_explicit_paths_known_and_custom(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo")
    rc, out, err = run(capsys, proj, "--name", "up", "--git", str(repo), "--path", "sys/dev/nvmm",
                       "--path", "lib/libnvmm")
    assert rc == 0, err
    assert "layout netbsd" in out
    assert {p.split("/")[0] for p in cache_listing(cache(proj))} == {"driver", "libnvmm"}
    rc, out, err = run(capsys, proj, "--name", "other", "--git", str(repo), "--path", "sys/dev/nvmm/x86:driver",
                       "--path", "tests/lib/libnvmm:tests")
    assert rc == 0, err
    assert "layout custom" in out
    assert "driver/nvmm_x86.c" in cache_listing(cache(proj, "other"))
    assert "tests/h_mem_assist/h_mem_assist_asm.S" in cache_listing(cache(proj, "other"))


def test_optional_path_absent_at_a_revision_is_skipped_with_a_warning(tmp_path, proj, capsys):
    """One path list for a series of revisions: a folder marked '?' that a revision lacks is skipped
    and said; unmarked, it is an error that suggests the mark."""
    repo = make_repo(tmp_path / "repo")
    rc, out, err = run(capsys, proj, "--name", "up", "--git", str(repo), "--path", "sys/dev/nvmm",
                       "--path", "lib/libnvmm", "--path", "tests/lib/nvmm-later:tests?")
    assert rc == 0, err
    assert "optional --path tests/lib/nvmm-later is not in this revision: skipped" in err
    lock = Lock.load(proj / "upstream" / "up.lock")
    assert [p["from"] for p in lock.source["paths"]] == ["sys/dev/nvmm", "lib/libnvmm"]
    rc, _, err = run(capsys, proj, "--name", "up2", "--git", str(repo), "--path", "sys/dev/nvmm",
                     "--path", "tests/lib/nvmm-later:tests")
    assert rc == 2 and "(--path tests/lib/nvmm-later?)" in err


def test_remote_url_uses_a_shallow_clone(tmp_path, proj, capsys):
    repo = make_repo(tmp_path / "repo")
    head = git("rev-parse", "HEAD", cwd=repo)
    rc, out, err = run(capsys, proj, "--name", "up", "--git", repo.as_uri(), "--ref", "main")
    assert rc == 0, err
    assert out.strip().endswith(f"commit {head}")
    lock = Lock.load(proj / "upstream" / "up.lock")
    assert lock.source["url"] == repo.as_uri() and lock.source["commit"] == head
    # By full commit too (fetched by id), and from the lock alone.
    rc, out, err = run(capsys, proj, "--name", "up", "--git", repo.as_uri(), "--ref", head)
    assert rc == 0, err
    shutil.rmtree(cache(proj))
    assert run(capsys, proj)[0] == 0
    assert run(capsys, proj, "--check")[0] == 0



def test_remote_sync_reports_progress_and_returns_what_it_did(tmp_path, proj):
    """The library call: a typed source, a Progress with one task per phase, a result (no printing)."""
    import contextlib

    from nvmm_port import ui
    from nvmm_port.project import Project

    class Recording(ui.Progress):
        def __init__(self) -> None:
            self.tasks: list[str] = []
            self.details: list[str] = []

        @contextlib.contextmanager
        def task(self, label):
            self.tasks.append(label)
            yield self.details.append

    repo = make_repo(tmp_path / "repo")
    progress = Recording()
    project = Project.find(str(proj))
    done = sync_mod.sync(project, "up", sync_mod.SyncSource(git=repo.as_uri(), ref="main"), progress)
    assert done.outcome == "synced" and done.warnings == []
    assert done.summary[-1].group == "total" and done.summary[-1].files == len(expected("netbsd"))
    assert progress.tasks == [f"cloning {repo.as_uri()}", "fetching main", f"reading {len(expected('netbsd'))} files"]
    assert progress.details
    again = sync_mod.sync(project, "up", sync_mod.SyncSource(), progress)
    assert again.outcome == "up to date" and again.summary == []
    found = sync_mod.check(project, "up")
    assert found.ok and found.lines == []


# -- --check ------------------------------------------------------------------------------------------

def test_check_finds_one_byte_change_missing_and_extra(tmp_path, proj, capsys):
    src = write_tree(tmp_path / "src", TREES["netbsd"])
    assert run(capsys, proj, "--name", "up", "--dir", str(src))[0] == 0
    rc, out, _ = run(capsys, proj, "--check")
    assert rc == 0 and out.startswith("cache matches lock")
    target = cache(proj) / "driver/nvmm.c"
    data = bytearray(target.read_bytes())
    data[5] ^= 0x01  # one byte, same size
    target.write_bytes(bytes(data))
    (cache(proj) / "libnvmm/libnvmm.3").unlink()
    (cache(proj) / "tests/h_io_assist/notes.txt").write_text("mine\n")
    rc, out, err = run(capsys, proj, "--check", "--name", "up")
    assert rc == 1
    assert out.splitlines() == ["changed driver/nvmm.c", "missing libnvmm/libnvmm.3",
                                "extra tests/h_io_assist/notes.txt"]
    assert "gen.py sync --name up" in err
    # A plain re-sync repairs it and leaves no stray file.
    rc, out, _ = run(capsys, proj)
    assert rc == 0 and out.startswith("restored up")
    assert run(capsys, proj, "--check")[0] == 0


def test_check_without_cache_says_to_sync(tmp_path, proj, capsys):
    src = write_tree(tmp_path / "src", TREES["netbsd"])
    assert run(capsys, proj, "--name", "up", "--dir", str(src))[0] == 0
    shutil.rmtree(cache(proj))
    rc, out, err = run(capsys, proj, "--check")
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(cache(proj)) in err and "gen.py sync --name up" in err


# -- bad input ------------------------------------------------------------------------------------

def _lock_with(proj: Path, tmp_path: Path, capsys, mangle) -> None:
    src = write_tree(tmp_path / "good", TREES["netbsd"])
    assert run(capsys, proj, "--name", "up", "--dir", str(src))[0] == 0
    lock = proj / "upstream" / "up.lock"
    lock.write_text(mangle(lock.read_text()))


def _bad_cases(tmp_path: Path, proj: Path, capsys):
    """(arguments, text the one-line error must contain) for each bad input."""
    repo = make_repo(tmp_path / "repo")
    empty = tmp_path / "empty"
    empty.mkdir()
    unknown = write_tree(tmp_path / "unknown", ["src/hv/core.c"])
    no_c = write_tree(tmp_path / "no-c", ["sys/dev/nvmm/nvmm.h", "sys/dev/nvmm/x86/nvmm_x86.h"])
    plain = write_tree(tmp_path / "plain", ["sys/dev/nvmm/nvmm.c"])
    return {
        "missing dir": (["--name", "up", "--dir", str(tmp_path / "nope")], [str(tmp_path / "nope"), "does not exist"]),
        "empty dir": (["--name", "up", "--dir", str(empty)], [str(empty), "empty"]),
        "unknown layout": (["--name", "up", "--dir", str(unknown)], [str(unknown), "no known NVMM layout",
                                                                    "sys/dev/nvmm/nvmm.c"]),
        "driver without C": (["--name", "up", "--dir", str(no_c)], [str(no_c), "no C files"]),
        "git not a repo": (["--name", "up", "--git", str(plain)], [str(plain), "not a git repository"]),
        "git missing path": (["--name", "up", "--git", str(tmp_path / "nope")], [str(tmp_path / "nope")]),
        "bad ref": (["--name", "up", "--git", str(repo), "--ref", "xyz"],
                    [f"ref 'xyz' not found in {repo}", "check the ref or fetch it"]),
        "absent --path": (["--name", "up", "--git", str(repo), "--path", "sys/dev/nvmmx:driver"],
                          ["path 'sys/dev/nvmmx' not found", str(repo)]),
        "--path without dest": (["--name", "up", "--git", str(repo), "--path", "src/hv"],
                                ["--path src/hv", "src/hv:DEST"]),
        "remote unreachable": (["--name", "up", "--git", (tmp_path / "nope.git").as_uri()],
                               ["cannot clone", "nope.git"]),
        "no name": (["--dir", str(plain)], ["--name is required", str(proj / "upstream")]),
        "no lock to re-sync": (["--name", "up"], ["no lock", "up.lock"]),
    }


BAD = ["missing dir", "empty dir", "unknown layout", "driver without C", "git not a repo", "git missing path",
       "bad ref", "absent --path", "--path without dest", "remote unreachable", "no name", "no lock to re-sync"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_exits_2_with_one_line(tmp_path, proj, capsys, case):
    args, needles = _bad_cases(tmp_path, proj, capsys)[case]
    rc, out, err = run(capsys, proj, *args)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nvmm-port: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert not (proj / "upstream" / "up.lock").exists()
    assert not (proj / "upstream" / "cache").exists()
    assert leftovers(proj) == []


@pytest.mark.parametrize("args", [[], ["--check"]])
@pytest.mark.parametrize("mangle, says", [
    (lambda t: "this is [not toml\n", "corrupt lock"),
    (lambda t: t.replace("sha256 = \"", "sha256 = \"0", 1), "bad sha256"),
])
def test_corrupt_lock_exits_2_naming_it(tmp_path, proj, capsys, args, mangle, says):
    _lock_with(proj, tmp_path, capsys, mangle)
    lock = proj / "upstream" / "up.lock"
    before = lock.read_bytes()
    rc, out, err = run(capsys, proj, *args)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(lock) in err and says in err and "restore the lock from git" in err
    assert lock.read_bytes() == before


def test_corrupt_lock_is_replaced_by_an_explicit_sync(tmp_path, proj, capsys):
    _lock_with(proj, tmp_path, capsys, lambda t: "garbage = [\n")
    rc, out, err = run(capsys, proj, "--name", "up", "--dir", str(tmp_path / "good"))
    assert rc == 0 and out.startswith("synced up")
    assert "will be replaced" in err
    assert run(capsys, proj, "--check")[0] == 0


# -- atomicity ------------------------------------------------------------------------------------

def test_failed_sync_leaves_old_cache_and_lock(tmp_path, proj, capsys, monkeypatch):
    repo = make_repo(tmp_path / "repo")
    assert run(capsys, proj, "--name", "up", "--git", str(repo))[0] == 0
    lock = proj / "upstream" / "up.lock"
    before_lock, before_cache = lock.read_bytes(), snapshot(cache(proj))

    # A bad ref fails before anything is written.
    assert run(capsys, proj, "--git", str(repo), "--ref", "nope")[0] == 2
    assert lock.read_bytes() == before_lock and snapshot(cache(proj)) == before_cache
    assert leftovers(proj) == []

    # A new commit, and the lock cannot be replaced at the very end: the new cache is rolled back.
    (repo / "sys/dev/nvmm/nvmm.c").write_text("int mini_core(void) { return 2; }\n")
    git("commit", "-q", "-am", "change", cwd=repo)
    real_replace = os.replace

    def failing_replace(src, dst, *a, **kw):
        if str(dst).endswith(".lock"):
            raise OSError(28, "No space left on device", str(dst))
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(sync_mod.os, "replace", failing_replace)
    rc, out, err = run(capsys, proj, "--git", str(repo))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "up.lock" in err
    assert lock.read_bytes() == before_lock
    assert {k: v[1] for k, v in snapshot(cache(proj)).items()} == {k: v[1] for k, v in before_cache.items()}
    assert leftovers(proj) == []
    monkeypatch.setattr(sync_mod.os, "replace", real_replace)
    assert run(capsys, proj, "--check")[0] == 0


def test_failed_first_sync_leaves_nothing(tmp_path, capsys, monkeypatch):
    proj = tmp_path / "fresh"  # not even an upstream/ folder yet
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setattr(sync_mod.os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError(13, "denied")))
    rc, _, err = run(capsys, proj, "--name", "up", "--git", str(repo))
    assert rc == 2 and "denied" in err
    assert not (proj / "upstream").exists()


# -- the real Haiku mirror ------------------------------------------------------------------------

HAIKU_MIRROR = Path("/work/.mirror/haiku+haiku/repo")
HAIKU_REF = "8b7bc49ce0"
HAIKU_FILES = {
    "driver/nvmm.c", "driver/nvmm.h", "driver/nvmm_internal.h", "driver/nvmm_ioctl.h", "driver/nvmm_os.h",
    "driver/x86/nvmm_x86.c", "driver/x86/nvmm_x86.h", "driver/x86/nvmm_x86_svm.c",
    "driver/x86/nvmm_x86_svmfunc.S", "driver/x86/nvmm_x86_vmx.c", "driver/x86/nvmm_x86_vmxfunc.S",
    "libnvmm/libnvmm.3", "libnvmm/libnvmm.c", "libnvmm/libnvmm_x86.c", "libnvmm/nvmm.h",
    "tests/h_io_assist/h_io_assist.c", "tests/h_io_assist/h_io_assist_asm.S",
    "tests/h_mem_assist/h_mem_assist.c", "tests/h_mem_assist/h_mem_assist_asm.S",
}


@pytest.mark.upstream
def test_real_haiku_mirror(proj, capsys):
    if not (HAIKU_MIRROR / "objects").is_dir():
        pytest.skip(f"no Haiku mirror at {HAIKU_MIRROR}: make one with "
                    f"`git clone --mirror https://github.com/haiku/haiku {HAIKU_MIRROR}`")
    rc, out, err = run(capsys, proj, "--name", "haiku", "--git", str(HAIKU_MIRROR), "--ref", HAIKU_REF)
    assert rc == 0, err
    assert out.strip() == "synced haiku: 19 files, layout haiku, commit 8b7bc49ce0150d7a925ba40fc997382052dcb9df"
    listing = cache_listing(cache(proj, "haiku"))
    assert listing == HAIKU_FILES
    assert not any(p.startswith("driver/include/") for p in listing)
    lock = Lock.load(proj / "upstream" / "haiku.lock")
    assert lock.layout == "haiku" and lock.source["url"] == "https://github.com/haiku/haiku"
    assert run(capsys, proj, "--check")[0] == 0
