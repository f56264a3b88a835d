"""QEMU as a client of the port: its source lock, the edits that let the port's OS in, the SDK a
client compiles against, the e2e judge of a nested boot, and (where the tools are installed) the
cached build itself: a second build does nothing, a changed libnvmm re-links."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOW_TO_SYNC, ROOT, reference_cache

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import e2e, qemu, sdk


def _tree(root: Path, meson: str, nvmm_all: str) -> Path:
    (root / "target/i386/nvmm").mkdir(parents=True)
    (root / "meson.build").write_text(meson)
    (root / "target/i386/nvmm/nvmm-all.c").write_text(nvmm_all)
    return root


# Made-up files holding only the anchors the edits look for, at made-up places.
MESON = ("project('x')\nnvmm = not_found\n"
         "if targetos == 'netbsd'\n  nvmm = cc.find_library('nvmm', required: get_option('nvmm'))\n"
         "  if nvmm.found()\n    accelerators += 'CONFIG_NVMM'\n  endif\nendif\n")
NVMM_ALL = ("static void f(CPUState *cpu)\n{\n"
            "    if (cpu->interrupt_request & CPU_INTERRUPT_SIPI) {\n"
            "        nvmm_cpu_synchronize_state(cpu);\n        do_cpu_sipi(x86_cpu);\n    }\n}\n")


def test_edits_let_the_ports_os_in_before_netbsds_lookup_and_clear_the_sipi(tmp_path: Path):
    src = _tree(tmp_path, MESON, NVMM_ALL)
    done = qemu.apply_edits(src, qemu.EDITS, "linux")
    assert [d.split(":")[0:2] for d in done] == [["meson.build", "3"], ["target/i386/nvmm/nvmm-all.c", "5"]]
    meson = (src / "meson.build").read_text()
    ours = meson.index("if targetos == 'linux'")
    assert ours < meson.index("if targetos == 'netbsd'")                     # NetBSD's lookup untouched, after ours
    assert "dependency('nvmm', required: get_option('nvmm'), method: 'pkg-config')" in meson
    assert meson.count("accelerators += 'CONFIG_NVMM'") == 2
    c = (src / "target/i386/nvmm/nvmm-all.c").read_text().splitlines()
    sipi = c.index("        cpu->interrupt_request &= ~CPU_INTERRUPT_SIPI;")
    assert c[sipi - 2].strip().startswith("nvmm_cpu_synchronize_state") and "do_cpu_sipi" in c[sipi + 1]


@pytest.mark.parametrize("meson, count", [(MESON.replace("netbsd", "openbsd"), 0), (MESON + MESON, 2)])
def test_an_edit_whose_anchor_is_missing_or_repeated_names_the_file_and_line(tmp_path: Path, meson: str, count: int):
    src = _tree(tmp_path, meson, NVMM_ALL)
    with pytest.raises(PortError) as e:
        qemu.apply_edits(src, qemu.EDITS, "linux")
    assert f"found {count} time(s)" in e.value.message
    assert e.value.where is not None and e.value.where.startswith(str(src / "meson.build") + ":")
    assert (src / "meson.build").read_text() == meson                        # nothing half-applied


def test_the_lock_is_required_and_checked(tmp_path: Path):
    proj = Project(tmp_path)
    with pytest.raises(PortError, match="no QEMU source lock") as e:
        qemu.load_lock(proj)
    assert "--update-lock" in (e.value.fix or "")
    (tmp_path / qemu.LOCK).parent.mkdir(parents=True)
    (tmp_path / qemu.LOCK).write_text("[source]\npackage = 'qemu'\n")
    with pytest.raises(PortError, match="malformed") as e:
        qemu.load_lock(proj)
    assert e.value.where == str(tmp_path / qemu.LOCK)


def test_the_committed_lock_pins_debians_qemu_with_every_file_hashed():
    lock = qemu.load_lock(Project.find(ROOT))
    assert lock.package == "qemu" and lock.upstream_version == "7.2"
    assert sorted(Path(n).suffix for n in lock.files) == [".dsc", ".xz", ".xz"]
    assert all(len(h) == 64 for h in lock.files.values())


def test_a_client_for_a_target_qemu_cannot_be_built_for_says_so():
    assert main(["--project", str(ROOT), "client", "qemu", "--target", "haiku"]) == 2


def _built_port(tmp_path: Path) -> Path:
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    from nvmm_port.run.build import build_target
    if not Path("/lib/modules").is_dir() or not any(Path("/usr/src").glob("linux-headers-*-amd64")):
        pytest.skip("no kernel headers: gen.py setup --for build")
    return build_target(Project.find(ROOT), "linux", None, None, None, False, 2).objdir


def test_a_plain_client_compiles_against_the_sdk_with_pkg_config_alone(tmp_path: Path):
    objdir = _built_port(tmp_path)
    prefix = tmp_path / "sdk"
    first = sdk.install_sdk(objdir, prefix)
    assert "libnvmm/nvmm.h" in first.headers and "driver/nvmm_ioctl.h" in first.headers
    # only what <nvmm.h> reaches: none of the compat wrappers of stdio.h, string.h, stdlib.h, unistd.h
    assert not any(h in first.headers for h in ("compat/stdio.h", "compat/string.h", "compat/stdlib.h",
                                                "compat/unistd.h"))
    again = sdk.install_sdk(objdir, prefix)
    assert again.changed == []                                               # bytes equal: nothing rewritten
    consumer = tmp_path / "client.c"
    consumer.write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <sys/queue.h>\n#include <nvmm.h>\n"
        "int main(void)\n{\n\tstruct nvmm_capability cap;\n\n\tmemset(&cap, 0, sizeof(cap));\n"
        "\tif (nvmm_init() == -1 || nvmm_capability(&cap) == -1) {\n\t\tperror(\"nvmm\");\n\t\treturn 3;\n\t}\n"
        "\tprintf(\"version=%u\\n\", (unsigned)cap.version);\n\treturn 0;\n}\n")
    env = dict(os.environ, PKG_CONFIG_PATH=str(first.pkgconfig_dir))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nvmm"], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(f.startswith(("-I" + str(prefix.resolve()), "-L" + str(prefix.resolve()), "-lnvmm")) for f in flags)
    exe = tmp_path / "client"
    cc = subprocess.run(["cc", "-Wall", "-Wextra", "-Werror", "-static", "-o", str(exe), str(consumer), *flags],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    if Path("/dev/nvmm").exists():
        assert run.returncode == 0 and "version=" in run.stdout
    else:                                                                    # no driver here: a clean ENOENT
        assert run.returncode == 3 and "No such file or directory" in run.stderr


def _step(output: list[str], rc: int) -> e2e.StepRun:
    return e2e.StepRun("qemu-smp2", output=output, rc=rc)


def test_the_nested_boot_judge():
    judge = e2e.judge_qemu("nvmm", 2)
    ok, why = judge(_step(["qemu-system-x86_64: NVMM: Unexpected RDMSR 0x3a, ignored",
                           "NESTED-GUEST-UP cpus=2 uptime=20.50", "[ 20.6] reboot: Power down"], 0))
    assert ok and "2 CPU(s)" in why and "1 message(s) from QEMU" in why
    assert judge(_step(["NESTED-GUEST-UP cpus=1 uptime=9.0"], 0)) == \
        (False, "the nested guest reports cpus=1, expected 2")
    ok, why = judge(_step(["NVMM: something"], 137))
    assert not ok and "killed" in why and "no marker" in why
    ok, why = judge(_step(["NESTED-GUEST-UP cpus=2", "Kernel panic - not syncing: Attempted to kill init!"], 0))
    assert not ok and "panicked" in why
    ok, why = judge(_step(["qemu-system-x86_64: -accel nvmm: failed to initialize nvmm: No such file or directory"],
                          1))
    assert not ok and "failed to initialize nvmm" in why


def test_the_e2e_plan_boots_qemu_once_per_vcpu_count_before_rmmod():
    plan = e2e.test_plan(e2e.Options("vmx", smp=2, client="qemu"), ["h_io_assist"])
    names = [s.name for s in plan.steps]
    assert names[-3:] == ["qemu-1", "qemu-smp2", "rmmod"]
    assert "-smp 2" in plan.steps[-2].command and "-accel nvmm" in plan.steps[-2].command
    one = e2e.test_plan(e2e.Options("svm", smp=1, client="qemu"), [])
    assert next(s for s in one.steps if s.name == "qemu-smp2").skip
    assert "qemu-1" not in [s.name for s in e2e.test_plan(e2e.Options("vmx", smp=2), []).steps]


def test_the_nested_guest_initramfs_holds_our_init_and_a_console(tmp_path: Path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    initrd = e2e.build_nested_guest(Project.find(ROOT), tmp_path)
    data = initrd.read_bytes()
    assert data.startswith(b"070701") and b"dev/console" in data and b"init\0" in data and b"TRAILER!!!" in data


@pytest.mark.skipif(shutil.which("meson") is None or shutil.which("dpkg-source") is None,
                    reason="QEMU's build tools are not installed: gen.py setup --for qemu")
def test_the_qemu_build_is_cached_a_second_run_does_nothing_and_a_new_libnvmm_relinks(tmp_path: Path, capsys):
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    proj = Project.find(ROOT)
    lines: list[str] = []
    first = qemu.build_qemu(proj, "linux", os.cpu_count() or 1, lines.append)     # builds once per cache
    assert first.program.is_file() and set(first.firmware) == set(qemu.FIRMWARE)
    assert [e.split(":")[0] for e in first.edits] == ["meson.build", "target/i386/nvmm/nvmm-all.c"]
    help_text = subprocess.run([str(first.program), "-accel", "help"], capture_output=True, text=True).stdout
    assert "nvmm" in help_text.split() and "kvm" in help_text.split()
    before = first.program.stat().st_mtime_ns
    second = qemu.build_qemu(proj, "linux", 2, lines.append)
    assert second.what == "up to date" and second.program.stat().st_mtime_ns == before
    assert second.sdk is not None and second.sdk.changed == []
    lib = second.sdk.library
    lib.write_bytes(lib.read_bytes() + b"\n")    # the SDK's libnvmm.a differs from the port's: reinstalled
    third = qemu.build_qemu(proj, "linux", 2, lines.append)
    assert third.sdk is not None and third.sdk.changed == ["lib/libnvmm.a"]
    assert third.what.startswith("re-linked"), third.what
    assert third.seconds["ninja"] < 60                                       # a link, not a rebuild
