"""``gen.py build``: render the port tree if stale, then build it with the target's build system.

Kbuild targets build the kernel module against a kernel build directory (default
``/lib/modules/$(uname -r)/build``) and are then checked: modpost must report no undefined
symbol, and the module's ``.modinfo`` (read from the ELF file) is reported.  Userland parts
(libnvmm and upstream's test programs) are built by the make rules the target's build file
template provides.

The build runs in the object directory ``<out>.obj/`` (objdir.py), a mirror of the rendered tree
where only changed files are copied: objects, the module, libnvmm.a, the programs and the logs
(``build.log``, ``userland.log``) live there, so rendering never touches them and a second build
compiles nothing (it says so, from make's output).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ui
from ..analysis.model import Surface
from ..errors import PortError
from ..project import Project
from ..targets.generate import prepare, render_tree
from ..targets.spec import TargetSpec, check_spec
from ..targets.writer import WriteReport, write_tree
from .diagnostics import build_failure

if TYPE_CHECKING:
    from .haiku import AddonBuilt
    from .hosted import HostedBuilt
from .objdir import mirror_tree, objdir_of

_UNDEFINED = re.compile(r'modpost: "([^"]+)" \[([^\]]+)\] undefined!')
_WARNING = re.compile(r"^(?:\./)?([^\s:]+):(\d+):(?:\d+:)? warning: (.*)$", re.M)
_OBJTOOL = re.compile(r"^(?:\./)?([^\s:]+\.o): warning: objtool: (.*)$", re.M)
_KBUILD_COMPILED = re.compile(r"^\s+(?:CC|AS) \[M\]\s+(\S+\.o)$", re.M)     # Kbuild's quiet lines
_MAKE_COMPILED = re.compile(r"\s-c\s+-o\s+(\S+\.o)\s", re.M)              # Makefile.userland's %.o rules
_KBUILD_STEP = re.compile(r"^\s+((?:CC|AS|LD|AR) \[M\]|CC|AS|LD|AR|MODPOST|BTF \[M\])\s+(\S+)")   # progress lines


@dataclass
class BuildResult:
    module: Path | None = None
    undefined: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)    # file -> messages
    modinfo: dict[str, list[str]] = field(default_factory=dict)
    log: Path | None = None
    compiled: list[str] = field(default_factory=list)     # objects this run compiled (relative)


def read_modinfo(ko: Path) -> dict[str, list[str]]:
    """key -> values of a kernel module's .modinfo section (ELF64 little-endian)."""
    data = ko.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise PortError("not an ELF64 little-endian file", ko, "build the module again")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, stroff, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] != b".modinfo":
            continue
        for item in data[off:off + size].split(b"\0"):
            if b"=" in item:
                k, _, v = item.decode(errors="replace").partition("=")
                info.setdefault(k, []).append(v)
    return info


def default_kdir() -> Path:
    """The running kernel's build dir; else the headers of Debian's default release (what
    linux-headers-amd64 depends on), else the newest Debian linux-headers-*-amd64 installed."""
    from .kernels import default_release
    running = _running_kdir()
    if (running / "Makefile").is_file():
        return running
    default = default_release()
    if default is not None and (default.kdir / "Makefile").is_file():
        return default.kdir
    debian = sorted(Path("/usr/src").glob("linux-headers-*-amd64"), key=_version_key)
    if debian:
        return debian[-1]
    return running


def _running_kdir() -> Path:
    return Path("/lib/modules") / os.uname().release / "build"


def _version_key(p: Path) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", p.name)]


def kbuild(out: Path, kdir: Path, module: str, jobs: int, progress: ui.Progress = ui.SILENT) -> BuildResult:
    """Build the Kbuild module in ``out`` against ``kdir``; make's output goes to ``out/build.log`` as it
    runs, and each Kbuild step (``CC [M]  file.o``, ``LD [M]``, ``MODPOST``) to ``progress``."""
    if not (kdir / "Makefile").is_file():
        raise PortError("no kernel build directory", kdir,
                        "install the kernel headers (Debian: linux-headers-amd64) or pass --kdir DIR")
    log = out / "build.log"
    cmd = ["make", "-C", str(kdir), f"M={out}", f"-j{jobs}", "modules"]

    def step(line: str) -> str | None:
        m = _KBUILD_STEP.match(line)
        return f"{' '.join(m.group(1).split())} {_rel(m.group(2), out)}" if m else None
    with progress.task(f"make {module}.ko") as update:
        returncode, text = _make(cmd, log, step, update)
    res = BuildResult(log=log)
    res.compiled = sorted({_rel(m.group(1), out) for m in _KBUILD_COMPILED.finditer(text)
                           if not m.group(1).endswith(".mod.o")})
    res.undefined = sorted({m.group(1) for m in _UNDEFINED.finditer(text)})
    for m in _WARNING.finditer(text):
        res.warnings.setdefault(_rel(m.group(1), out), []).append(f"{m.group(2)}: {m.group(3)}")
    for m in _OBJTOOL.finditer(text):
        res.warnings.setdefault(_rel(m.group(1), out), []).append(f"objtool: {m.group(2)}")
    if returncode != 0 and not res.undefined:
        raise build_failure(f"the kernel module did not build (make exit {returncode})", text, log, out)
    ko = out / f"{module}.ko"
    if ko.is_file():
        res.module = ko
        res.modinfo = read_modinfo(ko)
    return res


def _make(cmd: list[str], log: Path, step: Callable[[str], str | None], update: ui.Update) -> tuple[int, str]:
    """Run make with its output (stdout and stderr, interleaved as make wrote them) streamed into ``log``
    whole and each line ``step`` recognises into ``update``; return make's exit status and its output."""
    lines: list[str] = []
    with open(log, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                f.write(line)
                lines.append(line)
                detail = step(line)
                if detail:
                    update(detail)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    return returncode, "".join(lines)


def _rel(path: str, out: Path) -> str:
    try:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return path


@dataclass
class UserlandResult:
    programs: dict[str, Path] = field(default_factory=dict)     # name -> static executable
    library: Path | None = None
    warnings: dict[str, list[str]] = field(default_factory=dict)
    log: Path | None = None
    compiled: list[str] = field(default_factory=list)     # objects this run compiled (relative)


def is_static_elf(path: Path) -> bool:
    """An ELF executable (64- or 32-bit) with no program interpreter (PT_INTERP) and so no dynamic
    loader."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2):
        return False
    if data[4] == 2:
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    else:
        phoff, = struct.unpack_from("<I", data, 0x1C)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def userland(out: Path, jobs: int, cc: str | None = None, progress: ui.Progress = ui.SILENT) -> UserlandResult:
    """Build libnvmm and upstream's test programs with the tree's Makefile.userland (each object
    compiled is a ``progress`` update; the whole output is ``out/userland.log``)."""
    log = out / "userland.log"
    cmd = ["make", "-C", str(out), "-f", "Makefile.userland", f"-j{jobs}"] + ([f"CC={cc}"] if cc else [])

    def step(line: str) -> str | None:
        m = _MAKE_COMPILED.search(line)
        return f"CC {_rel(m.group(1), out)}" if m else None
    with progress.task("make libnvmm and the tests") as update:
        returncode, text = _make(cmd, log, step, update)
    res = UserlandResult(log=log)
    res.compiled, res.warnings = make_report(text, out)
    if returncode != 0:
        raise build_failure(f"libnvmm or the tests did not build (make exit {returncode})", text, log, out)
    for exe in made_programs(out, "Makefile.userland", log):
        if not is_static_elf(exe):
            raise PortError(f"{exe.relative_to(out)} is not a static executable", log, "link it with -static")
        res.programs[exe.name] = exe
    lib = out / "libnvmm" / "libnvmm.a"
    res.library = lib if lib.is_file() else None
    return res


def make_report(text: str, out: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The objects a make run compiled (from its ``cc ... -c -o X.o`` lines) and its compiler warnings
    by file, relative to ``out``."""
    compiled = sorted({_rel(m.group(1), out) for m in _MAKE_COMPILED.finditer(text)})
    warnings: dict[str, list[str]] = {}
    for m in _WARNING.finditer(text):
        warnings.setdefault(_rel(m.group(1), out), []).append(f"{m.group(2)}: {m.group(3)}")
    return compiled, warnings


def made_programs(out: Path, makefile: str, log: Path) -> list[Path]:
    """The programs a make file's ``PROGRAMS :=`` line names, each checked to exist."""
    programs = re.search(r"^PROGRAMS := (.*)$", (out / makefile).read_text(), re.M)
    found = []
    for rel in (programs.group(1).split() if programs else []):
        if not (out / rel).is_file():
            raise PortError(f"the build produced no {rel}", log, f"check {makefile} and the log")
        found.append(out / rel)
    return found


@dataclass
class Built:
    spec: TargetSpec
    out: Path                       # the rendered tree
    kdir: Path
    module: Path                    # in objdir
    modinfo: dict[str, list[str]]
    userland: UserlandResult | None
    objdir: Path                    # where it was built: a mirror of out with every build product
    compiled: list[str] = field(default_factory=list)     # kernel objects this run compiled
    rendered: WriteReport = field(default_factory=WriteReport)    # what rendering wrote into out
    warnings: dict[str, list[str]] = field(default_factory=dict)  # the module's compiler warnings, by file
    notes: list[str] = field(default_factory=list)        # what the caller should know (the kdir chosen)


@contextlib.contextmanager
def tree_lock(out: Path) -> Iterator[None]:
    """Exclusive use of a port tree: two runs (e2e --cpu vmx and svm side by side) must not build
    or read it while the other rebuilds it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.build-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_target(project: Project, target: str, upstream: str | None, out: str | Path | None,
                 kdir: str | Path | None, flatten: bool, jobs: int, lock: bool = True,
                 progress: ui.Progress = ui.SILENT) -> Built:
    """Render TARGET's tree if stale, build its module (and userland), check and return them.

    With ``lock=False`` the caller holds :func:`tree_lock` of the output directory."""
    spec, surface, cache = prepare(project, target, upstream, progress)
    check_spec(spec, surface)
    out = Path(out) if out else project.build_dir / spec.name
    if not lock:
        return _build_locked(project, spec, surface, cache, out, kdir, flatten, jobs, progress)
    with tree_lock(out):
        return _build_locked(project, spec, surface, cache, out, kdir, flatten, jobs, progress)


def build_port(project: Project, target: str, upstream: str | None, out: str | Path | None,
               kdir: str | Path | None, flatten: bool, jobs: int,
               progress: ui.Progress = ui.SILENT) -> Built | AddonBuilt | HostedBuilt:
    """``gen.py build``: TARGET built with its spec's build system: Kbuild (a Linux module, its
    userland) or Jam (a Haiku add-on and its userland, compiled and checked against Haiku's tree)."""
    spec, surface, cache = prepare(project, target, upstream, progress)
    check_spec(spec, surface)
    where = Path(out).resolve() if out else project.build_dir / spec.name     # Kbuild M= wants it absolute
    with tree_lock(where):
        if spec.build.system == "jam":
            from .haiku import build_addon
            if kdir:
                raise PortError("--kdir is for Kbuild targets", None,
                                f"{spec.name} builds against its [sysroot]; drop --kdir")
            return build_addon(project, spec, surface, cache, where, flatten, jobs, progress)
        if spec.build.system == "hosted":
            from .hosted import build_hosted
            if kdir:
                raise PortError("--kdir is for Kbuild targets", None, f"{spec.name} builds a process; drop --kdir")
            return build_hosted(project, spec, surface, cache, where, flatten, jobs, progress)
        return _build_locked(project, spec, surface, cache, where, kdir, flatten, jobs, progress)


def _build_locked(project: Project, spec: TargetSpec, surface: Surface, cache: Path, out: Path,
                  kdir: str | Path | None, flatten: bool, jobs: int, progress: ui.Progress) -> Built:
    tree = render_tree(project, spec, surface, cache, flatten)
    report = write_tree(tree, out)
    system = spec.build.system
    if system != "kbuild":
        raise PortError(f"gen.py build knows Kbuild and Jam targets; {spec.name} uses '{system}'", spec.toml_path,
                        "build the rendered tree with that system's own tools")
    notes = []
    if kdir:
        kdir = Path(kdir)
    else:
        kdir = default_kdir()
        if kdir != _running_kdir():
            notes.append(f"note: no headers for the running kernel {os.uname().release}; building against {kdir}")
    module = spec.build.module
    objdir = objdir_of(out)
    mirror_tree(tree, objdir)
    res = kbuild(objdir, kdir, module, jobs, progress)
    if res.undefined:
        raise PortError(f"modpost reports {len(res.undefined)} undefined symbol(s): {', '.join(res.undefined)}",
                        res.log, "provide them in the target's glue, or use what the kernel exports")
    if res.module is None:
        raise PortError(f"the build produced no {module}.ko", res.log, "check the Kbuild file and the log")
    user = userland(objdir, jobs, progress=progress) if spec.build.userland else None
    return Built(spec, out, kdir, res.module, res.modinfo, user, objdir, res.compiled, report, res.warnings, notes)
