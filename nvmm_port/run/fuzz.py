"""``gen.py fuzz``: coverage-guided fuzzing (libFuzzer, with AddressSanitizer and UBSan) of a port.

A *harness* is one C file of ours under ``shim/common/fuzz/`` (``fuzz_NAME.c``) with a seed
corpus we wrote under ``shim/common/fuzz/corpus/NAME/``.  It is compiled with Debian's clang
together with the sources of the port tree it exercises -- built first with ``gen.py build`` --
twice: once with ``-fsanitize=fuzzer,address,undefined`` to fuzz, once with clang's source-based
coverage to measure what the corpus reaches.  Everything it writes lives in ``build/fuzz/NAME/``:
the two programs, the working corpus (the seeds plus what the fuzzer found interesting), and
``findings/`` with every input that crashed, each reproducible with ``PROGRAM FILE``.

Harnesses:
  assist   libnvmm's x86 instruction emulator, nvmm_assist_mem() and nvmm_assist_io(), on
           guest-controlled state, instruction bytes, page tables and memory; libnvmm's ioctls
           are answered by the harness itself, so no driver is needed (any target with libnvmm)
  ioctl    NVMM's ioctl interface: programs of ioctls with fuzzed commands, sizes and contents from
           two owners and root, scripted exits, signals, closes and unmaps, against upstream's
           frontend on the hosted target (its fake backend, its glue), checked for leaks after each
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
from ..errors import PortError
from ..project import Project
from .build import build_port
from .haiku import AddonBuilt
from .hosted import HostedBuilt
from .sdk import install_sdk

CLANG = "clang"
LLVM_TOOLS = ("llvm-profdata-14", "llvm-cov-14")     # Debian 12's clang is 14: its llvm-14 has them


# What a port-tree source is compiled as: libnvmm (the C library, the userland compat tree), upstream's
# kernel world (-D_KERNEL, -nostdinc, the compat tree), or the hosted glue (the C library).
LIBNVMM, KERNEL, GLUE = "libnvmm", "kernel", "glue"


@dataclass(frozen=True)
class Harness:
    name: str
    sources: tuple[tuple[str, str], ...]    # (port-tree source, its world), relative to the tree
    covered: tuple[str, ...]                # port-tree files whose line coverage is reported
    defines: tuple[str, ...] = ()           # for its libnvmm sources only
    hosted: bool = False                    # needs the hosted target's frontend and glue


HARNESSES = {
    # libnvmm.c includes libnvmm_x86.c: one translation unit, as upstream builds it
    "assist": Harness("assist", (("libnvmm/libnvmm.c", LIBNVMM),), ("libnvmm/libnvmm_x86.c", "libnvmm/libnvmm.c"),
                      ("-Dopen=nvmm_fuzz_open", "-Dioctl=nvmm_fuzz_ioctl")),
    "ioctl": Harness("ioctl", (("driver/nvmm.c", KERNEL), ("driver/x86/nvmm_x86.c", KERNEL),
                               ("driver/nvmm_hosted_bridge.c", KERNEL), ("driver/nvmm_hosted_backend.c", KERNEL),
                               ("driver/nvmm_hosted_cpu.c", KERNEL), ("driver/nvmm_hosted.c", GLUE)),
                     ("driver/nvmm.c", "driver/nvmm_hosted_backend.c"), hosted=True),
}


@dataclass
class Coverage:
    lines: dict[str, tuple[int, int]] = field(default_factory=dict)    # file -> (covered, total)

    def percent(self, name: str) -> float:
        covered, total = self.lines[name]
        return 100.0 * covered / total if total else 0.0


@dataclass
class FuzzRun:
    harness: str
    program: Path
    executions: int = 0
    exec_per_s: int = 0
    edges: int = 0
    corpus: int = 0
    seconds: float = 0.0
    findings: list[Path] = field(default_factory=list)
    coverage: Coverage | None = None
    log: Path | None = None

    def to_json(self) -> dict[str, object]:
        return {"harness": self.harness, "executions": self.executions, "exec_per_s": self.exec_per_s,
                "edges": self.edges, "corpus": self.corpus, "seconds": round(self.seconds, 1),
                "findings": [str(p) for p in self.findings],
                "lines": {k: {"covered": c, "total": t} for k, (c, t) in
                          (self.coverage.lines.items() if self.coverage else [])}}


def check_tools() -> None:
    missing = [t for t in (CLANG, *LLVM_TOOLS) if shutil.which(t) is None]
    if missing:
        raise PortError(f"fuzzing needs {', '.join(missing)}", None, "run gen.py setup --for test")


def _compile(cmd: list[str], what: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if "libclang_rt.fuzzer" in proc.stderr or "cannot find" in proc.stderr and "clang_rt" in proc.stderr:
            raise PortError("clang has no libFuzzer/sanitizer runtime", None,
                            "run gen.py setup --for test (it installs libclang-rt-14-dev)")
        raise PortError(f"{what.name} did not compile", what, "fix the errors below",
                        proc.stderr.strip().splitlines()[-10:])


def _world_flags(harness: Harness, world: str, objdir: Path, macro: str) -> list[str]:
    if world == KERNEL:
        return ["-D_KERNEL", f"-D{macro}", "-nostdinc", f"-I{objdir / 'compat'}", f"-I{objdir / 'driver'}",
                f"-I{objdir / 'driver' / 'x86'}"]
    if world == GLUE:
        return [f"-D{macro}", f"-I{objdir / 'driver'}"]
    return [f"-D{macro}", f"-I{objdir / 'compat-libnvmm'}", f"-I{objdir / 'libnvmm'}", f"-I{objdir / 'driver'}",
            *harness.defines]


def build_harness(project: Project, harness: Harness, objdir: Path, dest: Path, kind: str,
                  extra: tuple[str, ...] = (), macro: str = "NVMM_HOSTED") -> Path:
    """Compile the harness and its port-tree sources: ``kind`` fuzz (sanitizers) or cov
    (source-based coverage).  Returns the program."""
    flags = {"fuzz": ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined"],
             "cov": ["-g", "-O0", "-fsanitize=fuzzer", "-fprofile-instr-generate", "-fcoverage-mapping"]}[kind]
    src = project.shim_dir / "common" / "fuzz" / f"fuzz_{harness.name}.c"
    if not src.is_file():
        raise PortError(f"no harness source for {harness.name}", src, "restore it from git")
    sdk = install_sdk(objdir, dest / "sdk", defines=(f"-D{macro}",))
    inc = sdk.prefix / "include" / "nvmm"
    objs = dest / f"obj-{kind}"
    objs.mkdir(parents=True, exist_ok=True)
    out = []
    for rel, world in harness.sources:
        o = objs / (Path(rel).stem + ".o")
        _compile([CLANG, *flags, "-c", *_world_flags(harness, world, objdir, macro), "-o", str(o),
                  str(objdir / rel)], objdir / rel)
        out.append(o)
    o = objs / f"fuzz_{harness.name}.o"
    hosted_api = [f"-I{objdir / 'driver'}"] if harness.hosted else []
    _compile([CLANG, *flags, "-Wall", "-Wextra", "-Werror", *extra, "-c", f"-D{macro}", f"-I{inc / 'libnvmm'}",
              f"-I{inc / 'compat'}", f"-I{inc / 'driver'}", *hosted_api, "-o", str(o), str(src)], src)
    program = dest / (f"fuzz_{harness.name}" + ("" if kind == "fuzz" else "_cov"))
    _compile([CLANG, *flags, "-o", str(program), *map(str, out), str(o)], src)
    return program


_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: \d+ corp: (\d+)/")
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


def seeds(project: Project, harness: str) -> Path:
    d = project.shim_dir / "common" / "fuzz" / "corpus" / harness
    if not d.is_dir() or not any(d.iterdir()):
        raise PortError(f"no seed corpus for {harness}", d, "restore it from git")
    return d


def run_harness(program: Path, corpus: Path, seed_dir: Path, findings: Path, runs: int | None,
                seconds: float | None, log: Path, echo: Callable[[str], None]) -> FuzzRun:
    """Fuzz from the seeds and the working corpus; a crash stops the run and is kept in findings/."""
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    before = set(findings.iterdir())
    cmd = [str(program), "-print_final_stats=1", f"-artifact_prefix={findings}/", str(corpus), str(seed_dir)]
    cmd += [f"-runs={runs}"] if runs is not None else []
    cmd += [f"-max_total_time={max(1, int(seconds))}"] if seconds is not None else []
    res = FuzzRun(program.name.removeprefix("fuzz_"), program, log=log)
    t0 = time.monotonic()
    last = t0
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            if m := _STATUS.match(line):
                res.executions, res.edges, res.corpus = int(m.group(1)), int(m.group(2)), int(m.group(3))
                if time.monotonic() - last > 10:
                    last = time.monotonic()
                    echo(f"  {res.executions:,} executions, {res.edges} edges, corpus {res.corpus}")
            elif m := _STAT.match(line):
                if m.group(1) == "number_of_executed_units":
                    res.executions = int(m.group(2))
                elif m.group(1) == "average_exec_per_sec":
                    res.exec_per_s = int(m.group(2))
        proc.wait()
    res.seconds = time.monotonic() - t0
    res.findings = sorted(set(findings.iterdir()) - before)
    if proc.returncode != 0 and not res.findings:
        raise PortError(f"the fuzzer stopped (exit {proc.returncode}) without a finding", log, "read its log")
    if not res.exec_per_s and res.seconds > 0:
        res.exec_per_s = int(res.executions / res.seconds)
    return res


def measure_coverage(program: Path, inputs: list[Path], covered: tuple[str, ...], objdir: Path,
                     work: Path) -> Coverage:
    """Line coverage of ``covered`` (port-tree files) by running the coverage build over ``inputs``."""
    raw = work / "cov.profraw"
    data = work / "cov.profdata"
    raw.unlink(missing_ok=True)
    proc = subprocess.run([str(program), "-runs=0", *map(str, inputs)], capture_output=True, text=True,
                          env={"LLVM_PROFILE_FILE": str(raw), "PATH": "/usr/bin:/bin"})
    if proc.returncode != 0 or not raw.is_file():
        raise PortError("the coverage build did not run the corpus", program, "rebuild it; its output is below",
                        proc.stderr.strip().splitlines()[-5:])
    subprocess.run([LLVM_TOOLS[0], "merge", "-sparse", str(raw), "-o", str(data)], check=True)
    report = subprocess.run([LLVM_TOOLS[1], "export", "-summary-only", str(program), f"-instr-profile={data}"],
                            capture_output=True, text=True, check=True).stdout
    cov = Coverage()
    for entry in json.loads(report)["data"][0]["files"]:
        name = Path(entry["filename"]).resolve()
        for rel in covered:
            if name == (objdir / rel).resolve():
                lines = entry["summary"]["lines"]
                cov.lines[rel] = (int(lines["covered"]), int(lines["count"]))
    return cov


def fuzz(project: Project, target: str, harness_name: str, runs: int | None, seconds: float | None,
         echo: Callable[[str], None], progress: ui.Progress = ui.SILENT) -> FuzzRun:
    """Build TARGET's port (if stale), then the harness, fuzz it and measure the corpus's coverage."""
    if harness_name not in HARNESSES:
        raise PortError(f"no harness {harness_name}", None, f"use --harness {', '.join(HARNESSES)}")
    if runs is None and seconds is None:
        runs = 100_000
    check_tools()
    harness = HARNESSES[harness_name]
    built = build_port(project, target, None, None, None, False, 2, progress=progress)
    if isinstance(built, AddonBuilt):
        raise PortError(f"target {built.spec.name} is cross-compiled for Haiku: nothing of it runs here", None,
                        "fuzz --target hosted")
    if harness.hosted and not isinstance(built, HostedBuilt):
        raise PortError(f"the {harness.name} harness runs upstream's frontend in a process: target "
                        f"{built.spec.name} is a kernel's", None, f"use --target hosted --harness {harness.name}")
    if not isinstance(built, HostedBuilt) and built.userland is None:
        raise PortError(f"target {built.spec.name} builds no libnvmm", built.spec.toml_path,
                        "set [build] userland = true")
    dest = project.build_dir / "fuzz" / harness.name
    dest.mkdir(parents=True, exist_ok=True)
    echo(f"building fuzz_{harness.name} (libFuzzer, ASan, UBSan) against {built.objdir}")
    program = build_harness(project, harness, built.objdir, dest, "fuzz", macro=built.spec.macro)
    cov_program = build_harness(project, harness, built.objdir, dest, "cov", macro=built.spec.macro)
    seed_dir = seeds(project, harness.name)
    what = f"{runs:,} executions" if runs is not None else f"{seconds:.0f} s"
    echo(f"fuzzing {harness.name} for {what} from {len(list(seed_dir.iterdir()))} seed(s)")
    res = run_harness(program, dest / "corpus", seed_dir, dest / "findings", runs, seconds, dest / "fuzz.log", echo)
    inputs = [dest / "corpus", seed_dir]
    res.coverage = measure_coverage(cov_program, inputs, harness.covered, built.objdir, dest)
    (dest / "result.json").write_text(json.dumps(res.to_json(), indent=1) + "\n")
    return res
