"""TargetSpec: how a target kernel provides the os_* contract and fills each variation point.

A spec is a directory ``shim/<target>/`` holding ``target.toml`` and the C fragment files it
names.  ``target.toml``::

    [target]
    name = "linux"              # the spec's name
    os = "linux"                # the OS key used in definitions (netbsd, dragonfly, linux, haiku, ...)
    macro = "__linux__"         # the macro the compiler defines for that OS
    base = "netbsd"             # the upstream flavour whose BSD names the compat layer supplies
    description = "..."

    [build]
    system = "kbuild"           # kbuild | jam | bsdmake | none
    cflags = []

    [provides]                  # BSD names the target kernel itself provides (no compat entry)
    names = []

    [glue]                      # the target's glue source: out-of-line primitives + device glue
    includes = ["<linux/module.h>"]
    files = ["glue/device.c"]   # fragments appended after the out-of-line primitives
    headers = ["glue/x.h"]      # the target's own headers, copied into driver/

    [primitives.os_mtx_lock]    # one table per primitive of the contract
    kind = "function-like macro"
    params = ["lock"]
    body = "mutex_lock(lock)"

    [primitives.os_vmspace_fault]
    kind = "out-of-line function"
    file = "primitives/os_vmspace_fault.c"   # the complete C definition, checked against the contract

    [variation_points."driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run#2"]
    same_as = "netbsd"          # or: code = "...", file = "vp/x.c", omit = true, items = [...]

Any entry may carry ``todo = "..."`` instead of its content: ``gen.py new-target`` writes those,
and ``gen.py generate`` refuses a spec that still has any.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import cdecl
from ..errors import PortError
from ..analysis.model import FUNCTION_MACRO, OBJECT_MACRO, OUT_OF_LINE, PRIMITIVE_KINDS, STATIC_INLINE, TYPEDEF, Surface

BUILD_SYSTEMS = ("kbuild", "jam", "bsdmake", "none")
VP_FORMS = ("same_as", "code", "file", "omit", "items")


@dataclass
class PrimitiveSpec:
    name: str
    kind: str | None
    todo: str | None = None
    params: list[str] | None = None      # function-like macros: parameter names; inline/prototype: declarations
    body: str | None = None              # macro body, or the statements of a static inline
    type: str | None = None              # typedef: the type
    declaration: str | None = None       # typedef/prototype written out in full (overrides type/params)
    returns: str | None = None           # static inline / out-of-line prototype in a contract block
    file: str | None = None              # out-of-line: the fragment holding the complete definition
    external: bool = False               # out-of-line: implemented outside the generated tree
    native: bool = False                 # the target kernel provides the name itself; the contract defines nothing
    source: str = ""                     # fragment text (loaded)
    where: str = ""                      # "target.toml [primitives.NAME]" for messages


@dataclass
class VPSpec:
    id: str
    todo: str | None = None
    same_as: str | None = None
    code: str | None = None
    file: str | None = None
    omit: bool = False
    items: list[str] | None = None      # contract blocks: "@primitive" or raw text, in order
    where: str = ""


@dataclass
class TargetSpec:
    dir: Path
    name: str
    os: str
    macro: str
    base: str
    description: str
    build: dict[str, Any]
    provides: set[str]
    glue: dict[str, Any]
    glue_sources: list[tuple[str, str]]          # (fragment path, text)
    glue_headers: list[tuple[str, str]]          # headers copied into driver/ (the target's own API)
    device: dict[str, Any]
    compat_needs: set[str]
    primitives: dict[str, PrimitiveSpec]
    variation_points: dict[str, VPSpec]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    bridge_sources: list[tuple[str, str]] = field(default_factory=list)   # ours, compiled in upstream's world
    common_files: list[tuple[str, str]] = field(default_factory=list)     # (shim/common/<x>/file, text)

    @property
    def toml_path(self) -> Path:
        return self.dir / "target.toml"

    def digest(self) -> str:
        """sha256 over every file of the spec directory (what PROVENANCE records)."""
        h = hashlib.sha256()
        for p in sorted(self.dir.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(self.dir).as_posix().encode() + b"\0")
                h.update(p.read_bytes())
        return h.hexdigest()

    def todos(self) -> dict[str, list[str]]:
        """Entries still marked TODO, grouped: primitives, variation points."""
        out: dict[str, list[str]] = {"primitives": [], "variation points": []}
        for p in self.primitives.values():
            if p.todo is not None:
                out["primitives"].append(f"{p.name}: {p.todo}")
        for v in self.variation_points.values():
            if v.todo is not None:
                out["variation points"].append(f"{v.id}: {v.todo}")
        return {k: v for k, v in out.items() if v}


# ---------------------------------------------------------------------------
# Loading


def resolve_target(project, target: str) -> Path:
    """A target name under shim/, or the path of a spec directory."""
    p = Path(target)
    if (p / "target.toml").is_file():
        return p.resolve()
    cand = project.shim_dir / target
    if (cand / "target.toml").is_file():
        return cand
    known = sorted(d.name for d in project.shim_dir.iterdir() if (d / "target.toml").is_file()) \
        if project.shim_dir.is_dir() else []
    raise PortError(f"unknown target '{target}'", project.shim_dir / target / "target.toml",
                    f"known targets: {', '.join(known) or 'none'}; create one with `gen.py new-target {p.name}` "
                    "or pass the path of a spec directory")


def load_spec(spec_dir: Path) -> TargetSpec:
    path = spec_dir / "target.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PortError("no target.toml", path, "create the spec with `gen.py new-target NAME`") from None
    except tomllib.TOMLDecodeError as exc:
        raise PortError(f"malformed TOML ({exc})", path, "fix the syntax") from None

    def table(key: str) -> dict[str, Any]:
        v = data.get(key, {})
        if not isinstance(v, dict):
            raise PortError(f"[{key}] must be a table", path, f"write it as [{key}]")
        return v

    tgt = table("target")
    for k in ("name", "os", "macro"):
        if not isinstance(tgt.get(k), str) or not tgt.get(k):
            raise PortError(f"[target] needs a string '{k}'", path, f'add {k} = "..." under [target]')
    build = table("build")
    system = build.get("system", "none")
    if system not in BUILD_SYSTEMS:
        raise PortError(f"[build] system = '{system}' is not one of {', '.join(BUILD_SYSTEMS)}", path,
                        "pick a build system the generator knows")
    glue = table("glue")
    glue_sources = [(rel, _fragment(spec_dir, rel, path, "[glue] files")) for rel in glue.get("files", [])]
    glue_headers = [(rel, _fragment(spec_dir, rel, path, "[glue] headers")) for rel in glue.get("headers", [])]
    bridge = [(rel, _fragment(spec_dir, rel, path, "[glue] bridge")) for rel in glue.get("bridge", [])]
    common = _common_files(spec_dir, path, glue.get("common", []))

    prims = {}
    for name, entry in table("primitives").items():
        prims[name] = _primitive(spec_dir, path, name, entry)
    vps = {}
    for vid, entry in table("variation_points").items():
        vps[vid] = _vp(spec_dir, path, vid, entry)
    provides = table("provides").get("names", [])
    needs = table("compat").get("needs", [])
    if not all(isinstance(x, str) for x in list(provides) + list(needs)):
        raise PortError("[provides] names and [compat] needs must be lists of strings", path, "fix the lists")
    return TargetSpec(spec_dir, tgt["name"], tgt["os"], tgt["macro"], tgt.get("base", "netbsd"),
                      tgt.get("description", ""), build, set(provides), glue, glue_sources, glue_headers, table("device"),
                      set(needs), prims, vps, data, bridge, common)


def _common_files(spec_dir: Path, toml_path: Path, names: list[str]) -> list[tuple[str, str]]:
    """The C sources and headers of shim/common/<name>/ (not its tests) a spec shares."""
    out = []
    for name in names:
        d = spec_dir.parent / "common" / name
        if not isinstance(name, str) or not d.is_dir():
            raise PortError(f"[glue] common names '{name}', which is not a directory of shim/common/",
                            toml_path, f"create {d} or fix the name")
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix in (".c", ".h"):
                out.append((f"common/{name}/{f.name}", f.read_text()))
    return out


def _fragment(spec_dir: Path, rel: str, toml_path: Path, key: str) -> str:
    f = spec_dir / rel
    if not f.is_file():
        raise PortError(f"{key} names '{rel}', which does not exist", toml_path,
                        f"create {f} or fix the path")
    return f.read_text()


def _primitive(spec_dir: Path, toml_path: Path, name: str, entry: Any) -> PrimitiveSpec:
    where = f"[primitives.{name}]"
    if not isinstance(entry, dict):
        raise PortError(f"{where} must be a table", toml_path, f"write it as [primitives.{name}]")
    unknown = set(entry) - {"kind", "todo", "params", "body", "type", "declaration", "returns", "file", "external",
                            "native", "note"}
    if unknown:
        raise PortError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}", toml_path,
                        "keys: kind, params, body, type, declaration, returns, file, external, native, todo, note")
    p = PrimitiveSpec(name, entry.get("kind"), entry.get("todo"), entry.get("params"), entry.get("body"),
                      entry.get("type"), entry.get("declaration"), entry.get("returns"), entry.get("file"),
                      bool(entry.get("external", False)), bool(entry.get("native", False)), where=where)
    if p.todo is not None or (p.native and p.kind is None):
        return p
    if p.kind not in PRIMITIVE_KINDS:
        raise PortError(f"{where} kind = {p.kind!r} is not one of: {', '.join(PRIMITIVE_KINDS)}", toml_path,
                        "set kind")
    need = {OBJECT_MACRO: ("body",), FUNCTION_MACRO: ("params", "body"), STATIC_INLINE: ("body",)}.get(p.kind, ())
    for k in need:
        if getattr(p, k) is None and not (k == "body" and p.file):
            raise PortError(f"{where} ({p.kind}) needs '{k}'", toml_path, f"add {k} = ...")
    if p.kind == TYPEDEF and p.type is None and p.declaration is None:
        raise PortError(f"{where} (typedef) needs 'type' or 'declaration'", toml_path, 'add type = "..."')
    if p.kind == OUT_OF_LINE and not p.external and not p.file:
        raise PortError(f"{where} (out-of-line function) needs 'file' (its C definition) or external = true",
                        toml_path, f'add file = "primitives/{name}.c"')
    if p.file:
        p.source = _fragment(spec_dir, p.file, toml_path, f"{where} file")
        if p.kind == STATIC_INLINE and p.body is None:
            p.body = p.source.rstrip("\n")
        if p.kind == OUT_OF_LINE:
            try:
                sig = cdecl.parse_signature(_first_definition_head(p.source))
            except cdecl.SignatureError as exc:
                raise PortError(f"{where}: cannot read the function in {p.file} ({exc})", toml_path,
                                "the fragment must hold the complete C definition") from None
            if sig.name != name:
                raise PortError(f"{where}: {p.file} defines {sig.name}, not {name}", toml_path,
                                "name the function after the primitive")
    return p


def _first_definition_head(source: str) -> str:
    """The declaration part of the first function definition in a fragment (comments dropped)."""
    from ..analysis.preprocessor import mask_text
    masked = mask_text(source)
    # skip preprocessor lines and the helpers before the definition whose name we check: the
    # primitive's definition is the last top-level function in the fragment
    heads = []
    depth, start = 0, 0
    for i, c in enumerate(masked):
        if c == "{":
            if depth == 0:
                heads.append(masked[start:i])
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
        elif c == ";" and depth == 0:
            start = i + 1
    if not heads:
        raise cdecl.SignatureError("no function definition")
    head = "\n".join(ln for ln in heads[-1].split("\n") if not ln.lstrip().startswith("#"))
    return head.strip() + ";"


def _vp(spec_dir: Path, toml_path: Path, vid: str, entry: Any) -> VPSpec:
    where = f'[variation_points."{vid}"]'
    if not isinstance(entry, dict):
        raise PortError(f"{where} must be a table", toml_path, f"write it as {where}")
    unknown = set(entry) - set(VP_FORMS) - {"todo", "note"}
    if unknown:
        raise PortError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}", toml_path,
                        f"keys: {', '.join(VP_FORMS)}, todo, note")
    v = VPSpec(vid, entry.get("todo"), entry.get("same_as"), entry.get("code"), entry.get("file"),
               bool(entry.get("omit", False)), entry.get("items"), where)
    if v.todo is not None:
        return v
    forms = [k for k in VP_FORMS if k in entry and not (k == "omit" and not entry[k])]
    if len(forms) != 1:
        raise PortError(f"{where} needs exactly one of {', '.join(VP_FORMS)} (has {', '.join(forms) or 'none'})",
                        toml_path, "say what the target compiles there")
    if v.file:
        v.code = _fragment(spec_dir, v.file, toml_path, f"{where} file")
    if v.items is not None and not all(isinstance(i, str) for i in v.items):
        raise PortError(f"{where} items must be strings ('@primitive' or C text)", toml_path, "fix the list")
    return v


# ---------------------------------------------------------------------------
# Checking a spec against the analysis of upstream


def check_spec(spec: TargetSpec, surface: Surface) -> None:
    """Every name the spec uses must exist upstream; nothing may be left TODO; nothing missing."""
    path = spec.toml_path
    prim_names = {p.name for p in surface.primitives}
    for name, p in spec.primitives.items():
        if name not in prim_names:
            raise PortError(f"[primitives.{name}]: '{name}' is not a primitive of {surface.upstream.name}'s "
                            f"contract", path, "remove it, or re-run `gen.py surface` to see the contract")
    vp_ids = {v.id for v in surface.variation_points}
    for vid, v in spec.variation_points.items():
        if vid not in vp_ids:
            near = [x for x in vp_ids if x.split(":")[0] == vid.split(":")[0]]
            raise PortError(f'[variation_points."{vid}"]: no such variation point in {surface.upstream.name}',
                            path, "it no longer exists upstream (or its id changed); variation points of that "
                                  f"file: {', '.join(sorted(near)) or 'none'}")
        if v.same_as is not None and v.same_as not in surface.upstream.oses:
            raise PortError(f'[variation_points."{vid}"] same_as = "{v.same_as}": upstream knows only '
                            f"{', '.join(surface.upstream.oses)}", path, "name one of those OSes")
    missing_p = [p.name for p in surface.primitives if p.name not in spec.primitives]
    missing_v = [v.id for v in surface.variation_points if v.id not in spec.variation_points
                 and not _covered_by_primitives(v, surface)]
    todos = spec.todos()
    if missing_p or missing_v or todos:
        details, counts = [], []
        for what, names in (("primitives with no entry", missing_p), ("variation points with no entry", missing_v)):
            if names:
                counts.append(f"{len(names)} {what}")
                details.append(f"{what}:")
                details.extend(f"  {n}" for n in names)
        for group, items in todos.items():
            counts.append(f"{len(items)} {group} TODO")
            details.append(f"{group} still TODO:")
            details.extend(f"  {i}" for i in items)
        raise PortError("the spec is incomplete (" + ", ".join(counts) + "); nothing was generated", path,
                        f"fill the entries listed below; `gen.py surface --target {spec.name}` shows them too",
                        details)


def _covered_by_primitives(vp, surface: Surface) -> bool:
    """A contract block that defines primitives is rendered from the primitives' entries, and a
    variation point inside a primitive defined once for every OS is filled by its body."""
    return (vp.in_contract and bool(block_primitives(vp, surface))) or enclosing_primitive(vp, surface) is not None


def enclosing_primitive(vp, surface: Surface) -> str | None:
    """The primitive defined once for every OS whose body holds ``vp`` (os_return_needed)."""
    for p in surface.primitives:
        d = p.definitions.get("all")
        if d and d.file == vp.file and d.line < vp.line_start and vp.line_end <= d.line + d.text.count("\n"):
            return p.name
    return None


def block_primitives(vp, surface: Surface) -> list[str]:
    """The primitives a contract block defines (in upstream order, any OS branch)."""
    names = []
    for p in surface.primitives:
        for d in p.definitions.values():
            if d.file == vp.file and vp.line_start < d.line < vp.line_end and p.name not in names:
                names.append(p.name)
    return names
