"""``gen.py extract-target``: a complete TargetSpec from upstream's own branches for one OS.

Every primitive and every variation point is filled explicitly (never "same as upstream"):
macros with their parameters and bodies, typedefs and static inlines as written, out-of-line
functions marked external (their bodies live in the OS's nvmm_<os>.c, which is not part of
the synced upstream), contract blocks as an ordered list of primitives and raw text, and every
other variation point with the branch that OS compiles (or ``omit``).

The result is derived mechanically from upstream text, so it is upstream code: write it into
build/ or a temporary directory, never commit it.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from .. import tomlw
from ..analysis import preprocessor as cpp
from ..analysis.identity import primitive_fingerprint, vp_fingerprint
from ..analysis.model import FUNCTION_MACRO, OBJECT_MACRO, OUT_OF_LINE, STATIC_INLINE, TYPEDEF, Surface, VariationPoint
from ..errors import PortError
from ..templating import template
from .spec import block_primitives, enclosing_primitive

HEADER = """\
# TargetSpec extracted by `gen.py extract-target --os {os}` from upstream {upstream}.
# Derived mechanically from upstream NVMM text: third-party code, never commit it.
"""


def extract(surface: Surface, root: Path, os_name: str, name: str | None = None) -> dict[str, str]:
    """{relative path: text} of the spec directory (target.toml only: everything is inline)."""
    if os_name not in surface.upstream.oses:
        raise PortError(f"upstream {surface.upstream.name} has no {os_name} branches",
                        root, f"pick one of {', '.join(surface.upstream.oses)}")
    macro = cpp.OS_DETECT_MACRO[os_name]

    def lines_of(path: str) -> list[str]:
        return surface.source(path).lines

    out = [HEADER.format(os=os_name, upstream=surface.upstream.name)]
    out.append("[target]")
    out.append(f"name = {tomlw.value(name or os_name)}")
    out.append(f"os = {tomlw.value(os_name)}")
    out.append(f"macro = {tomlw.value(macro)}")
    out.append(f"base = {tomlw.value(os_name)}")
    out.append(f"description = {tomlw.value(f'{os_name} as upstream {surface.upstream.name} defines it')}")
    out.append("")
    out.append("[build]\nsystem = \"none\"\n")
    out.append("[compat]\nemit = false    # a BSD kernel provides every BSD name itself\n")

    inside_vp: dict[str, VariationPoint] = {}
    for v in surface.variation_points:
        for prim_name in block_primitives(v, surface):
            inside_vp.setdefault(prim_name, v)

    for p in surface.primitives:
        out.append(f"[primitives.{tomlw.key(p.name)}]")
        out.append(f"fingerprint = {tomlw.value(primitive_fingerprint(p))}")
        d = p.definitions.get(os_name) or p.definitions.get("all")
        if d is None:
            out.append("native = true    # not in this OS's contract: its kernel provides the name itself")
            out.append("")
            continue
        if d.kind == OUT_OF_LINE:
            out.append(f"kind = {tomlw.value(OUT_OF_LINE)}")
            out.append(f"external = true    # body in upstream's nvmm_{os_name}.c, outside the synced tree")
            if p.name in inside_vp:
                # a prototype inside an OS arm is part of that arm's text: written out as it stands
                out.append(f"declaration = {tomlw.value(d.text, True)}")
        elif d.kind in (OBJECT_MACRO, FUNCTION_MACRO):
            out.append(f"kind = {tomlw.value(d.kind)}")
            head, body = _macro_parts(d.text, d.params is not None)
            if d.params is not None:
                out.append(f"params = {tomlw.value(d.params)}")
            out.append(f"body = {tomlw.value(body, True)}")
        elif d.kind == TYPEDEF:
            out.append(f"kind = {tomlw.value(TYPEDEF)}")
            out.append(f"declaration = {tomlw.value(d.text, True)}")
        elif d.kind == STATIC_INLINE:
            out.append(f"kind = {tomlw.value(STATIC_INLINE)}")
            if "all" in p.definitions:
                # one definition for every OS, varying inside: the body is this OS's branch
                vp = next(v for v in surface.variation_points if enclosing_primitive(v, surface) == p.name)
                branch = _branch_text(surface, vp, os_name, vp.file.startswith("driver/"))
                out.append(f"body = {tomlw.value(branch or '', True)}")
            else:
                parts = _inline_parts(d.text)
                if parts is not None and _renders_as(p.name, parts, d.text):
                    returns, params, body = parts
                    out.append(f"returns = {tomlw.value(returns)}")
                    out.append(f"params = {tomlw.value(params)}")
                    out.append(f"body = {tomlw.value(body, True)}")
                else:
                    # not in the template's shape (static without inline, attributes, a head over
                    # several lines): the definition written out as it stands
                    out.append(f"declaration = {tomlw.value(d.text, True)}")
        out.append("")

    for v in surface.variation_points:
        if enclosing_primitive(v, surface):
            continue   # filled by the enclosing primitive's body (os_return_needed)
        out.append(f"[variation_points.{tomlw.key(v.id)}]")
        out.append(f"fingerprint = {tomlw.value(vp_fingerprint(v))}")
        lines = lines_of(v.file)
        kernel = v.file.startswith("driver/")
        br = _taken(surface.block(v), os_name, kernel)
        prims = block_primitives(v, surface) if v.in_contract else []
        if br is None:
            out.append("omit = true")
        elif prims:
            out.append(f"items = {tomlw.value(_items(v, br, lines, surface, os_name), True)}")
        else:
            out.append(f"code = {tomlw.value(chr(10).join(lines[br.body_start - 1:br.body_end]), True)}")
        out.append("")
    return {"target.toml": "\n".join(out),
            # derived from upstream code: keep git away from it wherever it is written
            ".gitignore": "# extracted from upstream NVMM by gen.py extract-target: never commit\n*\n"}


def _taken(blk: cpp.CondBlock, os_name: str, kernel: bool) -> cpp.Branch | None:
    return blk.taken(cpp.os_env(cpp.detect_macro(os_name), kernel))


def _branch_text(surface: Surface, v: VariationPoint, os_name: str, kernel: bool) -> str | None:
    br = _taken(surface.block(v), os_name, kernel)
    return None if br is None else surface.source(v.file).body(br)


def _items(v: VariationPoint, br: cpp.Branch, lines: list[str], surface: Surface, os_name: str) -> list[str]:
    """The branch as an ordered list: '@primitive' where a primitive is defined, raw text between."""
    spans = []
    for p in surface.primitives:
        d = p.definitions.get(os_name)
        if d and d.file == v.file and br.body_start <= d.line <= br.body_end:
            spans.append((d.line, d.line + d.text.count("\n"), p.name))
    spans.sort()
    items, line = [], br.body_start
    for start, end, name in spans:
        if start > line:
            items.append("\n".join(lines[line - 1:start - 1]))
        items.append("@" + name)
        line = end + 1
    if line <= br.body_end:
        items.append("\n".join(lines[line - 1:br.body_end]))
    return items


def _macro_parts(text: str, function_like: bool) -> tuple[str, str]:
    joined = re.sub(r"\\\n", "\n", text)
    m = re.match(r"\s*#\s*define\s+(\w+)(\([^)]*\))?", joined)
    if m is None:
        first_line = joined.lstrip().partition("\n")[0]
        raise PortError(f"cannot split the macro '{first_line}'", "nvmm_os.h", "extract it by hand")
    head = m.group(0)
    body = joined[m.end():]
    body_lines = [ln.strip() for ln in body.split("\n")]
    return head, "\n".join(ln for ln in body_lines if ln != "" or len(body_lines) == 1).strip()


def _renders_as(name: str, parts: tuple[str, list[str], str], text: str) -> bool:
    """Whether the contract template gives back exactly ``text`` from these parts."""
    returns, params, body = parts
    entry = SimpleNamespace(name=name, returns=returns, params=params, body=body, declaration=None)
    return bool(template("contract/primitives.j2").render(p=entry, kind="inline").strip("\n") == text)


def _inline_parts(text: str) -> tuple[str, list[str], str] | None:
    """static inline RET NAME(PARAMS) { BODY } -> RET, [param declarations], BODY (None: not that shape)."""
    head, _, rest = text.partition("{")
    body = rest.rsplit("}", 1)[0].strip("\n")
    head = " ".join(head.split())
    m = re.match(r"static\s+(?:__inline|inline)\s+(.*?)\s*\b(\w+)\s*\((.*)\)\s*$", head)
    if not m:
        return None
    params, depth, cur = [], 0, ""
    for c in m.group(3):
        if c == "," and depth == 0:
            params.append(cur.strip())
            cur = ""
            continue
        depth += c == "("
        depth -= c == ")"
        cur += c
    if cur.strip():
        params.append(cur.strip())
    return m.group(1), params, body


def write_spec(files: dict[str, str], out_dir: Path) -> None:
    """Write a spec's files into its directory, each atomically, unchanged ones untouched, with the
    user's umask; the directory is the porter's, so nothing else in it is touched or removed."""
    from .writer import write_files
    write_files({rel: text.encode() for rel, text in files.items()}, out_dir)
