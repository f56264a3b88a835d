#!/usr/bin/env python3
"""Write the assist harness's seed corpus (corpus/assist/): one input per kind of guest access the
emulator handles, laid out as fuzz_assist.c reads them.  Run it after changing that layout.

Layout: [mode 1][exit 32][GPRs 18x8][segments 10x16][CRs 6x8][MSRs 11x8][guest memory from GPA 0]
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


def main() -> None:
    out = Path(__file__).resolve().parent / "corpus" / "assist"
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
