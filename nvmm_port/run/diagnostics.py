"""What a failed build says first: the first compiler error, where it is, and how many followed.

``make -j`` output ends with make's own complaints and, when one error cascades, with the last of
many consequences; the error to fix is the first one.  :func:`diagnose` finds it (GCC's
``file:line:col: error:``, GNU as's ``file:line: Error:``, an unlocated ``cc1: error:``, a linker's
``undefined reference``; make's ``***`` line only when nothing else is there), with the lines
GCC prints before it (``In function``, ``In file included from``) and after it (notes such as
``in expansion of macro``, the source excerpt), and counts the errors.

File names are shown as a porter opens them: a file of the generated tree (absolute, or relative
to the tree as the ``#line`` directives back to it and the userland build name them) by its path
from the current directory; a spec file named by a ``#line`` directive (``shim/linux/target.toml``)
as it is.  For a file of the tree, what it was made from (``PROVENANCE``) is added.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

_LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)? "
                      r"(?P<kind>fatal error|error|Error|warning|Warning|note): (?P<msg>.*)$")
_UNLOCATED = re.compile(r"^[\w.+-]+: (?:fatal )?error: (?P<msg>.*)$")
_LINK = re.compile(r"undefined reference to ")
_MAKE = re.compile(r"^g?make(?:\[\d+\])?: \*\*\* ")
_BEFORE = re.compile(r"^(?:In file included from |\s+from |[^\s:][^:]*: (?:In function|In member function|"
                     r"At top level|In static function|Assembler messages))")
_PATHS = re.compile(r"(?P<pre>^|^In file included from |^\s+from )(?P<path>[^\s:][^:\s]*)(?=:)", re.MULTILINE)
_EXCERPT = re.compile(r"^\s*\d*\s\|")
_ERROR_KINDS = ("fatal error", "error", "Error")
BEFORE_MAX = 6      # lines of context GCC prints before an error that are kept
AFTER_MAX = 8       # lines after it


@dataclass
class FirstError:
    file: str | None            # as shown to the porter (None: the tool, not a file, complained)
    line: int | None
    message: str
    context: list[str] = field(default_factory=list)    # the lines before, the error, the lines after

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")


@dataclass
class Diagnosis:
    errors: int                 # error lines in the output
    first: FirstError | None


def _kind(line: str) -> str | None:
    """'error' for a line that reports an error, 'note' for a located warning or note, else None."""
    m = _LOCATED.match(line)
    if m:
        return "error" if m.group("kind") in _ERROR_KINDS else "note"
    if _UNLOCATED.match(line) or _LINK.search(line):
        return "error"
    return None


class _Paths:
    def __init__(self, tree: Path | None, cwd: Path | None):
        self.tree = tree.resolve() if tree is not None else None
        self.cwd = (cwd or Path.cwd()).resolve()

    def in_tree(self, name: str) -> str | None:
        """The path of ``name`` relative to the tree, when it is a file of the tree."""
        if self.tree is None:
            return None
        p = Path(name)
        if p.is_absolute():
            try:
                return p.resolve().relative_to(self.tree).as_posix()
            except ValueError:
                return None
        return p.as_posix() if (self.tree / p).is_file() else None

    def show(self, name: str) -> str:
        rel = self.in_tree(name)
        if rel is None or self.tree is None:
            return name
        full = self.tree / rel
        try:
            return full.relative_to(self.cwd).as_posix()
        except ValueError:
            return os.fspath(full)

    def source_line(self, shown: str, line: int) -> str | None:
        """Line ``line`` of a file named as shown (relative to the current directory, or absolute)."""
        try:
            with open(self.cwd / shown, errors="replace") as f:
                for n, text in enumerate(f, 1):
                    if n == line:
                        return text.rstrip("\n")
        except OSError:
            pass
        return None

    def rewrite(self, line: str) -> str:
        return _PATHS.sub(lambda m: m.group("pre") + self.show(m.group("path")), line)


def diagnose(output: str, tree: Path | None = None, cwd: Path | None = None) -> Diagnosis:
    """The first error of a build's output (compiler, assembler, linker, else make) and the count."""
    lines = output.splitlines()
    kinds = [_kind(ln) for ln in lines]
    errors = kinds.count("error")
    at = next((i for i, k in enumerate(kinds) if k == "error"), None)
    if at is None:
        at = next((i for i, ln in enumerate(lines) if _MAKE.match(ln)), None)
    if at is None:
        return Diagnosis(errors, None)
    paths = _Paths(tree, cwd)
    start = at
    while start > 0 and at - start < BEFORE_MAX and _BEFORE.match(lines[start - 1]):
        start -= 1
    end = at + 1
    while end < len(lines) and end - at <= AFTER_MAX and kinds[end] != "error" and not _BEFORE.match(lines[end]) \
            and not _MAKE.match(lines[end]) and not lines[end].startswith(("  CC", "  AS", "  LD", "cc1: ")):
        end += 1
    m = _LOCATED.match(lines[at])
    if m:
        first = FirstError(paths.show(m.group("file")), int(m.group("line")), m.group("msg"))
        rel = paths.in_tree(m.group("file"))
        origin = _origin(tree, rel) if rel else None
    else:
        u = _UNLOCATED.match(lines[at])
        first = FirstError(None, None, u.group("msg") if u else lines[at].strip())
        origin = None
    first.context = [paths.rewrite(ln) for ln in lines[start:end]]
    if first.file and first.line and not (end > at + 1 and _EXCERPT.match(lines[at + 1])):
        # the compiler could not show the line (a #line names a file it cannot open from its directory)
        shown = paths.source_line(first.file, first.line)
        if shown is not None:
            first.context.insert(at - start + 1, f"{first.line:5d} | {shown}")
    if origin:
        first.context.append(f"({first.file} is {origin}, says PROVENANCE)")
    return Diagnosis(errors, first)


def _origin(tree: Path | None, rel: str) -> str | None:
    """What PROVENANCE says a file of the tree was made from."""
    if tree is None:
        return None
    try:
        text = (tree / "PROVENANCE").read_text()
    except OSError:
        return None
    m = re.search(r"^[0-9a-f]{64}  " + re.escape(rel) + r"\n    (.*)$", text, re.MULTILINE)
    return m.group(1) if m else None


def build_failure(what: str, output: str, log: Path, tree: Path | None = None, cwd: Path | None = None,
                  tail: int = 15) -> PortError:
    """The PortError of a failed make: ``what`` (e.g. "the kernel module did not build (make exit 2)"),
    then the first error with its location and the count; without one, the output's last lines."""
    d = diagnose(output, tree, cwd)
    if d.first is None:
        return PortError(what, log, "read the log; the last lines are below",
                         output.strip().splitlines()[-tail:])
    count = {0: "", 1: "; 1 error"}.get(d.errors, f"; the first of {d.errors} errors")
    where = f"{d.first.where}: " if d.first.where else ""
    return PortError(f"{what}{count}: {where}{d.first.message}", log,
                     "fix the first error, shown below; the log has the rest", d.first.context)
