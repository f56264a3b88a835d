"""The typed model of an upstream NVMM tree: what every generator and report reads.

  Upstream            the synced tree (lock info + files)
  Primitive           a name the OS contract header (nvmm_os.h) defines, with its
                      definition per OS branch and its call sites in the driver
  VariationPoint      an OS-conditional preprocessor block outside the contract header
  ForeignIdentifier   a name upstream uses that neither upstream nor the contract defines
  FileCoverage        how each file was parsed, what libclang said, what was skipped

Plain dataclasses; ``to_json()`` gives the documented JSON shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import preprocessor as cpp
from .sources import SourceFile, UpstreamSources

# Kinds of primitive, as a porter reads them.
TYPEDEF = "typedef"
OBJECT_MACRO = "object-like macro"
FUNCTION_MACRO = "function-like macro"
STATIC_INLINE = "static inline"
OUT_OF_LINE = "out-of-line function"
PRIMITIVE_KINDS = (TYPEDEF, OBJECT_MACRO, FUNCTION_MACRO, STATIC_INLINE, OUT_OF_LINE)


@dataclass
class Definition:
    """One OS branch's definition of a primitive."""

    os: str                  # netbsd, dragonfly, ... or "all" (outside any OS conditional)
    kind: str
    text: str                # the definition as upstream spells it for that OS
    file: str
    line: int
    params: list[str] | None = None   # function-like macros
    signature: dict[str, Any] | None = None   # functions: {name, returns, params: [{name, type}], variadic}

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "text": self.text, "location": f"{self.file}:{self.line}"}
        if self.params is not None:
            d["params"] = self.params
        if self.signature is not None:
            d["signature"] = self.signature
        return d


@dataclass
class CallSite:
    file: str
    line: int
    function: str            # enclosing function, "macro NAME", "struct NAME" or "" (top level)
    os: list[str] = field(default_factory=list)   # OS branches the site is in ([] = every OS)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Primitive:
    name: str
    kind: str
    group: str                          # the contract header's section (Locks, Memory, CPU, ...)
    definitions: dict[str, Definition]  # keyed by OS
    call_sites: list[CallSite] = field(default_factory=list)
    # OS-private: the OSes whose own code alone defines and uses it (a fork's helpers, a name only
    # NetBSD's arms call); [] for the contract proper, which every target provides
    private_to: list[str] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return bool(self.call_sites)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "group": self.group,
            "definitions": {os: d.to_json() for os, d in sorted(self.definitions.items())},
            "call_sites": [c.where for c in self.call_sites],
            "call_site_functions": [c.function for c in self.call_sites],
            "call_site_oses": [c.os for c in self.call_sites],
            "private_to": self.private_to,
        }


@dataclass
class VPBranch:
    directive: str          # "#if defined(__NetBSD__)", "#elif ...", "#else"
    condition: str
    oses: list[str]         # OSes this branch is taken for (among the OSes upstream knows)
    line_start: int         # the directive line
    line_end: int           # last line of the branch body
    text: str               # the body, verbatim

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VariationPoint:
    id: str
    file: str
    line_start: int
    line_end: int
    function: str           # enclosing function / struct / "" at top level
    scope: str              # what the id is anchored on
    condition: str          # the first branch's condition
    branches: list[VPBranch]
    nested_in: str | None = None     # id of an enclosing OS variation point
    in_contract: bool = False        # inside the contract header itself

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["branches"] = [b.to_json() for b in self.branches]
        return d


@dataclass
class ForeignIdentifier:
    name: str
    group: str              # the BSD header that provides it (catalog), or "unknown"
    uses: int               # occurrences in upstream (NetBSD flavour when it is used there)
    kind: str               # identifier | member
    flavours: list[str]     # which OS flavours of upstream use it
    files: dict[str, int]   # uses per file
    where: str              # "driver", "libnvmm", "tests" or a mix ("driver+libnvmm")
    lines: dict[str, list[int]] = field(default_factory=dict)   # use lines per file, any flavour
                            # (a use inside a macro body is counted at the #define's line)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FileCoverage:
    file: str
    language: str                   # c, header, asm, other
    parsed_by: list[str]            # "TU (flavour)" entries; [] when libclang did not read it
    method: str                     # libclang | preprocessor-scan | not-source
    diagnostics: dict[str, int]     # severity -> count
    sample_diagnostics: list[str]   # the first few, "line: message"
    undeclared: int                 # identifiers libclang reported undeclared in this file
    skipped_regions: dict[str, list[list[int]]]   # flavour -> [[start, end], ...] not compiled
    scan_errors: list[str]          # preprocessor-structure problems

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Upstream:
    name: str
    layout: str
    source: dict[str, Any]
    imported: str
    files: list[str]
    oses: list[str]                  # the OSes upstream's conditionals know

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class OSGlue:
    """An OS's own implementation files in the tree (a fork's `nvmm_haiku.cpp`), read in that OS's
    configuration (C++ as C++): which of the out-of-line primitives its contract arm declares they
    define, and which none does."""

    os: str
    files: list[str]
    defined: dict[str, str] = field(default_factory=dict)    # primitive -> file:line of its definition
    missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Surface:
    """The porting surface of one upstream: the whole analysis model."""

    upstream: Upstream
    contract_file: str
    primitives: list[Primitive]
    variation_points: list[VariationPoint]
    foreign_identifiers: list[ForeignIdentifier]
    coverage: list[FileCoverage]
    contract_compat: dict[str, dict[str, Definition]] = field(default_factory=dict)
    glue: list[OSGlue] = field(default_factory=list)
    # upstream's files (text, lines, preprocessor scan), attached by the analysis; not serialised
    sources: UpstreamSources | None = field(default=None, repr=False, compare=False)

    # ---- upstream's files

    def source(self, path: str) -> SourceFile:
        """An upstream file of this surface, with its text and preprocessor scan."""
        if self.sources is None:
            raise LookupError("this surface carries no upstream files (analyze_project and analyze_tree attach them)")
        return self.sources.get(path)

    def block(self, vp: VariationPoint) -> cpp.CondBlock:
        """The conditional block a variation point is, in its file's scan (arms = its branches)."""
        blk = self.source(vp.file).block_at(vp.line_start)
        if blk is None:
            raise LookupError(f"variation point {vp.id} is not at line {vp.line_start} of {vp.file} any more")
        return blk

    # ---- convenience views
    def primitive(self, name: str) -> Primitive:
        for p in self.primitives:
            if p.name == name:
                return p
        raise KeyError(name)

    def vp(self, vp_id: str) -> VariationPoint:
        for v in self.variation_points:
            if v.id == vp_id:
                return v
        raise KeyError(vp_id)

    @property
    def outside_contract(self) -> list[VariationPoint]:
        return [v for v in self.variation_points if not v.in_contract]

    def foreign_groups(self) -> dict[str, list[ForeignIdentifier]]:
        groups: dict[str, list[ForeignIdentifier]] = {}
        for f in self.foreign_identifiers:
            groups.setdefault(f.group, []).append(f)
        return dict(sorted(groups.items()))

    def summary(self) -> dict[str, Any]:
        used = [p for p in self.primitives if p.used]
        return {
            "primitives": len(self.primitives),
            "primitives_used": len(used),
            "call_sites": sum(len(p.call_sites) for p in self.primitives),
            "variation_points": len(self.outside_contract),
            "variation_points_in_contract": len(self.variation_points) - len(self.outside_contract),
            "foreign_identifiers": len(self.foreign_identifiers),
            "foreign_groups": {g: len(v) for g, v in self.foreign_groups().items()},
            "files": len(self.coverage),
            "files_parsed_by_libclang": sum(1 for c in self.coverage if c.parsed_by),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream.to_json(),
            "summary": self.summary(),
            "contract_file": self.contract_file,
            "primitives": [p.to_json() for p in self.primitives],
            "contract_compat": {n: {os: d.to_json() for os, d in sorted(defs.items())}
                                for n, defs in sorted(self.contract_compat.items())},
            "variation_points": [v.to_json() for v in self.variation_points],
            "foreign_identifiers": [f.to_json() for f in self.foreign_identifiers],
            "coverage": [c.to_json() for c in self.coverage],
            "glue": [g.to_json() for g in self.glue],
        }
