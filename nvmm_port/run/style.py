"""Kernel coding style, judged by the kernel's own checker: Linux's ``scripts/checkpatch.pl``.

checkpatch.pl is GPL code of the Linux tree, so it is never committed here.  It is taken at run
time from Debian's ``linux-source-X.Y`` package (``/usr/src/linux-source-X.Y.tar.xz``): the script
and the two data files it reads from its own directory (``spelling.txt``,
``const_structs.checkpatch``) are extracted once into
``build/tools/checkpatch-<tarball>-<size>-<mtime>/`` and reused while that tarball stays the same
(extracting them means decompressing the whole tarball: seconds).  ``$NVMM_PORT_CHECKPATCH`` names
a ``checkpatch.pl`` to use instead, a kernel tree's own for example.

Files are checked as files, not as patches: ``checkpatch.pl --no-tree --terse --show-types -f``.
Its findings (``FILE:LINE: LEVEL:TYPE: message``) are parsed into :class:`Finding` and checked
against the total it prints for each file, so a change of its output format cannot pass for a clean
run.  A :class:`Policy` (a TOML file such as ``shim/linux/checkpatch.toml``) lists the files to
check and the findings kept on purpose, each type with its reason and, to keep the exception
narrow, the files (and optionally the source lines) it applies to.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

SCRIPT_FILES = ("checkpatch.pl", "spelling.txt", "const_structs.checkpatch")
SOURCE_DIR = Path("/usr/src")
ENV = "NVMM_PORT_CHECKPATCH"
HOW_TO_GET = ("apt-get install linux-source (Debian's kernel source tarball; checkpatch.pl is "
              f"extracted from it at run time), or set ${ENV} to a checkpatch.pl")

LEVELS = ("ERROR", "WARNING", "CHECK")
_FINDING = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<level>ERROR|WARNING|CHECK):(?P<type>[A-Z0-9_]+): "
                      r"(?P<message>.*)$")
_TOTAL = re.compile(r"^total: (?P<errors>\d+) errors, (?P<warnings>\d+) warnings, (?:(?P<checks>\d+) checks, )?"
                    r"\d+ lines checked$")


@dataclass(frozen=True)
class Finding:
    file: str           # as checkpatch was given it
    line: int           # 1-based
    level: str          # ERROR, WARNING or CHECK (--strict only)
    type: str           # checkpatch's type, e.g. LEADING_SPACE
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.level}:{self.type}: {self.message}"


# ---------------------------------------------------------------------------
# Finding the checker


def source_tarballs(src_dir: Path = SOURCE_DIR) -> list[Path]:
    """Debian's kernel source tarballs, oldest version first."""
    def version(p: Path) -> tuple[int, ...]:
        m = re.match(r"linux-source-([\d.]+)\.tar", p.name)
        return tuple(int(x) for x in m.group(1).split(".") if x) if m else ()
    found = [p for p in src_dir.glob("linux-source-*.tar.*") if p.is_file() and version(p)]
    return sorted(found, key=version)


def _tarball_top(tarball: Path) -> str:
    """The top directory of a Debian linux-source tarball: its name without the extension."""
    return re.sub(r"\.tar(\.[a-z0-9]+)?$", "", tarball.name)


def cache_key(tarball: Path) -> str:
    st = tarball.stat()
    return f"checkpatch-{_tarball_top(tarball)}-{st.st_size}-{int(st.st_mtime)}"


def extract_checkpatch(tarball: Path, tools_dir: Path) -> Path:
    """checkpatch.pl and its data files from ``tarball``, extracted once under ``tools_dir``."""
    dest = tools_dir / cache_key(tarball)
    script = dest / "checkpatch.pl"
    if all((dest / f).is_file() for f in SCRIPT_FILES):
        return script
    tools_dir.mkdir(parents=True, exist_ok=True)
    top = _tarball_top(tarball)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpatch.", dir=tools_dir))
    try:
        r = subprocess.run(["tar", "-C", str(tmp), "-xf", str(tarball)] + [f"{top}/scripts/{f}" for f in SCRIPT_FILES],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise PortError(f"cannot extract checkpatch.pl: tar exited with {r.returncode}", tarball,
                            HOW_TO_GET, r.stderr.strip().splitlines()[-3:])
        staged = tmp / "files"
        os.replace(tmp / top / "scripts", staged)
        for f in staged.iterdir():
            if f.name not in SCRIPT_FILES:
                shutil.rmtree(f) if f.is_dir() else f.unlink()
        try:
            os.replace(staged, dest)        # atomic: a concurrent run sees all three files or none
        except OSError:
            if not script.is_file():        # not another run's complete copy: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return script


def find_checkpatch(build_dir: Path, src_dir: Path = SOURCE_DIR) -> Path:
    """The checkpatch.pl to run: ``$NVMM_PORT_CHECKPATCH``, else the newest linux-source's (cached
    under ``build_dir/tools``).  A :class:`PortError` saying how to get one when there is none."""
    env = os.environ.get(ENV)
    if env:
        script = Path(env)
        if not script.is_file():
            raise PortError(f"${ENV} names no file", script, "point it at a checkpatch.pl, or unset it")
        return script
    if shutil.which("perl") is None:
        raise PortError("checkpatch.pl needs perl, which is not installed", None, "apt-get install perl")
    tarballs = source_tarballs(src_dir)
    if not tarballs:
        raise PortError("no Linux source tarball to take checkpatch.pl from", src_dir / "linux-source-*.tar.xz",
                        HOW_TO_GET)
    return extract_checkpatch(tarballs[-1], build_dir / "tools")


# ---------------------------------------------------------------------------
# Running it


def parse(output: str) -> list[Finding]:
    """The findings of ``checkpatch.pl --terse --show-types`` output.  Every line must be a finding
    or a file's total, and the totals must count the findings: anything else is a PortError."""
    findings: list[Finding] = []
    counted = {level: 0 for level in LEVELS}
    totals = {level: 0 for level in LEVELS}
    for ln in output.splitlines():
        if not ln.strip():
            continue
        m = _FINDING.match(ln)
        if m:
            findings.append(Finding(m["file"], int(m["line"]), m["level"], m["type"], m["message"]))
            counted[m["level"]] += 1
            continue
        t = _TOTAL.match(ln)
        if t:
            totals["ERROR"] += int(t["errors"])
            totals["WARNING"] += int(t["warnings"])
            totals["CHECK"] += int(t["checks"] or 0)
            continue
        raise PortError(f"checkpatch printed a line this parser does not know: {ln!r}", None,
                        "run it with --terse --show-types; if its format changed, update nvmm_port/run/style.py")
    if counted != totals:
        raise PortError(f"checkpatch's totals {totals} do not match the findings parsed {counted}", None,
                        "its output format changed: update nvmm_port/run/style.py")
    return findings


def run_checkpatch(script: Path, files: list[str | Path], cwd: Path | None = None,
                   strict: bool = False) -> list[Finding]:
    """checkpatch on ``files`` (named relative to ``cwd`` in the findings when given so)."""
    if not files:
        return []
    cmd = ["perl", str(script), "--no-tree", "--terse", "--show-types", "--color=never"]
    cmd += ["--strict"] if strict else []
    cmd += ["-f", *map(str, files)]
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode not in (0, 1):
        raise PortError(f"checkpatch exited with {r.returncode}", script, None,
                        (r.stderr or r.stdout).strip().splitlines()[-5:])
    findings = parse(r.stdout)
    if r.returncode == 1 and not findings:
        raise PortError("checkpatch failed without a finding", script, None, r.stderr.strip().splitlines()[-5:])
    return findings


# ---------------------------------------------------------------------------
# What is kept on purpose


@dataclass(frozen=True)
class Allowance:
    """Findings of one type kept on purpose, in the files (glob patterns) it names, on source lines
    matching ``lines`` (a regular expression searched in the line) when given."""

    type: str
    reason: str
    files: tuple[str, ...]
    lines: str | None = None

    def covers(self, finding: Finding, source_line: str) -> bool:
        return finding.type == self.type and \
            any(fnmatch.fnmatchcase(finding.file, pat) for pat in self.files) and \
            (self.lines is None or re.search(self.lines, source_line) is not None)


@dataclass
class Verdict:
    unexpected: list[Finding] = field(default_factory=list)
    allowed: dict[Allowance, list[Finding]] = field(default_factory=dict)

    def unused(self) -> list[Allowance]:
        return [a for a, found in self.allowed.items() if not found]


@dataclass(frozen=True)
class Policy:
    """A policy file: the files to check and the findings allowed in them."""

    path: Path
    files: tuple[str, ...]
    allow: tuple[Allowance, ...]

    def judge(self, findings: list[Finding], root: Path) -> Verdict:
        """Split findings (file names relative to ``root``) into allowed and unexpected ones."""
        verdict = Verdict(allowed={a: [] for a in self.allow})
        lines: dict[str, list[str]] = {}
        for f in findings:
            if f.file not in lines:
                p = root / f.file
                lines[f.file] = p.read_text(errors="replace").split("\n") if p.is_file() else []
            src = lines[f.file][f.line - 1] if 0 < f.line <= len(lines[f.file]) else ""
            match = next((a for a in self.allow if a.covers(f, src)), None)
            if match is None:
                verdict.unexpected.append(f)
            else:
                verdict.allowed[match].append(f)
        return verdict


_POLICY_KEYS = {"files", "allow"}
_ALLOW_KEYS = {"type", "reason", "files", "lines"}


def load_policy(path: Path) -> Policy:
    """Read a policy file (format at the top of shim/linux/checkpatch.toml).  Unknown keys, an
    allowance without a reason or files, or a bad regular expression are errors."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PortError(f"cannot read the checkpatch policy: {exc}", path) from exc
    unknown = set(data) - _POLICY_KEYS
    if unknown:
        raise PortError(f"unknown key(s) {', '.join(sorted(unknown))}", path,
                        f"keys: {', '.join(sorted(_POLICY_KEYS))}")
    files = data.get("files")
    if not files or not all(isinstance(f, str) for f in files):
        raise PortError("'files' must list the files to check", path)
    allow = []
    for i, entry in enumerate(data.get("allow", []), 1):
        where = f"[[allow]] #{i}"
        unknown = set(entry) - _ALLOW_KEYS
        if unknown:
            raise PortError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", path,
                            f"keys: {', '.join(sorted(_ALLOW_KEYS))}")
        for key in ("type", "reason", "files"):
            if not entry.get(key):
                raise PortError(f"{where}: needs '{key}'", path,
                                "every exception says which type, why, and in which files")
        if entry.get("lines") is not None:
            try:
                re.compile(entry["lines"])
            except re.error as exc:
                raise PortError(f"{where}: 'lines' is not a regular expression ({exc})", path) from exc
        allow.append(Allowance(entry["type"], " ".join(entry["reason"].split()), tuple(entry["files"]),
                               entry.get("lines")))
    return Policy(path, tuple(files), tuple(allow))
