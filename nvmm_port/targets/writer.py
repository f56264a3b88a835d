"""Writing rendered trees to disk, owning only what was written.

An output tree (``build/<target>/`` or ``--out DIR``) holds a manifest, ``.nvmm-port-manifest``:
the files gen.py wrote there, each with its sha256.  Those files are gen.py's to replace and, when
a new rendering no longer has them, to remove; every other file in the directory is the user's and
is never touched (``--check`` does not count it either).  A directory that is not empty and has no
manifest, or an output path that is a regular file, is refused and left exactly as it was.  A tree
written before manifests existed is recognised by its ``PROVENANCE`` (which lists the files written
with their sha256) and adopted.

Writing is two-phase: every changed file is first written to a temporary file beside its
destination (created with mode 0666 and 0777 for directories, so the user's umask applies), then
all are renamed into place, stale files of ours removed and the manifest replaced.  An error while
staging removes the temporaries and the directories it created and leaves the tree as it was.
SIGINT and SIGTERM arriving while a tree is written are held until it is complete (a few
milliseconds per hundred files) and then delivered, so an interrupted command leaves either the old
or the new tree, never a mix and never a temporary file.  Unchanged files are not rewritten and keep
their mtime, so a build after a no-op regenerate rebuilds nothing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ..errors import PortError

MANIFEST = ".nvmm-port-manifest"
_MANIFEST_HEAD = ("# nvmm-port: the files gen.py wrote in this directory (sha256, path). It replaces and\n"
                  "# removes only these; any other file here is left alone. Do not edit.\n")
_LINE = re.compile(r"([0-9a-f]{64})  (\S.*)\Z")
_PROVENANCE_HEAD = re.compile(r"nvmm-port \S+ port tree for target ")
_TMP = re.compile(r"\..+\.nvmm-port-tmp-[0-9a-f]{16}\Z")


@dataclass
class Tree:
    files: dict[str, bytes] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)     # path -> where it came from


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)          # files gen.py did not write, left alone


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# Errors


def os_error(exc: OSError, doing: str, where: Path, exact: bool = False) -> PortError:
    """One line for a failed file operation: the path (``where`` when ``exact`` or the error names
    none), the cause and what to do."""
    path = where if exact or exc.filename is None else exc.filename
    cause = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "check the permissions of that path, or pass --out a directory you can write"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free some space, then run the command again"
    else:
        fix = "check that path, then run the command again"
    return PortError(f"cannot {doing}: {cause}", path, fix)


# ---------------------------------------------------------------------------
# Signals


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration of the block, then deliver them to their handlers.

    Outside the main thread (where Python cannot install handlers) the block runs unprotected."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


# ---------------------------------------------------------------------------
# Ownership


def _safe(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and "\n" not in rel and \
        all(p not in ("", ".", "..") for p in parts) and rel != MANIFEST


def _parse_manifest(text: str, path: Path) -> dict[str, str]:
    owned: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None or not _safe(m.group(2)):
            raise PortError(f"line {n} of the manifest is damaged", path,
                            "remove the directory (or move your own files out of it) and generate again")
        owned[m.group(2)] = m.group(1)
    return owned


def _legacy_owned(out: Path) -> dict[str, str] | None:
    """The files a tree written before manifests existed lists in its PROVENANCE, or None."""
    prov = out / "PROVENANCE"
    try:
        data = prov.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        raise os_error(exc, "read", prov) from None
    text = data.decode("utf-8", errors="replace")
    if not _PROVENANCE_HEAD.match(text):
        return None
    owned = {"PROVENANCE": sha256(data)}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and _safe(m.group(2)):
            owned[m.group(2)] = m.group(1)
    return owned


def owned_files(out: Path) -> dict[str, str]:
    """path -> sha256 of the files gen.py wrote in ``out`` ({} for a new or empty directory).

    A regular file at ``out``, or a non-empty directory gen.py did not write, is a PortError."""
    try:
        if not out.exists() and not out.is_symlink():
            return {}
        if not out.is_dir():
            raise PortError("is a file, not a directory", out,
                            "pass --out a new or empty directory (or one gen.py wrote), or move the file away")
        manifest = out / MANIFEST
        if manifest.is_file():
            return _parse_manifest(manifest.read_text(errors="replace"), manifest)
        if not any(True for _ in out.iterdir()):
            return {}
    except OSError as exc:
        raise os_error(exc, "read", out) from None
    legacy = _legacy_owned(out)
    if legacy is not None:
        return legacy
    raise PortError(f"is not empty and gen.py did not write it (no {MANIFEST})", out,
                    "pass --out a new or empty directory, or move its files away")


def _walk_files(out: Path) -> list[str]:
    """Every file (anything not a directory) under ``out``, relative, sorted; our own temporaries
    left by a killed run are removed on the way."""
    found = []

    def fail(exc: OSError) -> None:
        raise os_error(exc, "read", out)
    for dirpath, dirnames, filenames in os.walk(out, onerror=fail):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            if _TMP.match(name):
                with contextlib.suppress(OSError):
                    (base / name).unlink()
                continue
            found.append((base / name).relative_to(out).as_posix())
    return found


def other_files(tree: Tree, out: Path) -> list[str]:
    """Files in ``out`` that are neither the manifest, nor in ``tree``, nor gen.py's: the user's."""
    if not out.is_dir():
        return []
    owned = owned_files(out)
    return [rel for rel in _walk_files(out) if rel != MANIFEST and rel not in tree.files and rel not in owned]


def _current(path: Path) -> bytes | None:
    """The bytes of a regular file at ``path``; None when nothing (or something else) is there."""
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, "read", path) from None


def stale_files(tree: Tree, out: Path) -> list[str]:
    """What `--check` reports: files of the tree that differ or are missing, and files gen.py wrote
    that the tree no longer has.  Files gen.py did not write are not counted."""
    owned = owned_files(out)
    lines = []
    for rel, data in sorted(tree.files.items()):
        cur = _current(out / rel)
        if cur is None:
            lines.append(f"missing {rel}")
        elif cur != data:
            lines.append(f"stale {rel}")
    for rel in sorted(owned):
        if rel not in tree.files and os.path.lexists(out / rel):
            lines.append(f"extra {rel}")
    return lines


# ---------------------------------------------------------------------------
# Writing


def _manifest_text(owned: dict[str, str]) -> bytes:
    return (_MANIFEST_HEAD + "".join(f"{sha}  {rel}\n" for rel, sha in sorted(owned.items()))).encode()


class _Stage:
    """Temporaries beside their destinations and the directories made for them, undone on failure."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.temps: dict[Path, Path] = {}       # destination -> temporary
        self.made: list[Path] = []              # directories created, outermost first

    def makedirs(self, d: Path) -> None:
        missing = []
        while not d.is_dir():
            if d.exists() or d.is_symlink():
                raise PortError("is a file where gen.py needs a directory", d,
                                "move it away, or pass --out another directory")
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            os.mkdir(m)                          # mode 0777 & ~umask
            self.made.append(m)

    def put(self, dest: Path, data: bytes) -> None:
        self.makedirs(dest.parent)
        tmp = dest.parent / f".{dest.name}.nvmm-port-tmp-{secrets.token_hex(8)}"
        self.temps[dest] = tmp                   # before it exists: undo unlinks it whatever happens
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)   # & ~umask
        except OSError as exc:
            raise os_error(exc, "write", dest.parent, exact=True) from None    # name the directory
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:
            raise os_error(exc, "write", dest, exact=True) from None
        finally:
            os.close(fd)

    def commit(self, dest: Path) -> None:
        os.replace(self.temps.pop(dest), dest)

    def undo(self) -> None:
        for tmp in self.temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.temps.clear()
        for d in reversed(self.made):
            with contextlib.suppress(OSError):
                d.rmdir()                        # only when still empty
        self.made.clear()


def _remove(out: Path, rel: str) -> None:
    """Remove a file of ours and the directories that it leaves empty (never ``out`` itself)."""
    path = out / rel
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            return                               # a directory of the user's now stands there
        path.unlink()
    d = path.parent
    while d != out:
        try:
            d.rmdir()
        except OSError:
            break
        d = d.parent


def write_tree(tree: Tree, out: Path) -> WriteReport:
    """Write ``tree`` to ``out``: changed files replaced, unchanged ones untouched, files of ours the
    tree no longer has removed, every other file left alone; the manifest records what is ours."""
    for rel in tree.files:
        if not _safe(rel):
            raise PortError(f"refusing to write the unsafe path {rel!r}", out, "this is a bug in the renderer")
    with signals_held():
        return _write(tree, out)


def _write(tree: Tree, out: Path) -> WriteReport:
    report = WriteReport()
    owned = owned_files(out)
    conflicts = []
    changed: dict[str, bytes] = {}
    for rel, data in sorted(tree.files.items()):
        path = out / rel
        cur = _current(path)
        if cur == data:
            report.unchanged.append(rel)
            continue
        mine = rel in owned and not (path.is_dir() and not path.is_symlink())
        if not mine and (path.exists() or path.is_symlink()):
            conflicts.append(rel)       # the user's file, or a directory where a file of ours was
        changed[rel] = data
    if conflicts:
        more = f" and {len(conflicts) - 1} more" if len(conflicts) > 1 else ""
        raise PortError(f"would replace {out / conflicts[0]}{more}, which gen.py did not write", out,
                        "move them away, or pass --out another directory")
    stale = sorted(rel for rel in owned if rel not in tree.files)
    report.written = sorted(changed)
    report.removed = [rel for rel in stale if os.path.lexists(out / rel)]
    new_owned = {rel: sha256(data) for rel, data in tree.files.items()}
    manifest = out / MANIFEST
    if out.is_dir():
        report.others = [rel for rel in _walk_files(out) if rel != MANIFEST and rel not in tree.files
                         and rel not in owned]
    old_text = _current(manifest)
    new_text = _manifest_text(new_owned)
    if not changed and not stale and old_text == new_text:
        return report                            # nothing to do: leave the tree alone

    stage = _Stage(out)
    with _staging(stage, out):
        stage.makedirs(out)
        for rel, data in changed.items():
            stage.put(out / rel, data)
        # while the renames run the manifest claims the files of both trees, so even a SIGKILL
        # leaves one that names every file of ours on disk
        if set(new_owned) - set(owned):
            stage.put(manifest, _manifest_text({**owned, **new_owned}))
            stage.commit(manifest)
        stage.put(manifest, new_text)
    try:
        for rel in changed:
            stage.commit(out / rel)
        for rel in report.removed:
            _remove(out, rel)
        stage.commit(manifest)
    except OSError as exc:
        raise os_error(exc, "write", out) from None
    finally:
        stage.undo()                             # temporaries not renamed (after an error); made dirs stay
    return report


def write_files(files: dict[str, bytes], out: Path) -> WriteReport:
    """Write some files into a directory that is the user's (a spec directory): each replaced
    atomically unless its bytes are the same, nothing else touched, nothing removed, no manifest."""
    report = WriteReport()
    with signals_held():
        stage = _Stage(out)
        with _staging(stage, out):
            if out.exists() and not out.is_dir():
                raise PortError("is a file, not a directory", out, "pass a directory, or move the file away")
            for rel, data in sorted(files.items()):
                if not _safe(rel):
                    raise PortError(f"refusing to write the unsafe path {rel!r}", out, "this is a bug")
                if _current(out / rel) == data:
                    report.unchanged.append(rel)
                    continue
                stage.put(out / rel, data)
                report.written.append(rel)
            for rel in report.written:
                stage.commit(out / rel)
    return report


@contextlib.contextmanager
def _staging(stage: _Stage, out: Path) -> Iterator[None]:
    """Any failure while staging, an interrupt included, removes what was staged; an OSError
    becomes one line naming the path and the cause."""
    try:
        yield
    except OSError as exc:
        stage.undo()
        raise os_error(exc, "write", out) from None
    except BaseException:
        stage.undo()
        raise
