"""User-facing errors: one line naming the file and what to do."""

from __future__ import annotations

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
