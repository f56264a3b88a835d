"""The hosted target: build it (``gen.py build --target hosted``) and run upstream's tests against it
(``gen.py e2e --target hosted``).

The hosted tree's ``Makefile`` (template ``build/Makefile.hosted.j2``) builds, with clang,
AddressSanitizer and UBSan: ``libnvmm_hosted.a`` (upstream's frontend, the bridge with the fake
backend, the glue: the "kernel" of a process), libnvmm with its system calls routed to that
in-process device, and upstream's test programs linked with both.  Like every build it runs in the
object directory ``<out>.obj/``; a second build compiles nothing and says so.

Running (``gen.py e2e --target hosted``): upstream's test programs, unmodified, and the target's
own checks (``shim/hosted/checks/hosted_checks.c``: owners, scripted exits, nested faults, signals,
state and events, teardown) run as processes; no kernel, module or emulator.  A program passes when
it exits 0 with no sanitizer report (LeakSanitizer included: at exit the process's descriptors close
and the frontend must have freed everything) and every case line says passed.  The guest code of
upstream's tests runs on the fake CPU; what only hardware can show -- VM entry and exit, the
backends, EPT/NPT and their invalidation, FPU and MSR switching -- is the emulated machine's
(``gen.py e2e --target linux``).
"""

from __future__ import annotations

import json
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
from .build import _MAKE_COMPILED, _make, _rel, made_programs, make_report
from .diagnostics import build_failure
from .objdir import mirror_tree, objdir_of

CLANG = "clang"
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
        m = _MAKE_COMPILED.search(line)
        return f"CC {_rel(m.group(1), objdir)}" if m else None
    with progress.task("make the hosted library, libnvmm and the tests") as update:
        returncode, text = _make(cmd, log, step, update)
    if returncode != 0:
        raise build_failure(f"the hosted build failed (make exit {returncode})", text, log, objdir)
    built = HostedBuilt(spec, out, objdir, objdir / "libnvmm_hosted.a", objdir / "libnvmm" / "libnvmm.a",
                        log=log, rendered=report)
    built.compiled, built.warnings = make_report(text, objdir)
    built.programs = {exe.name: exe for exe in made_programs(objdir, "Makefile", log)}
    for p in (built.library, built.libnvmm):
        if not p.is_file():
            raise PortError(f"the hosted build produced no {p.name}", log, "check the Makefile and the log")
    built.seconds = time.monotonic() - t0
    return built


# ---------------------------------------------------------------------------
# Running upstream's tests

_CASE = re.compile(r"^Test '(.+?)' (passed|failed)", re.M)


@dataclass
class CaseResult:
    name: str
    status: str         # passed | failed
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


def run_program(exe: Path, suppressions: Path, timeout: float = 120.0) -> ProgramRun:
    """Run one program of the hosted build; its sanitizers' reports fail it."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run([str(exe)], capture_output=True, text=True, errors="replace", timeout=timeout,
                              env={"PATH": "/usr/bin:/bin", "ASAN_OPTIONS": "detect_leaks=1",
                                   "LSAN_OPTIONS": f"suppressions={suppressions}:print_suppressions=0",
                                   "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    except subprocess.TimeoutExpired as exc:
        raw: bytes | str | None = exc.stdout
        out = raw.decode(errors="replace") if isinstance(raw, bytes) else (raw or "")
        return ProgramRun(exe.name, -1, timeout, output=out + f"\n(timed out after {timeout:.0f} s)")
    run = ProgramRun(exe.name, proc.returncode, time.monotonic() - t0, output=proc.stdout + proc.stderr)
    for m in _CASE.finditer(proc.stdout):
        run.cases.append(CaseResult(m.group(1), m.group(2)))
    for line in proc.stdout.splitlines():
        if line.startswith("FAIL "):
            name, _, why = line[5:].partition(": ")
            run.cases.append(CaseResult(name, "failed", why))
    report = _SANITIZER.search(proc.stderr)
    if report:
        run.sanitizer = proc.stderr[report.start():].splitlines()[0].strip()
    return run


CHECKS = "hosted_checks"        # shim/<target>/checks/hosted_checks.c: our checks of the frontend
# libnvmm and upstream's test programs never free what they allocate before exiting (a process's exit
# does): leaks there are not NVMM's.  The frontend, the backend and the glue are checked.
LSAN_SUPPRESSIONS = "leak:libnvmm/libnvmm.c\nleak:tests/h_\n"


def build_checks(project: Project, built: HostedBuilt, dest: Path) -> Path | None:
    """Compile the target's own check program against the hosted build (None if it has none)."""
    src = built.spec.dir / "checks" / f"{CHECKS}.c"
    if not src.is_file():
        return None
    o = built.objdir
    exe = dest / CHECKS
    cmd = [CLANG, "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           f"-D{built.spec.macro}", f"-I{o / 'compat-libnvmm'}", f"-I{o / 'libnvmm'}", f"-I{o / 'driver'}",
           "-Wall", "-Werror", "-o", str(exe), str(src), str(built.libnvmm), str(built.library), "-lpthread"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PortError(f"{src.name} did not compile", src, "fix the errors below",
                        proc.stderr.strip().splitlines()[-10:])
    return exe


@dataclass
class HostedRun:
    programs: list[ProgramRun]
    seconds: float
    final: Path

    @property
    def passed(self) -> bool:
        return bool(self.programs) and all(p.passed for p in self.programs)

    def to_json(self) -> dict[str, object]:
        return {"passed": self.passed, "seconds": round(self.seconds, 2),
                "programs": [{"name": p.name, "passed": p.passed, "returncode": p.returncode,
                              "seconds": round(p.seconds, 2), "sanitizer": p.sanitizer,
                              "cases": [{"name": c.name, "status": c.status} for c in p.cases]}
                             for p in self.programs]}


def run_hosted_e2e(project: Project, target: str, echo: Callable[[str], None], upstream: str | None = None,
                   jobs: int = 2, progress: ui.Progress = ui.SILENT) -> HostedRun:
    """Build the hosted target if stale and run upstream's test programs and our checks in-process."""
    from .build import build_port
    t0 = time.monotonic()
    built = build_port(project, target, upstream, None, None, False, jobs, progress=progress)
    if not isinstance(built, HostedBuilt):
        raise PortError(f"target {target} is not a hosted target", None, "use gen.py e2e --cpu ... for kernel targets")
    final = project.build_dir / "e2e" / built.spec.name
    final.mkdir(parents=True, exist_ok=True)
    supp = final / "lsan.supp"
    supp.write_text(LSAN_SUPPRESSIONS)
    programs = [built.programs[n] for n in sorted(built.programs)]
    checks = build_checks(project, built, final)
    if checks is not None:
        programs.append(checks)
    runs = []
    for exe in programs:
        run = run_program(exe, supp)
        runs.append(run)
        (final / f"{exe.name}.log").write_text(run.output)
        verdict = "PASS" if run.passed else "FAIL"
        ok = sum(c.status == "passed" for c in run.cases)
        why = run.sanitizer or ("" if run.passed else _failure_line(run))
        echo(f"  {verdict:<5} {exe.name:<14} {run.seconds:5.2f}s  {ok}/{len(run.cases)} case(s) passed"
             + (f"; {why}" if why else ""))
    res = HostedRun(runs, time.monotonic() - t0, final)
    (final / "result.json").write_text(json.dumps(res.to_json(), indent=1) + "\n")
    return res


def _failure_line(run: ProgramRun) -> str:
    for line in run.output.splitlines():
        if line.startswith("FAIL") or "failed" in line or line.startswith("Invalid"):
            return line.strip()
    return f"exit status {run.returncode}"
