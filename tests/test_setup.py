"""gen.py setup: the Debian packages each job needs, shared by README's first command and .ci/run."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.run import system

ROOT = Path(__file__).resolve().parent.parent


def fake_dpkg(installed: set[str]):
    calls: list[list[str]] = []

    def run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(cmd))
        assert cmd[0] == "dpkg-query"
        pkgs = [c for c in cmd[1:] if not c.startswith("-")]
        out = "".join(f"{p} {'installed' if p in installed else 'not-installed'}\n" for p in pkgs if p != "absent")
        return subprocess.CompletedProcess(list(cmd), 1 if "absent" in pkgs else 0, out, "")
    return run, calls


def test_jobs_parse_and_e2e_implies_build():
    assert system.parse_jobs("all") == ("build", "e2e", "test", "qemu")
    assert system.parse_jobs("e2e") == ("build", "e2e")
    assert system.parse_jobs("qemu") == ("build", "qemu")
    assert system.parse_jobs("test,build") == ("build", "test")
    with pytest.raises(PortError, match="unknown job bogus for --for"):
        system.parse_jobs("build,bogus")


def test_deb_src_is_found_in_either_format_and_written_for_this_release(tmp_path: Path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://deb.debian.org/debian\n")
    (etc / "sources.list").write_text("# deb-src http://deb.debian.org/debian bookworm main\n")
    assert not system.has_deb_src(etc)                    # a commented line and a deb-only source
    (etc / "sources.list.d" / "src.sources").write_text("Types: deb deb-src\nURIs: http://x\n")
    assert system.has_deb_src(etc)
    (etc / "sources.list.d" / "src.sources").unlink()
    (etc / "sources.list.d" / "x.list").write_text("deb-src http://deb.debian.org/debian bookworm main\n")
    assert system.has_deb_src(etc)
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    text = system.deb_src_text(system.debian_codename(os_release))
    assert "Types: deb-src" in text and "Suites: bookworm bookworm-updates" in text
    with pytest.raises(PortError, match="codename"):
        system.debian_codename(tmp_path / "none")


def test_plan_marks_what_dpkg_has_and_says_why():
    run, calls = fake_dpkg({"git", "make", "gcc"})
    pl = system.plan(("build",), run=run)
    assert len(calls) == 1                       # one dpkg-query for the whole plan
    assert [s.package for s in pl.steps] == ["git", "make", "gcc", "libc6-dev", "binutils", "linux-headers-amd64", "clang",
                                             "libclang-rt-14-dev"]
    assert pl.missing == ["libc6-dev", "binutils", "linux-headers-amd64", "clang", "libclang-rt-14-dev"]
    assert all(s.why for s in pl.steps)
    # nothing of e2e's in a build plan; the test job adds unifdef and the fuzzing runtimes
    assert "bochs" not in pl.missing
    assert [s.package for s in system.plan(("test",), run=run).steps] == ["unifdef", "libclang-rt-14-dev", "llvm-14"]


def test_second_round_is_the_headers_release(tmp_path):
    (tmp_path / "linux-headers-6.1.0-9-amd64").mkdir()
    (tmp_path / "linux-headers-6.1.0-57-amd64").mkdir()
    (tmp_path / "linux-headers-6.1.0-57-common").mkdir()
    rel = system.headers_release(tmp_path)
    assert rel == "6.1.0-57-amd64"
    pkgs = [p for n in system.kernel_needs(rel) for p in n.packages]
    assert pkgs == ["linux-image-6.1.0-57-amd64", "linux-source-6.1"]
    assert system.headers_release(tmp_path / "none") is None


def test_failed_install_is_one_error_with_apts_last_lines(monkeypatch):
    monkeypatch.setattr(system, "apt_command", lambda pkgs: [
        ["sh", "-c", "echo Reading package lists...; echo 'E: Unable to locate package nope' >&2; exit 100"]])
    seen: list[str] = []
    with pytest.raises(PortError) as exc:
        system.install(["nope"], seen.append)
    assert "`apt-get install nope` failed (exit 100)" in exc.value.one_line()
    assert "E: Unable to locate package nope" in exc.value.details
    assert "E: Unable to locate package nope" in seen      # streamed as it came


def test_no_apt_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(system.shutil, "which", lambda name: None)
    assert main(["setup", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "gen.py setup installs Debian packages, and this system has no apt-get/dpkg-query" in err
    assert "bochs" in err and "linux-headers-amd64" in err


def test_not_root_without_sudo_is_refused(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(system.shutil, "which", lambda name: None)
    with pytest.raises(PortError, match="needs root, and there is no sudo"):
        system.apt_command(["git"])
    monkeypatch.setattr(system.shutil, "which", lambda name: "/usr/bin/sudo")
    assert all(cmd[0] == "sudo" for cmd in system.apt_command(["git"]))


def test_readme_and_ci_install_through_the_same_command():
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)\n", readme, re.S)
    assert first, "README starts with a sh block"
    assert "gen.py setup" in first.group(1) and "python3 -m venv" in first.group(1)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "gen.py setup --for all" in ci and "-m venv" in ci
    assert "apt-get" not in ci          # one place installs Debian packages: gen.py setup
