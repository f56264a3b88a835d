"""TargetSpec: how a target kernel provides the os_* contract and fills each variation point.

A spec is a directory ``shim/<target>/`` holding ``target.toml`` and the C fragment files it
names.  The format's reference, every table and key with its type, default and meaning, is
``docs/target-spec.md``; the schema below is its single source (``SCHEMA``; a test checks that
the document covers every key).  In short::

    [target]            name, os, macro, base, description
    [build]             system (kbuild | jam | bsdmake | none), module, version, cflags, glue_cflags,
                        common_cflags, userland, dkms
    [provides]          names: BSD names the target kernel provides itself
    [compat]            emit, needs, user_provides, native_headers
    [glue]              includes, files, headers, bridge, common
    [primitives.NAME]   one per primitive of the contract: kind = "typedef" (type | declaration),
                        "object-like macro" (body), "function-like macro" (params, body),
                        "static inline" (returns, params, body | file), "out-of-line function"
                        (file: its complete C definition, checked against the contract's
                        prototype | external = true); or native = true
    [variation_points."ID"]   one of: same_as = "netbsd", code = "...", file = "vp/x.c",
                        omit = true, items = ["@primitive", "C text", ...] (contract blocks)

Any primitive or variation point may carry ``todo = "..."`` instead of its content (``gen.py
new-target`` writes those) and ``note = "..."``.

Validation is one stage: :func:`load_spec` reads the schema (unknown tables and keys, wrong
types, missing keys, bad names, fragments that do not exist or do not define their primitive),
:func:`validate` checks the spec against the analysis of upstream (names upstream does not have,
kinds, macro arities, fragment prototypes, missing and TODO entries).  Every problem is a
:class:`~nvmm_port.errors.Diagnostic` with its file and line (the TOML line of the key, the
fragment's line), and they are raised together (:func:`check_spec`), so one run shows them all;
``gen.py surface`` and ``gen.py generate`` run the same validation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import __version__, tomlw
from ..analysis import cdecl
from ..analysis.identity import primitive_fingerprint, vp_fingerprint
from ..analysis.model import (
    FUNCTION_MACRO,
    OBJECT_MACRO,
    OUT_OF_LINE,
    PRIMITIVE_KINDS,
    STATIC_INLINE,
    TYPEDEF,
    Primitive,
    Surface,
    VariationPoint,
)
from ..errors import Diagnostic, DiagnosticsError, PortError, shown_path
from .tomlpos import TomlPositions

if TYPE_CHECKING:
    from ..project import Project
    from .compat import MissingNames

BUILD_SYSTEMS = ("kbuild", "jam", "bsdmake", "hosted", "none")
VP_FORMS = ("same_as", "code", "file", "omit", "items")

# what names may look like
NAME_RULE = "letters, digits, - and _, starting with a letter or digit"
MACRO_RULE = "a C identifier: letters, digits and _, not starting with a digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = frozenset([
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "_Bool",
    "_Complex", "_Imaginary", "_Alignas", "_Alignof", "_Atomic", "_Generic", "_Noreturn", "_Static_assert",
    "_Thread_local"])
_INCLUDE = re.compile(r'(<[^<>"\s]+>|"[^"<>]+")\Z')

# value types of the schema's keys, as the reference document names them
STRING = "string"
BOOLEAN = "boolean"
STRINGS = "array of strings"
_PYTHON_TYPES: dict[str, type] = {STRING: str, BOOLEAN: bool, STRINGS: list}


def _meta(kind: str, doc: str, *, required: bool = False) -> dict[str, Any]:
    """What the schema says of a key a spec may write: its TOML type and meaning."""
    return {"toml": kind, "doc": doc, "required": required}


def _key(kind: str, doc: str, default: Any = None, *, required: bool = False) -> Any:
    """A key a spec may write, with its default: the one place defaults live (arrays are written
    ``field(default_factory=list, metadata=_meta(...))``)."""
    return field(default=default, metadata=_meta(kind, doc, required=required))


def _internal(default: Any = None) -> Any:
    """A field the loader fills, not a key of the TOML."""
    if isinstance(default, (list, dict, set)):
        return field(default_factory=type(default), repr=False)
    return field(default=default, repr=False)


# ---------------------------------------------------------------------------
# The schema: one dataclass per table


@dataclass
class TargetTable:
    """``[target]``: which OS the spec is for."""

    name: str = _key(STRING, f"the spec's name ({NAME_RULE}); `build/<name>/` is its default output", "",
                     required=True)
    os: str = _key(STRING, f"the OS key ({NAME_RULE}): the glue is `driver/nvmm_<os>.c`; an OS upstream knows "
                           "(netbsd, dragonfly) means the spec is that OS's own", "", required=True)
    macro: str = _key(STRING, f"the macro the target's compiler defines ({MACRO_RULE}): the target's arms are "
                              "`#elif defined(<macro>)`", "", required=True)
    base: str = _key(STRING, "the upstream flavour whose BSD names the compat layer supplies (an OS upstream's "
                             "conditionals know)", "netbsd")
    description: str = _key(STRING, "one line about the port, written into the glue's banner", "")


@dataclass
class BuildTable:
    """``[build]``: how the rendered tree is built."""

    system: str = _key(STRING, f"the build system: {' | '.join(BUILD_SYSTEMS)} (`gen.py build` runs kbuild, jam "
                                 "and hosted)",
                       "none")
    module: str = _key(STRING, f"the kernel module's name ({NAME_RULE}; Kbuild, dkms.conf)", "nvmm")
    version: str = _key(STRING, "the module's version (Kbuild's NVMM_MODULE_VERSION, dkms.conf); default: the "
                                "tool's version", __version__)
    cflags: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "extra compiler flags for upstream's files"))
    glue_cflags: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "extra compiler flags for the glue (kernel headers only)"))
    common_cflags: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "extra compiler flags for the shared `[glue] common` sources"))
    userland: bool = _key(BOOLEAN, "also build libnvmm and upstream's test programs (static), "
                                   "from `Makefile.userland`", False)
    dkms: bool = _key(BOOLEAN, "Kbuild targets: also write `dkms.conf`", True)
    not_built: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "upstream files the build does not compile (rendered all the same); the hosted target's "
                 "fake backend replaces the hardware backends"))


@dataclass
class ProvidesTable:
    """``[provides]``: BSD names the target kernel provides itself (no compat entry is emitted)."""

    names: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "names visible to upstream's files before any compat header (the glue header declares "
                 "them, or the kernel's own headers do)"))


@dataclass
class CompatTable:
    """``[compat]``: the BSD compatibility headers."""

    emit: bool = _key(BOOLEAN, "emit compat headers at all (false for a BSD kernel, which has every name)", True)
    needs: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "names to emit although the analysis does not see them used"))
    user_provides: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "like `[provides] names`, for the userland compat trees (libnvmm and the tests)"))
    libc_lacks: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "names the catalog takes from the C library in the userland compat trees that the target's C "
                 "library does not have: their catalog definitions are emitted there"))
    native_headers: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "<paths> upstream includes that the target's own include path has: no forwarding compat "
                 "header is written for them"))


@dataclass
class GlueTable:
    """``[glue]``: the target's own sources and headers."""

    includes: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, 'what the glue `driver/nvmm_<os>.c` includes first: `"<x.h>"` or `\'"x.h"\'`'))
    files: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "fragments appended to the glue after the out-of-line primitives (device glue), relative "
                 "to the spec directory"))
    headers: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "the target's own headers, copied into `driver/`"))
    bridge: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "sources of the target compiled in upstream's world (`-D_KERNEL`, compat headers), copied "
                 "into `driver/`"))
    common: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "directories of `shim/common/` whose .c and .h files the target shares"))
    tree: str | None = _key(STRING, "a directory of the spec whose files are placed in the generated tree "
                                    "verbatim, at the same relative paths (the files a hand port adds "
                                    "beside upstream's: `gen.py adopt` writes it)")


@dataclass
class SysrootTable:
    """``[sysroot]``: the target OS's own tree the build compiles against (not needed for a target built
    against the host's kernel headers)."""

    name: str = _key(STRING, "the sysroot's name: its lock is `upstream/sysroot/<name>.lock`", "")
    git: str = _key(STRING, "the repository: a GitHub URL (read from its local mirror) or a local clone", "")
    ref: str = _key(STRING, "the commit (or ref) to import; the lock pins the commit", "")
    paths: list[str] = field(default_factory=list, metadata=_meta(
        STRINGS, "the folders to import, relative to the tree's root (headers, kernel and C library sources)"))


@dataclass
class PrimitiveSpec:
    """``[primitives.NAME]``: how the target provides one primitive of the contract."""

    name: str = _internal("")
    kind: str | None = _key(STRING, f"one of: {', '.join(PRIMITIVE_KINDS)}")
    todo: str | None = _key(STRING, "instead of the content: what is left to do (`gen.py generate` refuses it)")
    params: list[str] | None = field(default=None, metadata=_meta(
        STRINGS, "function-like macro: the parameter names (`[]` for `NAME()`); static inline and "
                 "prototypes: the parameter declarations"))
    body: str | None = _key(STRING, "a macro's replacement text, or the statements of a static inline")
    type: str | None = _key(STRING, "typedef: the type (`typedef <type> NAME;`)")
    declaration: str | None = _key(STRING, "typedef, out-of-line prototype or static function written out in "
                                           "full (instead of `type`, `returns`, `params` and `body`)")
    returns: str | None = _key(STRING, "static inline, or an out-of-line function's prototype in the contract "
                                       "header: the return type")
    file: str | None = _key(STRING, "out-of-line: the fragment holding the function's complete C definition, "
                                    "checked against the contract's prototype; static inline: the body")
    external: bool = _key(BOOLEAN, "out-of-line: implemented outside the generated tree (the glue's own files)",
                          False)
    native: bool = _key(BOOLEAN, "the target kernel provides the name itself: the contract defines nothing", False)
    fingerprint: str | None = _key(STRING, "upstream's definition this entry was written against "
                                           "(`gen.py stamp` writes it): when upstream changes it, the entry is "
                                           "refused until reviewed")
    note: str | None = _key(STRING, "free text for the porter (ignored)")
    source: str = _internal("")          # the fragment's text, when ``file`` names one
    where: str = _internal("")           # "[primitives.NAME]", for messages
    line: int = _internal(0)             # the line of its table in target.toml
    given: frozenset[str] = _internal(frozenset())   # the keys the TOML writes


@dataclass
class VPSpec:
    """``[variation_points."ID"]``: what the target compiles at one variation point."""

    id: str = _internal("")
    todo: str | None = _key(STRING, "instead of the content: what is left to do")
    same_as: str | None = _key(STRING, "compile what this upstream OS compiles there (its branch gains "
                                       "`|| defined(<macro>)`)")
    code: str | None = _key(STRING, "the C text of the target's arm")
    file: str | None = _key(STRING, "a fragment holding the C text of the target's arm")
    omit: bool = _key(BOOLEAN, "the target compiles nothing there", False)
    items: list[str] | None = field(default=None, metadata=_meta(
        STRINGS, 'contract blocks: the arm in order, `"@primitive"` for a primitive\'s rendered definition, '
                 "other strings as C text"))
    fingerprint: str | None = _key(STRING, "upstream's block this entry was written against (`gen.py stamp` "
                                           "writes it): when upstream changes the block, or the id comes to name "
                                           "another one, the entry is refused until reviewed")
    note: str | None = _key(STRING, "free text for the porter (ignored)")
    where: str = _internal("")
    line: int = _internal(0)
    given: frozenset[str] = _internal(frozenset())


# table name as the reference writes it -> its dataclass
SCHEMA: dict[str, type] = {
    "target": TargetTable,
    "build": BuildTable,
    "provides": ProvidesTable,
    "compat": CompatTable,
    "glue": GlueTable,
    "sysroot": SysrootTable,
    "primitives.NAME": PrimitiveSpec,
    'variation_points."ID"': VPSpec,
}
TABLES = tuple(k.split(".")[0] for k in SCHEMA)

_Table = TypeVar("_Table")


def schema_keys(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """The TOML keys of one table of the schema (internal fields left out), in order."""
    return {f.name: f for f in dataclasses.fields(cls) if "toml" in f.metadata}


@dataclass
class TargetSpec:
    dir: Path
    target: TargetTable
    build: BuildTable
    provides: set[str]                          # [provides] names
    compat: CompatTable
    glue: GlueTable
    primitives: dict[str, PrimitiveSpec]
    variation_points: dict[str, VPSpec]
    glue_sources: list[tuple[str, str]] = field(default_factory=list)     # (fragment path, text)
    glue_headers: list[tuple[str, str]] = field(default_factory=list)     # copied into driver/ (the target's API)
    bridge_sources: list[tuple[str, str]] = field(default_factory=list)   # ours, compiled in upstream's world
    common_files: list[tuple[str, str]] = field(default_factory=list)     # (common/<x>/file, text)
    tree_files: list[tuple[str, bytes]] = field(default_factory=list)     # [glue] tree: (path in the tree, bytes)
    positions: TomlPositions = field(repr=False, default_factory=lambda: TomlPositions(""))
    problems: list[Diagnostic] = field(repr=False, default_factory=list)  # what loading found
    sysroot: SysrootTable = field(default_factory=SysrootTable)

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def os(self) -> str:
        return self.target.os

    @property
    def macro(self) -> str:
        return self.target.macro

    @property
    def base(self) -> str:
        return self.target.base

    @property
    def description(self) -> str:
        return self.target.description

    @property
    def compat_needs(self) -> set[str]:
        return set(self.compat.needs)

    @property
    def toml_path(self) -> Path:
        return self.dir / "target.toml"

    def line(self, *path: str | int) -> int:
        """The line of a key of target.toml (or of its nearest enclosing table)."""
        return self.positions.line(*path)

    def at(self, path: tuple[str | int, ...], message: str, fix: str | None = None,
           group: str | None = None) -> Diagnostic:
        """A diagnostic at a key of target.toml."""
        return Diagnostic(str(self.toml_path), self.line(*path), message, fix, group)

    def digest(self) -> str:
        """sha256 over every file of the spec directory (what PROVENANCE records)."""
        h = hashlib.sha256()
        for p in sorted(self.dir.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(self.dir).as_posix().encode() + b"\0")
                h.update(p.read_bytes())
        return h.hexdigest()

    def todos(self) -> dict[str, list[str]]:
        """Entries still marked TODO, grouped: primitives, variation points."""
        out: dict[str, list[str]] = {"primitives": [], "variation points": []}
        for p in self.primitives.values():
            if p.todo is not None:
                out["primitives"].append(f"{p.name}: {p.todo}")
        for v in self.variation_points.values():
            if v.todo is not None:
                out["variation points"].append(f"{v.id}: {v.todo}")
        return {k: v for k, v in out.items() if v}


# ---------------------------------------------------------------------------
# Names


def target_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a target (a directory under shim/, build/<name>/), or None."""
    if not _NAME.match(name):
        return f"'{name}' is not a usable target name: use {NAME_RULE}"
    return None


def macro_problem(macro: str) -> str | None:
    """Why ``macro`` cannot be the target's OS macro (it is written into `#elif defined(...)`), or None."""
    if not _C_IDENT.match(macro):
        return f"'{macro}' is not a C macro name: use {MACRO_RULE}"
    if macro in _C_KEYWORDS:
        return f"'{macro}' is a C keyword, not a macro name"
    return None


def default_macro(name: str) -> str:
    """The OS macro a target named ``name`` gets by default: ``__<name>__`` with every character C
    does not allow in a macro name turned into ``_`` (``my-os`` -> ``__my_os__``)."""
    return "__" + re.sub(r"[^A-Za-z0-9_]", "_", name) + "__"


# ---------------------------------------------------------------------------
# Loading


def resolve_target(project: Project, target: str) -> Path:
    """A target name under shim/, or the path of a spec directory."""
    p = Path(target)
    if (p / "target.toml").is_file():
        return p.resolve()
    cand = project.shim_dir / target
    if (cand / "target.toml").is_file():
        return cand
    known = sorted(d.name for d in project.shim_dir.iterdir() if (d / "target.toml").is_file()) \
        if project.shim_dir.is_dir() else []
    raise PortError(f"unknown target '{target}'", project.shim_dir / target / "target.toml",
                    f"known targets: {', '.join(known) or 'none'}; create one with `gen.py new-target {p.name}` "
                    "or pass the path of a spec directory")


def load_spec(spec_dir: Path, *, defer_errors: bool = False) -> TargetSpec:
    """Read and check a spec directory against the schema.

    Every problem found is collected; they are raised together as one
    :class:`~nvmm_port.errors.DiagnosticsError`, or, with ``defer_errors``, kept in
    ``spec.problems`` for :func:`check_spec` to report with what the check against upstream
    finds (so one run shows every error).  A target.toml that is missing or not TOML is raised
    at once: nothing else can be read.
    """
    path = spec_dir / "target.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PortError("no target.toml", path, "create the spec with `gen.py new-target NAME`") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+)", str(exc))
        diag = Diagnostic(str(path), int(m.group(1)) if m else 1, f"malformed TOML ({exc})", "fix the syntax")
        raise spec_error(path, [diag], "target.toml cannot be read") from None
    spec = _Loader(spec_dir, path, TomlPositions(text)).load(data)
    spec.problems = _in_order(spec.problems, path)
    if spec.problems and not defer_errors:
        raise spec_error(path, spec.problems)
    return spec


def _in_order(diags: list[Diagnostic], toml_path: Path) -> list[Diagnostic]:
    """Errors by place (target.toml first, then fragments), then the grouped ones as they came."""
    toml = str(toml_path)
    errors = sorted((d for d in diags if d.group is None), key=lambda d: (d.file != toml, d.file, d.line))
    return errors + [d for d in diags if d.group is not None]


def _table_name(path: tuple[str | int, ...]) -> str:
    """How messages write a table: [target], [primitives.os_x], [variation_points."driver/a.c:f#1"]."""
    return "[" + ".".join(tomlw.key(str(p)) for p in path) + "]"


class _Loader:
    def __init__(self, spec_dir: Path, toml_path: Path, positions: TomlPositions):
        self.dir = spec_dir
        self.path = toml_path
        self.pos = positions
        self.diags: list[Diagnostic] = []

    def error(self, path: tuple[str | int, ...], message: str, fix: str | None = None) -> None:
        self.diags.append(Diagnostic(str(self.path), self.pos.line(*path), message, fix))

    def load(self, data: dict[str, Any]) -> TargetSpec:
        for key, value in data.items():
            if key not in TABLES:
                self.error((key,), f"unknown table [{key}]" if isinstance(value, dict) else f"unknown key '{key}'",
                           f"known tables: {', '.join(f'[{t}]' for t in TABLES)}")
        target = self.table(data, ("target",), TargetTable)
        build = self.table(data, ("build",), BuildTable)
        provides = self.table(data, ("provides",), ProvidesTable)
        compat = self.table(data, ("compat",), CompatTable)
        glue = self.table(data, ("glue",), GlueTable)
        sysroot = self.table(data, ("sysroot",), SysrootTable)
        if "sysroot" in data and not (sysroot.name and sysroot.git and sysroot.ref and sysroot.paths):
            self.error(("sysroot",), "[sysroot] needs name, git, ref and paths",
                       'write e.g. name = "haiku", git = "https://github.com/haiku/haiku", ref = COMMIT, '
                       'paths = ["headers"]')
        self.check_target(target)
        if build.system not in BUILD_SYSTEMS:
            self.error(("build", "system"), f"[build] system = '{build.system}' is not one of "
                       f"{', '.join(BUILD_SYSTEMS)}", "pick a build system the generator knows")
        if not _NAME.match(build.module):
            self.error(("build", "module"), f"[build] module = '{build.module}' is not a usable module name",
                       f"use {NAME_RULE}")
        for i, inc in enumerate(glue.includes):
            if not _INCLUDE.match(inc):
                self.error(("glue", "includes", i), f"[glue] includes has '{inc}', which #include cannot take",
                           "write '<linux/x.h>' or '\"x.h\"' (with the brackets or quotes)")
        glue_sources = self.fragments(("glue", "files"), glue.files)
        glue_headers = self.fragments(("glue", "headers"), glue.headers)
        bridge = self.fragments(("glue", "bridge"), glue.bridge)
        common = self.common_files(glue.common)
        tree = self.tree_files(glue.tree)
        prims = {name: self.primitive(name, entry) for name, entry in self.entries(data, "primitives").items()}
        vps = {vid: self.vp(vid, entry) for vid, entry in self.entries(data, "variation_points").items()}
        return TargetSpec(self.dir, target, build, set(provides.names), compat, glue, prims, vps,
                          glue_sources, glue_headers, bridge, common, tree, self.pos, self.diags, sysroot)

    # ---- generic tables

    def table(self, data: dict[str, Any], path: tuple[str, ...], cls: type[_Table]) -> _Table:
        """One table read into its dataclass: unknown keys, wrong types and missing required keys are
        errors (the key keeps its default)."""
        raw: Any = data     # TOML: any path component may hold a non-table
        for p in path:
            raw = raw.get(p, {}) if isinstance(raw, dict) else {}
        name = _table_name(path)
        if not isinstance(raw, dict):
            self.error(path, f"{name} must be a table", f"write it as {name} with keys under it")
            raw = {}
        keys = schema_keys(cls)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            f = keys.get(key)
            if f is None:
                self.error(path + (key,), f"{name} has unknown key '{key}'", f"known keys: {', '.join(keys)}")
                continue
            kind = f.metadata["toml"]
            if not isinstance(value, _PYTHON_TYPES[kind]) or \
                    (isinstance(value, list) and not all(isinstance(x, str) for x in value)):
                self.error(path + (key,), f"{name} {key} must be a {kind}, not {_toml_type(value)}",
                           f"write {key} = {tomlw.value(_example(kind))}")
                continue
            values[key] = list(value) if isinstance(value, list) else value
        for key, f in keys.items():
            if f.metadata["required"] and key not in values and key not in raw:
                self.error(path, f"{name} needs '{key}' ({f.metadata['doc']})", f'add {key} = "..." under {name}')
        obj = cls(**values)
        if hasattr(obj, "given"):
            obj.given = frozenset(values)
        return obj

    def entries(self, data: dict[str, Any], table: str) -> dict[str, Any]:
        raw = data.get(table, {})
        if not isinstance(raw, dict):
            self.error((table,), f"{table} must hold tables", f"write each entry as [{table}.NAME]")
            return {}
        return raw

    def check_target(self, t: TargetTable) -> None:
        if t.name and (problem := target_name_problem(t.name)):
            self.error(("target", "name"), f"[target] name: {problem}")
        if t.os and not _NAME.match(t.os):
            self.error(("target", "os"), f"[target] os = '{t.os}' is not a usable OS key (it names the glue "
                       f"driver/nvmm_<os>.c)", f"use {NAME_RULE}")
        if t.macro and (problem := macro_problem(t.macro)):
            self.error(("target", "macro"), f"[target] macro: {problem}",
                       f'write macro = "{default_macro(t.macro.strip("_") or t.name or "os")}"')

    # ---- files

    def read_fragment(self, key: tuple[str | int, ...], rel: str, what: str) -> str | None:
        f = self.dir / rel
        if not f.is_file():
            self.error(key, f"{what} names '{rel}', which does not exist", f"create {shown_path(f)} or fix the path")
            return None
        return f.read_text()

    def fragments(self, key: tuple[str, ...], rels: list[str]) -> list[tuple[str, str]]:
        out = []
        for i, rel in enumerate(rels):
            text = self.read_fragment(key + (i,), rel, f"[{key[0]}] {key[1]}")
            if text is not None:
                out.append((rel, text))
        return out

    def tree_files(self, rel: str | None) -> list[tuple[str, bytes]]:
        """[glue] tree: every file under that directory of the spec, by its path below it."""
        if rel is None:
            return []
        d = self.dir / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not d.is_dir():
            self.error(("glue", "tree"), f"[glue] tree = '{rel}' is not a directory of the spec",
                       f"create {shown_path(d)} or fix the path")
            return []
        return [(f.relative_to(d).as_posix(), f.read_bytes()) for f in sorted(d.rglob("*")) if f.is_file()]

    def common_files(self, names: list[str]) -> list[tuple[str, str]]:
        """The C sources and headers of shim/common/<name>/ (not its tests) a spec shares."""
        out = []
        for i, name in enumerate(names):
            d = self.dir.parent / "common" / name
            if not d.is_dir():
                self.error(("glue", "common", i), f"[glue] common names '{name}', which is not a directory of "
                           "shim/common/", f"create {shown_path(d)} or fix the name")
                continue
            for f in sorted(d.iterdir()):
                if f.is_file() and f.suffix in (".c", ".h"):
                    out.append((f"common/{name}/{f.name}", f.read_text()))
        return out

    # ---- entries

    def primitive(self, name: str, entry: Any) -> PrimitiveSpec:
        key = ("primitives", name)
        where = _table_name(key)
        p = self.table({"primitives": {name: entry}}, key, PrimitiveSpec)
        p.name, p.where, p.line = name, where, self.pos.line(*key)
        if not isinstance(entry, dict) or p.todo is not None or (p.native and p.kind is None):
            return p
        if p.kind is None:
            if "kind" not in entry:
                self.error(key, f"{where} needs 'kind' ({', '.join(PRIMITIVE_KINDS)})",
                           'set kind, or write native = true, or todo = "..."')
            return p
        if p.kind not in PRIMITIVE_KINDS:
            self.error(key + ("kind",), f"{where} kind = {p.kind!r} is not one of: {', '.join(PRIMITIVE_KINDS)}",
                       "set kind")
            return p
        need = {OBJECT_MACRO: ("body",), FUNCTION_MACRO: ("params", "body"), STATIC_INLINE: ("body",)}.get(p.kind, ())
        for k in need:
            if getattr(p, k) is None and k not in entry and not (k == "body" and (p.file or p.declaration)):
                self.error(key, f"{where} ({p.kind}) needs '{k}'", f"add {k} = ...")
        if p.kind == FUNCTION_MACRO and p.params is not None:
            for i, param in enumerate(p.params):
                if i == len(p.params) - 1 and (param == "..." or (param.endswith("...")
                                                   and _C_IDENT.match(param[:-3]))):
                    continue    # variadic, ISO (`...`) or GNU named (`args...`)
                if not _C_IDENT.match(param) or param in _C_KEYWORDS:
                    self.error(key + ("params", i), f"{where} params has '{param}', which is not a macro "
                               "parameter name",
                               "write C identifiers (and '...' or 'name...' last for a variadic macro)")
            dup = sorted({x for x in p.params if p.params.count(x) > 1})
            if dup:
                self.error(key + ("params",), f"{where} params repeats {', '.join(dup)}", "name each parameter once")
        if p.kind == TYPEDEF and "type" not in entry and "declaration" not in entry:
            self.error(key, f"{where} (typedef) needs 'type' or 'declaration'", 'add type = "..."')
        if p.kind == OUT_OF_LINE and not p.external and not p.file:
            self.error(key, f"{where} (out-of-line function) needs 'file' (its C definition) or external = true",
                       f'add file = "primitives/{name}.c"')
        if p.kind == OUT_OF_LINE and p.external and p.file:
            self.error(key + ("external",), f"{where} has both external = true and file = '{p.file}'",
                       "external means the definition lives outside the generated tree: keep one of them")
        if p.file:
            source = self.read_fragment(key + ("file",), p.file, f"{where} file")
            if source is None:
                return p
            p.source = source
            if p.kind == STATIC_INLINE and p.body is None:
                p.body = p.source.rstrip("\n")
            if p.kind == OUT_OF_LINE:
                frag = str(self.dir / p.file)
                try:
                    head, line = definition_head(p.source)
                    sig = cdecl.parse_signature(head)
                except cdecl.SignatureError as exc:
                    self.diags.append(Diagnostic(frag, 1, f"cannot read the function {name} in {p.file} ({exc})",
                                                 "the fragment must hold the complete C definition"))
                    return p
                if sig.name != name:
                    self.diags.append(Diagnostic(frag, line, f"{p.file} defines {sig.name}, not {name} "
                                                 f"({where} names it)", "name the function after the primitive"))
        return p

    def vp(self, vid: str, entry: Any) -> VPSpec:
        key = ("variation_points", vid)
        where = _table_name(key)
        v = self.table({"variation_points": {vid: entry}}, key, VPSpec)
        v.id, v.where, v.line = vid, where, self.pos.line(*key)
        if not isinstance(entry, dict) or v.todo is not None:
            return v
        forms = [k for k in VP_FORMS if k in v.given and not (k == "omit" and not v.omit)]
        if len(forms) != 1:
            self.error(key, f"{where} needs exactly one of {', '.join(VP_FORMS)} (has {', '.join(forms) or 'none'})",
                       "say what the target compiles there")
        if v.file:
            text = self.read_fragment(key + ("file",), v.file, f"{where} file")
            if text is not None:
                v.code = text
        return v


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array" if all(isinstance(x, str) for x in value) else "an array holding non-strings"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _example(kind: str) -> Any:
    return {STRING: "...", BOOLEAN: True, STRINGS: ["..."]}[kind]


def definition_head(source: str) -> tuple[str, int]:
    """The declaration part of the last top-level function definition in a fragment (helpers may
    come first; comments and preprocessor lines dropped), and the line it starts on."""
    from ..analysis.preprocessor import mask_text
    masked = mask_text(source)
    heads: list[tuple[int, int]] = []
    depth, start = 0, 0
    for i, c in enumerate(masked):
        if c == "{":
            if depth == 0:
                heads.append((start, i))
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
    if not heads:
        raise cdecl.SignatureError("no function definition")
    a, b = heads[-1]
    kept, first = [], None
    offset = a
    for ln in masked[a:b].split("\n"):
        if not ln.lstrip().startswith("#"):
            kept.append(ln)
            if first is None and ln.strip():
                first = offset + len(ln) - len(ln.lstrip())
        offset += len(ln) + 1
    line = masked.count("\n", 0, first) + 1 if first is not None else 1
    return "\n".join(kept).strip() + ";", line


# ---------------------------------------------------------------------------
# Checking a spec against the analysis of upstream


def validate(spec: TargetSpec, surface: Surface) -> list[Diagnostic]:
    """Every problem of ``spec`` for upstream ``surface``: what loading found, then names upstream
    does not have, kinds and arities that cannot work, fragment prototypes that differ from the
    contract's, and (grouped apart) entries missing or still TODO.  ``gen.py generate`` refuses a
    spec with any; ``gen.py surface`` lists them."""
    diags = list(spec.problems)
    up = surface.upstream
    prims = {p.name: p for p in surface.primitives}
    vp_ids = {v.id for v in surface.variation_points}
    lock = f"upstream/{up.name}.lock"
    if spec.base not in up.oses:
        diags.append(spec.at(("target", "base"), f"[target] base = '{spec.base}': upstream {up.name} knows only "
                             f"{', '.join(up.oses)}", "name one of those OSes"))
    for name, p in spec.primitives.items():
        if name not in prims:
            diags.append(spec.at(("primitives", name), f"{p.where}: '{name}' is not a primitive of {up.name}'s "
                                 f"contract ({surface.contract_file}, {lock})",
                                 "remove it, or run `gen.py analyze` to see the contract"))
            continue
        if p.fingerprint and p.fingerprint != primitive_fingerprint(prims[name]):
            diags.append(spec.at(("primitives", name, "fingerprint"),
                                 f"{p.where}: changed upstream: review (written against {p.fingerprint}, upstream "
                                 f"{up.name} has {primitive_fingerprint(prims[name])}: its kind or definitions "
                                 f"changed)",
                                 "check the entry against the contract (`gen.py drift` shows what changed), then "
                                 "`gen.py stamp --target " + spec.name + "` records it"))
            continue
        if p.todo is None:
            diags.extend(_check_primitive(spec, p, prims[name], surface))
    for i, rel in enumerate(spec.build.not_built):
        if rel not in up.files:
            diags.append(spec.at(("build", "not_built", i), f"[build] not_built names {rel}, which is not a file of "
                                 f"upstream {up.name} ({lock})", "name an upstream file (driver/..., as `gen.py "
                                 "analyze` lists them), or remove it"))
    vp_prints = {v.id: vp_fingerprint(v) for v in surface.variation_points}
    for vid, v in spec.variation_points.items():
        now = [x for x, fp in vp_prints.items() if v.fingerprint and fp == v.fingerprint]
        if vid not in vp_ids:
            near = sorted(x for x in vp_ids if x.split(":")[0] == vid.split(":")[0])
            if now:
                diags.append(spec.at(("variation_points", vid), f"{v.where}: the block this entry was written for is "
                                     f"now {now[0]} in {up.name} ({lock})", f"rename the entry to "
                                     f'[variation_points."{now[0]}"]'))
                continue
            diags.append(spec.at(("variation_points", vid), f"{v.where}: no such variation point in {up.name} "
                                 f"({lock})", "it no longer exists upstream (or its id changed); variation points "
                                 f"of that file: {', '.join(near) or 'none'}"))
            continue
        if v.fingerprint and v.fingerprint != vp_prints[vid]:
            moved = f"; the block it was written for is now {now[0]}" if now else ""
            diags.append(spec.at(("variation_points", vid, "fingerprint"),
                                 f"{v.where}: changed upstream: review (written against {v.fingerprint}, upstream "
                                 f"{up.name} has {vp_prints[vid]}{moved})",
                                 "read upstream's block again (`gen.py drift` shows what changed), fix the entry, "
                                 "then `gen.py stamp --target " + spec.name + "` records the new text"))
            continue
        if v.todo is not None:
            continue
        if v.same_as is not None and v.same_as not in up.oses:
            diags.append(spec.at(("variation_points", vid, "same_as"), f'{v.where} same_as = "{v.same_as}": '
                                 f"upstream {up.name} knows only {', '.join(up.oses)}", "name one of those OSes"))
        for i, item in enumerate(v.items or []):
            if item.startswith("@") and item[1:] not in spec.primitives:
                diags.append(spec.at(("variation_points", vid, "items", i), f'{v.where} items name "{item}", '
                                     f"but {item[1:]} has no [primitives] entry",
                                     f"add [primitives.{item[1:]}] or fix the name"))
    diags.extend(_incomplete(spec, surface))
    return _in_order(diags, spec.toml_path)


def check_spec(spec: TargetSpec, surface: Surface) -> None:
    """Raise every problem :func:`validate` finds, together; nothing may be missing or TODO."""
    diags = validate(spec, surface)
    if diags:
        raise spec_error(spec.toml_path, diags, tail="nothing was generated", target=shown_path(spec.dir))


def spec_error(toml_path: Path, diags: list[Diagnostic], tail: str | None = None,
               target: str | None = None) -> DiagnosticsError:
    """One error for every diagnostic: the first line says how many, one per line under it."""
    errors = [d for d in diags if d.group is None]
    counts: dict[str, int] = {}
    for d in diags:
        if d.group is not None:
            counts[d.group] = counts.get(d.group, 0) + 1
    incomplete = ", ".join(f"{n} {_COUNTED.get(g, g)}" for g, n in counts.items())
    if errors:
        message = f"{len(errors)} error{'s' if len(errors) != 1 else ''} in the spec"
        if incomplete:
            message += f", and it is incomplete ({incomplete})"
    else:
        message = f"the spec is incomplete ({incomplete})"
    if tail:
        message += f"; {tail}"
    fix = "fix each line below" + (f"; `gen.py surface --target {target}` lists them too" if target else "")
    return DiagnosticsError(message, toml_path, diags, fix)


# group heading -> how the first line counts it
_MISSING_P, _MISSING_V = "primitives with no entry", "variation points with no entry"
_TODO_P, _TODO_V = "primitives still TODO", "variation points still TODO"
_COUNTED = {_MISSING_P: _MISSING_P, _MISSING_V: _MISSING_V, _TODO_P: "primitives TODO",
            _TODO_V: "variation points TODO"}


def _incomplete(spec: TargetSpec, surface: Surface) -> list[Diagnostic]:
    """Entries missing (at the line after the last entry of their kind, where they would go) and
    entries still TODO (at their todo line)."""
    out: list[Diagnostic] = []
    toml = str(spec.toml_path)

    def after_last(table: str, names: list[str]) -> int:
        have = [n for n in names if spec.positions.has(table, n)]
        return spec.positions.end_of(table, have[-1]) + 1 if have else spec.positions.last_line() + 1

    add_p = after_last("primitives", list(spec.primitives))
    for p in surface.primitives:
        if p.name not in spec.primitives and (not p.private_to or needs_private(spec, p, surface)):
            d = _first_definition(p)
            at = f", {d.file}:{d.line}" if d else ""
            out.append(Diagnostic(toml, add_p, f"{p.name} ({p.kind}{at})",
                                  f"add [primitives.{tomlw.key(p.name)}]", _MISSING_P))
    add_v = after_last("variation_points", list(spec.variation_points))
    for v in surface.variation_points:
        if v.id not in spec.variation_points and not _covered_by_primitives(v, surface):
            out.append(Diagnostic(toml, add_v, f"{v.id} ({v.file}:{v.line_start}-{v.line_end})",
                                  f"add [variation_points.{tomlw.key(v.id)}]", _MISSING_V))
    for ps in spec.primitives.values():
        if ps.todo is not None:
            out.append(spec.at(("primitives", ps.name, "todo"), f"{ps.name}: {ps.todo}", group=_TODO_P))
    for vs in spec.variation_points.values():
        if vs.todo is not None:
            out.append(spec.at(("variation_points", vs.id, "todo"), f"{vs.id}: {vs.todo}", group=_TODO_V))
    return out


def needs_private(spec: TargetSpec, p: Primitive, surface: Surface) -> bool:
    """Whether the target needs a primitive private to some OSes: it is one of them, or it compiles
    their code where the primitive is used (a variation point filled `same_as` one of them)."""
    if spec.os in p.private_to:
        return True
    for c in p.call_sites:
        for v in surface.variation_points:
            if v.file == c.file and v.line_start <= c.line <= v.line_end:
                entry = spec.variation_points.get(v.id)
                if entry is not None and entry.same_as in p.private_to:
                    return True
    return False


def _first_definition(p: Primitive) -> Any:
    return next(iter(sorted(p.definitions.values(), key=lambda d: (d.file, d.line))), None)


def _check_primitive(spec: TargetSpec, p: PrimitiveSpec, up: Primitive, surface: Surface) -> list[Diagnostic]:
    """Kind, macro arity and prototype of one filled entry against upstream's definitions."""
    if p.native or p.kind not in PRIMITIVE_KINDS:
        return []
    key = ("primitives", p.name)
    defs = sorted(up.definitions.values(), key=lambda d: (d.os, d.line))
    kinds = {d.kind for d in defs}
    shown = _upstream_where(defs)
    out: list[Diagnostic] = []
    if p.kind == TYPEDEF and kinds and kinds != {TYPEDEF}:
        out.append(spec.at(key + ("kind",), f"{p.where} kind = \"typedef\", but {p.name} is not a type upstream "
                           f"({shown})", "give it the kind upstream uses, or a macro"))
        return out
    if p.kind in (FUNCTION_MACRO, STATIC_INLINE, OUT_OF_LINE) and kinds == {TYPEDEF}:
        out.append(spec.at(key + ("kind",), f'{p.where} kind = "{p.kind}", but {p.name} is a type upstream '
                           f"({shown})", 'write kind = "typedef" with type = "..."'))
        return out
    if p.kind == STATIC_INLINE and p.returns is None and p.declaration is None and "all" not in up.definitions:
        out.append(spec.at(key, f"{p.where} (static inline) needs 'returns' and 'params': upstream defines "
                           f"{p.name} per OS ({shown})", 'add returns = "..." and params = [...]'))
        return out
    arities = _arities(defs)
    if p.kind == FUNCTION_MACRO and p.params is not None and arities:
        n, variadic = len([x for x in p.params if x != "..."]), "..." in p.params
        if not any(variadic or v or n == a for a, v in arities):
            want = " or ".join(sorted({str(a) for a, _ in arities}))
            out.append(spec.at(key + ("params",), f"{p.where} is a function-like macro of {_plural(n, 'parameter')}"
                               f" ({', '.join(p.params) or 'none'}), but upstream's {p.name} takes {want} ({shown})",
                               "give it upstream's parameters, in upstream's order"))
        return out
    sigs = [d.signature for d in defs if d.signature is not None]
    if not sigs:
        return out
    got, where = _spec_signature(spec, p)
    if got is None or where is None:
        return out
    typedefs = {q.name: q.type for q in spec.primitives.values() if q.kind == TYPEDEF and q.type}
    problems = _signature_problems(got, sigs, typedefs)
    if problems:
        first = sigs[0]
        proto = _prototype(first["returns"], p.name, [x["type"] for x in first["params"]])
        mine = _prototype(got.returns, p.name, [_param_text(x) for x in got.params])
        out.append(Diagnostic(where[0], where[1], f"{mine} does not match the contract's {proto} ({shown}): "
                              + "; ".join(problems),
                              "write the contract's prototype; the spec's typedefs may stand for the os_* types"))
    return out


def _arities(defs: list[Any]) -> set[tuple[int, bool]]:
    """(parameter count, variadic) of each upstream definition that says it."""
    out = set()
    for d in defs:
        if d.kind == FUNCTION_MACRO and d.params is not None:
            out.add((len([x for x in d.params if x != "..."]), "..." in d.params))
        elif d.signature is not None:
            out.add((len(d.signature["params"]), bool(d.signature.get("variadic"))))
    return out


def _spec_signature(spec: TargetSpec, p: PrimitiveSpec) -> tuple[cdecl.Signature | None, tuple[str, int] | None]:
    """The prototype the spec gives a function primitive, and where it is written."""
    key = ("primitives", p.name)
    toml = str(spec.toml_path)
    try:
        if p.kind == OUT_OF_LINE and p.file and p.source:
            head, line = definition_head(p.source)
            sig = cdecl.parse_signature(head)
            # a fragment defining another function is reported by the loader already
            return (sig, (str(spec.dir / p.file), line)) if sig.name == p.name else (None, None)
        if p.kind in (OUT_OF_LINE, STATIC_INLINE) and p.declaration:
            return cdecl.parse_signature(p.declaration), (toml, spec.line(*key, "declaration"))
        if p.kind in (OUT_OF_LINE, STATIC_INLINE) and p.returns is not None:
            text = f"{p.returns} {p.name}({', '.join(p.params or []) or 'void'});"
            where = "params" if "params" in p.given else "returns"
            return cdecl.parse_signature(text), (toml, spec.line(*key, where))
    except cdecl.SignatureError:
        return None, None
    return None, None


def _upstream_where(defs: list[Any]) -> str:
    """Where upstream defines a primitive, shortly: "function-like macro at driver/nvmm_os.h:147, 153"."""
    by: dict[tuple[str, str], list[int]] = {}
    for d in defs:
        by.setdefault((d.kind, d.file), []).append(d.line)
    return "; ".join(f"{kind} at {file}:{', '.join(map(str, sorted(set(lines))))}"
                     for (kind, file), lines in sorted(by.items()))


def _prototype(returns: str, name: str, params: list[str]) -> str:
    return f"{returns}{'' if returns.endswith('*') else ' '}{name}({', '.join(params) or 'void'})"


def _param_text(x: cdecl.Param) -> str:
    """A parameter as C declares it: ``vaddr_t lo``, ``char *p``, ``void (*fn)(void *)``."""
    if not x.name:
        return x.type
    if "(*)" in x.type:
        return x.type.replace("(*)", f"(*{x.name})", 1)
    return f"{x.type}{'' if x.type.endswith('*') else ' '}{x.name}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _signature_problems(got: cdecl.Signature, sigs: list[dict[str, Any]], typedefs: dict[str, str]) -> list[str]:
    """How a prototype differs from upstream's (any OS's, where they differ from each other),
    comparing types after the spec's typedefs and C's spelling variants are resolved."""
    def canon(t: str) -> str:
        return canonical_type(t, typedefs)
    problems = []
    returns = {canon(s["returns"]) for s in sigs}
    if len(returns) == 1 and canon(got.returns) not in returns:
        problems.append(f"returns {got.returns}, not {sigs[0]['returns']}")
    counts = sorted({len(s["params"]) for s in sigs})
    if len(got.params) not in counts:
        problems.append(f"takes {_plural(len(got.params), 'parameter')}, not {' or '.join(map(str, counts))}")
    else:
        same = [s for s in sigs if len(s["params"]) == len(got.params)]
        for i, param in enumerate(got.params):
            want = {canon(s["params"][i]["type"]) for s in same}
            if len(want) == 1 and canon(param.type) not in want:
                problems.append(f"parameter {i + 1}{' (' + param.name + ')' if param.name else ''} is "
                                f"{param.type}, not {same[0]['params'][i]['type']}")
    if any(bool(s.get("variadic")) for s in sigs) != got.variadic:
        problems.append("is variadic" if got.variadic else "is not variadic")
    return problems


_TOKEN = re.compile(r"[A-Za-z_]\w*|\.\.\.|\S")
_QUALS = ("const", "volatile", "restrict", "__restrict")
_BASIC = frozenset(["signed", "unsigned", "char", "short", "int", "long", "float", "double", "void", "_Bool"])


def canonical_type(text: str, typedefs: dict[str, str] | None = None) -> str:
    """A C type spelled one way: the given typedefs expanded, ``bool`` as ``_Bool``, ``unsigned`` as
    ``unsigned int``, ``long int`` as ``long``, qualifiers first, and top-level qualifiers (which
    do not change a prototype) dropped."""
    typedefs = typedefs or {}
    tokens: list[str] = []
    pending = _TOKEN.findall(text)
    for _ in range(8):                   # typedefs of typedefs, bounded
        expanded: list[str] = []
        for t in pending:
            expanded.extend(_TOKEN.findall(typedefs[t]) if t in typedefs else ["_Bool" if t == "bool" else t])
        if expanded == pending:
            break
        pending = expanded
    tokens = pending
    out: list[str] = []
    group: list[str] = []

    def flush() -> None:
        quals = sorted({t for t in group if t in _QUALS})
        basic = [t for t in group if t in _BASIC]
        rest = [t for t in group if t not in _QUALS and t not in _BASIC]
        out.extend(quals + _canonical_basic(basic) + rest)
        group.clear()
    for t in tokens:
        if _C_IDENT.match(t):
            group.append(t)
        else:
            flush()
            out.append(t)
    flush()
    if "(" not in out:
        last = max((i for i, t in enumerate(out) if t == "*"), default=-1)
        out = [t for i, t in enumerate(out) if i <= last or t not in _QUALS]
    return " ".join(out)


def _canonical_basic(b: list[str]) -> list[str]:
    if not b:
        return []
    unsigned, signed = "unsigned" in b, "signed" in b
    longs = b.count("long")
    if "char" in b:
        return ["unsigned", "char"] if unsigned else (["signed", "char"] if signed else ["char"])
    if "short" in b:
        return ["unsigned", "short"] if unsigned else ["short"]
    if "double" in b:
        return ["long", "double"] if longs else ["double"]
    for t in ("float", "void", "_Bool"):
        if t in b:
            return [t]
    if longs:
        return ["unsigned"] * unsigned + ["long"] * longs
    return ["unsigned", "int"] if unsigned else ["int"]


def provides_error(spec: TargetSpec, exc: MissingNames) -> DiagnosticsError:
    """Names neither the compat catalog nor the spec provides, one per line, each at the spec key
    that would provide it ([provides] names for the kernel, [compat] user_provides for userland)."""
    key = ("provides", "names") if exc.context == "kernel" else ("compat", "user_provides")
    shown = f"[{key[0]}] {key[1]}"
    provider = f"{spec.name or 'the target'}'s {'kernel' if exc.context == 'kernel' else 'C library'}"
    line = spec.line(*key) if spec.positions.has(key[0]) else spec.positions.last_line()
    diags = []
    for item in exc.items:
        fix = f"{item.fix}: list it in {shown}" if item.service else \
            f"list it in {shown} if {provider} provides it, or {item.fix}"
        diags.append(Diagnostic(str(spec.toml_path), line, f"{item.name}{item.uses} {item.problem}", fix))
    n = len(diags)
    return DiagnosticsError(f"{_plural(n, 'name')} the {exc.context} build needs {'have' if n != 1 else 'has'} "
                            "no definition; nothing was generated", spec.toml_path, diags,
                            f"provide each in {shown} or in the compat catalog, as its line says")


# ---------------------------------------------------------------------------
# Contract blocks


def _covered_by_primitives(vp: VariationPoint, surface: Surface) -> bool:
    """A contract block that defines primitives is rendered from the primitives' entries, and a
    variation point inside a primitive defined once for every OS is filled by its body."""
    return (vp.in_contract and bool(block_primitives(vp, surface))) or enclosing_primitive(vp, surface) is not None


def enclosing_primitive(vp: VariationPoint, surface: Surface) -> str | None:
    """The primitive defined once for every OS whose body holds ``vp`` (os_return_needed)."""
    for p in surface.primitives:
        d = p.definitions.get("all")
        if d and d.file == vp.file and d.line < vp.line_start and vp.line_end <= d.line + d.text.count("\n"):
            return p.name
    return None


def block_primitives(vp: VariationPoint, surface: Surface) -> list[str]:
    """The primitives a contract block defines (in upstream order, any OS branch)."""
    names = []
    for p in surface.primitives:
        for d in p.definitions.values():
            if d.file == vp.file and vp.line_start < d.line < vp.line_end and p.name not in names:
                names.append(p.name)
    return names
