"""Sysroots: a target OS's own tree (headers, kernel and C library sources), imported like upstream.

A target that cannot be built on this machine with the host's headers (Haiku) compiles against its
OS's real tree at a pinned revision.  That tree is third-party code, like upstream: it is imported
from a git mirror into the ignored cache, never committed, and recorded in a lock,
``upstream/sysroot/<name>.lock`` (same format and machinery as an upstream's lock: source, commit,
sha256 per file; layout ``sysroot``, every folder mapped to itself).  The cache is
``<cache root>/sysroots/<name>/``.

The target spec says which tree and which folders (``[sysroot]``: name, git, ref, paths);
:func:`ensure` returns the cache, importing it first when it is missing or does not match the lock.
A committed lock pins the commit: a fresh clone imports exactly that commit from the mirror.  With
no mirror of the repository on this machine :class:`NoMirror` is raised, so callers (CI) can skip
loudly instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import __version__, ui
from ..errors import PortError
from ..project import Project
from .lock import SYSROOT_LAYOUT, Lock, LockedFile, safe_rel, sha256_bytes, valid_name, verify_cache
from .sync import GitTree, _now, find_mirror, github_slug, install, is_remote, open_local_repo


@dataclass(frozen=True)
class SysrootSpec:
    """Which tree a target builds against: the repository, the commit or ref, the folders."""

    name: str
    git: str                       # a GitHub URL (read from its local mirror) or a local repository
    ref: str
    paths: tuple[str, ...]
    where: str = ""                # the spec file that asked for it, for messages


@dataclass(frozen=True)
class Sysroot:
    name: str
    root: Path                     # the cache: the tree's folders as in the repository
    commit: str
    lock_path: Path
    files: int
    imported: bool                 # this call imported it


class NoMirror(PortError):
    """The repository the sysroot comes from is not on this machine."""


def lock_path(project: Project, name: str) -> Path:
    return project.upstream_dir / "sysroot" / f"{name}.lock"


def cache_dir(project: Project, name: str) -> Path:
    return project.cache_root / "sysroots" / name


def _open_repo(spec: SysrootSpec) -> GitTree:
    if is_remote(spec.git):
        mirror = find_mirror(spec.git)
        if mirror is None:
            slug = github_slug(spec.git)
            what = f"{slug[0]}/{slug[1]}" if slug else spec.git
            raise NoMirror(f"no local mirror of {what} for sysroot '{spec.name}'", spec.where or None,
                           f"bring one with `fetch github:{what}` (mirrors are looked up in $NVMM_PORT_MIRRORS, "
                           "default /work/.mirror)")
        return open_local_repo(str(mirror))
    return open_local_repo(spec.git)


def ensure(project: Project, spec: SysrootSpec, progress: ui.Progress = ui.SILENT) -> Sysroot:
    """The sysroot's cache, imported first if it is missing or does not verify against its lock.

    The lock pins the commit once written: a changed ``ref`` in the spec (or changed ``paths``)
    imports again and rewrites the lock."""
    if not valid_name(spec.name):
        raise PortError(f"bad sysroot name {spec.name!r}", spec.where or None,
                        "use letters, digits, '.', '_', '+' and '-'")
    for p in spec.paths:
        if not safe_rel(p):
            raise PortError(f"bad sysroot path {p!r}", spec.where or None, "give folders relative to the tree's root")
    lpath = lock_path(project, spec.name)
    cdir = cache_dir(project, spec.name)
    old = Lock.load(lpath) if lpath.exists() else None
    if old is not None and _wanted(old) == (spec.ref, sorted(spec.paths)):
        if cdir.is_dir() and verify_cache(old, cdir).ok:
            return Sysroot(spec.name, cdir, old.source["commit"], lpath, len(old.files), False)
        new, data = _read(spec, old.source["commit"], progress)
        if not old.same_content(new):
            raise PortError(f"sysroot '{spec.name}' at {old.source['commit'][:12]} does not match its lock", lpath,
                            "the mirror's copy differs from what was locked: delete the lock to import anew")
        install(old, data, cdir, lpath, write_cache=True, write_lock=False)
        return Sysroot(spec.name, cdir, old.source["commit"], lpath, len(old.files), True)
    new, data = _read(spec, None, progress)
    install(new, data, cdir, lpath, write_cache=True, write_lock=True)
    return Sysroot(spec.name, cdir, new.source["commit"], lpath, len(new.files), True)


def _wanted(lock: Lock) -> tuple[str, list[str]]:
    return str(lock.source.get("ref", "")), sorted(p["from"] for p in lock.source.get("paths", []))


def _read(spec: SysrootSpec, pin: str | None, progress: ui.Progress) -> tuple[Lock, dict[str, bytes]]:
    tree = _open_repo(spec)
    tree.resolve(pin or spec.ref)
    warnings: list[str] = []
    listing = tree.list(sorted(spec.paths), warnings)
    for p in spec.paths:
        if not any(rel.startswith(p + "/") for rel in listing):
            raise PortError(f"sysroot path '{p}' has no files at {tree.commit[:12]}", spec.where or None,
                            "check [sysroot] paths against the tree (git ls-tree)")
    with progress.task(f"importing sysroot {spec.name} ({len(listing)} files)") as update:
        blobs = tree.read(sorted(set(listing.values())), update)
    data = {rel: blobs[oid] for rel, oid in listing.items()}
    files = [LockedFile(rel, rel, sha256_bytes(content), len(content)) for rel, content in sorted(data.items())]
    source = {"kind": "git", "url": spec.git, "local": str(tree.repo), "ref": spec.ref, "commit": tree.commit,
              "paths": [{"from": p, "to": p, "exclude": []} for p in sorted(spec.paths)]}
    return Lock(spec.name, SYSROOT_LAYOUT, _now(), __version__, source, files), data
