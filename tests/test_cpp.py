"""The preprocessor-structure layer: masking, directives, conditional trees, evaluation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nvmm_port.analysis import preprocessor as cpp


def test_mask_keeps_offsets_and_blanks_comments_and_strings():
    text = 'int a; /* #if X */ char *s = "os_printf(\\"x\\")"; // tail\nint b;'
    masked = cpp.mask_text(text)
    assert len(masked) == len(text)
    assert "#if" not in masked and "os_printf" not in masked and "tail" not in masked
    assert masked.endswith("int b;")


def test_unterminated_comment_is_a_scan_error_naming_the_line():
    scan = cpp.scan_text("int a;\n/* never closed\nint b;\n", "x.c")
    assert scan.errors and scan.errors[0].line == 2


def test_directive_in_comment_is_not_a_directive():
    scan = cpp.scan_text("/*\n#if defined(__NetBSD__)\n*/\nint x;\n", "x.c")
    assert scan.blocks == [] and scan.errors == []


def test_nested_blocks_with_elif_else_and_continuations():
    text = "\n".join([
        "#if defined(__x86_64__)",           # 1
        "#if defined(__NetBSD__) || \\",     # 2
        "    defined(__FreeBSD__)",          # 3
        "int a;",                            # 4
        "#elif defined(__DragonFly__)",      # 5
        "int b;",                            # 6
        "#else",                             # 7
        "#error no",                         # 8
        "#endif",                            # 9
        "#endif",                            # 10
    ])
    scan = cpp.scan_text(text, "x.h")
    assert len(scan.blocks) == 1
    outer = scan.blocks[0]
    assert not outer.is_os_conditional
    inner = outer.branches[0].children[0]
    assert inner.is_os_conditional and inner.depth == 1 and inner.parent is outer
    assert [b.kind for b in inner.branches] == ["if", "elif", "else"]
    assert (inner.line_start, inner.line_end) == (2, 9)
    assert inner.branches[0].body_start == 4 and inner.branches[0].body_end == 4
    assert inner.branches[0].condition == "defined(__NetBSD__) || defined(__FreeBSD__)"
    assert inner.oses() == ["dragonfly", "freebsd", "netbsd"]
    assert [b.line_start for b in scan.os_blocks()] == [2]


@pytest.mark.parametrize("text,message", [
    ("#if A\nint x;\n", "#if without #endif"),
    ("int x;\n#endif\n", "#endif without #if"),
    ("#else\n", "#else without #if"),
    ("#if A\n#else\n#elif B\n#endif\n", "#elif after #else"),
    ("#if (A\n#endif\n", "bad condition"),
])
def test_malformed_structure_is_reported(text, message):
    scan = cpp.scan_text(text, "x.c")
    assert any(message in e.message for e in scan.errors)


def test_defines_and_includes():
    scan = cpp.scan_text('#define F(a, b) ((a) + \\\n  (b))\n#define O 3\n#include <sys/x.h>\n#include "y.h"\n', "x.h")
    f, o = scan.defines
    assert (f.name, f.params, f.body, f.line, f.end_line) == ("F", ("a", "b"), "((a) + (b))", 1, 2)
    assert (o.name, o.params, o.body) == ("O", None, "3")
    assert scan.includes == [(4, "sys/x.h", True), (5, "y.h", False)]


def test_inactive_lines_per_os():
    text = "\n".join([
        "#if defined(__NetBSD__)",    # 1
        "n",                          # 2
        "#elif defined(__DragonFly__)",
        "d",                          # 4
        "#else",
        "o",                          # 6
        "#endif",
        "#ifdef UNKNOWN_MACRO",       # 8
        "u",                          # 9
        "#endif",
    ])
    scan = cpp.scan_text(text, "x.c")
    nb = {"__NetBSD__": 1, "__DragonFly__": None}
    df = {"__NetBSD__": None, "__DragonFly__": 1}
    assert scan.inactive_lines(nb) == {4, 6}
    assert scan.inactive_lines(df) == {2, 6}
    # an unknown macro keeps its block (unifdef semantics: only named macros are resolved)
    assert 9 not in scan.inactive_lines(nb)


def test_condition_forms():
    env = {"__NetBSD__": 1, "__DragonFly__": None, "V": 9}
    for text, expected in [("defined(__NetBSD__)", 1), ("!defined __DragonFly__", 1),
                           ("defined(__NetBSD__) && V >= 10", 0), ("V > 8 ? 1 : 0", 1),
                           ("__NetBSD_Prereq__(9, 99, 1)", None), ("defined(__DragonFly__) && __DragonFly_version > 1", 0),
                           ("(V << 2) == 36", 1), ("UNKNOWN || defined(__NetBSD__)", 1), ("UNKNOWN && 0", 0)]:
        assert cpp.evaluate(cpp.parse_condition("if", text), env) == expected, text


def test_unifdef_keeps_a_division_by_zero():
    # constant folding of x / 0 decides nothing: the block stays (it used to raise TypeError)
    assert cpp.unifdef("#if 1/0\nx\n#endif\n", {}) == "#if 1/0\nx\n#endif\n"
    assert cpp.unifdef("#if (1 % 0) && A\nx\n#else\ny\n#endif\n", {"A": 1}) == \
        "#if 1 % 0\nx\n#else\ny\n#endif\n"


# --- property: three-valued evaluation agrees with every completion of the unknowns

NAMES = ["A", "B", "C"]


@st.composite
def exprs(draw, depth=0):
    if depth > 3 or draw(st.booleans()):
        return draw(st.sampled_from([f"defined({n})" for n in NAMES] + ["0", "1"]))
    op = draw(st.sampled_from(["&&", "||", "!"]))
    if op == "!":
        return f"!({draw(exprs(depth + 1))})"
    return f"({draw(exprs(depth + 1))}) {op} ({draw(exprs(depth + 1))})"


@settings(max_examples=300, deadline=None)
@given(exprs(), st.dictionaries(st.sampled_from(NAMES), st.sampled_from([1, None])))
def test_three_valued_evaluation_is_sound(text, known):
    expr = cpp.parse_condition("if", text)
    result = cpp.evaluate(expr, dict(known))
    unknown = [n for n in NAMES if n not in known]
    outcomes = set()
    for values in itertools.product([1, None], repeat=len(unknown)):
        env = dict(known, **dict(zip(unknown, values, strict=True)))
        full = cpp.evaluate(expr, env)
        assert full is not None
        outcomes.add(bool(full))
    if result is not None:
        assert outcomes == {bool(result)}
    else:
        assert len(outcomes) == 2 or unknown   # unknown only when it really depends on them
