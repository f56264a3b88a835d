"""``gen.py drift``: what changed between two synced upstreams, and what it breaks in each target's spec.

Upstream moves; a spec written for one revision must never silently fill a different block in the
next.  This module compares the analyses of two synced upstreams, FROM and TO:

  files        added, removed, changed (the locks' sha256)
  primitives   added, removed, kind changed, prototype changed (with call-site counts before/after)
  variation    matched by *content*, not by id: a block keeps its identity when a wrapper is added
  points       around it, its scope is renamed or its ordinal shifts.  Each FROM block is found in TO
               by the fingerprint of its arms for the OSes FROM knows.  Kinds: ``added``, ``removed``,
               ``changed`` (same id, other arms: which OSes' arms), ``moved`` (the block's id changed),
               ``rebound`` (an id FROM had now names another block: a spec entry under it would fill
               the wrong code), ``new arm`` (unchanged for FROM's OSes, with an arm for a new OS)
  shared code  hunks of changed files outside every variation point (FROM's or TO's), with their
               enclosing function: the edits no spec can carry
  foreign      names TO uses that FROM did not, and whether the BSD catalog covers them
  targets      per spec: what ``generate`` would refuse against TO (the same validation), and the
               entries whose upstream text changed under them (``changed upstream: review``): a
               rebound or changed variation point, a primitive whose kind or prototype changed

:func:`drift` returns a :class:`Drift`; ``to_json()`` is the documented JSON (README, "Regenerating
after upstream moves").  Nothing is written.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import ui
from ..analysis.identity import definition_text, vp_arms, vp_fingerprint
from ..analysis.model import Surface, VariationPoint
from ..errors import PortError
from ..project import Project
from .spec import load_spec, resolve_target, validate

_FUNC_HEAD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\(")


@dataclass
class FileChange:
    path: str
    status: str                 # added | removed | changed


@dataclass
class PrimitiveChange:
    name: str
    change: str                 # added | removed | split | kind | prototype | common definition | arms
    before: str = ""            # kind or prototype in FROM
    after: str = ""
    call_sites: tuple[int, int] = (0, 0)     # FROM, TO
    private_to: list[str] = field(default_factory=list)     # in TO: the OSes it is private to ([]: contract)


@dataclass
class VPChange:
    change: str                 # added | removed | changed | moved | rebound | new arm
    file: str
    id_from: str = ""
    id_to: str = ""
    arms: list[str] = field(default_factory=list)      # changed: the OSes whose arms differ
    note: str = ""


@dataclass
class SharedEdit:
    file: str
    function: str               # enclosing function in TO ("" at file scope)
    lines_from: tuple[int, int]
    lines_to: tuple[int, int]
    hunk: str                   # unified diff lines


@dataclass
class NewForeign:
    name: str
    group: str
    covered: bool
    files: list[str]


@dataclass
class TargetBreak:
    target: str
    refused: list[str] = field(default_factory=list)      # what generate would refuse (file:line: message)
    review: list[str] = field(default_factory=list)       # entries whose upstream text changed

    @property
    def broken(self) -> bool:
        return bool(self.refused or self.review)


@dataclass
class Drift:
    from_name: str
    to_name: str
    files: list[FileChange] = field(default_factory=list)
    primitives: list[PrimitiveChange] = field(default_factory=list)
    variation_points: list[VPChange] = field(default_factory=list)
    shared: list[SharedEdit] = field(default_factory=list)
    foreign: list[NewForeign] = field(default_factory=list)
    targets: list[TargetBreak] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(t.broken for t in self.targets)

    def counts(self) -> dict[str, Any]:
        def by(items: list[Any], attr: str) -> dict[str, int]:
            out: dict[str, int] = {}
            for x in items:
                out[getattr(x, attr)] = out.get(getattr(x, attr), 0) + 1
            return dict(sorted(out.items()))
        return {"files": by(self.files, "status"), "primitives": by(self.primitives, "change"),
                "variation_points": by(self.variation_points, "change"),
                "shared_edits": len(self.shared), "shared_files": len({s.file for s in self.shared}),
                "foreign_new": len(self.foreign), "foreign_uncovered": sum(1 for f in self.foreign if not f.covered)}

    def to_json(self) -> dict[str, Any]:
        return {"from": self.from_name, "to": self.to_name, "summary": self.counts(),
                "files": [asdict(x) for x in self.files],
                "primitives": [asdict(x) for x in self.primitives],
                "variation_points": [asdict(x) for x in self.variation_points],
                "shared_edits": [asdict(x) for x in self.shared],
                "foreign_identifiers": [asdict(x) for x in self.foreign],
                "targets": [{**asdict(t), "broken": t.broken} for t in self.targets],
                "broken": self.broken}


# ---------------------------------------------------------------------------------------------
# Variation points by content


#: How similar (difflib ratio of the arms FROM's OSes compile) a block must be to count as the same
#: block edited, when it is found nowhere verbatim.
SIMILAR = 0.75


def _joined(vp: VariationPoint, oses: list[str]) -> str:
    arms = vp_arms(vp, oses)
    return "\n\0\n".join(f"{os}\n{arms[os]}" for os in sorted(arms))


def _arm_diff(v: VariationPoint, w: VariationPoint, oses: list[str]) -> list[str]:
    before, after = vp_arms(v, oses), vp_arms(w, oses)
    return sorted(os for os in set(before) | set(after) if before.get(os) != after.get(os))


def _vp_changes(a: Surface, b: Surface) -> tuple[list[VPChange], dict[str, str]]:
    """The variation-point changes, and for every FROM id the TO id of the same block (when found)."""
    oses = a.upstream.oses
    a_by_id = {v.id: v for v in a.variation_points}
    b_by_id = {v.id: v for v in b.variation_points}
    b_by_fp: dict[str, list[VariationPoint]] = {}
    for v in b.variation_points:
        b_by_fp.setdefault(vp_fingerprint(v, oses), []).append(v)
    changes: list[VPChange] = []
    moved_to: dict[str, str] = {}
    matched_b: set[str] = set()
    for v in a.variation_points:
        fp = vp_fingerprint(v, oses)
        same = b_by_id.get(v.id)
        if same is not None and vp_fingerprint(same, oses) == fp:
            moved_to[v.id] = v.id
            matched_b.add(v.id)
            # an arm written for a new OS (an #else that now also covers it is not one)
            new_oses = sorted({os for br in same.branches if not br.directive.lstrip("# ").startswith("else")
                               for os in br.oses} - set(oses))
            if new_oses:
                changes.append(VPChange("new arm", v.file, v.id, v.id, new_oses,
                                        note=f"gained an arm for {', '.join(new_oses)}; the arms of "
                                             f"{', '.join(oses)} are unchanged"))
            continue
        found = [w for w in b_by_fp.get(fp, []) if w.id not in matched_b]
        found.sort(key=lambda w: (w.file != v.file, abs(w.line_start - v.line_start)))
        edited = False
        if not found:
            # not verbatim anywhere: the most similar block of the file, if it is similar enough
            # (a wrapper's comment or one arm edited along with the move)
            mine = _joined(v, oses)
            cands = [w for w in b.variation_points if w.file == v.file and w.id not in matched_b]
            scored = sorted(((difflib.SequenceMatcher(None, mine, _joined(w, oses), autojunk=False).ratio(), w)
                             for w in cands), key=lambda t: (-t[0], abs(t[1].line_start - v.line_start)))
            if scored and scored[0][0] >= SIMILAR:
                found, edited = [scored[0][1]], True
        if found and found[0].id != v.id:
            w = found[0]
            moved_to[v.id] = w.id
            matched_b.add(w.id)
            arms = _arm_diff(v, w, oses) if edited else []
            changes.append(VPChange("moved", v.file, v.id, w.id, arms,
                                    note=f"the block {v.id} is now {w.id}"
                                         + (f", its arms changed: {', '.join(arms)}" if arms else "")))
            if same is not None:
                changes.append(VPChange("rebound", v.file, v.id, v.id,
                                        note=f"{v.id} now names another block (the one at {same.file}:"
                                             f"{same.line_start}); entries written for it belong to {w.id}"))
            continue
        if same is not None:
            diff = _arm_diff(v, same, oses)          # a new OS's arm is no change
            moved_to[v.id] = v.id
            matched_b.add(v.id)
            changes.append(VPChange("changed", v.file, v.id, v.id, diff, note="arms changed: " + ", ".join(diff)))
            continue
        changes.append(VPChange("removed", v.file, v.id))
    for w in b.variation_points:
        if w.id not in matched_b:
            again = " (an id FROM used for another block)" if w.id in a_by_id else ""
            changes.append(VPChange("added", w.file, "", w.id, note=f"{w.file}:{w.line_start}, {w.condition}{again}"))
    return changes, moved_to


# ---------------------------------------------------------------------------------------------
# Primitives


def _primitive_changes(a: Surface, b: Surface) -> list[PrimitiveChange]:
    """Primitives added or removed, and for those in both: a changed kind, a changed common
    prototype (the definition outside every OS branch), a lost or new common definition, or an arm
    of an OS FROM knows that changed.  Arms added for a new OS are not changes of the contract."""
    pa = {p.name: p for p in a.primitives}
    pb = {p.name: p for p in b.primitives}
    out: list[PrimitiveChange] = []
    for name in sorted(set(pa) | set(pb)):
        x, y = pa.get(name), pb.get(name)
        if x is None and y is not None:
            out.append(PrimitiveChange(name, "added", after=y.kind, call_sites=(0, len(y.call_sites))))
            continue
        if y is None and x is not None:
            out.append(PrimitiveChange(name, "removed", before=x.kind, call_sites=(len(x.call_sites), 0)))
            continue
        assert x is not None and y is not None
        sites = (len(x.call_sites), len(y.call_sites))
        if x.kind != y.kind:
            out.append(PrimitiveChange(name, "kind", x.kind, y.kind, sites))
        elif ("all" in x.definitions) != ("all" in y.definitions):
            out.append(PrimitiveChange(name, "common definition", definition_text(x, "all") or "per-OS only",
                                       definition_text(y, "all") or "per-OS only", sites))
        elif definition_text(x, "all") != definition_text(y, "all"):
            out.append(PrimitiveChange(name, "prototype", definition_text(x, "all"), definition_text(y, "all"),
                                       sites))
        else:
            arms = [os for os in sorted(x.definitions)
                    if os != "all" and definition_text(x, os) != definition_text(y, os)]
            if arms:
                out.append(PrimitiveChange(name, "arms", ", ".join(arms), "changed", sites))
    # a primitive removed where two or more named after it arrive was split (DragonFly's 2026
    # os_vmobj_map -> os_vmobj_map_user, os_vmobj_map_kern)
    added = [c.name for c in out if c.change == "added"]
    for change in out:
        if change.change != "removed":
            continue
        parts = sorted(n for n in added if n.startswith(change.name + "_"))
        if len(parts) >= 2:
            change.change, change.after = "split", ", ".join(parts)
            change.call_sites = (change.call_sites[0], sum(len(pb[n].call_sites) for n in parts))
    for change in out:
        y = pb.get(change.name)
        change.private_to = list(y.private_to) if y is not None else []
    return out


# ---------------------------------------------------------------------------------------------
# Files and shared code


def _file_changes(a: Surface, b: Surface) -> list[FileChange]:
    fa, fb = set(a.upstream.files), set(b.upstream.files)
    out = [FileChange(p, "added") for p in sorted(fb - fa)] + [FileChange(p, "removed") for p in sorted(fa - fb)]
    for p in sorted(fa & fb):
        if a.source(p).data != b.source(p).data:
            out.append(FileChange(p, "changed"))
    return sorted(out, key=lambda c: c.path)


def _inside(ranges: list[tuple[int, int]], lo: int, hi: int) -> bool:
    return any(s <= hi and lo <= e for s, e in ranges)


def _function_at(lines: list[str], index: int) -> str:
    """The function whose body holds line ``index`` (0-based), BSD style: the name at column 0."""
    for i in range(min(index, len(lines) - 1), -1, -1):
        m = _FUNC_HEAD.match(lines[i])
        if m and i + 1 < len(lines) and not lines[i].rstrip().endswith(";"):
            return m.group(1)
        if lines[i].startswith("}") and i < index:
            return ""
    return ""


def _shared_edits(a: Surface, b: Surface, changed: list[FileChange]) -> list[SharedEdit]:
    ranges_a: dict[str, list[tuple[int, int]]] = {}
    ranges_b: dict[str, list[tuple[int, int]]] = {}
    for v in a.variation_points:
        ranges_a.setdefault(v.file, []).append((v.line_start, v.line_end))
    for v in b.variation_points:
        ranges_b.setdefault(v.file, []).append((v.line_start, v.line_end))
    out: list[SharedEdit] = []
    for c in changed:
        if c.status != "changed" or not c.path.endswith((".c", ".h", ".S")):
            continue
        old = a.source(c.path).text.splitlines()
        new = b.source(c.path).text.splitlines()
        sm = difflib.SequenceMatcher(None, old, new, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                continue
            lo_a, hi_a = i1 + 1, max(i1 + 1, i2)
            lo_b, hi_b = j1 + 1, max(j1 + 1, j2)
            if _inside(ranges_a.get(c.path, []), lo_a, hi_a) or _inside(ranges_b.get(c.path, []), lo_b, hi_b):
                continue
            hunk = [f"@@ -{lo_a},{i2 - i1} +{lo_b},{j2 - j1} @@"] + [f"-{x}" for x in old[i1:i2]] + \
                [f"+{x}" for x in new[j1:j2]]
            out.append(SharedEdit(c.path, _function_at(new, j1), (lo_a, i2), (lo_b, j2), "\n".join(hunk)))
    return out


def _foreign(a: Surface, b: Surface) -> list[NewForeign]:
    known = {f.name for f in a.foreign_identifiers}
    return [NewForeign(f.name, f.group, f.group != "unknown", sorted(f.files))
            for f in sorted(b.foreign_identifiers, key=lambda f: f.name) if f.name not in known]


# ---------------------------------------------------------------------------------------------
# Targets


def _target_break(project: Project, target: str, a: Surface, b: Surface, vps: list[VPChange],
                  prims: list[PrimitiveChange]) -> TargetBreak:
    spec = load_spec(resolve_target(project, target), defer_errors=True)
    out = TargetBreak(spec.name)
    out.refused = [str(d) for d in validate(spec, b)]
    at = {c.id_from: c for c in vps if c.change in ("changed", "rebound", "moved")}
    for vid, entry in spec.variation_points.items():
        c = at.get(vid)
        if c is None or entry.todo is not None:
            continue
        where = f"{spec.toml_path}:{entry.line}"
        if c.change == "rebound":
            out.review.append(f"{where}: {vid}: changed upstream: review ({c.note})")
        elif c.change == "moved" and not any(x.change == "rebound" and x.id_from == vid for x in vps):
            out.review.append(f"{where}: {vid}: changed upstream: review (the block moved to {c.id_to}; "
                              f"rename the entry)")
        elif c.change == "changed":
            out.review.append(f"{where}: {vid}: changed upstream: review ({c.note})")
    for p in prims:
        pentry = spec.primitives.get(p.name)
        if pentry is not None and p.change in ("kind", "prototype", "common definition", "arms"):
            out.review.append(f"{spec.toml_path}:{pentry.line}: {p.name}: changed upstream: review "
                              f"({p.change}: {p.before} -> {p.after})")
    return out


def drift(project: Project, from_name: str, to_name: str, targets: Sequence[str] = (),
          progress: ui.Progress = ui.SILENT) -> Drift:
    """Compare upstreams FROM and TO (both synced) and check each of ``targets`` against TO."""
    from ..analysis.analyze import analyze_project
    if from_name == to_name:
        raise PortError(f"--from and --to are both '{from_name}'", None, "name two different synced upstreams")
    a = analyze_project(project, from_name, progress=progress)
    b = analyze_project(project, to_name, progress=progress)
    files = _file_changes(a, b)
    vps, _ = _vp_changes(a, b)
    prims = _primitive_changes(a, b)
    d = Drift(a.upstream.name, b.upstream.name, files, prims, vps, _shared_edits(a, b, files), _foreign(a, b))
    d.targets = [_target_break(project, t, a, b, vps, prims) for t in targets]
    return d
