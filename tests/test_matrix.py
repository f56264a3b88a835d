"""gen.py matrix: the cells, running them (with stand-in commands: the real runs are CI's), the
results written, and the emitted GitHub workflow kept in sync and valid (check-jsonschema against
the GitHub workflow schema it ships).  And the kernel releases the cells resolve to."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HOW_TO_SYNC, ROOT, reference_cache

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import kernels
from nvmm_port.run import matrix as m

PLAIN = ("generate", "build", "e2e")          # the steps of a cell without a client


def test_kernel_releases_parse_and_name_their_cell():
    k = kernels.parse("6.12.113+deb12-rt-amd64")
    assert (k.line, k.flavour, k.cell) == ("6.12", "rt", "6.12-rt")
    assert kernels.parse("6.1.0-57-amd64").cell == "6.1"
    assert k.kdir == Path("/usr/src/linux-headers-6.12.113+deb12-rt-amd64")
    assert k.source_package == "linux-source-6.12"
    with pytest.raises(PortError, match="not a Debian amd64 kernel release"):
        kernels.parse("6.12")
    with pytest.raises(PortError, match="not a Debian amd64 kernel release"):
        kernels.parse("6.12.118+deb12-cloud-amd64")      # another flavour, not generic


def _fake_run(depends: str, offered: list[str], known: set[str]):
    def run(cmd):
        out, rc = "", 0
        if cmd[0] == "dpkg-query":
            out = depends
        elif cmd[:2] == ["apt-cache", "pkgnames"]:
            out = "\n".join(offered)
        elif cmd[:2] == ["apt-cache", "show"]:
            rc = 0 if cmd[-1] in known else 100
            out = f"Package: {cmd[-1]}\n" if rc == 0 else ""
        return subprocess.CompletedProcess(cmd, rc, out, "")
    return run


def test_the_default_release_is_debians_default_line_and_cells_resolve(tmp_path: Path):
    src = tmp_path / "src"
    for r in ("6.1.0-57-amd64", "6.12.113+deb12-amd64"):
        (src / f"linux-headers-{r}").mkdir(parents=True)
    run = _fake_run("linux-headers-6.1.0-57-amd64 (= 6.1.0-57)",
                    ["linux-headers-6.12.111+deb12-rt-amd64", "linux-headers-6.12.113+deb12-rt-amd64",
                     "linux-headers-6.12.113+deb12-amd64", "linux-headers-6.12.118+deb12-cloud-amd64"],
                    {"linux-headers-6.1.0-57-rt-amd64", "linux-image-6.12.113+deb12-rt-amd64-unsigned"})
    # newest installed is 6.12, but Debian's default (what linux-headers-amd64 depends on) is 6.1
    assert kernels.default_release(run, src).release == "6.1.0-57-amd64"
    assert kernels.resolve("6.1", run, src).release == "6.1.0-57-amd64"
    assert kernels.resolve("6.1-rt", run, src).release == "6.1.0-57-rt-amd64"     # the default's RT twin
    assert kernels.resolve("6.12", run, src).release == "6.12.113+deb12-amd64"    # installed
    assert kernels.resolve("6.12", run, tmp_path / "none").release == "6.12.113+deb12-amd64"   # offered, not cloud
    rt = kernels.resolve("6.12-rt", run, src)                                      # newest offered
    assert rt.release == "6.12.113+deb12-rt-amd64"
    assert rt.image_package(run) == "linux-image-6.12.113+deb12-rt-amd64-unsigned"   # no signed 6.12
    with pytest.raises(PortError, match="not LINE or LINE-rt"):
        kernels.resolve("6.1-debug", run, src)


def test_filters_select_cells_and_steps():
    cs = [m.Cell("linux", k, c, "up", PLAIN) for k in m.LINUX_KERNELS for c in m.CPUS] + \
        [m.Cell("haiku", "haiku@abc", "-", "up", ("generate", "build"))]
    assert len(m.select(cs, m.parse_filters(["kernel=6.12-rt"]))) == 2
    built = m.select(cs, m.parse_filters(["step=build", "target=haiku"]))
    assert [c.steps for c in built] == [("generate", "build")]
    assert m.select(cs, m.parse_filters(["step=e2e", "target=haiku"])) == []       # haiku cannot run
    with pytest.raises(PortError, match="KEY=VALUE"):
        m.parse_filters(["arch=x86"])
    assert cs[-1].id == "haiku-haiku-abc-up" and cs[0].id == "linux-6.1-vmx-up"


def test_client_cells_build_the_client_before_the_e2e_and_pass_it_on(tmp_path: Path):
    cell = m.Cell("linux", "6.1", "svm", "up", m.STEPS, "qemu")
    assert cell.id == "linux-6.1-svm-up-qemu" and cell.matches(m.parse_filters(["client=qemu", "cpu=svm"]))
    assert not m.Cell("linux", "6.1", "svm", "up", PLAIN).matches(m.parse_filters(["client=qemu"]))
    proj = Project(tmp_path)
    cmds = m.commands(m.Cell("linux", "-", "vmx", "up", m.STEPS, "qemu"), proj)
    assert cmds["client"][-4:] == ["client", "qemu", "--target", "linux"]
    assert cmds["e2e"][-2:] == ["--client", "qemu"] and "--smp" in cmds["e2e"]
    assert "--client" not in m.commands(m.Cell("linux", "-", "vmx", "up", PLAIN), proj)["e2e"]
    upto = m.select([cell], m.parse_filters(["step=client"]))
    assert [c.steps for c in upto] == [("generate", "build", "client")] and upto[0].client == "qemu"


def test_a_run_reports_pass_fail_skip_with_logs_and_stops_unless_keep_going(tmp_path: Path, monkeypatch):
    proj = Project(tmp_path)
    ok, bad = [sys.executable, "-c", "print('fine')"], [sys.executable, "-c", "print('it broke'); raise SystemExit(3)"]
    plan = {"a": {"generate": ok, "build": bad, "e2e": ok}, "b": {"generate": ok, "build": ok, "e2e": ok}}
    monkeypatch.setattr(m, "commands", lambda cell, project: plan[cell.upstream])
    cells = [m.Cell("linux", "6.1", "vmx", "a", PLAIN), m.Cell("linux", "6.1", "svm", "b", PLAIN)]
    lines: list[str] = []
    res = m.run(proj, cells, lines.append)
    assert [s.status for s in res[0].steps] == ["PASS", "FAIL", "SKIP"]
    assert "exit 3: it broke" in res[0].steps[1].reason and Path(res[0].steps[1].log).read_text() == "it broke\n"
    assert {s.status for s in res[1].steps} == {"SKIP"}                           # stopped after the failure
    res = m.run(proj, cells, lines.append, keep_going=True)
    assert res[1].status == "PASS"
    js, md = m.write_results(proj, res)
    data = json.loads(js.read_text())
    assert data["summary"] == {"PASS": 1, "FAIL": 1, "SKIP": 0}
    assert data["cells"][0]["steps"][1]["status"] == "FAIL"
    text = md.read_text()
    assert "## linux-6.1-vmx-a: build failed" in text and "it broke" in text


def test_the_committed_workflow_is_the_emitted_one_and_valid(capsys):
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    assert main(["--project", str(ROOT), "matrix", "--emit", "github", "--check"]) == 0, \
        "run gen.py matrix --emit github"
    assert "12 jobs" in capsys.readouterr().out          # 8 Linux, 2 Linux with QEMU, 1 Haiku, 1 hosted
    assert main(["--project", str(ROOT), "matrix"]) == 0
    listing = capsys.readouterr().out
    assert "12 cell(s)" in listing and "haiku@47136e7183" in listing and "6.12-rt" in listing
    assert re.search(r"^hosted\s+-\s+-\s+dragonfly-2024\s+-\s+generate build e2e$", listing, re.M)
    assert listing.count(" qemu ") == 2 and "generate build client e2e" in listing
    workflow = (ROOT / m.WORKFLOW).read_text()
    assert "python gen.py setup --for build,e2e,qemu --kernel-release 6.1" in workflow
    assert "--filter client=qemu" in workflow
    assert "python gen.py setup --for build\n" in workflow       # the hosted cell: no emulator to set up
    assert workflow.count("uses: actions/cache@v4") == 2 and "path: ~/.cache/nvmm-port" in workflow
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[test]' brings it)")
    r = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(ROOT / m.WORKFLOW)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
