"""Output trees gen.py owns (targets/writer.py) and the object directory builds run in (run/objdir.py).

Issue 10, "solid ground": (2) generate removes and replaces only the files it wrote, refuses an
output path it did not make, and says in one line why it cannot write; (3) an interrupt leaves the
old or the new tree and nothing else, and the command exits 130; (4) the cache, output trees and
spec directories follow the user's umask, and an unreadable cache is said to be unreadable; (5)
build products live in ``<out>.obj/``, so a second build compiles nothing and generate --check
after a build is clean.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import MINI, ROOT, TOYOS, make_project, reference_cache

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.run.objdir import RECORD, mirror_tree, objdir_of
from nvmm_port.targets.writer import MANIFEST, Tree, stale_files, write_tree


def gen(proj: Path, *args: str) -> int:
    return main(["--project", str(proj), "generate", "--target", str(TOYOS), *args])


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` (hidden ones and the manifest included) with its bytes."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def leftovers(d: Path) -> list[str]:
    """Temporary files or directories a writer could leave under ``d``."""
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                  if "nvmm-port-tmp" in p.name or ".new." in p.name or ".old." in p.name)


def tree(**files: str) -> Tree:
    return Tree({rel.replace("__", "/"): text.encode() for rel, text in files.items()})


def first_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[0]


# -- 2. only what it wrote ----------------------------------------------------------------------

def test_generate_leaves_the_users_files_alone(mini_project, tmp_path, capsys):
    out = tmp_path / "out"
    assert gen(mini_project, "--out", str(out)) == 0
    (out / "notes.txt").write_text("mine\n")
    (out / "sub").mkdir()
    (out / "sub" / "data.c").write_text("int mine;\n")
    capsys.readouterr()
    assert gen(mini_project, "--out", str(out), "--flatten") == 0
    said = capsys.readouterr().out
    assert " 0 removed; 2 other file(s) gen.py did not write, left alone" in said
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "sub" / "data.c").read_text() == "int mine;\n"
    assert gen(mini_project, "--out", str(out), "--flatten", "--check") == 0
    assert "2 other file(s) gen.py did not write, left alone" in capsys.readouterr().out


def test_out_that_is_a_regular_file_is_refused_and_kept(mini_project, tmp_path, capsys):
    out = tmp_path / "outfile"
    out.write_text("precious\n")
    capsys.readouterr()
    assert gen(mini_project, "--out", str(out)) == 2
    assert first_error(capsys) == (f"nvmm-port: error: {out}: is a file, not a directory (pass --out a new or "
                                   "empty directory (or one gen.py wrote), or move the file away)")
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outfile", "proj"]      # no hidden .outfile.old.*


def test_out_dir_gen_did_not_write_is_refused_and_kept(mini_project, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine\n")
    (out / "sub" / "data.c").write_text("int mine;\n")
    before = snapshot(out)
    capsys.readouterr()
    assert gen(mini_project, "--out", str(out)) == 2
    assert first_error(capsys) == (f"nvmm-port: error: {out}: is not empty and gen.py did not write it "
                                   f"(no {MANIFEST}) (pass --out a new or empty directory, or move its files away)")
    assert snapshot(out) == before
    assert gen(mini_project, "--out", str(out), "--check") == 2      # --check refuses it the same way
    assert "did not write it" in first_error(capsys)


def test_out_that_cannot_be_created_is_one_line(mini_project, capsys):
    out = Path("/sys/nvmm-port-test-out")
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here to refuse a directory")
    capsys.readouterr()
    assert gen(mini_project, "--out", str(out)) == 2
    line = first_error(capsys)
    assert line.startswith(f"nvmm-port: error: {out}: cannot write: ")
    assert ("Operation not permitted" in line or "Permission denied" in line) and "check the permissions" in line


UNWRITABLE = textwrap.dedent("""\
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from nvmm_port.errors import PortError
    from nvmm_port.targets.writer import Tree, write_tree
    try:
        write_tree(Tree({{"a": b"new\\n"}}), Path({out!r}))
    except PortError as exc:
        print(exc.one_line())
    """)


def _python_for_nobody() -> str:
    """An interpreter the user nobody may run (this one may live under /root)."""
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            if subprocess.run([python, "-c", "pass"], check=False, user="nobody").returncode == 0:
                return python
        except (OSError, KeyError):
            continue
    pytest.skip("no Python the user nobody can run")


@pytest.mark.parametrize("exists", [False, True])
def test_unwritable_out_is_one_line_naming_it(tmp_path, exists):
    """As a user who may not write there (nobody, when the tests run as root)."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="nvmm-port-ro-"))      # outside tmp_path, which is private to root
    try:
        out = base / "out"
        if exists:
            write_tree(tree(a="old\n"), out)
        script = UNWRITABLE.format(root=str(ROOT), out=str(out))
        if os.geteuid() == 0:
            base.chmod(0o755)
            # nobody may not traverse the checkout (a clone under /root): give it a readable copy
            pkg = base / "pkg"
            shutil.copytree(ROOT / "nvmm_port", pkg / "nvmm_port", ignore=shutil.ignore_patterns("__pycache__"))
            for p in [pkg, *pkg.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)
            script = UNWRITABLE.format(root=str(pkg), out=str(out))
            python = _python_for_nobody()
            proc = subprocess.run([python, "-c", script], check=False, capture_output=True, text=True,
                                  user="nobody", env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        else:
            (out if exists else base).chmod(0o555)
            proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout.strip() == (f"{out}: cannot write: Permission denied (check the permissions of that "
                                       "path, or pass --out a directory you can write)")
        assert (out / "a").read_text() == "old\n" if exists else not out.exists()
    finally:
        for d in (base, base / "out"):
            if d.is_dir():
                d.chmod(0o755)
        shutil.rmtree(base)


def test_out_below_a_regular_file_is_one_line(mini_project, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    capsys.readouterr()
    assert gen(mini_project, "--out", str(tmp_path / "afile" / "out")) == 2
    assert first_error(capsys) == (f"nvmm-port: error: {tmp_path / 'afile'}: is a file where gen.py needs a "
                                   "directory (move it away, or pass --out another directory)")
    assert (tmp_path / "afile").read_text() == "x"


def test_users_file_where_the_tree_writes_is_refused(tmp_path):
    out = tmp_path / "out"
    write_tree(tree(a="1\n"), out)
    (out / "b").write_text("the user's\n")
    with pytest.raises(PortError) as exc:
        write_tree(tree(a="1\n", b="ours\n"), out)
    assert exc.value.one_line() == (f"{out}: would replace {out / 'b'}, which gen.py did not write "
                                    "(move them away, or pass --out another directory)")
    assert (out / "b").read_text() == "the user's\n" and (out / "a").read_text() == "1\n"


def test_stale_files_of_ours_go_and_the_users_stay(tmp_path):
    out = tmp_path / "out"
    write_tree(tree(a="1\n", sub__b="2\n", gone__c="3\n"), out)
    (out / "sub" / "mine.txt").write_text("mine\n")
    assert stale_files(tree(a="1\n"), out) == ["extra gone/c", "extra sub/b"]
    rep = write_tree(tree(a="1\n"), out)
    assert rep.removed == ["gone/c", "sub/b"] and rep.others == ["sub/mine.txt"]
    assert sorted(snapshot(out)) == [MANIFEST, "a", "sub/mine.txt"]       # gone/ emptied: removed too
    assert stale_files(tree(a="1\n"), out) == []


def test_damaged_manifest_is_refused(tmp_path):
    out = tmp_path / "out"
    write_tree(tree(a="1\n"), out)
    (out / MANIFEST).write_text("0" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(PortError) as exc:
        write_tree(tree(a="2\n"), out)
    assert exc.value.one_line().startswith(f"{out / MANIFEST}: line 1 of the manifest is damaged")
    assert (out / "a").read_text() == "1\n"


def test_tree_written_before_manifests_is_adopted(tmp_path):
    """A build/<target>/ from before manifests: PROVENANCE names the files generate wrote."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "PROVENANCE").write_text("nvmm-port 0.1.0 port tree for target t (t, __t__)\n\n"
                                    + "0" * 64 + "  a\n    template x\n" + "1" * 64 + "  old\n    template y\n")
    (out / "a").write_text("old\n")
    (out / "old").write_text("old\n")
    (out / "nvmm.ko").write_text("a build product\n")
    rep = write_tree(tree(a="new\n", PROVENANCE="p\n"), out)
    assert rep.written == ["PROVENANCE", "a"] and rep.removed == ["old"] and rep.others == ["nvmm.ko"]
    assert sorted(snapshot(out)) == [MANIFEST, "PROVENANCE", "a", "nvmm.ko"]


# -- 3. interrupts ------------------------------------------------------------------------------

def test_failed_write_leaves_the_old_tree(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_tree(tree(a="1\n", b="2\n", c="3\n"), out)
    before = snapshot(out)
    real_write, calls = os.write, []

    def full(fd: int, data) -> int:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(PortError) as exc:
        write_tree(tree(a="10\n", b="20\n", c="30\n", new__d="4\n"), out)
    monkeypatch.undo()
    assert "cannot write: No space left on device" in exc.value.one_line()
    assert snapshot(out) == before and leftovers(tmp_path) == [] and not (out / "new").exists()


def test_signal_while_writing_is_held_until_the_tree_is_complete(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_tree(tree(a="1\n", b="2\n", c="3\n"), out)
    real_write, calls = os.write, []

    def interrupted(fd: int, data) -> int:
        calls.append(fd)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)          # Ctrl-C in the middle of the tree
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", interrupted)
    new = tree(a="10\n", b="20\n", c="30\n", new__d="4\n")
    with pytest.raises(KeyboardInterrupt):
        write_tree(new, out)
    monkeypatch.undo()
    assert stale_files(new, out) == [] and leftovers(tmp_path) == []


CHILD = textwrap.dedent("""\
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from nvmm_port.cli import main
    real = os.replace
    def replace(src, dst, *a, **k):
        real(src, dst, *a, **k)
        os.replace = real
        os.kill(os.getpid(), signal.{sig})       # right after the first rename of the new tree
    os.replace = replace
    sys.exit(main(["--project", {proj!r}, "generate", "--target", {toyos!r}, "--out", {out!r}, "--flatten"]))
    """)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_cli_interrupted_while_replacing_the_tree_exits_130_and_leaves_nothing(mini_project, tmp_path, sig):
    builds = tmp_path / "build"
    out = builds / "toyos"
    assert gen(mini_project, "--out", str(out)) == 0
    (out / "notes.txt").write_text("mine\n")
    script = CHILD.format(root=str(ROOT), sig=sig, proj=str(mini_project), toyos=str(TOYOS), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120)
    assert sorted(p.name for p in builds.iterdir()) == ["toyos"] and leftovers(builds) == []
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip() == "nvmm-port: interrupted"
    assert gen(mini_project, "--out", str(out), "--flatten", "--check") == 0     # the whole new tree
    assert (out / "notes.txt").read_text() == "mine\n"


# -- 4. modes follow the umask; an unreadable cache says so -------------------------------------

@pytest.fixture()
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_to(mask: int) -> None:
        os.umask(mask)
    yield set_to
    os.umask(old)


def modes(d: Path) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", stat.S_IMODE(p.stat().st_mode)) for p in [d, *d.rglob("*")]}


@pytest.mark.parametrize("mask,dirs,files", [(0o022, 0o755, 0o644), (0o002, 0o775, 0o664)])
def test_sync_cache_and_lock_follow_the_umask(tmp_path, umask, mask, dirs, files):
    umask(mask)
    proj = make_project(tmp_path)
    assert main(["--project", str(proj), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    assert modes(proj / "upstream" / "cache" / "mini") == {("dir", dirs), ("file", files)}
    assert stat.S_IMODE((proj / "upstream" / "mini.lock").stat().st_mode) == files


@pytest.mark.parametrize("mask,dirs,files", [(0o022, 0o755, 0o644), (0o002, 0o775, 0o664)])
def test_generated_tree_follows_the_umask(mini_project, tmp_path, umask, mask, dirs, files):
    umask(mask)
    out = tmp_path / "new" / "out"
    assert gen(mini_project, "--out", str(out)) == 0
    assert modes(tmp_path / "new") == {("dir", dirs), ("file", files)}


@pytest.mark.parametrize("command", ["new-target", "extract-target"])
def test_spec_dirs_follow_the_umask(mini_project, tmp_path, umask, command):
    umask(0o022)
    spec = tmp_path / "spec"
    args = ["new-target", "half"] if command == "new-target" else ["extract-target", "--os", "netbsd"]
    assert main(["--project", str(mini_project), *args, "-o", str(spec)]) == 0
    assert modes(spec) == {("dir", 0o755), ("file", 0o644)}


def test_unreadable_cache_is_said_to_be_unreadable(mini_project, capsys, monkeypatch):
    """What another user sees when the cache is mode 0700 (simulated: tests run as root too)."""
    cache = mini_project / "upstream" / "cache" / "mini"
    real = os.scandir

    def denied(path=".", *a, **k):
        if Path(path) == cache / "driver":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)
    monkeypatch.setattr(os, "scandir", denied)
    capsys.readouterr()
    assert gen(mini_project, "--out", str(mini_project / "out")) == 2
    line = first_error(capsys)
    assert line.startswith(f"nvmm-port: error: {cache / 'driver'}: cannot read the cache: Permission denied (")
    assert "does not match its lock" not in line


# -- 5. builds in <out>.obj ---------------------------------------------------------------------

def test_mirror_copies_changed_files_only_and_drops_removed_ones(tmp_path):
    obj = objdir_of(tmp_path / "linux")
    assert obj == tmp_path / "linux.obj"
    first = mirror_tree(tree(a="1\n", sub__b="2\n", c="3\n"), obj)
    assert first.copied == ["a", "c", "sub/b"]
    (obj / "a.o").write_text("a product\n")
    old = {rel: (obj / rel).stat().st_mtime_ns for rel in ("a", "sub/b")}
    os.utime(obj / "c", ns=(1, 1))
    again = mirror_tree(tree(a="1\n", sub__b="2\n", c="30\n"), obj)
    assert again.copied == ["c"] and again.unchanged == ["a", "sub/b"]
    assert {rel: (obj / rel).stat().st_mtime_ns for rel in ("a", "sub/b")} == old
    assert (obj / "c").stat().st_mtime_ns > 1
    gone = mirror_tree(tree(a="1\n"), obj)
    assert gone.removed == ["c", "sub/b"] and (obj / "a.o").is_file()
    assert sorted(snapshot(obj)) == [RECORD, "a", "a.o"]


def test_objdir_gen_did_not_make_is_refused(tmp_path):
    obj = tmp_path / "linux.obj"
    obj.mkdir()
    (obj / "x").write_text("mine\n")
    with pytest.raises(PortError) as exc:
        mirror_tree(tree(a="1\n"), obj)
    assert exc.value.one_line().startswith(f"{obj}: is not empty and gen.py did not make it (no {RECORD})")
    assert sorted(snapshot(obj)) == ["x"]


@pytest.fixture(scope="module")
def linux_built(tmp_path_factory):
    """The Linux port built once from a copy of its spec (so the copy can be edited)."""
    from nvmm_port.run.build import default_kdir
    if reference_cache() is None:
        pytest.skip("no synced dragonfly-2024 cache")
    if not (default_kdir() / "Makefile").is_file():
        pytest.skip("no kernel build directory: apt-get install linux-headers-amd64")
    base = tmp_path_factory.mktemp("incremental")
    shutil.copytree(ROOT / "shim" / "linux", base / "shim" / "linux")
    shutil.copytree(ROOT / "shim" / "common", base / "shim" / "common")
    spec, out = base / "shim" / "linux", base / "build" / "linux"
    first = build(spec, out)
    return spec, out, first


def build(spec: Path, out: Path):
    from nvmm_port.project import Project
    from nvmm_port.run.build import build_target
    return build_target(Project.find(ROOT), str(spec), None, out, None, False, 2)


def test_first_build_keeps_products_out_of_the_rendered_tree(linux_built):
    _, out, first = linux_built
    assert first.objdir == out.with_name("linux.obj") and first.module == first.objdir / "nvmm.ko"
    assert len(first.compiled) >= 8 and "driver/nvmm_linux.o" in first.compiled
    assert first.userland is not None and first.userland.library == first.objdir / "libnvmm" / "libnvmm.a"
    assert not [p for p in out.rglob("*") if p.suffix in (".o", ".ko", ".a", ".cmd", ".log")]


def test_second_build_compiles_nothing_and_says_so(linux_built, capsys):
    spec, out, _ = linux_built
    capsys.readouterr()
    assert main(["build", "--target", str(spec), "--out", str(out), "-j", "2"]) == 0
    said = capsys.readouterr().out
    assert f"nothing to compile: {out.with_name('linux.obj') / 'nvmm.ko'} up to date" in said
    assert "nothing to compile: libnvmm/libnvmm.a and 2 static test program(s)" in said


def test_generate_after_build_removes_nothing_and_check_passes(linux_built, capsys):
    spec, out, first = linux_built
    capsys.readouterr()
    assert main(["generate", "--target", str(spec), "--out", str(out), "--check"]) == 0
    assert main(["generate", "--target", str(spec), "--out", str(out)]) == 0
    assert " 0 written, " in capsys.readouterr().out and first.module.is_file()


def test_changed_glue_fragment_rebuilds_only_the_glue_object(linux_built):
    spec, out, _ = linux_built
    core = spec / "glue" / "core.c"
    core.write_text(core.read_text() + "\n/* edited by tests/test_writer.py */\n")
    again = build(spec, out)
    assert again.compiled == ["driver/nvmm_linux.o"]
    assert again.userland is not None and again.userland.compiled == []
