"""libclang front end.  The only module that touches ``clang.cindex``.

Upstream is parsed against an *empty sysroot*: every ``#include`` that does not
name an upstream file resolves to an empty stub header, so nothing of the host's
headers leaks in and every BSD name upstream relies on shows up as undeclared.
Includes that name upstream files (``<dev/virtual/nvmm/nvmm.h>``,
``<dev/nvmm/x86/nvmm_x86.h>``, ``"nvmm.h"``) resolve to those files.

Results come back as plain dataclasses (``ParsedTU``): declarations, function
extents, macro definitions and expansions, diagnostics and skipped ranges.
No ``Cursor`` leaves this module.
"""

from __future__ import annotations

import ctypes
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

_IMPORT_ERROR: ImportError | None
try:  # pragma: no cover - exercised implicitly
    import clang.cindex as ci
except ImportError as exc:  # pragma: no cover
    ci = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None


def _require_clang() -> None:
    if ci is None:
        raise PortError(f"libclang is not importable ({_IMPORT_ERROR})", "clang.cindex",
                        "pip install libclang (the wheel bundles libclang.so)")


@dataclass(frozen=True)
class Decl:
    name: str
    kind: str            # var, param, field, function, typedef, struct, union, enum, enum_constant, label
    file: str
    line: int            # the line of the declared name
    start_line: int      # first line of the whole declaration (return type, storage class)
    end_line: int
    is_definition: bool
    extern: bool = False
    type: str = ""
    first_token: str = ""   # first token of the declaration
    column: int = 0


@dataclass(frozen=True)
class MacroDefinition:
    name: str
    file: str
    line: int
    end_line: int
    function_like: bool


@dataclass(frozen=True)
class MacroExpansion:
    name: str
    file: str
    line: int


@dataclass(frozen=True)
class Diagnostic:
    severity: str        # note, warning, error, fatal
    file: str
    line: int
    message: str
    category: str


@dataclass
class ParsedTU:
    source: str
    args: list[str]
    decls: list[Decl] = field(default_factory=list)
    macros: list[MacroDefinition] = field(default_factory=list)
    expansions: list[MacroExpansion] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    skipped: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)   # upstream files this TU read


_DECL_KINDS = {
    "VAR_DECL": "var", "PARM_DECL": "param", "FIELD_DECL": "field", "FUNCTION_DECL": "function",
    "TYPEDEF_DECL": "typedef", "STRUCT_DECL": "struct", "UNION_DECL": "union", "ENUM_DECL": "enum",
    "ENUM_CONSTANT_DECL": "enum_constant", "LABEL_STMT": "label",
}


ROLES = ("driver", "libnvmm", "tests")
# Where a quoted include that is not in the includer's own tree is looked for, per role.
_QUOTE_FALLBACK = {"tests": ("libnvmm", "driver"), "libnvmm": ("driver",)}


class Sysroot:
    """A temporary include root with an empty stub for every foreign header upstream includes."""

    def __init__(self, upstream_root: Path, files: list[str], includes: dict[str, list[tuple[str, bool]]]):
        self.upstream_root = upstream_root
        self._tmp = tempfile.TemporaryDirectory(prefix="nvmm-port-sysroot-")
        self.path = Path(self._tmp.name)
        # (role, include path) -> upstream file, or "" for an empty stub; one stub root per
        # role, because the tests' "nvmm.h" is libnvmm's while the driver's is its own
        self.mapping: dict[tuple[str, str], str] = {}
        by_base: dict[str, list[str]] = {}
        for f in files:
            by_base.setdefault(os.path.basename(f), []).append(f)
        for src, incs in includes.items():
            role = src.split("/", 1)[0]
            for inc, angle in incs:
                if (role, inc) in self.mapping:
                    continue
                target = self._resolve(src, inc, angle, by_base, set(files))
                self.mapping[(role, inc)] = target or ""
                if not angle and target and target.startswith(role + "/"):
                    continue    # the includer's own tree: found through its -I path
                # a <header> means the same for everyone; a "header" only for its includer's role
                for r in (ROLES if angle else (role,)):
                    dest = self.root_for(r) / inc
                    if dest.exists():
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if target:
                        dest.write_text(f'#include "{(upstream_root / target).as_posix()}"\n')
                    else:
                        dest.write_text("/* empty stub: nvmm-port parses upstream against an empty sysroot */\n")

    @staticmethod
    def _resolve(src: str, inc: str, angle: bool, by_base: dict[str, list[str]], files: set[str]) -> str | None:
        if not angle:
            # next to the includer, then up its tree (a backend's "nvmm.h" is the driver's)
            d = os.path.dirname(src)
            while True:
                local = os.path.normpath(os.path.join(d, inc))
                if local in files:
                    return local
                if not d or "/" not in d:
                    break
                d = os.path.dirname(d)
            # userland code: the tests include libnvmm's public header, which includes the driver's
            for other in _QUOTE_FALLBACK.get(src.split("/", 1)[0], ()):
                cand = os.path.normpath(os.path.join(other, inc))
                if cand in files:
                    return cand
        parts = inc.split("/")
        if "nvmm" in parts[:-1]:
            # <dev/nvmm/x86/nvmm_x86.h>, <dev/virtual/nvmm/nvmm.h>: the driver's own files
            rest = "/".join(parts[parts.index("nvmm") + 1:])
            cand = f"driver/{rest}"
            if cand in files:
                return cand
        cands = by_base.get(parts[-1], [])
        if len(cands) == 1 and (not angle or parts[-1].startswith("nvmm")):
            return cands[0]
        return None

    def root_for(self, role: str) -> Path:
        return self.path / role

    def resolved(self, inc: str) -> str | None:
        """The upstream file an include path names, for any includer."""
        for (_role, path), target in self.mapping.items():
            if path == inc and target:
                return target
        return None

    def cleanup(self) -> None:
        self._tmp.cleanup()


def _file_name(loc_file: ci.File | None) -> str:
    return loc_file.name if loc_file is not None else ""


def _skipped_ranges(tu: ci.TranslationUnit) -> dict[str, list[tuple[int, int]]]:
    lib = ci.conf.lib

    class CXSourceRangeList(ctypes.Structure):
        _fields_ = [("count", ctypes.c_uint), ("ranges", ctypes.POINTER(ci.SourceRange))]

    fn = lib.clang_getAllSkippedRanges
    fn.restype = ctypes.POINTER(CXSourceRangeList)
    fn.argtypes = [ctypes.c_void_p]
    lst = fn(tu.obj if hasattr(tu, "obj") else tu)
    out: dict[str, list[tuple[int, int]]] = {}
    try:
        for i in range(lst.contents.count):
            r = lst.contents.ranges[i]
            out.setdefault(_file_name(r.start.file), []).append((r.start.line, r.end.line))
    finally:
        dispose = lib.clang_disposeSourceRangeList
        dispose.argtypes = [ctypes.POINTER(CXSourceRangeList)]
        dispose(lst)
    return out


def parse(source: Path, args: list[str], upstream_root: Path, unsaved: list[tuple[str, str]] | None = None) -> ParsedTU:
    """Parse one translation unit and return what the analyzer needs from it."""
    _require_clang()
    index = ci.Index.create()
    opts = (ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
            | ci.TranslationUnit.PARSE_INCOMPLETE)
    try:
        tu = index.parse(str(source), args=args, unsaved_files=unsaved, options=opts)
    except ci.TranslationUnitLoadError as exc:
        raise PortError(f"libclang could not load the file ({exc})", source,
                        "check that the file is C source and not truncated") from exc
    root = str(upstream_root) + os.sep
    result = ParsedTU(str(source), list(args))

    def rel(name: str) -> str | None:
        name = os.path.normpath(name)
        return name[len(root):] if name.startswith(root) else None

    for d in tu.diagnostics:
        f = rel(_file_name(d.location.file)) if d.location.file else None
        sev = {0: "ignored", 1: "note", 2: "warning", 3: "error", 4: "fatal"}.get(d.severity, str(d.severity))
        result.diagnostics.append(Diagnostic(sev, f or _file_name(d.location.file), d.location.line,
                                             d.spelling, d.category_name or ""))
    seen_files = set()
    for inc in tu.get_includes():
        f = rel(_file_name(inc.include))
        if f:
            seen_files.add(f)
    src_rel = rel(str(source))
    if src_rel:
        seen_files.add(src_rel)
    result.files = sorted(seen_files)

    for cur in tu.cursor.walk_preorder():
        loc = cur.location
        if loc.file is None:
            continue
        f = rel(loc.file.name)
        if f is None:
            continue
        kind = cur.kind.name
        if kind == "MACRO_DEFINITION":
            function_like = cur.is_macro_function_like() if hasattr(cur, "is_macro_function_like") else False
            result.macros.append(MacroDefinition(cur.spelling, f, loc.line, cur.extent.end.line, function_like))
        elif kind == "MACRO_INSTANTIATION":
            result.expansions.append(MacroExpansion(cur.spelling, f, loc.line))
        elif kind in _DECL_KINDS and cur.spelling:
            extern = False
            try:
                extern = cur.storage_class == ci.StorageClass.EXTERN
            except Exception:  # noqa: BLE001  # pragma: no cover - enum drift between libclang versions
                pass
            first = ""
            if kind in ("FUNCTION_DECL", "TYPEDEF_DECL", "VAR_DECL"):
                toks = cur.get_tokens()
                first = next((t.spelling for t in toks), "")
            result.decls.append(Decl(cur.spelling, _DECL_KINDS[kind], f, loc.line, cur.extent.start.line,
                                     cur.extent.end.line, cur.is_definition(), extern,
                                     cur.type.spelling if cur.type else "", first, loc.column))
    skipped = _skipped_ranges(tu)
    for name, ranges in skipped.items():
        f = rel(name)
        if f:
            result.skipped[f] = ranges
    return result


def base_args(defines: dict[str, str | None], include_dirs: list[Path], sysroot: Path, asm: bool = False,
              prelude: Path | None = None) -> list[str]:
    args = ["-x", "assembler-with-cpp" if asm else "c", "-std=gnu11", "--target=x86_64-unknown-none-elf",
            "-nostdinc", "-ffreestanding", "-ferror-limit=0", "-fno-spell-checking",
            "-Wno-implicit-function-declaration", "-Wno-implicit-int", "-Wno-int-conversion",
            "-Wno-incompatible-pointer-types"]
    for name, value in sorted(defines.items()):
        args.append(f"-D{name}" if value is None else f"-D{name}={value}")
    for d in include_dirs:
        args += ["-I", str(d)]
    args += ["-I", str(sysroot)]
    if prelude is not None:
        args += ["-include", str(prelude)]
    return args


_UNDECLARED = [
    re.compile(r"use of undeclared identifier '([^']+)'"),
    re.compile(r"unknown type name '([^']+)'"),
    re.compile(r"(?:call to undeclared function|implicit declaration of function) '([^']+)'"),
    re.compile(r"undeclared (?:function|library function) '([^']+)'"),
]


def undeclared_names(diags: list[Diagnostic]) -> dict[str, int]:
    """Identifiers libclang reported as undeclared, with how often."""
    out: dict[str, int] = {}
    for d in diags:
        for rx in _UNDECLARED:
            m = rx.search(d.message)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + 1
                break
    return out
