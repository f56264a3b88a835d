"""The commands: each turns its parsed arguments into typed library calls and prints their results.

Only this package prints (standard output for results, standard error for notes, warnings and
progress); the library returns what it found.  Library modules are imported inside each command,
so a command loads only what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import ui
from ..errors import PortError
from ..project import Project

if TYPE_CHECKING:
    from ..run.haiku import AddonBuilt
    from ..run.hosted import HostedBuilt
    from ..upstream.sync import SummaryRow


def _progress() -> ui.Progress:
    return ui.for_stream(sys.stderr)


def _echo(line: str) -> None:
    print(line, flush=True)


def _write_atomic(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)


def _warn_compiler(warnings: dict[str, list[str]]) -> None:
    for f, msgs in sorted(warnings.items()):
        print(f"warning: {f}: {len(msgs)} compiler warning(s), first: {msgs[0]}", file=sys.stderr)


# ---- analyze

def analyze(project: Project, args: argparse.Namespace) -> int:
    from ..analysis.analyze import analyze_project
    from ..analysis.report import render
    surface = analyze_project(project, args.upstream, use_cache=not args.no_cache, progress=_progress())
    text = render(surface, args.format)
    if args.output:
        out = Path(args.output)
        _write_atomic(out, text)
        s = surface.summary()
        print(f"wrote {out}: {s['primitives']} primitives ({s['call_sites']} call sites), "
              f"{s['variation_points']} variation points, {s['foreign_identifiers']} foreign identifiers",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# ---- drift

def drift(project: Project, args: argparse.Namespace) -> int:
    import json

    from ..targets.drift import drift as compare
    from ..templating import render
    d = compare(project, args.from_name, args.to_name, args.target, progress=_progress())
    text = json.dumps(d.to_json(), indent=2) + "\n" if args.format == "json" else \
        render("report/drift.md.j2", d=d, s=d.counts())
    if args.output:
        _write_atomic(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for t in d.targets:
        if t.broken:
            print(f"drift: target {t.target} breaks on {d.to_name}: {len(t.refused)} refused by generate, "
                  f"{len(t.review)} changed upstream to review", file=sys.stderr)
    return 1 if d.broken else 0


def stamp(project: Project, args: argparse.Namespace) -> int:
    from ..targets.stamp import stamp as record
    res = record(project, args.target, args.upstream, progress=_progress())
    print(f"{res.toml_path}: {len(res.written)} entr{'y' if len(res.written) == 1 else 'ies'} stamped against "
          f"{res.upstream}, {res.current} already current"
          + (f", {len(res.absent)} not in {res.upstream}: {', '.join(res.absent)}" if res.absent else ""))
    return 0


# ---- generate

def generate(project: Project, args: argparse.Namespace) -> int:
    from ..targets.generate import prepare, render_tree
    from ..targets.spec import check_spec
    from ..targets.writer import other_files, stale_files, write_tree
    spec, surface, cache = prepare(project, args.target, args.upstream, _progress())
    check_spec(spec, surface)
    tree = render_tree(project, spec, surface, cache, args.flatten)
    out = Path(args.out) if args.out else project.build_dir / spec.name
    if args.check:
        stale = stale_files(tree, out)
        for line in stale:
            print(line)
        if stale:
            print(f"{out}: {len(stale)} file(s) out of date; run gen.py generate --target {spec.name}",
                  file=sys.stderr)
            return 1
        others = other_files(tree, out)
        print(f"{out}: up to date ({len(tree.files)} files" +
              (f"; {len(others)} other file(s) gen.py did not write, left alone" if others else "") + ")")
        return 0
    report = write_tree(tree, out)
    print(f"generated {out}: {len(tree.files)} files, {len(report.written)} written, "
          f"{len(report.unchanged)} unchanged, {len(report.removed)} removed" +
          (f"; {len(report.others)} other file(s) gen.py did not write, left alone" if report.others else ""))
    return 0


# ---- build

def _kdir(args: argparse.Namespace) -> str | None:
    """--kdir, or the headers of --kernel-release (which must be installed)."""
    release = getattr(args, "kernel_release", None)
    if release is None:
        return str(args.kdir) if args.kdir else None
    from ..run.kernels import from_arg
    if args.kdir:
        raise PortError("--kdir and --kernel-release both name the kernel", None, "give one of them")
    kernel = from_arg(release)
    if not (kernel.kdir / "Makefile").is_file():
        raise PortError(f"the headers of {release} are not installed", kernel.kdir,
                        f"run gen.py setup --for e2e --kernel-release {release}")
    return str(kernel.kdir)


def _release(args: argparse.Namespace) -> str | None:
    from ..run.kernels import from_arg
    return from_arg(args.kernel_release).release if getattr(args, "kernel_release", None) else None


def build(project: Project, args: argparse.Namespace) -> int:
    from ..run.build import build_port
    from ..run.haiku import AddonBuilt
    from ..run.hosted import HostedBuilt
    out = args.out
    if out is None and _release(args):
        out = str(project.build_dir / f"{Path(args.target).name}-{_release(args)}")   # as e2e builds it
    built = build_port(project, args.target, args.upstream, out, _kdir(args), args.flatten, args.jobs,
                       progress=_progress())
    if isinstance(built, AddonBuilt):
        return _report_addon(built)
    if isinstance(built, HostedBuilt):
        return _report_hosted(built)
    print(f"rendered {built.out}: {len(built.rendered.written)} written, {len(built.rendered.unchanged)} unchanged")
    for note in built.notes:
        print(note, file=sys.stderr)
    _warn_compiler(built.warnings)
    info = built.modinfo
    what = (f"against {built.kdir.resolve()}: "
            f"version {','.join(info.get('version', ['-']))}, license {','.join(info.get('license', ['-']))}, "
            f"description {','.join(info.get('description', ['-']))!r}, "
            f"vermagic {','.join(info.get('vermagic', ['-']))}")
    if built.compiled:
        print(f"built {built.module} ({len(built.compiled)} object(s) compiled) {what}")
    else:
        print(f"nothing to compile: {built.module} up to date, {what}")
    for p in info.get("parm", []):
        print(f"  parameter {p}")
    user = built.userland
    if user is not None:
        _warn_compiler(user.warnings)
        products = (f"{user.library.relative_to(built.objdir) if user.library else 'no libnvmm.a'} and "
                    f"{len(user.programs)} static test program(s): {', '.join(sorted(user.programs))}")
        print(f"built {products} ({len(user.compiled)} object(s) compiled)" if user.compiled
              else f"nothing to compile: {products} up to date")
    return 0


def _report_hosted(built: HostedBuilt) -> int:
    """What a hosted build made."""
    print(f"rendered {built.out}: {len(built.rendered.written)} written, {len(built.rendered.unchanged)} unchanged")
    _warn_compiler(built.warnings)
    products = (f"{built.library.relative_to(built.objdir)} (frontend, fake backend, glue), "
                f"{built.libnvmm.relative_to(built.objdir)} and {len(built.programs)} test program(s): "
                f"{', '.join(sorted(built.programs))}; clang with ASan and UBSan")
    print(f"built {products} ({len(built.compiled)} object(s) compiled) in {built.seconds:.1f} s" if built.compiled
          else f"nothing to compile: {products} up to date")
    print(f"run them: gen.py e2e --target {built.spec.name}")
    return 0


def _report_addon(built: AddonBuilt) -> int:
    """What a Jam (Haiku) build made and checked."""
    root = built.sysroot
    print(f"rendered {built.out}: {len(built.rendered.written)} written, {len(built.rendered.unchanged)} unchanged")
    print(f"sysroot {root.name}: Haiku at {root.commit[:12]}, {root.files} files"
          + (" (imported now)" if root.imported else ""))
    _warn_compiler(built.warnings)
    n_warn = sum(len(v) for v in built.warnings.values())
    size = built.addon.stat().st_size
    print(f"{'built' if built.compiled else 'nothing to compile:'} {built.addon} "
          f"({size:,} bytes, {len(built.objects)} objects"
          + (f", {len(built.compiled)} compiled" if built.compiled else ", up to date") + f", {n_warn} warning(s))")
    k = built.kernel_exports
    print(f"kernel symbols: {len(built.needed)} needed, 0 unresolved against {len(k.c_names):,} C and "
          f"{len(k.cxx_names):,} C++ names the kernel exports ({k.method})")
    if built.programs:
        lib = built.libroot_exports
        total = sum(len(v) for v in built.program_needs.values())
        print(f"userland: {built.library.name if built.library else 'no libnvmm.a'} and "
              f"{len(built.programs)} test program(s) ({', '.join(sorted(built.programs))}): {total} libroot "
              f"symbol(s) needed, 0 unresolved" + (f" against {len(lib.c_names):,} names" if lib else ""))
    print(f"done in {built.seconds:.1f} s")
    return 0


# ---- e2e

def e2e(project: Project, args: argparse.Namespace) -> int:
    from ..run.e2e import Options, report, run_e2e
    from ..targets.spec import load_spec, resolve_target
    if load_spec(resolve_target(project, args.target)).build.system == "hosted":
        from ..run.hosted import run_hosted_e2e
        _echo(f"hosted: upstream's tests and the target's checks in-process ({args.target})")
        hosted = run_hosted_e2e(project, args.target, _echo, upstream=args.upstream, jobs=args.jobs,
                                progress=_progress())
        _echo(f"{'PASS' if hosted.passed else 'FAIL'} in {hosted.seconds:.1f} s; result: "
              f"{hosted.final / 'result.json'}")
        return 0 if hosted.passed else 1
    if args.cpu is None:
        raise PortError(f"target {args.target} runs in an emulated machine", None, "pass --cpu vmx or --cpu svm")
    opts = Options(cpu=args.cpu, smp=args.smp, leak_cycles=args.leak_cycles, fuzz_calls=args.fuzz_calls,
                   seed=args.seed, client=args.client)
    run = run_e2e(project, args.target, opts, _echo, upstream=args.upstream, kdir=_kdir(args), jobs=args.jobs,
                  release=_release(args),
                  kernel_mode=args.kernel, keep=args.keep, timeout=args.timeout, verbose=args.verbose,
                  cpu_model=args.cpu_model, progress=_progress())
    report(run.result, _echo)
    _echo(f"result: {run.final / 'result.json'}" + (f"; work files kept in {run.keep}" if run.keep else ""))
    return 0 if run.result.passed else 1


# ---- client

def client(project: Project, args: argparse.Namespace) -> int:
    from ..run import qemu
    if args.update_lock:
        qemu.update_lock(project, _echo)
    built = qemu.build_qemu(project, args.target, args.jobs, _echo, progress=_progress())
    sdk = built.sdk
    if sdk is not None:
        _echo(f"libnvmm for clients: {sdk.prefix} ({len(sdk.headers)} header(s), "
              + (f"{len(sdk.changed)} file(s) changed" if sdk.changed else "unchanged") + ")")
    times = ", ".join(f"{k} {v:.1f} s" for k, v in built.seconds.items())
    _echo(f"QEMU {built.version}: {built.what}; {built.program} ({built.size / 1e6:.1f} MB stripped, "
          f"{built.unstripped_bytes / 1e6:.1f} MB as built) and firmware {', '.join(built.firmware)} ({times})")
    _echo(f"run: {built.program} -accel nvmm -L {built.program.parent / 'fw'} -M pc -m 512 ... "
          "(with nvmm.ko loaded; README says more)")
    return 0


# ---- fuzz

def fuzz(project: Project, args: argparse.Namespace) -> int:
    from ..run.fuzz import fuzz as run_fuzz
    res = run_fuzz(project, args.target, args.harness, args.runs, args.seconds, _echo, progress=_progress())
    lines = " ".join(f"lines[{Path(f).name}]={c}/{t} ({100.0 * c / t if t else 0:.1f}%)"
                     for f, (c, t) in (res.coverage.lines.items() if res.coverage else []))
    print(f"harness={res.harness} executions={res.executions} exec_per_s={res.exec_per_s} edges={res.edges} "
          f"corpus={res.corpus} {lines} findings={len(res.findings)} seconds={res.seconds:.1f}")
    for f in res.findings:
        print(f"finding: {f} (reproduce: {res.program} {f})")
    return 1 if res.findings else 0


# ---- mutate

def mutate(project: Project, args: argparse.Namespace) -> int:
    from ..run import mutate as m
    mutants = m.load(project)
    if args.only:
        unknown = sorted(set(args.only) - {x.id for x in mutants})
        if unknown:
            raise PortError(f"no mutant {', '.join(unknown)}", project.root / m.CATALOG, "gen.py mutate --list")
        mutants = [x for x in mutants if x.id in args.only]
    if args.fast:
        mutants = [x for x in mutants if not x.slow]
    if args.list:
        for x in mutants:
            print(f"{x.id:38s} {'blind' if x.blind else 'mutant':6s} {x.file}: {x.why}")
        return 0
    report = m.run(project, mutants, _echo)
    print(f"\ncaught {report.caught}/{len(report.mutants)} mutants")
    for o in report.outcomes:
        if not o.blind:
            print(f"  {'caught' if o.caught else 'MISSED':7s} {o.id:38s} {o.by or '-'}")
    blind = [o for o in report.outcomes if o.blind]
    if blind:
        print("known blind:")
        for o in blind:
            print(f"  {'caught' if o.caught else 'unseen':7s} {o.id}: {o.reason}")
    return 0 if report.caught == len(report.mutants) else 1


# ---- extract-target, new-target, surface

def extract_target(project: Project, args: argparse.Namespace) -> int:
    from ..analysis.analyze import analyze_project, load_upstream
    from ..targets.extract import extract, write_spec
    surface = analyze_project(project, args.upstream, progress=_progress())
    _, cache, _ = load_upstream(project, surface.upstream.name)
    files = extract(surface, cache, args.os)
    out = Path(args.output) if args.output else project.build_dir / f"spec-{args.os}"
    write_spec(files, out)
    n_p, n_v = len(surface.primitives), len(surface.variation_points)
    print(f"extracted {args.os} spec to {out}: {n_p} primitives, {n_v} variation points "
          "(derived from upstream code: do not commit it)")
    return 0


def adopt(project: Project, args: argparse.Namespace) -> int:
    """Exit 0 when BASE + the adopted spec renders (its differences from the fork reported), 1 when
    generate refuses it."""
    from ..targets.adopt import adopt as run_adopt
    from ..targets.adopt import compare, report
    from ..targets.writer import write_files
    out = Path(args.output)
    a = run_adopt(project, args.base, args.port, args.os, out.name if out.name else None)
    write_files(a.files, out)
    compare(project, a, out)
    text = report(a)
    write_files({"ADOPTED.md": text.encode()}, out)
    print(f"adopted {args.port} onto {args.base} for {args.os} in {out}: {a.primitives} primitives, "
          f"{a.variation_points} variation points, {len(a.added_files)} added files carried verbatim "
          "(derived from the fork's code: do not commit it)")
    if a.refused:
        print(f"generate refuses the spec ({len(a.refused)} problem(s)); see {out / 'ADOPTED.md'}", file=sys.stderr)
        return 1
    print(f"BASE + spec against the fork: {len(a.equal)} files equal, {len(a.differ)} differ by "
          f"{len(a.hunks)} edit(s) to shared code (unified diffs in {out / 'ADOPTED.md'})")
    return 0


def new_target(project: Project, args: argparse.Namespace) -> int:
    from ..analysis.analyze import analyze_project
    from ..targets.extract import write_spec
    from ..targets.scaffold import scaffold
    from ..targets.spec import default_macro, load_spec, macro_problem, target_name_problem
    problem = target_name_problem(args.name)
    if problem is not None:
        raise PortError(problem, project.shim_dir, "pick another name")
    macro = args.macro or default_macro(args.name)
    problem = macro_problem(macro)
    if problem is not None:
        raise PortError(f"--macro: {problem}", None, f"pass e.g. --macro {default_macro(args.name)}")
    out = Path(args.output) if args.output else project.shim_dir / args.name
    if out.exists() and not args.force:
        raise PortError("the spec directory exists already", out, "pass --force to overwrite it, or pick another name")
    surface = analyze_project(project, args.upstream, progress=_progress())
    files = scaffold(project, args.name, surface, macro)
    write_spec(files, out)
    spec = load_spec(out)
    todo = spec.todos()
    print(f"created {out}/target.toml: {len(todo.get('primitives', []))} primitives and "
          f"{len(todo.get('variation points', []))} variation points to fill")
    return 0


def surface(project: Project, args: argparse.Namespace) -> int:
    import json

    from ..analysis.analyze import analyze_project
    from ..targets.scaffold import surface_report
    from ..targets.spec import load_spec, resolve_target
    spec = load_spec(resolve_target(project, args.target), defer_errors=True)    # listed with the rest
    analysis = analyze_project(project, args.upstream, progress=_progress())
    rep = surface_report(spec, analysis, project)
    if args.format == "json":
        sys.stdout.write(json.dumps(rep, indent=2) + "\n")
        return 1 if rep["lacking"] or rep["errors"] else 0
    print(f"target {rep['target']} against upstream {analysis.upstream.name}")
    for how, names in sorted(rep["provided"].items()):
        print(f"  provides {len(names):3d} primitive(s) as {how}")
    for form, ids in sorted(rep["variation_points"].items()):
        print(f"  fills    {len(ids):3d} variation point(s) by {form}")
    print(f"  emits    {len(rep['compat_headers'])} compat header(s)"
          f"{'' if rep['compat_exact'] else ' (approximate until the spec is complete and valid)'}"
          f"{': ' if rep['compat_headers'] else ''}" + ", ".join(rep["compat_headers"]))
    if rep["errors"]:
        print(f"  errors   {len(rep['errors'])} (gen.py generate refuses the spec until they are fixed):")
        for line in rep["errors"]:
            print(f"    {line}")
    if rep["lacking"]:
        print(f"  lacks    {len(rep['lacking'])} entr{'y' if len(rep['lacking']) == 1 else 'ies'}:")
        for line in rep["lacking"]:
            print(f"    {line}")
    if rep["errors"] or rep["lacking"]:
        return 1
    print("  complete")
    return 0


# ---- sync

def sync(project: Project, args: argparse.Namespace) -> int:
    from ..upstream.sync import SyncFailed, SyncSource, check, resolve_name
    from ..upstream.sync import sync as sync_upstream
    source = SyncSource(git=args.git, dir=args.dir, ref=args.ref, paths=tuple(args.path), exclude=tuple(args.exclude),
                        include=tuple(args.include))
    if args.check:
        if source.anything:
            raise PortError("--check takes no source", None, "drop --git/--dir/--ref/--path/--exclude")
        found = check(project, resolve_name(project, args.name))
        for line in found.lines:
            _echo(line)
        if found.ok:
            _echo(f"cache matches lock {found.name}: {found.lock_summary}")
            return 0
        print(f"nvmm-port: {len(found.lines)} file(s) in {found.cache_dir} differ from {found.lock_path}: "
              f"run `gen.py sync --name {found.name}` to restore them", file=sys.stderr)
        return 1
    name = resolve_name(project, args.name)
    try:
        done = sync_upstream(project, name, source, progress=_progress())
    except SyncFailed as exc:
        _sync_warnings(exc.warnings)
        raise
    _sync_warnings(done.warnings)
    if done.summary and sys.stderr.isatty():
        _sync_summary(done.summary)
    if done.outcome == "restored":
        _echo(f"restored {name}: {done.lock_summary} (cache rewritten to match {done.lock_path.name})")
    else:
        _echo(f"{done.outcome} {name}: {done.lock_summary}")
    return 0


def _sync_warnings(warnings: list[str]) -> None:
    for line in warnings:
        print(f"nvmm-port: warning: {line}", file=sys.stderr, flush=True)


def _sync_summary(rows: list[SummaryRow]) -> None:
    """What was imported, as a table on a terminal's stderr."""
    from rich.console import Console
    from rich.table import Table
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("imported")
    table.add_column("files", justify="right")
    table.add_column("bytes", justify="right")
    for row in rows:
        table.add_row(row.group, str(row.files), f"{row.bytes:,}", style="bold" if row.group == "total" else None)
    Console(stderr=True, highlight=False).print(table)


# ---- matrix

def matrix(project: Project, args: argparse.Namespace) -> int:
    """List the cells; --run runs them (exit 1 when one fails); --emit github writes the workflow
    (--check: exit 1 if the committed one is stale)."""
    from ..run import matrix as m
    filters = m.parse_filters(args.filter)
    all_cells = m.cells(project)
    if args.emit:
        text = m.github_workflow(all_cells)
        path = project.root / m.WORKFLOW
        if args.check:
            if not path.is_file() or path.read_text() != text:
                print(f"{m.WORKFLOW}: stale; run gen.py matrix --emit github", file=sys.stderr)
                return 1
            print(f"{m.WORKFLOW}: up to date ({len(all_cells)} jobs)")
            return 0
        _write_atomic(path, text)
        print(f"wrote {m.WORKFLOW}: {len(all_cells)} jobs")
        return 0
    chosen = m.select(all_cells, filters)
    if not chosen:
        raise PortError("no cell matches the filters", None,
                        "gen.py matrix lists the cells; filter on " + ", ".join(m.KEYS))
    if not args.run:
        for c in chosen:
            print(f"{c.target:8s} {c.kernel:22s} {c.cpu:4s} {c.upstream:16s} {c.client:5s} {' '.join(c.steps)}")
        print(f"{len(chosen)} cell(s); gen.py matrix --run runs them")
        return 0
    results = m.run(project, chosen, _echo, keep_going=args.keep_going)
    from rich.console import Console
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)      # a log keeps whole columns
    console.print(m.table(results))
    js, md = m.write_results(project, results)
    for r in results:
        if r.status == "FAIL":
            bad = next(s for s in r.steps if s.status == "FAIL")
            print(f"FAIL {r.cell.id}: {bad.step}: {bad.reason}\n  log: {bad.log}", file=sys.stderr)
            for line in m._tail(bad.log, 8):
                print(f"  | {line}", file=sys.stderr)
    print(f"results: {js}, {md}")
    return 1 if any(r.status == "FAIL" for r in results) else 0
