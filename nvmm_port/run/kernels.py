"""Debian kernel releases a Linux port is built and run against.

A *release* is what ``uname -r`` says and what Debian's package names carry: ``6.1.0-57-amd64``,
``6.1.0-57-rt-amd64``, ``6.12.113+deb12-amd64``, ``6.12.113+deb12-rt-amd64``.  Its *line* is the
major.minor (6.1, 6.12: the linux-source package is per line) and its *flavour* generic or rt
(PREEMPT_RT).  Debian 12 carries both lines, each in both flavours; the default release is the one
``linux-headers-amd64`` (Debian's default kernel line) depends on, whatever else is installed.

For a release: the headers (``linux-headers-REL``, the Kbuild directory), the image the e2e boots
(``linux-image-REL``, or ``linux-image-REL-unsigned`` where Debian ships no signed one: 6.12) and the
line's source (``linux-source-LINE``, for the LZ4 re-wrap of that image).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import PortError

#: amd64 releases: 6.1.0-57-amd64, 6.1.0-57-rt-amd64, 6.12.113+deb12-amd64, 6.12.113+deb12-rt-amd64
#: (not the cloud flavour, which lacks the drivers a machine like Bochs' needs)
_RELEASE = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)\.\d+(?:-\d+|\+deb\d+)(?P<rt>-rt)?-amd64$")
FLAVOURS = ("generic", "rt")

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


@dataclass(frozen=True)
class KernelRelease:
    release: str

    @property
    def line(self) -> str:
        m = _RELEASE.match(self.release)
        assert m is not None
        return f"{m['major']}.{m['minor']}"

    @property
    def flavour(self) -> str:
        m = _RELEASE.match(self.release)
        assert m is not None
        return "rt" if m["rt"] else "generic"

    @property
    def cell(self) -> str:
        """The matrix's name for it: 6.1, 6.1-rt, 6.12, 6.12-rt."""
        return self.line + ("-rt" if self.flavour == "rt" else "")

    @property
    def kdir(self) -> Path:
        return Path("/usr/src") / f"linux-headers-{self.release}"

    @property
    def headers_package(self) -> str:
        return f"linux-headers-{self.release}"

    @property
    def source_package(self) -> str:
        return f"linux-source-{self.line}"

    def image_package(self, run: Runner = _run) -> str:
        """The image package: whichever of linux-image-REL and its -unsigned build (the same kernel,
        /boot/vmlinuz-REL either way) is installed; else the signed one when Debian has it."""
        names = (f"linux-image-{self.release}", f"linux-image-{self.release}-unsigned")
        proc = run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\\n", *names])
        for line in proc.stdout.splitlines():
            if line.endswith(" installed"):
                return line.split()[0]
        for name in names:
            if _known_package(name, run):
                return name
        return names[0]

    def packages(self, run: Runner = _run) -> list[str]:
        return [self.headers_package, self.image_package(run), self.source_package]


def parse(release: str, where: str = "--kernel-release") -> KernelRelease:
    if not _RELEASE.match(release):
        raise PortError(f"{where} {release!r} is not a Debian amd64 kernel release", None,
                        "write it as uname -r does: 6.1.0-57-amd64, 6.1.0-57-rt-amd64, 6.12.113+deb12-amd64, "
                        "6.12.113+deb12-rt-amd64 (`apt-cache search linux-headers-6` lists them)")
    return KernelRelease(release)


def _known_package(name: str, run: Runner) -> bool:
    proc = run(["apt-cache", "show", "--no-all-versions", name])
    return proc.returncode == 0 and f"Package: {name}" in proc.stdout


def _version_key(release: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", release)]


def installed(src: Path = Path("/usr/src")) -> list[KernelRelease]:
    """Releases whose headers are installed, oldest first."""
    found = [p.name.removeprefix("linux-headers-") for p in src.glob("linux-headers-*-amd64")]
    return [KernelRelease(r) for r in sorted((r for r in found if _RELEASE.match(r)), key=_version_key)]


def default_release(run: Runner = _run, src: Path = Path("/usr/src")) -> KernelRelease | None:
    """Debian's default: the release linux-headers-amd64 depends on, when installed; else the newest
    generic release installed (a machine without the metapackage)."""
    proc = run(["dpkg-query", "-W", "-f=${Depends}", "linux-headers-amd64"])
    if proc.returncode == 0:
        m = re.search(r"linux-headers-(\S+-amd64)", proc.stdout)
        if m and _RELEASE.match(m.group(1)) and (src / f"linux-headers-{m.group(1)}").is_dir():
            return KernelRelease(m.group(1))
    generic = [k for k in installed(src) if k.flavour == "generic"]
    return generic[-1] if generic else None


def resolve(cell: str, run: Runner = _run, src: Path = Path("/usr/src")) -> KernelRelease:
    """A matrix kernel (6.1, 6.1-rt, 6.12, 6.12-rt) as a release: for the default line and flavour
    the default release; otherwise the newest installed, else the newest Debian offers."""
    line, _, flavour = cell.partition("-")
    flavour = flavour or "generic"
    if flavour not in FLAVOURS or not re.fullmatch(r"\d+\.\d+", line):
        raise PortError(f"kernel {cell!r} is not LINE or LINE-rt", None, "write e.g. 6.1, 6.1-rt, 6.12, 6.12-rt")
    default = default_release(run, src)
    if default is not None and default.line == line:
        twin = default if flavour == "generic" else KernelRelease(default.release.replace("-amd64", "-rt-amd64"))
        if flavour == "generic" or (twin.kdir.is_dir() or _known_package(twin.headers_package, run)):
            return twin
    have = [k for k in installed(src) if k.line == line and k.flavour == flavour]
    if have:
        return have[-1]
    proc = run(["apt-cache", "pkgnames", f"linux-headers-{line}."])
    offered = [n.removeprefix("linux-headers-") for n in proc.stdout.split()]
    offered = [r for r in offered if _RELEASE.match(r) and KernelRelease(r).line == line
               and KernelRelease(r).flavour == flavour]
    if not offered:
        raise PortError(f"Debian offers no {flavour} {line} kernel here", None,
                        "check `apt-cache search linux-headers-" + line + "` (run apt-get update first)")
    return KernelRelease(sorted(offered, key=_version_key)[-1])


def from_arg(value: str) -> KernelRelease:
    """--kernel-release: a release (6.12.113+deb12-rt-amd64) or a matrix kernel (6.1, 6.12-rt),
    resolved as :func:`resolve` does."""
    if re.fullmatch(r"\d+\.\d+(-rt)?", value):
        return resolve(value)
    return parse(value)
