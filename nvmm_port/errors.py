"""User-facing errors: one line naming the file and what to do, details indented under it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PortError(Exception):
    """An error the user can fix.  Printed as one line, exit status 2.

    ``where`` names the file (or lock, or ref) the problem is in, ``fix``
    says what to do about it.
    """

    def __init__(self, message: str, where: str | Path | None = None, fix: str | None = None,
                 details: list[str] | None = None):
        self.message = message
        self.where = str(where) if where is not None else None
        self.fix = fix
        self.details = list(details or [])   # printed under the one-line error, indented
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text += f" ({self.fix})"
        return text


def shown_path(path: str | Path) -> str:
    """A path as messages show it: relative to the working directory when under it."""
    p = Path(path)
    if p.is_absolute():
        try:
            return p.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return p.as_posix()
    return p.as_posix()


@dataclass(frozen=True)
class Diagnostic:
    """One problem at one place: ``file:line: message (fix)``.

    ``group`` puts it under a heading instead of among the errors (a spec's entries still TODO
    or missing: incompleteness, not a mistake).
    """

    file: str
    line: int
    message: str
    fix: str | None = None
    group: str | None = None

    def location(self) -> str:
        return f"{shown_path(self.file)}:{self.line}"

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        return f"{text} ({self.fix})" if self.fix else text


class DiagnosticsError(PortError):
    """Several problems found in one pass, raised together: the first line says how many,
    ``details`` holds one per line (grouped ones under their heading)."""

    def __init__(self, message: str, where: str | Path | None, diagnostics: list[Diagnostic],
                 fix: str | None = None):
        self.diagnostics = list(diagnostics)
        details = [str(d) for d in self.diagnostics if d.group is None]
        groups: dict[str, list[Diagnostic]] = {}
        for d in self.diagnostics:
            if d.group is not None:
                groups.setdefault(d.group, []).append(d)
        for heading, items in groups.items():
            details.append(f"{heading}:")
            details.extend(f"  {d}" for d in items)
        if len(self.diagnostics) == 1 and self.diagnostics[0].group is None:
            # one problem: it is the one line, with its own file:line and fix
            only = self.diagnostics[0]
            super().__init__(only.message, only.location(), only.fix, [])
        else:
            super().__init__(message, shown_path(where) if where is not None else None, fix, details)
        # str() carries the details too, for callers that only see the exception's text
        self.args = ("\n".join([self.one_line(), *("  " + d for d in self.details)]),)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.group is None]
