"""``gen.py new-target`` and ``gen.py surface``: start a spec, and see what it still lacks."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import jinja2

from .. import tomlw
from ..errors import PortError
from . import todos
from .extract import write_spec
from ..analysis.model import Surface
from .spec import TargetSpec, block_primitives, enclosing_primitive, load_spec, resolve_target


def _semantics(project) -> dict[str, str]:
    path = project.shim_dir / "contract.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text()).get("semantics", {})


def scaffold(project, name: str, surface: Surface, macro: str | None) -> dict[str, str]:
    """target.toml of a new spec: a TODO entry per primitive and per variation point the spec must
    fill, each after what it means, where upstream uses it and the TOML that fills it (todos.py)."""
    sem = _semantics(project)
    prims = [{"key": tomlw.key(p.name), "note": todos.primitive_note(p, sem.get(p.name), name, surface.upstream.oses)}
             for p in surface.primitives]
    vps = []
    for v in surface.variation_points:
        if v.in_contract and block_primitives(v, surface):
            continue     # rendered from the primitives' entries
        if enclosing_primitive(v, surface):
            continue     # inside a primitive defined once for every OS (its body fills it)
        vps.append({"key": tomlw.key(v.id), "note": todos.vp_note(v, surface, name)})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(project.templates_dir)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    text = env.get_template("spec/new-target.toml.j2").render(
        name=name, macro=macro or f"__{name}__", surface=surface, prims=prims, vps=vps)
    return {"target.toml": text}


def run_new_target_command(project, args) -> int:
    from ..analysis.analyze import analyze_project
    if not args.name.replace("-", "_").isidentifier():
        raise PortError(f"'{args.name}' is not a usable target name", project.shim_dir,
                        "use letters, digits, - and _")
    out = Path(args.output) if args.output else project.shim_dir / args.name
    if out.exists() and not args.force:
        raise PortError("the spec directory exists already", out, "pass --force to overwrite it, or pick another name")
    surface = analyze_project(project, args.upstream)
    files = scaffold(project, args.name, surface, args.macro)
    write_spec(files, out)
    spec = load_spec(out)
    todo = spec.todos()
    print(f"created {out}/target.toml: {len(todo.get('primitives', []))} primitives and "
          f"{len(todo.get('variation points', []))} variation points to fill")
    return 0


def surface_report(spec: TargetSpec, surface: Surface, project) -> dict:
    """What the spec provides, what it lacks, and which compat entries it will emit."""
    provided, lacking = {}, []
    for p in surface.primitives:
        e = spec.primitives.get(p.name)
        if e is None:
            lacking.append(f"primitive {p.name}: no entry")
        elif e.todo is not None:
            lacking.append(f"primitive {p.name}: TODO ({e.todo})")
        else:
            how = "native" if e.native else ("external" if e.external else e.kind)
            provided.setdefault(how, []).append(p.name)
    vp_forms = {}
    for v in surface.variation_points:
        e = spec.variation_points.get(v.id)
        if e is None:
            if v.in_contract and block_primitives(v, surface):
                vp_forms.setdefault("rendered from primitives", []).append(v.id)
                continue
            if enclosing_primitive(v, surface):
                vp_forms.setdefault("body of its primitive", []).append(v.id)
                continue
            lacking.append(f"variation point {v.id}: no entry")
        elif e.todo is not None:
            lacking.append(f"variation point {v.id}: TODO")
        else:
            form = next(k for k in ("same_as", "code", "omit", "items") if getattr(k == "code" and e, "code", None)
                        or (k != "code" and getattr(e, k)))
            vp_forms.setdefault(form, []).append(v.id)
    compat: list[str] = []
    exact = not lacking
    try:
        if exact:
            # complete spec: exactly what generate emits (names on lines the target compiles)
            from ..analysis.analyze import load_upstream
            from .generate import render_tree
            _, cache, _ = load_upstream(project, surface.upstream.name)
            compat = sorted(p[len("compat/"):] for p in render_tree(project, spec, surface, cache, False).files
                            if p.startswith("compat/"))
        elif spec.raw.get("compat", {}).get("emit", True):
            # incomplete: approximate with every name of the base flavour
            from . import compat as gen_compat
            from ..analysis.catalog import Catalog
            catalog = Catalog.load(project.shim_dir / "bsd" / "catalog.toml")
            needed = gen_compat.needed_names(surface.foreign_identifiers, flavour=spec.base) | spec.compat_needs
            compat = sorted(gen_compat.render_compat(catalog, needed, spec.provides, "kernel", ""))
    except PortError as exc:
        lacking.append(f"compat: {exc.message}")
    return {"target": spec.name, "provided": provided, "variation_points": vp_forms, "lacking": lacking,
            "compat_headers": compat, "compat_exact": exact}


def run_surface_command(project, args) -> int:
    import json
    from ..analysis.analyze import analyze_project
    spec = load_spec(resolve_target(project, args.target))
    surface = analyze_project(project, args.upstream)
    rep = surface_report(spec, surface, project)
    if args.format == "json":
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
        return 0
    print(f"target {rep['target']} against upstream {surface.upstream.name}")
    for how, names in sorted(rep["provided"].items()):
        print(f"  provides {len(names):3d} primitive(s) as {how}")
    for form, ids in sorted(rep["variation_points"].items()):
        print(f"  fills    {len(ids):3d} variation point(s) by {form}")
    print(f"  emits    {len(rep['compat_headers'])} compat header(s)"
          f"{'' if rep['compat_exact'] else ' (approximate until the spec is complete)'}"
          f"{': ' if rep['compat_headers'] else ''}" + ", ".join(rep["compat_headers"]))
    if rep["lacking"]:
        print(f"  lacks    {len(rep['lacking'])} entr{'y' if len(rep['lacking']) == 1 else 'ies'}:")
        for line in rep["lacking"]:
            print(f"    {line}")
        return 1
    print("  complete")
    return 0
