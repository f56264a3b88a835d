#!/usr/bin/env python3
"""Write the fuzz harnesses' seed corpora: corpus/assist/ (one input per kind of guest access the
emulator handles, laid out as fuzz_assist.c reads them) and corpus/ioctl/ (programs of operations
as fuzz_ioctl.c reads them: a machine's life, two owners, configuration, signals, comm page
writes).  Run it after changing a layout.

assist: [mode 1][exit 32][GPRs 18x8][segments 10x16][CRs 6x8][MSRs 11x8][guest memory from GPA 0]
ioctl:  operations, each [op 1][its bytes] (fuzz_ioctl.c's comment lists them)
"""

from __future__ import annotations

import struct
from pathlib import Path

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
RIP, RFLAGS = 16, 17
REAL, PROTECTED, LONG = 1, 2, 3          # mode bits 1-2 (0: the CPU mode as the input says)
READ, WRITE = 0, 1                       # exit byte 0 of a memory exit: PROT_READ, PROT_WRITE


def seed(mode: int, io: bool, exit_bytes: bytes, gprs: dict[int, int], memory: dict[int, bytes]) -> bytes:
    regs = [0] * 18
    regs[RFLAGS] = 0x2
    for k, v in gprs.items():
        regs[k] = v
    mem = bytearray(0x8000)
    for gpa, data in memory.items():
        mem[gpa:gpa + len(data)] = data
    head = bytes([(mode << 1) | int(io)]) + exit_bytes.ljust(32, b"\0")
    return head + struct.pack("<18Q", *regs) + bytes(160 + 48 + 88) + bytes(mem).rstrip(b"\0")


def mem_exit(prot: int, gpa: int, inst: bytes) -> bytes:
    return bytes([prot]) + struct.pack("<Q", gpa) + bytes([len(inst)]) + inst.ljust(15, b"\0")


def io_exit(inp: bool, rep: bool, string: bool, opsize: int, addrsize: int, seg: int, port: int, npc: int) -> bytes:
    flags = int(inp) | int(rep) << 1 | int(string) << 2 | {1: 0, 2: 1, 4: 2}[opsize] << 3 | \
        {2: 0, 4: 1, 8: 2}[addrsize] << 5
    return bytes([flags, seg + 1]) + struct.pack("<HQ", port, npc)


SEEDS = {
    "mov-store-64": seed(LONG, False, mem_exit(WRITE, 0x5000, b"\x89\x18"), {RAX: 0x5000, RBX: 0x11223344}, {}),
    "mov-load-64": seed(LONG, False, mem_exit(READ, 0x5008, b"\x48\x8b\x03"), {RBX: 0x5008}, {}),
    "rep-movsb-64": seed(LONG, False, mem_exit(READ, 0x6000, b"\xf3\xa4"), {RCX: 4, RSI: 0x6000, RDI: 0x5000},
                         {0x6000: b"abcd"}),
    "fetch-from-rip-64": seed(LONG, False, mem_exit(WRITE, 0x5000, b""), {RAX: 0x5000, RIP: 0x4000},
                              {0x4000: b"\x89\x18"}),
    "stos-32": seed(PROTECTED, False, mem_exit(WRITE, 0x5000, b"\xab"), {RAX: 0xdeadbeef, RDI: 0x5000}, {}),
    "mov-real": seed(REAL, False, mem_exit(WRITE, 0x5000, b"\x88\x07"), {RAX: 0x41, RBX: 0x5000}, {}),
    "out-al": seed(LONG, True, io_exit(False, False, False, 1, 8, -1, 0x3f8, 0x4001), {RAX: 0x41, RIP: 0x4000}, {}),
    "rep-outsb-64": seed(LONG, True, io_exit(False, True, True, 1, 8, -1, 0x3f8, 0x4002),
                         {RCX: 3, RSI: 0x6000, RIP: 0x4000}, {0x6000: b"xyz"}),
    "rep-insw-32": seed(PROTECTED, True, io_exit(True, True, True, 2, 4, 0, 0x1f0, 0x4002),
                        {RCX: 2, RDI: 0x5000, RIP: 0x4000}, {}),
}


# -- ioctl ----------------------------------------------------------------------------------------

# fuzz_ioctl.c's command indexes (its commands[] table) and the exit reasons' (its reasons[])
(CAP, MCREATE, MDESTROY, MCONF, VCREATE, VDESTROY, VCONF, SETSTATE, GETSTATE, INJECT, RUN, GPA_MAP,
 GPA_UNMAP, HVA_MAP, HVA_UNMAP, CTL) = range(16)
X_NONE, X_INVALID, X_MEMORY, X_IO, X_SHUTDOWN, X_INT_READY, X_NMI_READY, X_HALTED = range(8)
X_RDMSR, X_WRMSR, X_CPUID = 9, 10, 13
EXIT_SIZE = 64                      # struct nvmm_x86_exit on x86-64: reason, union (32), exitstate (24)
CONF_CPUID, CONF_TPR = 200, 201     # NVMM_VCPU_CONF_CPUID, _TPR
PLAIN_A, PLAIN_B, ROOT = 0, 1, 2


def ioctl(owner: int, cmd: int, arg: bytes = b"", buf: bytes = b"", how: int = 0,
          pool: tuple[int, int, int] | None = None) -> bytes:
    """op 0; pool: (first page, pages, odd) for the commands whose host address lives in the pool."""
    out = bytes([0, owner, cmd, len(arg)]) + arg + bytes([len(buf)]) + buf + bytes([how])
    if cmd in (HVA_MAP, HVA_UNMAP) or (cmd == GPA_MAP and how & 1):
        out += bytes(pool or (0, 1, 0))
    return out


def script(machid: int, cpuid: int, exits: list[bytes]) -> bytes:
    return bytes([1, machid, cpuid, len(exits)]) + b"".join(e.ljust(EXIT_SIZE, b"\0") for e in exits)


def exit_mem(gpa: int, prot: int) -> bytes:
    return struct.pack("<QiIQ", X_MEMORY, prot, 0, gpa)


def exit_io(port: int, npc: int) -> bytes:
    return struct.pack("<Q?xHbBB??7xQ", X_IO, False, port, -1, 8, 1, False, False, npc)


def exit_plain(reason: int) -> bytes:
    return struct.pack("<Q", reason)


MV = ioctl(PLAIN_A, MCREATE) + ioctl(PLAIN_A, VCREATE, struct.pack("<II", 0, 0))
IDS = struct.pack("<II", 0, 0)

IOCTL_SEEDS = {
    "machine-life": MV
    + ioctl(PLAIN_A, HVA_MAP, struct.pack("<I4xQQ", 0, 0, 0), pool=(0, 4, 0))
    + ioctl(PLAIN_A, GPA_MAP, struct.pack("<I4xQQQi", 0, 0, 0x10000, 0x4000, 3), how=3, pool=(0, 4, 0))
    + script(0, 0, [exit_mem(0x10123, 2), exit_io(0x3F8, 0x1001), exit_mem(0xF0000000, 1), exit_plain(X_HALTED)])
    + ioctl(PLAIN_A, RUN, IDS) + ioctl(PLAIN_A, RUN, IDS) + ioctl(PLAIN_A, RUN, IDS)
    + ioctl(PLAIN_A, GETSTATE, IDS) + ioctl(PLAIN_A, SETSTATE, IDS)
    + ioctl(PLAIN_A, GPA_UNMAP, struct.pack("<I4xQQ", 0, 0x10000, 0x1000))
    + ioctl(PLAIN_A, HVA_UNMAP, b"", pool=(0, 4, 0))
    + ioctl(PLAIN_A, VDESTROY, IDS) + ioctl(PLAIN_A, MDESTROY, struct.pack("<I", 0)),
    "two-owners": MV
    + ioctl(PLAIN_B, VCREATE, struct.pack("<II", 0, 1)) + ioctl(PLAIN_B, MDESTROY, struct.pack("<I", 0))
    + ioctl(ROOT, CTL, struct.pack("<i4xQQ", 0, 0, 32), buf=bytes(32), how=1)
    + ioctl(PLAIN_B, CTL, struct.pack("<i4xQQ", 0, 0, 32), buf=bytes(32), how=1)
    + bytes([3, PLAIN_A]) + ioctl(PLAIN_B, MCREATE) + ioctl(ROOT, MCREATE) + ioctl(ROOT, CAP),
    "configure-inject": MV
    + ioctl(PLAIN_A, VCONF, struct.pack("<IIQ", 0, 0, CONF_CPUID), buf=struct.pack("<II", 2, 0).ljust(40, b"\0"),
            how=1)
    + ioctl(PLAIN_A, VCONF, struct.pack("<IIQ", 0, 0, CONF_TPR), buf=struct.pack("<I", 1), how=1)
    + ioctl(PLAIN_A, MCONF, struct.pack("<I4xQ", 0, 0), buf=bytes(16), how=1)
    + ioctl(PLAIN_A, INJECT, IDS) + script(0, 0, [exit_plain(X_HALTED)]) + ioctl(PLAIN_A, RUN, IDS),
    "signal-run": MV + bytes([2]) + script(0, 0, [exit_plain(X_CPUID)]) + ioctl(PLAIN_A, RUN, IDS)
    + ioctl(PLAIN_A, RUN, IDS),
    "comm-write": MV + bytes([5, 0]) + struct.pack("<H", 16) + bytes([8]) + struct.pack("<Q", 0x7F)
    + ioctl(PLAIN_A, RUN, IDS) + bytes([4, 0]),
    "raw-command": bytes([0, PLAIN_A, 200]) + struct.pack("<I", 0xC008_4E01) + bytes([0, 0, 0]),
    # the process stores 0x7F in the comm page's bool event_commit (offset 1040 on x86-64), then runs:
    # a backend that loads it as a bool has undefined behaviour (the ioctl harness's first upstream-side
    # finding; the fake backend reads the byte)
    "event-commit-byte": MV + bytes([5, 0]) + struct.pack("<H", 1040) + bytes([1, 0x7F]) + ioctl(PLAIN_A, RUN, IDS),
}


def main() -> None:
    here = Path(__file__).resolve().parent / "corpus"
    for harness, seeds in (("assist", SEEDS), ("ioctl", IOCTL_SEEDS)):
        out = here / harness
        out.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (out / name).write_bytes(data)
        print(f"wrote {len(seeds)} seeds to {out}")


if __name__ == "__main__":
    main()
