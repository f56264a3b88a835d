"""Emit the minimal BSD compatibility headers a target needs, from the catalog's entries.

    needed = needed_names(surface.foreign_identifiers)            # NetBSD flavour, the driver
    files = render_compat(catalog, needed, spec.provides, "kernel", banner)
    # {"nvmm_compat.h": ..., "sys/bitops.h": ..., "machine/specialreg.h": ..., ...}

One header per BSD header path holds only the entries needed (``needed`` minus
``provided``, plus what those entries require), in a stable order, under an
include guard.  ``nvmm_compat.h`` includes every emitted header in dependency
order, and every emitted header includes ``nvmm_compat.h`` first, *before* its
own guard: whichever BSD path a source includes first, the umbrella then defines
every header in order, so a definition never precedes what it uses and any BSD
path yields every compat name, the way BSD headers include each other.

Contexts:

* ``kernel`` -- the driver, built freestanding (``-ffreestanding -nostdinc``):
  the catalog defines even ``uint64_t``, ``bool`` and ``NULL`` from compiler
  built-ins unless the target provides them.
* ``user`` -- libnvmm and the tests, built against a C library: names the C
  library provides (entries marked ``libc``, the ``libc`` group, not_in_catalog
  records whose provider is ``libc``) are never emitted; a header at a path the C
  library also has (``hosted_headers``) first includes the library's own with
  ``#include_next`` and guards each macro with ``#ifndef``.

Names in ``provided`` are assumed visible before any compat header (the target's
glue header comes first, e.g. by ``-include``).  Entries with ``lang = "c"`` sit
under ``#ifndef __ASSEMBLER__``, ``lang = "asm"`` ones under ``#ifdef
__ASSEMBLER__``, so the same headers serve upstream's .S files.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.catalog import CONTEXTS, Catalog, Entry
from ..analysis.model import ForeignIdentifier
from ..errors import PortError
from ..templating import template

UMBRELLA = "nvmm_compat.h"
COMMENT_WIDTH = 100
LANG_ORDER = ("any", "c", "asm")
LANG_GUARD = {"any": None, "c": "#ifndef __ASSEMBLER__", "asm": "#ifdef __ASSEMBLER__"}
LANG_CLOSE = {"any": None, "c": "#endif /* !__ASSEMBLER__ */", "asm": "#endif /* __ASSEMBLER__ */"}
NOTE_COLUMN = 48


class NeededNames(set[str]):
    """The set of names a build needs, remembering the foreign identifier behind each (for errors)."""

    def __init__(self, names: Iterable[str] = (), sources: dict[str, ForeignIdentifier] | None = None):
        super().__init__(names)
        self.sources = dict(sources or {})

    # set's own __or__ is generic in the other set's element type; names only ever join names
    def __or__(self, other: Set[str]) -> NeededNames:  # type: ignore[override]
        merged = NeededNames(set(self) | set(other), self.sources)
        merged.sources.update(getattr(other, "sources", {}))
        return merged

    __ror__ = __or__


def needed_names(foreign_identifiers: Iterable[ForeignIdentifier], flavour: str = "netbsd",
                 where: Iterable[str] = ("driver",)) -> NeededNames:
    """The identifiers (not members or tags) upstream's ``flavour`` uses in any part named in ``where``."""
    where = {where} if isinstance(where, str) else set(where)
    found: dict[str, ForeignIdentifier] = {}
    for f in foreign_identifiers:
        if f.kind != "identifier" or flavour not in f.flavours:
            continue
        if where & set(f.where.split("+")):
            found[f.name] = f
    return NeededNames(found, found)


# ---------------------------------------------------------------------------
# Resolution


@dataclass
class Resolution:
    """What one render emits: entries per header, and the C library headers the user context includes."""

    entries: dict[str, Entry] = field(default_factory=dict)
    libc_includes: set[str] = field(default_factory=set)


def resolve(catalog: Catalog, needed: Iterable[str], provided: Iterable[str], context: str,
            sources: dict[str, ForeignIdentifier] | None = None, libc_lacks: Iterable[str] = ()) -> Resolution:
    """The entries to emit for ``needed`` in ``context``: needed minus provided, closed over ``requires``.

    ``libc_lacks``: names the catalog takes from the C library that this target's C library does not
    have (Haiku's libroot has no BSD ioctl encoding): their catalog definitions are emitted.

    Raises PortError naming every needed name nothing defines, and where to add it.
    """
    lacks = set(libc_lacks)
    if context not in CONTEXTS:
        raise ValueError(f"context {context!r} is not one of {CONTEXTS}")
    provided = set(provided)
    sources = dict(sources or getattr(needed, "sources", {}) or {})
    res = Resolution()
    missing: list[str] = []
    user = context == "user"

    def want(name: str, by: Entry | None) -> None:
        if name in provided or name in res.entries:
            return
        e = catalog.entry(name)
        if user and catalog.provided_by_libc(name) and name not in lacks:
            if by is not None and e is not None and e.libc:
                res.libc_includes.add(e.libc)      # an emitted definition uses it: include its header
            return
        if e is not None and e.in_context(context):
            res.entries[name] = e
            for r in e.requires:
                want(r, e)
            return
        if by is not None:
            raise PortError(f"{by.name} requires {name}, which has no {context} entry", by.file,
                            f"add an entry for {name} to "
                            f"{_rel(catalog.entry_file(catalog.group_of(name) or 'unknown'))} or fix the requires list")
        missing.append(name)

    for name in sorted(set(needed)):
        want(name, None)
    if missing:
        raise MissingNames(catalog, missing, context, sources)
    return res


@dataclass(frozen=True)
class MissingName:
    """A needed name nothing defines: what is wrong and where the catalog would define it."""

    name: str
    uses: str            # " (3 uses: driver/nvmm.c)" or ""
    problem: str         # "has no compat definition", ...
    fix: str             # what to do in the catalog, or who provides it (``service``)
    service: bool        # an OS or C library service: never catalog business


class MissingNames(PortError):
    """Needed names without a definition: one line naming them all (where = the catalog), and
    ``items`` one per name, for a caller that knows which spec key would provide them."""

    def __init__(self, catalog: Catalog, missing: list[str], context: str, sources: dict[str, ForeignIdentifier]):
        self.context = context
        self.items = _missing_items(catalog, missing, context, sources)
        super().__init__(_missing_message(catalog, missing, context, sources), catalog.path.parent)


def _missing_items(catalog: Catalog, missing: list[str], context: str,
                   sources: dict[str, ForeignIdentifier]) -> list[MissingName]:
    items = []
    for name in missing:
        f = sources.get(name)
        uses = ""
        if f is not None:
            files = ", ".join(sorted(getattr(f, "files", None) or {}))
            uses = f" ({f.uses} use{'s' if f.uses != 1 else ''}{': ' + files if files else ''})"
        x = catalog.exclusion(name, context)
        group = catalog.group_of(name)
        e = catalog.entry(name)
        if x is not None:
            who = "the C library" if x.provider == "libc" else "the target's glue"
            items.append(MissingName(name, uses, f"is not catalog business ({x.reason})", f"{who} provides it", True))
        elif e is not None:
            items.append(MissingName(name, uses, f"has only a {'/'.join(e.contexts)} entry in the catalog",
                                     f"extend {_rel(e.file) if e.file else 'its entries file'}", False))
        elif group is not None:
            items.append(MissingName(name, uses, f"({group}) has no compat definition",
                                     f"add an entry to {_rel(catalog.entry_file(group))}", False))
        else:
            items.append(MissingName(name, uses, "is in no catalog group",
                                     f"add it to a [[group]] of {_rel(catalog.path)} and an entry to that group's "
                                     "entries file", False))
    return items


def _missing_message(catalog: Catalog, missing: list[str], context: str, sources: dict[str, ForeignIdentifier]) -> str:
    def uses(name: str) -> str:
        f = sources.get(name)
        if f is None:
            return ""
        files = ", ".join(sorted(getattr(f, "files", None) or {}))
        return f" ({f.uses} use{'s' if f.uses != 1 else ''}{': ' + files if files else ''})"

    services: dict[str, list[str]] = {}      # reason -> names
    parts = []
    for name in missing:
        x = catalog.exclusion(name, context)
        if x is not None:
            who = "the C library" if x.provider == "libc" else "the target's glue"
            services.setdefault(f"{x.reason}; {who} provides them", []).append(name + uses(name))
            continue
        group = catalog.group_of(name)
        e = catalog.entry(name)
        if e is not None:
            entry_file = e.file or catalog.entry_file(e.header)   # loaded entries always record their file
            parts.append(f"{name}{uses(name)} has only a {'/'.join(e.contexts)} entry: extend {_rel(entry_file)} "
                         "or list it in the target spec's [provides] names")
        elif group is not None:
            parts.append(f"{name}{uses(name)} ({group}) has no compat definition: add an entry to "
                         f"{_rel(catalog.entry_file(group))} or list it in the target spec's [provides] names")
        else:
            parts.append(f"{name}{uses(name)} is in no catalog group: add it to a [[group]] of {_rel(catalog.path)} "
                         "and an entry to that group's entries file, or list it in the target spec's [provides] names")
    for reason, names in services.items():
        parts.append(f"not catalog business ({reason}; list them in the target spec's [provides] names): "
                     + ", ".join(names))
    n = len(missing)
    return f"{n} needed name{'s' if n != 1 else ''} without a definition: " + "; ".join(parts)


def _rel(path: Path) -> str:
    """shim/bsd/... when the path is inside a project, else the path as given."""
    parts = path.parts
    for i in range(len(parts) - 1):
        if parts[i] == "shim" and parts[i + 1] == "bsd":
            return "/".join(parts[i:])
    return str(path)


# ---------------------------------------------------------------------------
# Ordering


def _reach(entry: Entry, chosen: dict[str, Entry]) -> set[str]:
    """Every emitted entry ``entry`` uses, directly or through other entries (macros included:
    a macro an inline function uses is expanded where the function is defined)."""
    seen: set[str] = set()
    stack = [r for r in entry.requires if r in chosen]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(r for r in chosen[n].requires if r in chosen and r not in seen)
    return seen


def _toposort(nodes: list[str], before: dict[str, set[str]], what: str, where: Path) -> list[str]:
    """Stable topological order: among the nodes whose predecessors are placed, the earliest in ``nodes``."""
    placed: list[str] = []
    done: set[str] = set()
    pending = list(nodes)
    while pending:
        for i, n in enumerate(pending):
            if before.get(n, set()) <= done:
                placed.append(n)
                done.add(n)
                del pending[i]
                break
        else:
            raise PortError(f"{what}: circular requires among {', '.join(pending)}", where,
                            "break the cycle: a definition cannot use what is defined after it")
    return placed


def order(catalog: Catalog, chosen: dict[str, Entry]) -> list[tuple[str, list[Entry]]]:
    """Headers in dependency order (ties: catalog.toml's group order), each with its entries in
    dependency order (ties: file order)."""
    by_header: dict[str, list[Entry]] = {}
    for e in chosen.values():
        by_header.setdefault(e.header, []).append(e)
    group_rank = {g.header: i for i, g in enumerate(catalog.groups)}
    headers = sorted(by_header, key=lambda h: (group_rank.get(h, len(group_rank)), h))
    hdr_before: dict[str, set[str]] = {h: set() for h in headers}
    ent_before: dict[str, set[str]] = {}
    for e in chosen.values():
        if e.lazy:
            continue
        reach = _reach(e, chosen)
        ent_before[e.name] = {n for n in reach if chosen[n].header == e.header}
        hdr_before[e.header] |= {chosen[n].header for n in reach} - {e.header}
    out = []
    for h in _toposort(headers, hdr_before, "compat headers", catalog.path):
        ents = sorted(by_header[h], key=lambda e: (LANG_ORDER.index(e.lang), e.index))
        names = _toposort([e.name for e in ents], ent_before, h, catalog.entry_file(h))
        out.append((h, [chosen[n] for n in names]))
    return out


# ---------------------------------------------------------------------------
# The view model the templates loop over


def guard_of(path: str) -> str:
    if path == UMBRELLA:
        return "NVMM_COMPAT_H"
    return "NVMM_COMPAT_" + re.sub(r"[^A-Za-z0-9]", "_", path).upper()


def _comment(text: str) -> list[str]:
    """A C comment, one line when it fits, else a block."""
    text = " ".join(text.split())
    if len(text) + 6 <= COMMENT_WIDTH:
        return [f"/* {text} */"]
    return ["/*"] + [f" * {line}" for line in textwrap.wrap(text, COMMENT_WIDTH - 3)] + [" */"]


def _banner(header_comment: str) -> list[str]:
    text = header_comment.strip("\n")
    if not text.strip():
        return []
    if text.lstrip().startswith(("/*", "//")):
        return text.splitlines()
    return ["/*"] + [f" * {line.rstrip()}" if line.strip() else " *" for line in text.splitlines()] + [" */"]


def _define_name(entry: Entry) -> str | None:
    """The macro an entry defines, when its text is a #define of the entry's name (for #ifndef guards)."""
    m = re.match(r"\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)", entry.c)
    return m.group(1) if m and m.group(1) == entry.name else None


def _with_note(line: str, note: str | None) -> str:
    if not note:
        return line
    width = len(line.expandtabs(8))
    tabs = (NOTE_COLUMN - width + 7) // 8 if width < NOTE_COLUMN else 1
    return line + "\t" * tabs + f"/* {note} */"


def _item(entry: Entry, guard_macros: bool) -> dict[str, Any]:
    multiline = "\n" in entry.c
    guard = guard_macros and entry.kind in ("macro", "constant") and (
        _define_name(entry) is not None or entry.c.lstrip().startswith("#if"))
    lines = entry.c.splitlines() if multiline else [_with_note(entry.c, entry.note)]
    return {"name": entry.name, "multiline": multiline, "ifndef": entry.name if guard else None, "lines": lines}


def _sections(entries: list[Entry], guard_macros: bool) -> list[dict[str, Any]]:
    sections = []
    for lang in LANG_ORDER:
        ents = [e for e in entries if e.lang == lang]
        if not ents:
            continue
        groups: list[dict[str, Any]] = []
        for e in ents:
            if not groups or groups[-1]["source"] != e.source:
                groups.append({"source": e.source, "comment": _comment(e.source), "entries": []})
            groups[-1]["entries"].append(_item(e, guard_macros))
        for g in groups:      # a multi-line definition stands apart from its neighbours
            for i, it in enumerate(g["entries"]):
                it["blank_before"] = i > 0 and (it["multiline"] or g["entries"][i - 1]["multiline"]
                                                or bool(it["ifndef"]))
        sections.append({"lang": lang, "open": LANG_GUARD[lang], "groups": groups,
                         "close": LANG_CLOSE[lang]})
    return sections


def render_compat(catalog: Catalog, needed: Iterable[str], provided: Iterable[str], context: str,
                  header_comment: str, extra_paths: Iterable[str] = (), *,
                  sources: dict[str, ForeignIdentifier] | None = None, libc_lacks: Iterable[str] = ()
                  ) -> dict[str, str]:
    """{relative path: text} of the compat headers for ``needed`` in ``context`` ("kernel" or "user").

    ``header_comment`` goes at the top of every file (the text of a comment, or a whole C comment);
    ``extra_paths`` are include paths upstream uses that hold no entry: they become headers that
    forward to nvmm_compat.h.  ``sources`` maps names to their ForeignIdentifier for error messages
    (``needed_names`` results carry it already).
    """
    res = resolve(catalog, needed, provided, context, sources, libc_lacks)
    ordered = order(catalog, res.entries)
    user = context == "user"
    hosted = catalog.hosted_headers if user else frozenset()
    banner = _banner(header_comment)
    total: dict[str, int] = {}
    for e in catalog.entries.values():
        total[e.header] = total.get(e.header, 0) + 1
    files: dict[str, str] = {}
    for path, entries in ordered:
        files[path] = template("compat/header.h.j2").render(
            banner=banner, context=context, umbrella=UMBRELLA,
            header={"path": path, "guard": guard_of(path), "hosted": path in hosted,
                    "about": _comment(f"<{path}>: {catalog.title_of(path)}. {len(entries)} of the catalog's "
                                      f"{total.get(path, len(entries))} definitions for this header, the ones "
                                      f"this {context} build needs."),
                    "sections": _sections(entries, user and path in hosted)})
    for path in sorted(set(extra_paths) - set(files) - {UMBRELLA}):
        files[path] = template("compat/forward.h.j2").render(
            banner=banner, context=context, umbrella=UMBRELLA,
            header={"path": path, "guard": guard_of(path), "hosted": path in hosted,
                    "about": _comment(f"<{path}>: upstream includes it; the compat layer defines nothing "
                                      f"here beyond what {UMBRELLA} gathers.")})
    files[UMBRELLA] = template("compat/umbrella.h.j2").render(
        banner=banner, context=context, guard=guard_of(UMBRELLA),
        libc_includes=sorted(res.libc_includes), headers=[p for p, _ in ordered], angle=user,
        about=_comment(f"{UMBRELLA}: every BSD compatibility header of this {context} build, each after "
                       "the ones it uses. Each of them includes this file first, so including any BSD path "
                       "gives every compat name."))
    return dict(sorted(files.items()))
