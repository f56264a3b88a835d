"""Kernel style of the Linux port, judged by Linux's own scripts/checkpatch.pl: no error and no
warning in the Linux-world files of the generated tree except the kinds shim/linux/checkpatch.toml
keeps on purpose, each with its reason.  checkpatch.pl is extracted at run time from Debian's
linux-source package (nvmm_port/run/style.py); without it these tests skip and say so."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import ROOT, reference_cache

from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import style
from nvmm_port.targets.generate import render_tree
from nvmm_port.targets.spec import check_spec, load_spec

POLICY = ROOT / "shim" / "linux" / "checkpatch.toml"


@pytest.fixture(scope="module")
def checkpatch() -> Path:
    try:
        return style.find_checkpatch(Project.find(ROOT).build_dir)
    except PortError as exc:
        pytest.skip(f"no checkpatch.pl: {exc}")


@pytest.fixture(scope="module")
def linux_files(tmp_path_factory, reference_surface):
    """The policy's files of the rendered Linux tree, written out with their tree paths."""
    project = Project.find(ROOT)
    spec = load_spec(ROOT / "shim" / "linux")
    check_spec(spec, reference_surface)
    tree = render_tree(project, spec, reference_surface, reference_cache(), False)
    out = tmp_path_factory.mktemp("linux-style")
    for rel in style.load_policy(POLICY).files:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(tree.files[rel])
    return spec, tree, out


# ---------------------------------------------------------------------------
# The checker itself


SAMPLE = """\
bad.c:1: WARNING:SPDX_LICENSE_TAG: Missing or malformed SPDX-License-Identifier tag in line 1
bad.c:2: ERROR:OPEN_BRACE: open brace '{' following function definitions go on the next line
bad.c:3: WARNING:LEADING_SPACE: please, no spaces at the start of a line
total: 1 errors, 2 warnings, 4 lines checked
"""


def test_parse_reads_findings_and_checks_the_totals():
    found = style.parse(SAMPLE)
    assert [(f.file, f.line, f.level, f.type) for f in found] == [
        ("bad.c", 1, "WARNING", "SPDX_LICENSE_TAG"), ("bad.c", 2, "ERROR", "OPEN_BRACE"),
        ("bad.c", 3, "WARNING", "LEADING_SPACE")]
    assert str(found[2]) == "bad.c:3: WARNING:LEADING_SPACE: please, no spaces at the start of a line"
    assert style.parse("") == []
    strict = "a.c:5: CHECK:LINE_SPACING: Please don't use multiple blank lines\n" \
             "total: 0 errors, 0 warnings, 1 checks, 9 lines checked\n"
    assert [f.level for f in style.parse(strict)] == ["CHECK"]
    with pytest.raises(PortError, match="do not match"):           # a finding the parser missed
        style.parse(SAMPLE.replace("total: 1 errors, 2 warnings", "total: 1 errors, 3 warnings"))
    with pytest.raises(PortError, match="does not know"):
        style.parse(SAMPLE + "bad.c: something new\n")


def test_policy_allows_only_what_it_names(tmp_path):
    (tmp_path / "driver").mkdir()
    (tmp_path / "driver" / "a.c").write_text("int x;\n#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)\nif (5 == y)\n")
    policy = tmp_path / "p.toml"
    policy.write_text('files = ["driver/a.c"]\n[[allow]]\ntype = "CONSTANT_COMPARISON"\nfiles = ["driver/*.c"]\n'
                      "lines = 'LINUX_VERSION_CODE'\nreason = \"version checks\"\n"
                      '[[allow]]\ntype = "USE_NEGATIVE_ERRNO"\nfiles = ["driver/a.c"]\nreason = "BSD errnos"\n')
    p = style.load_policy(policy)
    findings = [style.Finding("driver/a.c", 2, "WARNING", "CONSTANT_COMPARISON", "m"),
                style.Finding("driver/a.c", 3, "WARNING", "CONSTANT_COMPARISON", "m"),     # not a version line
                style.Finding("driver/b.c", 2, "WARNING", "USE_NEGATIVE_ERRNO", "m")]      # not its file
    v = p.judge(findings, tmp_path)
    assert v.unexpected == findings[1:]
    assert v.allowed[p.allow[0]] == findings[:1] and v.unused() == [p.allow[1]]


@pytest.mark.parametrize("text,expect", [
    ('files = ["a.c"]\nignore = ["X"]\n', "unknown key"),
    ('files = ["a.c"]\n[[allow]]\ntype = "X"\nfiles = ["a.c"]\n', "needs 'reason'"),
    ('files = ["a.c"]\n[[allow]]\ntype = "X"\nreason = "r"\nfiles = ["a.c"]\nwhy = 1\n', "unknown key"),
    ('files = ["a.c"]\n[[allow]]\ntype = "X"\nreason = "r"\nfiles = ["a.c"]\nlines = "("\n', "regular expression"),
    ("files = []\n", "'files'"),
])
def test_bad_policies_are_errors(tmp_path, text, expect):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(PortError, match=expect):
        style.load_policy(p)


def test_no_linux_source_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(style.ENV, raising=False)
    with pytest.raises(PortError) as e:
        style.find_checkpatch(tmp_path / "build", src_dir=tmp_path)
    assert "no Linux source tarball" in str(e.value) and "apt-get install linux-source" in str(e.value)
    monkeypatch.setenv(style.ENV, str(tmp_path / "missing.pl"))
    with pytest.raises(PortError, match="names no file"):
        style.find_checkpatch(tmp_path / "build", src_dir=tmp_path)


def test_checkpatch_reports_a_bad_file(tmp_path, checkpatch):
    """The real checker on a file with known faults: the parser sees each one; a clean file is clean."""
    (tmp_path / "bad.c").write_text("/* no license tag */\nint f(int a){\n  return a;\n}\n")
    (tmp_path / "good.c").write_text("// SPDX-License-Identifier: BSD-2-Clause\n\nint f(int a)\n{\n\treturn a;\n}\n")
    found = style.run_checkpatch(checkpatch, ["bad.c", "good.c"], cwd=tmp_path)
    got = {(f.file, f.line, f.level, f.type) for f in found}
    assert {("bad.c", 1, "WARNING", "SPDX_LICENSE_TAG"), ("bad.c", 2, "ERROR", "OPEN_BRACE"),
            ("bad.c", 3, "WARNING", "LEADING_SPACE")} <= got, found
    assert all(f.file == "bad.c" for f in found)
    assert style.run_checkpatch(checkpatch, ["good.c"], cwd=tmp_path) == []


def test_checkpatch_is_cached_per_tarball(tmp_path, checkpatch):
    if style.ENV in os.environ:
        pytest.skip(f"${style.ENV} chooses the checker")
    assert checkpatch.parent.parent == Project.find(ROOT).build_dir / "tools"
    assert checkpatch.parent.name == style.cache_key(style.source_tarballs()[-1])
    assert {p.name for p in checkpatch.parent.iterdir()} == set(style.SCRIPT_FILES)
    assert style.find_checkpatch(Project.find(ROOT).build_dir) == checkpatch      # no second extraction


# ---------------------------------------------------------------------------
# The Linux port


def test_policy_checks_every_linux_world_file(linux_files):
    """The glue, the glue headers, the bridge and the common code of the spec: all of them, and only them."""
    spec, tree, _ = linux_files
    world = {f"driver/nvmm_{spec.os}.c"} | \
        {f"driver/{Path(rel).name}" for rel, _ in spec.glue_headers + spec.bridge_sources + spec.common_files}
    assert set(style.load_policy(POLICY).files) == world
    assert world <= set(tree.files)


def _shown(f: style.Finding, out: Path) -> str:
    """A finding with its source line and, in the glue, the fragment line to edit (its #line)."""
    lines = (out / f.file).read_text().split("\n")
    where = ""
    for i in range(min(f.line, len(lines)) - 1, -1, -1):
        m = re.match(r'#line (\d+) "(.*)"$', lines[i])
        if m:
            if m.group(2) != f.file:
                where = f" (edit {m.group(2)}:{int(m.group(1)) + f.line - i - 2})"
            break
    return f"  {f}{where}\n      {lines[f.line - 1].strip() if f.line <= len(lines) else ''}"


def test_linux_world_files_are_kernel_style(linux_files, checkpatch):
    _, _, out = linux_files
    policy = style.load_policy(POLICY)
    findings = style.run_checkpatch(checkpatch, list(policy.files), cwd=out)
    verdict = policy.judge(findings, out)
    assert not verdict.unexpected, "checkpatch findings that shim/linux/checkpatch.toml does not allow:\n" + \
        "\n".join(_shown(f, out) for f in verdict.unexpected)
    assert not verdict.unused(), "exceptions in shim/linux/checkpatch.toml that nothing needs any more " \
        "(delete them): " + ", ".join(a.type for a in verdict.unused())
    assert all(f.level != "ERROR" for f in findings)
