"""The nvmm-port command line.  Thin: parse arguments, call the library, print."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import PortError
from .project import Project

DESCRIPTION = """\
Retarget the NVMM hypervisor to other kernels.

Typical flow for a porter:
  gen.py sync --name dragonfly-2024 --git MIRROR --ref 8b7bc49ce0   import upstream, write upstream/NAME.lock
  gen.py analyze                                                     print the porting surface (os_* primitives,
                                                                     variation points, BSD names)
"""


def _add_sync(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--path", action="append", default=[], metavar="SUBDIR[:DEST]",
                   help="with --git: a subdirectory to import, optionally with its place in the internal view "
                        "(driver, driver/x86, libnvmm, tests); repeatable. Default: detect a known layout")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="source paths to leave out (glob, relative to the repository); repeatable")
    p.add_argument("--check", action="store_true",
                   help="do not import: re-hash the cache against the lock and name every changed, "
                        "missing or extra file (exit 1 if any)")


def _add_analyze(sub: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvmm-port", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nvmm-port {__version__}")
    parser.add_argument("--project", metavar="DIR", help="project root (default: this checkout)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_sync(sub)
    _add_analyze(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    project = Project.find(args.project)
    try:
        if args.command == "sync":
            from .sync import run_sync_command
            return run_sync_command(project, args)
        if args.command == "analyze":
            from .analyze import run_analyze_command
            return run_analyze_command(project, args)
    except PortError as exc:
        print(f"nvmm-port: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
