"""Build the porting-surface model (``model.Surface``) of a synced upstream.

Pipeline:
  1. scan every C/header/assembly file's preprocessor structure (``cpp``);
  2. parse every translation unit with libclang once per OS flavour upstream
     knows (NetBSD, DragonFly, ...), against an empty sysroot (``clangparse``);
  3. derive the primitives of the contract header (``nvmm_os.h``), the
     variation points, the foreign identifiers and the parse coverage.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__, ui
from ..errors import PortError
from ..project import Project
from . import cdecl, clangparse
from . import preprocessor as cpp
from .catalog import MEMBERS, UNKNOWN, Catalog
from .model import (
    FUNCTION_MACRO,
    OBJECT_MACRO,
    OUT_OF_LINE,
    STATIC_INLINE,
    TYPEDEF,
    CallSite,
    Definition,
    FileCoverage,
    ForeignIdentifier,
    OSGlue,
    Primitive,
    Surface,
    Upstream,
    VariationPoint,
    VPBranch,
)
from .sources import UpstreamSources

if TYPE_CHECKING:
    from ..upstream.lock import Lock

CONTRACT_NAME = "nvmm_os.h"
SOURCE_EXT = (".c", ".h", ".S", ".s")
CXX_EXT = (".cpp", ".cc")
PRIMARY_FLAVOUR = "netbsd"

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int
long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert
_Thread_local asm __asm __asm__ __volatile __volatile__ __attribute __attribute__ __inline __inline__
__restrict __restrict__ __typeof __typeof__ typeof __extension__ __alignof __alignof__ __const __const__
__signed __signed__ __label__ __builtin_va_list __func__ __FUNCTION__ __PRETTY_FUNCTION__ __LINE__
__FILE__ __COUNTER__ __DATE__ __TIME__ __x86_64__ __i386__ __STDC__ __STDC_VERSION__ __GNUC__
__has_builtin __has_attribute __has_include __int128 __seg_gs __seg_fs __auto_type defined
""".split())

# A parse aid, not a compat layer: just enough type and attribute names that
# libclang recovers upstream's own declarations from an empty sysroot.  These
# names still count as foreign: usage comes from the token scan, not from clang.
PARSE_PRELUDE = """\
/* nvmm-port parse aid: lets libclang recover declarations against an empty sysroot. */
typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;
typedef unsigned long uint64_t; typedef signed char int8_t; typedef short int16_t; typedef int int32_t;
typedef long int64_t; typedef unsigned long uintptr_t; typedef long intptr_t; typedef unsigned long size_t;
typedef long ssize_t; typedef unsigned long uintmax_t; typedef long intmax_t; typedef _Bool bool;
typedef unsigned int u_int; typedef unsigned long u_long; typedef unsigned char u_char;
typedef unsigned short u_short; typedef int pid_t; typedef long time_t; typedef long off_t;
typedef unsigned long pt_entry_t; typedef int vm_prot_t;
#define true 1
#define false 0
#define NULL ((void *)0)
#define __packed __attribute__((__packed__))
#define __aligned(x) __attribute__((__aligned__(x)))
#define __unused __attribute__((__unused__))
#define __diagused __attribute__((__unused__))
#define __read_mostly
#define __cacheline_aligned
#define __predict_false(x) (x)
#define __predict_true(x) (x)
#define __cachealign
#define __debugvar
#define LIST_HEAD(name, type) struct name { struct type *lh_first; }
#define LIST_ENTRY(type) struct { struct type *le_next; struct type **le_prev; }
"""
# BSD-kernel types only when the contract does not define them itself (DragonFly does).
PARSE_PRELUDE_KERNEL_TYPES = """\
typedef unsigned long vaddr_t; typedef unsigned long paddr_t; typedef unsigned long voff_t;
typedef unsigned long vsize_t;
"""

_HEADING = re.compile(r"^/\*\s*([A-Z][A-Za-z0-9/ _-]*?)\.?\s*\*/\s*$")
_SEPARATOR = re.compile(r"^/\*\s*-{5,}\s*\*/\s*$")
_ASM_LABEL = re.compile(r"^\s*([A-Za-z_.$][A-Za-z0-9_.$]*)\s*:")


# ---------------------------------------------------------------------------
# Inputs


@dataclass
class SourceFile:
    path: str            # internal view path, e.g. driver/x86/nvmm_x86_vmx.c
    role: str            # driver | libnvmm | tests
    scan: cpp.FileScan

    @property
    def is_asm(self) -> bool:
        return self.path.endswith((".S", ".s"))

    @property
    def kernel(self) -> bool:
        return self.role == "driver"


def _role(path: str) -> str:
    return path.split("/", 1)[0]


# which roles see which: the tests include libnvmm's header, which includes the driver's
_ROLE_RANK = {"driver": 0, "libnvmm": 1, "tests": 2}


def _visible(decls: Iterable[tuple[int, bool]], use_file: str) -> bool:
    """Whether a declaration (rank of its program, in a header) reaches a use in ``use_file``:
    within its own program always; in the programs that include it only from a header."""
    rank = _ROLE_RANK.get(_role(use_file), 0)
    return any(r == rank or (hdr and r < rank) for r, hdr in decls)


def flavour_env(os_name: str, oses: list[str], kernel: bool) -> cpp.Env:
    """The macros known for one OS flavour (:func:`preprocessor.os_env`)."""
    return cpp.os_env(cpp.detect_macro(os_name), kernel)


def _clang_defines(env: cpp.Env) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k, v in env.items():
        if v is not None and k not in ("__x86_64__", "__amd64__"):
            out[k] = str(v)
    return out


# ---------------------------------------------------------------------------
# The analyzer


class Analyzer:
    def __init__(self, root: Path, upstream: Upstream, catalog: Catalog, files: list[str] | None = None):
        self.root = root
        self.upstream = upstream
        self.catalog = catalog
        names = files if files is not None else sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        self.all_files = names
        self.sources: dict[str, SourceFile] = {}
        for rel in names:
            if not rel.endswith(SOURCE_EXT):
                continue
            data = (root / rel).read_bytes()
            if b"\0" in data:
                raise PortError("binary data in a source file", root / rel,
                                "the cache is damaged: run `gen.py sync --check`, then re-sync")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            scan = cpp.scan_text(text, rel)
            if scan.errors:
                e = scan.errors[0]
                raise PortError(f"line {e.line}: {e.message} (truncated or garbled file?)", root / rel,
                                "re-sync upstream with `gen.py sync`, or repair the file")
            self.sources[rel] = SourceFile(rel, _role(rel), scan)
        if not any(s.role == "driver" for s in self.sources.values()):
            raise PortError("no driver sources in the synced tree", root,
                            "re-sync: the cache must hold driver/*.c (see `gen.py sync --help`)")
        contract = [p for p in self.sources if os.path.basename(p) == CONTRACT_NAME and p.startswith("driver/")]
        self.contract = contract[0] if contract else None
        oses: set[str] = set()
        for s in self.sources.values():
            for b in s.scan.all_blocks():
                oses.update(b.oses())
        self.oses = sorted(oses, key=_os_order) or [PRIMARY_FLAVOUR]
        self.upstream.oses = self.oses
        self._tmp = tempfile.TemporaryDirectory(prefix="nvmm-port-analyze-")
        tmp = Path(self._tmp.name)
        self.prelude_user = tmp / "prelude-user.h"
        self.prelude_user.write_text(PARSE_PRELUDE + PARSE_PRELUDE_KERNEL_TYPES)
        self.prelude_kernel: dict[str, Path] = {}
        includes = {p: [(inc, angle) for _, inc, angle in s.scan.includes] for p, s in self.sources.items()}
        self.sysroot = clangparse.Sysroot(root, list(self.sources), includes)
        self.parses: dict[tuple[str, str], clangparse.ParsedTU] = {}
        self._inactive: dict[tuple[str, str], set[int]] = {}
        self._reach: dict[str, set[str]] = {}      # flavour -> the files it compiles (reachable)

    def close(self) -> None:
        self.sysroot.cleanup()
        self._tmp.cleanup()

    # ---- translation units

    def translation_units(self) -> list[str]:
        """C files that are compiled on their own (not textually included by another C file)."""
        included = set()
        for s in self.sources.values():
            for _, inc, _angle in s.scan.includes:
                if inc.endswith(".c"):
                    target = self.sysroot.resolved(inc) or os.path.normpath(os.path.join(os.path.dirname(s.path), inc))
                    included.add(target)
        return [p for p in self.sources if p.endswith(".c") and p not in included]

    def _prelude(self, flavour: str, kernel: bool) -> Path:
        if not kernel:
            return self.prelude_user
        key = flavour
        if key not in self.prelude_kernel:
            text = PARSE_PRELUDE
            if self.contract and not self._contract_defines_types(flavour):
                text += PARSE_PRELUDE_KERNEL_TYPES
            p = Path(self._tmp.name) / f"prelude-{flavour}.h"
            p.write_text(text)
            self.prelude_kernel[key] = p
        return self.prelude_kernel[key]

    def _contract_defines_types(self, flavour: str) -> bool:
        if self.contract is None:
            return False
        scan = self.sources[self.contract].scan
        dead = self.inactive(self.contract, flavour)
        masked = scan.masked.split("\n")
        return any(re.search(r"\btypedef\b.*\bvaddr_t\s*;", masked[i - 1]) for i in range(1, len(masked) + 1)
                   if i not in dead)

    def parse(self, path: str, flavour: str) -> clangparse.ParsedTU:
        key = (path, flavour)
        if key not in self.parses:
            src = self.sources[path]
            env = flavour_env(flavour, self.oses, src.kernel)
            # quoted includes resolve next to the file, then up its tree to the role root
            dirs, d = [], os.path.dirname(path)
            while d:
                dirs.append(self.root / d)
                d = os.path.dirname(d)
            args = clangparse.base_args(_clang_defines(env), dirs, self.sysroot.root_for(src.role),
                                        prelude=self._prelude(flavour, src.kernel))
            self.parses[key] = clangparse.parse(self.root / path, args, self.root)
        return self.parses[key]

    def parse_all(self, update: ui.Update = ui.SILENT_UPDATE) -> None:
        for tu in self.translation_units():
            for fl in self.oses:
                update(f"{tu} ({fl})")
                self.parse(tu, fl)
        if self.contract:
            for fl in self.oses:
                update(f"{self.contract} ({fl})")
                self.parse(self.contract, fl)

    def inactive(self, path: str, flavour: str) -> set[int]:
        key = (path, flavour)
        if key not in self._inactive:
            src = self.sources[path]
            self._inactive[key] = src.scan.inactive_lines(flavour_env(flavour, self.oses, src.kernel))
        return self._inactive[key]

    def reachable(self, flavour: str) -> set[str]:
        """The files a flavour compiles: every C and assembly source, and the headers they include,
        transitively, on lines the flavour compiles (quoted includes from the including file's
        folder first; otherwise every file of the tree with that path's tail)."""
        cache = self._reach
        if flavour in cache:
            return cache[flavour]
        by_tail: dict[str, list[str]] = defaultdict(list)
        for rel in self.sources:
            parts = rel.split("/")
            for i in range(len(parts)):
                by_tail["/".join(parts[i:])].append(rel)
        work = [rel for rel in self.sources if not rel.endswith(".h")]
        seen: set[str] = set()
        while work:
            rel = work.pop()
            if rel in seen:
                continue
            seen.add(rel)
            dead = self.inactive(rel, flavour)
            for line, inc, angle in self.sources[rel].scan.includes:
                if line in dead:
                    continue
                near = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
                if not angle and near in self.sources:
                    work.append(near)
                else:
                    work.extend(by_tail.get(os.path.normpath(inc), []))
        cache[flavour] = seen
        return seen

    # ---- scopes: which function / struct / macro a line is in

    def _scopes(self, path: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of functions and struct/union definitions in ``path``, every flavour."""
        seen: dict[tuple[int, int, str], None] = {}
        for tu in self.parses.values():
            for d in tu.decls:
                if d.file != path or not d.is_definition:
                    continue
                if d.kind == "function":
                    seen[(d.start_line, d.end_line, d.name)] = None
                elif d.kind in ("struct", "union") and d.end_line > d.start_line and _named(d.name):
                    seen[(d.start_line, d.end_line, f"{d.kind} {d.name}")] = None
        src = self.sources.get(path)
        if src is not None and src.is_asm:
            seen.update({k: None for k in _asm_scopes(src.scan)})
        elif src is not None:
            # code no flavour compiles (a fork's `#if 0` around functions) has no parse: read its
            # definitions from the layout upstream writes them in, so its blocks keep their scope
            dead = set.intersection(*(self.inactive(path, fl) for fl in self.oses)) if self.oses else set()
            if dead:
                seen.update({k: None for k in _knf_scopes(src.scan.text.split("\n"), dead)})
        return sorted(seen)

    def _declared_lines(self, path: str) -> list[tuple[int, str]]:
        """(line, name) of everything libclang saw declared at file scope in ``path``, any flavour."""
        out = set()
        for tu in self.parses.values():
            for d in tu.decls:
                if d.file == path and d.kind in ("function", "typedef", "struct", "union", "enum", "var") \
                        and _named(d.name) and (d.kind != "var" or d.start_line == d.line):
                    out.add((d.start_line, d.name))
        src = self.sources.get(path)
        if src is not None and not src.is_asm:
            dead = set.intersection(*(self.inactive(path, fl) for fl in self.oses)) if self.oses else set()
            if dead:    # what code no flavour compiles defines (see _scopes)
                out.update((start, name.split()[-1]) for start, _, name in _knf_scopes(src.scan.text.split("\n"), dead))
        return sorted(out)

    def scope_of(self, path: str, line: int, scopes: list[tuple[int, int, str]] | None = None) -> str:
        src = self.sources[path]
        for d in src.scan.defines:
            if d.line <= line <= d.end_line:
                return f"macro {d.name}"
        best = ""
        best_len = None
        for start, end, name in scopes if scopes is not None else self._scopes(path):
            if start <= line <= end and (best_len is None or end - start < best_len):
                best, best_len = name, end - start
        return best

    # ---- primitives

    def primitives(self) -> tuple[list[Primitive], dict[str, dict[str, Definition]]]:
        if not self.contract:
            return [], {}
        scan = self.sources[self.contract].scan
        lines = scan.text.split("\n")
        guard = _include_guard(scan)
        found: dict[str, dict[str, Definition]] = defaultdict(dict)
        groups = _heading_groups(lines)
        os_lines = _os_block_lines(scan)

        def text_of(start: int, end: int, dead: set[int]) -> str:
            return "\n".join(lines[i - 1] for i in range(start, end + 1) if i not in dead).strip()

        for fl in self.oses:
            dead = self.inactive(self.contract, fl)
            for md in scan.defines:
                if md.line in dead or md.name == guard:
                    continue
                kind = FUNCTION_MACRO if md.params is not None else OBJECT_MACRO
                found[md.name][fl] = Definition(fl, kind, text_of(md.line, md.end_line, set()), self.contract,
                                                md.line, list(md.params) if md.params is not None else None)
            tu = self.parse(self.contract, fl)
            for d in tu.decls:
                if d.file != self.contract or d.start_line in dead or d.line in dead:
                    continue
                if d.kind == "typedef":
                    kind = TYPEDEF
                elif d.kind == "function":
                    if d.first_token == d.name:
                        continue   # a macro invocation at top level (MALLOC_DECLARE(x);), not a declaration
                    kind = STATIC_INLINE if d.is_definition else OUT_OF_LINE
                else:
                    continue
                # a function keeps its whole text, branches for other OSes inside it included (a
                # fork's `#ifndef __HAIKU__` around os_return_needed): it is what upstream writes
                text = text_of(d.start_line, d.end_line, set() if kind == STATIC_INLINE else dead)
                try:
                    sig = cdecl.parse_signature(text).to_json() if kind in (STATIC_INLINE, OUT_OF_LINE) else None
                except cdecl.SignatureError as exc:
                    raise PortError(f"line {d.start_line}: cannot read the declaration of {d.name} ({exc})",
                                    self.root / self.contract, "check the file; re-sync if it is damaged") from None
                found[d.name][fl] = Definition(fl, kind, text, self.contract, d.start_line, None, sig)
        prims: list[Primitive] = []
        compat: dict[str, dict[str, Definition]] = {}
        for name, defs in found.items():
            if self.catalog.group_of(name) is not None:
                compat[name] = defs
                continue
            first = min(defs.values(), key=lambda d: d.line)
            # a definition outside every OS conditional is one definition for all OSes, even when
            # its body varies inside (os_return_needed): then its text keeps every branch
            if all(d.line not in os_lines for d in defs.values()) and len({d.line for d in defs.values()}) == 1:
                end = max(d.line + d.text.count("\n") for d in defs.values())
                for dfn in defs.values():
                    if dfn.kind == STATIC_INLINE:
                        end = max(end, _definition_end(lines, dfn.line))
                text = "\n".join(lines[first.line - 1:end]).strip() if len({d.text for d in defs.values()}) > 1 \
                    else first.text
                defs = {"all": Definition("all", first.kind, text, first.file, first.line, first.params,
                                          first.signature)}
            prims.append(Primitive(name, first.kind, groups.get(first.line) or _kind_group(first.kind),
                                   dict(sorted(defs.items()))))
        prims.sort(key=lambda p: (min(d.line for d in p.definitions.values()), p.name))
        self._call_sites(prims)
        for p in prims:
            p.private_to = _private_to(p, self.oses)
        return prims, compat

    def _call_sites(self, prims: list[Primitive]) -> None:
        by_name = {p.name: p for p in prims}
        for path, src in sorted(self.sources.items()):
            if src.role != "driver" or path == self.contract:
                continue
            scopes = self._scopes(path)
            directive_lines = _non_define_directive_lines(src.scan)
            for off, name in cpp.identifiers(src.scan.masked):
                prim = by_name.get(name)
                if prim is None:
                    continue
                line = src.scan.line_of(off)
                if line in directive_lines:
                    continue
                oses = [fl for fl in self.oses if line not in self.inactive(path, fl)]
                prim.call_sites.append(CallSite(path, line, self.scope_of(path, line, scopes),
                                                [] if len(oses) == len(self.oses) else oses))

    # ---- variation points

    def variation_points(self) -> list[VariationPoint]:
        vps: list[VariationPoint] = []
        for path, src in sorted(self.sources.items()):
            scopes = self._scopes(path)
            lines = src.scan.text.split("\n")
            ordinals: dict[str, int] = defaultdict(int)
            ids: dict[int, str] = {}
            for blk in src.scan.all_blocks():
                if not blk.is_os_conditional:
                    continue
                scope = self.scope_of(path, blk.line_start, scopes)
                end_scope = self.scope_of(path, blk.line_end, scopes)
                function = scope if scope == end_scope else ""
                anchor = function or _top_anchor(src.scan, blk, self._declared_lines(path))
                ordinals[anchor] += 1
                vp_id = f"{path}:{anchor}#{ordinals[anchor]}"
                ids[id(blk)] = vp_id
                parent = blk.parent
                while parent is not None and not parent.is_os_conditional:
                    parent = parent.parent
                branches = []
                for br in blk.branches:
                    taken = [fl for fl in self.oses if _branch_taken(blk, br, fl, self.oses, src.kernel)]
                    body = "\n".join(lines[br.body_start - 1:br.body_end]) if br.body_end >= br.body_start else ""
                    branches.append(VPBranch(_directive(br, lines), br.condition, taken, br.line, br.body_end, body))
                vps.append(VariationPoint(
                    vp_id, path, blk.line_start, blk.line_end,
                    function,
                    anchor, blk.branches[0].directive_text(), branches,
                    ids.get(id(parent)) if parent is not None else None,
                    path == self.contract))
        return vps

    # ---- foreign identifiers

    def foreign_identifiers(self, prims: list[Primitive],
                            compat: dict[str, dict[str, Definition]]) -> list[ForeignIdentifier]:
        per_flavour: dict[str, dict[str, dict[str, int]]] = {}
        kinds: dict[str, str] = {}
        fields = {d.name for tu in self.parses.values() for d in tu.decls if d.kind == "field"}
        contract_names = set()
        use_lines: dict[str, set[tuple[str, int]]] = defaultdict(set)
        member_lines: dict[str, set[tuple[str, int]]] = defaultdict(set)   # uses as a member (x->name)
        spaces = {"var": ORDINARY, "param": ORDINARY, "function": ORDINARY, "typedef": ORDINARY,
                  "enum_constant": ORDINARY, "struct": TAG, "union": TAG, "enum": TAG, "label": LABEL,
                  "field": MEMBER}
        for fl in self.oses:
            declared_in: dict[str, set[str]] = {ORDINARY: set(), TAG: set(), LABEL: set(), MEMBER: set()}
            named = [d for (p, f), tu in self.parses.items() if f == fl for d in tu.decls if _named(d.name)]
            for d in named:
                declared_in[spaces[d.kind]].add(d.name)
            declared = declared_in[ORDINARY]
            # driver, libnvmm and tests are separate programs: a declaration is visible to its own
            # role and the ones that include it (tests include libnvmm's header, which includes the
            # driver's), so a test's own PAGE_SIZE does not declare the driver's
            # (rank of the declaring program, declared in a header) per name
            seen_from: dict[str, set[tuple[int, bool]]] = defaultdict(set)
            for d in named:
                if spaces[d.kind] == ORDINARY:
                    seen_from[d.name].add((_ROLE_RANK.get(_role(d.file), 0), d.file.endswith(".h")))
            # a token standing where a declaration names itself is not a use
            decl_at = {(d.file, d.line, d.column, d.name) for d in named}
            # a primitive is the contract's business under every OS, even where one OS
            # takes it from its kernel (curlwp_bind on NetBSD)
            contract_names = {p.name for p in prims}
            contract_names |= {n for n, defs in compat.items() if fl in defs or "all" in defs}
            macros: dict[str, list[tuple[str, int, list[tuple[str, str]]]]] = defaultdict(list)
            code_uses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            members: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            tags: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            any_space_names: set[str] = set()
            uses_in: dict[str, dict[str, dict[str, int]]] = {
                ORDINARY: code_uses, MEMBER: members, TAG: tags, LABEL: defaultdict(lambda: defaultdict(int)),
                ANY: code_uses}
            # a header counts for the OSes whose compiled sources include it (a fork's header included
            # only in its own arms defines nothing for the others, and its uses are not theirs)
            reach = self.reachable(fl)
            live_defs = [(path, src, d) for path, src in self.sources.items() if path != self.contract
                         and path in reach for d in src.scan.defines if d.line not in self.inactive(path, fl)]
            pasted = {d.name: idx for _, _, d in live_defs if (idx := _pasted_params(d))}
            for path, src, md in live_defs:
                macros[md.name].append((path, md.line, _macro_body_idents(md, src.is_asm, pasted)))
                declared.add(md.name)
                seen_from[md.name].add((_ROLE_RANK.get(_role(path), 0), path.endswith(".h")))
            for path, src in self.sources.items():
                if path == self.contract or path not in reach:
                    continue
                dead = self.inactive(path, fl)
                if src.is_asm:
                    for line, name, is_member in _asm_code_idents(src.scan, dead):
                        (members if is_member else code_uses)[name][path] += 1
                        (member_lines if is_member else use_lines)[name].add((path, line))
                    labels = _asm_labels(src.scan, dead)
                    declared.update(labels)
                    for lab in labels:      # global symbols of their own program
                        seen_from[lab].add((_ROLE_RANK.get(_role(path), 0), False))
                    continue
                skip = src.scan.directive_lines() | dead   # directives are not code (#define bodies come via macros)
                for name, space, line, col in _c_code_idents(src.scan, skip, pasted):
                    if (path, line, col, name) not in decl_at:
                        uses_in[space][name][path] += 1
                        (member_lines if space == MEMBER else use_lines)[name].add((path, line))
                        if space == ANY:
                            any_space_names.add(name)
            # macros actually expanded: reachable from code through macro bodies
            used_macros: set[str] = set()
            work = [n for n in code_uses if n in macros]
            while work:
                m = work.pop()
                if m in used_macros:
                    continue
                used_macros.add(m)
                for path, def_line, toks in macros[m]:
                    for name, space in toks:
                        uses_in[space][name][path] += 1
                        use_lines[name].add((path, def_line))
                        if space == ANY:
                            any_space_names.add(name)
                        if space == ORDINARY and name in macros and name not in used_macros:
                            work.append(name)
            out: dict[str, dict[str, int]] = {}
            any_declared = declared_in[TAG] | declared_in[MEMBER] | declared_in[LABEL]
            for name, files in code_uses.items():
                if name in declared and name not in contract_names:
                    files = {f: n for f, n in files.items() if not _visible(seen_from.get(name, ()), f)}
                    if not files:
                        continue
                if name in contract_names or name in C_KEYWORDS or name.startswith("__builtin_"):
                    continue
                if name in any_declared and name in any_space_names:
                    continue   # a macro argument naming an upstream field or tag
                out[name] = dict(files)
                kinds.setdefault(name, "identifier")
            for name, files in members.items():
                if name in fields or name in out or name in macros:
                    continue
                out[name] = dict(files)
                kinds.setdefault(name, "member")
            for name, files in tags.items():
                # struct vmspace, struct cpu_info: OS structure types upstream names
                if name in declared_in[TAG] or name in out or name in contract_names or name in macros:
                    continue
                out[name] = dict(files)
                kinds.setdefault(name, "tag")
            per_flavour[fl] = out
        result = []
        names = sorted({n for d in per_flavour.values() for n in d})
        for name in names:
            flavours = [fl for fl in self.oses if name in per_flavour[fl]]
            ref = PRIMARY_FLAVOUR if PRIMARY_FLAVOUR in flavours else flavours[0]
            files = per_flavour[ref][name]
            group = MEMBERS if kinds[name] == "member" else (self.catalog.group_of(name) or UNKNOWN)
            if kinds[name] == "tag":
                group = self.catalog.group_of(f"struct {name}") or self.catalog.group_of(name) or UNKNOWN
            roles = sorted({_role(f) for f in files}, key=["driver", "libnvmm", "tests"].index)
            lines: dict[str, list[int]] = defaultdict(list)
            # where the name is used the way that makes it foreign (vmcs->abort is not abort())
            where = member_lines if kinds[name] == "member" else use_lines
            counted = {f for fl in flavours for f in per_flavour[fl][name]}
            for f, ln in sorted(where.get(name) or use_lines.get(name, set()) | member_lines.get(name, set())):
                if f not in counted:
                    continue        # a use in a program that declares the name itself
                lines[f].append(ln)
            result.append(ForeignIdentifier(name, group, sum(files.values()), kinds[name], flavours,
                                            dict(sorted(files.items())), "+".join(roles), dict(lines)))
        return result

    # ---- coverage

    def coverage(self) -> list[FileCoverage]:
        out = []
        for rel in self.all_files:
            src = self.sources.get(rel)
            if src is None:
                out.append(FileCoverage(rel, "other", [], "not-source", {}, [], 0, {}, []))
                continue
            lang = "asm" if src.is_asm else ("header" if rel.endswith(".h") else "c")
            parsed_by: list[str] = []
            diags: dict[str, int] = defaultdict(int)
            seen: set[tuple[int, str]] = set()
            samples: list[str] = []
            undeclared_msgs = []
            skipped: dict[str, list[list[int]]] = {}
            for (tu_path, fl), tu in sorted(self.parses.items()):
                if rel not in tu.files:
                    continue
                parsed_by.append(f"{tu_path} ({fl})")
                if rel in tu.skipped:
                    skipped.setdefault(fl, [])
                    for a, b in tu.skipped[rel]:
                        if [a, b] not in skipped[fl]:
                            skipped[fl].append([a, b])
                for d in tu.diagnostics:
                    if d.file != rel:
                        continue
                    key = (d.line, d.message)
                    if key in seen:
                        continue
                    seen.add(key)
                    diags[d.severity] += 1
                    undeclared_msgs.append(d)
                    if len(samples) < 5 and d.severity in ("error", "fatal"):
                        samples.append(f"{d.line}: {d.message}")
            method = "libclang" if parsed_by else "preprocessor-scan"
            if src.is_asm:
                for fl in self.oses:
                    dead = sorted(self.inactive(rel, fl))
                    if dead:
                        skipped[fl] = [list(r) for r in _ranges(dead)]
            out.append(FileCoverage(rel, lang, parsed_by, method, dict(sorted(diags.items())), samples,
                                    len(clangparse.undeclared_names(undeclared_msgs)),
                                    {k: sorted(v) for k, v in sorted(skipped.items())},
                                    [f"{e.line}: {e.message}" for e in src.scan.errors]))
        return out

    # ---- everything

    def run(self, update: ui.Update = ui.SILENT_UPDATE) -> Surface:
        self.parse_all(update)
        update("primitives, variation points, foreign identifiers")
        prims, compat = self.primitives()
        vps = self.variation_points()
        foreign = self.foreign_identifiers(prims, compat)
        cov = self.coverage()
        update("the OSes' own glue")
        glue = self.os_glue(prims)
        return Surface(self.upstream, self.contract or "", prims, vps, foreign, cov, compat, glue)

    def os_glue(self, prims: list[Primitive]) -> list[OSGlue]:
        """Per OS with implementation files of its own in the tree (named after it, as a fork's
        `nvmm_haiku.cpp`; with a C++ one, the tree's other C++ files too): the out-of-line primitives
        its contract declares, found defined there or not.  C++ is parsed as C++, in the OS's
        configuration."""
        driver = [f for f in self.upstream.files if f.startswith("driver/")]
        out = []
        for os_name in self.oses:
            own = [f for f in driver if os_name in os.path.basename(f).lower() and f.endswith((".c", *CXX_EXT))]
            if not own:
                continue
            if any(f.endswith(CXX_EXT) for f in own):
                own += [f for f in driver if f.endswith(CXX_EXT) and f not in own]
            wanted = sorted(p.name for p in prims
                            if (d := p.definitions.get(os_name) or p.definitions.get("all")) is not None
                            and d.kind == OUT_OF_LINE)
            found: dict[str, str] = {}
            for f in sorted(own):
                for decl in self._parse_glue(f, os_name).decls:
                    if decl.kind == "function" and decl.is_definition and decl.file == f and decl.name in wanted:
                        found.setdefault(decl.name, f"{f}:{decl.line}")
            out.append(OSGlue(os_name, sorted(own), dict(sorted(found.items())),
                              [n for n in wanted if n not in found]))
        return out

    def _parse_glue(self, path: str, flavour: str) -> clangparse.ParsedTU:
        """An OS's own file in that OS's kernel configuration; C++ as C++ (its headers, the OS's own,
        are not here: libclang recovers and keeps the definitions)."""
        env = flavour_env(flavour, self.oses, True)
        dirs = [self.root / os.path.dirname(path), self.root / "driver"]
        args = clangparse.base_args(_clang_defines(env), dirs, self.sysroot.root_for("driver"))
        if path.endswith(CXX_EXT):
            args[args.index("c")] = "c++"
            args[args.index("-std=gnu11")] = "-std=gnu++17"
        return clangparse.parse(self.root / path, args, self.root)


# ---------------------------------------------------------------------------
# helpers


_KNF_HEAD = re.compile(r"([A-Za-z_]\w*)\s*\(")
_KNF_STRUCT = re.compile(r"(struct|union)\s+([A-Za-z_]\w*)\s*\{\s*$")


def _knf_scopes(lines: list[str], dead: set[int]) -> list[tuple[int, int, str]]:
    """Functions and structs in lines no flavour compiles, as KNF writes them: a function's name at
    the start of a line after its type line, its body between a `{` and a `}` alone at the start of
    lines; a struct's `struct NAME {` at the start of a line down to `};`."""
    out = []
    n = len(lines)
    i = 0
    while i < n:
        line = lines[i]
        m_fn, m_st = _KNF_HEAD.match(line), _KNF_STRUCT.match(line)
        if i + 1 in dead and (m_fn or m_st):
            is_fn = m_fn is not None and i > 0 and lines[i - 1].strip() != "" \
                and not lines[i - 1].rstrip().endswith((";", "}", "\\")) and not lines[i - 1].startswith("#")
            open_at = None
            if is_fn:
                j = i
                while j < n and j < i + 12 and not lines[j].rstrip().endswith(";"):
                    if lines[j].rstrip() == "{":
                        open_at = j
                        break
                    j += 1
            elif m_st is not None:
                open_at = i
            if open_at is not None:
                close = "}" if is_fn else "};"
                k = open_at + 1
                while k < n and not lines[k].startswith(close):
                    k += 1
                if k < n and all(x in dead for x in range(i + 1, k + 2)):
                    if is_fn:
                        assert m_fn is not None
                        out.append((i, k + 1, m_fn.group(1)))     # from the type line above the name
                    else:
                        assert m_st is not None
                        out.append((i + 1, k + 1, f"{m_st.group(1)} {m_st.group(2)}"))
                    i = k + 1
                    continue
        i += 1
    return out


def _private_to(p: Primitive, oses: list[str]) -> list[str]:
    """The OSes a primitive is private to: defined by some OSes only, and used by nothing but their
    own code (no call site compiled for another OS; a name nothing here uses, only when one OS
    alone defines it, its glue's helper).  [] when it is part of the contract."""
    defined = set(p.definitions)
    if "all" in defined or defined >= set(oses):
        return []
    if any(not c.os or not set(c.os) <= defined for c in p.call_sites):
        return []
    if not p.call_sites and len(defined) > 1:
        return []       # several OSes define it for code outside this tree: the contract
    return [o for o in oses if o in defined]


def _os_order(os_name: str) -> tuple[int, str]:
    """NetBSD (where NVMM comes from) first, then DragonFly, then the rest by name."""
    known = ["netbsd", "dragonfly"]
    return (known.index(os_name) if os_name in known else len(known), os_name)


def _ranges(lines: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in lines:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _include_guard(scan: cpp.FileScan) -> str | None:
    if scan.blocks and scan.blocks[0].branches[0].kind == "ifndef":
        name = scan.blocks[0].branches[0].condition.split()[0] if scan.blocks[0].branches[0].condition else ""
        if any(d.name == name for d in scan.defines):
            return name
    return None


def _heading_groups(lines: list[str]) -> dict[int, str]:
    """For each line, the section heading comment (``/* CPU. */``) it falls under."""
    out, current = {}, ""
    for i, text in enumerate(lines, 1):
        if _SEPARATOR.match(text.strip()):
            current = ""
        else:
            m = _HEADING.match(text.strip())
            if m and len(m.group(1)) <= 40:
                current = m.group(1).strip()
        out[i] = current
    return out


def _definition_end(lines: list[str], start: int) -> int:
    """Last line of a function definition starting at ``start`` (its closing brace at column 0)."""
    for i in range(start, len(lines) + 1):
        if lines[i - 1].startswith("}"):
            return i
    return start


def _kind_group(kind: str) -> str:
    return {OUT_OF_LINE: "Out-of-line functions", STATIC_INLINE: "Inline functions"}.get(kind, "Other")


def _os_block_lines(scan: cpp.FileScan) -> set[int]:
    s: set[int] = set()
    for b in scan.all_blocks():
        if b.is_os_conditional:
            s.update(range(b.line_start, b.line_end + 1))
    return s


def _non_define_directive_lines(scan: cpp.FileScan) -> set[int]:
    s: set[int] = set()
    for d in scan.directives:
        if d.name != "define":
            s.update(range(d.line, d.end_line + 1))
    return s


def _branch_taken(blk: cpp.CondBlock, br: cpp.Branch, fl: str, oses: list[str], kernel: bool) -> bool:
    """Whether flavour ``fl`` may compile ``br`` (an undecided branch counts)."""
    return any(b is br for b in blk.candidates(flavour_env(fl, oses, kernel)))


def _directive(br: cpp.Branch, lines: list[str]) -> str:
    return lines[br.line - 1].strip()


def _named(name: str) -> bool:
    return bool(name) and "(" not in name and " " not in name


def _top_anchor(scan: cpp.FileScan, blk: cpp.CondBlock, declared: list[tuple[int, str]]) -> str:
    """A name for a top-level block that survives line shifts: the first thing it
    defines or declares (macro, function, type, variable), else what it includes."""
    inside = [(d.line, d.name) for d in scan.defines if blk.line_start < d.line < blk.line_end]
    inside += [(line, name) for line, name in declared if blk.line_start < line < blk.line_end]
    if inside:
        return min(inside)[1]
    for line, inc, _ in scan.includes:
        if blk.line_start < line < blk.line_end:
            return "include " + os.path.basename(inc)
    return "top"


def _paren_end(text: str, open_at: int) -> int:
    """Offset of the parenthesis closing the one at ``open_at`` (or len(text))."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _skip_spans(text: str, pasted: dict[str, set[int]]) -> list[tuple[int, int]]:
    """Spans whose identifiers are not identifiers: attribute arguments, and the
    arguments of macros that paste (##) or stringify (#) that parameter."""
    spans = []
    for m in re.finditer(r"\b__attribute__\s*\(", text):
        spans.append((m.end() - 1, _paren_end(text, m.end() - 1)))
    if pasted:
        for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", text):
            idx = pasted.get(m.group(1))
            if not idx:
                continue
            open_at = m.end() - 1
            close = _paren_end(text, open_at)
            arg, depth, start = 0, 0, open_at + 1
            for i in range(open_at + 1, close + 1):
                c = text[i] if i < len(text) else ")"
                if c == "(":
                    depth += 1
                elif c == ")" and depth > 0:
                    depth -= 1
                elif (c == "," and depth == 0) or i == close:
                    if arg in idx:
                        spans.append((start, i))
                    arg, start = arg + 1, i + 1
    return sorted(spans)


# C's name spaces: a declared member or tag does not declare an ordinary identifier
ORDINARY, MEMBER, TAG, LABEL = "ordinary", "member", "tag", "label"
# an argument of a macro call (LIST_FOREACH(e, head, field)): it may name anything
ANY = "any"
_MACRO_CALL = re.compile(r"\b([A-Z][A-Z0-9_]*)\s*\(")


def _macro_arg_spans(text: str) -> list[tuple[int, int]]:
    """Argument lists of calls to upper-case (macro-style) names."""
    return [(m.end(), _paren_end(text, m.end() - 1)) for m in _MACRO_CALL.finditer(text)]


def _idents(text: str, skip: list[tuple[int, int]]) -> Iterator[tuple[int, str, str]]:
    """(offset, name, name space) of real identifier tokens in masked C text."""
    si = 0
    margs = _macro_arg_spans(text)
    for off, name in cpp.identifiers(text):
        while si < len(skip) and skip[si][1] < off:
            si += 1
        if si < len(skip) and skip[si][0] <= off <= skip[si][1]:
            continue
        end = off + len(name)
        if text[end:end + 2] == "##" or text[end:].lstrip(" \t")[:2] == "##":
            continue   # pasted: only part of a token
        j = off - 1
        while j >= 0 and text[j] in " \t\n":
            j -= 1
        if j >= 0 and text[j] == "#":
            continue   # pasted (##) or stringified (#)
        if j >= 0 and (text[j] == "." or (text[j] == ">" and j > 0 and text[j - 1] == "-")):
            yield off, name, MEMBER
        elif re.search(r"\b(?:struct|union|enum)$", text[max(0, j - 5):j + 1]):
            yield off, name, TAG
        elif re.search(r"\bgoto$", text[max(0, j - 3):j + 1]):
            yield off, name, LABEL
        elif any(a <= off < b for a, b in margs):
            yield off, name, ANY
        else:
            yield off, name, ORDINARY


def _pasted_params(d: cpp.MacroDef) -> set[int]:
    """Indexes of the parameters a macro pastes or stringifies."""
    out = set()
    for i, p in enumerate(d.params or ()):
        if re.search(rf"(##\s*{re.escape(p)}\b)|(\b{re.escape(p)}\s*##)|((?<!#)#\s*{re.escape(p)}\b)", d.body):
            out.add(i)
    return out


def _c_code_idents(scan: cpp.FileScan, skip_lines: set[int],
                   pasted: dict[str, set[int]]) -> Iterator[tuple[str, str, int, int]]:
    """(name, name space, line) for identifier tokens in compiled C code."""
    for off, name, space in _idents(scan.masked, _skip_spans(scan.masked, pasted)):
        line = scan.line_of(off)
        if line not in skip_lines:
            yield name, space, line, off - scan.line_offsets[line - 1] + 1


def _macro_body_idents(d: cpp.MacroDef, asm: bool, pasted: dict[str, set[int]]) -> list[tuple[str, str]]:
    params = set(d.params or ())
    if asm:
        return [(n, MEMBER if m else ORDINARY) for n, m in _asm_statement_idents(d.body) if n not in params]
    return [(name, space) for _, name, space in _idents(d.body, _skip_spans(d.body, pasted))
            if name not in params and name != "__VA_ARGS__"]


_ASM_STMT_SPLIT = re.compile(r"[;\n]")
# assembler macros whose argument names a field of the per-CPU structure
_ASM_FIELD_ACCESSORS = ("CPUVAR", "PCPU", "PCPU_GET", "PCPU_PTR")
_ASM_PREFIXES = frozenset("rep repe repz repne repnz lock data16 data32 addr16 addr32 rex rex64".split())


def _asm_statement_idents(text: str) -> Iterator[tuple[str, bool]]:
    """Identifiers in assembly statements that can be symbols or macros (not mnemonics, registers, directives)."""
    for stmt in _ASM_STMT_SPLIT.split(text):
        stmt = _ASM_LABEL.sub("", stmt, count=1) if _ASM_LABEL.match(stmt) else stmt
        first = True
        for m in re.finditer(r"[%.$]?[A-Za-z_][A-Za-z0-9_]*", stmt):
            tok = m.group(0)
            s = m.start()
            if s > 0 and (stmt[s - 1].isalnum() or stmt[s - 1] == "_"):
                continue
            if tok.startswith("%") or tok.startswith("."):
                first = False
                continue
            name = tok.lstrip("$")
            if stmt[:s].rstrip().endswith("(") and re.search(r"\b(?:{})\s*\($".format("|".join(_ASM_FIELD_ACCESSORS)),
                                                               stmt[:s].rstrip()):
                first = False
                yield name, True   # a per-CPU structure field: CPUVAR(GDT), PCPU(tss_gdt)
                continue
            if first:
                # an instruction mnemonic (or a prefix such as `rep`, after which the
                # mnemonic follows), unless it is a macro: NAME( or an upper-case name
                macro_call = stmt[m.end():m.end() + 1] == "("
                if not macro_call and not name.isupper() and not name.startswith("_"):
                    first = name in _ASM_PREFIXES
                    continue
                first = False
            yield name, False


def _asm_code_idents(scan: cpp.FileScan, dead: set[int]) -> Iterator[tuple[int, str, bool]]:
    skip = scan.directive_lines() | dead
    lines = scan.masked.split("\n")
    for i, text in enumerate(lines, 1):
        if i in skip:
            continue
        for name, is_member in _asm_statement_idents(text):
            yield i, name, is_member


def _asm_labels(scan: cpp.FileScan, dead: set[int]) -> set[str]:
    out = set()
    skip = scan.directive_lines() | dead
    for i, text in enumerate(scan.masked.split("\n"), 1):
        if i in skip:
            continue
        m = _ASM_LABEL.match(text)
        if m:
            out.add(m.group(1))
        for m2 in re.finditer(r"\.(?:globl|global|type|set|equ)\s+([A-Za-z_]\w*)", text):
            out.add(m2.group(1))
        for m3 in re.finditer(r"\b(?:ENTRY|NENTRY|LABEL|IDTVEC)\s*\(\s*([A-Za-z_]\w*)\s*\)", text):
            out.add(m3.group(1))
    return out


def _asm_scopes(scan: cpp.FileScan) -> list[tuple[int, int, str]]:
    out = []
    lines = scan.masked.split("\n")
    start = None
    for i, text in enumerate(lines, 1):
        m = re.search(r"\bENTRY\s*\(\s*(\w+)\s*\)", text)
        if m:
            start = i
        m = re.search(r"\bEND\s*\(\s*(\w+)\s*\)", text)
        if m and start is not None:
            out.append((start, i, m.group(1)))
            start = None
    return out


# ---------------------------------------------------------------------------
# Entry points


def load_upstream(project: Project, name: str | None) -> tuple[Lock, Path, Upstream]:
    """The lock and cache dir of an upstream, verified to match."""
    from ..upstream.lock import Lock, verify_cache
    name = project.resolve_upstream(name)
    lock_path = project.lock_path(name)
    lock = Lock.load(lock_path)
    cache = project.cache_dir(name)
    if not cache.is_dir():
        raise PortError("the upstream cache is missing", cache,
                        f"run `gen.py sync --name {name}` to import it again from the source in {lock_path.name}")
    report = verify_cache(lock, cache)
    if not report.ok:
        first = report.lines()[0]
        raise PortError(f"the cache does not match its lock ({len(report)} file(s), first: {first})", cache,
                        f"run `gen.py sync --check --name {name}` for the list, then `gen.py sync --name {name}`")
    up = Upstream(lock.name, lock.layout, dict(lock.source), lock.imported, [f.path for f in lock.files], [])
    return lock, cache, up


def analyze_tree(root: Path, upstream: Upstream, catalog: Catalog, files: list[str] | None = None,
                 progress: ui.Progress = ui.SILENT) -> Surface:
    with progress.task(f"analyzing {upstream.name}") as update:
        update("scanning the preprocessor structure")
        an = Analyzer(root, upstream, catalog, files)
        try:
            surface = an.run(update)
        finally:
            an.close()
    surface.sources = UpstreamSources(root)
    return surface


def analyze_project(project: Project, name: str | None, use_cache: bool = True,
                    progress: ui.Progress = ui.SILENT) -> Surface:
    """The surface of a synced upstream, from the cache under build/cache/ when it is current; a cold
    analysis (about 2 s) reports on ``progress``, one update per translation unit parsed."""
    lock, cache, up = load_upstream(project, name)
    catalog = Catalog.load(project.shim_dir / "bsd" / "catalog.toml")
    key = _cache_key(lock, catalog)
    cached = project.build_dir / "cache" / f"surface-{up.name}-{key}.json"
    if use_cache and cached.is_file():
        from .model_io import surface_from_json
        try:
            surface = surface_from_json(json.loads(cached.read_text()))
            surface.sources = UpstreamSources(cache)      # files read and scanned on first use
            return surface
        except (ValueError, KeyError, TypeError):
            pass   # stale or damaged cache entry: analyze again
    surface = analyze_tree(cache, up, catalog, [f.path for f in lock.files], progress)
    if use_cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(surface.to_json()))
        os.replace(tmp, cached)
    return surface


def _cache_key(lock: Lock, catalog: Catalog) -> str:
    h = hashlib.sha256()
    h.update(__version__.encode())
    for f in sorted(lock.files, key=lambda f: f.path):
        h.update(f"{f.path}\0{f.sha256}\n".encode())
    h.update(catalog.path.read_bytes())
    for mod in ("analyze.py", "preprocessor.py", "clangparse.py", "cdecl.py", "model.py", "catalog.py", "sources.py"):
        h.update((Path(__file__).parent / mod).read_bytes())
    return h.hexdigest()[:16]
