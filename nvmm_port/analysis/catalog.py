"""The BSD compatibility catalog (``shim/bsd/``): which BSD header provides a name, and its definition.

Target-independent.  Two layers:

* ``shim/bsd/catalog.toml`` maps names to the BSD header that provides them
  (``[[group]]``), lists the names the catalog deliberately does not define
  because only an OS (or the C library) can (``[[not_in_catalog]]``), and the
  header paths a hosted C library has (``hosted_headers``).  The analyzer uses the
  groups to classify foreign identifiers and to tell BSD-compat definitions inside
  the contract header (``__BIT``, ``vaddr_t``, ``uimin``) apart from os_* primitives.
* ``shim/bsd/entries/*.toml``, one file per BSD header, give each name a C
  definition written from documented semantics (Intel SDM, AMD APM, the BSD
  manual pages).  ``nvmm_port.gen_compat`` emits the ones a target needs.

Entry file format::

    header = "sys/bitops.h"        # must be a [[group]] header of catalog.toml

    [[entry]]
    name = "__BIT"
    kind = "macro"                 # macro | constant | type | inline | function | struct
    c = "#define __BIT(n)\t((uintmax_t)1 << (n))"    # the exact C text emitted
    requires = ["uintmax_t"]       # catalog names the text uses (emitted with it)
    source = "bitops(3): ..."      # where the value or the semantics come from
    contexts = ["kernel", "user"]  # optional, default both
    lang = "c"                     # optional: c | asm | any (default: any for constants, else c)
    libc = "stdint.h"              # optional: in the user context the C library provides it here
    note = "IA32_EFER"             # optional: a trailing comment on a one-line definition

Entries are loaded on first use (``Catalog.entries``), so the analyzer never
depends on them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PortError

UNKNOWN = "unknown"
MEMBERS = "struct members"

# Kinds of entry.  Macros and constants are expanded where they are used, so their
# order does not matter; the others are read where they stand, after what they use.
MACRO, CONSTANT, TYPE, INLINE, FUNCTION, STRUCT = "macro", "constant", "type", "inline", "function", "struct"
ENTRY_KINDS = (MACRO, CONSTANT, TYPE, INLINE, FUNCTION, STRUCT)
LAZY_KINDS = (MACRO, CONSTANT)
CONTEXTS = ("kernel", "user")
LANGS = ("c", "asm", "any")            # C only, assembly only, both (plain numbers and operators)
PROVIDERS = ("target", "libc")
LIBC_GROUP = "libc"                    # the catalog.toml group of C library names (userland only)
ENTRIES_DIR = "entries"


@dataclass
class CatalogGroup:
    header: str
    title: str
    names: frozenset[str]
    patterns: list[re.Pattern[str]] = field(default_factory=list)

    def claims(self, name: str) -> bool:
        return name in self.names or any(p.fullmatch(name) for p in self.patterns)


@dataclass(frozen=True)
class Entry:
    """One C definition of a BSD name."""

    name: str
    kind: str
    c: str
    header: str
    source: str
    requires: tuple[str, ...] = ()
    contexts: tuple[str, ...] = CONTEXTS
    lang: str = "c"
    libc: str | None = None
    note: str | None = None
    file: Path | None = None
    index: int = 0                      # position in its file (the emission order)

    @property
    def lazy(self) -> bool:
        return self.kind in LAZY_KINDS

    def in_context(self, context: str) -> bool:
        return context in self.contexts

    def where(self) -> str:
        return f"{self.file.name if self.file else self.header} entry {self.name}"


@dataclass(frozen=True)
class Exclusion:
    """Names the catalog does not define: the target's glue (or the C library) must."""

    reason: str
    provider: str = "target"
    names: frozenset[str] = frozenset()
    patterns: tuple[re.Pattern[str], ...] = ()
    contexts: tuple[str, ...] = CONTEXTS

    def claims(self, name: str) -> bool:
        return name in self.names or any(p.fullmatch(name) for p in self.patterns)


@dataclass
class Catalog:
    path: Path
    groups: list[CatalogGroup]
    not_in_catalog: list[Exclusion] = field(default_factory=list)
    hosted_headers: frozenset[str] = frozenset()
    _entries: dict[str, Entry] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path) -> Catalog:
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
            groups.append(CatalogGroup(g["header"], g.get("title", g["header"]),
                                       frozenset(g.get("names", [])), _patterns(g, f"group {g['header']}", path)))
        excl = []
        for i, x in enumerate(data.get("not_in_catalog", [])):
            what = f"not_in_catalog #{i + 1}"
            if not x.get("reason"):
                raise PortError(f"{what} has no 'reason'", path, "say why the catalog does not define these names")
            provider = x.get("provider", "target")
            if provider not in PROVIDERS:
                raise PortError(f"{what}: provider {provider!r} is not one of {', '.join(PROVIDERS)}", path,
                                "fix the provider")
            contexts = tuple(x.get("contexts", CONTEXTS))
            if not contexts or any(c not in CONTEXTS for c in contexts):
                raise PortError(f"{what}: contexts {list(contexts)} must be a non-empty subset of {list(CONTEXTS)}",
                                path, "fix contexts")
            excl.append(Exclusion(x["reason"], provider, frozenset(x.get("names", [])),
                                  tuple(_patterns(x, what, path)), contexts))
        return cls(path, groups, excl, frozenset(data.get("hosted_headers", [])))

    # ---- names -> headers (what the analyzer uses)

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

    # ---- definitions (what gen_compat uses)

    @property
    def entries_dir(self) -> Path:
        return self.path.parent / ENTRIES_DIR

    def entry_file(self, header: str) -> Path:
        """The entry file for a BSD header (it may not exist yet): sys/bitops.h -> entries/sys_bitops.toml."""
        stem = header[:-2] if header.endswith(".h") else header
        return self.entries_dir / (re.sub(r"[^A-Za-z0-9]+", "_", stem) + ".toml")

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = self._load_entries()
        return self._entries

    def entry(self, name: str) -> Entry | None:
        return self.entries.get(name)

    def exclusion(self, name: str, context: str | None = None) -> Exclusion | None:
        """The not_in_catalog record for a name (in a context, or in any)."""
        for x in self.not_in_catalog:
            if (context is None or context in x.contexts) and x.claims(name):
                return x
        return None

    def headers(self) -> list[str]:
        """Headers that have entries, in catalog.toml's group order."""
        have = {e.header for e in self.entries.values()}
        return [g.header for g in self.groups if g.header in have]

    def libc_names(self) -> set[str]:
        """Names the C library provides in the user context (entries marked ``libc``, the libc group,
        and not_in_catalog names whose provider is libc; patterns are not expanded)."""
        names = {e.name for e in self.entries.values() if e.libc}
        for g in self.groups:
            if g.header == LIBC_GROUP:
                names |= g.names
        for x in self.not_in_catalog:
            if x.provider == "libc" and "user" in x.contexts:
                names |= x.names
        return names

    def provided_by_libc(self, name: str) -> bool:
        """Whether the C library provides the name in the user context."""
        e = self.entries.get(name)
        if e is not None and e.libc is not None:
            return True
        x = self.exclusion(name, "user")
        if x is not None:
            return x.provider == "libc"
        return self.group_of(name) == LIBC_GROUP

    def _load_entries(self) -> dict[str, Entry]:
        entries: dict[str, Entry] = {}
        if not self.entries_dir.is_dir():
            return entries
        headers = {g.header for g in self.groups}
        for f in sorted(self.entries_dir.glob("*.toml")):
            try:
                data = tomllib.loads(f.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise PortError(f"malformed TOML ({exc})", f, "fix the syntax") from None
            header = data.get("header")
            if header not in headers:
                raise PortError(f"header {header!r} is not a [[group]] of {self.path.name}", f,
                                f"set header to one of the groups or add a group to {self.path}")
            if f != self.entry_file(header):
                raise PortError(f"the entries of {header} belong in {self.entry_file(header).name}", f,
                                "rename the file")
            for i, raw in enumerate(data.get("entry", [])):
                e = _entry(raw, header, f, i)
                if e.name in entries:
                    prev = entries[e.name].file or f   # loaded entries always record their file
                    raise PortError(f"{e.name} is defined twice (also in {prev.name})", f,
                                    "keep one definition")
                entries[e.name] = e
        return entries


def _patterns(table: dict[str, Any], what: str, path: Path) -> list[re.Pattern[str]]:
    try:
        return [re.compile(p) for p in table.get("patterns", [])]
    except re.error as exc:
        raise PortError(f"{what}: bad pattern ({exc})", path, "fix the regular expression") from None


_ENTRY_KEYS = {"name", "kind", "c", "requires", "source", "contexts", "lang", "libc", "note"}


def _entry(raw: dict[str, Any], header: str, f: Path, i: int) -> Entry:
    name = raw.get("name")
    what = f"entry #{i + 1}" + (f" ({name})" if name else "")

    def bad(msg: str, fix: str) -> PortError:
        return PortError(f"{what}: {msg}", f, fix)

    if not isinstance(name, str) or not name:
        raise bad("no 'name'", "add name = \"...\"")
    extra = set(raw) - _ENTRY_KEYS
    if extra:
        raise bad(f"unknown key(s) {', '.join(sorted(extra))}", f"use only {', '.join(sorted(_ENTRY_KEYS))}")
    kind = raw.get("kind")
    if kind not in ENTRY_KINDS:
        raise bad(f"kind {kind!r} is not one of {', '.join(ENTRY_KINDS)}", "fix the kind")
    c = raw.get("c")
    if not isinstance(c, str) or not c.strip():
        raise bad("no C text ('c')", "write the definition")
    if not raw.get("source"):
        raise bad("no 'source'", "say where the value or semantics come from")
    contexts = tuple(raw.get("contexts", CONTEXTS))
    if not contexts or any(x not in CONTEXTS for x in contexts):
        raise bad(f"contexts {list(contexts)} must be a non-empty subset of {list(CONTEXTS)}", "fix contexts")
    lang = raw.get("lang", "any" if kind == CONSTANT else "c")
    if lang not in LANGS:
        raise bad(f"lang {lang!r} is not one of {', '.join(LANGS)}", "fix lang")
    requires = tuple(raw.get("requires", []))
    if not all(isinstance(r, str) for r in requires):
        raise bad("requires must be a list of names", "fix requires")
    return Entry(name, kind, c.rstrip("\n"), header, raw["source"], requires, contexts, lang,
                 raw.get("libc"), raw.get("note"), f, i)
