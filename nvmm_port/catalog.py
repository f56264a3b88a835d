"""The BSD compatibility catalog (``shim/bsd/catalog.toml``): which BSD header provides a name.

Target-independent.  The analyzer uses it to group foreign identifiers and to
tell BSD-compat definitions inside the contract header (``__BIT``, ``vaddr_t``,
``uimin``) apart from os_* primitives.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PortError

UNKNOWN = "unknown"
MEMBERS = "struct members"


@dataclass
class CatalogGroup:
    header: str
    title: str
    names: frozenset[str]
    patterns: list[re.Pattern] = field(default_factory=list)

    def claims(self, name: str) -> bool:
        return name in self.names or any(p.fullmatch(name) for p in self.patterns)


@dataclass
class Catalog:
    path: Path
    groups: list[CatalogGroup]

    @classmethod
    def load(cls, path: Path) -> "Catalog":
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise PortError("the BSD compatibility catalog is missing", path,
                            "restore shim/bsd/catalog.toml from git") from None
        except tomllib.TOMLDecodeError as exc:
            raise PortError(f"malformed TOML ({exc})", path, "fix the syntax") from None
        groups = []
        for i, g in enumerate(data.get("group", [])):
            if "header" not in g:
                raise PortError(f"group #{i + 1} has no 'header'", path, "add header = \"sys/xxx.h\"")
            try:
                pats = [re.compile(p) for p in g.get("patterns", [])]
            except re.error as exc:
                raise PortError(f"group {g['header']}: bad pattern ({exc})", path, "fix the regular expression") from None
            groups.append(CatalogGroup(g["header"], g.get("title", g["header"]),
                                       frozenset(g.get("names", [])), pats))
        return cls(path, groups)

    def group_of(self, name: str) -> str | None:
        for g in self.groups:
            if name in g.names:
                return g.header
        for g in self.groups:
            if any(p.fullmatch(name) for p in g.patterns):
                return g.header
        return None

    def title_of(self, header: str) -> str:
        for g in self.groups:
            if g.header == header:
                return g.title
        return {UNKNOWN: "Not in the catalog: extend shim/bsd/catalog.toml",
                MEMBERS: "Members of OS structures (fields upstream reaches into)"}.get(header, header)
