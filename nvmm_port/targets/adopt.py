"""``gen.py adopt``: turn a fork that added an OS by hand into a TargetSpec for the upstream it forked.

A hand port (Haiku's, in haiku/haiku) is a copy of upstream with the new OS's arms written into
upstream's files, files of its own added beside them, and edits to shared code.  ``adopt`` reads
both trees (BASE, the upstream the fork started from, and PORT, the fork) and writes a spec for
BASE that carries what a spec can:

- every primitive as PORT defines it for OS (what ``extract-target`` reads), re-stamped against
  BASE's contract;
- every variation point of BASE, matched to its block in PORT by content (``drift``'s matching:
  verbatim, else the most similar block of the file), filled with PORT's arm for OS; a helper PORT's
  contract block defines that BASE does not know is written into the arm as text;
- PORT's added files (its own sources, headers, build files) as the spec's verbatim tree
  (``[glue] tree``), at the paths PORT has them; ``[build] system = "none"``: the fork's build files
  are among them.

What a spec cannot carry is reported: PORT's edits to shared code (lines outside every variation
point), blocks PORT added that BASE has no place for, blocks PORT removed.  The proof is generation:
BASE + the adopted spec is rendered and compared with PORT file by file; every difference is one
of those edits, given as a unified diff per file and function.

The adopted spec is derived from the fork's code: it is written where the user says (``build/`` by
default), with a ``.gitignore`` that keeps git away from it, and never committed.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tomlw
from ..analysis import preprocessor as cpp
from ..analysis.identity import primitive_fingerprint, vp_fingerprint
from ..analysis.model import Surface, VariationPoint
from ..errors import PortError
from ..project import Project
from . import origins
from .drift import _function_at, _vp_changes
from .extract import extract
from .spec import enclosing_primitive

HEADER = """\
# TargetSpec adopted by `gen.py adopt --base {base} --port {port} --os {os}`.
# Derived mechanically from the fork's code: third-party code, never commit it.
# What a spec cannot carry (the fork's edits to shared code) is in ADOPTED.md beside this file.
"""

TREE = "tree"


@dataclass
class Hunk:
    file: str
    function: str
    text: str               # unified diff lines, BASE + spec (---) against PORT (+++)


@dataclass
class Adoption:
    base: str
    port: str
    os: str
    files: dict[str, bytes] = field(default_factory=dict)     # the spec directory: relative path -> bytes
    primitives: int = 0
    variation_points: int = 0
    added_files: list[str] = field(default_factory=list)      # PORT's own files, carried verbatim
    unplaced: list[str] = field(default_factory=list)         # PORT blocks with no place in BASE
    removed: list[str] = field(default_factory=list)          # BASE blocks PORT removed
    equal: list[str] = field(default_factory=list)            # files BASE + spec renders exactly as PORT
    differ: list[str] = field(default_factory=list)
    hunks: list[Hunk] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)          # what generate refused (then nothing compared)


def adopt(project: Project, base: str, port: str, os_name: str, name: str | None = None) -> Adoption:
    from ..analysis.analyze import analyze_project, load_upstream
    sa = analyze_project(project, base)
    sp = analyze_project(project, port)
    if os_name not in sp.upstream.oses:
        raise PortError(f"upstream {port} has no {os_name} branches", project.lock_path(port),
                        f"pick one of {', '.join(sp.upstream.oses)}")
    if os_name in sa.upstream.oses:
        raise PortError(f"upstream {base} already has {os_name} branches: there is nothing to adopt",
                        project.lock_path(base), f"use `gen.py extract-target --os {os_name} --upstream {base}`")
    _, port_cache, _ = load_upstream(project, port)
    ext = tomllib.loads(extract(sp, port_cache, os_name, name)["target.toml"])
    _, moved_to = _vp_changes(sa, sp)
    out = Adoption(base, port, os_name)

    lines = [HEADER.format(base=base, port=port, os=os_name), "[target]"]
    lines.append(f"name = {tomlw.value(name or os_name)}")
    lines.append(f"os = {tomlw.value(os_name)}")
    lines.append(f"macro = {tomlw.value(cpp.OS_DETECT_MACRO.get(os_name, f'__{os_name}__'))}")
    lines.append(f"base = {tomlw.value('netbsd' if 'netbsd' in sa.upstream.oses else sa.upstream.oses[0])}")
    lines.append(f"description = {tomlw.value(f'{os_name} as {port} ports {base}, adopted')}")
    lines.append("")
    lines.append('[build]\nsystem = "none"    # the fork\'s own build files are in the tree below\n')
    lines.append("[compat]\nemit = false\n")

    base_files = set(sa.upstream.files)
    added = sorted(f for f in sp.upstream.files if f not in base_files)
    out.added_files = added
    lines.append("[glue]")
    lines.append(f"tree = {tomlw.value(TREE)}    # the files the fork adds, at the paths it has them")
    lines.append("")
    for rel in added:
        out.files[f"{TREE}/{rel}"] = (port_cache / rel).read_bytes()

    port_prims = {p.name: p for p in sp.primitives}
    for p in sa.primitives:
        prim: dict[str, Any] = dict(ext["primitives"].get(p.name) or {"native": True})
        prim["fingerprint"] = primitive_fingerprint(p)
        if p.name not in port_prims:
            prim = {"fingerprint": primitive_fingerprint(p), "native": True,
                    "note": f"{port} no longer has it: its callers changed (see the edits to shared code)"}
        lines += _table(f"primitives.{tomlw.key(p.name)}", prim)
        out.primitives += 1

    port_vps = {v.id: v for v in sp.variation_points}
    for v in sa.variation_points:
        if enclosing_primitive(v, sa):
            continue        # the enclosing primitive's body fills it
        pid = moved_to.get(v.id)
        entry: dict[str, Any]
        if pid is None or pid not in port_vps:
            out.removed.append(v.id)
            entry = _base_default(v, os_name)
        else:
            entry = _arm(port_vps[pid], sp, port_cache, os_name, sa.upstream.oses) or \
                dict(ext["variation_points"].get(pid, {"omit": True}))
        entry.pop("fingerprint", None)
        entry = {"fingerprint": vp_fingerprint(v), **entry}
        lines += _table(f"variation_points.{tomlw.key(v.id)}", entry)
        out.variation_points += 1
    placed = {moved_to[x] for x in moved_to}
    out.unplaced = sorted(w.id for w in sp.variation_points if w.id not in placed)

    out.files["target.toml"] = "\n".join(lines).encode()
    out.files[".gitignore"] = b"# adopted from a fork's code by gen.py adopt: never commit\n*\n"
    return out


def compare(project: Project, adoption: Adoption, spec_dir: Path) -> None:
    """Render BASE with the adopted spec and compare it with PORT, file by file (fills ``equal``,
    ``differ`` and ``hunks``, or ``refused`` when generate refuses the spec)."""
    from ..analysis.analyze import analyze_project, load_upstream
    from ..errors import DiagnosticsError
    from .generate import render_tree
    from .spec import check_spec, load_spec
    spec = load_spec(spec_dir, defer_errors=True)
    surface = analyze_project(project, adoption.base)
    _, base_cache, _ = load_upstream(project, adoption.base)
    _, port_cache, _ = load_upstream(project, adoption.port)
    port = analyze_project(project, adoption.port)
    try:
        check_spec(spec, surface)
    except DiagnosticsError as exc:
        adoption.refused = [str(d) for d in exc.diagnostics]
        return
    tree = render_tree(project, spec, surface, base_cache, flat=False)
    for rel in port.upstream.files:
        want = (port_cache / rel).read_bytes()
        got = tree.files.get(rel)
        if got is not None and got != want and b"#line " in got:
            # the generator's #line directives name the spec a filled arm comes from: provenance,
            # not code, and no fork has them
            got = origins.strip(got.decode()).encode()
        if got == want:
            adoption.equal.append(rel)
            continue
        adoption.differ.append(rel)
        old = got.decode(errors="replace").splitlines() if got is not None else []
        new = want.decode(errors="replace").splitlines()
        sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for group in sm.get_grouped_opcodes(2):
            i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
            body = [f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@"]
            for tag, a1, a2, b1, b2 in group:
                if tag == "equal":
                    body += [f" {x}" for x in old[a1:a2]]
                    continue
                body += [f"-{x}" for x in old[a1:a2]] + [f"+{x}" for x in new[b1:b2]]
            first_change = next(op for op in group if op[0] != "equal")
            adoption.hunks.append(Hunk(rel, _function_at(new, first_change[3]), "\n".join(body)))


def report(a: Adoption) -> str:
    """ADOPTED.md: what the spec carries, and the edits it cannot."""
    out = [f"# {a.port} adopted onto {a.base} for {a.os}", "",
           f"- spec: {a.primitives} primitives, {a.variation_points} variation points, "
           f"{len(a.added_files)} files the fork adds carried verbatim (`[glue] tree`)"]
    if a.refused:
        out += ["- generate refuses the spec; nothing was compared:", ""] + [f"  - {x}" for x in a.refused]
        return "\n".join(out) + "\n"
    out.append(f"- BASE + spec against the fork (the generator's `#line` directives aside): {len(a.equal)} files "
               f"equal, {len(a.differ)} differ by {len(a.hunks)} edit(s) a spec cannot carry (listed below)")
    if a.unplaced:
        out.append(f"- blocks the fork added where {a.base} has none (part of the edits below): "
                   + ", ".join(f"`{x}`" for x in a.unplaced))
    if a.removed:
        out.append(f"- blocks of {a.base} the fork removed (filled with {a.base}'s default): "
                   + ", ".join(f"`{x}`" for x in a.removed))
    out += ["", "## Edits to shared code", "",
            "Each hunk turns BASE + the adopted spec (`-`) into the fork (`+`).", ""]
    for f in a.differ:
        out.append(f"### `{f}`")
        out.append("")
        for h in (h for h in a.hunks if h.file == f):
            out.append(f"In `{h.function or '(file scope)'}`:")
            out += ["", "```diff", h.text, "```", ""]
    return "\n".join(out) + "\n"


def _table(header: str, entry: dict[str, Any]) -> list[str]:
    lines = [f"[{header}]"]
    for key, val in entry.items():
        lines.append(f"{key} = {tomlw.value(val, True)}")
    lines.append("")
    return lines


def _base_default(v: VariationPoint, os_name: str) -> dict[str, Any]:
    """What BASE's block gives a new OS by itself: its #else, or nothing."""
    last = v.branches[-1] if v.branches else None
    if last is not None and last.directive.lstrip("# ").startswith("else"):
        return {"code": last.text, "note": f"the fork removed this block; {os_name} takes its #else"}
    return {"omit": True, "note": "the fork removed this block"}


def _arm(w: VariationPoint, port: Surface, cache: Path, os_name: str, base_oses: list[str]) -> dict[str, Any] | None:
    """The fork's arm for OS at its block ``w``, as the fork writes it: ``same_as`` an OS whose branch the
    fork's OS shares (`#if defined(__DragonFly__) || defined(__HAIKU__)`), else its text verbatim (a
    contract block's too: the fork's spelling and alignment, and helpers BASE does not know, stay as
    written), ``omit`` when it compiles nothing there.  None: the block is not one of this OS's."""
    blk = port.block(w)
    kernel = w.file.startswith("driver/")
    try:
        br = blk.taken(cpp.os_env(cpp.detect_macro(os_name), kernel))
    except cpp.UndecidedBranch:
        return None
    if br is None:
        return {"omit": True}
    for other in base_oses:
        try:
            if blk.taken(cpp.os_env(cpp.detect_macro(other), kernel)) is br and br.kind != "else":
                return {"same_as": other}
        except cpp.UndecidedBranch:
            continue
    return {"code": port.source(w.file).body(br)}
