"""The nvmm-port command line.  Thin: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable

from .. import __version__
from ..errors import PortError
from ..project import Project

DESCRIPTION = """\
Retarget the NVMM hypervisor to other kernels.

Typical flow for a porter:
  gen.py setup                        install the Debian packages builds, e2e runs and the tests need
  gen.py sync --name dragonfly-2024 --git MIRROR --ref 8b7bc49ce0   import upstream, write upstream/NAME.lock
  gen.py analyze                      the porting surface: os_* primitives, variation points, BSD names
  gen.py new-target myos              scaffold shim/myos/target.toml, one TODO per primitive and variation point
  gen.py surface --target myos        what the spec still lacks
  gen.py generate --target myos       render build/myos/: filled upstream, nvmm_os.h, glue, compat, build file
  gen.py build --target myos          build it (Kbuild targets: the kernel module, checked by modpost)
  gen.py e2e --target linux --cpu vmx --smp 2   run it in an emulated VT-x machine (or --cpu svm)
  gen.py client qemu --target linux   build QEMU's NVMM accelerator against the port's libnvmm
  gen.py build --target hosted        upstream's frontend in a process with a fake backend (ASan, UBSan)
  gen.py e2e --target hosted          upstream's tests against it, no emulator
  gen.py fuzz --target hosted --harness ioctl|assist   fuzz the ioctl surface or libnvmm's emulator
"""


def _add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sync",
        help="import an upstream NVMM tree into the cache and write its lock file",
        description=(
            "Import an upstream NVMM tree into the git-ignored cache (upstream/cache/NAME/) and write the "
            "committed lock upstream/NAME.lock (source, commit, import date, sha256 of every file). Known "
            "layouts (dragonfly, netbsd, haiku) are detected and normalised to driver/, driver/x86/, "
            "libnvmm/, tests/. With no source option the source recorded in the existing lock is used "
            "(a local mirror of a recorded GitHub URL is looked up in $NVMM_PORT_MIRRORS, default "
            "/work/.mirror). Re-running on an unchanged source rewrites nothing."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--name", help="upstream name, e.g. dragonfly-2024 (default: the only lock)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--git", metavar="URL|PATH",
                     help="git repository: a local repository or bare mirror (read with git show, no checkout) "
                          "or a remote URL (shallow sparse clone)")
    src.add_argument("--dir", metavar="PATH", help="a directory laid out like DragonFly, NetBSD or Haiku")
    p.add_argument("--ref", help="git ref or commit to import (with --git; default HEAD)")
    p.add_argument("--path", action="append", default=[], metavar="SUBDIR[:DEST][?]",
                   help="with --git: a subdirectory to import, optionally with its place in the internal view "
                        "(driver, driver/x86, libnvmm, tests); repeatable. A trailing '?' makes it optional: "
                        "absent at the ref, it is skipped with a warning (one path list for a series of "
                        "revisions). Default: detect a known layout")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="source paths to leave out (glob, relative to the repository); repeatable")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="source paths the detected layout leaves out to import anyway (glob, relative to the "
                        "repository), at their place under the layout's folder; repeatable")
    p.add_argument("--check", action="store_true",
                   help="do not import: re-hash the cache against the lock and name every changed, "
                        "missing or extra file (exit 1 if any)")


def _add_analyze(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="parse upstream and report its porting surface",
        description=(
            "Parse every upstream C, header and assembly file and report the porting surface: the os_* "
            "primitives of the contract header with their per-OS definitions and call sites, the "
            "OS-conditional variation points with stable ids, the foreign (BSD) identifiers grouped by the "
            "header that provides them, and parse coverage."
        ),
    )
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("--format", choices=("md", "json"), default="md", help="output format (default md)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.add_argument("--no-cache", action="store_true", help="do not reuse cached parses")


def _add_generate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "generate", help="render a complete port tree for a target",
        description=("Render upstream with every variation point filled for TARGET, the target's nvmm_os.h, "
                     "its glue source, the BSD compat headers it needs, its build file and a PROVENANCE file. "
                     "Deterministic and atomic; unchanged files keep their mtime."))
    p.add_argument("--target", required=True, help="a target name under shim/, or the path of a spec directory")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("--out", metavar="DIR", help="output directory (default build/TARGET)")
    p.add_argument("--flatten", action="store_true",
                   help="resolve every OS conditional for the target (unifdef-style) instead of adding #elif arms")
    p.add_argument("--check", action="store_true",
                   help="render in memory and exit 1, listing files, if the output directory is stale")


def _add_extract(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "extract-target", help="write a complete TargetSpec from upstream's own branches for an OS",
        description=("Write a TargetSpec for an OS from upstream's own branches (netbsd, dragonfly, or the OS a "
                     "fork added, e.g. haiku): every primitive and variation point filled explicitly. The result "
                     "is derived from upstream code: keep it out of git (the default output is build/spec-OS)."))
    p.add_argument("--os", required=True, help="an OS upstream's conditionals know (netbsd, dragonfly, haiku, ...)")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("-o", "--output", metavar="DIR", help="spec directory to write (default build/spec-OS)")


def _add_new_target(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "new-target", help="scaffold shim/NAME/ with every primitive and variation point as a TODO entry",
        description=("Write shim/NAME/target.toml with one TODO entry per primitive and per variation point, each "
                     "pointing to its analysis entry (kind, location, signature, call sites, meaning). Upstream is "
                     "referenced by location, not copied."))
    p.add_argument("name", help="the target's name (the directory under shim/)")
    p.add_argument("--macro", help="the macro the target's compiler defines (default __NAME__)")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("-o", "--output", metavar="DIR", help="spec directory (default shim/NAME)")
    p.add_argument("--force", action="store_true", help="overwrite an existing spec directory")


def _add_surface(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "surface", help="what a target spec provides, what it still lacks, which compat headers it emits",
        description="Compare a TargetSpec with the analysis of upstream. Exit 1 while anything is lacking.")
    p.add_argument("--target", required=True, help="a target name under shim/, or the path of a spec directory")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("--format", choices=("text", "json"), default="text")


def _add_adopt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "adopt", help="turn a fork that added an OS by hand into a spec for the upstream it forked",
        description=("From PORT, a synced fork of the synced upstream BASE that added OS by hand, write a spec for "
                     "BASE: PORT's arms as fills, its added files as the spec's verbatim tree (its build files "
                     "among them), and ADOPTED.md: BASE + the spec rendered and compared with PORT, every "
                     "difference (the fork's edits to shared code) as a unified diff per file and function. "
                     "Derived from the fork's code: keep it out of git. Exit 0 when the spec renders, 1 when "
                     "generate refuses it, 2 on error."))
    p.add_argument("--base", required=True, metavar="BASE", help="the synced upstream the fork started from")
    p.add_argument("--port", required=True, metavar="PORT", help="the synced fork")
    p.add_argument("--os", required=True, help="the OS the fork added (an OS its conditionals know)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="spec directory to write (e.g. build/adopt-haiku; never a directory git tracks)")


def _add_matrix(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "matrix", help="the CI build matrix: list its cells, run them here, or emit the GitHub workflow",
        description=("Cells are target x kernel (Linux: 6.1, 6.1-rt, 6.12, 6.12-rt; Haiku: its pinned tree) x CPU "
                     "(vmx, svm) x upstream (each synced lock the target's spec fits), each running generate, "
                     "build and e2e where the target can run. Without --run the cells are listed. --run runs "
                     "them in order and prints a table, writing build/matrix/result.json and result.md (exit 1 "
                     "when a cell fails; the first failure stops the run unless --keep-going). --emit github "
                     "writes .github/workflows/matrix.yml, one job per cell."))
    p.add_argument("--run", action="store_true", help="run the chosen cells")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="only cells with KEY (target, kernel, cpu, upstream, step) = VALUE; repeatable")
    p.add_argument("--keep-going", action="store_true", help="run every cell even after one fails")
    p.add_argument("--emit", choices=("github",), help="write the workflow for this CI instead of running")
    p.add_argument("--check", action="store_true", help="with --emit: exit 1 if the committed workflow is stale")


def _add_drift(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "drift", help="what changed between two synced upstreams, and what it breaks in each target's spec",
        description=("Compare two synced upstreams: files; primitives added, removed, or changed in kind or "
                     "prototype; variation points added, removed, changed, moved or rebound (matched by content, "
                     "so an added wrapper or a renamed scope cannot rebind an id silently); edits to shared code "
                     "outside every variation point; newly used foreign identifiers. For each --target, what "
                     "generate would refuse against TO and the entries whose upstream text changed. Exit 0 when "
                     "no given target breaks, 1 when one does, 2 on error."))
    p.add_argument("--from", dest="from_name", required=True, metavar="A",
                   help="the upstream the specs were written for")
    p.add_argument("--to", dest="to_name", required=True, metavar="B", help="the upstream to move to")
    p.add_argument("--target", action="append", default=[], metavar="T",
                   help="a target to check against B (repeatable): a name under shim/ or a spec directory")
    p.add_argument("--format", choices=("md", "json"), default="md", help="output format (default md)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")


def _add_stamp(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stamp", help="record in a spec the upstream text each entry was written against",
        description=("Give every primitive and variation-point entry of TARGET's target.toml the fingerprint of "
                     "upstream's definition or block it fills (fingerprint = \"...\"), changing nothing else. "
                     "Validation then refuses an entry whose upstream text changed until it is reviewed and "
                     "stamped again."))
    p.add_argument("--target", required=True, help="a target name under shim/, or the path of a spec directory")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")


def _add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build", help="render the port tree if stale and build it (Kbuild: the kernel module)",
        description=("Render TARGET's port tree (if stale) and build it with its build system. For Kbuild targets "
                     "the module is built against a kernel build directory and checked: no undefined symbols "
                     "(modpost), and its modinfo is printed. It builds in OUT.obj/, a mirror of the rendered tree "
                     "(only changed files are copied, so a second build compiles nothing); the full log is "
                     "OUT.obj/build.log."))
    p.add_argument("--target", required=True, help="a target name under shim/, or the path of a spec directory")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("--out", metavar="DIR", help="output directory (default build/TARGET)")
    p.add_argument("--kdir", metavar="DIR", help="kernel build directory (default /lib/modules/$(uname -r)/build, "
                                                 "else the headers of Debian's default kernel)")
    p.add_argument("--kernel-release", metavar="REL",
                   help="build against the Debian headers of this release (6.12.113+deb12-rt-amd64, as uname -r "
                        "says; gen.py setup --kernel-release REL installs them)")
    p.add_argument("--flatten", action="store_true", help="build the flattened tree")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel make jobs")


def _add_e2e(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "e2e", help="run the built driver and its tests inside an emulated VT-x or AMD-V machine",
        description=("Build TARGET (if stale) with libnvmm, upstream's tests and the end-to-end programs, pack them "
                     "into an initramfs, boot the Debian kernel matching the module's headers under Bochs with "
                     "VT-x+EPT (--cpu vmx) or AMD-V+NPT (--cpu svm), and judge each step in the guest: insmod, "
                     "upstream's tests, SMP (with --smp 2), ownership, vCPU configuration copied in, leak, "
                     "ioctl fuzz (100,000 calls), teardown on close, rmmod, and with --client qemu a Linux guest "
                     "booted by QEMU -accel nvmm. "
                     "Prints one line per step and PASS/FAIL (exit 1 on FAIL); keeps the serial log and "
                     "result.json in build/e2e/TARGET-CPU-smpN/. "
                     "A hosted target (--target hosted) needs no emulator and no --cpu: upstream's test programs "
                     "and the target's checks run as processes against the frontend and the fake backend, with "
                     "ASan, UBSan and LeakSanitizer (results in build/e2e/hosted/)."))
    p.add_argument("--target", required=True, help="a Kbuild target with userland (linux), or hosted")
    p.add_argument("--cpu", choices=("vmx", "svm"), help="the emulated CPU's virtualization (kernel targets)")
    p.add_argument("--smp", type=int, default=1, metavar="N", help="emulated CPUs (default 1; the SMP step needs 2)")
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep everything (ISO, initramfs, programs)")
    p.add_argument("--upstream", metavar="NAME", help="which synced upstream (default: the only lock)")
    p.add_argument("--kdir", metavar="DIR", help="kernel headers to build against (default: as gen.py build)")
    p.add_argument("--kernel-release", metavar="REL",
                   help="build against this Debian release's headers and boot its image (6.1.0-57-rt-amd64, as "
                        "uname -r says; gen.py setup --kernel-release REL installs headers, image and source)")
    p.add_argument("--kernel", choices=("auto", "lz4", "stock"), default="auto",
                   help="boot image: the stock Debian vmlinuz, or the same kernel re-wrapped with LZ4 (faster "
                        "boot; needs linux-source); auto = lz4 when possible")
    p.add_argument("--cpu-model", metavar="MODEL", help="Bochs CPU model (default corei7_haswell_4770 / trinity_apu)")
    p.add_argument("--timeout", type=float, default=1500, metavar="SEC", help="wall-clock limit of the boot")
    p.add_argument("--leak-cycles", type=int, default=1000, metavar="N", help="create/run/destroy cycles")
    p.add_argument("--fuzz-calls", type=int, default=100000, metavar="N", help="random ioctls (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="fuzz seed")
    p.add_argument("-v", "--verbose", action="store_true", help="echo every serial line")
    p.add_argument("--client", choices=("qemu",),
                   help="also boot a Linux guest with QEMU -accel nvmm (1 vCPU, and -smp 2 with --smp 2); "
                        "builds it first as gen.py client qemu does")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel make jobs")


def _add_client(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "client", help="build a client of the port: QEMU with its NVMM accelerator, against the port's libnvmm",
        description=("Build TARGET's port (if stale), install its libnvmm for clients (include/, libnvmm.a, "
                     "nvmm.pc), then QEMU from Debian's source package at the version pinned in "
                     "upstream/clients/qemu.lock (apt-get source; never committed), with the NVMM accelerator "
                     "let in for TARGET's OS by nvmm-port's own edits, configured as a minimal static "
                     "x86_64-softmmu build. The build is cached in $NVMM_PORT_CACHE (default ~/.cache/nvmm-port): "
                     "a second run does nothing, a changed libnvmm re-links. The program and its firmware are "
                     "copied to build/clients/qemu/."))
    p.add_argument("client", choices=("qemu",), help="the client to build")
    p.add_argument("--target", default="linux", help="the port whose libnvmm it links (default linux)")
    p.add_argument("--update-lock", action="store_true",
                   help="pin the version Debian's deb-src sources offer now in upstream/clients/qemu.lock, then build")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel build jobs")


def _add_fuzz(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fuzz", help="coverage-guided fuzzing (libFuzzer, ASan, UBSan) of a port's code, with line coverage",
        description=("Build TARGET's port (if stale), then the harness shim/common/fuzz/fuzz_HARNESS.c with the "
                     "port sources it exercises, twice: with -fsanitize=fuzzer,address,undefined to fuzz, and with "
                     "source-based coverage. Fuzz from the committed seeds (shim/common/fuzz/corpus/HARNESS/) and "
                     "the working corpus in build/fuzz/HARNESS/, then print executions, exec/s, edges, the lines "
                     "of the port files the corpus covers and the findings (inputs that crashed, kept in "
                     "build/fuzz/HARNESS/findings/; each reproduces with the program and that file). Exit 1 "
                     "when there is a finding. Harness assist: libnvmm's x86 instruction emulator "
                     "(nvmm_assist_mem, nvmm_assist_io) on guest-controlled state and bytes. Harness ioctl: "
                     "programs of ioctls (fuzzed commands, sizes, contents; two owners and root; scripted exits, "
                     "signals, closes) against upstream's frontend on the hosted target, leak-checked after each."))
    p.add_argument("--target", default="hosted",
                   help="the port whose sources are fuzzed (default hosted; assist also takes a kernel target)")
    p.add_argument("--harness", required=True, choices=("assist", "ioctl"), help="what to fuzz")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--runs", type=int, metavar="N", help="stop after N executions (default 100000)")
    how.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")


def _add_mutate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mutate", help="mutation testing: inject each deliberate bug of tests/mutants.toml and see which test notices",
        description=("Apply each deliberate bug of tests/mutants.toml, one at a time, to a copy of this project "
                     "(never to the checkout), run the tests it names there and report caught/total with the test "
                     "that caught each, then the known-blind list with its reasons. Every test set must pass "
                     "without a mutant first. Exit 1 when a mutant the suite should catch is missed. Results: "
                     "build/mutate/result.json and one log per mutant."))
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--only", action="append", default=[], metavar="ID", help="run only these (repeatable)")
    p.add_argument("--fast", action="store_true", help="skip mutants only the emulated machine (e2e) can catch")


def _add_setup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "setup", help="install the Debian packages a job needs (idempotent; says what and why)",
        description=("Install the Debian packages that building a port (build), running it under Bochs (e2e) "
                     "and the test suite (test) need, saying for each what it is for. Packages already "
                     "installed are left alone; the guest kernel image and source are those of Debian's "
                     "default release (what linux-headers-amd64 brings), planned once the headers are in, and of "
                     "every --kernel-release given. Python packages come from "
                     "pyproject.toml (pip install -e '.[test]'). Needs root (or sudo) unless nothing is missing."))
    p.add_argument("--for", dest="jobs", default="all", metavar="JOB[,JOB]",
                   help="build, e2e, test, qemu or all (default all; e2e and qemu imply build)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and install nothing")
    p.add_argument("--kernel-release", action="append", default=[], metavar="REL",
                   help="also install the headers, image and source of this Debian kernel release (for build "
                        "and e2e --kernel-release); repeatable")


def _setup_command(project: Project, args: argparse.Namespace) -> int:
    from ..run import kernels, system
    jobs = system.parse_jobs(args.jobs)
    system.check_platform()

    def show(pl: system.Plan) -> None:
        groups: dict[str, list[system.Step]] = {}
        for s in pl.steps:
            groups.setdefault(s.why, []).append(s)
        for why, steps in groups.items():
            todo = [s.package for s in steps if not s.installed]
            mark = "ok" if not todo else ("missing" if args.dry_run else "install")
            print(f"  {mark:8s}{' '.join(s.package for s in steps)}: {why}")

    print(f"setup for {', '.join(jobs)}:")
    if "qemu" in jobs:
        if system.has_deb_src():
            print("  ok      deb-src: apt has a source of Debian's source packages (apt-get source qemu)")
        elif args.dry_run:
            print(f"  missing deb-src: {system.DEB_SRC} would be added (apt-get source qemu needs it)")
        else:
            path = system.add_deb_src(lambda line: print(f"    | {line}"))
            print(f"  add     deb-src: wrote {path} (apt-get source qemu needs it)")
    first = system.plan(jobs)
    show(first)
    if not args.dry_run:
        system.install(first.missing, lambda line: print(f"    | {line}"))
    missing = list(first.missing)
    if "e2e" in jobs:
        release = system.headers_release()
        if release is None and args.dry_run:
            print("  (the guest kernel image and source follow from the headers, once installed)")
        elif release is None:
            raise PortError("linux-headers-amd64 installed no /usr/src/linux-headers-*-amd64", "/usr/src",
                            "check the package on this Debian release")
        else:
            extra = [kernels.from_arg(r) for r in args.kernel_release]
            second = system.plan(jobs, system.kernel_needs(release)
                                 + [n for k in extra for n in system.release_needs(k)])
            show(second)
            if not args.dry_run:
                system.install(second.missing, lambda line: print(f"    | {line}"))
            missing += second.missing
    if args.dry_run:
        print(f"{len(missing)} package(s) to install" + (f": {' '.join(missing)}" if missing else ""))
    else:
        print(f"setup done: {len(missing)} package(s) installed" + (f" ({' '.join(missing)})" if missing else
                                                                     ", everything was there"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvmm-port", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nvmm-port {__version__}")
    parser.add_argument("--project", metavar="DIR", help="project root (default: this checkout)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_setup(sub)
    _add_sync(sub)
    _add_analyze(sub)
    _add_generate(sub)
    _add_extract(sub)
    _add_adopt(sub)
    _add_matrix(sub)
    _add_new_target(sub)
    _add_surface(sub)
    _add_drift(sub)
    _add_stamp(sub)
    _add_build(sub)
    _add_e2e(sub)
    _add_client(sub)
    _add_fuzz(sub)
    _add_mutate(sub)
    return parser


# command -> (module, function): modules are imported only for the command that runs
COMMANDS = {
    "sync": ("cli.commands", "sync"),
    "analyze": ("cli.commands", "analyze"),
    "generate": ("cli.commands", "generate"),
    "build": ("cli.commands", "build"),
    "e2e": ("cli.commands", "e2e"),
    "client": ("cli.commands", "client"),
    "fuzz": ("cli.commands", "fuzz"),
    "mutate": ("cli.commands", "mutate"),
    "new-target": ("cli.commands", "new_target"),
    "surface": ("cli.commands", "surface"),
    "extract-target": ("cli.commands", "extract_target"),
    "adopt": ("cli.commands", "adopt"),
    "matrix": ("cli.commands", "matrix"),
    "drift": ("cli.commands", "drift"),
    "stamp": ("cli.commands", "stamp"),
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    project = Project.find(args.project)
    main_thread = threading.current_thread() is threading.main_thread()
    # SIGTERM unwinds like Ctrl-C (KeyboardInterrupt): cleanups run, nothing is left behind, exit 130
    old_term = signal.signal(signal.SIGTERM, signal.default_int_handler) if main_thread else None
    try:
        if args.command == "setup":
            return _setup_command(project, args)
        module_name, function = COMMANDS[args.command]
        module = importlib.import_module(f"..{module_name}", __package__)
        command: Callable[[Project, argparse.Namespace], int] = getattr(module, function)
        return command(project, args)
    except PortError as exc:
        print(f"nvmm-port: error: {exc.one_line()}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (| head) went away: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):
            print("nvmm-port: interrupted", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old_term if old_term is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
