#!/usr/bin/env python3
"""Benchmark: analyze (cold, warm) and generate (every target spec present, plus the NetBSD and
DragonFly specs extracted at run time) on a synced upstream, and how many files a no-op
regenerate rewrites.  Prints figures and ratios measured in this one run; asserts nothing.

    python bench/bench_generate.py [--upstream dragonfly-2024] [--one-core]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nvmm_port.analysis.analyze import analyze_project, load_upstream  # noqa: E402
from nvmm_port.project import Project  # noqa: E402
from nvmm_port.targets.extract import extract, write_spec  # noqa: E402
from nvmm_port.targets.generate import render_tree  # noqa: E402
from nvmm_port.targets.spec import check_spec, load_spec  # noqa: E402
from nvmm_port.targets.writer import write_tree  # noqa: E402

GOAL_WARM_S = 2.0


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", default="dragonfly-2024")
    ap.add_argument("--one-core", action="store_true", help="pin this process to one CPU first")
    args = ap.parse_args()
    if args.one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    project = Project.find(ROOT)
    try:
        _, cache, _ = load_upstream(project, args.upstream)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and stops
        print(f"cannot benchmark: {exc}")
        return 2
    print(f"upstream {args.upstream}, {len(os.sched_getaffinity(0))} CPU(s) available to this process")
    surface, cold = timed(lambda: analyze_project(project, args.upstream, use_cache=False))
    analyze_project(project, args.upstream, use_cache=True)        # fill the parse cache
    _, warm = timed(lambda: analyze_project(project, args.upstream, use_cache=True))
    print(f"analyze   cold {cold:6.3f} s   warm {warm:6.3f} s   (cold/warm {cold / warm:5.1f}x)")

    with tempfile.TemporaryDirectory(prefix="nvmm-port-bench-") as tmp:
        specs = []
        for os_name in surface.upstream.oses:        # extracted at run time: upstream code, never committed
            d = Path(tmp) / f"spec-{os_name}"
            write_spec(extract(surface, cache, os_name), d)
            specs.append(d)
        specs += sorted(p.parent for p in project.shim_dir.glob("*/target.toml"))
        warm_total = warm
        for spec_dir in specs:
            spec = load_spec(spec_dir)
            try:
                check_spec(spec, surface)
            except Exception as exc:  # noqa: BLE001
                print(f"generate  {spec.name:10s} skipped: {exc}")
                continue
            for flat in (False, True):
                out = Path(tmp) / f"out-{spec.name}-{int(flat)}"
                tree, t_render = timed(lambda s=spec, f=flat: render_tree(project, s, surface, cache, f))
                first, t_write = timed(lambda t=tree, o=out: write_tree(t, o))
                tree2, t_render2 = timed(lambda s=spec, f=flat: render_tree(project, s, surface, cache, f))
                again, t_write2 = timed(lambda t=tree2, o=out: write_tree(t, o))
                step = warm + t_render2 + t_write2
                warm_total = max(warm_total, step)
                mode = "--flatten" if flat else "arms     "
                print(f"generate  {spec.name:10s} {mode} first {t_render + t_write:6.3f} s"
                      f"  no-op {t_render2 + t_write2:6.3f} s  ({len(tree.files)} files; no-op rewrote "
                      f"{len(again.written)}, removed {len(again.removed)})   warm analyze+generate {step:6.3f} s")
    print(f"slowest warm analyze+generate {warm_total:6.3f} s = {warm_total / GOAL_WARM_S:5.2f} of the "
          f"{GOAL_WARM_S:.0f} s goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
