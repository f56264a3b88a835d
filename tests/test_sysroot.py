"""Sysroots (a target OS's own tree, imported and locked like upstream) and the Jamfile reader.

Every tree here is synthetic, a few invented lines per file in a git repository built in tmp_path:
Haiku's tree is third-party code and is never committed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run.jam import JamVars, read_jamfile
from nvmm_port.upstream import sysroot
from nvmm_port.upstream.lock import SYSROOT_LAYOUT, Lock


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.fixture
def os_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "os"
    files = {"headers/os/KernelExport.h": "int lock_memory(void *);\n",
             "headers/posix/stdio.h": "int printf(const char *, ...);\n",
             "src/system/kernel/vm/vm.cpp": "int\nlock_memory(void *a)\n{\n\treturn 0;\n}\n",
             "docs/unrelated.txt": "not imported\n"}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    return repo


def _spec(repo: Path, ref: str = "HEAD", paths: tuple[str, ...] = ("headers", "src/system/kernel")
          ) -> sysroot.SysrootSpec:
    return sysroot.SysrootSpec("myos", str(repo), ref, paths, "shim/myos/target.toml")


def test_import_locks_every_file_and_pins_the_commit(tmp_path, os_repo):
    project = Project(tmp_path / "proj")
    got = sysroot.ensure(project, _spec(os_repo))
    assert got.imported and got.files == 3
    assert got.commit == _git(os_repo, "rev-parse", "HEAD")
    assert (got.root / "src/system/kernel/vm/vm.cpp").read_text().startswith("int\nlock_memory")
    assert not (got.root / "docs").exists()
    lock = Lock.load(sysroot.lock_path(project, "myos"))
    assert lock.layout == SYSROOT_LAYOUT and lock.source["commit"] == got.commit
    assert sorted(f.path for f in lock.files) == ["headers/os/KernelExport.h", "headers/posix/stdio.h",
                                                  "src/system/kernel/vm/vm.cpp"]
    # a second call reads nothing: the cache verifies against the lock
    assert not sysroot.ensure(project, _spec(os_repo)).imported


def test_the_lock_pins_the_commit_when_the_branch_moves(tmp_path, os_repo):
    project = Project(tmp_path / "proj")
    first = sysroot.ensure(project, _spec(os_repo))
    (os_repo / "headers/os/KernelExport.h").write_text("int lock_memory(void *, int);\n")
    _git(os_repo, "commit", "-q", "-am", "two")
    # the cache is lost (a fresh clone): the import takes the locked commit, not the branch's new tip
    shutil.rmtree(first.root)
    again = sysroot.ensure(project, _spec(os_repo))
    assert again.imported and again.commit == first.commit
    assert (again.root / "headers/os/KernelExport.h").read_text() == "int lock_memory(void *);\n"


def test_a_damaged_cache_is_restored(tmp_path, os_repo):
    project = Project(tmp_path / "proj")
    got = sysroot.ensure(project, _spec(os_repo))
    (got.root / "headers/posix/stdio.h").write_text("edited\n")
    assert sysroot.ensure(project, _spec(os_repo)).imported
    assert (got.root / "headers/posix/stdio.h").read_text() == "int printf(const char *, ...);\n"


def test_missing_mirror_and_missing_folder_are_one_line_errors(tmp_path, os_repo, monkeypatch):
    project = Project(tmp_path / "proj")
    monkeypatch.setenv("NVMM_PORT_MIRRORS", str(tmp_path / "no-mirrors"))
    with pytest.raises(sysroot.NoMirror) as exc:
        sysroot.ensure(project, sysroot.SysrootSpec("myos", "https://github.com/example/myos", "HEAD",
                                                    ("headers",), "shim/myos/target.toml"))
    assert "no local mirror of example/myos" in exc.value.one_line()
    with pytest.raises(PortError) as exc2:
        sysroot.ensure(project, _spec(os_repo, paths=("headers", "src/nowhere")))
    assert "sysroot path 'src/nowhere' has no files" in exc2.value.one_line()
    assert not sysroot.lock_path(project, "myos").exists()       # nothing half-written


# -- the Jamfile reader ---------------------------------------------------------------------------

JAMFILE = """\
# a comment
SubDir HAIKU_TOP src add-ons kernel drivers nvmm ;
SEARCH_SOURCE += [ FDirName $(SUBDIR) driver ] ;
SEARCH_SOURCE += [ FDirName $(SUBDIR) driver x86 ] ;
local upstreamSources = nvmm.c nvmm_x86.c ;
local glueSources = glue.cpp ;
SourceSysHdrs $(upstreamSources) : [ FDirName $(SUBDIR) compat ] [ FDirName $(SUBDIR) driver ] ;
ObjectDefines $(upstreamSources) : _KERNEL ;
SourceSysHdrs $(glueSources) : $(TARGET_PRIVATE_KERNEL_HEADERS) ;
ObjectC++Flags $(glueSources) : -Werror ;
KernelAddon nvmm :
	$(upstreamSources)
	$(glueSources)
	;
"""


def _tree(tmp_path: Path, jamfile: str) -> Path:
    tree = tmp_path / "tree"
    for rel in ("driver/nvmm.c", "driver/x86/nvmm_x86.c", "driver/glue.cpp", "compat/sys/param.h"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("\n")
    (tree / "Jamfile").write_text(jamfile)
    return tree


def test_jamfile_gives_each_source_its_world(tmp_path):
    tree = _tree(tmp_path, JAMFILE)
    kernel = [Path("/haiku/headers/private/kernel")]
    jam = read_jamfile(tree / "Jamfile", tree, JamVars(Path("/haiku"), kernel))
    assert jam.subdir == ["src", "add-ons", "kernel", "drivers", "nvmm"]
    (addon,) = jam.target("KernelAddon")
    assert addon.name == "nvmm" and addon.sources == ["driver/nvmm.c", "driver/x86/nvmm_x86.c", "driver/glue.cpp"]
    assert jam.sources["nvmm_x86.c"].sys_hdrs == ["compat", "driver"]
    assert jam.sources["nvmm.c"].defines == ["_KERNEL"]
    assert jam.sources["glue.cpp"].sys_hdrs == ["/haiku/headers/private/kernel"]
    assert jam.sources["glue.cpp"].cxxflags == ["-Werror"] and jam.sources["glue.cpp"].defines == []


@pytest.mark.parametrize("bad, message, line", [
    ("Frobnicate nvmm ;\n", "'Frobnicate' is not a rule this reader knows", 15),
    ("KernelAddon other : missing.c ;\n", "source 'missing.c' is in no SEARCH_SOURCE directory", 15),
    ("SourceSysHdrs $(nope) : x ;\n", "$(nope) is not defined", 15),
    ("UseHeaders [ FDirName $(SUBDIR) gone ] ;\n", "is not a directory of the tree", 15),
])
def test_jamfile_errors_name_the_line(tmp_path, bad, message, line):
    tree = _tree(tmp_path, JAMFILE + bad)
    with pytest.raises(PortError) as exc:
        read_jamfile(tree / "Jamfile", tree, JamVars(Path("/haiku"), []))
    assert message in exc.value.one_line()
    assert f"Jamfile:{line}" in exc.value.one_line()
