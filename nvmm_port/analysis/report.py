"""Renderings of the porting surface: JSON (for tools) and Markdown (for porters)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from .catalog import MEMBERS, UNKNOWN
from .model import Surface
from ..project import PACKAGE_DIR

TEMPLATES = PACKAGE_DIR.parent / "templates"

OS_TITLES = {"netbsd": "NetBSD", "dragonfly": "DragonFly", "freebsd": "FreeBSD", "openbsd": "OpenBSD",
             "haiku": "Haiku", "linux": "Linux", "darwin": "macOS", "all": "all OSes"}


def render(surface: Surface, fmt: str, templates: Path | None = None) -> str:
    if fmt == "json":
        return json.dumps(surface.to_json(), indent=2, sort_keys=False) + "\n"
    if fmt == "md":
        return render_markdown(surface, templates)
    raise ValueError(fmt)


def _cell(text: str, limit: int = 90) -> str:
    """A definition as one Markdown table cell."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def _body(defn) -> str:
    """What a porter compares: a macro's right-hand side, a typedef's type, a function's signature."""
    text = defn.text
    if defn.kind.endswith("macro"):
        head, _, rest = text.partition(" ")
        if defn.params is not None:
            rest = text.split(")", 1)[1] if ")" in text else rest
        else:
            rest = text.split(None, 2)[2] if len(text.split(None, 2)) > 2 else ""
        return rest.replace("\\\n", " ").strip()
    if defn.kind == "static inline":
        return text.split("{", 1)[0].strip() + " { … }"
    return text


def render_markdown(surface: Surface, templates: Path | None = None) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates or TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["cell"] = _cell
    env.filters["body"] = _body
    env.filters["os_title"] = lambda o: OS_TITLES.get(o, o)
    groups: dict[str, list] = {}
    for p in surface.primitives:
        groups.setdefault(p.group, []).append(p)
    oses = surface.upstream.oses
    foreign = surface.foreign_groups()
    order = sorted(foreign, key=lambda g: (g in (UNKNOWN, MEMBERS), g))
    return env.get_template("report/surface.md.j2").render(
        s=surface, summary=surface.summary(), prim_groups=groups, oses=oses,
        foreign_groups=[(g, foreign[g]) for g in order], unknown=UNKNOWN,
        per_flavour={fl: sum(1 for f in surface.foreign_identifiers if fl in f.flavours) for fl in oses},
    )
