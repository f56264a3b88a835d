"""Fill upstream's variation points for a target.

Default mode: the target's code goes in as one more ``#elif defined(<macro>)`` arm next to
upstream's (before an ``#else``), or, when the target compiles what an upstream OS compiles
(``same_as``), that branch's condition gains ``|| defined(<macro>)``.  The diff against upstream
is then exactly the variation points.  When an earlier branch would already be taken for the
target (``#ifndef __DragonFly__``), the target's arm goes first instead.  When the target is one
of upstream's own OSes (the extracted netbsd/dragonfly specs), its own branch is replaced.

``--flatten`` resolves every OS conditional for the target afterwards (unifdef semantics).

Contract blocks (the OS-conditional groups of nvmm_os.h) are rendered from the spec's
primitive entries through ``templates/contract/primitives.j2``.

Text from the spec is framed by ``#line`` directives (``origins``): a compiler error in it names
the spec file and line the porter edits; upstream's own lines, copied or not, carry none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..analysis import preprocessor as cpp
from ..analysis.model import FUNCTION_MACRO, OBJECT_MACRO, OUT_OF_LINE, STATIC_INLINE, TYPEDEF, Surface, VariationPoint
from ..errors import PortError
from ..templating import template
from . import origins
from .origins import Origin, SpecOrigins
from .spec import PrimitiveSpec, TargetSpec, VPSpec, block_primitives, enclosing_primitive


@dataclass
class Edit:
    start: int                 # first line replaced (1-based)
    end: int                   # last line replaced (inclusive); end == start - 1 inserts before start
    lines: list[str]


class Renderer:
    def __init__(self, spec: TargetSpec, surface: Surface, root: Path, project_root: Path | None = None):
        self.spec = spec
        self.surface = surface
        self.root = root
        self.origins = SpecOrigins(spec, project_root)
        self.prim_tpl = template("contract/primitives.j2")
        self.vps_by_file: dict[str, list[VariationPoint]] = {}
        for v in surface.variation_points:
            self.vps_by_file.setdefault(v.file, []).append(v)
        self.prims = {p.name: p for p in surface.primitives}
        self.changed: dict[str, list[str]] = {}     # file -> ids of the VPs it changed
        # VP id -> the upstream branch the target compiles after filling (None: its own code or nothing)
        self.chosen: dict[str, cpp.Branch | None] = {}
        # primitive -> the first contract block (in file order) defining it: where it is rendered
        self.homes: dict[str, str] = {}
        for v in sorted(surface.variation_points, key=lambda v: (v.file, v.line_start)):
            if v.in_contract:
                for n in block_primitives(v, surface):
                    self.homes.setdefault(n, v.id)

    # ---- one file

    def fill(self, path: str) -> str:
        """The upstream file ``path`` with its variation points filled for the target."""
        src = self.surface.source(path)
        vps = self.vps_by_file.get(path, [])
        if not vps:
            return src.text
        lines = list(src.lines)
        kernel = path.startswith("driver/")
        edits: list[Edit] = []
        for vp in vps:
            blk = src.block_at(vp.line_start)
            if blk is None:
                raise PortError(f"variation point {vp.id} is not at line {vp.line_start} any more", self.root / path,
                                "the cache changed after analysis: run `gen.py analyze --no-cache`")
            desired = self.desired(vp, kernel)
            new = self._edits(vp, blk, lines, desired, kernel)
            if new:
                edits.extend(new)
                self.changed.setdefault(path, []).append(vp.id)
        for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
            lines[e.start - 1:e.end] = e.lines
        return origins.renumber("\n".join(lines), path)

    # ---- what the target wants at a variation point

    def desired(self, vp: VariationPoint, kernel: bool) -> tuple[str, str | None]:
        """("same_as", os) or ("text", body or None for nothing).  Spec text comes framed by
        ``#line`` directives: to its spec file and line first, back to ``vp.file`` after."""
        spec = self.spec.variation_points.get(vp.id)
        enclosing = self._enclosing_primitive(vp)
        if enclosing is not None and (spec is None or spec.todo is not None):
            p = self.spec.primitives[enclosing]
            if p.body is None:
                return ("text", None)     # no body here (the target declares it out of line): no arm
            return ("text", self._framed(p.body.rstrip("\n"), self._body_origin(p), vp.file))
        if spec is None and vp.in_contract and block_primitives(vp, self.surface):
            arm = self.contract_arm(vp, None)
            return ("text", self._framed(arm, None, vp.file) if arm.strip() else None)
        if spec is None:
            raise PortError(f"no entry for variation point {vp.id}", self.spec.toml_path,
                            f'add [variation_points."{vp.id}"]')
        if spec.same_as is not None:
            return ("same_as", spec.same_as)
        if spec.omit:
            return ("text", None)
        if spec.items is not None:
            return ("text", self._framed(self.contract_arm(vp, spec), None, vp.file))
        if spec.file:
            where = self.origins.fragment(spec.file)
        else:
            where = self.origins.value(("variation_points", vp.id), "code") or \
                self.origins.table("variation_points", vp.id)
        return ("text", self._framed((spec.code or "").rstrip("\n"), where, vp.file))

    @staticmethod
    def _framed(text: str, where: Origin | None, path: str) -> str:
        """``text`` from ``where`` (None: it holds its own directives), then a ``#line`` back to ``path``."""
        if not origins.strip(text).strip():
            return text
        head = [where.directive()] if where is not None else []
        return "\n".join(head + [text, origins.back(path)])

    def _body_origin(self, p: PrimitiveSpec) -> Origin:
        """Where a primitive's body (or, for those without one, its declaration) is written."""
        table = ("primitives", p.name)
        raw = p.given       # the keys its table writes
        if "body" not in raw and p.file:
            return self.origins.fragment(p.file, 1 + origins.lead_lines(p.source))
        for key in ("body", "declaration", "type", "returns"):
            if key in raw:
                found = self.origins.value(table, key)
                if found is not None:
                    return found
        return self.origins.table(*table)

    def _enclosing_primitive(self, vp: VariationPoint) -> str | None:
        name = enclosing_primitive(vp, self.surface)
        return name if name in self.spec.primitives else None

    def contract_arm(self, vp: VariationPoint, spec: VPSpec | None) -> str:
        """The target's arm of a contract block: its primitives rendered, in order, with raw items,
        each after a ``#line`` to the spec text it comes from (when the previous one does not
        already number it right)."""
        items = spec.items if spec is not None and spec.items is not None else \
            ["@" + n for n in block_primitives(vp, self.surface)
             if self._defined_in_block(n) and self._home(n) == vp.id]
        pieces: list[tuple[list[str], dict[int, Origin]]] = []
        for item in items:
            if item.startswith("@"):
                name = item[1:]
                if name not in self.spec.primitives:
                    raise PortError(f'{vp.id}: items name primitive "{name}", which has no entry',
                                    self.spec.toml_path, f"add [primitives.{name}]")
                p = self.spec.primitives[name]
                text = self.render_primitive(p)
                if text is not None:
                    pieces.append((text.split("\n"), self._primitive_marks(p, text)))
            else:
                text = item.rstrip("\n")
                where = self.origins.value(("variation_points", vp.id), "items", text.split("\n")[0]) or \
                    self.origins.table("variation_points", vp.id)
                pieces.append((text.split("\n"), {0: where}))
        out: list[str] = []
        at: Origin | None = None        # what the next line is numbered, after the last directive
        for lines, marks in pieces:
            for i, line in enumerate(lines):
                if i in marks and marks[i] != at:
                    out.append(marks[i].directive())
                    at = marks[i]
                out.append(line)
                at = at.shifted(1) if at is not None else None
        return _align_defines("\n".join(out))

    def _primitive_marks(self, p: PrimitiveSpec, text: str) -> dict[int, Origin]:
        """Origins of a rendered primitive's lines: its body's first line where the spec writes it;
        the lines before it (a static inline's head) just above, or at its table when that would
        leave the file."""
        body = self._body_origin(p)
        if p.kind != STATIC_INLINE or not p.body:
            return {0: body}
        lines = text.split("\n")
        first = p.body.split("\n")[0]
        at = next((i for i, ln in enumerate(lines) if ln == first), 0)
        head = body.shifted(-at) if body.line > at else self.origins.table("primitives", p.name)
        return {0: head, at: body}

    def _home(self, name: str) -> str | None:
        """The contract block a primitive is rendered in when no entry orders it: the first one
        (in file order) holding a definition of it; a fork may define it in several (DragonFly's
        and NetBSD's in one block, Haiku's prototype in another), the target only once."""
        return self.homes.get(name)

    def _defined_in_block(self, name: str) -> bool:
        """Whether the target defines this primitive in the contract header (not only in the glue)."""
        p = self.spec.primitives.get(name)
        return p is not None and not p.native and not (p.kind == OUT_OF_LINE and not p.returns and not p.declaration)

    def render_primitive(self, p: PrimitiveSpec) -> str | None:
        if p.todo is not None:
            raise PortError(f"primitive {p.name} is still TODO", self.spec.toml_path, f"fill [primitives.{p.name}]")
        if p.native or (p.kind == OUT_OF_LINE and not p.returns and not p.declaration):
            return None
        ctx = {"p": p, "kind": {OBJECT_MACRO: "object", FUNCTION_MACRO: "function", TYPEDEF: "typedef",
                               STATIC_INLINE: "inline", OUT_OF_LINE: "prototype"}[p.kind or ""]}
        text = self.prim_tpl.render(**ctx).rstrip("\n")
        return text

    # ---- edits

    def _edits(self, vp: VariationPoint, blk: cpp.CondBlock, lines: list[str], desired: tuple[str, str | None],
               kernel: bool) -> list[Edit]:
        env = cpp.os_env(self.spec.macro, kernel)
        taken = self._taken(blk, env, vp)
        mode, value = desired
        macro = self.spec.macro
        self.chosen[vp.id] = None
        if mode == "same_as":
            assert value is not None        # desired() pairs "same_as" with an OS name, never None
            src_env = cpp.os_env(cpp.detect_macro(value), kernel)
            want_branch = self._taken(blk, src_env, vp)
            if want_branch is taken or (want_branch is not None and taken is not None
                                        and _same_text(_body(lines, want_branch), _body(lines, taken))):
                self.chosen[vp.id] = taken
                return []          # the target already compiles what that OS compiles
            if want_branch is None:
                body = None
            else:
                body = _body(lines, want_branch)
                earlier = blk.branches[:blk.branches.index(want_branch)]
                if want_branch.kind != "else" and (taken is None or taken not in earlier) \
                        and self._owned_by_others(want_branch):
                    self.chosen[vp.id] = want_branch
                    return [self._extend(want_branch, lines, macro)]
            return self._place(blk, lines, taken, body, env, vp)
        body = value
        if taken is not None and body is not None and _same_text(_body(lines, taken), origins.strip(body)):
            self.chosen[vp.id] = taken
            return []
        if taken is None and body is None:
            return []
        return self._place(blk, lines, taken, body, env, vp)

    def scan_of(self, path: str) -> cpp.FileScan | None:
        """The preprocessor scan of an upstream file with variation points (after fill), or None."""
        return self.surface.source(path).scan if path in self.vps_by_file else None

    def upstream_dead_lines(self, path: str, kernel: bool | None = None) -> set[int]:
        """Lines of the *upstream* file the target does not compile, after filling (call fill first).
        ``kernel`` says which build compiles it (default: driver files the kernel's, others userland's)."""
        scan = self.scan_of(path)
        if scan is None:
            return set()
        in_kernel = path.startswith("driver/") if kernel is None else kernel
        dead = scan.inactive_lines(cpp.os_env(self.spec.macro, in_kernel))
        for vp in self.vps_by_file.get(path, []):
            if vp.id not in self.chosen:
                continue
            chosen = self.chosen[vp.id]
            for br in self.surface.block(vp).branches:
                span = set(range(br.body_start, br.body_end + 1))
                if br is chosen:
                    dead -= span
                else:
                    dead |= span
        return dead

    def _owned_by_others(self, br: cpp.Branch) -> bool:
        """A branch we may extend with `|| defined(MACRO)`: its condition names an OS."""
        try:
            return bool(cpp.names_in(_cond(br)) & set(cpp.OS_MACROS))
        except cpp.ConditionError:
            return False

    def _taken(self, blk: cpp.CondBlock, env: cpp.Env, vp: VariationPoint) -> cpp.Branch | None:
        try:
            return blk.taken(env)
        except cpp.UndecidedBranch as exc:
            raise PortError(f"cannot tell which branch of {vp.id} the target takes: '{exc.branch.condition}' "
                            "depends on macros other than the OS's", self.root / vp.file,
                            "fill this variation point with explicit code for the target") from None

    def _extend(self, br: cpp.Branch, lines: list[str], macro: str) -> Edit:
        cond = cpp.unparse(cpp.Binary("||", _cond(br), cpp.Defined(macro)))
        head = "#if" if br.kind in ("if", "ifdef", "ifndef") else "#elif"
        return Edit(br.line, br.body_start - 1, [cpp._directive_line(lines, br.line, f"{head} {cond}")])

    def _place(self, blk: cpp.CondBlock, lines: list[str], taken: cpp.Branch | None, body: str | None,
               env: cpp.Env, vp: VariationPoint) -> list[Edit]:
        macro = self.spec.macro
        arm = [f"#elif defined({macro})"] + (body.split("\n") if body else [])
        if taken is not None and taken.kind != "else":
            exclusive = self._exclusive_to_target(taken, vp)
            if exclusive:
                # the target's own upstream branch (netbsd, dragonfly): replace its body
                return [Edit(taken.body_start, taken.body_end, body.split("\n") if body else [])]
            # an earlier branch already catches the target: the target's arm goes first
            first = blk.branches[0]
            head = [f"#if defined({macro})"] + (body.split("\n") if body else [])
            assert first.expr is not None   # a block opens with #if/#ifdef/#ifndef, never #else
            rewritten = cpp._directive_line(lines, first.line, "#elif " + cpp.unparse(first.expr))
            return [Edit(first.line, first.body_start - 1, head + [rewritten])]
        # the target falls through to #else or past the block: add an arm before #else / #endif
        at = taken.line if taken is not None else blk.line_end
        return [Edit(at, at - 1, arm)]

    def _exclusive_to_target(self, br: cpp.Branch, vp: VariationPoint) -> bool:
        """True when no other OS upstream knows takes this branch (so it is the target's own)."""
        for os_name in self.surface.upstream.oses:
            if cpp.OS_DETECT_MACRO.get(os_name) == self.spec.macro:
                continue
            env = cpp.os_env(cpp.detect_macro(os_name), True)
            env.pop(self.spec.macro, None)
            env[self.spec.macro] = None
            try:
                if cpp.evaluate(_cond(br), env):
                    return False
            except cpp.ConditionError:
                return False
        return self.spec.macro in cpp.names_in(_cond(br))


def _cond(br: cpp.Branch) -> cpp.Expr:
    """The condition of an #if/#elif branch (an #else has none)."""
    expr = br.expr
    if expr is None:
        raise ValueError(f"the #else at line {br.line} has no condition")
    return expr


def _body(lines: list[str], br: cpp.Branch) -> str:
    return "\n".join(lines[br.body_start - 1:br.body_end])


def _same_text(a: str, b: str) -> bool:
    """The same code: equal token streams (whitespace and comments aside)."""
    return cpp.tokens(a) == cpp.tokens(b)


_ALIGNED = (re.compile(r"(#define \w+(?:\([^)]*\))?)\t(.*)$"), re.compile(r"(typedef [^\t]*)\t(\w+;)$"))


def _align_defines(text: str) -> str:
    """Align #define bodies, and typedef names, on one tab stop each, as kernel headers do."""
    lines = text.split("\n")
    for rx in _ALIGNED:
        heads = [rx.match(ln) for ln in lines]
        width = max((len(m.group(1).expandtabs()) for m in heads if m), default=0)
        col = (width // 8 + 1) * 8
        for i, m in enumerate(heads):
            if m:
                pad = (col - len(m.group(1).expandtabs()) + 7) // 8
                lines[i] = m.group(1) + "\t" * max(pad, 1) + m.group(2)
    return "\n".join(lines)


def flatten(text: str, spec: TargetSpec, path: str) -> str:
    return origins.renumber(cpp.unifdef(text, cpp.os_env(spec.macro, machine=False), path), path)
