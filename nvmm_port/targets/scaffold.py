"""``gen.py new-target`` and ``gen.py surface``: start a spec, and see what it still lacks."""

from __future__ import annotations

import tomllib
from typing import Any

from .. import tomlw
from ..analysis.identity import primitive_fingerprint, vp_fingerprint
from ..analysis.model import Surface
from ..errors import DiagnosticsError, PortError
from ..project import Project
from ..templating import render as render_template
from . import todos
from .spec import (
    TargetSpec,
    block_primitives,
    enclosing_primitive,
    needs_private,
    validate,
)


def _semantics(project: Project) -> dict[str, str]:
    path = project.shim_dir / "contract.toml"
    if not path.is_file():
        return {}
    semantics: dict[str, str] = tomllib.loads(path.read_text()).get("semantics", {})
    return semantics


def scaffold(project: Project, name: str, surface: Surface, macro: str | None) -> dict[str, str]:
    """target.toml of a new spec: a TODO entry per primitive and per variation point the spec must
    fill, each after what it means, where upstream uses it and the TOML that fills it (todos.py)."""
    sem = _semantics(project)
    prims = [{"key": tomlw.key(p.name), "fingerprint": primitive_fingerprint(p),
              "note": todos.primitive_note(p, sem.get(p.name), name, surface.upstream.oses)}
             for p in surface.primitives if not p.private_to]
    vps = []
    for v in surface.variation_points:
        if v.in_contract and block_primitives(v, surface):
            continue     # rendered from the primitives' entries
        if enclosing_primitive(v, surface):
            continue     # inside a primitive defined once for every OS (its body fills it)
        vps.append({"key": tomlw.key(v.id), "fingerprint": vp_fingerprint(v), "note": todos.vp_note(v, surface, name)})
    text = render_template(
        "spec/new-target.toml.j2", name=name, os_name=name.replace("-", "_").replace(".", "_"),
        macro=macro or f"__{name}__", surface=surface, prims=prims, vps=vps)
    return {"target.toml": text}


def surface_report(spec: TargetSpec, surface: Surface, project: Project) -> dict[str, Any]:
    """What the spec provides, what it lacks, which compat headers it will emit, and every error
    of the validation ``gen.py generate`` runs (:func:`~.spec.validate`, then the compat headers
    of a complete spec): ``complete`` here means generate accepts the spec."""
    errors = [str(d) for d in validate(spec, surface) if d.group is None]
    provided: dict[str, list[str]] = {}
    lacking: list[str] = []
    for p in surface.primitives:
        e = spec.primitives.get(p.name)
        if e is None and p.private_to and not needs_private(spec, p, surface):
            provided.setdefault("not needed (private to " + "/".join(p.private_to) + ")", []).append(p.name)
        elif e is None:
            lacking.append(f"primitive {p.name}: no entry")
        elif e.todo is not None:
            lacking.append(f"primitive {p.name}: TODO ({e.todo})")
        else:
            how = "native" if e.native else ("external" if e.external else (e.kind or "no kind"))
            provided.setdefault(how, []).append(p.name)
    vp_forms: dict[str, list[str]] = {}
    for v in surface.variation_points:
        ve = spec.variation_points.get(v.id)
        if ve is None:
            if v.in_contract and block_primitives(v, surface):
                vp_forms.setdefault("rendered from primitives", []).append(v.id)
                continue
            if enclosing_primitive(v, surface):
                vp_forms.setdefault("body of its primitive", []).append(v.id)
                continue
            lacking.append(f"variation point {v.id}: no entry")
        elif ve.todo is not None:
            lacking.append(f"variation point {v.id}: TODO")
        else:
            form = next((k for k in ("same_as", "code", "omit", "items") if getattr(ve, k)), "file")
            vp_forms.setdefault(form, []).append(v.id)
    compat: list[str] = []
    exact = not lacking and not errors
    if exact:
        # a valid, complete spec: exactly what generate emits (names on lines the target compiles)
        from ..analysis.analyze import load_upstream
        from .generate import render_tree
        _, cache, _ = load_upstream(project, surface.upstream.name)
        try:
            compat = sorted(p[len("compat/"):] for p in render_tree(project, spec, surface, cache, False).files
                            if p.startswith("compat/"))
        except DiagnosticsError as exc:
            errors.extend(str(d) for d in exc.errors)
        except PortError as exc:
            errors.append(exc.one_line())
            errors.extend(exc.details)
    elif spec.compat.emit:
        # incomplete: approximate with every name of the base flavour
        from ..analysis.catalog import Catalog
        from . import compat as gen_compat
        catalog = Catalog.load(project.shim_dir / "bsd" / "catalog.toml")
        needed = gen_compat.needed_names(surface.foreign_identifiers, flavour=spec.base) | spec.compat_needs
        try:
            compat = sorted(gen_compat.render_compat(catalog, needed, spec.provides, "kernel", ""))
        except gen_compat.MissingNames as exc:
            if lacking:         # early news for a spec being filled; noise next to a complete one's errors
                lacking.extend(f"compat (approximate): {i.name}{i.uses} {i.problem}" for i in exc.items)
        except PortError as exc:
            if lacking:
                lacking.append(f"compat (approximate): {exc.message}")
    return {"target": spec.name, "provided": provided, "variation_points": vp_forms, "lacking": lacking,
            "errors": errors, "compat_headers": compat, "compat_exact": exact}
