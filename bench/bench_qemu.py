#!/usr/bin/env python3
"""QEMU as a client: the same nested Linux boot with -accel nvmm and with -accel kvm, one boot per CPU.

For each CPU (Bochs VT-x+EPT, AMD-V+NPT) one Bochs boot loads the generated nvmm.ko and runs QEMU
(built by `gen.py client qemu` against the port's libnvmm) booting Debian's kernel with our
initramfs to its `NESTED-GUEST-UP cpus=N` marker and power-off; then, after `rmmod nvmm`, the
emulated machine's own KVM (kvm_intel / kvm_amd from Debian's linux-image) boots the same guest
with the same QEMU binary.  Prints, for each accelerator:

  marker   host seconds from QEMU's start to the marker line on the serial console (Bochs' wall time)
  step     the whole step (start, boot, power-off, QEMU's exit) in the emulated machine's own
           uptime, which under Bochs (clock: sync=none) follows the emulated instruction count
  nested   the nested guest's own uptime at the marker

and the ratio NVMM/KVM of the first two (< 1: NVMM boots faster).  Exit counts by reason are not
printed: NVMM keeps none and KVM's debugfs counters vanish with the VM.

Usage: python bench/bench_qemu.py [--cpu vmx|svm|both] [--vcpus N]
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
    ap.add_argument("--vcpus", type=int, default=1, help="QEMU -smp (and Bochs CPUs); default 1")
    args = ap.parse_args()
    project = Project.find()
    rows = []
    for cpu in (("vmx", "svm") if args.cpu == "both" else (args.cpu,)):
        res = e2e.run_qemu_bench(project, cpu, args.vcpus, echo=lambda s: print(f"  {s}", flush=True))
        if not res.passed:
            e2e.report(res, print)
            return 1
        for accel in ("nvmm", "kvm"):
            run = res.runs[f"qemu-{accel}"]
            marker = run.first(e2e.NESTED_MARKER)
            step = (run.guest_end - run.guest_begin) if run.guest_end is not None and run.guest_begin is not None \
                else float("nan")
            nested = float(run.values().get("uptime", "nan"))
            rows.append((cpu, accel, marker if marker is not None else float("nan"), step, nested))
        rows.append((cpu, "total", res.phases.get("total", 0.0), 0.0, 0.0))
    print(f"\n{'cpu':<4} {'accel':<6} {'marker (wall s)':>16} {'step (guest s)':>15} {'nested uptime s':>16}")
    for cpu, accel, marker, step, nested in rows:
        if accel != "total":
            print(f"{cpu:<4} {accel:<6} {marker:>16.1f} {step:>15.1f} {nested:>16.2f}")
    for cpu in sorted({r[0] for r in rows}):
        by = {r[1]: r for r in rows if r[0] == cpu}
        n, k = by["nvmm"], by["kvm"]
        print(f"{cpu}: NVMM/KVM boot-to-marker {n[2] / k[2]:.2f} (wall), whole step {n[3] / k[3]:.2f} "
              f"(emulated time); one Bochs boot {by['total'][2]:.0f} s")
    print(f"(QEMU -smp {args.vcpus}, Bochs with {args.vcpus} CPU(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
