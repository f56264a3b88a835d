"""Reading a ``Surface`` back from its JSON form (the analyze cache)."""

from __future__ import annotations

from typing import Any

from .model import (
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


def _definition(os_name: str, d: dict[str, Any]) -> Definition:
    file, _, line = d["location"].rpartition(":")
    return Definition(os_name, d["kind"], d["text"], file, int(line), d.get("params"), d.get("signature"))


def surface_from_json(data: dict[str, Any]) -> Surface:
    up = Upstream(**data["upstream"])
    prims = []
    for p in data["primitives"]:
        sites = []
        for where, fn in zip(p["call_sites"], p["call_site_functions"], strict=True):
            file, _, line = where.rpartition(":")
            sites.append(CallSite(file, int(line), fn, []))
        for site, oses in zip(sites, p.get("call_site_oses", [[]] * len(sites)), strict=True):
            site.os = list(oses)
        prims.append(Primitive(p["name"], p["kind"], p["group"],
                               {os: _definition(os, d) for os, d in p["definitions"].items()}, sites,
                               list(p.get("private_to", []))))
    vps = []
    for v in data["variation_points"]:
        v = dict(v)
        v["branches"] = [VPBranch(**b) for b in v["branches"]]
        vps.append(VariationPoint(**v))
    foreign = [ForeignIdentifier(**f) for f in data["foreign_identifiers"]]
    cov = [FileCoverage(**c) for c in data["coverage"]]
    compat = {n: {os: _definition(os, d) for os, d in defs.items()}
              for n, defs in data.get("contract_compat", {}).items()}
    glue = [OSGlue(**g) for g in data.get("glue", [])]
    return Surface(up, data["contract_file"], prims, vps, foreign, cov, compat, glue)
