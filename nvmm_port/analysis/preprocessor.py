"""Preprocessor structure of a C, header or assembly file, without expanding anything.

This is what variation points are made of: every ``#if``/``#ifdef``/``#ifndef``
block with its ``#elif``/``#else`` branches (nested blocks included), every
``#define`` with its parameters and body, every ``#include``.  It also
evaluates conditions for a given set of known macros with three-valued logic
(true / false / unknown), which gives the code a given OS compiles
(unifdef semantics: only the macros you name are resolved).

The scanner works on a *masked* copy of the text in which comments and the
contents of string and character literals are blanked out (newlines kept),
so a ``#if`` inside a comment is not a directive and identifiers in strings
are not identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Macros whose mention makes a conditional OS-dependent.
OS_MACROS = {
    "__NetBSD__": "netbsd",
    "__NetBSD_Prereq__": "netbsd",
    "__NetBSD_Version__": "netbsd",
    "__DragonFly__": "dragonfly",
    "__DragonFly_version": "dragonfly",
    "__FreeBSD__": "freebsd",
    "__OpenBSD__": "openbsd",
    "__HAIKU__": "haiku",
    "__linux__": "linux",
    "__APPLE__": "darwin",
}

# The macro each OS is detected by (the one an #elif arm for that OS tests).
OS_DETECT_MACRO = {
    "netbsd": "__NetBSD__",
    "dragonfly": "__DragonFly__",
    "freebsd": "__FreeBSD__",
    "openbsd": "__OpenBSD__",
    "haiku": "__HAIKU__",
    "linux": "__linux__",
    "darwin": "__APPLE__",
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*([A-Za-z_]+)?(.*)$", re.S)


# --------------------------------------------------------------------------
# Masking comments and literals


class UnterminatedComment(ValueError):
    """A ``/*`` comment runs to the end of the file (a truncated file, typically)."""

    def __init__(self, line: int):
        self.line = line
        super().__init__(f"comment opened on line {line} is never closed")


def mask_text(text: str, asm: bool = False) -> str:
    """Blank out comments and the insides of string/char literals.

    Newlines and every other character position are preserved, so offsets
    and line numbers in the masked text are those of the original.  In
    assembly (``asm=True``) a quote does not start a literal unless it is a
    double quote (``'`` appears in AT&T character constants rarely and in
    comments often).
    """
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            if j < 0:
                raise UnterminatedComment(text.count("\n", 0, i) + 1)
            j += 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            j = i
            while j < n and text[j] != "\n":
                # a line comment continues over a backslash-newline
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "\n":
                    out[j] = " "
                    j += 2
                    continue
                out[j] = " "
                j += 1
            i = j
        elif c == '"' or (c == "'" and not asm):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n:
                    if text[j + 1] != "\n":
                        out[j + 1] = " "
                    out[j] = " "
                    j += 2
                    continue
                out[j] = " "
                j += 1
            i = j + 1
        else:
            i += 1
    return "".join(out)


# --------------------------------------------------------------------------
# Condition expressions


@dataclass(frozen=True)
class Defined:
    name: str


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Number:
    value: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Ternary:
    cond: Expr
    then: Expr
    other: Expr


Expr = Defined | Ident | Number | Call | Unary | Binary | Ternary


class ConditionError(ValueError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F]+|\d+)[uUlL]*|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|<<|>>|[!~()<>+\-*/%&|^?:,]))"
)

_BINARY_PRECEDENCE = [
    ("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="),
    ("<<", ">>"), ("+", "-"), ("*", "/", "%"),
]


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, toks = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ConditionError(f"cannot parse condition near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group("num"):
            toks.append(("num", m.group("num")))
        elif m.group("id"):
            toks.append(("id", m.group("id")))
        elif m.group("op"):
            toks.append(("op", m.group("op")))
    return toks


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ConditionError(f"expected {value or 'a token'}, got {tok[1] if tok else 'end of condition'}")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        e = self.ternary()
        if (tok := self.peek()) is not None:
            raise ConditionError(f"unexpected {tok[1]!r}")
        return e

    def ternary(self) -> Expr:
        c = self.binary(0)
        if self.peek() == ("op", "?"):
            self.take("?")
            a = self.ternary()
            self.take(":")
            b = self.ternary()
            return Ternary(c, a, b)
        return c

    def binary(self, level: int) -> Expr:
        if level == len(_BINARY_PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in _BINARY_PRECEDENCE[level]:
            self.take()
            left = Binary(tok[1], left, self.binary(level + 1))
        return left

    def unary(self) -> Expr:
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("!", "~", "-", "+"):
            self.take()
            return Unary(tok[1], self.unary())
        return self.primary()

    def primary(self) -> Expr:
        tok = self.take()
        if tok == ("op", "("):
            e = self.ternary()
            self.take(")")
            return e
        if tok[0] == "num":
            return Number(int(tok[1].rstrip("uUlL"), 0))
        if tok[0] == "id":
            if tok[1] == "defined":
                if self.peek() == ("op", "("):
                    self.take("(")
                    name = self.take()[1]
                    self.take(")")
                else:
                    name = self.take()[1]
                return Defined(name)
            if self.peek() == ("op", "("):
                self.take("(")
                args: list[str] = []
                depth = 0
                cur: list[str] = []
                while True:
                    t = self.take()
                    if t == ("op", "(") :
                        depth += 1
                    elif t == ("op", ")"):
                        if depth == 0:
                            break
                        depth -= 1
                    if t == ("op", ",") and depth == 0:
                        args.append(" ".join(cur))
                        cur = []
                    else:
                        cur.append(t[1])
                if cur:
                    args.append(" ".join(cur))
                return Call(tok[1], tuple(args))
            return Ident(tok[1])
        raise ConditionError(f"unexpected {tok[1]!r}")


def parse_condition(kind: str, text: str) -> Expr:
    """Parse the condition of a directive (``if``, ``elif``, ``ifdef``, ``ifndef``)."""
    text = text.strip()
    if kind in ("ifdef", "ifndef"):
        m = _IDENT.match(text)
        if not m:
            raise ConditionError(f"#{kind} needs a macro name")
        e: Expr = Defined(m.group(0))
        return Unary("!", e) if kind == "ifndef" else e
    if not text:
        raise ConditionError(f"#{kind} without a condition")
    return _Parser(text).parse()


def names_in(expr: Expr) -> set[str]:
    """Every macro name a condition mentions."""
    if isinstance(expr, (Defined, Ident)):
        return {expr.name}
    if isinstance(expr, Call):
        return {expr.name}
    if isinstance(expr, Unary):
        return names_in(expr.operand)
    if isinstance(expr, Binary):
        return names_in(expr.left) | names_in(expr.right)
    if isinstance(expr, Ternary):
        return names_in(expr.cond) | names_in(expr.then) | names_in(expr.other)
    return set()


# Values of known macros: an int (defined, with that value) or None (known to be
# undefined).  A name missing from the mapping is unknown.
Env = dict[str, int | None]

# The machine upstream is analysed and every target is built for: x86-64.
MACHINE_MACROS: Env = {"__x86_64__": 1, "__amd64__": 1, "__i386__": None, "__aarch64__": None}


def detect_macro(os_name: str) -> str:
    """The macro an OS is detected by (``__NetBSD__``); ``__<os>__`` for one this module does not know."""
    return OS_DETECT_MACRO.get(os_name, f"__{os_name}__")


def os_env(macro: str, kernel: bool | None = None, machine: bool = True) -> Env:
    """The one builder of configurations: the macros known when compiling for the OS (or target)
    detected by ``macro``.

    ``macro`` is defined; every other OS's macros are undefined (those of ``macro``'s own OS, its
    version macros, stay unknown); ``_KERNEL`` is defined for a kernel build, undefined for
    userland, unknown when ``kernel`` is None; the x86-64 machine macros are known unless
    ``machine`` is False (``--flatten`` resolves only OS macros), and so is ``__cplusplus``
    (undefined: upstream's files are compiled as C).  Any other name is unknown.
    """
    owner = OS_MACROS.get(macro)
    env: Env = {m: None for m, os_name in OS_MACROS.items() if owner is None or os_name != owner}
    env[macro] = 1
    if kernel is not None:
        env["_KERNEL"] = 1 if kernel else None
    if machine:
        env.update(MACHINE_MACROS)
        env["__cplusplus"] = None       # upstream's world is C: a header's C++ branch is not compiled
    return env


def evaluate(expr: Expr, env: Env) -> int | None:
    """Evaluate with three-valued logic: an int, or None when it depends on unknown macros."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Defined):
        if expr.name not in env:
            return None
        return int(env[expr.name] is not None)
    if isinstance(expr, Ident):
        if expr.name not in env:
            return None
        v = env[expr.name]
        return 0 if v is None else v
    if isinstance(expr, Call):
        if expr.name in env and env[expr.name] is None:
            return 0
        return None
    if isinstance(expr, Unary):
        v = evaluate(expr.operand, env)
        if v is None:
            return None
        return {"!": int(not v), "~": ~v, "-": -v, "+": v}[expr.op]
    if isinstance(expr, Binary):
        left = evaluate(expr.left, env)
        if expr.op == "&&":
            if left == 0:
                return 0
            right = evaluate(expr.right, env)
            if right == 0:
                return 0
            return None if left is None or right is None else 1
        if expr.op == "||":
            if left not in (None, 0):
                return 1
            right = evaluate(expr.right, env)
            if right not in (None, 0):
                return 1
            return None if left is None or right is None else 0
        right = evaluate(expr.right, env)
        if left is None or right is None:
            return None
        try:
            return int({
                "|": lambda a, b: a | b, "^": lambda a, b: a ^ b, "&": lambda a, b: a & b,
                "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
                ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
                "<<": lambda a, b: a << b, ">>": lambda a, b: a >> b, "+": lambda a, b: a + b,
                "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                "/": lambda a, b: a // b, "%": lambda a, b: a % b,
            }[expr.op](left, right))
        except ZeroDivisionError:
            return None
    if isinstance(expr, Ternary):
        c = evaluate(expr.cond, env)
        if c is None:
            return None
        return evaluate(expr.then if c else expr.other, env)
    raise TypeError(expr)


# --------------------------------------------------------------------------
# Directives and the conditional tree


@dataclass
class Directive:
    name: str          # "if", "define", "include", ... ("" for a null directive)
    args: str          # the rest of the logical line, comments masked, continuations joined
    line: int          # first physical line (1-based)
    end_line: int      # last physical line (after continuations)
    offset: int        # offset of the first character of the line
    end_offset: int    # offset just past the last character (before the newline)


@dataclass
class MacroDef:
    name: str
    params: tuple[str, ...] | None   # None for an object-like macro
    body: str                        # masked body (comments blanked), whitespace-normalised
    line: int
    end_line: int


@dataclass
class Branch:
    kind: str                 # if / ifdef / ifndef / elif / else
    condition: str            # as written (masked, whitespace-normalised); "" for #else
    line: int                 # the directive's line
    body_start: int           # first line of the body (line after the directive)
    body_end: int             # last line of the body (line before the next directive)
    children: list[CondBlock] = field(default_factory=list)

    @property
    def expr(self) -> Expr | None:
        if self.kind == "else":
            return None
        return parse_condition(self.kind, self.condition)

    def directive_text(self) -> str:
        return f"#{self.kind} {self.condition}".rstrip()


@dataclass
class CondBlock:
    branches: list[Branch]
    line_start: int           # the #if line
    line_end: int             # the #endif line
    depth: int                # 0 for a block not nested in another
    parent: CondBlock | None = field(default=None, repr=False)
    parent_branch: int | None = None

    def mentioned(self) -> set[str]:
        names: set[str] = set()
        for b in self.branches:
            if b.kind != "else":
                try:
                    expr = b.expr
                    if expr is not None:
                        names |= names_in(expr)
                except ConditionError:
                    names |= set(_IDENT.findall(b.condition))
        return names

    @property
    def is_os_conditional(self) -> bool:
        return bool(self.mentioned() & OS_MACROS.keys())

    def oses(self) -> list[str]:
        return sorted({OS_MACROS[n] for n in self.mentioned() if n in OS_MACROS})

    def candidates(self, env: Env) -> list[Branch]:
        """The branches that may be compiled under ``env``: every one not certainly false, up to
        the first certainly true (an ``#else`` is reached only when no earlier one is)."""
        out: list[Branch] = []
        for br in self.branches:
            v = 1 if br.kind == "else" else _safe_eval(br, env)
            if v == 0:
                continue
            out.append(br)
            if v is not None:
                break
        return out

    def taken(self, env: Env) -> Branch | None:
        """The branch compiled under ``env`` (None: none is).  Raises :class:`UndecidedBranch`
        when a condition ``env`` cannot decide comes first."""
        found = self.candidates(env)
        if not found:
            return None
        last = found[-1]
        if len(found) > 1 or (last.kind != "else" and _safe_eval(last, env) is None):
            raise UndecidedBranch(found[0])
        return last

    def walk(self) -> Iterator[CondBlock]:
        yield self
        for b in self.branches:
            for c in b.children:
                yield from c.walk()


class UndecidedBranch(ConditionError):
    """Which branch of a block is compiled depends on macros the configuration leaves unknown."""

    def __init__(self, branch: Branch):
        self.branch = branch
        super().__init__(f"'{branch.condition}' at line {branch.line} depends on unknown macros")


@dataclass
class ScanError:
    line: int
    message: str


@dataclass
class FileScan:
    """The preprocessor view of one file."""

    path: str
    text: str
    masked: str
    directives: list[Directive]
    blocks: list[CondBlock]          # top-level conditional blocks (children nested)
    defines: list[MacroDef]
    includes: list[tuple[int, str, bool]]   # (line, path, angle-bracketed)
    errors: list[ScanError]
    line_offsets: list[int]

    def all_blocks(self) -> Iterator[CondBlock]:
        for b in self.blocks:
            yield from b.walk()

    def os_blocks(self) -> list[CondBlock]:
        return [b for b in self.all_blocks() if b.is_os_conditional]

    def lines(self) -> list[str]:
        return self.text.split("\n")

    def line_of(self, offset: int) -> int:
        import bisect
        return bisect.bisect_right(self.line_offsets, offset)

    def directive_lines(self) -> set[int]:
        s: set[int] = set()
        for d in self.directives:
            s.update(range(d.line, d.end_line + 1))
        return s

    # ---- evaluation for a given configuration

    def inactive_lines(self, env: Env) -> set[int]:
        """Lines that are certainly not compiled under ``env`` (unknown branches stay active)."""
        dead: set[int] = set()

        def visit(blocks: list[CondBlock]) -> None:
            for blk in blocks:
                live = {id(br) for br in blk.candidates(env)}
                for br in blk.branches:
                    if id(br) in live:
                        visit(br.children)
                    else:
                        dead.update(range(br.body_start, br.body_end + 1))
        visit(self.blocks)
        return dead


def _safe_eval(br: Branch, env: Env) -> int | None:
    try:
        expr = br.expr
        return None if expr is None else evaluate(expr, env)
    except ConditionError:
        return None


def _norm(s: str) -> str:
    return " ".join(s.split())


def scan_text(text: str, path: str = "<text>", asm: bool | None = None) -> FileScan:
    """Scan ``text`` for directives, conditional blocks, macro definitions and includes."""
    if asm is None:
        asm = path.endswith((".S", ".s", ".asm"))
    try:
        masked = mask_text(text, asm=asm)
    except UnterminatedComment as exc:
        return FileScan(path, text, text, [], [], [], [], [ScanError(exc.line, str(exc))],
                        [0])
    raw_lines = text.split("\n")
    mlines = masked.split("\n")
    offsets = []
    off = 0
    for ln in raw_lines:
        offsets.append(off)
        off += len(ln) + 1

    directives: list[Directive] = []
    i = 0
    while i < len(mlines):
        m = _DIRECTIVE.match(mlines[i])
        start = i
        if m:
            parts = [mlines[i]]
            while raw_lines[i].endswith("\\") and i + 1 < len(mlines):
                i += 1
                parts.append(mlines[i])
            joined = "".join(p[:-1] if p.endswith("\\") else p for p in parts)
            m2 = _DIRECTIVE.match(joined)
            name = (m2.group(1) or "") if m2 else ""
            args = m2.group(2) if m2 else ""
            directives.append(Directive(name, args, start + 1, i + 1, offsets[start],
                                        offsets[i] + len(raw_lines[i])))
        else:
            while raw_lines[i].endswith("\\") and i + 1 < len(mlines):
                i += 1
        i += 1

    errors: list[ScanError] = []
    blocks: list[CondBlock] = []
    stack: list[CondBlock] = []
    defines: list[MacroDef] = []
    includes: list[tuple[int, str, bool]] = []

    def close_branch(blk: CondBlock, upto: int) -> None:
        blk.branches[-1].body_end = upto

    for d in directives:
        if d.name in ("if", "ifdef", "ifndef"):
            parent = stack[-1] if stack else None
            blk = CondBlock([Branch(d.name, _norm(d.args), d.line, d.end_line + 1, d.end_line)],
                            d.line, d.line, len(stack), parent,
                            len(parent.branches) - 1 if parent else None)
            (parent.branches[-1].children if parent else blocks).append(blk)
            stack.append(blk)
        elif d.name in ("elif", "else"):
            if not stack:
                errors.append(ScanError(d.line, f"#{d.name} without #if"))
                continue
            blk = stack[-1]
            if blk.branches[-1].kind == "else":
                errors.append(ScanError(d.line, f"#{d.name} after #else"))
            close_branch(blk, d.line - 1)
            blk.branches.append(Branch(d.name, _norm(d.args) if d.name == "elif" else "",
                                       d.line, d.end_line + 1, d.end_line))
        elif d.name == "endif":
            if not stack:
                errors.append(ScanError(d.line, "#endif without #if"))
                continue
            blk = stack.pop()
            close_branch(blk, d.line - 1)
            blk.line_end = d.line
        elif d.name == "define":
            m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)(\(([^)]*)\))?(.*)$", d.args, re.S)
            if not m:
                errors.append(ScanError(d.line, "#define without a macro name"))
                continue
            params = None
            if m.group(2) is not None:
                params = tuple(p.strip() for p in m.group(3).split(",") if p.strip())
            defines.append(MacroDef(m.group(1), params, _norm(m.group(4)), d.line, d.end_line))
        elif d.name == "include":
            # the path is inside quotes, which masking blanked: read it from the original text
            raw = text[d.offset:d.end_offset]
            m = re.search(r'#\s*include\s*([<"])([^>"]+)[>"]', raw)
            if m:
                includes.append((d.line, m.group(2).strip(), m.group(1) == "<"))
            else:
                errors.append(ScanError(d.line, "#include without a file name"))
    for blk in stack:
        errors.append(ScanError(blk.line_start, "#if without #endif"))
        close_branch(blk, len(raw_lines))
        blk.line_end = len(raw_lines)
    for blk in (b for top in blocks for b in top.walk()):
        for br in blk.branches:
            if br.kind != "else":
                try:
                    parse_condition(br.kind, br.condition)
                except ConditionError as exc:
                    errors.append(ScanError(br.line, f"bad condition '{br.condition}': {exc}"))
    return FileScan(path, text, masked, directives, blocks, defines, includes, errors, offsets)


def identifiers(masked: str) -> Iterator[tuple[int, str]]:
    """(offset, name) of every identifier-like token in masked text (numbers skipped)."""
    for m in _IDENT.finditer(masked):
        s = m.start()
        if s > 0 and masked[s - 1].isdigit():
            continue   # the tail of a number: 0x1f, 1ULL, 1e5
        yield s, m.group(0)


# --------------------------------------------------------------------------
# Partial evaluation and unifdef


def simplify(expr: Expr, env: Env) -> Expr | int:
    """Fold what ``env`` decides; return an int when the whole condition is decided."""
    if isinstance(expr, (Defined, Ident, Call, Number)):
        v = evaluate(expr, env)
        return expr if v is None else v
    if isinstance(expr, Unary):
        inner = simplify(expr.operand, env)
        if isinstance(inner, int):
            return {"!": int(not inner), "~": ~inner, "-": -inner, "+": inner}[expr.op]
        return Unary(expr.op, inner)
    if isinstance(expr, Binary):
        left = simplify(expr.left, env)
        right = simplify(expr.right, env)
        if expr.op == "&&":
            if left == 0 or right == 0:
                return 0
            if isinstance(left, int):
                return right if not isinstance(right, int) else int(bool(right))
            if isinstance(right, int):
                return left
            return Binary("&&", left, right)
        if expr.op == "||":
            if (isinstance(left, int) and left) or (isinstance(right, int) and right):
                return 1
            if isinstance(left, int):
                return right
            if isinstance(right, int):
                return left
            return Binary("||", left, right)
        if isinstance(left, int) and isinstance(right, int):
            folded = Binary(expr.op, Number(left), Number(right))
            v = evaluate(folded, {})
            # None: undefined arithmetic (x / 0): keep the condition rather than return None
            return folded if v is None else v
        return Binary(expr.op, left if not isinstance(left, int) else Number(left),
                      right if not isinstance(right, int) else Number(right))
    if isinstance(expr, Ternary):
        c = simplify(expr.cond, env)
        if isinstance(c, int):
            return simplify(expr.then if c else expr.other, env)
        return Ternary(c, expr.then, expr.other)
    raise TypeError(expr)


_PRECEDENCE = {op: i for i, ops in enumerate(_BINARY_PRECEDENCE) for op in ops}


def unparse(expr: Expr | int, parent: int = -1) -> str:
    """C text of a condition (parenthesised only where precedence needs it)."""
    if isinstance(expr, int):
        return str(expr)
    if isinstance(expr, Number):
        return str(expr.value)
    if isinstance(expr, Defined):
        return f"defined({expr.name})"
    if isinstance(expr, Ident):
        return expr.name
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(expr.args)})"
    if isinstance(expr, Unary):
        return expr.op + unparse(expr.operand, 99)
    if isinstance(expr, Binary):
        p = _PRECEDENCE[expr.op]
        text = f"{unparse(expr.left, p)} {expr.op} {unparse(expr.right, p + 1)}"
        return f"({text})" if p < parent else text
    if isinstance(expr, Ternary):
        text = f"{unparse(expr.cond, 0)} ? {unparse(expr.then, 0)} : {unparse(expr.other, 0)}"
        return f"({text})" if parent >= 0 else text
    raise TypeError(expr)


def unifdef(text: str, env: Env, path: str = "<text>") -> str:
    """Resolve the conditionals ``env`` decides (unifdef semantics), keep the others.

    A branch known false disappears with its directive; the first branch known
    true loses its directive (and ends the block); undecided branches stay, their
    conditions simplified.  Lines outside conditionals are kept byte for byte.
    """
    scan = scan_text(text, path)
    if scan.errors:
        e = scan.errors[0]
        raise ValueError(f"{path}:{e.line}: {e.message}")
    lines = text.split("\n")
    out: list[str] = []

    def emit_range(start: int, end: int, blocks: list[CondBlock]) -> None:
        """Emit lines start..end (1-based, inclusive), resolving the blocks among them."""
        line = start
        for blk in blocks:
            out.extend(lines[line - 1:blk.line_start - 1])
            emit_block(blk)
            line = blk.line_end + 1
        out.extend(lines[line - 1:end])

    def emit_block(blk: CondBlock) -> None:
        kept_directive = False
        for br in blk.branches:
            expr = br.expr
            value: Expr | int = 1 if expr is None else simplify(expr, env)
            if value == 0:
                continue
            if isinstance(value, int):
                if kept_directive:
                    out.append(_directive_line(lines, br.line, "#else"))
                emit_range(br.body_start, br.body_end, br.children)
                break
            head = "#if" if not kept_directive else "#elif"
            cond = unparse(value)
            if not kept_directive and br.kind in ("if", "ifdef", "ifndef") and value == br.expr:
                out.extend(lines[br.line - 1:_directive_end(scan, br.line)])   # untouched: keep as written
            elif kept_directive and br.kind == "elif" and value == br.expr:
                out.extend(lines[br.line - 1:_directive_end(scan, br.line)])
            else:
                out.append(_directive_line(lines, br.line, f"{head} {cond}"))
            kept_directive = True
            emit_range(br.body_start, br.body_end, br.children)
        if kept_directive:
            out.extend(lines[blk.line_end - 1:_directive_end(scan, blk.line_end)])

    emit_range(1, len(lines), scan.blocks)
    return "\n".join(out)


def _directive_end(scan: FileScan, line: int) -> int:
    for d in scan.directives:
        if d.line == line:
            return d.end_line
    return line


def _directive_line(lines: list[str], line: int, text: str) -> str:
    """A rewritten directive keeps the original's indentation after the '#'."""
    original = lines[line - 1]
    m = re.match(r"^([ \t]*)#([ \t]*)", original)
    if not m:
        return text
    return m.group(1) + "#" + m.group(2) + text[1:]


# --------------------------------------------------------------------------
# Token streams (for comparing sources modulo whitespace and comments)

_TOKEN_RE = re.compile(
    r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|[A-Za-z_][A-Za-z0-9_]*|\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*'
    r"|##|<<=|>>=|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^]=|\.\.\.|\S"
)


def tokens(text: str, asm: bool = False) -> list[str]:
    """The token stream of C or assembly text: comments dropped, whitespace ignored, strings kept."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "\\" and text.startswith("\\\n", i):
            i += 2
            continue
        if c.isspace():
            i += 1
            continue
        if asm and c == "'":
            out.append(c)
            i += 1
            continue
        m = _TOKEN_RE.match(text, i)
        assert m is not None   # the pattern's last alternative, \S, matches any non-space
        out.append(m.group(0))
        i = m.end()
    return out
