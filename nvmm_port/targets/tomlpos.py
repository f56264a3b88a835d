"""Where each key of a TOML document is written: key path -> line.

``tomllib`` gives values, not positions, so spec errors could name a key but not its line.  This
scanner walks TOML text that ``tomllib`` already accepted and records the 1-based line of every
table header, every key (``a.b = ...`` records ``("a",)`` and ``("a", "b")``), every element of an
array (its index is the last part of the path) and every key of an inline table.  Arrays of tables
get their index as a path part (``[[x]]`` twice: ``("x", 0)``, ``("x", 1)``).

It is lenient by design: on text it does not understand it stops, keeping what it found, and
:meth:`TomlPositions.line` falls back to the nearest enclosing key it knows, then to line 1.
"""

from __future__ import annotations

import bisect
import re
import tomllib

Path_ = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = re.compile(r"[,\]}\n#]")


class _Stop(Exception):
    """The scanner met text it does not follow."""


class TomlPositions:
    """Line numbers of a TOML text's tables, keys and array elements."""

    def __init__(self, text: str):
        self.text = text
        self.lines: dict[Path_, int] = {}
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self._i = 0
        self._aot: dict[Path_, int] = {}      # array-of-tables path -> elements seen
        self._headers: dict[Path_, int] = {}  # table header path -> line
        try:
            self._document()
        except (_Stop, IndexError, tomllib.TOMLDecodeError):
            pass

    # ---- queries

    def line(self, *path: str | int) -> int:
        """The line of ``path``, else of its nearest enclosing key or table, else 1."""
        p: Path_ = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return 1

    def has(self, *path: str | int) -> bool:
        return tuple(path) in self.lines

    def end_of(self, *path: str | int) -> int:
        """The last line of a table: the line before the next table header after it, or the last
        line of the text (where new keys of that table would go)."""
        start = self.lines.get(tuple(path))
        if start is None:
            return self.last_line()
        headers = sorted(ln for p, ln in self._headers.items() if ln > start)
        end = headers[0] - 1 if headers else self.last_line()
        # back over blank and comment lines
        lines = self.text.split("\n")
        while end > start and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        return end

    def last_line(self) -> int:
        n = self.text.count("\n")
        return n if self.text.endswith("\n") else n + 1

    # ---- scanning

    def _line_at(self, i: int) -> int:
        return bisect.bisect_right(self._starts, i)

    def _record(self, path: Path_, i: int) -> None:
        self.lines.setdefault(path, self._line_at(i))

    def _peek(self, n: int = 1) -> str:
        return self.text[self._i:self._i + n]

    def _skip(self, newlines: bool) -> None:
        t = self.text
        while self._i < len(t):
            c = t[self._i]
            if c in " \t\r" or (newlines and c == "\n"):
                self._i += 1
            elif c == "#":
                nl = t.find("\n", self._i)
                self._i = len(t) if nl < 0 else nl
            else:
                break

    def _document(self) -> None:
        table: Path_ = ()
        while True:
            self._skip(newlines=True)
            if self._i >= len(self.text):
                return
            at = self._i
            if self._peek(2) == "[[":
                self._i += 2
                key = self._key()
                self._expect("]]")
                n = self._aot.get(key, 0)
                self._aot[key] = n + 1
                table = key + (n,)
                self._record(key, at)
                self._record(table, at)
                self._headers[table] = self._line_at(at)
            elif self._peek() == "[":
                self._i += 1
                table = self._key()
                self._expect("]")
                for k in range(1, len(table)):
                    self._record(table[:k], at)
                self._record(table, at)
                self._headers[table] = self._line_at(at)
            else:
                self._keyval(table)

    def _expect(self, s: str) -> None:
        self._skip(newlines=False)
        if self._peek(len(s)) != s:
            raise _Stop
        self._i += len(s)

    def _key(self) -> Path_:
        parts: list[str | int] = []
        while True:
            self._skip(newlines=False)
            c = self._peek()
            if c == '"':
                end = self._basic_end(self._i + 1)
                parts.append(_decode(self.text[self._i:end]))
                self._i = end
            elif c == "'":
                end = self.text.index("'", self._i + 1) + 1
                parts.append(self.text[self._i + 1:end - 1])
                self._i = end
            else:
                m = _BARE.match(self.text, self._i)
                if m is None:
                    raise _Stop
                parts.append(m.group(0))
                self._i = m.end()
            self._skip(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._i += 1

    def _keyval(self, table: Path_) -> None:
        at = self._i
        key = self._key()
        for k in range(1, len(key) + 1):
            self._record(table + key[:k], at)
        self._expect("=")
        self._skip(newlines=False)
        self._value(table + key)

    def _basic_end(self, i: int) -> int:
        """The index after the closing quote of a basic string whose text starts at ``i``."""
        t = self.text
        while True:
            c = t[i]
            if c == "\\":
                i += 2
            elif c == '"':
                return i + 1
            elif c == "\n":
                raise _Stop
            else:
                i += 1

    def _value(self, path: Path_) -> None:
        t = self.text
        if t.startswith('"""', self._i):
            i = self._i + 3
            while not t.startswith('"""', i):
                i += 2 if t[i] == "\\" else 1
                if i >= len(t):
                    raise _Stop
            self._i = i + 3
            while self._peek() == '"':
                self._i += 1
            return
        if t.startswith("'''", self._i):
            self._i = t.index("'''", self._i + 3) + 3
            while self._peek() == "'":
                self._i += 1
            return
        c = self._peek()
        if c == '"':
            self._i = self._basic_end(self._i + 1)
        elif c == "'":
            self._i = t.index("'", self._i + 1) + 1
        elif c == "[":
            self._i += 1
            n = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self._i += 1
                    return
                self._record(path + (n,), self._i)
                self._value(path + (n,))
                n += 1
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._i += 1
        elif c == "{":
            self._i += 1
            while True:
                self._skip(newlines=False)
                if self._peek() == "}":
                    self._i += 1
                    return
                self._keyval(path)
                self._skip(newlines=False)
                if self._peek() == ",":
                    self._i += 1
        else:
            m = _SCALAR_END.search(t, self._i)
            self._i = m.start() if m else len(t)


def _decode(quoted: str) -> str:
    """A basic-string key as TOML reads it (escapes and all)."""
    value = tomllib.loads(f"k = {quoted}")["k"]
    if not isinstance(value, str):
        raise _Stop
    return value
