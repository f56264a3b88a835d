"""The analyzer on the synthetic mini-NVMM (tests/fixtures/mini-nvmm), against the facts counted
by hand in its EXPECTED.md.  Runs anywhere: sync --dir, then analyze, through the real CLI."""

from __future__ import annotations

import json
import re

import pytest
from conftest import MINI, make_project

from nvmm_port.cli import main

EXPECTED = (MINI / "EXPECTED.md").read_text()
DRIVER = "sys/dev/virtual/nvmm/"


def expected_primitives() -> dict[str, tuple[str, int, list[str]]]:
    out = {}
    for m in re.finditer(r"^\| \d+ \| `([^`]+)` \| ([a-z -]+?) \| .*? \| (\d+) \| (.*?) \|$", EXPECTED, re.M):
        sites = [s.split(" ")[0] for s in m.group(4).split(", ")]
        out[m.group(1)] = (m.group(2), int(m.group(3)), sites)
    return out


def expected_foreign() -> dict[str, int]:
    section = EXPECTED.split("### Where each foreign identifier occurs", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\| `([^`]+)` \| (\d+) \|", section, re.M)}


def expected_vps() -> list[tuple[str, int, int, str, int]]:
    section = EXPECTED.split("### Outside nvmm_os.h", 1)[1].split("### Inside", 1)[0]
    rows = []
    for m in re.finditer(r"^\| \d+ \| (\S+) \| (\d+)-(\d+) \| (.*?) \| (\d+) \| .*? \| (\d+)", section, re.M):
        rows.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4), int(m.group(6))))
    return rows


def internal(path: str) -> str:
    """EXPECTED.md's short paths -> the internal view the tool normalises to."""
    if path.startswith("lib/"):
        return "libnvmm/" + path[4:]
    if path.startswith("test/"):
        return "tests/h_io_assist/" + path[5:]
    return "driver/" + path


@pytest.fixture(scope="module")
def surface(tmp_path_factory, capsys_module=None):
    proj = make_project(tmp_path_factory.mktemp("fixture"))
    assert main(["--project", str(proj), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    out = proj / "surface.json"
    assert main(["--project", str(proj), "analyze", "--format", "json", "--no-cache", "-o", str(out)]) == 0
    return json.loads(out.read_text())


def test_expected_file_parses():
    # guards the helpers above: if EXPECTED.md's tables change shape, the tests below must not go vacuous
    assert len(expected_primitives()) == 24
    assert len(expected_foreign()) == 74
    assert len(expected_vps()) == 15


def test_synced_with_dragonfly_layout(surface):
    assert surface["upstream"]["layout"] == "dragonfly"
    assert "driver/x86/nvmm_x86_vmx.c" in surface["upstream"]["files"]
    assert "tests/h_io_assist/h_io_assist.c" in surface["upstream"]["files"]
    assert surface["upstream"]["oses"] == ["netbsd", "dragonfly"]


def test_primitives_exactly(surface):
    exp = expected_primitives()
    got = {p["name"]: p for p in surface["primitives"]}
    assert set(got) == set(exp)
    for name, (kind, n, sites) in exp.items():
        p = got[name]
        assert p["kind"] == kind, name
        assert len(p["call_sites"]) == n, name
        assert sorted(p["call_sites"]) == sorted(internal(s) for s in sites), name
    assert sum(len(p["call_sites"]) for p in surface["primitives"]) == 34
    # which OS branches define what
    assert set(got["os_pmap_mach"]["definitions"]) == {"netbsd"}
    assert set(got["curlwp_bind"]["definitions"]) == {"dragonfly"}
    assert set(got["os_vmspace_create"]["definitions"]) == {"all"}
    netbsd = got["os_ipi_broadcast"]["definitions"]["netbsd"]["text"]
    dfly = got["os_ipi_broadcast"]["definitions"]["dragonfly"]["text"]
    assert "void *, void *" in netbsd and "void *, void *" not in dfly
    # BSD-compat spellings in the contract are not primitives
    assert set(surface["contract_compat"]) == {"vaddr_t", "__arraycount", "uimin"}


def test_call_site_functions(surface):
    p = {p["name"]: p for p in surface["primitives"]}
    fns = dict(zip(p["os_vmspace_fault"]["call_sites"], p["os_vmspace_fault"]["call_site_functions"], strict=True))
    assert fns == {"driver/nvmm.c:110": "nvmm_vcpu_run"}
    assert p["os_pmap_mach"]["call_site_oses"] == [["netbsd"]]


def test_variation_points_exactly(surface):
    vps = [v for v in surface["variation_points"] if not v["in_contract"]]
    assert len(vps) == 15
    assert len([v for v in surface["variation_points"] if v["in_contract"]]) == 6
    got = {(v["file"], v["line_start"], v["line_end"]): v for v in vps}
    for short, start, end, scope, branches in expected_vps():
        v = got[(internal(short), start, end)]
        assert len(v["branches"]) == branches, v["id"]
        m = re.match(r"(function|struct) `(\w+)`", scope)
        if m:
            want = m.group(2) if m.group(1) == "function" else f"struct {m.group(2)}"
            assert v["function"] == want and v["id"].startswith(f"{v['file']}:{want}#"), v["id"]
        else:
            assert v["function"] == "", v["id"]
    assert [v["id"] for v in vps if v["function"] == "vmx_vcpu_run"] == [
        "driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run#1", "driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run#2"]
    ram = next(v for v in vps if v["id"].startswith("driver/nvmm_internal.h:"))
    assert [b["oses"] for b in ram["branches"]] == [["netbsd"], ["dragonfly"], []]


def test_foreign_identifiers_exactly(surface):
    exp = expected_foreign()
    got = {f["name"]: f for f in surface["foreign_identifiers"] if "netbsd" in f["flavours"]}
    assert set(got) == set(exp)
    for name, n in exp.items():
        assert got[name]["uses"] == n, name
    groups = {n: f["group"] for n, f in got.items()}
    assert groups["vm_map"] == groups["p_pid"] == groups["pm_tlb_flush"] == "struct members"
    assert groups["_IOWR"] == "sys/ioccom.h" and groups["MSR_GSBASE"] == "machine/specialreg.h"
    assert groups["__BITS"] == "sys/bitops.h" and groups["ENTRY"] == "machine/asm.h"
    # traps: only expanded macro bodies count; DragonFly-only code does not count for NetBSD
    assert "lcr4" not in got and "do_cpuid" not in got and "LIST_FOREACH_MUTABLE" not in got
    # ... but it does for the DragonFly flavour
    dfly = {f["name"] for f in surface["foreign_identifiers"] if "dragonfly" in f["flavours"]}
    assert {"do_cpuid", "LIST_FOREACH_MUTABLE", "crit_enter"} <= dfly
    assert "__arraycount" not in dfly          # the DragonFly contract defines it
    assert [n for n, g in groups.items() if g == "unknown"] == []


def test_coverage(surface):
    cov = {c["file"]: c for c in surface["coverage"]}
    assert set(cov) == set(surface["upstream"]["files"])
    assert cov["driver/x86/nvmm_x86_vmxfunc.S"]["method"] == "preprocessor-scan"
    assert cov["driver/nvmm.c"]["method"] == "libclang"
    assert cov["driver/x86/nvmm_x86_vmx.c"]["skipped_regions"]["netbsd"]
    assert cov["EXPECTED.md"]["method"] == "not-source" if "EXPECTED.md" in cov else True


def test_markdown_report(tmp_path, capsys):
    proj = make_project(tmp_path)
    assert main(["--project", str(proj), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    capsys.readouterr()
    assert main(["--project", str(proj), "analyze"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Porting surface of `mini`")
    assert "| os_* primitives in `driver/nvmm_os.h` | 24 (24 used at 34 call sites) |" in md
    assert "| Primitive | Kind | NetBSD | DragonFly | Call sites |" in md
    assert "| `os_mtx_lock` | function-like macro |" in md
    assert "### `machine/specialreg.h` (9)" in md     # both flavours: DragonFly adds its renamed MSRs


def test_warm_analyze_gives_the_same_model(tmp_path):
    proj = make_project(tmp_path)
    assert main(["--project", str(proj), "sync", "--name", "mini", "--dir", str(MINI)]) == 0
    cold, warm = tmp_path / "cold.json", tmp_path / "warm.json"
    assert main(["--project", str(proj), "analyze", "--format", "json", "-o", str(cold)]) == 0
    assert list((proj / "build" / "cache").glob("surface-mini-*.json"))
    assert main(["--project", str(proj), "analyze", "--format", "json", "-o", str(warm)]) == 0
    assert json.loads(cold.read_text()) == json.loads(warm.read_text())
