"""Exact C declarations with pycparser: the typed signature of a function primitive.

The contract's prototypes name BSD types (``vaddr_t``, ``os_vmobj_t``, ``struct vm_map``) that no
header here defines, so every identifier standing where a type name must stand is declared as an
opaque typedef before parsing.  The result is a plain dataclass; ``c_generator`` re-emits each type
exactly, which is what the glue generator needs to write a target's prototypes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pycparser import c_ast, c_generator, c_parser

_KEYWORDS = frozenset("""void char short int long float double signed unsigned _Bool const volatile restrict
struct union enum static inline extern register auto typedef __inline __inline__ __restrict""".split())
_IDENT = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class Param:
    name: str          # "" when the prototype leaves it unnamed
    type: str          # as C spells it, e.g. "vaddr_t *", "void (*)(void *, void *)"


@dataclass(frozen=True)
class Signature:
    name: str
    returns: str
    params: tuple[Param, ...]
    variadic: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "returns": self.returns, "params": [asdict(p) for p in self.params],
                "variadic": self.variadic}


class SignatureError(ValueError):
    pass


def _type_names(decl: str) -> set[str]:
    """Identifiers that stand where a type name must: first in a declaration (after the start,
    ``(``, ``,`` or a qualifier) and followed by a declarator, ``*``, ``(`` or the parameter's end."""
    names = set()
    for m in _IDENT.finditer(decl):
        word = m.group(0)
        if word in _KEYWORDS:
            continue
        before = decl[:m.start()].rstrip()
        words_before = _IDENT.findall(before)
        if words_before and words_before[-1] in ("struct", "union", "enum") and before.endswith(words_before[-1]):
            continue   # a tag, not a type name
        starts_decl = not before or before[-1] in "(,;" or (words_before and before.endswith(words_before[-1])
                                                             and words_before[-1] in _QUALIFIERS)
        after = decl[m.end():].lstrip()
        if starts_decl and after and (after[0] in "*(,)" or _IDENT.match(after)):
            names.add(word)
    return names


_QUALIFIERS = frozenset("static inline extern const volatile __inline __inline__".split())


def _strip_body(text: str) -> str:
    """A prototype from a declaration or a definition (drop the body and `static inline`)."""
    head = text.split("{", 1)[0].strip().rstrip(";")
    return re.sub(r"\b(static|inline|__inline|__inline__|extern)\b", " ", head).strip() + ";"


def parse_signature(text: str) -> Signature:
    proto = _strip_body(" ".join(text.split()))
    typedefs = sorted(_type_names(proto))
    src = "".join(f"typedef int {t};\n" for t in typedefs) + proto
    try:
        ast = c_parser.CParser().parse(src, filename="<prototype>")
    except Exception as exc:  # noqa: BLE001 - pycparser raises its own ParseError, and others on odd input
        raise SignatureError(f"cannot parse {proto!r}: {exc}") from None
    decl = ast.ext[-1]
    if not isinstance(decl, c_ast.Decl) or not isinstance(decl.type, c_ast.FuncDecl):
        raise SignatureError(f"not a function declaration: {proto!r}")
    gen = c_generator.CGenerator()
    func = decl.type
    params: list[Param] = []
    variadic = False
    for p in (func.args.params if func.args else []):
        if isinstance(p, c_ast.EllipsisParam):
            variadic = True
            continue
        if isinstance(p, c_ast.Typename) and gen.visit(p) == "void":
            continue
        name = getattr(p, "name", None) or ""
        params.append(Param(name, _type_string(gen, p)))
    ret = c_ast.Typename(None, [], None, func.type)
    return Signature(decl.name, _type_string(gen, ret), tuple(params), variadic)


def _type_string(gen: c_generator.CGenerator, node: c_ast.Node) -> str:
    """The type of a declaration with its name removed, spelled the way C writes an abstract type."""
    node = _anonymous(node)
    text = gen.visit(node) if not isinstance(node, c_ast.Decl) else gen._generate_type(node.type)
    return " ".join(text.replace("* ", "*").split()).replace(" *", " *")


def _anonymous(node: c_ast.Node) -> c_ast.Node:
    """A copy of a declaration's type tree without declarator names."""
    import copy
    node = copy.deepcopy(node)
    t = node.type if isinstance(node, (c_ast.Decl, c_ast.Typename)) else node
    while t is not None:
        if isinstance(t, c_ast.TypeDecl):
            t.declname = None
            break
        t = getattr(t, "type", None)
    if isinstance(node, c_ast.Decl):
        node.name = None
    return node
