"""Renderings of the porting surface: JSON (for tools) and Markdown (for porters)."""

from __future__ import annotations

import json

from ..templating import render as render_template
from .catalog import MEMBERS, UNKNOWN
from .model import Definition, Primitive, Surface

OS_TITLES = {"netbsd": "NetBSD", "dragonfly": "DragonFly", "freebsd": "FreeBSD", "openbsd": "OpenBSD",
             "haiku": "Haiku", "linux": "Linux", "darwin": "macOS", "all": "all OSes"}


def render(surface: Surface, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(surface.to_json(), indent=2, sort_keys=False) + "\n"
    if fmt == "md":
        return render_markdown(surface)
    raise ValueError(fmt)


def _cell(text: str, limit: int = 90) -> str:
    """A definition as one Markdown table cell."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`" if text else ""


def os_title(os_name: str) -> str:
    return OS_TITLES.get(os_name, os_name)


def _body(defn: Definition) -> str:
    """What a porter compares: a macro's right-hand side, a typedef's type, a function's signature."""
    text = defn.text
    if defn.kind.endswith("macro"):
        _, _, rest = text.partition(" ")
        if defn.params is not None:
            rest = text.split(")", 1)[1] if ")" in text else rest
        else:
            rest = text.split(None, 2)[2] if len(text.split(None, 2)) > 2 else ""
        return rest.replace("\\\n", " ").strip()
    if defn.kind == "static inline":
        return text.split("{", 1)[0].strip() + " { … }"
    return text


def _primitive_row(p: Primitive, oses: list[str]) -> list[str]:
    """A primitive's table row: its definition per OS (or the one for all), then its first call sites."""
    cells = [f"`{p.name}`", p.kind]
    for o in oses:
        d = p.definitions.get(o) or p.definitions.get("all")
        cells.append(_cell(_body(d)) if d is not None else "—")
    sites = f"{len(p.call_sites)}"
    if p.call_sites:
        sites += ": " + ", ".join(c.where + (f" ({c.function})" if c.function else "") for c in p.call_sites[:3])
        sites += ", …" if len(p.call_sites) > 3 else ""
    return cells + [sites]


def _counts(counts: dict[str, int]) -> str:
    """``{"error": 3}`` as "3 error", or "none"."""
    return ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"


def _regions(skipped: dict[str, list[list[int]]]) -> str:
    """Skipped regions per flavour as "NetBSD: 4", or "none"."""
    return ", ".join(f"{os_title(fl)}: {len(r)}" for fl, r in skipped.items()) or "none"


def render_markdown(surface: Surface) -> str:
    """The surface report: every selection, order and cell is made here; the template lays out tables."""
    src = surface.upstream.source
    note = (f", {src['url']}" if src.get("url") else "") + (f" @ `{src['commit'][:12]}`" if src.get("commit") else "") \
        + (f", imported {surface.upstream.imported}" if surface.upstream.imported else "")
    oses = surface.upstream.oses
    groups: dict[str, list[list[str]]] = {}
    for p in surface.primitives:
        groups.setdefault(p.group, []).append(_primitive_row(p, oses))
    foreign = surface.foreign_groups()
    order = sorted(foreign, key=lambda g: (g in (UNKNOWN, MEMBERS), g))
    per_flavour = {fl: sum(1 for f in surface.foreign_identifiers if fl in f.flavours) for fl in oses}
    vps = [[f"`{v.id}`", f"{v.line_start}–{v.line_end}", v.function or "top level", f"`{v.condition}`",
            " / ".join("+".join(os_title(o) for o in b.oses) or "none" for b in v.branches)
            + (" (nested)" if v.nested_in else "")]
           for v in surface.outside_contract]
    coverage = [[f"`{c.file}`", c.language, c.method, f"{len(c.parsed_by)} TU(s)", _counts(c.diagnostics),
                 str(c.undeclared), _regions(c.skipped_regions)] for c in surface.coverage]
    return render_template(
        "report/surface.md.j2",
        upstream={"name": surface.upstream.name, "layout": surface.upstream.layout, "note": note},
        contract_file=surface.contract_file, summary=surface.summary(), os_titles=[os_title(o) for o in oses],
        per_flavour=[f"{os_title(fl)} flavour {n}" for fl, n in per_flavour.items()],
        prim_groups=list(groups.items()), contract_compat=[f"`{n}`" for n in surface.contract_compat],
        variation_points=vps,
        foreign_groups=[(g, [[f"`{f.name}`", str(f.uses), ", ".join(os_title(o) for o in f.flavours), f.where]
                             for f in foreign[g]]) for g in order],
        coverage=coverage,
        glue=[[os_title(g.os), ", ".join(f"`{f}`" for f in g.files), str(len(g.defined)),
               ", ".join(f"`{n}`" for n in g.missing) or "none"] for g in surface.glue],
    )
