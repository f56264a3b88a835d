"""Run a machine under Bochs, headless, and follow its serial console.

Debian's Bochs (2.7) is the emulator here because it emulates both VT-x with EPT and AMD-V with
nested paging, NRIP save and FlushByASID, which NVMM's backends need and QEMU's TCG lacks.  Two
quirks of Debian's build shape the runner: there is no 'nogui' display, so the 'term' display
runs under script(1) for a pseudo-terminal; and the internal debugger is compiled in, so an rc
file answers its prompt with 'c' (continue) and, once the machine stops, 'quit'.

The guest's serial port is a file; :func:`run` polls it, hands every complete line to a
callback with its host time, and stops at a final marker line, a kernel panic, or a wall-clock
timeout, killing only the process group it started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..errors import PortError

BIOS = Path("/usr/share/bochs/BIOS-bochs-latest")
VGABIOS = Path("/usr/share/vgabios/vgabios.bin")

# CPU models whose emulated virtualization NVMM's backends accept (measured: research/e2e):
# haswell keeps XSAVE/AVX in the guest (skylake_x loses them); trinity_apu has SVM rev 1 with
# NP, NRIPS and FlushByASID.
CPU_MODELS = {"vmx": "corei7_haswell_4770", "svm": "trinity_apu"}

PANIC = re.compile(r"Kernel panic - not syncing|---\[ end Kernel panic")


@dataclass
class Machine:
    cpu_model: str
    cpus: int
    iso: Path
    serial: Path
    log: Path
    megs: int = 512
    ips: int = 100_000_000
    bios: Path = BIOS
    vgabios: Path = VGABIOS
    bochs_version: str = "2.7"

    @property
    def describe(self) -> str:
        return f"{self.cpu_model}, {self.cpus} CPU(s), {self.megs} MiB, ips={self.ips}"


@dataclass
class RunResult:
    lines: list[tuple[float, str]] = field(default_factory=list)   # (host seconds, serial line)
    wall: float = 0.0
    finished: bool = False       # the final marker was seen
    panicked: bool = False
    timed_out: bool = False
    exit_code: int | None = None


def check_installed() -> None:
    for exe, pkg in (("bochs-bin", "bochs"), ("script", "bsdutils")):
        if shutil.which(exe) is None:
            raise PortError(f"{exe} not found", "PATH", f"apt-get install {pkg} bochsbios vgabios bochs-term")
    for f, pkg in ((BIOS, "bochsbios"), (VGABIOS, "vgabios")):
        if not f.is_file():
            raise PortError("missing emulator ROM", f, f"apt-get install {pkg}")
    plugins = Path("/usr/lib/bochs/plugins")
    if plugins.is_dir() and not any(plugins.glob("*term*")):
        raise PortError("Bochs has no 'term' display plugin", plugins, "apt-get install bochs-term")


def render_bochsrc(templates: Path, machine: Machine) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    return env.get_template("e2e/bochsrc.j2").render(machine=machine)


def run(templates: Path, machine: Machine, workdir: Path, timeout: float, final_marker: str,
        on_line: Callable[[float, str], None], grace: float = 15.0) -> RunResult:
    """Boot ``machine`` and follow its serial console until ``final_marker``, a panic or ``timeout``.

    After the marker the guest gets ``grace`` seconds to power itself off (with 2 CPUs some
    models never complete the ACPI power-off; the marker, not Bochs' exit, is the result).
    """
    check_installed()
    rc = workdir / "bochsrc"
    rc.write_text(render_bochsrc(templates, machine))
    dbg = workdir / "bochs.dbgrc"
    dbg.write_text("c\nquit\n")
    machine.serial.unlink(missing_ok=True)
    stdout = (workdir / "bochs.stdout").open("wb")
    cmd = ["script", "-q", "-e", "-f", "-c", f"bochs-bin -q -f {rc} -rc {dbg}", "/dev/null"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
                            start_new_session=True)
    res = RunResult()
    pos, partial, done_at, panic_at = 0, b"", None, None
    try:
        while True:
            now = time.monotonic() - t0
            try:
                with machine.serial.open("rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                pos += len(chunk)
                partial += chunk
                *complete, partial = partial.split(b"\n")
                for raw in complete:
                    line = raw.decode("latin-1").rstrip("\r")
                    res.lines.append((now, line))
                    on_line(now, line)
                    if line.startswith(final_marker) and done_at is None:
                        done_at = now
                        res.finished = True
                    if PANIC.search(line) and panic_at is None:
                        panic_at = now
                        res.panicked = True
            res.exit_code = proc.poll()
            if res.exit_code is not None:
                break
            if done_at is not None and now - done_at > grace:
                break
            if panic_at is not None and now - panic_at > 5:
                break
            if now > timeout:
                res.timed_out = True
                break
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            _kill(proc)
        stdout.close()
        if partial:
            line = partial.decode("latin-1").rstrip("\r\n")
            res.lines.append((time.monotonic() - t0, line))
            on_line(time.monotonic() - t0, line)
    res.wall = time.monotonic() - t0
    return res


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # Bochs may ignore SIGTERM (seen with a hung guest): escalate to SIGKILL
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
