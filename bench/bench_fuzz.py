#!/usr/bin/env python3
"""Fuzzing throughput and reach: each harness of `gen.py fuzz` (assist: libnvmm's instruction
emulator; ioctl: NVMM's ioctl interface against upstream's frontend) run on the hosted target for
N executions (default 2,000,000) from its committed seeds and its working corpus in build/fuzz/,
under libFuzzer with AddressSanitizer and UBSan.  Prints executions, exec/s, edges, the lines of
the port files the corpus covers (clang's source-based coverage) and the findings, which must be 0.

Usage: python bench/bench_fuzz.py [--runs N] [--target hosted]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nvmm_port.project import Project
from nvmm_port.run import fuzz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=2_000_000)
    ap.add_argument("--target", default="hosted")
    args = ap.parse_args()
    project = Project.find()
    bad = 0
    for name in fuzz.HARNESSES:
        res = fuzz.fuzz(project, args.target, name, args.runs, None, lambda s: print(f"  {s}", flush=True))
        cov = res.coverage or fuzz.Coverage()
        lines = ", ".join(f"{Path(f).name} {c}/{t} lines ({cov.percent(f):.1f}%)" for f, (c, t) in cov.lines.items())
        print(f"{name}: {res.executions:,} executions in {res.seconds:.1f} s ({res.exec_per_s:,} exec/s), "
              f"{res.edges} edges, corpus {res.corpus}; {lines}; {len(res.findings)} finding(s)")
        for f in res.findings:
            print(f"  finding: {f} (reproduce: {res.program} {f})")
        bad += len(res.findings)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
