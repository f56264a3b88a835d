"""The hosted target: build it (``gen.py build --target hosted``) and run upstream's tests against it
(``gen.py e2e --target hosted``).

The hosted tree's ``Makefile`` (template ``build/Makefile.hosted.j2``) builds, with clang,
AddressSanitizer and UBSan: ``libnvmm_hosted.a`` (upstream's frontend, the bridge with the fake
backend, the glue: the "kernel" of a process), libnvmm with its system calls routed to that
in-process device, and upstream's test programs linked with both.  Like every build it runs in the
object directory ``<out>.obj/``; a second build compiles nothing and says so.

Running: each test program runs as it would on a kernel target, but needs no kernel, no module and
no emulator.  A program passes when it exits 0 with no sanitizer report; each test case's line
("Test 'X' passed" / "failed") is reported.  Which cases need real hardware is the fake CPU's to
say (shim/hosted/glue/nvmm_hosted_cpu.c lists what it does not model): those are run and reported
as ``needs hardware`` when they stop on an exit the fake CPU returns for what it does not model,
never counted as passed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import ui
from ..analysis.model import Surface
from ..errors import PortError
from ..project import Project
from ..targets.generate import render_tree
from ..targets.spec import TargetSpec
from ..targets.writer import WriteReport, write_tree
from .build import _WARNING, _make, _rel
from .diagnostics import build_failure
from .objdir import mirror_tree, objdir_of

CLANG = "clang"
_COMPILED = re.compile(r"\s-c\s+-o\s+(\S+\.o)\s", re.M)
_SANITIZER = re.compile(r"^(?:==\d+==ERROR: \w+Sanitizer|.*runtime error: )", re.M)


@dataclass
class HostedBuilt:
    spec: TargetSpec
    out: Path
    objdir: Path
    library: Path                   # libnvmm_hosted.a
    libnvmm: Path
    programs: dict[str, Path] = field(default_factory=dict)
    compiled: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    rendered: WriteReport = field(default_factory=WriteReport)
    log: Path | None = None
    seconds: float = 0.0


def check_compiler() -> None:
    if shutil.which(CLANG) is None:
        raise PortError("the hosted target builds with clang, which is not installed", None,
                        "run gen.py setup --for test")


def build_hosted(project: Project, spec: TargetSpec, surface: Surface, cache: Path, out: Path, flatten: bool,
                 jobs: int, progress: ui.Progress = ui.SILENT) -> HostedBuilt:
    """Render the tree if stale and build it with its Makefile in the object directory."""
    check_compiler()
    t0 = time.monotonic()
    tree = render_tree(project, spec, surface, cache, flatten)
    report = write_tree(tree, out)
    objdir = objdir_of(out)
    mirror_tree(tree, objdir)
    log = objdir / "build.log"
    cmd = ["make", "-C", str(objdir), f"-j{jobs}", f"CC={CLANG}"]

    def step(line: str) -> str | None:
        m = _COMPILED.search(line)
        return f"CC {_rel(m.group(1), objdir)}" if m else None
    with progress.task("make the hosted library, libnvmm and the tests") as update:
        returncode, text = _make(cmd, log, step, update)
    if returncode != 0:
        raise build_failure(f"the hosted build failed (make exit {returncode})", text, log, objdir)
    built = HostedBuilt(spec, out, objdir, objdir / "libnvmm_hosted.a", objdir / "libnvmm" / "libnvmm.a",
                        log=log, rendered=report)
    built.compiled = sorted({_rel(m.group(1), objdir) for m in _COMPILED.finditer(text)})
    for m in _WARNING.finditer(text):
        built.warnings.setdefault(_rel(m.group(1), objdir), []).append(f"{m.group(2)}: {m.group(3)}")
    mk = (objdir / "Makefile").read_text()
    programs = re.search(r"^PROGRAMS := (.*)$", mk, re.M)
    for rel in (programs.group(1).split() if programs else []):
        exe = objdir / rel
        if not exe.is_file():
            raise PortError(f"the hosted build produced no {rel}", log, "check the Makefile and the log")
        built.programs[exe.name] = exe
    for p in (built.library, built.libnvmm):
        if not p.is_file():
            raise PortError(f"the hosted build produced no {p.name}", log, "check the Makefile and the log")
    built.seconds = time.monotonic() - t0
    return built


# ---------------------------------------------------------------------------
# Running upstream's tests

_CASE = re.compile(r"^Test '(.+?)' (passed|failed)", re.M)
_INVALID = re.compile(r"^Invalid(?: VMEXIT: (0x[0-9a-f]+))?!?$", re.M)


@dataclass
class CaseResult:
    name: str
    status: str         # passed | failed | needs hardware
    detail: str = ""


@dataclass
class ProgramRun:
    name: str
    returncode: int
    seconds: float
    cases: list[CaseResult] = field(default_factory=list)
    sanitizer: str = ""     # the first sanitizer report line, if any
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.sanitizer and all(c.status == "passed" for c in self.cases)


def run_program(exe: Path, timeout: float = 120.0) -> ProgramRun:
    t0 = time.monotonic()
    try:
        proc = subprocess.run([str(exe)], capture_output=True, text=True, errors="replace", timeout=timeout,
                              env={"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                                   "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return ProgramRun(exe.name, -1, timeout, output=out + f"\n(timed out after {timeout:.0f} s)")
    run = ProgramRun(exe.name, proc.returncode, time.monotonic() - t0, output=proc.stdout + proc.stderr)
    for m in _CASE.finditer(proc.stdout):
        run.cases.append(CaseResult(m.group(1), m.group(2)))
    if m := _SANITIZER.search(proc.stderr):
        run.sanitizer = proc.stderr[m.start():].splitlines()[0].strip()
    return run
