#!/usr/bin/env python3
"""NVMM vs KVM, per VM exit, in one boot of the same emulated machine.

For each CPU (Bochs VT-x+EPT, AMD-V+NPT) one boot runs a guest loop of N I/O-port exits
(returned to userland) and N CPUID exits (handled in the kernel) first under the generated
NVMM (libnvmm, nvmm_assist_io), then, after `rmmod nvmm`, under the guest kernel's own KVM
(kvm_intel / kvm_amd from Debian's linux-image) through a small KVM program running the same
guest bytes.  Prints exits per second of each and the ratio NVMM/KVM.  Times are the guest's
CLOCK_MONOTONIC, which under Bochs (clock: sync=none) follows the emulated instruction count:
the ratio compares instructions spent per exit, and repeats exactly.

Where an NVMM I/O exit's time goes is printed too: the exit is one run ioctl (the backend puts
GPRS|SEGS|CRS|MSRS in the comm page, so nvmm_assist_io's getstate is a cache hit), next to a
getstate ioctl that copies that state, an ioctl that does almost nothing (the system call and the
driver's dispatch) and a bare system call.

Usage: python bench/bench_e2e.py [--cpu vmx|svm|both] [--exits N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nvmm_port.project import Project
from nvmm_port.run import e2e


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", choices=("vmx", "svm", "both"), default="both")
    ap.add_argument("--exits", type=int, default=20000)
    args = ap.parse_args()
    project = Project.find()
    rows = []
    for cpu in (("vmx", "svm") if args.cpu == "both" else (args.cpu,)):
        res = e2e.run_bench(project, cpu, args.exits, echo=lambda s: print(f"  {s}", flush=True))
        if not res.passed:
            e2e.report(res, print)
            return 1
        nv, kv = res.runs["nvmm_exits"].values(), res.runs["kvm_exits"].values()
        rows.append((cpu, nv, kv, res.phases.get("total", 0.0)))
    print(f"\n{'cpu':<4} {'kind':<6} {'NVMM exits/s':>13} {'KVM exits/s':>12} {'NVMM/KVM':>9}")
    for cpu, nv, kv, _ in rows:
        for kind in ("io", "cpuid"):
            n, k = float(nv[f"{kind}_exits_per_s"]), float(kv[f"{kind}_exits_per_s"])
            print(f"{cpu:<4} {kind:<6} {n:>13.0f} {k:>12.0f} {n / k:>9.2f}")
    print(f"\n{'cpu':<4} {'NVMM I/O exit':>14} {'getstate ioctl':>15} {'null ioctl':>11} {'syscall':>8} "
          f"{'KVM I/O exit':>13}  (us each)")
    for cpu, nv, kv, _ in rows:
        print(f"{cpu:<4} {float(nv['io_exit_us']):>14.2f} {float(nv['getstate_us']):>15.2f} "
              f"{float(nv['null_ioctl_us']):>11.2f} {float(nv['syscall_us']):>8.2f} "
              f"{1e6 / float(kv['io_exits_per_s']):>13.2f}")
    print(f"({args.exits} exits of each kind; one boot per CPU: "
          + ", ".join(f"{cpu} {t:.0f} s" for cpu, _, _, t in rows) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
