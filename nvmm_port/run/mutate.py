"""``gen.py mutate``: does the test suite notice a broken shim or generator?

``tests/mutants.toml`` lists deliberate bugs (``[[mutant]]``: file, the text it expects there once,
the bug that replaces it, why it matters, the tests that should notice) and a known-blind list
(``[[blind]]``: the same, plus the reason the suite cannot see it).  Each is applied, alone, to a
copy of the project (the files git tracks or would track, with the ignored caches linked in), the
tests it names run there, and the bug is *caught* when they fail with it and pass without it
(every test set is run once on the unmutated copy first).  The user's checkout is never touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import PortError
from ..project import Project

CATALOG = Path("tests") / "mutants.toml"
LINKED = ("upstream/cache", "build/e2e/kernel")     # ignored caches the tests read
TIMEOUT = 1800


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    why: str
    tests: tuple[str, ...]
    blind: str | None = None        # why the suite cannot see it (known-blind list)

    @property
    def slow(self) -> bool:
        return any("test_e2e.py" in t for t in self.tests)


@dataclass
class Outcome:
    id: str
    caught: bool
    by: str                 # the first failing test, "timeout", or ""
    seconds: float
    blind: bool
    why: str
    reason: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    baseline_seconds: float = 0.0

    @property
    def mutants(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.blind]

    @property
    def caught(self) -> int:
        return sum(1 for o in self.mutants if o.caught)


def load(project: Project) -> list[Mutant]:
    path = project.root / CATALOG
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise PortError(f"cannot read the mutant catalog ({e})", path, "fix the TOML") from None
    out: list[Mutant] = []
    text = path.read_text()
    for kind in ("mutant", "blind"):
        for i, m in enumerate(data.get(kind, [])):
            where = _line_of(text, kind, i)
            missing = [k for k in ("id", "file", "find", "replace", "why", "tests") if k not in m]
            if kind == "blind" and "reason" not in m:
                missing.append("reason")
            if missing:
                raise PortError(f"[[{kind}]] #{i + 1} lacks {', '.join(missing)}", f"{path}:{where}",
                                "every entry names id, file, find, replace, why and tests (blind ones a reason)")
            out.append(Mutant(m["id"], m["file"], m["find"], m["replace"], m["why"], tuple(m["tests"]),
                              m.get("reason") if kind == "blind" else None))
    ids = [m.id for m in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise PortError(f"mutant id(s) used twice: {', '.join(dup)}", path, "give each entry its own id")
    for m in out:
        target = project.root / m.file
        n = target.read_text().count(m.find) if target.is_file() else -1
        if n != 1:
            raise PortError(f"mutant {m.id}: its text occurs {max(n, 0)} time(s) in {m.file}, not once",
                            f"{path}:{_line_of_id(text, m.id)}",
                            "the file changed: update find (and replace) to the code as it is now")
    return out


def _line_of(text: str, kind: str, index: int) -> int:
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == f"[[{kind}]]"]
    return starts[index] if index < len(starts) else 1


def _line_of_id(text: str, ident: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf'\s*id\s*=\s*"{re.escape(ident)}"', line):
            return i
    return 1


def _copy_project(project: Project, dest: Path) -> None:
    files = subprocess.run(["git", "-C", str(project.root), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = project.root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for rel in LINKED:
        if (project.root / rel).exists() and not (dest / rel).exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(project.root / rel)


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def _pytest(tree: Path, tests: tuple[str, ...], log: Path) -> tuple[bool, str, float]:
    """Run ``tests`` in ``tree``: (passed, first failing test or "timeout", seconds)."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                              cwd=tree, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        log.write_text("timeout\n")
        return False, "timeout", time.monotonic() - t0
    log.write_text(proc.stdout + proc.stderr)
    failed = _FAILED.search(proc.stdout)
    return proc.returncode == 0, failed.group(1) if failed else ("" if proc.returncode == 0 else
                                                                 f"exit {proc.returncode}"), time.monotonic() - t0


def run(project: Project, mutants: list[Mutant], echo: Callable[[str], None]) -> Report:
    report = Report()
    logs = project.build_dir / "mutate"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nvmm-mutate-") as tmp:
        tree = Path(tmp) / "tree"
        _copy_project(project, tree)
        t0 = time.monotonic()
        for tests in sorted({m.tests for m in mutants}):
            ok, by, secs = _pytest(tree, tests, logs / "baseline.log")
            if not ok:
                raise PortError(f"the tests fail without any mutant ({by})", logs / "baseline.log",
                                "fix them first: a mutant is caught only against a passing baseline")
        report.baseline_seconds = time.monotonic() - t0
        echo(f"baseline: {len({m.tests for m in mutants})} test set(s) pass in {report.baseline_seconds:.0f} s")
        for n, m in enumerate(mutants, 1):
            path = tree / m.file
            original = path.read_bytes()
            path.write_text(original.decode().replace(m.find, m.replace, 1))
            try:
                ok, by, secs = _pytest(tree, m.tests, logs / f"{m.id}.log")
            finally:
                path.write_bytes(original)
            out = Outcome(m.id, not ok, by, secs, m.blind is not None, m.why, m.blind or "")
            report.outcomes.append(out)
            state = ("caught by " + by) if out.caught else "NOT caught"
            echo(f"[{n}/{len(mutants)}] {m.id}: {state} ({secs:.0f} s)" + (" [known blind]" if out.blind else ""))
    (logs / "result.json").write_text(json.dumps({
        "caught": report.caught, "total": len(report.mutants), "baseline_seconds": round(report.baseline_seconds, 1),
        "outcomes": [asdict(o) for o in report.outcomes]}, indent=1) + "\n")
    return report
