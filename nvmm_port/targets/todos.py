"""What ``gen.py new-target`` writes above each TODO entry of a new spec.

For a primitive: what it means (``shim/contract.toml``), its contract (the macro's parameters, the
function's exact signature), where upstream defines it and where the driver uses it (call sites,
with their functions), and the TOML to write, one block per form its kind allows.  For a
variation point: where it is, what each of upstream's arms does in one sentence and which OS macros
it tests, and the ``same_as`` / ``code`` / ``file`` / ``omit`` forms.

The sentences about upstream's arms are built from their structure only (headers included, macros
and functions defined, functions and primitives called, variables assigned): the scaffold names
upstream's code, it never quotes it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from .. import tomlw
from ..analysis import preprocessor as cpp
from ..analysis.model import (
    FUNCTION_MACRO,
    OBJECT_MACRO,
    OUT_OF_LINE,
    STATIC_INLINE,
    TYPEDEF,
    Definition,
    Primitive,
    Surface,
    VariationPoint,
    VPBranch,
)

Q = "'" * 3         # a TOML literal multi-line string's quotes
WIDTH = 100         # comment lines wrap before this column
NAMES_MAX = 6       # names listed in a sentence before "and N more"
SITES_MAX = 8       # call sites listed

_NOT_CALLS = {"if", "for", "while", "switch", "return", "sizeof", "defined", "do", "else", "case", "goto",
              "__attribute__", "__typeof__", "typeof", "__asm", "__asm__", "asm", "__volatile__", "volatile",
              "_Static_assert", "__builtin_expect", "__predict_false", "__predict_true", "__unused"}


@dataclass
class Form:
    """One way to fill an entry: its TOML lines (each with an optional comment) after an intro."""
    intro: str
    lines: list[tuple[str, str]] = field(default_factory=list)

    def intro_lines(self) -> list[str]:
        return wrap(self.intro)

    def rendered(self) -> list[str]:
        """The TOML lines with their comments aligned on one tab stop (as comment text)."""
        width = max((len(t) for t, c in self.lines if c), default=0)
        col = (width // 4 + 1) * 4
        return [f"{t}{' ' * (col - len(t))}# {c}" if c else t for t, c in self.lines]


@dataclass
class Note:
    """The comment block and TODO of one entry of the scaffolded spec."""
    about: list[str]            # comment lines (without "# ") before the forms
    forms: list[Form]
    todo: str                   # the value of the entry's todo key, as TOML


def names(items: list[str], limit: int = NAMES_MAX) -> str:
    """a, b and c; at most ``limit`` names, then "and N more"."""
    items = list(dict.fromkeys(items))
    if len(items) > limit:
        return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def wrap(text: str, first: str = "", indent: str = "  ") -> list[str]:
    """``first + text`` as comment lines shorter than WIDTH, continuation lines after ``indent``."""
    out: list[str] = []
    line = first
    for word in text.split(" "):
        if line.strip() and len(line) + 1 + len(word) > WIDTH - 2:
            out.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line.strip() else line + word
    out.append(line)
    return out


# ---------------------------------------------------------------------------
# Primitives


def _declarator(ctype: str, name: str) -> str:
    """A parameter declaration from its type and name: ``void (*)(void *)`` + ``f`` → ``void (*f)(void *)``."""
    if not name:
        return ctype
    if "(*" in ctype:
        return ctype.replace("(*", f"(*{name}", 1)
    if "[" in ctype:
        at = ctype.index("[")
        return f"{ctype[:at].rstrip()} {name}{ctype[at:]}"
    return f"{ctype}{'' if ctype.endswith('*') else ' '}{name}"


def signature(d: Definition, name: str) -> str | None:
    """``returns name(params)`` of a function definition or prototype, as the contract declares it."""
    sig = d.signature
    if not sig:
        return None
    params = [_declarator(x["type"], x.get("name", "")) for x in sig["params"]]
    if sig.get("variadic"):
        params.append("...")
    returns = sig["returns"]
    sep = "" if returns.endswith("*") else " "
    return f"{returns}{sep}{name}({', '.join(params) or 'void'})"


def _contract(p: Primitive) -> str:
    """What upstream's contract says of the primitive's shape (per OS when they differ)."""
    shapes: dict[str, list[str]] = {}
    for os_name, d in sorted(p.definitions.items()):
        if d.kind in (OUT_OF_LINE, STATIC_INLINE):
            shape = signature(d, p.name) or p.name
        elif d.kind == FUNCTION_MACRO:
            shape = f"#define {p.name}({', '.join(d.params or [])})"
        elif d.kind == OBJECT_MACRO:
            shape = f"#define {p.name}"
        else:
            shape = f"a type named {p.name}"
        shapes.setdefault(shape, []).append(os_name)
    if len(shapes) == 1:
        return next(iter(shapes))
    return "; ".join(f"{' and '.join(oses)}: {shape}" for shape, oses in shapes.items())


def _defined(p: Primitive, oses: list[str]) -> str:
    if "all" in p.definitions:
        d = p.definitions["all"]
        return f"upstream defines it once for every OS, at {d.file}:{d.line}"
    where = [f"{os_name} at {d.file}:{d.line}" for os_name, d in sorted(p.definitions.items())]
    text = "upstream defines it for " + names(where, len(where))
    missing = [o for o in oses if o not in p.definitions]
    if missing:
        text += f"; {names(missing)}'s kernel provides it itself (native there)"
    return text


def _uses(p: Primitive) -> str:
    if not p.call_sites:
        return "used at 0 site(s): only the contract header itself names it"
    sites = [c.where + (f" in {c.function}" if c.function else "") for c in p.call_sites]
    shown = ", ".join(sites[:SITES_MAX]) + (f" and {len(sites) - SITES_MAX} more" if len(sites) > SITES_MAX else "")
    return f"used at {len(sites)} site(s): {shown}"


def _main_definition(p: Primitive) -> Definition:
    return min(p.definitions.values(), key=lambda d: (d.line, d.os))


def primitive_forms(p: Primitive, target: str) -> list[Form]:
    """The TOML forms the primitive's kind allows, with its exact shape filled in."""
    d = _main_definition(p)
    native = Form(f"or, when the {target} kernel defines {p.name} itself (the contract then defines nothing):",
                  [("native = true", "")])
    sig = d.signature or {}
    params = [_declarator(x["type"], x.get("name", "")) for x in sig.get("params", [])]
    pnames = [x.get("name") or f"arg{i}" for i, x in enumerate(sig.get("params", []))]
    if p.kind == TYPEDEF:
        return [Form("a typedef:", [(f"kind = {tomlw.value(TYPEDEF)}", ""),
                                    ('type = "..."', f"typedef <type> {p.name};")]),
                Form("or written out in full (function-pointer or array types):",
                     [(f"kind = {tomlw.value(TYPEDEF)}", ""), (f'declaration = "typedef ... {p.name};"', "")]),
                native]
    if p.kind == OBJECT_MACRO:
        return [Form("a macro:", [(f"kind = {tomlw.value(OBJECT_MACRO)}", ""),
                                  ('body = "..."', f"#define {p.name} <body>")]),
                native]
    if p.kind == FUNCTION_MACRO:
        mparams = d.params or []
        return [Form("a macro:", [(f"kind = {tomlw.value(FUNCTION_MACRO)}", ""),
                                  (f"params = {tomlw.value(mparams)}", ""),
                                  ('body = "..."', f"#define {p.name}({', '.join(mparams)}) <body>")]),
                native]
    if p.kind == STATIC_INLINE and "all" in p.definitions:
        return [Form(f"one function for every OS with an OS conditional inside: write {target}'s arm of its body:",
                     [(f"kind = {tomlw.value(STATIC_INLINE)}", ""),
                      ('body = "\\t..."', f"statements of {signature(d, p.name) or p.name}")])]
    if p.kind == STATIC_INLINE:
        return [Form("a static inline in nvmm_os.h:",
                     [(f"kind = {tomlw.value(STATIC_INLINE)}", ""),
                      (f"returns = {tomlw.value(sig.get('returns', ''))}", ""),
                      (f"params = {tomlw.value(params)}", ""),
                      ('body = "\\t..."', "the statements between its braces")]),
                Form("or a macro, when every use is a plain call:",
                     [(f"kind = {tomlw.value(FUNCTION_MACRO)}", ""), (f"params = {tomlw.value(pnames)}", ""),
                      ('body = "..."', "")]),
                native]
    # out-of-line
    sig_text = signature(d, p.name) or p.name
    own = [(f"kind = {tomlw.value(OUT_OF_LINE)}", ""),
           (f"file = {tomlw.value(f'primitives/{p.name}.c')}", "its complete definition, as the contract declares it")]
    if "all" not in p.definitions:
        own.append((f"declaration = {tomlw.value(sig_text + ';')}", "the prototype in nvmm_os.h"))
    return [Form("a C function in the glue (the generator checks it against the contract's prototype):", own),
            Form(f"or implemented outside the generated tree (declared by {p.name}'s prototype only):",
                 [(f"kind = {tomlw.value(OUT_OF_LINE)}", ""), ("external = true", "")])]


def primitive_note(p: Primitive, meaning: str | None, target: str, oses: list[str]) -> Note:
    about = wrap(f"{p.kind}, {p.group}: {meaning or 'no meaning in shim/contract.toml yet: see its call sites'}")
    about += wrap(f"contract: {_contract(p)}")
    about += wrap(_defined(p, oses))
    about += wrap(_uses(p))
    return Note(about, primitive_forms(p, target), tomlw.value(f"provide {p.name} ({p.kind})"))


# ---------------------------------------------------------------------------
# Variation points


def _tested(b: VPBranch) -> list[str]:
    """The macros a branch's condition tests (an #else tests none)."""
    kind = b.directive.lstrip("#").split()[0] if b.directive else "else"
    if kind == "else":
        return []
    try:
        found = cpp.names_in(cpp.parse_condition(kind, b.condition))
    except cpp.ConditionError:
        found = set(re.findall(r"\b[A-Za-z_]\w*\b", b.condition)) - {"defined"}
    return sorted(found)


def describe_arm(scan: cpp.FileScan, primitives: set[str], asm: bool = False, struct: bool = False) -> str:
    """One sentence on what a block of upstream code (its scan) does, from its structure alone."""
    if not scan.text.strip():
        return "is empty: nothing is compiled there"
    parts: list[str] = []
    if scan.includes:
        parts.append("includes " + names([f"<{p}>" if angle else f'"{p}"' for _, p, angle in scan.includes]))
    macros = [d.name + ("()" if d.params is not None else "") for d in scan.defines]
    if macros:
        parts.append("defines " + ("macro " if len(macros) == 1 else "macros ") + names(macros))
    undefs = [d.args.split()[0] for d in scan.directives if d.name == "undef" and d.args.split()]
    if undefs:
        parts.append("undefines " + names(undefs))
    if any(d.name == "error" for d in scan.directives):
        parts.append("stops the build with #error")
    if any(blk.is_os_conditional for blk in scan.blocks):
        parts.append("holds OS conditionals of its own")
    directive_lines: set[int] = set()
    for d in scan.directives:
        directive_lines.update(range(d.line, d.end_line + 1))
    code = "\n".join(ln for i, ln in enumerate(scan.masked.split("\n"), 1) if i not in directive_lines)
    if not code.strip():
        return "; ".join(parts) or "holds only comments"
    if asm:
        n = sum(1 for ln in code.split("\n") if ln.strip())
        parts.append(f"has {n} line{'s' if n != 1 else ''} of assembly")
        return "; ".join(parts)
    defined_here = {d.name for d in scan.defines}
    functions = _function_definitions(code)
    if functions:
        parts.append("defines function " + names(functions) if len(functions) == 1
                     else "defines functions " + names(functions))
    types = re.findall(r"\btypedef\b[^;]*?\b(\w+)\s*(?:\[[^\]]*\]\s*)*;", code)
    if types:
        parts.append("declares type " + names(types))
    if struct:
        members = [m for m in re.findall(r"\b(\w+)\s*(?:\[[^\]]*\]\s*)*;", code) if m not in types]
        if members:
            parts.append("declares member " + names(members) if len(members) == 1
                         else "declares members " + names(members))
    calls = [n for n in re.findall(r"\b([A-Za-z_]\w*)\s*\(", code)
             if n not in _NOT_CALLS and n not in defined_here and n not in functions]
    prims = [n for n in calls if n in primitives]
    others = [n for n in calls if n not in primitives]
    used = [n for n in re.findall(r"\b([A-Za-z_]\w*)\b", code) if n in primitives and n not in prims]
    if prims or used:
        parts.append("uses primitive" + ("s " if len(set(prims + used)) > 1 else " ") + names(prims + used))
    if others:
        parts.append("calls " + names(others))
    assigned = re.findall(r"(?<![=!<>+\-*/%&|^])\b([A-Za-z_]\w*(?:(?:->|\.)\w+)*)\s*(?:[-+*/|&^]|<<|>>)?=(?!=)", code)
    if assigned:
        parts.append("assigns " + names(assigned))
    for word, what in (("return", "returns"), ("break", "leaves the loop"), ("goto", "jumps")):
        if re.search(rf"\b{word}\b", code):
            parts.append(what)
    if not parts:
        n = sum(1 for ln in code.split("\n") if ln.strip())
        parts.append(f"holds {n} line{'s' if n != 1 else ''} of declarations or expressions")
    return "; ".join(parts)


def _function_definitions(code: str) -> list[str]:
    """Names of functions defined at the top level of a block of C."""
    out = []
    depth = 0
    for m in re.finditer(r"[{}]|\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*(?=\{)", code):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
        elif depth == 0 and m.group(1) not in _NOT_CALLS:
            out.append(m.group(1))
    return out


def vp_file_suggestion(v: VariationPoint) -> str:
    ext = posixpath.splitext(v.file)[1] or ".c"
    stem = posixpath.splitext(posixpath.basename(v.file))[0]
    scope = re.sub(r"[^A-Za-z0-9]+", "_", v.id.split(":", 1)[1]).strip("_")
    return f"vp/{stem}-{scope}{ext}"


def vp_note(v: VariationPoint, surface: Surface, target: str) -> Note:
    prims = {p.name for p in surface.primitives}
    where = f"{v.file}:{v.line_start}-{v.line_end}" + (f" in {v.function}" if v.function else " at top level")
    about = wrap(where + (f"; inside variation point {v.nested_in}" if v.nested_in else ""))
    about.append("upstream's arms:")
    taken: dict[str, int] = {}
    asm = v.file.endswith((".S", ".s"))
    src, blk = surface.source(v.file), surface.block(v)
    for n, (b, br) in enumerate(zip(v.branches, blk.branches, strict=True), 1):
        for os_name in b.oses:
            taken.setdefault(os_name, n)
        kind = b.directive.split()[0] if b.directive else "#else"
        tests = _tested(b)
        head = f"{n}. {kind}" + (f", tests {names(tests)}" if tests else "") + \
            (f"; {names(b.oses)} compile{'s' if len(b.oses) == 1 else ''} it" if b.oses
             else "; no OS upstream knows takes it")
        sentence = describe_arm(src.arm_scan(br), prims, asm=asm, struct=v.function.startswith("struct "))
        about += wrap(f"{head}: {sentence}.", "  ", "     ")
    forms = Form("write one of:")
    for os_name in surface.upstream.oses:
        note = f"compile what {os_name} compiles here (arm {taken[os_name]})" if os_name in taken \
            else f"like {os_name}, compile nothing here"
        forms.lines.append((f"same_as = {tomlw.value(os_name)}", note))
    forms.lines += [("omit = true", "compile nothing here"),
                    (f"file = {tomlw.value(vp_file_suggestion(v))}", f"the C {target} compiles here, from a spec file")]
    inline = Form("or that C written here:", [(f"code = {Q}", ""), ("...", ""), (Q, "")])
    return Note(about, [forms, inline], tomlw.value("fill with same_as, omit, file or code (forms above)"))
