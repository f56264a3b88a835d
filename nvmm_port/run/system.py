"""The Debian packages each job needs, and installing them (``gen.py setup``).

One table, :data:`NEEDS`, says for every job which Debian packages it needs and why.  README's first
command and ``.ci/run`` both install through :func:`plan` / :func:`install`, so the two never
diverge.  Python packages are not here: they come from pyproject.toml.

Jobs:
  build   render and build a port: sync reads git mirrors, Kbuild needs the kernel headers and a C
          toolchain, libnvmm and upstream's tests link static against the C library's archive; the
          Haiku target cross-compiles with clang and links with binutils' ld
  e2e     boot the built port under Bochs: the emulator and its ROMs, busybox for the initramfs, an
          isolinux ISO, script(1) for Bochs' terminal display, the Debian kernel image of exactly the
          release the headers are for, and (for the once-per-clone LZ4 re-wrap that saves ~40 s per
          boot) the matching linux-source and its build tools
  test    what the test suite adds: unifdef, the independent oracle of the generator's round trips;
          clang's fuzzing and sanitizer runtimes and llvm-cov for gen.py fuzz
  qemu    building QEMU's NVMM accelerator from Debian's source package (gen.py client qemu): a
          deb-src line for this Debian release (added when apt has none), dpkg-source, meson, ninja,
          pkg-config and the libraries a static QEMU links; the firmware a guest boot reads

The kernel image and source depend on which headers ``linux-headers-amd64`` brought, so they are
planned in a second round, after the first is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PortError

JOBS = ("build", "e2e", "test", "qemu")

if TYPE_CHECKING:
    from .kernels import KernelRelease


@dataclass(frozen=True)
class Need:
    """Debian packages one job needs, and why."""

    jobs: tuple[str, ...]
    packages: tuple[str, ...]
    why: str


NEEDS: tuple[Need, ...] = (
    Need(("build",), ("git",), "sync reads upstream from git mirrors (git cat-file, no checkout)"),
    Need(("build",), ("make", "gcc", "libc6-dev", "binutils"),
         "Kbuild and Makefile.userland: cc, make, ar, and libc.a for the static libnvmm tests"),
    Need(("build",), ("linux-headers-amd64",), "the kernel build directory the Linux module is built against"),
    Need(("build",), ("clang",),
         "the Haiku target: clang --target=x86_64-unknown-haiku compiles the add-on and userland, with "
         "libstdc++'s headers for kernel C++"),
    Need(("e2e",), ("bochs", "bochsbios", "vgabios", "bochs-term"),
         "Bochs 2.7 emulates VT-x+EPT and AMD-V+NPT; its BIOS, VGA BIOS and terminal display"),
    Need(("e2e",), ("busybox-static",), "the guest's userland: a static busybox in the initramfs"),
    Need(("e2e",), ("xorriso", "isolinux", "syslinux-common"), "the bootable isolinux ISO Bochs boots"),
    Need(("e2e",), ("bsdutils",), "script(1): Bochs' term display needs a pseudo-terminal"),
    Need(("e2e",), ("flex", "bison", "bc", "lz4", "libelf-dev", "libssl-dev"),
         "re-wrapping the guest kernel with an LZ4 decompressor (once per clone, ~40 s less per boot)"),
    Need(("test",), ("unifdef",), "the independent oracle the flatten round trips are checked against"),
    Need(("build", "test"), ("libclang-rt-14-dev",),
         "the hosted target and gen.py fuzz: clang's AddressSanitizer, UBSan and libFuzzer runtimes"),
    Need(("test",), ("llvm-14",), "gen.py fuzz: llvm-profdata and llvm-cov for the corpus's line coverage"),
    Need(("qemu",), ("dpkg-dev", "meson", "ninja-build", "pkg-config"),
         "QEMU from Debian's source package: dpkg-source unpacks it, meson and ninja build it"),
    Need(("qemu",), ("libglib2.0-dev", "libpixman-1-dev", "libfdt-dev", "zlib1g-dev"),
         "the libraries a static x86_64-softmmu QEMU links"),
    Need(("qemu",), ("seabios", "qemu-system-data"),
         "the firmware QEMU reads for a -kernel boot (bios-256k.bin, linuxboot_dma.bin, kvmvapic.bin)"),
)

DEB_SRC = Path("/etc/apt/sources.list.d/nvmm-port-deb-src.sources")


def has_deb_src(etc: Path = Path("/etc/apt")) -> bool:
    """Whether any apt source of this system is a deb-src one (one-line or deb822 format)."""
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list")),
             *sorted((etc / "sources.list.d").glob("*.sources"))]
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("deb-src ") or (line.startswith("Types:") and "deb-src" in line.split()):
                return True
    return False


def deb_src_text(codename: str) -> str:
    """A deb822 source of Debian's source packages for ``codename`` and its updates."""
    return ("# Added by nvmm-port (gen.py setup --for qemu): QEMU's source comes from Debian's source package.\n"
            "Types: deb-src\n"
            "URIs: http://deb.debian.org/debian\n"
            f"Suites: {codename} {codename}-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def debian_codename(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    raise PortError("cannot tell this Debian release's codename", os_release,
                    "add a deb-src line for your release by hand, then apt-get update")


@dataclass
class Step:
    """One package in the plan: installed already, or to install, and why."""

    package: str
    why: str
    installed: bool


@dataclass
class Plan:
    jobs: tuple[str, ...]
    steps: list[Step] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [s.package for s in self.steps if not s.installed]


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _query(packages: Sequence[str], run: Runner) -> set[str]:
    """The packages among ``packages`` dpkg has installed."""
    if not packages:
        return set()
    proc = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\\n", *packages])
    return {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")}


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def headers_release(src: Path = Path("/usr/src")) -> str | None:
    """The release builds use by default: the one ``linux-headers-amd64`` depends on (Debian's
    default line), whatever other releases are installed."""
    from .kernels import default_release
    found = default_release(src=src)
    return found.release if found is not None else None


def kernel_needs(release: str) -> list[Need]:
    """The second round: the guest kernel of exactly the headers' release, and its source."""
    major_minor = ".".join(release.split(".")[:2])
    return [
        Need(("e2e",), (f"linux-image-{release}",),
             f"the guest kernel: the release the module is built against ({release})"),
        Need(("e2e",), (f"linux-source-{major_minor}",),
             "the kernel's source, for the LZ4 re-wrap of that image (byte-identical kernel)"),
    ]


def release_needs(kernel: KernelRelease) -> list[Need]:
    """What --kernel-release REL adds: that release's headers, image and line's source."""
    return [
        Need(("e2e",), (kernel.headers_package,), f"the kernel build directory of {kernel.release} (--kernel-release)"),
        Need(("e2e",), (kernel.image_package(),), f"the guest kernel {kernel.release} ({kernel.flavour})"),
        Need(("e2e",), (kernel.source_package,), f"the {kernel.line} source, for the LZ4 re-wrap of that image"),
    ]


def parse_jobs(spec: str) -> tuple[str, ...]:
    """``build``, ``e2e``, ``test``, ``all`` or a comma list; e2e implies build."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if "all" in names:
        return JOBS
    unknown = [n for n in names if n not in JOBS]
    if unknown or not names:
        raise PortError(f"unknown job {', '.join(unknown) or repr(spec)} for --for", None,
                        f"use one of {', '.join(JOBS)}, all, or a comma list")
    if ("e2e" in names or "qemu" in names) and "build" not in names:
        names.insert(0, "build")
    return tuple(j for j in JOBS if j in names)


def plan(jobs: Sequence[str], needs: Sequence[Need] = NEEDS, run: Runner = _run) -> Plan:
    """What each job needs and whether dpkg has it already."""
    result = Plan(tuple(jobs))
    wanted = [(pkg, need.why) for need in needs if set(need.jobs) & set(jobs) for pkg in need.packages]
    have = _query([p for p, _ in wanted], run)
    seen: set[str] = set()
    for pkg, why in wanted:
        if pkg not in seen:
            seen.add(pkg)
            result.steps.append(Step(pkg, why, pkg in have))
    return result


def check_platform() -> None:
    """Setup installs Debian packages: say so plainly elsewhere."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-query"):
        packages = sorted({p for n in NEEDS for p in n.packages})
        raise PortError("gen.py setup installs Debian packages, and this system has no apt-get/dpkg-query", None,
                        "install the equivalents of these by hand: " + " ".join(packages))


def apt_command(packages: Sequence[str]) -> list[list[str]]:
    """The commands that install ``packages`` (through sudo when not root)."""
    sudo: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise PortError("installing Debian packages needs root, and there is no sudo", None,
                            "run gen.py setup as root")
        sudo = ["sudo"]
    return [
        [*sudo, "apt-get", "update", "-q"],
        [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
         "--no-install-recommends", *packages],
    ]


def _stream(cmd: list[str], what: str, stream: Callable[[str], None], stdin: str | None = None) -> None:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else None, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    if stdin is not None and proc.stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    tail: list[str] = []
    for line in proc.stdout:
        stream(line.rstrip("\n"))
        tail = (tail + [line.rstrip("\n")])[-12:]
    rc = proc.wait()
    if rc != 0:
        raise PortError(f"`{what}` failed (exit {rc})", None,
                        "read apt's output above; the packages must be reachable from this machine's "
                        "Debian sources", tail)


def install(packages: Sequence[str], stream: Callable[[str], None]) -> None:
    """apt-get update + install, streaming apt's output; a failure is a PortError naming the packages."""
    if not packages:
        return
    for cmd in apt_command(packages):
        what = "apt-get update" if "update" in cmd else f"apt-get install {' '.join(packages)}"
        _stream(cmd, what, stream)


def add_deb_src(stream: Callable[[str], None]) -> Path:
    """Write :data:`DEB_SRC` for this Debian release and fetch its index (apt-get update)."""
    text = deb_src_text(debian_codename())
    update = apt_command(["-"])[0]
    sudo = update[:1] if update[0] == "sudo" else []
    _stream([*sudo, "tee", str(DEB_SRC)], f"writing {DEB_SRC}", lambda line: None, stdin=text)
    _stream(update, "apt-get update", stream)
    return DEB_SRC
