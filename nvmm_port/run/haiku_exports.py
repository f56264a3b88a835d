"""What Haiku's kernel and libroot.so export, established from Haiku's sources (no Haiku binary needed).

The Haiku target links a kernel add-on and userland programs on Linux.  Nothing here can load
them, so the build checks instead that every symbol they leave undefined is one the kernel
(for the add-on) or libroot.so (for libnvmm and the tests) defines and exports.  Both export every
global symbol: the kernel is linked with ``-export-dynamic`` and the version script kernel_versions
(``global: *;``); libroot.so is a shared library whose version script libroot_versions has no
``local:`` part.  So the export set is "every global definition of the objects that make up the
binary", and this module establishes it in two steps.

1. Which sources make up the binary: the Jamfiles, read by a small Jam interpreter (:class:`_Jam`).
   It runs the Jamfiles from ``src/system/kernel/Jamfile`` (resp. ``src/system/libroot/Jamfile``)
   with the variables of an x86_64 build (TARGET_ARCH x86_64, TARGET_KERNEL_ARCH_DIR x86,
   TARGET_KERNEL_PLATFORM bios_ia32 as build/jam/ArchitectureRules sets for x86_64, TARGET_ARCHS
   x86_64), following ``SubInclude`` / ``HaikuSubInclude``, ``local`` and global variables,
   ``SEARCH_SOURCE`` (reset by ``SubDir``) and ``SEARCH on [ FGristFiles ... ]``, ``for`` loops,
   ``on`` blocks and ``if``/``else``, whose conditions are evaluated (``=``, ``!=``, ``in``, ``!``,
   ``&&``, ``||``; an unset variable is empty, so ``$(HAIKU_MULTIUSER_QUERY) = 1`` is false and
   other architectures' branches are not taken).  Rules it models: ``KernelMergeObject``,
   ``KernelStaticLibrary``, ``MergeObject``, ``MergeObjectFromObjects``, ``StaticLibrary``,
   ``KernelLd``, ``SharedLibrary`` (sources and objects), ``SubDir``, ``FDirName``, ``FGristFiles``,
   ``MultiArchSubDirSetup`` (one architecture object, x86_64; none when the Jamfile names only other
   architectures), ``MultiArchDefaultGristFiles``.  Any other rule is a no-op returning nothing
   (``FIsBuildFeatureEnabled`` too: optional features such as zstd are off).  The binary is then
   ``KernelLd kernel_x86_64`` (its merge objects, and theirs, recursively; shared objects it links
   against, linkhack.so, are not followed) or ``SharedLibrary libroot.so`` (``libroot_init.c`` and its
   merge objects; the libgcc/libsupc++ parts are not sources and are not included).  A source is
   looked up in its ``SEARCH`` directories in order; one found in none (the kernel's
   ``kernel_misc.o`` sources live in src/kits, outside the imported tree) is listed in
   :attr:`ExportSet.missing`.

2. Which global symbols each source defines: a declaration scanner, not a compiler.
   C and C++ sources are tokenized (comments and line continuations removed) and read at namespace
   scope; function bodies, class bodies and initializers are skipped by brace counting.
   Definitions kept: functions with a body, and variables (with or without initializer, ``extern``
   ones only when initialized), including ``struct x {...} gVar;``.  Not kept: ``static`` ones,
   functions declared ``static`` earlier in the file with the same parameters (overloads with other
   parameters keep their own linkage), ``inline`` functions, templates, typedefs, anything in an
   anonymous namespace or with ``visibility("hidden")`` / ``attribute_hidden`` / musl's ``hidden``,
   C++ namespace-scope ``const`` objects (internal linkage in C++).  Headers are not scanned for
   definitions (their functions are static or inline).
   Linkage: everything in a ``.c`` file has C linkage.  In a C++ file a definition has C linkage
   when it is inside ``extern "C" { }`` (or ``__BEGIN_DECLS``), carries ``extern "C"``, or is an
   unqualified function at global namespace whose name a header declares inside ``extern "C"``
   (any header under headers/ or the scanned source trees: KernelExport.h, OS.h, vm/vm.h, smp.h
   ...; which header the source actually includes is not checked) or that the same file declared
   ``extern "C"`` before.  Other C++ functions, and variables in a namespace or class, have C++
   linkage and are kept as qualified names (``VMCache::Init``, ``BKernel::Thread::Get``).  Variables
   at global namespace are C names (the Itanium ABI does not mangle them).
   Aliases: glibc's ``weak_alias``, ``strong_alias``, ``ldbl_strong_alias``, ``ldbl_weak_alias``,
   ``versioned_symbol``, ``default_symbol_version``; Haiku's ``B_DEFINE_WEAK_ALIAS``,
   ``B_DEFINE_SYMBOL_VERSION`` and ``DEFINE_LIBROOT_KERNEL_SYMBOL_VERSION`` (only default ``@@``
   versions: a ``name@VERSION`` symbol cannot be linked against); BSD ``__weak_reference`` and
   ``__strong_reference``; ``__attribute__((alias(...)))`` declarations.  ``libc_hidden_def`` and
   friends only make hidden aliases and add nothing.
   Assembly (``.S``/``.s``): ``FUNCTION(x)``, ``SYMBOL(x)``, ``ENTRY(x)``, ``.globl``/``.global``/
   ``.weak`` x, the alias macros above, and ``.symver``.
   Generated sources: libroot's os/syscalls.S includes the generated ``syscalls.S.inc``, one stub per
   ``_kern_*`` function; those names are taken from headers/private/system/syscalls.h.

   Preprocessor: not run, but read a little.  A file's own ``#define``s are followed: ``#if``/
   ``#ifdef``/``#elif`` conditions over ``defined``, ``!``, ``&&``, ``||``, comparisons, numbers,
   ``__cplusplus`` (the file's language), macros the file defines or ``#undef``s, and the macros
   the build fixes (:data:`KERNEL_MACROS`, :data:`LIBROOT_MACROS`: ``_KERNEL_MODE`` defined for the
   kernel only, ``__x86_64__`` and ``__HAIKU__`` defined, ``_BOOT_MODE``, ``_LOADER_MODE`` and other
   architectures' macros undefined) are decided;
   ``#include "x.c"`` / ``"x.cpp"`` relative to the file is read in place with the macros so far
   (strtoul.c: ``#define UNSIGNED 1``, ``#include "strtol.c"``; vfs.cpp includes vfs_request_io.cpp);
   an object-like rename ``#define strtol strtoul`` makes a definition of strtol count as strtoul
   where the rename certainly applies, and as every name it may stand for where that is unknown;
   a function-like macro whose body defines a function named by one of its parameters (glibc's
   ``GETOPT_ENTRY(getopt, 0)``) defines that argument where it is invoked.

Known approximations: a condition that depends on anything else (headers, other command-line
defines, the compiler version) is unknown and every branch of it is scanned, so the set is a
superset where sources differ by configuration: a name defined only under a configuration the build
turns off still counts (both the debug and the slab ``malloc`` of the kernel; qsort.c's qsort_s and
__qsort_r_compat branches). Brace counting goes on from the first scanned branch. Other macro-made
definitions are not seen, nor headers' non-inline definitions. A C++ function is given C linkage
when any header declares its name extern "C", whether or not the source includes it, and overloads
are not told apart except against the file's own ``static`` prototypes. Jam ``rule`` definitions are
not run (only the rules above are modelled), target-specific variables other than ``SEARCH`` are
ignored, and ``if`` conditions on build features are false.

Scanning is fast (about half a second per binary for ~300 kernel and ~870 libroot sources plus
~2,300 headers), but the result can be cached: pass ``cache_dir`` (a directory) and it is kept as
JSON named by a digest of the paths and sizes of every file read (Jamfiles, sources, headers) and
of this scanner's version.

The other helpers: :func:`elf_undefined_symbols` reads an ELF object's ``.symtab`` (or ``.dynsym``)
with :mod:`struct`; :func:`unresolved` says which of those names an :class:`ExportSet` does not
provide, demangling C++ names with one ``c++filt`` call.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

# bump when the scanner's rules change: it is part of the cache key
SCANNER_VERSION = 1

X86_64_VARS: dict[str, list[str]] = {
    "TARGET_ARCH": ["x86_64"],
    "TARGET_ARCHS": ["x86_64"],
    "TARGET_PACKAGING_ARCH": ["x86_64"],
    "TARGET_KERNEL_ARCH": ["x86_64"],
    "TARGET_KERNEL_ARCH_DIR": ["x86"],
    "TARGET_KERNEL_PLATFORM": ["bios_ia32"],
    "HAIKU_KERNEL_PLATFORM": ["bios_ia32"],
    "HAIKU_ARCH": ["x86_64"],
    "HAIKU_PACKAGING_ARCHS": ["x86_64"],
    "TARGET_PLATFORM": ["haiku"],
    "DOTDOT": [".."],
    "SUFOBJ": [".o"],
}


# what the x86_64 build defines for every object of the binary (value) or never defines (None):
# SetupKernel compiles kernel objects with -D_KERNEL_MODE; boot loader and other architectures' code is
# not part of either binary
_OTHER_ARCHES = ["__i386__", "__i386", "__arm__", "__aarch64__", "__riscv", "__powerpc__", "__POWERPC__",
                 "__M68K__", "__m68k__", "__sparc__", "__sparc64__", "__mips__"]
_COMMON_MACROS: dict[str, str | None] = {"__HAIKU__": "1", "__x86_64__": "1", "__x86_64": "1", "__amd64__": "1",
                                         "_BOOT_MODE": None, "_LOADER_MODE": None,
                                         **dict.fromkeys(_OTHER_ARCHES)}
KERNEL_MACROS: dict[str, str | None] = {**_COMMON_MACROS, "_KERNEL_MODE": "1"}
LIBROOT_MACROS: dict[str, str | None] = {**_COMMON_MACROS, "_KERNEL_MODE": None}


@dataclass(frozen=True)
class ExportSet:
    """The global symbols one Haiku binary exports, as established from its sources."""

    binary: str                      # "kernel_x86_64" or "libroot.so"
    tree: Path                       # the Haiku tree (its root: headers/, src/, build/)
    c_names: frozenset[str]          # C-linkage names: symbols exactly as the linker sees them
    cxx_names: frozenset[str]        # C++ functions and variables by qualified name ("VMCache::Init")
    method: str                      # how the set was established (rule, scanner version)
    files_scanned: int               # sources read for definitions (headers not counted)
    headers_scanned: int = 0         # headers read for extern "C" declarations
    missing: tuple[str, ...] = ()    # sources the Jamfiles list that the tree does not have
    cached: bool = False             # read from the cache rather than scanned

    def provides(self, name: str) -> bool:
        """Whether the C-linkage symbol ``name`` is exported."""
        return name in self.c_names

    def to_json(self) -> dict[str, object]:
        return {"binary": self.binary, "tree": str(self.tree), "c_names": sorted(self.c_names),
                "cxx_names": sorted(self.cxx_names), "method": self.method,
                "files_scanned": self.files_scanned, "headers_scanned": self.headers_scanned,
                "missing": list(self.missing)}

    @classmethod
    def from_json(cls, data: object, tree: Path) -> ExportSet | None:
        """The set a cache file holds, or None when it is not one."""
        if not isinstance(data, dict):
            return None
        c, cxx, missing = data.get("c_names"), data.get("cxx_names"), data.get("missing")
        binary, method = data.get("binary"), data.get("method")
        files, headers = data.get("files_scanned"), data.get("headers_scanned")
        if not (isinstance(c, list) and isinstance(cxx, list) and isinstance(missing, list)
                and isinstance(binary, str) and isinstance(method, str)
                and isinstance(files, int) and isinstance(headers, int)):
            return None
        if not all(isinstance(x, str) for x in [*c, *cxx, *missing]):
            return None
        return cls(binary, tree, frozenset(str(x) for x in c), frozenset(str(x) for x in cxx), method, files,
                   headers, tuple(str(x) for x in missing), cached=True)


# ---------------------------------------------------------------------------------------------
# Step 1: the Jamfiles


@dataclass
class _Source:
    name: str                 # as the Jamfile lists it
    key: str                  # gristed: "<src!system!kernel>vm.cpp"


@dataclass
class _Object:
    """A merge object, static library or linked binary: its sources and the objects it takes in."""

    sources: list[_Source] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)


class _JamError(Exception):
    pass


_JAM_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')


def _jam_tokens(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        for m in _JAM_TOKEN.finditer(line):
            tok = m.group(0)
            if tok.startswith("#"):
                break
            out.append(tok[1:-1] if tok.startswith('"') and len(tok) >= 2 else tok)
    return out


def _ungrist(name: str) -> str:
    return name[name.index(">") + 1:] if name.startswith("<") and ">" in name else name


class _Jam:
    """Runs the subset of Jam the kernel's and libroot's Jamfiles use (see the module docstring)."""

    def __init__(self, tree: Path, variables: dict[str, list[str]]):
        self.tree = tree
        self.globals: dict[str, list[str]] = {k: list(v) for k, v in variables.items()}
        self.globals["HAIKU_TOP"] = [str(tree)]
        self.frames: list[dict[str, list[str]]] = []
        self.objects: dict[str, _Object] = {}          # by name without grist
        self.search: dict[str, list[str]] = {}         # gristed source -> directories
        self.jamfiles: list[Path] = []

    # -- variables
    def get(self, name: str) -> list[str]:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        return self.globals.get(name, [])

    def set(self, name: str, value: list[str], op: str = "=") -> None:
        target = self.globals
        for frame in reversed(self.frames):
            if name in frame:
                target = frame
                break
        if op == "+=":
            target[name] = [*target.get(name, []), *value]
        elif op == "?=":
            if not target.get(name):
                target[name] = list(value)
        else:
            target[name] = list(value)

    def expand(self, word: str) -> list[str]:
        """``$(VAR)`` and ``$(VAR:G=x)`` expansion, as Jam does it: a product over the values."""
        i = word.find("$(")
        if i < 0:
            return [word]
        depth, j = 0, i + 1
        while j < len(word):
            if word[j] == "(":
                depth += 1
            elif word[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner, head, tail = word[i + 2:j], word[:i], word[j + 1:]
        out: list[str] = []
        for spec in self.expand(inner):
            name, _, mods = spec.partition(":")
            values = [self._modify(v, mods) for v in self.get(name)] if mods else self.get(name)
            for v in values:
                for rest in self.expand(tail):
                    out.append(head + v + rest)
        return out

    @staticmethod
    def _modify(value: str, mods: str) -> str:
        grist = value[:value.index(">") + 1] if value.startswith("<") and ">" in value else ""
        rest = value[len(grist):]
        d, base = os.path.split(rest)
        stem, suffix = os.path.splitext(base)
        for mod in re.findall(r"[A-Z](?:=[^:]*)?", mods):
            letter, _, arg = mod.partition("=")
            if letter == "G":
                grist = f"<{arg}>" if arg and not arg.startswith("<") else arg
            elif letter == "S":
                suffix = arg
            elif letter == "B":
                stem = arg
            elif letter == "D":
                d = arg
        base = stem + suffix
        return grist + (os.path.join(d, base) if d else base)

    # -- parsing and running
    def include(self, jamfile: Path) -> None:
        if not jamfile.is_file():
            return
        self.jamfiles.append(jamfile)
        toks = _jam_tokens(jamfile.read_text(errors="replace"))
        saved = {k: self.globals.get(k, []) for k in ("SUBDIR", "SEARCH_SOURCE", "SOURCE_GRIST")}
        self.frames.append({})
        try:
            self._block(toks, 0, len(toks))
        finally:
            self.frames.pop()
            self.globals.update(saved)

    def _match_brace(self, toks: list[str], i: int) -> int:
        """Index of the ``}`` closing the ``{`` at ``i``."""
        depth = 0
        for j in range(i, len(toks)):
            if toks[j] == "{":
                depth += 1
            elif toks[j] == "}":
                depth -= 1
                if depth == 0:
                    return j
        raise _JamError("unbalanced braces")

    def _block(self, toks: list[str], i: int, end: int) -> None:
        while i < end:
            i = self._statement(toks, i, end)

    def _list(self, toks: list[str], i: int, stops: tuple[str, ...]) -> tuple[list[str], int]:
        """Words up to one of ``stops`` (not consumed), ``[ rule ... ]`` evaluated."""
        out: list[str] = []
        while i < len(toks) and toks[i] not in stops:
            if toks[i] == "[":
                depth, j = 0, i
                while j < len(toks):
                    if toks[j] == "[":
                        depth += 1
                    elif toks[j] == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                out += self._invoke_words(toks[i + 1:j])
                i = j + 1
            else:
                out += self.expand(toks[i])
                i += 1
        return out, i

    def _invoke_words(self, toks: list[str]) -> list[str]:
        if not toks:
            return []
        if toks[0] == "on":       # [ on target return ... ]: target variables are not modelled
            return []
        args, i = self._args(toks, 1)
        names = self.expand(toks[0])
        return self.call(names[0], args) if names else []

    def _args(self, toks: list[str], i: int) -> tuple[list[list[str]], int]:
        args: list[list[str]] = []
        while True:
            words, i = self._list(toks, i, (":", ";", "{", "}"))
            args.append(words)
            if i < len(toks) and toks[i] == ":":
                i += 1
                continue
            return args, i

    def _statement(self, toks: list[str], i: int, end: int) -> int:
        tok = toks[i]
        if tok == "{":
            close = self._match_brace(toks, i)
            self.frames.append({})
            try:
                self._block(toks, i + 1, close)
            finally:
                self.frames.pop()
            return close + 1
        if tok in ("rule", "actions"):
            j = i
            while j < end and toks[j] != "{":
                j += 1
            return self._match_brace(toks, j) + 1 if j < end else end
        if tok == "local":
            names, j = self._list(toks, i + 1, ("=", ";"))
            value: list[str] = []
            if toks[j] == "=":
                value, j = self._list(toks, j + 1, (";",))
            for n in names:
                self.frames[-1][n] = list(value)
            return j + 1
        if tok == "if":
            j = i + 1
            while toks[j] != "{":
                j += 1
            cond = self._condition(toks[i + 1:j])
            close = self._match_brace(toks, j)
            k = close + 1
            else_start = else_end = None
            if k < end and toks[k] == "else":
                if toks[k + 1] == "{":
                    else_start, else_end = k + 1, self._match_brace(toks, k + 1) + 1
                else:   # else if ...
                    else_start = k + 1
                    else_end = self._statement_end(toks, k + 1, end)
                k = else_end
            if cond:
                self._statement(toks, j, close + 1)
            elif else_start is not None and else_end is not None:
                self._statement(toks, else_start, else_end)
            return k
        if tok == "for":
            var = toks[i + 1]
            values, j = self._list(toks, i + 3, ("{",))
            close = self._match_brace(toks, j)
            for v in values:
                self.frames.append({var: [v]})
                try:
                    self._block(toks, j + 1, close)
                finally:
                    self.frames.pop()
            return close + 1
        if tok == "on":
            _targets, j = self._list(toks, i + 1, ("{", ";"))
            if toks[j] == "{":
                return self._statement(toks, j, end)
            return j + 1
        if tok in ("return", "include", "break", "continue", "while", "switch", "jumptoeof"):
            j = i
            while j < end and toks[j] != ";" and toks[j] != "{":
                j += 1
            if j < end and toks[j] == "{":
                return self._match_brace(toks, j) + 1
            return j + 1
        # VAR on targets = value ;   VAR = value ;   Rule args ;
        if i + 1 < end and toks[i + 1] == "on":
            targets, j = self._list(toks, i + 2, ("=", "+=", "?=", ";"))
            op = toks[j]
            value, j = self._list(toks, j + 1, (";",)) if op != ";" else ([], j)
            names = self.expand(tok)
            if names and names[0] == "SEARCH":
                for t in targets:
                    old = self.search.get(t, []) if op == "+=" else []
                    self.search[t] = [*old, *value]
            return j + 1
        if i + 1 < end and toks[i + 1] in ("=", "+=", "?="):
            value, j = self._list(toks, i + 2, (";",))
            for name in self.expand(tok):
                self.set(name, value, toks[i + 1])
            return j + 1
        if i + 2 < end and toks[i + 1] == "default" and toks[i + 2] == "=":
            value, j = self._list(toks, i + 3, (";",))
            for name in self.expand(tok):
                self.set(name, value, "?=")
            return j + 1
        args, j = self._args(toks, i + 1)
        names = self.expand(tok)
        if names:
            self.call(names[0], args)
        return j + 1

    def _statement_end(self, toks: list[str], i: int, end: int) -> int:
        """Where the (if/else) statement starting at ``i`` ends, without running it."""
        if toks[i] == "{":
            return self._match_brace(toks, i) + 1
        if toks[i] == "if":
            j = i + 1
            while toks[j] != "{":
                j += 1
            k = self._match_brace(toks, j) + 1
            if k < end and toks[k] == "else":
                return self._statement_end(toks, k + 1, end)
            return k
        j = i
        while j < end and toks[j] != ";":
            j += 1
        return j + 1

    def _condition(self, toks: list[str]) -> bool:
        pos = [0]

        def peek() -> str | None:
            return toks[pos[0]] if pos[0] < len(toks) else None

        def operand() -> list[str]:
            words: list[str] = []
            while peek() is not None and peek() not in ("=", "!=", "in", "<", ">", "<=", ">=", "&&", "||",
                                                        ")", "("):
                t = toks[pos[0]]
                if t == "[":
                    depth, j = 0, pos[0]
                    while j < len(toks):
                        depth += toks[j] == "["
                        depth -= toks[j] == "]"
                        if depth == 0:
                            break
                        j += 1
                    words += self._invoke_words(toks[pos[0] + 1:j])
                    pos[0] = j + 1
                    continue
                words += self.expand(t)
                pos[0] += 1
            return words

        def atom() -> bool:
            if peek() == "!":
                pos[0] += 1
                return not atom()
            if peek() == "(":
                pos[0] += 1
                value = disjunction()
                if peek() == ")":
                    pos[0] += 1
                return value
            left = operand()
            op = peek()
            if op in ("=", "!=", "<", ">", "<=", ">="):
                pos[0] += 1
                right = operand()
                if op == "=":
                    return left == right
                if op == "!=":
                    return left != right
                return False
            if op == "in":
                pos[0] += 1
                right = operand()
                return all(w in right for w in left)
            return any(w for w in left)

        def conjunction() -> bool:
            value = atom()
            while peek() == "&&":
                pos[0] += 1
                other = atom()
                value = value and other
            return value

        def disjunction() -> bool:
            value = conjunction()
            while peek() == "||":
                pos[0] += 1
                other = conjunction()
                value = value or other
            return value

        return disjunction()

    # -- rules
    def _subdir_path(self, parts: list[str]) -> Path:
        if parts and parts[0] == "HAIKU_TOP":
            parts = parts[1:]
        return self.tree.joinpath(*parts) if parts else self.tree

    def _grist(self) -> str:
        return "<" + "!".join(self.get("SOURCE_GRIST")) + ">"

    def _sources(self, names: list[str]) -> list[_Source]:
        out = []
        for n in names:
            key = n if n.startswith("<") else self._grist() + n
            self.search.setdefault(key, list(self.get("SEARCH_SOURCE")))
            if key not in self.search or not self.search[key]:
                self.search[key] = list(self.get("SEARCH_SOURCE"))
            out.append(_Source(_ungrist(n), key))
        return out

    def _define(self, name: str, sources: list[str], objects: list[str]) -> None:
        obj = self.objects.setdefault(_ungrist(name), _Object())
        obj.sources += self._sources(sources)
        obj.objects += [_ungrist(o) for o in objects]

    def call(self, rule: str, args: list[list[str]]) -> list[str]:
        a = [*args, [], [], [], []]
        if rule == "SubDir":
            sub = self._subdir_path(a[0])
            self.globals["SUBDIR"] = [str(sub)]
            self.globals["SEARCH_SOURCE"] = [str(sub)]
            rel = sub.relative_to(self.tree).parts if sub != self.tree else ()
            self.globals["SOURCE_GRIST"] = list(rel)
            return []
        if rule == "SubInclude":
            self.include(self._subdir_path(a[0]) / "Jamfile")
            return []
        if rule == "HaikuSubInclude":
            self.include(Path(self.get("SUBDIR")[0]).joinpath(*a[0]) / "Jamfile")
            return []
        if rule == "FDirName":
            return [os.path.join(*a[0])] if a[0] else []
        if rule == "FGristFiles":
            return [w if w.startswith("<") else self._grist() + w for w in a[0]]
        if rule == "MultiArchSubDirSetup":
            return ["<arch>x86_64"] if not a[0] or "x86_64" in a[0] else []
        if rule == "MultiArchDefaultGristFiles":
            return [f"<x86_64>{w}" for w in a[0]]
        if rule in ("KernelMergeObject", "MergeObject"):
            for name in a[0]:
                self._define(name, a[1], a[3])
            return []
        if rule == "MergeObjectFromObjects":
            for name in a[0]:
                self._define(name, [], a[1] + a[2])
            return []
        if rule in ("KernelStaticLibrary", "StaticLibrary", "Library"):
            for name in a[0]:
                self._define(name, a[1], [])
            return []
        if rule == "KernelLd":
            for name in a[0]:
                if _ungrist(name) not in self.objects:
                    self._define(name, [], a[1])
            return []
        if rule == "SharedLibrary":
            for name in a[0]:
                if _ungrist(name) not in self.objects:
                    self._define(name, a[1], a[2])
            return []
        return []

    def resolve(self, binary: str) -> tuple[list[Path], list[str]]:
        """The source files of ``binary`` (recursively through merge objects) and the missing ones."""
        files: list[Path] = []
        missing: list[str] = []
        seen_obj: set[str] = set()
        seen_file: set[Path] = set()

        def walk(name: str) -> None:
            if name in seen_obj:
                return
            seen_obj.add(name)
            obj = self.objects.get(name)
            if name != binary and name.endswith(".so"):
                return          # a shared object linked against, not merged in
            if obj is None:
                if not name.endswith(".so") and name.endswith((".o", ".a")):
                    missing.append(f"object {name}")
                return
            for src in obj.sources:
                for d in self.search.get(src.key, []):
                    p = Path(os.path.normpath(os.path.join(d, src.name)))
                    if p.is_file():
                        if p not in seen_file:
                            seen_file.add(p)
                            files.append(p)
                        break
                else:
                    missing.append(src.name)
            for o in obj.objects:
                walk(o)

        walk(binary)
        return files, missing


def _binary_sources(tree: Path, top: str, binary: str) -> tuple[list[Path], list[str], list[Path]]:
    jam = _Jam(tree, X86_64_VARS)
    top_jamfile = tree / top / "Jamfile"
    if not top_jamfile.is_file():
        raise PortError(f"no Jamfile at {top}/Jamfile", tree,
                        "point at the root of a Haiku tree (the one holding headers/ and src/)")
    try:
        jam.include(top_jamfile)
    except (_JamError, IndexError) as e:
        raise PortError(f"cannot read the Jamfiles under {top}: {str(e) or 'unexpected end'}", top_jamfile) from e
    if binary not in jam.objects:
        raise PortError(f"the Jamfiles under {top} do not build {binary}", top_jamfile)
    files, missing = jam.resolve(binary)
    return files, missing, jam.jamfiles


# ---------------------------------------------------------------------------------------------
# Step 2: the definitions in each source

_COMMENT_OR_STRING = re.compile(
    r'("(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')|/\*.*?\*/|//[^\n]*', re.S)
_CTOKEN = re.compile(r'[A-Za-z_]\w*|\d[\w.]*|::|->|\.\.\.|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|\S')
_STRING_ONLY = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'')
_IDENT = re.compile(r"[A-Za-z_]\w*\Z")

_INLINE = {"inline", "__inline", "__inline__", "__always_inline", "__forceinline", "_ALWAYS_INLINE",
           "__extern_always_inline", "__extern_inline", "constexpr", "consteval"}
_HIDDEN = {"hidden", "attribute_hidden", "HIDDEN_FUNCTION_ATTRIBUTE", "__hidden", "__private_extern__"}
_ATTRS = {"__attribute__", "__attribute", "__declspec", "alignas", "_Alignas", "__asm__", "__asm", "asm",
          "_PRINTFLIKE", "__printflike", "__printf0like", "__scanflike", "__nonnull", "__format_arg",
          "__aligned", "__section", "__THROW_", "__wur_"}
_TYPE_WORDS = {"int", "char", "long", "short", "unsigned", "signed", "float", "double", "void", "bool",
               "const", "volatile", "_Bool", "struct", "union", "enum", "class", "restrict", "__restrict"}
_CLASS_KEYS = {"class", "struct", "union", "enum"}
_NOT_NAMES = {"__typeof", "__typeof__", "typeof", "decltype", "sizeof", "alignof", "__alignof__",
              "_Alignof", "__builtin_offsetof", "offsetof", "_Static_assert", "static_assert", "return",
              "if", "while", "for", "switch", "__attribute__", "__attribute", "throw", "noexcept"}
_CXX_SUFFIXES = (".cpp", ".cc", ".cxx", ".C")

# alias macros: (name, index of the defined name among the arguments, whether a string "name@@VER")
_ALIAS_MACROS: dict[str, tuple[int, bool]] = {
    "weak_alias": (1, False), "strong_alias": (1, False), "ldbl_strong_alias": (1, False),
    "ldbl_weak_alias": (1, False), "_weak_alias": (1, False), "__weak_alias": (1, False),
    "B_DEFINE_WEAK_ALIAS": (1, False), "__weak_reference": (1, False), "__strong_reference": (1, False),
    "versioned_symbol": (2, False), "default_symbol_version": (1, False),
    "B_DEFINE_SYMBOL_VERSION": (1, True), "DEFINE_LIBROOT_KERNEL_SYMBOL_VERSION": (1, True),
}


def _strip_comments(text: str) -> str:
    text = text.replace("\\\r\n", "").replace("\\\n", "")
    return _COMMENT_OR_STRING.sub(lambda m: m.group(1) or " ", text)


def _group_end(toks: list[str], i: int) -> int:
    """Index after the bracket group opening at ``toks[i]``."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opener = toks[i]
    closer = pairs[opener]
    depth = 0
    for j in range(i, len(toks)):
        if toks[j] == opener:
            depth += 1
        elif toks[j] == closer:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(toks)


def _versioned_name(arg: list[str]) -> str | None:
    """``"clock@@" "1_ALPHA4"`` (string pieces) -> "clock"; None for a non-default version."""
    text = "".join(t[1:-1] for t in arg if t.startswith('"'))
    if "@@" in text:
        return text.split("@@")[0]
    if "@" in text:
        return None
    return text or None


def _split_args(toks: list[str]) -> list[list[str]]:
    """The comma-separated arguments of a group's inside."""
    out: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t in "([{" and len(t) == 1:
            depth += 1
        elif t in ")]}" and len(t) == 1:
            depth -= 1
        if t == "," and depth == 0:
            out.append([])
        else:
            out[-1].append(t)
    return out


@dataclass
class _Scope:
    kind: str         # "ns" (name "" = anonymous), "externc", "class", "body", "init"
    name: str = ""


@dataclass
class _State:
    scopes: list[_Scope] = field(default_factory=list)
    buf: list[str] = field(default_factory=list)
    depth: int = 0    # brace depth inside an opaque scope (body, class, init)

    def copy(self) -> _State:
        return _State([_Scope(s.kind, s.name) for s in self.scopes], list(self.buf), self.depth)


class _FileScanner:
    """The global definitions of one C, C++ or assembly source (see the module docstring)."""

    def __init__(self, path: Path, c_declared: frozenset[str], cxx: bool | None = None,
                 known: dict[str, str | None] | None = None):
        self.path = path
        self.known = known or {}     # macros the build defines (their value) or leaves undefined (None)
        self.cxx = path.suffix in _CXX_SUFFIXES if cxx is None else cxx
        self.c_declared = c_declared
        self.local_c: set[str] = set()
        self.static_protos: dict[str, list[list[str]]] = {}   # name -> parameter lists
        self.c_names: set[str] = set()
        self.cxx_names: set[str] = set()
        self.includes: list[str] = []
        self.included: list[Path] = []           # .c/.cpp files read as part of this one
        self.renames: dict[str, set[str]] = {}   # #define NAME OTHER, every alternative
        self.certain_renames: set[str] = set()   # names certainly renamed where they are defined
        self.group_stack: list[list[list[object]]] = []   # the #if groups of each file being read
        self.defines: dict[str, str] = {}        # object-like macros the file defines: their text
        self.undefined: set[str] = set()         # and the ones it #undefs
        self.fn_macros: dict[str, int] = {}      # function-like macros that define a function: which argument
        self.st = _State()

    # -- driver
    def scan(self) -> None:
        text = self.path.read_text(errors="replace")
        if self.path.suffix in (".S", ".s", ".asm"):
            self._scan_asm(_strip_comments(text) if self.path.suffix == ".S" else text)
            return
        self._scan_text(text, self.path)
        if self.st.buf and not self.st.depth:
            self._end_declaration(self.st.buf)

    def _scan_text(self, text: str, path: Path) -> None:
        text = _strip_comments(text)
        for m in re.finditer(r'\.symver\s+[^,"]+,\s*([\w.$]+@@)', text):
            self.c_names.add(m.group(1).split("@@")[0])
        # per #if group: [snapshot at #if, state after its first scanned branch, branch taken?, skipping]
        groups: list[list[object]] = []
        self.group_stack.append(groups)
        skipping = 0   # > 0 while inside a branch that is not scanned
        for line in text.split("\n"):
            stripped = line.lstrip()
            if stripped.startswith("#"):
                skipping = self._directive(stripped[1:].strip(), groups, skipping, path)
                continue
            if skipping or not stripped:
                continue
            if self.st.depth:
                if "{" not in line and "}" not in line:
                    continue
                clean = _STRING_ONLY.sub(lambda m: " " * len(m.group(0)), line)
                rest = None
                for k, ch in enumerate(clean):
                    if ch == "{":
                        self.st.depth += 1
                    elif ch == "}":
                        self.st.depth -= 1
                        if self.st.depth == 0:
                            self._close_opaque()
                            rest = line[k + 1:]
                            break
                if rest is None:
                    continue
                line = rest        # what follows the closing brace is at namespace scope again
            self._feed(_CTOKEN.findall(line))
        self.group_stack.pop()

    def _flush_macros(self) -> None:
        """A branch ends: ``weak_alias (a, b)`` lines (no ``;``) at its end are complete statements."""
        if not self.st.depth and self.st.buf:
            self.st.buf = self._leading_macros(self.st.buf)

    def _directive(self, d: str, groups: list[list[object]], skipping: int, path: Path) -> int:
        word = re.match(r"\w*", d)
        kw = word.group(0) if word else ""
        rest = d[len(kw):].strip()
        if kw in ("if", "ifdef", "ifndef"):
            if skipping:
                return skipping + 1
            value = self._cond(kw, rest)
            groups.append([self.st.copy(), None, value is True, False])
            if value is False:
                groups[-1][3] = True
                return 1
            return 0
        if kw in ("elif", "else"):
            if skipping > 1:
                return skipping
            if not groups:
                return skipping
            g = groups[-1]
            if not g[3]:
                self._flush_macros()
            if not g[3] and g[1] is None:           # the branch that just ended was scanned
                g[1] = self.st.copy()
            if g[2]:                                 # a branch was certainly taken: skip the rest
                g[3] = True
                return 1
            value = self._cond("if", rest) if kw == "elif" else None
            if value is False:
                g[3] = True
                return 1
            g[2] = value is True
            g[3] = False
            snap = g[0]
            assert isinstance(snap, _State)
            self.st = snap.copy()
            return 0
        if kw == "endif":
            if skipping > 1:
                return skipping - 1
            if not groups:
                return 0
            g = groups.pop()
            if not g[3]:
                self._flush_macros()
            if not g[3] and g[1] is None:
                g[1] = self.st.copy()
            first = g[1] if g[1] is not None else g[0]
            assert isinstance(first, _State)
            self.st = first
            return 0
        if skipping:
            return skipping
        if kw == "include":
            m = re.match(r'["<]([^">]+)[">]', rest)
            if m:
                self.includes.append(m.group(1))
                other = path.parent / m.group(1)
                # strtoul.c: #define UNSIGNED 1, #include "strtol.c": read in place, with this file's macros
                if other.suffix in (".c", *_CXX_SUFFIXES) and other.is_file() and other not in self.included \
                        and other != self.path and len(self.included) < 16:
                    self.included.append(other)
                    self._scan_text(other.read_text(errors="replace"), other)
        elif kw == "define":
            m = re.match(r"([A-Za-z_]\w*)(\([^)]*\))?\s*(.*)$", rest)
            if m:
                name, params, body = m.group(1), m.group(2), m.group(3).strip()
                self.undefined.discard(name)
                if params is None:
                    self.defines[name] = body
                    if _IDENT.match(body) and body != name:
                        if self._certain():      # the only meaning from here on
                            self.renames[name] = {body}
                            self.certain_renames.add(name)
                        else:                    # one more meaning it may have
                            self.renames.setdefault(name, set()).add(body)
                else:
                    self._function_macro(name, params, body)
        elif kw == "undef":
            name = rest.split()[0] if rest else ""
            self.defines.pop(name, None)
            self.undefined.add(name)
            self.certain_renames.discard(name)
            if self._certain():
                self.renames.pop(name, None)
        return 0

    def _certain(self) -> bool:
        """Whether the line being read is certainly compiled (every enclosing #if decided true)."""
        return all(bool(g[2]) for groups in self.group_stack for g in groups)

    def _function_macro(self, name: str, params: str, body: str) -> None:
        """``#define GETOPT_ENTRY(NAME, X) int NAME (int argc, ...) { ... }``: remember which argument
        names the function it defines."""
        names = [p.strip() for p in params[1:-1].split(",")]
        toks = _CTOKEN.findall(body)
        if "{" not in toks:
            return
        head = toks[:toks.index("{")]
        found = self._declarator_name(head) if head else None
        if found and found[2] and found[0] in names and "static" not in head[:found[1]]:
            self.fn_macros[name] = names.index(found[0])

    def _cond(self, kw: str, rest: str) -> bool | None:
        """True, False, or None when it depends on what the file does not define itself."""
        rest = rest.strip()
        if kw in ("ifdef", "ifndef"):
            value = self._defined(rest.split()[0] if rest else "")
            return value if value is None or kw == "ifdef" else not value
        toks: list[str] = re.findall(r"&&|\|\||==|!=|<=|>=|[A-Za-z_]\w*|\d\w*|\S", rest)
        pos = [0]

        def peek() -> str | None:
            return toks[pos[0]] if pos[0] < len(toks) else None

        def take() -> str:
            pos[0] += 1
            return toks[pos[0] - 1]

        def primary() -> int | None:
            t = take() if peek() is not None else ""
            if t == "!":
                v = primary()
                return None if v is None else int(not v)
            if t == "(":
                v = disjunction()
                if peek() == ")":
                    take()
                return v
            if t == "defined":
                paren = peek() == "("
                if paren:
                    take()
                name = take() if peek() is not None else ""
                if paren and peek() == ")":
                    take()
                d = self._defined(name)
                return None if d is None else int(d)
            if t[:1].isdigit():
                try:
                    return int(t.rstrip("uUlL"), 0)
                except ValueError:
                    return None
            if t == "__cplusplus":
                return int(self.cxx)
            if t in self.defines:
                value = self.defines[t]
                return int(value) if value.isdigit() else None
            if t in self.known:
                known = self.known[t]
                return 0 if known is None else (int(known) if known.isdigit() else None)
            return None

        def comparison() -> int | None:
            left = primary()
            while peek() in ("==", "!=", "<", ">", "<=", ">="):
                op, right = take(), primary()
                if left is None or right is None:
                    left = None
                    continue
                left = int({"==": left == right, "!=": left != right, "<": left < right, ">": left > right,
                            "<=": left <= right, ">=": left >= right}[op])
            return left

        def conjunction() -> int | None:
            value = comparison()
            while peek() == "&&":
                take()
                other = comparison()
                value = 0 if value == 0 or other == 0 else (None if value is None or other is None else 1)
            return value

        def disjunction() -> int | None:
            value = conjunction()
            while peek() == "||":
                take()
                other = conjunction()
                value = 1 if value or other else (None if value is None or other is None else 0)
            return value

        result = disjunction()
        if pos[0] != len(toks):        # something this evaluator does not read (arithmetic, ...)
            return None
        return None if result is None else bool(result)

    def _defined(self, name: str) -> bool | None:
        if name == "__cplusplus":
            return self.cxx
        if name in self.defines:
            return True
        if name in self.undefined:
            return False
        if name in self.known:
            return self.known[name] is not None
        return None

    # -- assembly
    _ASM_DEFS = re.compile(
        r"\b(?:FUNCTION|SYMBOL|ENTRY|FUNCTION_ENTRY|ASM_GLOBAL|GLOBAL|C_LABEL)\s*\(\s*(\w+)\s*\)"
        r"|^\s*\.(?:globl|global|weak)\s+([\w$.,\s]+)$", re.M)
    _ASM_ALIAS = re.compile(
        r"\b(weak_alias|strong_alias|ldbl_strong_alias|ldbl_weak_alias)\s*\(\s*\w+\s*,\s*(\w+)\s*\)")

    def _scan_asm(self, text: str) -> None:
        lines = [ln for ln in text.split("\n") if not ln.lstrip().startswith("#")
                 or ln.lstrip().startswith(("#include",))]
        for ln in text.split("\n"):
            m = re.match(r'\s*#\s*include\s*["<]([^">]+)[">]', ln)
            if m:
                self.includes.append(m.group(1))
        body = "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))
        for m in self._ASM_DEFS.finditer(body):
            if m.group(1):
                self.c_names.add(m.group(1))
            else:
                for name in re.split(r"[\s,]+", m.group(2).strip()):
                    if _IDENT.match(name):
                        self.c_names.add(name)
        for m in self._ASM_ALIAS.finditer(body):
            self.c_names.add(m.group(2))
        for m in re.finditer(r'\.symver\s+[^,]+,\s*([\w.$]+)@@', body):
            self.c_names.add(m.group(1))

    # -- C and C++
    def _namespace(self) -> list[str]:
        return [s.name for s in self.st.scopes if s.kind == "ns"]

    def _in_externc(self) -> bool:
        return any(s.kind == "externc" for s in self.st.scopes)

    def _anonymous(self) -> bool:
        return any(s.kind == "ns" and not s.name for s in self.st.scopes)

    def _close_opaque(self) -> None:
        scope = self.st.scopes.pop()
        if scope.kind == "body":
            self.st.buf = []
        elif scope.kind == "class":
            self.st.buf.append("{}")
        # "init": the initializer's tokens are not needed, the declaration goes on

    def _feed(self, toks: list[str]) -> None:
        st = self.st
        i, n = 0, len(toks)
        while i < n:
            t = toks[i]
            if st.depth:
                if t == "{":
                    st.depth += 1
                elif t == "}":
                    st.depth -= 1
                    if st.depth == 0:
                        self._close_opaque()
                i += 1
                continue
            if t == ";":
                if not self.cxx and self._knr_pending(st.buf):
                    st.buf.append(t)
                else:
                    self._end_declaration(st.buf)
                    st.buf = []
            elif t == "{":
                self._open_brace()
            elif t == "}":
                st.buf = []
                if st.scopes:
                    st.scopes.pop()
            elif t == "__BEGIN_DECLS" and not st.buf:
                st.scopes.append(_Scope("externc"))
            elif t == "__END_DECLS" and not st.buf:
                if st.scopes and st.scopes[-1].kind == "externc":
                    st.scopes.pop()
            else:
                st.buf.append(t)
            i += 1

    @staticmethod
    def _knr_pending(buf: list[str]) -> bool:
        """``int f(a, b) int a; char *b;`` - a K&R parameter declaration, not the end of a declaration."""
        for k in range(1, len(buf)):
            if buf[k] in ("=", "{}"):
                return False
            if buf[k] == "(":
                if not _IDENT.match(buf[k - 1]) or buf[k - 1] in _ATTRS or buf[k - 1] in _NOT_NAMES:
                    return False
                end = _group_end(buf, k)
                inner = buf[k + 1:end - 1]
                if not inner or not all(_IDENT.match(x) or x == "," for x in inner) \
                        or any(x in _TYPE_WORDS for x in inner):
                    return False
                after = buf[end:]
                if end < len(buf) and buf[end:end + 1] == ["("]:
                    return False
                return len(after) >= 2 and bool(_IDENT.match(after[0])) and after[0] not in _ATTRS \
                    and after[0] != "__THROW" \
                    and all(_IDENT.match(x) or x in ("*", ",", ";", "[", "]") or x[:1].isdigit() for x in after)
        return False

    def _open_brace(self) -> None:
        st = self.st
        buf = self._leading_macros(st.buf)
        st.buf = buf
        if len(buf) >= 2 and buf[0] == "extern" and buf[1] == '"C"' and len(buf) == 2:
            st.scopes.append(_Scope("externc"))
            st.buf = []
            return
        if len(buf) >= 2 and buf[0] == "extern" and buf[1] == '"C++"' and len(buf) == 2:
            st.scopes.append(_Scope("ns", "\0c++"))   # a scope that is neither anonymous nor named
            st.buf = []
            return
        core = [x for x in buf if x != "inline"]
        if core and core[0] == "namespace" and all(_IDENT.match(x) or x == "::" for x in core[1:]):
            names = [x for x in core[1:] if x != "::"]
            if not names:
                st.scopes.append(_Scope("ns", ""))
            for nm in names:
                st.scopes.append(_Scope("ns", nm))
            if len(names) > 1:     # namespace A::B { ... } closes with one brace: keep one scope
                joined = "::".join(names)
                del st.scopes[-len(names):]
                st.scopes.append(_Scope("ns", joined))
            st.buf = []
            return
        depth0 = self._depth0(buf)
        if "=" in depth0 and "operator" not in depth0:
            st.scopes.append(_Scope("init"))
            st.depth = 1
            return
        key_at = next((k for k, x in enumerate(depth0) if x in _CLASS_KEYS), None)
        paren_at = next((k for k, x in enumerate(depth0) if x == "("), None)
        if key_at is not None and (paren_at is None or paren_at < key_at and depth0[paren_at - 1] in _ATTRS):
            st.scopes.append(_Scope("class"))
            st.depth = 1
            return
        if paren_at is not None:
            self._function_definition(buf)
            st.scopes.append(_Scope("body"))
            st.depth = 1
            return
        st.scopes.append(_Scope("init"))
        st.depth = 1

    @staticmethod
    def _depth0(buf: list[str]) -> list[str]:
        """The tokens at bracket depth 0, each group shown as its opening bracket."""
        out: list[str] = []
        depth = 0
        for x in buf:
            if x in ("(", "["):
                if depth == 0:
                    out.append(x)
                depth += 1
            elif x in (")", "]"):
                depth -= 1
            elif depth == 0:
                out.append(x)
        return out

    def _leading_macros(self, buf: list[str]) -> list[str]:
        """Drop macro invocations written as statements (``weak_alias (a, b)`` without ``;``) from the
        front of ``buf``, recording the aliases they define."""
        while len(buf) >= 3 and _IDENT.match(buf[0]) and buf[1] == "(" and buf[0] not in _NOT_NAMES \
                and buf[0] not in _ATTRS:
            end = _group_end(buf, 1)
            nxt = buf[end] if end < len(buf) else None
            if nxt is not None and (nxt in ("(", "::", ":", "const", "->", "noexcept", "throw", "=", ",", "[")
                                    or nxt in _ATTRS or not (_IDENT.match(nxt) or nxt in ("{}",))):
                return buf
            self._macro_statement(buf[0], buf[2:end - 1])
            buf = buf[end:]
        return buf

    def _macro_statement(self, name: str, inner: list[str]) -> None:
        if name in self.fn_macros:
            made = _split_args(inner)
            index = self.fn_macros[name]
            if index < len(made) and len(made[index]) == 1 and _IDENT.match(made[index][0]):
                self._add(made[index][0], qualified=False, function=True)
            return
        spec = _ALIAS_MACROS.get(name)
        if spec is None:
            return
        index, versioned = spec
        args = _split_args(inner)
        if len(args) <= index:
            return
        if versioned:
            alias = _versioned_name(args[index])
        else:
            alias = args[index][-1] if args[index] and _IDENT.match(args[index][-1]) else None
        if alias:
            # the versioning macros name the ELF symbol itself; B_DEFINE_WEAK_ALIAS says extern "C" in C++
            raw = versioned or name == "B_DEFINE_WEAK_ALIAS"
            self._add(alias, qualified=False, function=True, extern_c=raw)

    def _strip_attrs(self, buf: list[str]) -> tuple[list[str], bool, bool]:
        """``buf`` without attribute groups; whether one made an alias, whether one hid the symbol."""
        out: list[str] = []
        alias = hidden = False
        k = 0
        while k < len(buf):
            x = buf[k]
            if x in _ATTRS and k + 1 < len(buf) and buf[k + 1] == "(":
                end = _group_end(buf, k + 1)
                group = buf[k + 2:end - 1]
                if x.startswith("__attribute"):
                    if "alias" in group or "__alias__" in group:
                        alias = True
                    if ("visibility" in group or "__visibility__" in group) and '"hidden"' in group:
                        hidden = True
                k = end
                continue
            if x in _HIDDEN:
                hidden = True
                k += 1
                continue
            out.append(x)
            k += 1
        return out, alias, hidden

    def _end_declaration(self, buf: list[str]) -> None:
        buf = self._leading_macros(buf)
        if not buf:
            return
        if len(buf) >= 3 and _IDENT.match(buf[0]) and buf[1] == "(" and _group_end(buf, 1) == len(buf):
            self._macro_statement(buf[0], buf[2:-1])
            return
        buf, alias, hidden = self._strip_attrs(buf)
        if not buf or buf[0] in ("typedef", "using", "template", "friend", "static_assert", "_Static_assert",
                                 "namespace", "asm", "__asm__", "#"):
            return
        extern_c = len(buf) >= 2 and buf[0] == "extern" and buf[1] == '"C"'
        if extern_c:
            buf = buf[2:]
        # the declarators: what follows a class body, or the whole declaration split at commas
        if "{}" in buf:
            idx = len(buf) - 1 - buf[::-1].index("{}")
            specs, rest = buf[:idx], buf[idx + 1:]
            if "typedef" in specs:
                return
            declarators = _split_args(rest) if rest else []
            first_specs = specs
        else:
            declarators = _split_args(buf)
            first_specs = []
        for n, decl in enumerate(declarators):
            if not decl:
                continue
            full = first_specs + decl if n == 0 or first_specs else decl
            if n > 0 and not first_specs:
                # int a, *b: the type words of the first declarator apply to all
                full = self._specifiers(declarators[0]) + decl
            self._declarator(full, extern_c, alias, hidden)

    @staticmethod
    def _specifiers(decl: list[str]) -> list[str]:
        name = _FileScanner._declarator_name(decl)
        if name is None:
            return []
        return decl[:name[1]]

    @staticmethod
    def _declarator_name(decl: list[str]) -> tuple[str, int, bool] | None:
        """(name, index of its first token, whether it declares a function) of a declaration."""
        depth0: list[tuple[int, str]] = []
        depth = 0
        for k, x in enumerate(decl):
            if x in ("(", "["):
                if depth == 0:
                    depth0.append((k, x))
                depth += 1
            elif x in (")", "]"):
                depth -= 1
            elif depth == 0:
                depth0.append((k, x))
            if x == "=" and depth == 0:
                break
        for j, (k, x) in enumerate(depth0):
            if x == "=":
                break
            if x == "(":
                prev = depth0[j - 1][1] if j else None
                if prev == "operator" or (j >= 2 and depth0[j - 2][1] == "operator"):
                    continue
                if prev is not None and _IDENT.match(prev) and prev not in _NOT_NAMES and prev not in _TYPE_WORDS:
                    start = depth0[j - 1][0]
                    return prev, start, True
                end = _group_end(decl, k)
                inner = decl[k + 1:end - 1]
                if len(inner) == 1 and _IDENT.match(inner[0]) and decl[end:end + 1] == ["("]:
                    return inner[0], k + 1, True         # void (qsort_r)(...): the name kept from macros
                if inner[:1] in (["*"], ["&"], ["^"]):     # (*name)(args): a function pointer
                    for y in inner[1:]:
                        if _IDENT.match(y) and y not in ("const", "volatile", "__restrict"):
                            return y, k, False
                    return None
        # a variable: the last identifier before "=" or "[" at depth 0
        last: tuple[str, int] | None = None
        for k, x in depth0:
            if x in ("=", "["):
                break
            if _IDENT.match(x) and x not in _TYPE_WORDS and x != "operator":
                last = (x, k)
        return (last[0], last[1], False) if last else None

    def _declarator(self, decl: list[str], extern_c: bool, alias: bool, hidden: bool) -> None:
        found = self._declarator_name(decl)
        if found is None:
            return
        name, k, is_function = found
        specs = decl[:k]
        qual = self._qualifier(decl, k)
        if is_function:
            params = self._params(decl, k)
            if "static" in specs:
                self.static_protos.setdefault(name, []).append(params)
                return
            if (extern_c or self._in_externc()) and not qual:
                self.local_c.add(name)
            if alias and not hidden and not self._anonymous() and not (set(specs) & _INLINE):
                self._add(name, qualified=bool(qual), function=True, qual=qual, extern_c=extern_c)
            return
        # a variable
        if "static" in specs or "typedef" in specs or hidden or self._anonymous():
            return
        if "extern" in specs and "=" not in decl and not alias:
            return
        if not specs or specs[-1] in _CLASS_KEYS:
            return                  # "struct foo;" (a forward declaration) or no type at all
        if self.cxx and not extern_c and "extern" not in specs and self._top_const(decl[:k + 1]):
            return
        self._add(name, qualified=bool(qual), function=False, qual=qual, extern_c=extern_c)

    @staticmethod
    def _top_const(decl: list[str]) -> bool:
        """Whether the object (not what it points to) is const: ``const int x``, ``char* const x``."""
        consts = [k for k, x in enumerate(decl) if x in ("const", "constexpr")]
        if not consts:
            return False
        if "constexpr" in decl:
            return True
        stars = [k for k, x in enumerate(decl) if x in ("*", "&")]
        return not stars or consts[-1] > stars[-1]

    @staticmethod
    def _qualifier(decl: list[str], k: int) -> list[str]:
        """``A::B::name`` -> ["A", "B"] (the tokens before ``decl[k]``)."""
        qual: list[str] = []
        j = k
        if j >= 1 and decl[j - 1] == "~":
            j -= 1
        while j >= 2 and decl[j - 1] == "::":
            prev = decl[j - 2]
            if prev == ">":       # Foo<T>::bar: skip the template arguments
                depth, m = 0, j - 2
                while m >= 0:
                    depth += decl[m] == ">"
                    depth -= decl[m] == "<"
                    if depth == 0:
                        break
                    m -= 1
                if m >= 1 and _IDENT.match(decl[m - 1]):
                    qual.insert(0, decl[m - 1])
                    j = m - 1
                    continue
                break
            if not _IDENT.match(prev):
                break
            qual.insert(0, prev)
            j -= 2
        return qual

    @staticmethod
    def _params(decl: list[str], k: int) -> list[str]:
        """The normalized parameter types of the function whose name is at ``decl[k]``."""
        try:
            start = decl.index("(", k)
        except ValueError:
            return []
        inner = decl[start + 1:_group_end(decl, start) - 1]
        out = []
        for p in _split_args(inner):
            if "=" in p:
                p = p[:p.index("=")]
            if len(p) > 1 and _IDENT.match(p[-1]) and p[-1] not in _TYPE_WORDS and p[-2] not in _CLASS_KEYS:
                p = p[:-1]
            out.append(" ".join(p))
        return [x for x in out if x != "void"] if out != ["void"] else []

    def _function_definition(self, buf: list[str]) -> None:
        buf = self._leading_macros(buf)
        buf, _alias, hidden = self._strip_attrs(buf)
        if not buf or buf[0] in ("template", "typedef", "friend", "namespace", "using"):
            return
        extern_c = len(buf) >= 2 and buf[0] == "extern" and buf[1] == '"C"'
        if extern_c:
            buf = buf[2:]
        if "operator" in self._depth0(buf):
            self._operator_definition(buf, hidden)
            return
        found = self._declarator_name(buf)
        if found is None or not found[2]:
            return
        name, k, _ = found
        specs = buf[:k]
        if "static" in specs or set(specs) & _INLINE or hidden or self._anonymous() or "template" in specs:
            return
        qual = self._qualifier(buf, k)
        if k >= 1 and buf[k - 1] == "~":
            name = "~" + name
        if not qual and name in self.static_protos and self._params(buf, k) in self.static_protos[name]:
            return
        self._add(name, qualified=bool(qual), function=True, qual=qual, extern_c=extern_c)

    def _operator_definition(self, buf: list[str], hidden: bool) -> None:
        d0 = buf.index("operator")
        specs = buf[:d0]
        if "static" in specs or set(specs) & _INLINE or hidden or self._anonymous():
            return
        k = d0 + 1
        op: list[str] = []
        if k + 1 < len(buf) and buf[k] == "(" and buf[k + 1] == ")":
            op, k = ["()"], k + 2
        while k < len(buf) and buf[k] != "(":
            op.append(buf[k])
            k += 1
        qual = self._qualifier(buf, d0)
        self._add(_normalize("operator " + " ".join(op)), qualified=bool(qual), function=True, qual=qual)

    def _add(self, name: str, qualified: bool, function: bool, qual: list[str] | None = None,
             extern_c: bool = False) -> None:
        if qualified or name not in self.renames:
            self._add_one(name, qualified, function, qual, extern_c)
            return
        # #define strtol strtoul: the name it certainly stands for, or every name it may stand for
        seen = {name}
        todo = [name]
        while todo:
            node = todo.pop()
            if node not in self.certain_renames or node not in self.renames:
                self._add_one(node, qualified, function, qual, extern_c)
            for other in self.renames.get(node, ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)

    def _add_one(self, name: str, qualified: bool, function: bool, qual: list[str] | None,
                 extern_c: bool) -> None:
        ns = [n for n in self._namespace() if n != "\0c++"]
        if not self.cxx or ((extern_c or self._in_externc()) and not qualified):
            self.c_names.add(name)      # extern "C" inside a namespace still has C linkage
            return
        if qualified or ns:
            self.cxx_names.add("::".join([*ns, *(qual or []), name]))
            return
        if not function:
            self.c_names.add(name)            # a global-namespace variable: not mangled
            return
        if extern_c or self._in_externc() or name in self.local_c or name in self.c_declared:
            self.c_names.add(name)
        else:
            self.cxx_names.add(name)


def _normalize(name: str) -> str:
    """A qualified name with the spaces C++ does not need removed (``operator new []`` -> ``operator new[]``)."""
    name = re.sub(r"\s+", " ", name.strip())
    return re.sub(r"(?<=\W) | (?=\W)", "", name)


# extern "C" declarations in headers: the names a C++ definition takes C linkage for
_EXTERN_C = re.compile(r'extern\s+"C"\s*(\{)?|__BEGIN_DECLS')
_CALLED = re.compile(r"([A-Za-z_]\w*)\s*\(")


def _c_declared_in(text: str) -> set[str]:
    if '"C"' not in text and "__BEGIN_DECLS" not in text:
        return set()
    # without directives: `extern\n#ifdef __cplusplus\n"C"\n#endif\nclock_t times(...)` is read too
    text = re.sub(r"(?m)^[ \t]*#.*$", "", _strip_comments(text))
    out: set[str] = set()
    for m in _EXTERN_C.finditer(text):
        start = m.end()
        if m.group(0) == "__BEGIN_DECLS":
            end = text.find("__END_DECLS", start)
            end = len(text) if end < 0 else end
        elif m.group(1):
            depth, end = 1, start
            while end < len(text) and depth:
                c = text[end]
                depth += c == "{"
                depth -= c == "}"
                end += 1
        else:
            end = text.find(";", start)
            end = len(text) if end < 0 else end
        out.update(_CALLED.findall(text, start, end))
    return out


def _header_files(tree: Path, source_roots: list[Path]) -> list[Path]:
    roots = [tree / "headers" / d for d in ("os", "posix", "private", "compatibility", "glibc", "config")]
    roots += source_roots
    out: list[Path] = []
    for r in roots:
        if r.is_dir():
            out += sorted(p for p in r.rglob("*") if p.suffix in (".h", ".hpp", ".hh") and p.is_file())
    return out


def _generated_syscalls(tree: Path) -> set[str]:
    """The ``_kern_*`` stubs the build generates into syscalls.S.inc, from syscalls.h's declarations."""
    h = tree / "headers" / "private" / "system" / "syscalls.h"
    if not h.is_file():
        return set()
    return set(re.findall(r"\b(_kern_\w+)\s*\(", _strip_comments(h.read_text(errors="replace"))))


# ---------------------------------------------------------------------------------------------
# Putting it together, with the cache


def _digest(files: Iterable[Path], tree: Path, binary: str) -> str:
    h = hashlib.sha256(f"haiku-exports {SCANNER_VERSION} {binary}\n".encode())
    for p in files:
        try:
            size = p.stat().st_size
        except OSError:
            size = -1
        h.update(f"{p.relative_to(tree) if p.is_relative_to(tree) else p}\0{size}\n".encode())
    return h.hexdigest()


def _establish(tree: Path, top: str, binary: str, cache: Path | None, method: str,
               known: dict[str, str | None]) -> ExportSet:
    tree = tree.resolve()
    if not (tree / "src").is_dir():
        raise PortError("not a Haiku tree (no src/ directory)", tree,
                        "point at the root of a Haiku source tree (the one holding headers/ and src/)")
    sources, missing, jamfiles = _binary_sources(tree, top, binary)
    source_roots = sorted({tree / "src" / "system" / "kernel", tree / "src" / "system" / "libroot"}
                          & {p for s in sources for p in s.parents})
    headers = _header_files(tree, source_roots)
    key = _digest([*jamfiles, *sources, *headers], tree, binary)
    cache_file = cache / f"haiku-exports-{binary}-{key[:24]}.json" if cache is not None else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = ExportSet.from_json(json.loads(cache_file.read_text()), tree)
        except (OSError, ValueError):
            cached = None
        if cached is not None:
            return cached
    c_declared: set[str] = set()
    for h in headers:
        try:
            c_declared |= _c_declared_in(h.read_text(errors="replace"))
        except OSError:
            continue
    frozen_decl = frozenset(c_declared)
    c_names: set[str] = set()
    cxx_names: set[str] = set()
    includes: list[str] = []
    scanned = set(sources)
    for src in sources:
        scanner = _FileScanner(src, frozen_decl, known=known)
        try:
            scanner.scan()
        except OSError as e:
            raise PortError(f"cannot read {src.name}: {e.strerror or e}", src) from e
        c_names |= scanner.c_names
        cxx_names |= scanner.cxx_names
        includes += scanner.includes
        scanned.update(scanner.included)
    if any(inc.endswith("syscalls.S.inc") for inc in includes):
        c_names |= _generated_syscalls(tree)
    result = ExportSet(binary, tree, frozenset(c_names), frozenset(cxx_names), method, len(scanned),
                       len(headers), tuple(missing))
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(cache_file.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(result.to_json(), indent=0))
            os.replace(tmp, cache_file)
        except OSError:
            pass          # the cache only saves time: an unwritable one is not an error
    return result


def kernel_exports(tree: Path, cache_dir: Path | None = None) -> ExportSet:
    """The symbols the x86_64 kernel (kernel_x86_64) of the Haiku tree ``tree`` exports."""
    return _establish(tree, "src/system/kernel", "kernel_x86_64", cache_dir, known=KERNEL_MACROS, method=
                      f"Jamfiles from src/system/kernel/Jamfile (KernelLd kernel_x86_64, platform bios_ia32), "
                      f"source declaration scan v{SCANNER_VERSION}")


def libroot_exports(tree: Path, cache_dir: Path | None = None) -> ExportSet:
    """The symbols libroot.so (x86_64) of the Haiku tree ``tree`` exports."""
    return _establish(tree, "src/system/libroot", "libroot.so", cache_dir, known=LIBROOT_MACROS, method=
                      f"Jamfiles from src/system/libroot/Jamfile (SharedLibrary libroot.so), "
                      f"source declaration scan v{SCANNER_VERSION} with glibc/Haiku alias macros and "
                      f"generated _kern_* syscall stubs")


def library_exports(tree: Path, top: str, binary: str, cache_dir: Path | None = None) -> ExportSet:
    """The symbols a userland shared library of the Haiku tree exports: ``SharedLibrary BINARY`` in
    the Jamfiles under ``top`` (``src/libs/bsd``, ``libbsd.so``), scanned as libroot is."""
    return _establish(tree, top, binary, cache_dir, known=LIBROOT_MACROS, method=
                      f"Jamfiles from {top}/Jamfile (SharedLibrary {binary}), "
                      f"source declaration scan v{SCANNER_VERSION}")


# ---------------------------------------------------------------------------------------------
# Checking a binary against a set


def _demangle(names: list[str]) -> list[str]:
    if not names:
        return []
    tool = shutil.which("c++filt") or shutil.which("llvm-cxxfilt")
    if tool is None:
        raise PortError("c++filt is not installed: C++ symbol names cannot be checked",
                        fix="install binutils (or LLVM's llvm-cxxfilt)")
    proc = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True, check=False)
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) != len(names):
        raise PortError(f"{Path(tool).name} failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return out


def _strip_template_args(name: str) -> str:
    out: list[str] = []
    depth = 0
    for k, c in enumerate(name):
        if c == "<" and not name[:k].endswith("operator") and not name[:k].endswith("operator<"):
            depth += 1
        elif c == ">" and depth and not name[:k].endswith("operator-"):
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def qualified_name(demangled: str) -> str:
    """``BKernel::Thread::Get(int) const`` -> ``BKernel::Thread::Get``; variables stay as they are."""
    s = demangled.strip()
    if s.endswith(")") or re.search(r"\)\s*(const|volatile|&|&&|\s)*$", s):
        end = s.rfind(")")
        depth, k = 0, end
        while k >= 0:
            depth += s[k] == ")"
            depth -= s[k] == "("
            if depth == 0:
                break
            k -= 1
        if k > 0:
            s = s[:k]
    s = _strip_template_args(s)
    # template functions are printed with their return type: "void foo<int>(int)"
    if " " in s and not re.search(r"operator\s", s):
        s = s.rsplit(" ", 1)[-1]
    return _normalize(s)


_SPECIAL = re.compile(r"^(vtable|VTT|typeinfo|typeinfo name|construction vtable|guard variable) for (.+)$")


def unresolved(undefined: Iterable[str], exports: ExportSet, also: Iterable[str] = ()) -> list[str]:
    """The names in ``undefined`` (ELF symbol names, ``name@VERSION`` allowed, C++ ones mangled) that
    neither ``exports`` nor ``also`` (names other libraries provide, e.g. libgcc's) provides.

    A mangled name is provided when its demangled qualified name (parameters, template arguments and
    return type dropped) is one of ``exports.cxx_names``, or when it is an extern "C" name the set has.
    ``vtable for X`` and ``typeinfo for X`` count as provided when the set defines a member of X.
    Kept in the order given, each once.
    """
    provided = set(also)
    names: list[str] = []
    for raw in undefined:
        base = raw.split("@", 1)[0]
        if raw not in names and raw not in provided and base not in provided and base not in exports.c_names:
            names.append(raw)
    mangled = [n for n in names if n.split("@", 1)[0].startswith("_Z")]
    demangled = dict(zip(mangled, _demangle([n.split("@", 1)[0] for n in mangled]), strict=True))
    classes = {c.rsplit("::", 1)[0] for c in exports.cxx_names if "::" in c}
    out: list[str] = []
    for n in names:
        d = demangled.get(n)
        if d is not None:
            special = _SPECIAL.match(d)
            if special:
                if _normalize(_strip_template_args(special.group(2))) in classes:
                    continue
            elif qualified_name(d) in exports.cxx_names:
                continue
        out.append(n)
    return out


# ---------------------------------------------------------------------------------------------
# Reading an ELF file's undefined symbols

_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_STB_GLOBAL, _STB_WEAK = 1, 2


def elf_undefined_symbols(path: Path, include_weak: bool = True) -> list[str]:
    """The global (and, unless ``include_weak`` is false, weak) symbols the ELF object or shared object
    ``path`` leaves undefined, sorted.  Read from ``.symtab`` (``.dynsym`` when stripped) with
    :mod:`struct`: 32- and 64-bit, either byte order; a version suffix (``@VER``) is not part of
    the names.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PortError(f"cannot read: {e.strerror or e}", path) from e
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise PortError("not an ELF file", path, "pass an object, shared object or executable")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if is64:
            shoff, = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
        else:
            shoff, = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
        sections = []
        for k in range(shnum):
            off = shoff + k * shentsize
            if is64:
                _n, stype, _f, _a, soff, ssize, link, _i, _al, entsize = struct.unpack_from(end + "IIQQQQIIQQ",
                                                                                           data, off)
            else:
                _n, stype, _f, _a, soff, ssize, link, _i, _al, entsize = struct.unpack_from(end + "IIIIIIIIII",
                                                                                           data, off)
            sections.append((stype, soff, ssize, link, entsize))
        table = next((s for s in sections if s[0] == _SHT_SYMTAB), None) or \
            next((s for s in sections if s[0] == _SHT_DYNSYM), None)
        if table is None:
            return []
        _t, soff, ssize, link, entsize = table
        strtab = sections[link]
        names: set[str] = set()
        entsize = entsize or (24 if is64 else 16)
        for off in range(soff + entsize, soff + ssize, entsize):     # entry 0 is the null symbol
            if is64:
                name_off, info, _other, shndx = struct.unpack_from(end + "IBBH", data, off)
            else:
                name_off, = struct.unpack_from(end + "I", data, off)
                info, _other, shndx = struct.unpack_from(end + "BBH", data, off + 12)
            bind = info >> 4
            if shndx != 0 or name_off == 0 or bind not in (_STB_GLOBAL, _STB_WEAK):
                continue
            if bind == _STB_WEAK and not include_weak:
                continue
            start = strtab[1] + name_off
            stop = data.index(b"\0", start)
            names.add(data[start:stop].decode("utf-8", "replace").split("@", 1)[0])
    except (struct.error, IndexError, ValueError) as e:
        raise PortError(f"malformed ELF file: {e}", path) from e
    return sorted(names)
