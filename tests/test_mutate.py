"""gen.py mutate: the catalog is checked (every bug's text is where it says, once; errors name the
catalog line), a run never touches the checkout, and a bug the named tests see is caught while one
they cannot see is reported as missed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import mutate


def _project(tmp_path: Path, catalog: str) -> Project:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")
    (root / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    (root / "tests" / "mutants.toml").write_text(catalog)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return Project(root)


CATALOG = '''
[[mutant]]
id = "add-subtracts"
file = "calc.py"
find = "return a + b"
replace = "return a - b"
why = "add is wrong"
tests = ["tests/test_calc.py"]

[[mutant]]
id = "sub-adds"
file = "calc.py"
find = "return a - b"
replace = "return a + b"
why = "sub is wrong, and no test calls it"
tests = ["tests/test_calc.py"]
'''


def test_a_run_catches_what_the_tests_see_misses_the_rest_and_leaves_the_checkout_alone(tmp_path: Path):
    proj = _project(tmp_path, CATALOG)
    before = (proj.root / "calc.py").read_bytes()
    report = mutate.run(proj, mutate.load(proj), lambda s: None)
    by = {o.id: o for o in report.outcomes}
    assert by["add-subtracts"].caught and by["add-subtracts"].by == "tests/test_calc.py::test_add"
    assert not by["sub-adds"].caught
    assert (report.caught, len(report.mutants)) == (1, 2)
    assert (proj.root / "calc.py").read_bytes() == before


def test_a_bug_whose_text_is_gone_is_refused_with_the_catalog_line(tmp_path: Path):
    proj = _project(tmp_path, CATALOG.replace('find = "return a - b"', 'find = "return a * b"'))
    with pytest.raises(PortError, match="sub-adds: its text occurs 0 time") as e:
        mutate.load(proj)
    assert e.value.where == f"{proj.root / 'tests' / 'mutants.toml'}:11"


def test_a_blind_entry_needs_its_reason(tmp_path: Path):
    proj = _project(tmp_path, CATALOG.replace("[[mutant]]\nid = \"sub-adds\"", "[[blind]]\nid = \"sub-adds\""))
    with pytest.raises(PortError, match="lacks reason"):
        mutate.load(proj)


def test_the_committed_catalog_loads_with_at_least_twenty_mutants_and_a_reasoned_blind_list():
    mutants = mutate.load(Project.find(ROOT))
    assert sum(1 for m in mutants if m.blind is None) >= 20
    assert all(m.blind for m in mutants if m.blind is not None)
