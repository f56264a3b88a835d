"""``gen.py stamp``: record in a spec which upstream text each entry was written against.

Every ``[primitives.NAME]`` and ``[variation_points."ID"]`` entry whose primitive or block exists
in the upstream gets ``fingerprint = "..."`` (:mod:`nvmm_port.analysis.identity`): added right
under its table header, or the existing line replaced.  Nothing else of ``target.toml`` changes:
comments, order and spacing stay as the porter wrote them.  From then on validation refuses an
entry whose upstream text changes (``changed upstream: review``) instead of applying it to code it
was not written for; after reviewing, stamping again records the new text.

The file is replaced atomically, and only when something changed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .. import ui
from ..analysis.identity import primitive_fingerprint, vp_fingerprint
from ..errors import PortError
from ..project import Project
from .spec import load_spec, resolve_target
from .tomlpos import TomlPositions


@dataclass
class Stamped:
    toml_path: Path
    upstream: str
    written: list[str] = field(default_factory=list)     # entries whose fingerprint was added or changed
    current: int = 0                                     # already right
    absent: list[str] = field(default_factory=list)      # entries upstream does not have


def stamp(project: Project, target: str, upstream: str | None, progress: ui.Progress = ui.SILENT) -> Stamped:
    from ..analysis.analyze import analyze_project
    spec = load_spec(resolve_target(project, target), defer_errors=True)
    surface = analyze_project(project, upstream, progress=progress)
    prims = {p.name: primitive_fingerprint(p) for p in surface.primitives}
    vps = {v.id: vp_fingerprint(v) for v in surface.variation_points}
    path = spec.toml_path
    text = path.read_text(encoding="utf-8")
    pos = TomlPositions(text)
    out = Stamped(path, surface.upstream.name)
    edits: list[tuple[int, bool, str]] = []       # (line, replace it?, new line); 1-based
    entries: list[tuple[str, str, str | None, str | None]] = [
        ("primitives", n, p.fingerprint, prims.get(n)) for n, p in spec.primitives.items()]
    entries += [("variation_points", i, v.fingerprint, vps.get(i)) for i, v in spec.variation_points.items()]
    for table, key, old, new in entries:
        if new is None:
            out.absent.append(key)
            continue
        if old == new:
            out.current += 1
            continue
        line = f'fingerprint = "{new}"\n'
        if pos.has(table, key, "fingerprint"):
            edits.append((pos.line(table, key, "fingerprint"), True, line))
        elif pos.has(table, key):
            edits.append((pos.line(table, key), False, line))
        else:
            raise PortError(f"cannot find the table of {key} in the file", path,
                            "write each entry as its own [table] (inline tables cannot be stamped)")
        out.written.append(key)
    if not edits:
        return out
    lines = text.splitlines(keepends=True)
    for n, replace, line in sorted(edits, key=lambda e: e[0], reverse=True):
        if replace:
            lines[n - 1] = line
        else:
            lines.insert(n, line)
    new_text = "".join(lines)
    try:
        tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:       # pragma: no cover - a header line we misplaced
        raise PortError(f"stamping would break the file ({exc})", path, "report this; the file is unchanged") from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(new_text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PortError(f"cannot write: {exc.strerror}", path, "check its permissions") from None
    return out
