"""Long steps say what they do (issue 10, problem 13): a cold analyze and make report progress on the
Progress they are given, and nothing at all with the default SILENT."""

from __future__ import annotations

import io

import pytest
from test_build import KDIR, tree

from nvmm_port import ui
from nvmm_port.project import Project

needs_headers = pytest.mark.skipif(not (KDIR / "Makefile").is_file(),
                                   reason="no kernel build directory: apt-get install linux-headers-amd64")


def test_a_cold_analyze_reports_its_start_each_unit_and_done(mini_project, capsys):
    from nvmm_port.analysis.analyze import analyze_project
    out = io.StringIO()
    analyze_project(Project.find(mini_project), "mini", use_cache=False, progress=ui.PlainProgress(out, interval=0, delay=0))
    lines = out.getvalue().splitlines()
    assert lines[0] == "analyzing mini ..."
    assert any(line.startswith("  analyzing mini: driver/") and ".c (" in line for line in lines), lines
    assert lines[-1].startswith("analyzing mini: done in ")
    assert capsys.readouterr() == ("", "")


def test_a_warm_analyze_has_nothing_to_report(mini_project):
    from nvmm_port.analysis.analyze import analyze_project
    analyze_project(Project.find(mini_project), "mini")
    out = io.StringIO()
    analyze_project(Project.find(mini_project), "mini", progress=ui.PlainProgress(out, interval=0, delay=0))
    assert out.getvalue() == ""


def test_silent_analyze_prints_nothing(mini_project, capsys):
    from nvmm_port.analysis.analyze import analyze_project
    analyze_project(Project.find(mini_project), "mini", use_cache=False)
    assert capsys.readouterr() == ("", "")


@needs_headers
def test_make_reports_each_kbuild_step_while_it_runs(tmp_path, capsys):
    from nvmm_port.run.build import kbuild
    out = io.StringIO()
    res = kbuild(tree(tmp_path), KDIR, "nvmmtest", 2, progress=ui.PlainProgress(out, interval=0, delay=0))
    lines = out.getvalue().splitlines()
    assert lines[0] == "make nvmmtest.ko ..." and lines[-1].startswith("make nvmmtest.ko: done in ")
    assert any(line.startswith("  make nvmmtest.ko: CC [M] t.o (") for line in lines), lines
    assert any("LD [M] nvmmtest.ko" in line for line in lines), lines
    assert "CC [M]" in res.log.read_text()          # the log is still complete
    assert capsys.readouterr() == ("", "")


@needs_headers
def test_silent_make_prints_nothing(tmp_path, capfd):
    from nvmm_port.run.build import kbuild
    kbuild(tree(tmp_path), KDIR, "nvmmtest", 2)
    assert capfd.readouterr() == ("", "")
