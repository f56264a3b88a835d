"""gen.py fuzz: the assist harness (libnvmm's instruction emulator under libFuzzer, ASan and UBSan)
builds against the port (the hosted one by default; here also the Linux one), runs from the committed seeds, reports executions, edges and the lines of
libnvmm_x86.c its corpus covers, and a bug in reach of the seeds is found, saved and reproducible."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOW_TO_SYNC, ROOT, reference_cache

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import fuzz

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in (fuzz.CLANG, *fuzz.LLVM_TOOLS)),
                                reason="clang and llvm-14 are not installed: gen.py setup --for test")


def _objdir() -> Path:
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    from nvmm_port.run.build import build_target
    return build_target(Project.find(ROOT), "linux", None, None, None, False, 2).objdir


def test_fuzz_assist_reports_executions_edges_coverage_and_no_findings(capsys):
    _objdir()
    assert main(["--project", str(ROOT), "fuzz", "--harness", "assist", "--runs", "30000"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("harness=assist"))
    values = dict(w.split("=", 1) for w in line.split() if "=" in w and not w.startswith("lines"))
    assert int(values["executions"]) == 30000 and int(values["edges"]) > 200 and values["findings"] == "0"
    covered = [w for w in line.split() if w.startswith("lines[libnvmm_x86.c]=")][0]
    got, total = map(int, covered.split("=")[1].split()[0].split("/"))
    assert total > 1000 and got / total > 0.5            # the seeds alone reach over half the emulator


def test_a_planted_bug_is_found_saved_and_reproducible(tmp_path: Path):
    objdir = _objdir()
    proj = Project.find(ROOT)
    program = fuzz.build_harness(proj, fuzz.HARNESSES["assist"], objdir, tmp_path, "fuzz",
                                 extra=("-DNVMM_FUZZ_PLANTED_BUG",), macro="__linux__")
    res = fuzz.run_harness(program, tmp_path / "corpus", fuzz.seeds(proj, "assist"), tmp_path / "findings",
                           2000, None, tmp_path / "fuzz.log", lambda s: None)
    assert len(res.findings) == 1 and res.findings[0].name.startswith("crash-")
    again = subprocess.run([str(program), str(res.findings[0])], capture_output=True, text=True)
    assert again.returncode != 0 and "stack-buffer-overflow" in again.stderr and "cb_mem" in again.stderr


def test_the_ioctl_harness_needs_the_hosted_target():
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    with pytest.raises(PortError, match="use --target hosted --harness ioctl"):
        fuzz.fuzz(Project.find(ROOT), "linux", "ioctl", 10, None, lambda s: None)
