"""Diagnostics (file:line: message) and the TOML locator that gives spec errors their lines."""

from __future__ import annotations

import tomllib

from conftest import ROOT

from nvmm_port.errors import Diagnostic, DiagnosticsError, PortError
from nvmm_port.targets.tomlpos import TomlPositions


def test_toml_positions():
    text = '''# c
a = 1
b.c = { d = [1, { e = 2 }], "f.g" = 'h' }
s = """
[not_a_table]
x = 1 \\""" still in
"""
[t."q.r"]   # comment
arr = [
  "one",   # c
  'two',
]
[[aot]]
x = 1
[[aot]]
y = 1979-05-27 07:32:00Z
'''
    tomllib.loads(text)
    p = TomlPositions(text)
    assert p.line("a") == 2 and p.line("b", "c", "f.g") == 3 and p.line("b", "c", "d", 1, "e") == 3
    assert p.line("s") == 4 and not p.has("not_a_table") and not p.has("x")
    assert p.line("t", "q.r") == 8 and p.line("t", "q.r", "arr", 0) == 10 and p.line("t", "q.r", "arr", 1) == 11
    assert p.line("aot", 0, "x") == 14 and p.line("aot", 1, "y") == 16
    assert p.line("t", "q.r", "nope") == 8 and p.line("nothing") == 1       # nearest known, else 1
    assert p.end_of("t", "q.r") == 12


def test_linux_spec_positions_match_its_text():
    text = (ROOT / "shim" / "linux" / "target.toml").read_text()
    p = TomlPositions(text)
    lines = text.split("\n")
    data = tomllib.loads(text)
    for name in data["primitives"]:
        assert lines[p.line("primitives", name) - 1].startswith(f"[primitives.{name}]")
        for key in data["primitives"][name]:
            assert lines[p.line("primitives", name, key) - 1].startswith(f"{key} ="), (name, key)
    for vid in data["variation_points"]:
        assert vid in lines[p.line("variation_points", vid) - 1]


def test_diagnostics_error_text_carries_details():
    err = DiagnosticsError("2 errors", "x.toml", [Diagnostic("x.toml", 3, "a", "fix a"),
                                                 Diagnostic("x.toml", 5, "b")])
    assert err.details == ["x.toml:3: a (fix a)", "x.toml:5: b"]
    assert str(err).split("\n")[1:] == ["  x.toml:3: a (fix a)", "  x.toml:5: b"]
    assert isinstance(err, PortError)
