"""``gen.py e2e``: run the generated driver for real, inside an emulated machine.

The run builds (if stale) the target's kernel module, libnvmm and upstream's test programs,
adds the end-to-end programs of ``shim/common/e2e/``, packs them with busybox into an
initramfs whose ``/init`` runs a :class:`Plan` of :class:`Step` s, boots the Debian kernel
matching the module's headers under Bochs with VT-x+EPT or AMD-V+NPT, follows the serial
console, and judges every step from its exit status, its output and the kernel messages it
caused.  The result is one line per step, PASS/FAIL overall, the serial log and a
``result.json`` with the wall time of every phase.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from .. import ui
from ..errors import PortError
from ..project import Project
from . import bochs, bootimage
from .build import build_target, is_static_elf, tree_lock

BACKENDS = {"vmx": "x86-vmx", "svm": "x86-svm"}
KERNEL_CMDLINE = "console=ttyS0,115200 panic=-1 quiet rodata=off cryptomgr.notests=1 softlockup_all_cpu_backtrace=1"
FINAL_MARKER = "E2E-DONE"

# Kernel messages no step may cause.
BAD_KMSG = re.compile(
    r"BUG:|Oops|WARNING:|Call Trace|general protection|kernel BUG|refcount_t:|list_(add|del) corruption|"
    r"UBSAN|KASAN|soft lockup|hard LOCKUP|blocked for more than|rcu.*(stall|starved)|segfault at|traps:|"
    r"double fault|unable to handle|Modules linked in|INFO: trying to register non-static key|"
    r"scheduling while atomic|sleeping function called from invalid context|possible (circular|recursive) locking")

# The end-to-end programs (shim/common/e2e/NAME.c), built static against the port's libnvmm.
GUEST_PROGRAMS = ("nvmm_smp", "nvmm_owner", "nvmm_conf", "nvmm_leak", "nvmm_fuzz", "nvmm_teardown", "nvmm_exits")
# Built against the C library and the kernel's UAPI headers only.
PLAIN_PROGRAMS = ("kvm_exits",)
COMPAT32_PROGRAMS = ("nvmm_sysenter32",)     # 32-bit, freestanding assembly (cc -m32 -nostdlib)
# The guest kernel's own KVM, in load order (Debian's linux-image ships them).
KVM_MODULES = {"vmx": ("virt/lib/irqbypass.ko", "arch/x86/kvm/kvm.ko", "arch/x86/kvm/kvm-intel.ko"),
               "svm": ("virt/lib/irqbypass.ko", "arch/x86/kvm/kvm.ko", "drivers/crypto/ccp/ccp.ko",
                       "arch/x86/kvm/kvm-amd.ko")}


@dataclass
class Step:
    """One thing the guest does, and how the host judges it."""
    name: str
    command: str                                   # shell words, run in /e2e
    judge: Callable[[StepRun], tuple[bool, str]]
    skip: str | None = None                        # why it is not run, if it is not


@dataclass
class StepRun:
    name: str
    output: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)     # host seconds at which each output line arrived
    kmsg: list[str] = field(default_factory=list)
    rc: int | None = None
    begin: float | None = None
    end: float | None = None
    verdict: str = "FAIL"
    detail: str = ""
    guest_begin: float | None = None               # the guest's uptime at E2E-STEP-BEGIN / END
    guest_end: float | None = None

    def first(self, pattern: re.Pattern[str]) -> float | None:
        """Host seconds from the step's start to the first output line matching ``pattern``."""
        for line, t in zip(self.output, self.times, strict=False):
            if pattern.search(line) and self.begin is not None:
                return t - self.begin
        return None

    def values(self) -> dict[str, str]:
        """key=value pairs the step printed (the last value of each key)."""
        out: dict[str, str] = {}
        for line in self.output:
            for k, v in re.findall(r"\b([a-z_0-9]+)=(\S+)", line):
                out[k] = v
        return out


@dataclass
class Plan:
    title: str
    steps: list[Step]


# -- judges -----------------------------------------------------------------------------------------

def _exit_ok(run: StepRun) -> tuple[bool, str]:
    fails = [line for line in run.output if line.startswith("FAIL")]
    if run.rc != 0:
        return False, fails[0] if fails else f"exit status {run.rc}"
    if fails:
        return False, fails[0]
    return True, ""


def _exit_ok_then(run: StepRun, describe: Callable[[dict[str, str]], str]) -> tuple[bool, str]:
    """Judged by exit status and FAIL lines; on success, described from its key=value output."""
    ok, why = _exit_ok(run)
    return (True, describe(run.values())) if ok else (False, why)


def judge_insmod(backend: str) -> Callable[[StepRun], tuple[bool, str]]:
    def judge(run: StepRun) -> tuple[bool, str]:
        if run.rc != 0:
            return False, f"insmod exit {run.rc}: " + " | ".join(run.output[-2:])
        loaded = [k for k in run.kmsg if "nvmm: loaded" in k]
        if not loaded:
            return False, "no 'nvmm: loaded' message in dmesg"
        if f"backend {backend}" not in loaded[0]:
            return False, f"wrong backend: {loaded[0].strip()}"
        nudges = run.values().get("nmi_nudges")
        return True, loaded[0].split("] ", 1)[-1].strip() + (f"; nmi_nudges={nudges}" if nudges else "")
    return judge


def judge_upstream_test(run: StepRun) -> tuple[bool, str]:
    passed = [line for line in run.output if re.match(r"Test '.*' passed", line)]
    failed = [line for line in run.output if re.search(r"\bfail(ed)?\b", line, re.I)]
    if run.rc != 0:
        return False, f"exit status {run.rc}: " + (failed[0] if failed else " | ".join(run.output[-2:]))
    if not passed:
        return False, "exit 0 but no test reported 'passed'"
    return True, f"{len(passed)} tests passed"


def judge_smp(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: (
        f"2 vCPUs on 2 host CPUs: {v.get('migrations', '?')} migrations between runs, "
        f"{v.get('affinity_moves', '?')} forced moves, {v.get('remaps', '?')} remaps, 0 stale reads"))


def judge_sysenter32(run: StepRun) -> tuple[bool, str]:
    """After the guests ran: a 32-bit process's SYSENTER system calls work on every CPU (the VM exits
    gave the host its IA32_SYSENTER_* MSRs back)."""
    if run.rc != 0:
        why = {139: "SIGSEGV: SYSENTER faulted (IA32_SYSENTER_CS left 0 by a VM exit?)",
               2: "no vDSO for 32-bit processes"}.get(run.rc or 0, "")
        return False, f"exit status {run.rc} {why}".strip()
    n = run.values().get("cpus", "?")
    return True, f"1000 getpid() per CPU through the 32-bit vDSO on {n} CPU(s)"


def judge_owner(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: (
        f"{v.get('eperm')}/{v.get('intruder_probes')} ioctls of another process got EPERM; owner intact"))


def judge_conf(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: "NVMM_VCPU_CONF_CPUID copied in: CPUID leaf 0, answered by the kernel "
                         "before, now exits to userland")


def judge_leak(run: StepRun) -> tuple[bool, str]:
    ok, why = _exit_ok(run)
    v = run.values()
    detail = (f"{v.get('cycles', '?')} cycles: MemFree delta {v.get('memfree_delta_kib', '?')} KiB, "
              f"unreclaimable slab {v.get('sunreclaim_delta_kib', '?')} KiB, shmem {v.get('shmem_delta_kib', '?')} KiB")
    return ok, detail if ok else f"{why}; {detail}"


def judge_fuzz(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: (
        f"{v.get('fuzz_calls')} calls (seed {v.get('seed')}), {v.get('succeeded')} succeeded"))


def judge_teardown(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: (
        f"{v.get('max_machines')} machines abandoned by exit and by SIGKILL mid-run, all slots refilled; "
        f"MemFree delta {v.get('memfree_delta_kib')} KiB"))


NESTED_MARKER = re.compile(r"NESTED-GUEST-UP cpus=(\d+)(?: uptime=(\S+))?")
QEMU_TIMEOUT = 240          # emulated seconds a nested boot may take (Bochs runs them at ~0.45x wall time)


def judge_qemu(accel: str, cpus: int) -> Callable[[StepRun], tuple[bool, str]]:
    """QEMU booted the nested Linux guest to its marker with ``cpus`` CPUs online and exited 0 when
    the guest powered off; QEMU's own accelerator messages are counted (they are in the log)."""
    def judge(run: StepRun) -> tuple[bool, str]:
        seen = [m for line in run.output if (m := NESTED_MARKER.search(line))]
        panic = next((line for line in run.output if "Kernel panic" in line), None)
        own = [line for line in run.output if line.lstrip().startswith(("NVMM:", "qemu-system-x86_64:"))]
        if run.rc == 137:
            return False, f"QEMU killed after {QEMU_TIMEOUT} s: " + ("the guest printed its marker but never powered "
                                                                     "off" if seen else "no marker (hung?)")
        if panic:
            return False, f"the nested guest panicked: {panic.strip()}"
        if not seen:
            why = own[-1].strip() if own else " | ".join(line.strip() for line in run.output[-2:])
            return False, f"exit status {run.rc}, no NESTED-GUEST-UP marker: {why}"
        got = int(seen[-1].group(1))
        if got != cpus:
            return False, f"the nested guest reports cpus={got}, expected {cpus}"
        if run.rc != 0:
            return False, f"marker seen, but QEMU exited {run.rc}: " + (own[-1].strip() if own else "")
        up = seen[-1].group(2)
        nudges = run.values().get("nmi_nudges")
        return True, (f"-accel {accel}: Linux guest up with {got} CPU(s)" + (f" at guest uptime {up} s" if up else "")
                      + f", powered off, QEMU exit 0; {len(own)} message(s) from QEMU"
                      + (f"; nmi_nudges={nudges}" if nudges is not None else ""))
    return judge


def qemu_step(name: str, accel: str, cpus: int) -> Step:
    """Boot the nested guest (Debian's kernel, our /init) with QEMU's ``accel`` and ``cpus`` vCPUs."""
    qemu = (f"timeout -s KILL {QEMU_TIMEOUT} ./qemu/qemu-system-x86_64 -accel {accel} -M pc -smp {cpus} -m 128 "
            "-L qemu/fw -nodefaults -display none -serial stdio -no-reboot -kernel qemu/vmlinuz "
            "-initrd qemu/ginitrd -append \"console=ttyS0 quiet panic=-1\"")
    if accel != "nvmm":
        return Step(name, qemu, judge_qemu(accel, cpus))
    # QEMU's status is the step's; the module's count of NMI-ended cross-CPU waits is reported
    nudges = "/sys/module/nvmm/parameters/nmi_nudges"
    return Step(name, f"sh -c '{qemu}; rc=$?; echo nmi_nudges=$(cat {nudges}); exit $rc'", judge_qemu(accel, cpus))


def judge_rmmod(run: StepRun) -> tuple[bool, str]:
    if run.rc != 0:
        return False, f"exit status {run.rc}: " + " | ".join(run.output[-2:])
    return True, "module unloaded, /dev/nvmm gone"


INSMOD = "sh -c 'insmod /e2e/nvmm.ko && echo nmi_nudges=$(cat /sys/module/nvmm/parameters/nmi_nudges)'"


# -- plan ---------------------------------------------------------------------------------------------

@dataclass
class Options:
    cpu: str
    smp: int = 1
    leak_cycles: int = 1000
    fuzz_calls: int = 100000
    seed: int = 1
    leak_limit_kib: int = 3072        # MemFree; slab and shmem: 256 (nvmm_leak.c says why)
    client: str | None = None         # qemu: also boot a Linux guest with QEMU -accel nvmm


def test_plan(opts: Options, upstream_tests: list[str]) -> Plan:
    backend = BACKENDS[opts.cpu]
    steps = [Step("insmod", INSMOD, judge_insmod(backend))]
    for t in upstream_tests:
        steps.append(Step(t, f"./{t}", judge_upstream_test))
    steps.append(Step("smp", "./nvmm_smp 6 200", judge_smp,
                      skip=None if opts.smp >= 2 else "needs 2 host CPUs: run with --smp 2"))
    steps.append(Step("sysenter32", "sh -c 'n=$(grep -c ^processor /proc/cpuinfo); c=0; "
                      "while [ $c -lt $n ]; do taskset -c $c ./nvmm_sysenter32 || exit $?; c=$((c+1)); done; "
                      "echo cpus=$n'", judge_sysenter32))
    steps.append(Step("owner", "./nvmm_owner", judge_owner))
    steps.append(Step("conf", "./nvmm_conf", judge_conf))
    steps.append(Step("leak", f"./nvmm_leak {opts.leak_cycles} {opts.leak_limit_kib} 256", judge_leak))
    steps.append(Step("fuzz", f"./nvmm_fuzz {opts.seed} {opts.fuzz_calls}", judge_fuzz))
    steps.append(Step("teardown", f"./nvmm_teardown {opts.leak_limit_kib}", judge_teardown))
    if opts.client == "qemu":
        steps.append(qemu_step("qemu-1", "nvmm", 1))
        smp2 = qemu_step("qemu-smp2", "nvmm", 2)
        smp2.skip = None if opts.smp >= 2 else "needs 2 host CPUs: run with --smp 2"
        steps.append(smp2)
    steps.append(Step("rmmod", "sh -c 'rmmod nvmm && ! test -e /dev/nvmm'", judge_rmmod))
    return Plan(f"NVMM end-to-end, {opts.cpu}, {opts.smp} CPU(s)", steps)


def judge_exits(run: StepRun) -> tuple[bool, str]:
    return _exit_ok_then(run, lambda v: (
        f"{v.get('io_exits_per_s')} I/O exits/s, {v.get('cpuid_exits_per_s')} CPUID exits/s"))


def judge_kvm_load(run: StepRun) -> tuple[bool, str]:
    if run.rc != 0:
        return False, f"exit status {run.rc}: " + " | ".join(run.output[-2:])
    return True, "kvm modules loaded, /dev/kvm present"


def bench_plan(cpu: str, exits: int) -> Plan:
    """NVMM, then (after rmmod) the guest kernel's KVM, running the same guest loop."""
    kvm = " && ".join(f"insmod /e2e/kvm/{Path(m).name}" for m in KVM_MODULES[cpu])
    return Plan(f"NVMM vs KVM exits, {cpu}", [
        Step("insmod", "insmod /e2e/nvmm.ko", judge_insmod(BACKENDS[cpu])),
        Step("nvmm_exits", f"./nvmm_exits {exits}", judge_exits),
        Step("rmmod", "sh -c 'rmmod nvmm && ! test -e /dev/nvmm'", judge_rmmod),
        Step("kvm_load", f"sh -c '{kvm} && test -e /dev/kvm'", judge_kvm_load),
        Step("kvm_exits", f"./kvm_exits {exits}", judge_exits),
    ])


def qemu_bench_plan(cpu: str, cpus: int) -> Plan:
    """The same nested Linux boot with QEMU -accel nvmm, then (after rmmod) -accel kvm."""
    kvm = " && ".join(f"insmod /e2e/kvm/{Path(m).name}" for m in KVM_MODULES[cpu])
    return Plan(f"QEMU boot, NVMM vs KVM, {cpu}, {cpus} vCPU(s)", [
        Step("insmod", "insmod /e2e/nvmm.ko", judge_insmod(BACKENDS[cpu])),
        qemu_step("qemu-nvmm", "nvmm", cpus),
        Step("rmmod", "sh -c 'rmmod nvmm && ! test -e /dev/nvmm'", judge_rmmod),
        Step("kvm_load", f"sh -c '{kvm} && test -e /dev/kvm'", judge_kvm_load),
        qemu_step("qemu-kvm", "kvm", cpus),
    ])


def render_init(templates: Path, plan: Plan) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("e2e/init.sh.j2").render(title=plan.title,
                                                     steps=[s for s in plan.steps if s.skip is None])


# -- serial protocol --------------------------------------------------------------------------------

_BEGIN = re.compile(r"E2E-STEP-BEGIN (\S+)")
_UPTIME = re.compile(r"uptime=([0-9.]+)")
_RC = re.compile(r"E2E-STEP-RC (\S+) (\d+)")
_KMSG = re.compile(r"E2E-KMSG (\S+) (.*)")
_END = re.compile(r"E2E-STEP-END (\S+)")


class Follower:
    """Turns serial lines into StepRuns as they arrive, judging each step at its end."""

    def __init__(self, plan: Plan, echo: Callable[[str], None], verbose: bool):
        self.plan = plan
        self.by_name = {s.name: s for s in plan.steps}
        self.runs: dict[str, StepRun] = {}
        self.current: StepRun | None = None
        self.echo = echo
        self.verbose = verbose
        self.milestones: dict[str, float] = {}

    def __call__(self, t: float, line: str) -> None:
        if self.verbose:
            self.echo(f"  | {line}")
        for key, pat in (("kernel", "Linux version"), ("booted", "E2E-BOOTED"), ("done", FINAL_MARKER)):
            if pat in line and key not in self.milestones:
                self.milestones[key] = t
                if key == "booted":
                    self.echo(f"[{t:6.1f}s] guest up: {line.split(' ', 1)[-1]}")
        if m := _BEGIN.match(line):
            self.current = StepRun(m.group(1), begin=t)
            if u := _UPTIME.search(line):
                self.current.guest_begin = float(u.group(1))
            self.runs[m.group(1)] = self.current
            self.echo(f"[{t:6.1f}s] {m.group(1)} ...")
            return
        if m := _RC.match(line):
            if m.group(1) in self.runs:
                self.runs[m.group(1)].rc = int(m.group(2))
            return
        if m := _KMSG.match(line):
            if m.group(1) in self.runs:
                self.runs[m.group(1)].kmsg.append(m.group(2))
            return
        if m := _END.match(line):
            run = self.runs.get(m.group(1))
            if run is not None:
                run.end = t
                if u := _UPTIME.search(line):
                    run.guest_end = float(u.group(1))
                self.judge(run)
                secs = t - run.begin if run.begin is not None else 0.0   # begin is set when BEGIN opens the run
                self.echo(f"[{t:6.1f}s] {run.verdict} {run.name} ({secs:.1f} s): {run.detail}")
            self.current = None
            return
        if self.current is not None:
            self.current.output.append(line)
            self.current.times.append(t)

    def judge(self, run: StepRun) -> None:
        ok, detail = self.by_name[run.name].judge(run)
        bad = [k for k in run.kmsg if BAD_KMSG.search(k)]
        if ok and bad:
            ok, detail = False, f"kernel complained: {bad[0].split('] ', 1)[-1].strip()}"
        run.verdict, run.detail = ("PASS" if ok else "FAIL"), detail


# -- build and pack -----------------------------------------------------------------------------------

def build_guest_programs(project: Project, out: Path, dest: Path, cc: str = "cc") -> dict[str, Path]:
    """The end-to-end programs, static, against the port's libnvmm and userland compat headers."""
    src = project.shim_dir / "common" / "e2e"
    lib = out / "libnvmm" / "libnvmm.a"
    if not lib.is_file():
        raise PortError("no libnvmm.a in the port tree", lib, "the target needs [build] userland = true")
    dest.mkdir(parents=True, exist_ok=True)
    progs = {}
    for name in GUEST_PROGRAMS + PLAIN_PROGRAMS:
        c = src / f"{name}.c"
        if not c.is_file():
            raise PortError("missing end-to-end program source", c, "restore it from git")
        exe = dest / name
        cmd = [cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"]
        if name in PLAIN_PROGRAMS:
            cmd += [f"-I{src}", "-o", str(exe), str(c)]
        else:
            cmd += [f"-I{out / 'compat-tests'}", f"-I{out / 'libnvmm'}", f"-I{out / 'driver'}", f"-I{src}",
                    "-o", str(exe), str(c), str(lib), "-lpthread"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PortError(f"{name}.c did not build", c, "fix the compiler errors below",
                            proc.stderr.strip().splitlines()[-10:])
        if not is_static_elf(exe):
            raise PortError(f"{name} is not static", exe, "it must run in a bare initramfs")
        progs[name] = exe
    for name in COMPAT32_PROGRAMS:
        asm = src / f"{name}.S"
        exe = dest / name
        proc = subprocess.run([cc, "-m32", "-nostdlib", "-static", "-o", str(exe), str(asm)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise PortError(f"{name}.S did not build", asm, "fix the assembler errors below (cc -m32 needs "
                            "binutils' i386 support, which Debian's binutils has)",
                            proc.stderr.strip().splitlines()[-10:])
        progs[name] = exe
    return progs


def build_nested_guest(project: Project, dest: Path, cc: str = "cc") -> Path:
    """The nested guest's initramfs: /dev/console and our static /init (guest_init.c)."""
    src = project.shim_dir / "common" / "e2e" / "guest_init.c"
    exe = dest / "guest_init"
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise PortError("guest_init.c did not build", src, "fix the compiler errors below",
                        proc.stderr.strip().splitlines()[-10:])
    subprocess.run(["strip", str(exe)], check=True)
    initrd = dest / "ginitrd"
    bootimage.write_initramfs(initrd, [bootimage.directory("dev"), bootimage.chardev("dev/console", 5, 1),
                                       bootimage.file("init", exe.read_bytes(), executable=True)])
    return initrd


def busybox() -> Path:
    p = bootimage.busybox_path()
    if p is None:
        raise PortError("no static busybox", "/bin/busybox", "apt-get install busybox-static")
    return p


def pack_initramfs(path: Path, init: str, files: dict[str, Path], module: Path) -> None:
    """busybox, /init, the module (debug info stripped) and the programs under /e2e."""
    ko = path.parent / "nvmm.ko"
    subprocess.run(["strip", "--strip-debug", "-o", str(ko), str(module)], check=True)
    dirs = {"bin", "sbin", "dev", "proc", "sys", "tmp", "e2e"} | {f"e2e/{d}" for n in files for d in Path(n).parents
                                                                  if d != Path(".")}
    entries = [bootimage.directory(d) for d in sorted(dirs)]
    entries += [bootimage.file("bin/busybox", busybox().read_bytes(), executable=True),
                bootimage.symlink("bin/sh", "busybox"),
                bootimage.chardev("dev/console", 5, 1),
                bootimage.chardev("dev/null", 1, 3, 0o666),
                bootimage.file("init", init.encode(), executable=True),
                bootimage.file("e2e/nvmm.ko", ko.read_bytes())]
    entries += [bootimage.file(f"e2e/{name}", p.read_bytes(), executable=True) for name, p in sorted(files.items())]
    bootimage.write_initramfs(path, entries)


# -- the run ------------------------------------------------------------------------------------------

@dataclass
class Result:
    plan: Plan
    runs: dict[str, StepRun]
    boot: bochs.RunResult | None
    phases: dict[str, float]
    machine: bochs.Machine | None
    serial_log: Path
    passed: bool = False
    problem: str = ""

    def rows(self) -> Iterator[tuple[Step, str, str, float | None, StepRun | None]]:
        """(step, verdict, detail, host seconds or None, run or None) for every planned step."""
        for s in self.plan.steps:
            run = self.runs.get(s.name)
            if s.skip:
                yield s, "SKIP", s.skip, None, None
            elif run is None:
                yield s, "FAIL", "never started", None, None
            else:
                secs = run.end - run.begin if run.end is not None and run.begin is not None else None
                yield s, run.verdict, run.detail, secs, run

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.plan.title,
            "passed": self.passed,
            "problem": self.problem,
            "machine": self.machine.describe if self.machine else None,
            "phases_s": {k: round(v, 2) for k, v in self.phases.items()},
            "steps": [{"name": s.name, "verdict": verdict, "detail": detail,
                       "rc": run.rc if run else None,
                       "seconds": round(secs, 2) if secs is not None else None,
                       "values": run.values() if run else {}}
                      for s, verdict, detail, secs, run in self.rows()],
            "serial_log": str(self.serial_log),
        }


def run_plan(project: Project, plan: Plan, cpu: str, smp: int, workdir: Path, module: Path, files: dict[str, Path],
             kernel: Path, echo: Callable[[str], None], timeout: float, verbose: bool = False,
             cpu_model: str | None = None, phases: dict[str, float] | None = None) -> Result:
    """Pack, boot and follow one plan; every step judged, never raising for a guest failure."""
    phases = dict(phases or {})
    t = time.monotonic()
    initrd = workdir / "initramfs.cpio"
    pack_initramfs(initrd, render_init(project.templates_dir, plan), files, module)
    iso = workdir / "boot.iso"
    bootimage.make_iso(iso, kernel, initrd, KERNEL_CMDLINE)
    phases["pack"] = time.monotonic() - t

    machine = bochs.Machine(cpu_model=cpu_model or bochs.CPU_MODELS[cpu], cpus=smp, iso=iso,
                            serial=workdir / "serial.log", log=workdir / "bochs.log")
    echo(f"booting {machine.describe} (timeout {timeout:.0f} s)")
    follower = Follower(plan, echo, verbose)
    boot = bochs.run(project.templates_dir, machine, workdir, timeout, FINAL_MARKER, follower)
    ms = follower.milestones
    if "booted" in ms:
        phases["boot"] = ms["booted"]
        first = min((r.begin for r in follower.runs.values() if r.begin is not None), default=None)
        last = max((r.end for r in follower.runs.values() if r.end is not None), default=None)
        if first is not None and last is not None:
            phases["steps"] = last - first
    phases["emulator_total"] = boot.wall
    res = Result(plan, follower.runs, boot, phases, machine, machine.serial)

    problems = []
    for s in plan.steps:
        if s.skip:
            continue
        run = follower.runs.get(s.name)
        if run is None:
            problems.append(f"{s.name}: never started")
        elif run.end is None:
            run.verdict = "FAIL"
            run.detail = "did not finish: " + ("kernel panic" if boot.panicked else
                                               "timeout" if boot.timed_out else "the guest stopped")
            problems.append(f"{s.name}: {run.detail}")
        elif run.verdict != "PASS":
            problems.append(f"{s.name}: {run.detail}")
    if not boot.finished and not problems:
        problems.append("the guest never printed " + FINAL_MARKER)
    res.passed = not problems
    res.problem = problems[0] if problems else ""
    return res


def report(res: Result, echo: Callable[[str], None]) -> None:
    echo("")
    echo(res.plan.title + (f" on {res.machine.describe}" if res.machine else ""))
    for s, verdict, detail, secs, _ in res.rows():
        shown = f"{secs:6.1f}s" if secs is not None else "      -"
        echo(f"  {verdict:<5} {s.name:<13} {shown}  {detail}")
    echo("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in res.phases.items()))
    if not res.passed:
        echo(f"FAIL: {res.problem}")
        tail = [line for _, line in (res.boot.lines if res.boot else [])][-25:]
        if tail:
            echo("last serial lines:")
            for line in tail:
                echo(f"  | {line}")
    else:
        echo("PASS")
    echo(f"serial log: {res.serial_log}")


def choose_kernel(image: bootimage.KernelImage, mode: str, cache: Path, echo: Callable[[str], None]) -> Path:
    if mode == "stock":
        return image.vmlinuz
    if mode == "auto" and bootimage.payload_format(image.vmlinuz) != "xz":
        # the re-wrap saves XZ's slow decompression; Debian's 6.12 images are zstd, which is fast already
        echo(f"note: {image.vmlinuz.name} is {bootimage.payload_format(image.vmlinuz)}-compressed: booting it as is")
        return image.vmlinuz
    if mode == "auto" and (bootimage.linux_source_tarball(image.release) is None or image.config is None):
        echo(f"note: no linux-source for {image.release}: booting the stock XZ image (~40 s slower per boot); "
             "apt-get install linux-source-" + ".".join(image.release.split(".")[:2]) + " to speed it up")
        return image.vmlinuz
    return bootimage.lz4_kernel(image, cache, echo)


@dataclass
class Prepared:
    release: str
    module: Path                    # a private copy of the built nvmm.ko
    files: dict[str, Path]          # initramfs /e2e/NAME -> host file
    upstream_tests: list[str]
    kernel: Path                    # the boot image
    phases: dict[str, float]


def prepare(project: Project, target: str, upstream: str | None, kdir: str | None, jobs: int, kernel_mode: str,
            workdir: Path, echo: Callable[[str], None], kvm_cpu: str | None = None,
            progress: ui.Progress = ui.SILENT, out: Path | None = None, client: str | None = None) -> Prepared:
    """Build (if stale) into ``out`` (default build/TARGET) and copy what the guest needs into
    ``workdir``; choose the boot image."""
    t0 = time.monotonic()
    tree = out or project.build_dir / Path(target).name      # where build_target renders it
    with tree_lock(tree):
        built = build_target(project, target, upstream, out, kdir, False, jobs, lock=False, progress=progress)
        if built.userland is None:
            raise PortError(f"target {built.spec.name} builds no userland, so there is nothing to run in the "
                            "guest", built.spec.toml_path, "set [build] userland = true")
        files = dict(build_guest_programs(project, built.objdir, workdir / "bin"))
        module = workdir / "nvmm-full.ko"
        shutil.copyfile(built.module, module)
        for name, exe in built.userland.programs.items():
            files[name] = workdir / "bin" / name
            shutil.copyfile(exe, files[name])
        if client == "qemu":
            from .qemu import build_qemu
            q = build_qemu(project, target, jobs, echo, progress, built=built)
            echo(f"QEMU {q.version}: {q.what} ({q.size / 1e6:.1f} MB stripped)")
            files["qemu/qemu-system-x86_64"] = q.program
            files.update({f"qemu/fw/{n}": p for n, p in q.firmware.items()})
            files["qemu/ginitrd"] = build_nested_guest(project, workdir / "nested")
    vermagic = (built.modinfo.get("vermagic") or [""])[0].split()
    if not vermagic:
        raise PortError("the module has no vermagic", built.module, "rebuild it with gen.py build")
    image = bootimage.debian_kernel(vermagic[0])
    if kvm_cpu:
        for rel in KVM_MODULES[kvm_cpu]:
            ko = Path("/lib/modules") / image.release / "kernel" / rel
            if not ko.is_file():
                raise PortError("the guest kernel's KVM module is missing", ko,
                                f"apt-get install --reinstall linux-image-{image.release}")
            files[f"kvm/{ko.name}"] = ko
    phases = {"build": time.monotonic() - t0}
    echo(f"built {built.module.name} ({image.release}), {len(built.userland.programs)} upstream test(s), "
         f"{len(GUEST_PROGRAMS + PLAIN_PROGRAMS + COMPAT32_PROGRAMS)} e2e program(s) in {phases['build']:.1f} s")
    t = time.monotonic()
    kernel_cache = Path(os.environ.get("NVMM_PORT_KERNEL_CACHE", project.build_dir / "e2e" / "kernel"))
    kernel = choose_kernel(image, kernel_mode, kernel_cache, echo)
    if client == "qemu":
        files["qemu/vmlinuz"] = kernel          # the nested guest boots the same Debian kernel
    phases["kernel"] = time.monotonic() - t
    return Prepared(image.release, module, files, sorted(built.userland.programs), kernel, phases)


def _finish(res: Result, workdir: Path, final: Path) -> None:
    final.mkdir(parents=True, exist_ok=True)
    for name in ("serial.log", "bochsrc", "bochs.log"):
        if (workdir / name).is_file() and workdir != final:
            shutil.copyfile(workdir / name, final / name)
    res.serial_log = final / "serial.log"
    (final / "result.json").write_text(json.dumps(res.to_json(), indent=1) + "\n")


@dataclass
class E2ERun:
    result: Result
    final: Path                     # build/e2e/TARGET-CPU-smpN: serial log, result.json
    keep: Path | None               # the work directory, kept


def run_e2e(project: Project, target: str, opts: Options, echo: Callable[[str], None], *,
            upstream: str | None = None, kdir: str | None = None, jobs: int = 1, kernel_mode: str = "auto",
            keep: str | Path | None = None, timeout: float = 1500, verbose: bool = False,
            cpu_model: str | None = None, progress: ui.Progress = ui.SILENT, release: str | None = None) -> E2ERun:
    """Build TARGET if stale, boot it under Bochs with ``opts.cpu`` and judge every step of the test
    plan; ``echo`` follows the boot line by line (steps as they start and end).  With ``release``
    (a kernel other than the default) the port builds in build/TARGET-RELEASE and the results go to
    build/e2e/TARGET-RELEASE-CPU-smpN."""
    if opts.cpu not in BACKENDS:
        raise PortError(f"unknown --cpu {opts.cpu}", None, "use vmx or svm")
    if opts.smp < 1 or opts.smp > 8:
        raise PortError(f"--smp {opts.smp} is out of range", None, "use 1 to 8")
    t0 = time.monotonic()
    name = Path(target).name + (f"-{release}" if release else "")
    out = project.build_dir / name if release else None
    suffix = f"-{opts.client}" if opts.client else ""
    final = project.build_dir / "e2e" / f"{name}-{opts.cpu}-smp{opts.smp}{suffix}"
    kept = Path(keep).resolve() if keep else None
    with tempfile.TemporaryDirectory(prefix="nvmm-e2e-") as tmp:
        workdir = kept or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        prep = prepare(project, target, upstream, kdir, jobs, kernel_mode, workdir, echo, progress=progress, out=out,
                       client=opts.client)
        plan = test_plan(opts, prep.upstream_tests)
        res = run_plan(project, plan, opts.cpu, opts.smp, workdir, prep.module, prep.files, prep.kernel, echo,
                       timeout, verbose, cpu_model, prep.phases)
        res.phases["total"] = time.monotonic() - t0
        _finish(res, workdir, final)
    return E2ERun(res, final, kept)


def run_bench(project: Project, cpu: str, exits: int, echo: Callable[[str], None] | None = None, target: str = "linux",
              timeout: float = 1500, kernel_mode: str = "auto") -> Result:
    """One boot: the exit loop under NVMM, then under the guest kernel's KVM (bench/bench_e2e.py)."""
    echo = echo or _ignore
    t0 = time.monotonic()
    final = project.build_dir / "e2e" / f"{Path(target).name}-{cpu}-bench"
    with tempfile.TemporaryDirectory(prefix="nvmm-bench-") as tmp:
        workdir = Path(tmp)
        prep = prepare(project, target, None, None, os.cpu_count() or 1, kernel_mode, workdir, echo, kvm_cpu=cpu)
        res = run_plan(project, bench_plan(cpu, exits), cpu, 1, workdir, prep.module, prep.files, prep.kernel,
                       echo, timeout, phases=prep.phases)
        res.phases["total"] = time.monotonic() - t0
        _finish(res, workdir, final)
    return res


def run_qemu_bench(project: Project, cpu: str, cpus: int = 1, echo: Callable[[str], None] | None = None,
                   target: str = "linux", timeout: float = 1500, kernel_mode: str = "auto") -> Result:
    """One boot: QEMU boots the nested guest with -accel nvmm, then with the guest kernel's KVM
    (bench/bench_qemu.py)."""
    echo = echo or _ignore
    t0 = time.monotonic()
    final = project.build_dir / "e2e" / f"{Path(target).name}-{cpu}-smp{cpus}-qemu-bench"
    with tempfile.TemporaryDirectory(prefix="nvmm-bench-") as tmp:
        workdir = Path(tmp)
        prep = prepare(project, target, None, None, os.cpu_count() or 1, kernel_mode, workdir, echo, kvm_cpu=cpu,
                       client="qemu")
        res = run_plan(project, qemu_bench_plan(cpu, cpus), cpu, cpus, workdir, prep.module, prep.files,
                       prep.kernel, echo, timeout, phases=prep.phases)
        res.phases["total"] = time.monotonic() - t0
        _finish(res, workdir, final)
    return res


def _ignore(line: str) -> None:
    return None
