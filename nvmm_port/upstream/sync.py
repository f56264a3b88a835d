"""``gen.py sync``: import an upstream NVMM tree into the cache and write its lock.

Sources are a git repository (a local clone, a bare mirror with no work tree,
or a remote URL fetched with a shallow, blobless clone) or a plain directory.
Git sources are read with plumbing only (``rev-parse``, ``ls-tree``,
``cat-file --batch``): nothing is checked out.

The import is atomic and idempotent.  Files are written to a temp folder
next to the cache, verified, then renamed over the old cache; the lock is
written to a temp file and ``os.replace``-d.  On any error the old cache and
lock are left as they were and no temp file remains.  When the source is
unchanged (same files, hashes, layout and source) and the cache verifies,
nothing is written at all.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__, ui
from ..errors import PortError
from ..project import Project
from .layout import (
    ALL_ROOTS,
    DESTS,
    TESTS_DEST,
    PathMap,
    clean_rel,
    detect_layout,
    excluded,
    expected_layouts,
    flat_test_groups,
    known_map,
    layout_of_maps,
    map_path,
    owning_map,
)
from .lock import Lock, LockedFile, safe_rel, sha256_bytes, valid_name, verify_cache

DEFAULT_MIRRORS = "/work/.mirror"
_HEX = re.compile(r"[0-9a-fA-F]{4,64}\Z")
_FULL_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_GITHUB = re.compile(
    r"(?:(?:https?|git|ssh)://(?:[^@/]+@)?github\.com/|git@github\.com:)"
    r"(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<repo>[A-Za-z0-9._-]+?)(?:\.git)?/?\Z")

#: Environment variables that would point git at some other repository.
_GIT_REPO_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX")


# -- git -----------------------------------------------------------------------------------------

def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARS}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_LITERAL_PATHSPECS="1", LC_ALL="C", GIT_PAGER="cat")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _git(args: list[str], cwd: str | Path | None = None, input: bytes | None = None,
         check: bool = False, where: str | Path | None = None) -> subprocess.CompletedProcess[bytes]:
    cmd = ["git"] + (["-C", str(cwd)] if cwd is not None else []) + args
    try:
        proc = subprocess.run(cmd, input=input, capture_output=True, env=_git_env())
    except FileNotFoundError:
        raise PortError("git is not installed", where, "install git (it is needed for --git sources)") from None
    if check and proc.returncode != 0:
        raise PortError(f"`git {' '.join(args[:2])}` failed: {_last_line(proc.stderr)}", where,
                        "check that the repository is readable")
    return proc


def _last_line(data: bytes) -> str:
    """The line of git's stderr that says what went wrong (its first error, else its last line)."""
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:", "ssh:")):
            return line
    return lines[-1] if lines else "no message"


def is_remote(location: str) -> bool:
    return "://" in location or location.startswith("git@")


def github_slug(url: str) -> tuple[str, str] | None:
    m = _GITHUB.match(url.strip())
    return (m["owner"], m["repo"]) if m else None


def mirror_slug(path: Path) -> tuple[str, str] | None:
    """``.../OWNER+REPO/repo`` (how mirrors are laid out) -> (OWNER, REPO)."""
    if path.name != "repo":
        return None
    owner, plus, repo = path.parent.name.partition("+")
    return (owner, repo) if plus and owner and repo else None


def mirror_dirs() -> list[Path]:
    value = os.environ.get("NVMM_PORT_MIRRORS", DEFAULT_MIRRORS)
    return [Path(d) for d in value.split(os.pathsep) if d]


def find_mirror(url: str) -> Path | None:
    """A local mirror ``<dir>/OWNER+REPO/repo`` of a GitHub URL, from $NVMM_PORT_MIRRORS."""
    slug = github_slug(url)
    if not slug:
        return None
    for d in mirror_dirs():
        candidate = d / f"{slug[0]}+{slug[1]}" / "repo"
        if candidate.is_dir():
            return candidate
    return None


@dataclass
class GitTree:
    """One commit of a git repository, read without a checkout."""

    repo: Path          # the git dir or work tree git commands run in
    display: str        # how errors name it (the path or URL the user gave)
    commit: str = ""

    def resolve(self, ref: str) -> str:
        if ref.startswith("-") or not ref.strip():
            raise PortError(f"bad ref {ref!r}", self.display, "pass a branch, tag or commit with --ref")
        proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=self.repo)
        if proc.returncode != 0:
            raise PortError(f"ref '{ref}' not found in {self.display}", None, "check the ref or fetch it")
        self.commit = proc.stdout.decode().strip()
        return self.commit

    def where(self, ref: str | None = None) -> str:
        return f"{self.display} at {ref or self.commit[:12]}"

    def list(self, roots: list[str], warnings: list[str]) -> dict[str, str]:
        """Regular files under ``roots`` at the commit: {path: blob id} (what is skipped: ``warnings``)."""
        proc = _git(["ls-tree", "-r", "-z", "--full-tree", self.commit, "--", *roots],
                    cwd=self.repo, check=True, where=self.display)
        files = {}
        for entry in proc.stdout.split(b"\0"):
            if not entry:
                continue
            meta, _, path_b = entry.partition(b"\t")
            mode, otype, oid = meta.decode().split()
            path = path_b.decode("utf-8", "surrogateescape")
            if otype == "blob" and mode in ("100644", "100755"):
                files[path] = oid
            elif any(path.startswith(r + "/") for r in roots):
                kind = "symlink" if mode == "120000" else "submodule" if otype == "commit" else otype
                warnings.append(f"{self.where()}: skipping {kind} {path}")
        return files

    def read(self, oids: builtins.list[str], update: ui.Update = ui.SILENT_UPDATE) -> dict[str, bytes]:
        """Blob contents, through one ``git cat-file --batch`` (which fetches a blobless clone's blobs)."""
        unique = sorted(set(oids))
        if not unique:
            return {}
        update(f"{len(unique)} blobs from {self.display}")
        proc = _git(["cat-file", "--batch"], cwd=self.repo,
                    input="".join(f"{o}\n" for o in unique).encode())
        data = proc.stdout
        blobs: dict[str, bytes] = {}
        pos = 0
        for oid in unique:
            nl = data.find(b"\n", pos)
            header = data[pos:nl].decode(errors="replace").split() if nl >= 0 else []
            if len(header) != 3 or header[1] != "blob" or header[0] != oid:
                why = " ".join(header[1:]) or _last_line(proc.stderr)
                raise PortError(f"cannot read blob {oid} ({why})", self.where(),
                                "the repository is incomplete: fetch the commit again")
            size = int(header[2])
            blobs[oid] = data[nl + 1:nl + 1 + size]
            pos = nl + 1 + size + 1
        return blobs


def open_local_repo(path_text: str) -> GitTree:
    path = Path(path_text).expanduser().resolve()
    if not path.exists():
        raise PortError("git repository does not exist", path,
                        "pass a local clone or bare mirror with --git, or a remote URL")
    not_repo = PortError("not a git repository", path,
                         "pass the top folder of a clone or a bare mirror, or use --dir for a plain tree")
    if not path.is_dir():
        raise not_repo
    proc = _git(["rev-parse", "--is-bare-repository", "--absolute-git-dir"], cwd=path, where=path)
    if proc.returncode != 0:
        raise not_repo
    lines = proc.stdout.decode().split("\n")
    bare, git_dir = lines[0].strip(), Path(lines[1].strip()).resolve()
    if git_dir == path:
        return GitTree(path, str(path))
    if bare != "true":
        top = _git(["rev-parse", "--show-toplevel"], cwd=path, where=path)
        if top.returncode == 0 and Path(top.stdout.decode().strip()).resolve() == path:
            return GitTree(path, str(path))
        where = top.stdout.decode().strip() if top.returncode == 0 else git_dir
        raise PortError(f"is inside the git repository {where}, not its top", path,
                        f"pass --git {where} (and --path SUBDIR to pick folders)")
    raise not_repo


@contextlib.contextmanager
def open_remote_repo(url: str, ref: str, progress: ui.Progress = ui.SILENT) -> Iterator[GitTree]:
    """A shallow, sparse, blobless clone of ``url`` in a temp folder, resolved at ``ref``.

    Blobs are fetched lazily by ``cat-file`` from the promisor remote, so only
    the imported files are downloaded.
    """
    tmp = tempfile.mkdtemp(prefix="nvmm-port-clone-")
    try:
        yield _clone(url, ref, Path(tmp) / "repo", progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clone(url: str, ref: str, repo: Path, progress: ui.Progress = ui.SILENT) -> GitTree:
    with progress.task(f"cloning {url}") as update:
        update("shallow, sparse, blobless clone")
        proc = _git(["clone", "--quiet", "--depth", "1", "--filter=blob:none", "--sparse", "--no-checkout",
                     "--", url, str(repo)], where=url)
    if proc.returncode != 0:
        raise PortError(f"cannot clone: {_last_line(proc.stderr)}", url,
                        "check the URL and the network, or pass a local clone or mirror with --git PATH")
    tree = GitTree(repo, url)
    if ref == "HEAD":
        tree.resolve("HEAD")
        return tree
    with progress.task(f"fetching {ref}") as update:
        update(f"from {url}")
        proc = _git(["fetch", "--quiet", "--depth", "1", "--filter=blob:none", "origin", ref], cwd=repo)
    if proc.returncode == 0:
        tree.resolve("FETCH_HEAD")
        return tree
    if _HEX.match(ref) and len(ref) < 40:
        # An abbreviated commit cannot be fetched by name; it may still be the cloned tip.
        with contextlib.suppress(PortError):
            tree.resolve(ref)
            return tree
        raise PortError(f"ref '{ref}' not found in {url}", url, "give the full 40-hex commit so it can be fetched")
    raise PortError(f"ref '{ref}' not found in {url}", url,
                    f"check the ref or fetch it; git says: {_last_line(proc.stderr)}")


# -- plain directories ---------------------------------------------------------------------------

@dataclass
class DirTree:
    root: Path

    @classmethod
    def open(cls, path_text: str) -> DirTree:
        root = Path(path_text).expanduser().resolve()
        fix = "pass a DragonFly, NetBSD or Haiku source tree (or a folder holding their NVMM paths)"
        if not root.exists():
            raise PortError("directory does not exist", root, fix)
        if not root.is_dir():
            raise PortError("is not a directory", root, fix)
        if not any(root.iterdir()):
            raise PortError("directory is empty", root, fix)
        return cls(root)

    def where(self, _ref: str | None = None) -> str:
        return str(self.root)

    def list(self, roots: list[str], warnings: list[str]) -> dict[str, str]:
        """Regular files under ``roots``: {path: path} (symlinks are skipped, and named in ``warnings``)."""
        files = {}
        for r in roots:
            base = self.root / r
            if not base.is_dir() or base.is_symlink():
                continue
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                    full = Path(dirpath) / name
                    rel = full.relative_to(self.root).as_posix()
                    if full.is_symlink() or not full.is_file():
                        warnings.append(f"{self.root}: skipping non-regular file {rel}")
                    else:
                        files[rel] = rel
        return files

    def read(self, rels: builtins.list[str], update: ui.Update = ui.SILENT_UPDATE) -> dict[str, bytes]:
        data = {}
        for rel in rels:
            update(rel)
            try:
                data[rel] = (self.root / rel).read_bytes()
            except OSError as exc:
                raise PortError(f"cannot read: {exc.strerror}", self.root / rel, "check its permissions") from None
        return data


# -- what to import ------------------------------------------------------------------------------

@dataclass
class Spec:
    """A source as asked for (on the command line or recorded in a lock)."""

    kind: str                              # git | dir
    location: str                          # what to open: local path, URL, or directory
    record: dict[str, str] = field(default_factory=dict)   # url/path/local keys for the lock
    ref: str | None = None
    pin: str | None = None                 # commit recorded in the lock (re-sync)
    exclude: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)   # globs imported although the layout leaves them out
    maps: list[PathMap] | None = None      # None: detect a known layout
    layout: str | None = None              # recorded layout when maps come from a lock


def _parse_path_args(values: list[str]) -> list[PathMap] | None:
    if not values:
        return None
    maps: list[PathMap] = []
    for given in values:
        # a trailing '?' makes the folder optional: absent at a revision, it is skipped with a warning
        optional = given.endswith("?")
        value = given[:-1] if optional else given
        head, colon, tail = value.rpartition(":")
        src_text, dest = (head, tail) if colon and tail in DESTS else (value, None)
        if colon and dest is None and not known_map(clean_rel(value)):
            raise PortError(f"unknown destination '{tail}' in --path {value}", None,
                            f"write SUBDIR:DEST with DEST one of {', '.join(DESTS)}")
        src = clean_rel(src_text)
        if not src or not safe_rel(src):
            raise PortError(f"bad --path {value!r}", None, "give a folder relative to the repository root")
        known = known_map(src)
        if dest is None:
            if known is None:
                raise PortError(f"cannot tell where --path {src} goes", None,
                                f"write it as {src}:DEST with DEST one of {', '.join(DESTS)}")
            dest = known.dest
        exclude = known.exclude if known is not None and known.dest == dest else ()
        if any(m.src == src for m in maps):
            raise PortError(f"--path {src} is given twice", None, "give each folder once")
        maps.append(PathMap(src, dest, exclude, optional))
    return maps


@dataclass(frozen=True)
class SyncSource:
    """Where to sync from, as the user gave it: a git repository (``git``: a local clone, a bare
    mirror or a remote URL) or a plain directory (``dir``), or neither (the lock's source).
    ``paths`` are ``SUBDIR[:DEST]`` folders to import (default: detect a known layout),
    ``exclude`` source globs to leave out."""

    git: str | None = None
    dir: str | None = None
    ref: str | None = None
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.git or self.dir)

    @property
    def anything(self) -> bool:
        """Whether any source option is set (``--check`` takes none)."""
        return bool(self.git or self.dir or self.ref or self.paths or self.exclude or self.include)


def _spec_from_args(args: SyncSource, old: Lock | None, lock_path: Path) -> Spec:
    maps = _parse_path_args(list(args.paths))
    exclude = list(args.exclude)
    include = list(args.include)
    if args.git:
        ref = args.ref or "HEAD"
        if is_remote(args.git):
            return Spec("git", args.git, {"url": args.git}, ref=ref, exclude=exclude, include=include, maps=maps)
        path = Path(args.git).expanduser().resolve()
        slug = mirror_slug(path)
        record = ({"url": f"https://github.com/{slug[0]}/{slug[1]}", "local": str(path)} if slug
                  else {"url": str(path)})
        return Spec("git", str(path), record, ref=ref, exclude=exclude, include=include, maps=maps)
    if args.dir:
        if args.ref:
            raise PortError("--ref only applies to --git", None, "drop --ref, or use --git")
        path = Path(args.dir).expanduser().resolve()
        return Spec("dir", str(path), {"path": str(path)}, exclude=exclude, include=include, maps=maps)
    # No source: the one recorded in the lock.
    if args.ref or args.paths or args.exclude or args.include:
        raise PortError("--ref, --path, --exclude and --include need a source", None,
                        "add --git URL|PATH or --dir PATH, or drop them to re-sync from the lock")
    if old is None:
        raise PortError("no lock to re-sync from", lock_path,
                        "give a source: --git URL|PATH --ref REF, or --dir PATH")
    src = old.source
    maps = [PathMap(p["from"], p["to"], tuple(p["exclude"])) for p in src.get("paths", [])] or None
    exclude = list(src.get("exclude", []))
    include = list(src.get("include", []))
    record = {k: src[k] for k in ("url", "path", "local") if k in src}
    if src["kind"] == "dir":
        return Spec("dir", src["path"], record, exclude=exclude, include=include, maps=maps, layout=old.layout)
    url = src["url"]
    location = url
    mirror = find_mirror(url)
    if mirror is not None:
        location = str(mirror)
    elif src.get("local") and Path(src["local"]).is_dir() and (is_remote(url) or not Path(url).exists()):
        location = src["local"]  # the clone the lock was made from, if it is still there
    return Spec("git", location, record, ref=src["ref"], pin=src["commit"], exclude=exclude, include=include,
                maps=maps, layout=old.layout)


@contextlib.contextmanager
def _open(spec: Spec, progress: ui.Progress = ui.SILENT) -> Iterator[GitTree | DirTree]:
    if spec.kind == "dir":
        yield DirTree.open(spec.location)
        return
    target = spec.pin or spec.ref or "HEAD"
    if is_remote(spec.location):
        with open_remote_repo(spec.location, target, progress) as tree:
            yield tree
        return
    tree = open_local_repo(spec.location)
    tree.resolve(target)
    yield tree


@dataclass
class Plan:
    layout: str
    maps: list[PathMap]
    files: dict[str, tuple[str, str]]       # internal path -> (source path, blob id or source path)


def _plan(spec: Spec, tree: GitTree | DirTree, warnings: list[str]) -> Plan:
    where = tree.where(spec.ref)
    explicit = spec.maps is not None
    if spec.maps is not None:
        maps = list(spec.maps)
        listing = tree.list(sorted({m.src for m in maps}), warnings)
        layout = spec.layout or layout_of_maps(maps)
    else:
        listing = tree.list(list(ALL_ROOTS), warnings)
        if isinstance(tree, DirTree) and not listing:
            raise PortError("no known NVMM layout found (none of its folders has files)", where,
                            f"expected one of {expected_layouts()}")
        known = detect_layout(listing, where)
        maps = list(known.maps)
        layout = known.name
        listing = {p: o for p, o in listing.items() if owning_map(maps, p) is not None}

    groups_by_map = {m.src: flat_test_groups(p for p in listing if owning_map(maps, p) is m and
                                        "/" not in p[len(m.src) + 1:])
                     for m in maps if m.dest == TESTS_DEST}
    present: dict[str, int] = {m.src: 0 for m in maps}
    files: dict[str, tuple[str, str]] = {}
    left_out: list[str] = []
    for rel, obj in sorted(listing.items()):
        m = owning_map(maps, rel)
        if m is None:
            continue
        present[m.src] += 1
        if excluded(rel, spec.exclude):
            continue
        internal = map_path(maps, rel, groups_by_map.get(m.src))
        if internal is None and excluded(rel, spec.include):
            internal = f"{m.dest}/{rel[len(m.src) + 1:]}"     # --include: as it lies under the folder
        if internal is None:
            left_out.append(rel)
            continue
        if not safe_rel(internal):
            raise PortError(f"cannot import {rel!r}: unsafe path", where, "exclude it with --exclude")
        if internal in files:
            raise PortError(f"{files[internal][0]} and {rel} both go to {internal}", where,
                            f"leave one out with --exclude {rel}")
        files[internal] = (rel, obj)

    if left_out:
        # never silently: the layout's excludes leave these out (Haiku's include/ copy of BSD headers)
        dirs: dict[str, int] = {}
        for rel in left_out:
            d = rel.rsplit("/", 1)[0]
            dirs[d] = dirs.get(d, 0) + 1
        warnings.append(f"{where}: {len(left_out)} file(s) under the layout's folders left out by its excludes: "
                        + ", ".join(f"{d}/ ({n})" for d, n in sorted(dirs.items()))
                        + " (import them with --include GLOB)")
    if explicit:
        for m in maps:
            if not present[m.src] and m.optional:
                warnings.append(f"{where}: optional --path {m.src} is not in this revision: skipped")
            elif not present[m.src]:
                raise PortError(f"path '{m.src}' not found", where,
                                "check --path against the tree (git ls-tree) or the ref, or mark it optional "
                                f"(--path {m.src}?)")
        maps = [m for m in maps if present[m.src]]
        if not any(m.dest.startswith("driver") for m in maps):
            raise PortError("no --path goes to the driver", where,
                            "add --path SUBDIR:driver for the folder holding nvmm.c")
    else:
        maps = [m for m in maps if present[m.src]]
    driver_roots = ", ".join(m.src for m in maps if m.dest.startswith("driver"))
    if not any(p.startswith("driver/") for p in files):
        raise PortError("the driver folder is empty", f"{where}: {driver_roots}",
                        "point the source at an NVMM tree (the driver folder holds nvmm.c)")
    if not any(p.startswith("driver/") and p.endswith(".c") for p in files):
        raise PortError("the driver folder has no C files", f"{where}: {driver_roots}",
                        "point the source at an NVMM tree (the driver folder holds nvmm.c)")
    return Plan(layout, maps, files)


# -- writing -------------------------------------------------------------------------------------

def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = int(epoch) if epoch and epoch.isdigit() else int(time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _write_tree(root: Path, files: list[LockedFile], data: dict[str, bytes]) -> None:
    for f in files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as fh:
            fh.write(data[f.path])


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty directory with the user's umask (mkdtemp's is 0700, and the cache is renamed
    from it: other users could then not read the cache)."""
    while True:
        d = parent / f"{prefix}{os.urandom(4).hex()}"
        try:
            os.mkdir(d)          # mode 0777 & ~umask
            return d
        except FileExistsError:
            continue


def _install(project: Project, new: Lock, data: dict[str, bytes], write_cache: bool, write_lock: bool) -> None:
    """Put the new cache and lock in place, all or nothing."""
    install(new, data, project.cache_dir(new.name), project.lock_path(new.name), write_cache, write_lock)


def install(new: Lock, data: dict[str, bytes], cache_dir: Path, lock_path: Path, write_cache: bool,
            write_lock: bool) -> None:
    """Put ``new``'s files (``data``) in ``cache_dir`` and the lock at ``lock_path``, all or nothing."""
    cache_root = cache_dir.parent
    # Remember the folders we may create, so a failure leaves nothing behind.
    made_root = [p for d in (cache_root, lock_path.parent) for p in (d, *d.parents) if not p.exists()]
    tmp_dir: Path | None = None
    tmp_lock: Path | None = None
    backup: Path | None = None
    swapped = False
    try:
        if write_cache:
            cache_root.mkdir(parents=True, exist_ok=True)
            if cache_dir.exists() and not cache_dir.is_dir():
                raise PortError("is not a directory", cache_dir, "move it away and re-run sync")
            tmp_dir = _fresh_dir(cache_root, f".{new.name}.sync-")
            _write_tree(tmp_dir, new.files, data)
            check = verify_cache(new, tmp_dir)
            if not check.ok:
                raise PortError(f"the imported files do not verify ({'; '.join(check.lines()[:3])})",
                                tmp_dir, "check the disk and re-run sync")
        if write_lock:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            tmp_lock = lock_path.parent / f".{new.name}.lock.{os.urandom(4).hex()}.tmp"
            fd = os.open(tmp_lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)    # umask applies
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(new.dump())
                fh.flush()
                os.fsync(fh.fileno())
        if write_cache:
            if cache_dir.exists():
                backup = Path(tempfile.mkdtemp(prefix=f".{new.name}.old-", dir=cache_root))
                os.rename(cache_dir, backup / "cache")
            assert tmp_dir is not None   # made above: write_cache is set
            os.rename(tmp_dir, cache_dir)
            tmp_dir = None
            swapped = True
        if write_lock:
            assert tmp_lock is not None   # made above: write_lock is set
            os.replace(tmp_lock, lock_path)
            tmp_lock = None
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
            backup = None
    except OSError as exc:
        raise PortError(f"cannot write the cache or lock: {exc.strerror or exc}",
                        exc.filename or cache_dir, "check permissions and free space, then re-run sync") from None
    finally:
        if swapped and tmp_lock is not None:
            # The lock could not be replaced: put the old cache back.
            with contextlib.suppress(OSError):
                tmp_dir = Path(tempfile.mkdtemp(prefix=f".{new.name}.sync-", dir=cache_root))
                os.rename(cache_dir, tmp_dir / "cache")
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.rename(backup / "cache", cache_dir)
        elif backup is not None and not cache_dir.exists():
            with contextlib.suppress(OSError):
                os.rename(backup / "cache", cache_dir)
        for leftover in (tmp_dir, backup):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
        if tmp_lock is not None:
            with contextlib.suppress(OSError):
                tmp_lock.unlink()
        for d in sorted(set(made_root), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when still empty


# -- commands ------------------------------------------------------------------------------------

def resolve_name(project: Project, name: str | None) -> str:
    """The upstream to sync or check: ``name``, else the only lock's."""
    if name:
        if not valid_name(name):
            raise PortError(f"bad upstream name {name!r}", None,
                            "use letters, digits, '.', '_', '+' and '-', e.g. dragonfly-2024")
        return name
    names = project.lock_names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise PortError("--name is required for a new upstream", project.upstream_dir,
                        "pass --name NAME, e.g. --name dragonfly-2024")
    raise PortError(f"several upstreams are synced ({', '.join(names)})", project.upstream_dir, "pass --name NAME")


@dataclass
class CacheCheck:
    """What ``sync --check`` found: ``lines`` names each changed, missing or extra file."""

    name: str
    ok: bool
    lines: list[str]
    lock_summary: str      # the lock's one-line summary
    cache_dir: Path
    lock_path: Path


def check(project: Project, name: str) -> CacheCheck:
    """Re-hash the cache of upstream ``name`` against its lock."""
    lock_path = project.lock_path(name)
    if not lock_path.exists():
        raise PortError(f"no lock for upstream '{name}'", lock_path,
                        f"run `gen.py sync --name {name} --git URL|PATH --ref REF` first")
    lock = Lock.load(lock_path)
    cache_dir = project.cache_dir(name)
    if not cache_dir.is_dir():
        raise PortError("cache directory is missing", cache_dir,
                        f"run `gen.py sync --name {name}` to import it from the lock's source")
    report = verify_cache(lock, cache_dir)
    return CacheCheck(name, report.ok, report.lines(), lock.summary(), cache_dir, lock_path)


@dataclass(frozen=True)
class SummaryRow:
    """One row of what a sync imported: a folder of the internal view (or ``total``)."""

    group: str
    files: int
    bytes: int


def summary_rows(files: list[LockedFile]) -> list[SummaryRow]:
    """Files and bytes per top folder (driver/x86 apart), then the total."""
    groups: dict[str, list[LockedFile]] = {}
    for f in files:
        top = f.path.split("/", 1)[0]
        key = "driver/x86" if f.path.startswith("driver/x86/") else top
        groups.setdefault(key, []).append(f)
    rows = [SummaryRow(key + "/", len(groups[key]), sum(f.size for f in groups[key])) for key in sorted(groups)]
    rows.append(SummaryRow("total", len(files), sum(f.size for f in files)))
    return rows


@dataclass
class Synced:
    """What a sync did: ``outcome`` is ``up to date`` (nothing written), ``restored`` (the cache
    rewritten to match the unchanged lock) or ``synced`` (a new lock, and the cache if it differed)."""

    name: str
    outcome: str
    lock_summary: str                 # the lock's one-line summary
    lock_path: Path
    summary: list[SummaryRow]         # what was imported (empty when up to date)
    warnings: list[str]               # files skipped, a corrupt lock replaced


class SyncFailed(PortError):
    """A sync that failed after warnings: the error, with the warnings that came before it."""

    def __init__(self, error: PortError, warnings: list[str]):
        super().__init__(error.message, error.where, error.fix, error.details)
        self.warnings = warnings


def sync(project: Project, name: str, source: SyncSource, progress: ui.Progress = ui.SILENT) -> Synced:
    """Import ``source`` (or the lock's source) as upstream ``name``: cache and lock, all or nothing."""
    warnings: list[str] = []
    try:
        return _sync(project, name, source, progress, warnings)
    except PortError as exc:
        if warnings:
            raise SyncFailed(exc, warnings) from None
        raise


def _sync(project: Project, name: str, args: SyncSource, progress: ui.Progress, warnings: list[str]) -> Synced:
    lock_path = project.lock_path(name)
    old: Lock | None = None
    if lock_path.exists():
        try:
            old = Lock.load(lock_path)
        except PortError as exc:
            if not args.given:
                raise
            warnings.append(f"{exc.one_line()}; it will be replaced")
    spec = _spec_from_args(args, old, lock_path)

    with _open(spec, progress) as tree:
        plan = _plan(spec, tree, warnings)
        with progress.task(f"reading {len(plan.files)} files") as update:
            raw = tree.read(sorted({obj for _, obj in plan.files.values()}), update)
        commit = getattr(tree, "commit", None)

    data: dict[str, bytes] = {}
    locked: list[LockedFile] = []
    for internal, (rel, obj) in sorted(plan.files.items()):
        content = raw[obj]
        data[internal] = content
        locked.append(LockedFile(internal, rel, sha256_bytes(content), len(content)))

    source: dict[str, Any] = {"kind": spec.kind, **spec.record}
    if spec.kind == "git":
        source["ref"] = spec.ref
        source["commit"] = commit
    if spec.exclude:
        source["exclude"] = list(spec.exclude)
    if spec.include:
        source["include"] = list(spec.include)
    source["paths"] = [{"from": m.src, "to": m.dest, "exclude": list(m.exclude)} for m in plan.maps]
    new = Lock(name, plan.layout, _now(), __version__, source, locked)

    cache_dir = project.cache_dir(name)
    if old is not None and old.same_content(new):
        if verify_cache(old, cache_dir).ok:
            return Synced(name, "up to date", old.summary(), lock_path, [], warnings)
        _install(project, new, data, write_cache=True, write_lock=False)
        return Synced(name, "restored", old.summary(), lock_path, summary_rows(new.files), warnings)
    cache_ok = verify_cache(new, cache_dir).ok if cache_dir.is_dir() else False
    _install(project, new, data, write_cache=not cache_ok, write_lock=True)
    return Synced(name, "synced", new.summary(), lock_path, summary_rows(new.files), warnings)
