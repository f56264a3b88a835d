"""Bootable images for the end-to-end run: the kernel, an initramfs and a BIOS-bootable ISO.

* :func:`debian_kernel` finds the Debian ``vmlinuz`` of the exact kernel release a module was
  built against (its vermagic names it), so the module loads.
* :func:`lz4_kernel` re-wraps that kernel, byte for byte, into a bzImage whose self-decompressor
  is LZ4 instead of XZ.  Under an emulator the XZ self-decompression costs ~37 s of a ~55 s
  boot, LZ4 ~1.6 s.  Only the real-mode setup and the decompressor stub are rebuilt, from the
  matching Debian ``linux-source`` package; the payload (kernel ELF + relocations) is the
  stock image's own, checked after the build.  The result is cached by the stock image's hash.
* :func:`write_initramfs` writes a ``newc`` cpio archive (the format the kernel unpacks) from a
  list of entries, without needing cpio(1).
* :func:`make_iso` wraps kernel, initramfs and command line into an isolinux CD image, the
  one boot medium every BIOS emulator understands.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import PortError
from ..upstream.lock import sha256_file
from .build import is_static_elf

# x86 boot protocol offsets (Documentation/x86/boot.rst): setup_sects, payload_offset/length,
# init_size, kernel_version pointer.
_SETUP_SECTS = 0x1F1
_PAYLOAD = 0x248
_KERNEL_VERSION = 0x20E

Log = Callable[[str], None]


@dataclass(frozen=True)
class KernelImage:
    release: str         # e.g. 6.1.0-56-amd64
    vmlinuz: Path        # the stock image
    config: Path | None  # /boot/config-RELEASE


def debian_kernel(release: str) -> KernelImage:
    """The Debian kernel image of ``release`` (the first word of the module's vermagic)."""
    vmlinuz = Path("/boot") / f"vmlinuz-{release}"
    if not vmlinuz.is_file():
        raise PortError(f"no kernel image for {release}, the release the module is built against", vmlinuz,
                        f"install it: apt-get install linux-image-{release}")
    config = Path("/boot") / f"config-{release}"
    return KernelImage(release, vmlinuz, config if config.is_file() else None)


def _payload(img: bytes, where: Path) -> tuple[int, int]:
    if len(img) < 0x260 or img[0x202:0x206] != b"HdrS":
        raise PortError("not an x86 bzImage (no HdrS boot header)", where, "pass a Debian vmlinuz")
    setup_sects = img[_SETUP_SECTS] or 4
    offset, length = struct.unpack_from("<II", img, _PAYLOAD)
    return (setup_sects + 1) * 512 + offset, length


_MAGICS = {b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"\x02\x21\x4c\x18": "lz4",
           b"\x1f\x8b": "gzip"}


def payload_format(vmlinuz: Path) -> str:
    """How a bzImage's payload is compressed (xz, zstd, lz4, gzip), by its magic bytes."""
    img = vmlinuz.read_bytes()
    start, _ = _payload(img, vmlinuz)
    head = img[start:start + 6]
    return next((name for magic, name in _MAGICS.items() if head.startswith(magic)), "unknown")


def split_payload(vmlinuz: Path) -> tuple[bytes, bytes]:
    """(kernel ELF, relocation table) of an XZ-compressed bzImage."""
    img = vmlinuz.read_bytes()
    start, length = _payload(img, vmlinuz)
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        data = dec.decompress(img[start:start + length])
    except lzma.LZMAError as exc:
        raise PortError(f"the payload is not XZ ({exc})", vmlinuz,
                        "only XZ-compressed Debian kernels are re-wrapped; use --kernel stock") from None
    if data[:4] != b"\x7fELF":
        raise PortError("the decompressed payload is not an ELF file", vmlinuz, "use --kernel stock")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    end = shoff + shentsize * shnum       # the section headers close the stripped ELF
    return data[:end], data[end:]


def voffset_h(elf: bytes) -> str:
    """What kbuild's voffset.h holds (normally from `nm vmlinux`), from the ELF section headers."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    stroff = secs[shstrndx][4]

    def name(s: tuple[int, ...]) -> str:
        return elf[stroff + s[0]:elf.index(b"\0", stroff + s[0])].decode()
    by = {name(s): s for s in secs}
    brk = by[".brk"]
    end = (brk[3] + brk[5] + 4095) & ~4095          # _end = ALIGN(end of .brk, PAGE_SIZE)
    vals = [("__bss_start", by[".bss"][3]), ("__start_rodata", by[".rodata"][3]), ("_end", end),
            ("_text", by[".text"][3])]
    return "".join(f"#define VO_{k} _AC(0x{v:x},UL)\n" for k, v in vals)


def _sha256(path: Path) -> str:
    return sha256_file(path)[0]


def linux_source_tarball(release: str) -> Path | None:
    """Debian's linux-source tarball for a release's major.minor (linux-source-6.1.tar.xz)."""
    mm = ".".join(release.split(".")[:2])
    p = Path("/usr/src") / f"linux-source-{mm}.tar.xz"
    return p if p.is_file() else None


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-12:]
        raise PortError(f"re-wrapping the kernel failed at `{' '.join(cmd[:4])}` (exit {proc.returncode})", log,
                        "read the log, or boot the stock image with --kernel stock", tail)


# The three rules of arch/x86/boot/compressed/Makefile that derive from a linked vmlinux, and
# what they become: copies of the pieces taken from the stock image.
_COMPRESSED_RULES = {
    "$(obj)/../voffset.h: vmlinux FORCE\n\t$(call if_changed,voffset)":
        "$(obj)/../voffset.h: $(NVMM_PORT_PAYLOAD)/voffset.h\n\tcp $< $@",
    "$(obj)/vmlinux.bin: vmlinux FORCE\n\t$(call if_changed,objcopy)":
        "$(obj)/vmlinux.bin: $(NVMM_PORT_PAYLOAD)/vmlinux.bin\n\tcp $< $@",
    "$(obj)/vmlinux.relocs: vmlinux FORCE\n\t$(call if_changed,relocs)":
        "$(obj)/vmlinux.relocs: $(NVMM_PORT_PAYLOAD)/vmlinux.relocs\n\tcp $< $@",
}


def lz4_kernel(kernel: KernelImage, cache: Path, log: Log, jobs: int = os.cpu_count() or 1) -> Path:
    """The stock kernel re-wrapped with an LZ4 decompressor; built once, cached by image hash."""
    digest = _sha256(kernel.vmlinuz)[:16]
    out = cache / f"vmlinuz-{kernel.release}-lz4-{digest}"
    if out.is_file():
        return out
    tarball = linux_source_tarball(kernel.release)
    if tarball is None or kernel.config is None:
        raise PortError(f"cannot re-wrap {kernel.vmlinuz.name}: needs the matching linux-source tarball and "
                        f"/boot/config-{kernel.release}", "/usr/src",
                        "apt-get install linux-source-" + ".".join(kernel.release.split(".")[:2]) +
                        " (or boot the stock image with --kernel stock, ~40 s slower per boot)")
    cache.mkdir(parents=True, exist_ok=True)
    buildlog = cache / "repack.log"
    buildlog.write_text("")
    log(f"re-wrapping {kernel.vmlinuz} with an LZ4 decompressor (once; log {buildlog})")
    elf, relocs = split_payload(kernel.vmlinuz)
    payload = cache / "payload"
    payload.mkdir(exist_ok=True)
    (payload / "vmlinux.bin").write_bytes(elf)
    (payload / "vmlinux.relocs").write_bytes(relocs)
    (payload / "voffset.h").write_text(voffset_h(elf))

    srcroot = cache / "src"
    src = srcroot / tarball.name.replace(".tar.xz", "")
    if not (src / "Makefile").is_file():
        srcroot.mkdir(exist_ok=True)
        _run(["tar", "-xJf", str(tarball), "-C", str(srcroot)], cache, buildlog)
    shutil.copyfile(kernel.config, src / ".config")
    _run(["./scripts/config", "--disable", "KERNEL_XZ", "--enable", "KERNEL_LZ4",
          "--set-str", "SYSTEM_TRUSTED_KEYS", "", "--set-str", "SYSTEM_REVOCATION_KEYS", "",
          "--set-str", "MODULE_SIG_KEY", "certs/signing_key.pem"], src, buildlog)
    _run(["make", "-s", "olddefconfig"], src, buildlog)
    _run(["make", "-s", f"-j{jobs}", "prepare"], src, buildlog)

    mk = src / "arch/x86/boot/compressed/Makefile"
    orig = mk.with_suffix(".orig-nvmm-port")
    if not orig.is_file():
        shutil.copyfile(mk, orig)
    text = orig.read_text()
    for old, replacement in _COMPRESSED_RULES.items():
        if old not in text:
            raise PortError("arch/x86/boot/compressed/Makefile has an unexpected layout", orig,
                            "this kernel version is not supported by the re-wrap; use --kernel stock")
        text = text.replace(old, replacement)
    mk.write_text(text)
    # files the full kernel build would have generated before the boot code
    _run(["make", "-s", f"-j{jobs}", "drivers/firmware/efi/libstub/", "arch/x86/kernel/cpu/capflags.o"],
         src, buildlog)
    with (src / "arch/x86/lib/inat-tables.c").open("w") as f:
        subprocess.run(["awk", "-f", "arch/x86/tools/gen-insn-attr-x86.awk", "arch/x86/lib/x86-opcode-map.txt"],
                       cwd=src, stdout=f, check=True)
    img = kernel.vmlinuz.read_bytes()
    vptr, = struct.unpack_from("<H", img, _KERNEL_VERSION)
    version = img[vptr + 0x200:img.index(b"\0", vptr + 0x200)].decode(errors="replace")
    uts = version[version.index("#"):] if "#" in version else "#1"
    (src / "include/generated/utsversion.h").write_text(f'#define UTS_VERSION "{uts}"\n')
    vmlinux = src / "vmlinux"
    vmlinux.unlink(missing_ok=True)
    vmlinux.touch()                 # with `-o vmlinux`, make never tries to link one
    _run(["make", "-s", f"-j{jobs}", "-o", "vmlinux", f"NVMM_PORT_PAYLOAD={payload}", "bzImage"], src, buildlog)

    new = (src / "arch/x86/boot/bzImage").read_bytes()
    start, length = _payload(new, src / "arch/x86/boot/bzImage")
    proc = subprocess.run(["lz4", "-d", "-c"], input=new[start:start + length - 4], capture_output=True)
    if proc.stdout != elf + relocs:
        raise PortError("the re-wrapped image does not carry the stock kernel byte for byte", buildlog,
                        "use --kernel stock")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(new)
    tmp.replace(out)
    log(f"re-wrapped kernel: {out} ({len(new)} bytes; payload identical to the stock image)")
    return out


# -- initramfs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One initramfs entry: a directory, a file (data), a symlink (target) or a device node."""
    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def chardev(path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perm, rdev=(major, minor))


def _cpio_record(ino: int, e: Entry) -> bytes:
    name = e.path.encode() + b"\0"
    fields = [ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, 0, len(e.data), 0, 0,
              e.rdev[0], e.rdev[1], len(name), 0]
    head = b"070701" + b"".join(b"%08X" % v for v in fields) + name
    head += b"\0" * (-len(head) % 4)
    return head + e.data + b"\0" * (-len(e.data) % 4)


def write_initramfs(path: Path, entries: list[Entry]) -> None:
    """An uncompressed newc cpio archive (parents before children, as the kernel needs)."""
    seen: set[str] = set()
    out = bytearray()
    for ino, e in enumerate(sorted(entries, key=lambda e: e.path), start=1):
        if e.path in seen:
            raise PortError(f"two initramfs entries for {e.path}", path, "report this as a bug of nvmm-port")
        seen.add(e.path)
        out += _cpio_record(ino, e)
    out += _cpio_record(0, Entry("TRAILER!!!", 0))
    out += b"\0" * (-len(out) % 512)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(path)


def busybox_path() -> Path | None:
    """A static busybox (Debian's busybox-static), the whole userland of the initramfs."""
    for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if p.is_file() and is_static_elf(p):
            return p
    return None


# -- ISO ------------------------------------------------------------------------------------------

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")


def make_iso(iso: Path, kernel: Path, initrd: Path, cmdline: str) -> None:
    """A BIOS-bootable isolinux CD with the kernel, the initramfs and the command line."""
    for need, pkg in ((ISOLINUX_BIN, "isolinux"), (LDLINUX_C32, "syslinux-common")):
        if not need.is_file():
            raise PortError("missing boot loader file", need, f"apt-get install {pkg}")
    if shutil.which("xorriso") is None:
        raise PortError("xorriso not found", "PATH", "apt-get install xorriso")
    with tempfile.TemporaryDirectory(prefix="nvmm-port-iso-") as d:
        root = Path(d)
        (root / "isolinux").mkdir()
        shutil.copyfile(ISOLINUX_BIN, root / "isolinux" / "isolinux.bin")
        shutil.copyfile(LDLINUX_C32, root / "isolinux" / "ldlinux.c32")
        shutil.copyfile(kernel, root / "vmlinuz")
        shutil.copyfile(initrd, root / "initrd")
        (root / "isolinux" / "isolinux.cfg").write_text(
            "SERIAL 0 115200\nDEFAULT e2e\nPROMPT 0\nTIMEOUT 0\n"
            f"LABEL e2e\n  KERNEL /vmlinuz\n  INITRD /initrd\n  APPEND {cmdline}\n")
        tmp = iso.with_suffix(".tmp")
        proc = subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(tmp), "-b", "isolinux/isolinux.bin",
                               "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4",
                               "-boot-info-table", "-J", "-R", "-V", "NVMM_E2E", str(root)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise PortError(f"xorriso failed (exit {proc.returncode})", iso, "see its message below",
                            proc.stderr.strip().splitlines()[-5:])
        tmp.replace(iso)
