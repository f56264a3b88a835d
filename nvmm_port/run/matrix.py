"""``gen.py matrix``: the CI build matrix, runnable here and emitted as a GitHub Actions workflow.

A *cell* is target × kernel × CPU × upstream × client, and runs its steps in order: generate,
build, client (where the cell has one) and e2e where the target can run.  Kbuild targets with
userland (linux) get one cell per kernel of :data:`LINUX_KERNELS` (Debian 12's two lines, generic
and PREEMPT_RT) and per CPU (vmx, svm); targets built against their own OS tree (haiku) one cell at
the tree's pinned revision, which builds both backends and cannot run here.  A Linux target also
gets one cell per CPU with ``client=qemu`` on the default kernel line (6.1): QEMU built against the
port's libnvmm (``gen.py client qemu``) and the e2e run with ``--client qemu`` (a Linux guest
booted with -accel nvmm, 1 and 2 vCPUs).  The upstreams are the synced locks the target's spec fits
(what ``surface`` and ``generate`` accept).

Each step is this tool's own command line run as a child (``gen.py generate|build|e2e``), its output
kept in ``build/matrix/logs/``; a step that fails fails its cell and skips the cell's later steps.
The workflow has one job per cell, each setting up with the same ``gen.py setup`` and running that
one cell with ``gen.py matrix --run --filter ...``, so CI and a local run are the same code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PortError
from ..project import Project

LINUX_KERNELS = ("6.1", "6.1-rt", "6.12", "6.12-rt")
CPUS = ("vmx", "svm")
STEPS = ("generate", "build", "client", "e2e")
KEYS = ("target", "kernel", "cpu", "upstream", "client", "step")
CLIENTS = ("qemu",)
CLIENT_KERNELS = ("6.1",)       # the client cells run on Debian's default line
SMP = 2


@dataclass(frozen=True)
class Cell:
    target: str
    kernel: str             # 6.1, 6.12-rt, ... or haiku@47136e7183 (a target's own tree)
    cpu: str                # vmx, svm, or "-" (built for both, not run)
    upstream: str
    steps: tuple[str, ...]
    client: str = "-"       # qemu, or "-" (the port's own tests only)

    @property
    def id(self) -> str:
        parts = [self.target, self.kernel.replace("@", "-"), self.cpu, self.upstream, self.client]
        return "-".join(p for p in parts if p != "-")

    def matches(self, filters: dict[str, str]) -> bool:
        values = {"target": self.target, "kernel": self.kernel, "cpu": self.cpu, "upstream": self.upstream,
                  "client": self.client}
        return all(values[k] == v for k, v in filters.items() if k != "step")


@dataclass
class StepResult:
    step: str
    status: str             # PASS | FAIL | SKIP
    seconds: float = 0.0
    reason: str = ""
    log: str = ""


@dataclass
class CellResult:
    cell: Cell
    steps: list[StepResult] = field(default_factory=list)

    @property
    def status(self) -> str:
        states = {s.status for s in self.steps}
        return "FAIL" if "FAIL" in states else ("PASS" if "PASS" in states else "SKIP")

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self.cell, k) for k in ("target", "kernel", "cpu", "upstream", "client")},
                "id": self.cell.id,
                "status": self.status, "seconds": round(self.seconds, 1),
                "steps": [{**asdict(s), "seconds": round(s.seconds, 1)} for s in self.steps]}


def parse_filters(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, eq, val = v.partition("=")
        if not eq or key not in KEYS or not val:
            raise PortError(f"--filter {v!r} is not KEY=VALUE with KEY one of {', '.join(KEYS)}", None,
                            "e.g. --filter kernel=6.12-rt --filter cpu=svm")
        out[key] = val
    return out


def cells(project: Project) -> list[Cell]:
    """Every cell: each target under shim/ on each synced upstream its spec fits."""
    from ..analysis.analyze import analyze_project
    from ..targets.spec import load_spec, validate
    out: list[Cell] = []
    locks = sorted(p.name.removesuffix(".lock") for p in (project.root / "upstream").glob("*.lock"))
    specs = sorted(p.parent for p in project.shim_dir.glob("*/target.toml"))
    for spec_dir in specs:
        spec = load_spec(spec_dir, defer_errors=True)
        for up in locks:
            if validate(spec, analyze_project(project, up)):
                continue        # the spec does not fit that upstream (drift says why)
            if spec.build.system == "kbuild" and spec.build.userland:
                plain = tuple(s for s in STEPS if s != "client")
                out += [Cell(spec.name, k, c, up, plain) for k in LINUX_KERNELS for c in CPUS]
                out += [Cell(spec.name, k, c, up, STEPS, client) for client in CLIENTS for k in CLIENT_KERNELS
                        for c in CPUS]
            elif spec.build.system == "hosted":
                # a process: no kernel, no emulated CPU; its e2e runs upstream's tests in-process
                out.append(Cell(spec.name, "-", "-", up, ("generate", "build", "e2e")))
            elif spec.sysroot.name:
                out.append(Cell(spec.name, f"{spec.sysroot.name}@{spec.sysroot.ref}", "-", up, ("generate", "build")))
            else:
                out.append(Cell(spec.name, "-", "-", up, ("generate",)))
    return out


def select(all_cells: list[Cell], filters: dict[str, str]) -> list[Cell]:
    chosen = [c for c in all_cells if c.matches(filters)]
    if "step" in filters:
        if filters["step"] not in STEPS:
            raise PortError(f"--filter step={filters['step']}: no such step", None, f"use one of {', '.join(STEPS)}")
        # a step needs the ones before it: run up to it
        upto = STEPS[:STEPS.index(filters["step"]) + 1]
        chosen = [Cell(c.target, c.kernel, c.cpu, c.upstream, tuple(s for s in c.steps if s in upto), c.client)
                  for c in chosen if filters["step"] in c.steps]
    return chosen


def _release(cell: Cell) -> str | None:
    if cell.kernel in LINUX_KERNELS:
        from .kernels import resolve
        return resolve(cell.kernel).release
    return None


def commands(cell: Cell, project: Project) -> dict[str, list[str]]:
    """The command line of each step of a cell."""
    base = [sys.executable, str(project.root / "gen.py"), "--project", str(project.root)]
    release = _release(cell)
    out = str(project.build_dir / (f"{cell.target}-{release}" if release else cell.target))
    kernel = ["--kernel-release", release] if release else []
    client = ["--client", cell.client] if cell.client != "-" else []
    return {
        "generate": [*base, "generate", "--target", cell.target, "--upstream", cell.upstream, "--out", out],
        "build": [*base, "build", "--target", cell.target, "--upstream", cell.upstream, "--out", out, *kernel],
        "client": [*base, "client", cell.client, "--target", cell.target],
        "e2e": [*base, "e2e", "--target", cell.target, "--upstream", cell.upstream,
                *(["--cpu", cell.cpu, "--smp", str(SMP)] if cell.cpu != "-" else []), *kernel, *client],
    }


def run(project: Project, chosen: list[Cell], echo: Callable[[str], None],
        keep_going: bool = False) -> list[CellResult]:
    logs = project.build_dir / "matrix" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: list[CellResult] = []
    stop = False
    for n, cell in enumerate(chosen, 1):
        res = CellResult(cell)
        results.append(res)
        if stop:
            res.steps = [StepResult(s, "SKIP", reason="not run: an earlier cell failed (--keep-going runs all)")
                         for s in cell.steps]
            continue
        echo(f"[{n}/{len(chosen)}] {cell.id} ...")
        try:
            cmds = commands(cell, project)
        except PortError as exc:
            res.steps = [StepResult(cell.steps[0], "FAIL", reason=str(exc).splitlines()[0])]
            res.steps += [StepResult(s, "SKIP", reason="an earlier step failed") for s in cell.steps[1:]]
            stop = not keep_going
            continue
        failed = False
        for step in cell.steps:
            if failed:
                res.steps.append(StepResult(step, "SKIP", reason="an earlier step failed"))
                continue
            log = logs / f"{cell.id}-{step}.log"
            t0 = time.monotonic()
            with log.open("w") as f:
                proc = subprocess.run(cmds[step], stdout=f, stderr=subprocess.STDOUT, text=True)
            dt = time.monotonic() - t0
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            ok = proc.returncode == 0
            res.steps.append(StepResult(step, "PASS" if ok else "FAIL", dt,
                                        "" if ok else f"exit {proc.returncode}: {tail[0][:200]}", str(log)))
            echo(f"    {step:9s} {'PASS' if ok else 'FAIL'} {dt:6.1f} s" + ("" if ok else f"  ({log})"))
            failed = not ok
        if failed:
            stop = not keep_going
    return results


def write_results(project: Project, results: list[CellResult]) -> tuple[Path, Path]:
    out = project.build_dir / "matrix"
    out.mkdir(parents=True, exist_ok=True)
    summary = {s: sum(1 for r in results if r.status == s) for s in ("PASS", "FAIL", "SKIP")}
    total = round(sum(r.seconds for r in results), 1)
    data = {"cells": [r.to_json() for r in results], "summary": summary, "seconds": total}
    (out / "result.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = ["# nvmm-port matrix", "", "| target | kernel | cpu | upstream | client | " + " | ".join(STEPS)
             + " | time | result |", "|---" * (len(STEPS) + 7) + "|"]
    for r in results:
        by = {s.step: s for s in r.steps}
        cols = [f"{by[s].status} ({by[s].seconds:.0f} s)" if s in by else "—" for s in STEPS]
        lines.append(f"| {r.cell.target} | {r.cell.kernel} | {r.cell.cpu} | {r.cell.upstream} | {r.cell.client} | "
                     + " | ".join(cols) + f" | {r.seconds:.0f} s | {r.status} |")
    failed = [r for r in results if r.status == "FAIL"]
    for r in failed:
        bad = next(s for s in r.steps if s.status == "FAIL")
        lines += ["", f"## {r.cell.id}: {bad.step} failed", "", f"log: `{bad.log}`", "", "```",
                  *(_tail(bad.log) if bad.log else [bad.reason]), "```"]
    lines += ["", f"total: {total} s; " + ", ".join(f"{n} {s}" for s, n in summary.items())]
    (out / "result.md").write_text("\n".join(lines) + "\n")
    return out / "result.json", out / "result.md"


def _tail(log: str, n: int = 15) -> list[str]:
    try:
        return Path(log).read_text(errors="replace").strip().splitlines()[-n:]
    except OSError:
        return []


def table(results: list[CellResult]) -> Any:
    from rich.table import Table
    t = Table(title="nvmm-port matrix")
    for col in ("target", "kernel", "cpu", "upstream", "client", *STEPS, "time", "reason"):
        t.add_column(col)
    colour = {"PASS": "green", "FAIL": "red", "SKIP": "yellow"}
    for r in results:
        by = {s.step: s for s in r.steps}
        cols = [f"[{colour[by[s].status]}]{by[s].status}[/]" if s in by else "" for s in STEPS]
        reason = next((s.reason for s in r.steps if s.status != "PASS" and s.reason), "")
        t.add_row(r.cell.target, r.cell.kernel, r.cell.cpu, r.cell.upstream, r.cell.client, *cols,
                  f"{r.seconds:.0f} s", reason)
    return t


WORKFLOW = Path(".github") / "workflows" / "matrix.yml"


def github_workflow(all_cells: list[Cell]) -> str:
    """The workflow text: one job per cell."""
    from .. import __version__
    from ..templating import render
    jobs = []
    for c in all_cells:
        ident = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in c.id)
        jobs.append({
            "id": ident, "name": f"{c.target} {c.kernel} {c.cpu} {c.upstream}"
                                 + (f" client={c.client}" if c.client != "-" else ""),
            "setup_for": ",".join(j for j, step in (("build", "build"), ("e2e", "e2e"), ("qemu", "client"))
                                  if step in c.steps and not (j == "e2e" and c.cpu == "-")),
            "kernels": [c.kernel] if c.kernel in LINUX_KERNELS else [],
            "upstream": c.upstream,
            "client": c.client if c.client != "-" else None,
            "filters": [f"target={c.target}", f"kernel={c.kernel}", f"cpu={c.cpu}", f"upstream={c.upstream}",
                        f"client={c.client}"],
        })
    return render("ci/github-matrix.yml.j2", version=__version__, jobs=jobs)
