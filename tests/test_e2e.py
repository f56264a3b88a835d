"""``gen.py e2e``: the pieces (initramfs, Bochs config, /init, the serial protocol and its
judges, the guest programs) everywhere, and the real runs under Bochs when it is installed.

The real runs are marked ``e2e`` (deselect with ``-m "not e2e"``); they skip, saying what to
install, without Bochs, the Debian kernel image matching the headers, or the synced upstream.
"""

from __future__ import annotations

import json
import lzma
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HOW_TO_SYNC, ROOT, reference_cache

from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run import bochs, bootimage, e2e
from nvmm_port.run.build import default_kdir, is_static_elf


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """path -> (mode, data, (rdevmajor, rdevminor)) of a newc archive, read independently."""
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos:pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out[name] = (f[1], body, (f[9], f[10]))


def test_initramfs_is_a_newc_archive_the_kernel_and_cpio_read(tmp_path):
    path = tmp_path / "initrd"
    bootimage.write_initramfs(path, [
        bootimage.file("init", b"#!/bin/sh\necho hi\n", executable=True),
        bootimage.directory("dev"),
        bootimage.chardev("dev/console", 5, 1),
        bootimage.symlink("bin/sh", "busybox"),
        bootimage.directory("bin"),
        bootimage.file("bin/busybox", b"x" * 5, executable=True),
    ])
    data = path.read_bytes()
    assert len(data) % 512 == 0
    entries = read_cpio(data)
    assert list(entries) == ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init"]   # parents first
    mode, body, _ = entries["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and body == b"#!/bin/sh\necho hi\n"
    mode, _, rdev = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"busybox"
    if shutil.which("cpio"):
        listing = subprocess.run(["cpio", "-t", "--quiet"], input=data, capture_output=True, check=True).stdout
        assert listing.decode().split() == ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init"]
    with pytest.raises(PortError, match="two initramfs entries"):
        bootimage.write_initramfs(tmp_path / "dup", [bootimage.directory("a"), bootimage.directory("a")])


def fake_bzimage(tmp_path: Path, elf: bytes, relocs: bytes) -> Path:
    """A minimal bzImage: boot header with HdrS, setup_sects, and an XZ payload."""
    payload = lzma.compress(elf + relocs, format=lzma.FORMAT_XZ)
    setup_sects = 1
    img = bytearray((setup_sects + 1) * 512)
    img[0x1F1] = setup_sects
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", img, 0x248, 0, len(payload))
    path = tmp_path / "vmlinuz"
    path.write_bytes(bytes(img) + payload)
    return path


def tiny_elf(sections: dict[str, tuple[int, int]]) -> bytes:
    """An ELF64 with only section headers: name -> (address, size)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in sections) + b".shstrtab\0"
    shoff = 64 + len(names)
    head = bytearray(64)
    head[:4] = b"\x7fELF"
    head[4], head[5] = 2, 1
    struct.pack_into("<Q", head, 0x28, shoff)
    nsec = len(sections) + 2
    struct.pack_into("<HHH", head, 0x3A, 64, nsec, nsec - 1)
    shdrs = bytearray(64)                      # the null section
    off = 1
    for name, (addr, size) in sections.items():
        shdrs += struct.pack("<IIQQQQIIQQ", off, 1, 0, addr, 0, size, 0, 0, 0, 0)
        off += len(name) + 1
    shdrs += struct.pack("<IIQQQQIIQQ", off, 3, 0, 0, 64, len(names), 0, 0, 0, 0)
    return bytes(head) + names + bytes(shdrs)


def test_kernel_payload_split_and_voffset(tmp_path):
    elf = tiny_elf({".text": (0x1000000, 0x100), ".rodata": (0x1200000, 0x10), ".bss": (0x1400000, 0x20),
                    ".brk": (0x1500000, 0x1001)})
    vmlinuz = fake_bzimage(tmp_path, elf, b"RELOCS")
    got_elf, got_relocs = bootimage.split_payload(vmlinuz)
    assert got_elf == elf and got_relocs == b"RELOCS"
    vo = bootimage.voffset_h(elf)
    assert "#define VO__text _AC(0x1000000,UL)" in vo
    assert "#define VO___bss_start _AC(0x1400000,UL)" in vo
    assert "#define VO__end _AC(0x1502000,UL)" in vo        # end of .brk, page aligned up
    bad = tmp_path / "bad"
    bad.write_bytes(b"\0" * 4096)
    with pytest.raises(PortError, match="not an x86 bzImage"):
        bootimage.split_payload(bad)


def test_missing_kernel_image_names_the_package():
    with pytest.raises(PortError) as exc:
        bootimage.debian_kernel("0.0.0-nope-amd64")
    assert "/boot/vmlinuz-0.0.0-nope-amd64" in str(exc.value)
    assert "apt-get install linux-image-0.0.0-nope-amd64" in str(exc.value)


def test_bochsrc_and_init_render_the_model(tmp_path):
    m = bochs.Machine(cpu_model="trinity_apu", cpus=2, iso=tmp_path / "b.iso", serial=tmp_path / "s.log",
                      log=tmp_path / "b.log")
    rc = bochs.render_bochsrc(ROOT / "templates", m)
    assert "cpu: model=trinity_apu, count=2," in rc
    assert f'com1: enabled=1, mode=file, dev="{tmp_path / "s.log"}"' in rc
    assert "display_library: term" in rc and "clock: sync=none" in rc

    plan = e2e.test_plan(e2e.Options(cpu="svm", smp=1, leak_cycles=7, fuzz_calls=99, seed=5), ["h_io_assist"])
    init = e2e.render_init(ROOT / "templates", plan)
    assert init.startswith("#!/bin/sh\n")
    steps = [line.split()[1] for line in init.splitlines() if line.startswith("step ")]
    assert steps == ["insmod", "h_io_assist", "sysenter32", "owner", "conf", "leak", "fuzz", "teardown", "rmmod"]  # smp skipped
    assert "step leak ./nvmm_leak 7 " in init and "step fuzz ./nvmm_fuzz 5 99" in init
    assert init.rstrip().endswith("poweroff -f")
    if shutil.which("sh"):
        subprocess.run(["sh", "-n"], input=init.encode(), check=True)     # valid shell


def follow(plan: e2e.Plan, lines: list[str]) -> e2e.Follower:
    f = e2e.Follower(plan, lambda s: None, verbose=False)
    for i, line in enumerate(lines):
        f(float(i), line)
    return f


def step_lines(name: str, rc: int, output: list[str], kmsg: list[str] = ()) -> list[str]:
    return ([f"E2E-STEP-BEGIN {name} uptime=1.0"] + output + [f"E2E-STEP-RC {name} {rc}"]
            + [f"E2E-KMSG {name} [ 1.0] {k}" for k in kmsg] + [f"E2E-STEP-END {name} uptime=2.0"])


def test_follower_judges_steps_from_status_output_and_kernel_messages():
    plan = e2e.test_plan(e2e.Options(cpu="vmx", smp=2), ["h_io_assist"])
    lines = (step_lines("insmod", 0, [], ["nvmm: loaded, backend x86-vmx, 2 CPU(s)"])
             + step_lines("h_io_assist", 0, ["Test 'test1 - INB' passed", "Test 'test2 - INW' passed"])
             + step_lines("leak", 0, ["cycles=1000 memfree_delta_kib=-4 sunreclaim_delta_kib=0 shmem_delta_kib=0"])
             + step_lines("fuzz", 0, ["fuzz_calls=10000 succeeded=800"],
                          ["WARNING: CPU: 0 PID: 7 at mm/page_alloc.c:1 foo"])
             + step_lines("owner", 1, ["FAIL: another process's ioctls did not all get EPERM"]))
    f = follow(plan, lines)
    assert f.runs["insmod"].verdict == "PASS" and "x86-vmx" in f.runs["insmod"].detail
    assert f.runs["h_io_assist"].verdict == "PASS" and f.runs["h_io_assist"].detail == "2 tests passed"
    assert f.runs["leak"].verdict == "PASS" and "MemFree delta -4 KiB" in f.runs["leak"].detail
    assert f.runs["fuzz"].verdict == "FAIL" and "kernel complained: WARNING" in f.runs["fuzz"].detail
    assert f.runs["owner"].verdict == "FAIL" and "EPERM" in f.runs["owner"].detail

    wrong = follow(plan, step_lines("insmod", 0, [], ["nvmm: loaded, backend x86-svm, 1 CPU(s)"]))
    assert wrong.runs["insmod"].verdict == "FAIL" and "wrong backend" in wrong.runs["insmod"].detail
    silent = follow(plan, step_lines("h_io_assist", 0, ["nothing"]))
    assert silent.runs["h_io_assist"].verdict == "FAIL"


def test_guest_programs_build_static_against_the_port(tmp_path):
    if reference_cache() is None:
        pytest.skip(HOW_TO_SYNC)
    if not Path("/usr/lib/x86_64-linux-gnu/libc.a").is_file():
        pytest.skip("no static C library: apt-get install libc6-dev")
    from nvmm_port.targets.generate import prepare, render_tree
    from nvmm_port.targets.writer import write_tree
    project = Project.find(ROOT)
    spec, surface, cache = prepare(project, "linux", None)
    out = tmp_path / "linux"
    write_tree(render_tree(project, spec, surface, cache, False), out)
    from nvmm_port.run.build import userland
    userland(out, 2)
    progs = e2e.build_guest_programs(project, out, tmp_path / "bin")
    assert sorted(progs) == sorted(e2e.GUEST_PROGRAMS + e2e.PLAIN_PROGRAMS + e2e.COMPAT32_PROGRAMS)
    assert all(is_static_elf(p) for p in progs.values())
    # the 32-bit one is a 32-bit ELF (EI_CLASS 1) with no executable stack
    head = progs["nvmm_sysenter32"].read_bytes()[:5]
    assert head[:4] == b"\x7fELF" and head[4] == 1


# -- the real runs --------------------------------------------------------------------------------

def _e2e_missing() -> str | None:
    if reference_cache() is None:
        return HOW_TO_SYNC
    if shutil.which("bochs-bin") is None or not bochs.BIOS.is_file():
        return "Bochs not installed: apt-get install bochs bochsbios vgabios bochs-term"
    if not bootimage.busybox_path():
        return "no static busybox: apt-get install busybox-static"
    kdir = default_kdir()
    if not (kdir / "Makefile").is_file():
        return "no kernel headers: apt-get install linux-headers-amd64"
    release = kdir.resolve().name.removeprefix("linux-headers-")
    if not Path(f"/boot/vmlinuz-{release}").is_file():
        return f"no kernel image matching the headers: apt-get install linux-image-{release}"
    if shutil.which("xorriso") is None or not bootimage.ISOLINUX_BIN.is_file():
        return "no ISO tools: apt-get install xorriso isolinux syslinux-common"
    return None


@pytest.mark.e2e
@pytest.mark.parametrize("cpu,smp", [("vmx", 2), ("svm", 2), ("vmx", 1), ("svm", 1)])
def test_e2e_run_passes(cpu, smp):
    why = _e2e_missing()
    if why:
        pytest.skip(why)
    proc = subprocess.run([sys.executable, str(ROOT / "gen.py"), "e2e", "--target", "linux", "--cpu", cpu,
                           "--smp", str(smp)], capture_output=True, text=True, cwd=ROOT)
    sys.stdout.write(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = json.loads((ROOT / "build" / "e2e" / f"linux-{cpu}-smp{smp}" / "result.json").read_text())
    verdicts = {s["name"]: s["verdict"] for s in result["steps"]}
    assert result["passed"] is True
    want = {"insmod", "h_io_assist", "h_mem_assist", "sysenter32", "owner", "conf", "leak", "fuzz", "teardown", "rmmod"}
    assert want <= {n for n, v in verdicts.items() if v == "PASS"}
    assert verdicts["smp"] == ("PASS" if smp >= 2 else "SKIP")
    steps = {s["name"]: s for s in result["steps"]}
    assert int(steps["fuzz"]["values"]["fuzz_calls"]) >= 100000
    assert int(steps["leak"]["values"]["cycles"]) == 1000
    assert steps["owner"]["values"]["eperm"] == steps["owner"]["values"]["intruder_probes"]
    assert steps["sysenter32"]["values"]["cpus"] == str(smp)     # every CPU, after the guests ran there
    if smp >= 2:
        assert steps["smp"]["values"]["host_cpus"] == "2" and int(steps["smp"]["values"]["migrations"]) >= 4
    assert (ROOT / "build" / "e2e" / f"linux-{cpu}-smp{smp}" / "serial.log").stat().st_size > 0


def test_rt_and_lockdep_splats_fail_the_step():
    """What PREEMPT_RT and lockdep print when the VM-entry path sleeps where it may not: each fails
    the step it happens in (Debian's RT kernels have no DEBUG_ATOMIC_SLEEP, but a real sleep with
    preemption off still prints "scheduling while atomic")."""
    plan = e2e.test_plan(e2e.Options(cpu="vmx", smp=2), ["h_io_assist"])
    for msg in ("BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48",
                "BUG: scheduling while atomic: h_io_assist/123/0x00000002",
                "WARNING: possible circular locking dependency detected",
                "WARNING: possible recursive locking detected",
                "WARNING: inconsistent lock state",
                "INFO: trying to register non-static key."):
        f = follow(plan, step_lines("h_io_assist", 0, ["Test 'test1 - INB' passed"], [msg]))
        assert f.runs["h_io_assist"].verdict == "FAIL", msg
