"""Read a generated Jamfile: which targets it builds and, per source, the headers, defines and flags.

``gen.py build`` for a Jam target (Haiku) compiles what the generated Jamfile asks for, so the
Jamfile is checked by being used: every include directory, define and flag an object is compiled
with comes from the Jamfile's rules, put in the order Haiku's build rules (build/jam/OverriddenJamRules
``Object``, HeadersRules) give them.

This is not a Jam interpreter.  It reads the flat subset the generator writes, and a statement
outside that subset is an error naming its line:

  SubDir HAIKU_TOP a b c ;                  the tree's place in a Haiku checkout
  SEARCH_SOURCE += <dirs> ;                 where sources are found, by name
  local NAME = <words> ;                    a list, used as $(NAME)
  SourceSysHdrs <sources> : <dirs> ;        per-source system include directories (-I)
  SourceHdrs <sources> : <dirs> ;           per-source local include directories (-iquote)
  ObjectDefines <sources> : <defines> ;     per-source defines (-D)
  ObjectCcFlags / ObjectC++Flags <sources> : <flags> ;
  SubDirCcFlags / SubDirC++Flags <flags> ;  flags of every object of the directory
  UseHeaders <dirs> [ : true ] ;            directory-wide include directories
  UsePrivateKernelHeaders ;                 directory-wide: $(TARGET_PRIVATE_KERNEL_HEADERS)
  KernelAddon NAME : <sources> ;            the kernel add-on
  StaticLibrary NAME : <sources> ;          a static library (libnvmm.a)
  SimpleTest NAME : <sources> : <libs> ;    a userland program

Words: ``[ FDirName $(SUBDIR) a b ]`` (a directory of the tree), ``$(NAME)`` for a local list,
``$(TARGET_PRIVATE_KERNEL_HEADERS)`` and ``$(HAIKU_TOP)``, which the caller supplies
(:class:`JamVars`).  Directories come back relative to the tree (``driver/x86``) or as absolute paths
in the sysroot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

_TOKEN = re.compile(r"\S+")


@dataclass
class JamVars:
    """What ``$(...)`` stands for besides the Jamfile's own lists: absolute directories."""

    haiku_top: Path
    private_kernel_headers: list[Path]


@dataclass
class SourceFlags:
    hdrs: list[str] = field(default_factory=list)          # local (-iquote)
    sys_hdrs: list[str] = field(default_factory=list)      # system (-I)
    defines: list[str] = field(default_factory=list)
    ccflags: list[str] = field(default_factory=list)
    cxxflags: list[str] = field(default_factory=list)


@dataclass
class JamTarget:
    kind: str                     # KernelAddon | StaticLibrary | SimpleTest
    name: str
    sources: list[str]            # tree-relative paths, found along SEARCH_SOURCE
    libs: list[str] = field(default_factory=list)
    line: int = 0


@dataclass
class Jamfile:
    path: Path
    subdir: list[str] = field(default_factory=list)        # SubDir HAIKU_TOP <these>
    search: list[str] = field(default_factory=list)        # SEARCH_SOURCE, tree-relative
    hdrs: list[str] = field(default_factory=list)          # directory-wide local includes
    sys_hdrs: list[str] = field(default_factory=list)      # directory-wide system includes
    ccflags: list[str] = field(default_factory=list)
    cxxflags: list[str] = field(default_factory=list)
    sources: dict[str, SourceFlags] = field(default_factory=dict)   # by source name
    targets: list[JamTarget] = field(default_factory=list)

    def flags(self, name: str) -> SourceFlags:
        return self.sources.setdefault(name, SourceFlags())

    def target(self, kind: str) -> list[JamTarget]:
        return [t for t in self.targets if t.kind == kind]


def _unescape(word: str) -> str:
    r"""A word as Jam's lexer reads it (``\x`` is ``x``), then as the shell running the compile action
    reads it: Jam pastes defines and flags into a shell command, where ``\"`` is ``"``.  So the
    Jamfile's ``NAME=\\\"v\\\"`` reaches the compiler as ``-DNAME="v"``."""
    once = re.sub(r"\\(.)", r"\1", word)
    return re.sub(r'\\(["\\$`])', r"\1", once)


def _statements(text: str) -> list[tuple[int, list[str]]]:
    """(first line, words) of each ``;``-terminated statement, comments removed."""
    out: list[tuple[int, list[str]]] = []
    words: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        for m in _TOKEN.finditer(line):
            w = m.group(0)
            if w.startswith("#"):
                break
            if not words:
                start = n
            if w == ";":
                out.append((start, words))
                words = []
            else:
                words.append(_unescape(w))
    if words:
        out.append((start, words))      # unterminated: reported by the reader
    return out


def read_jamfile(path: Path, tree: Path, vars: JamVars) -> Jamfile:
    """The Jamfile at ``path`` (in the rendered ``tree``), read into a :class:`Jamfile`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PortError(f"cannot read the Jamfile: {exc.strerror}", path, "run gen.py generate again") from None
    jam = Jamfile(path)
    lists: dict[str, list[str]] = {}
    statements = _statements(text)
    if statements and not text.rstrip().endswith(";"):
        raise PortError("the last statement has no ';'", f"{path}:{statements[-1][0]}", "end it with ' ;'")

    def where(line: int) -> str:
        return f"{path}:{line}"

    def words(items: list[str], line: int) -> list[str]:
        """Expand $(...) and [ FDirName ... ] in a list of words."""
        out: list[str] = []
        i = 0
        while i < len(items):
            w = items[i]
            if w == "[":
                try:
                    end = items.index("]", i)
                except ValueError:
                    raise PortError("'[' without ']'", where(line), "close the bracket") from None
                inner = items[i + 1:end]
                if not inner or inner[0] != "FDirName":
                    raise PortError(f"[ {' '.join(inner)} ] is not a rule this reader knows", where(line),
                                    "the generated Jamfile uses [ FDirName $(SUBDIR) dir ... ] only")
                out.append(_dirname(inner[1:], line))
                i = end + 1
                continue
            m = re.fullmatch(r"\$\(([A-Za-z_+][A-Za-z0-9_+]*)\)", w)
            if m:
                out.extend(_var(m.group(1), line))
            else:
                out.append(w)
            i += 1
        return out

    def _var(name: str, line: int) -> list[str]:
        if name in lists:
            return lists[name]
        if name == "TARGET_PRIVATE_KERNEL_HEADERS":
            return [str(p) for p in vars.private_kernel_headers]
        if name == "HAIKU_TOP":
            return [str(vars.haiku_top)]
        raise PortError(f"$({name}) is not defined", where(line), "define it with 'local NAME = ... ;' first")

    def _dirname(parts: list[str], line: int) -> str:
        if parts and parts[0] == "$(SUBDIR)":
            rel = "/".join(parts[1:])
            if not (tree / rel).is_dir():
                raise PortError(f"[ FDirName $(SUBDIR) {' '.join(parts[1:])} ] is not a directory of the tree",
                                where(line), "generate the tree again")
            return rel
        if parts and parts[0] == "$(HAIKU_TOP)":
            return str(vars.haiku_top.joinpath(*parts[1:]))
        raise PortError(f"FDirName {' '.join(parts)}: only $(SUBDIR) and $(HAIKU_TOP) are known", where(line),
                        "start the directory at $(SUBDIR) or $(HAIKU_TOP)")

    def split(rest: list[str], line: int, n: int) -> list[list[str]]:
        groups: list[list[str]] = [[]]
        for w in rest:
            if w == ":":
                groups.append([])
            else:
                groups[-1].append(w)
        if len(groups) > n:
            raise PortError(f"too many ':' groups (at most {n})", where(line), "check the rule's arguments")
        return [words(g, line) for g in groups] + [[] for _ in range(n - len(groups))]

    def find(name: str, line: int) -> str:
        for d in jam.search:
            if (tree / d / name).is_file():
                return f"{d}/{name}"
        raise PortError(f"source '{name}' is in no SEARCH_SOURCE directory", where(line),
                        "generate the tree again (or add its directory to SEARCH_SOURCE)")

    for line, st in statements:
        rule, rest = st[0], st[1:]
        if rule == "SubDir":
            if not rest or rest[0] != "HAIKU_TOP":
                raise PortError("SubDir must start at HAIKU_TOP", where(line), "write SubDir HAIKU_TOP src ... ;")
            jam.subdir = rest[1:]
        elif rule == "SEARCH_SOURCE" and rest[:1] == ["+="]:
            jam.search.extend(words(rest[1:], line))
        elif rule == "local":
            if len(rest) < 2 or rest[1] != "=":
                raise PortError("local needs NAME = words", where(line), "write local NAME = a b ;")
            lists[rest[0]] = words(rest[2:], line)
        elif rule in ("SourceSysHdrs", "SourceHdrs", "ObjectDefines", "ObjectCcFlags", "ObjectC++Flags"):
            sources, values = split(rest, line, 2)
            for s in sources:
                f = jam.flags(s)
                {"SourceSysHdrs": f.sys_hdrs, "SourceHdrs": f.hdrs, "ObjectDefines": f.defines,
                 "ObjectCcFlags": f.ccflags, "ObjectC++Flags": f.cxxflags}[rule].extend(values)
        elif rule == "SubDirCcFlags":
            jam.ccflags.extend(words(rest, line))
        elif rule == "SubDirC++Flags":
            jam.cxxflags.extend(words(rest, line))
        elif rule == "UseHeaders":
            dirs, system = split(rest, line, 2)
            (jam.sys_hdrs if system == ["true"] else jam.hdrs).extend(dirs)
        elif rule == "UsePrivateKernelHeaders":
            jam.sys_hdrs.extend(str(p) for p in vars.private_kernel_headers)
        elif rule in ("KernelAddon", "StaticLibrary", "SimpleTest"):
            names, sources, libs = split(rest, line, 3)
            if len(names) != 1:
                raise PortError(f"{rule} needs one name before ':'", where(line), f"write {rule} NAME : sources ;")
            jam.targets.append(JamTarget(rule, names[0], [find(s, line) for s in sources], libs, line))
        else:
            raise PortError(f"'{rule}' is not a rule this reader knows", where(line),
                            "the generated Jamfile's rules are listed in nvmm_port/run/jam.py")

    return jam
