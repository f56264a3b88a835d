"""Where spec text lands in generated C: ``#line`` directives naming the porter's own file.

Generated C that holds text from a spec (a fragment file, or a string of ``target.toml``) starts
that text with ``#line N "PATH"``, PATH being the file the porter edits, relative to the project
(``shim/linux/glue/core.c``, ``shim/linux/target.toml``), so a compiler error in it names the line
to fix instead of a line of a generated file.  After the text, a ``#line`` back to the generated
file keeps later errors right.  A spec outside the project is named by its directory's name, as
the banners of generated files do: generated trees never hold machine paths.

Back directives are first written with a placeholder number; :func:`renumber` gives every
``#line`` naming the generated file itself the number of the line that follows it, once the
file's lines are final (after variation points are filled, and again after ``--flatten``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_DIRECTIVE = re.compile(r'^#line (\d+) "((?:[^"\\]|\\.)*)"$')


class _Spec(Protocol):
    dir: Path

    @property
    def toml_path(self) -> Path: ...


@dataclass(frozen=True)
class Origin:
    path: str       # the file as the porter edits it
    line: int       # 1-based

    def directive(self) -> str:
        return directive(self.path, self.line)

    def shifted(self, by: int) -> Origin:
        return Origin(self.path, self.line + by)


def directive(path: str, line: int) -> str:
    quoted = path.replace("\\", "\\\\").replace('"', '\\"')
    return f'#line {line} "{quoted}"'


def back(path: str) -> str:
    """A ``#line`` back to generated file ``path``; :func:`renumber` sets its number."""
    return directive(path, 0)


def is_directive(line: str) -> bool:
    return _DIRECTIVE.match(line) is not None


def strip(text: str) -> str:
    """``text`` without the ``#line`` directives this module writes (to compare code)."""
    return "\n".join(ln for ln in text.split("\n") if not is_directive(ln))


def renumber(text: str, path: str) -> str:
    """Give every ``#line`` naming ``path`` (the generated file itself) the number of the next line.
    One that only blank lines separate from the next ``#line`` numbers nothing and goes (two
    filled arms that ``--flatten`` left side by side)."""
    if "#line " not in text:
        return text
    quoted = path.replace("\\", "\\\\").replace('"', '\\"')
    lines = text.split("\n")

    def own(i: int) -> bool:
        m = _DIRECTIVE.match(lines[i])
        return m is not None and m.group(2) == quoted

    keep = []
    for i in range(len(lines)):
        if own(i):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and is_directive(lines[j]):
                continue
        keep.append(lines[i])
    lines = keep
    for i in range(len(lines)):
        if own(i):
            lines[i] = directive(path, i + 2)
    return "\n".join(lines)


def spec_display_dir(spec_dir: Path, project_root: Path | None) -> str:
    """The spec directory as generated files name it: relative to the project, else its name."""
    if project_root is not None:
        try:
            return spec_dir.resolve().relative_to(project_root.resolve()).as_posix()
        except ValueError:
            pass
    return spec_dir.name


def lead_lines(text: str) -> int:
    """How many lines ``text.strip()`` drops at its start (blank lines before the first code)."""
    return text[:len(text) - len(text.lstrip())].count("\n")


class SpecOrigins:
    """Line numbers of a spec's text: its fragment files and the values of its target.toml."""

    def __init__(self, spec: _Spec, project_root: Path | None):
        self.dir = spec_display_dir(spec.dir, project_root)
        self.toml = f"{self.dir}/{spec.toml_path.name}"
        try:
            text = spec.toml_path.read_text()
        except OSError:
            text = ""
        self.lines = text.split("\n")
        self.tables: dict[tuple[str, ...], tuple[int, int]] = {}    # key path -> [header, end) (0-based)
        self.code: list[bool] = []          # False for lines inside a multi-line string
        self._index()

    def _index(self) -> None:
        heads: list[tuple[tuple[str, ...], int]] = []
        quote: str | None = None
        for i, ln in enumerate(self.lines):
            self.code.append(quote is None)
            if quote is None and ln.lstrip().startswith("[") and not ln.lstrip().startswith("[["):
                key = _header_key(ln.strip())
                if key is not None:
                    heads.append((key, i))
                    continue
            for m in re.finditer(r'"""|\'\'\'', ln):
                if quote is None:
                    quote = m.group(0)
                elif m.group(0) == quote:
                    quote = None
        for n, (key, start) in enumerate(heads):
            end = heads[n + 1][1] if n + 1 < len(heads) else len(self.lines)
            self.tables.setdefault(key, (start, end))

    def fragment(self, rel: str, line: int = 1) -> Origin:
        return Origin(f"{self.dir}/{rel}", line)

    def table(self, *key: str) -> Origin:
        """The header line of a table (or line 1 when it is not found)."""
        span = self.tables.get(key)
        return Origin(self.toml, span[0] + 1 if span else 1)

    def value(self, table: tuple[str, ...], key: str, first_line: str | None = None) -> Origin | None:
        """The line of the first line of string ``key``'s value in ``table``: the key's line, or the
        next one for a multi-line string opened at the end of it.  For an array, ``first_line`` finds
        the element whose first line it is (when written on a line of its own)."""
        span = self.tables.get(table)
        if span is None:
            return None
        rx = re.compile(r"^\s*(?:%s|\"%s\"|'%s')\s*=\s*(.*)$" % ((re.escape(key),) * 3))
        for i in range(span[0] + 1, span[1]):
            m = rx.match(self.lines[i]) if self.code[i] else None
            if m is None:
                continue
            rest = m.group(1).rstrip()
            if rest in ('"""', "'''"):
                return Origin(self.toml, i + 2)
            if first_line is not None and rest.startswith("[") and first_line.strip():
                for j in range(i, span[1]):
                    if first_line.strip() in self.lines[j]:
                        return Origin(self.toml, j + 1)
            return Origin(self.toml, i + 1)
        return None


def _header_key(line: str) -> tuple[str, ...] | None:
    try:
        data = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    key: list[str] = []
    node: object = data
    while isinstance(node, dict) and len(node) == 1:
        k, node = next(iter(node.items()))
        key.append(k)
    return tuple(key) if key and node == {} else None
