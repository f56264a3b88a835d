"""The object directory a build runs in: a mirror of the rendered tree, kept beside it.

Rendering owns ``build/<target>/``; compilers own ``build/<target>.obj/``.  Before each build the
rendered files are mirrored into the object directory: a file is copied only when its bytes
changed (so make sees the old mtime of every unchanged source and recompiles only what depends on a
changed one), and a file the rendered tree no longer has is removed.  Objects, the module, the
archives, the programs and the logs stay in the object directory, where a regenerate never looks,
so ``generate --check`` after a build is clean and a second build compiles nothing.

The object directory is gen.py's: it records what it mirrored in ``.nvmm-port-mirror`` and refuses
a non-empty directory without that record (or a regular file) instead of building into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError
from ..targets.writer import Tree, os_error, signals_held, write_files

RECORD = ".nvmm-port-mirror"


def objdir_of(out: Path) -> Path:
    """Where the build of the tree rendered in ``out`` runs: ``OUT.obj`` beside it."""
    return out.with_name(out.name + ".obj")


@dataclass
class Mirror:
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _recorded(objdir: Path) -> set[str]:
    try:
        if not objdir.exists() and not objdir.is_symlink():
            return set()
        if not objdir.is_dir():
            raise PortError("is a file, not a directory", objdir,
                            "move it away: gen.py build keeps the objects of the tree beside it there")
        record = objdir / RECORD
        if record.is_file():
            return {line for line in record.read_text(errors="replace").splitlines()
                    if line and not line.startswith("#")}
        if not any(True for _ in objdir.iterdir()):
            return set()
    except OSError as exc:
        raise os_error(exc, "read", objdir) from None
    raise PortError(f"is not empty and gen.py did not make it (no {RECORD})", objdir,
                    "move it away: gen.py build keeps the objects of the tree beside it there")


def mirror_tree(tree: Tree, objdir: Path) -> Mirror:
    """Bring ``objdir``'s copy of the rendered files up to date with ``tree``."""
    old = _recorded(objdir)
    res = Mirror()
    with signals_held():
        report = write_files(dict(tree.files), objdir)
        res.copied, res.unchanged = report.written, report.unchanged
        for rel in sorted(old - set(tree.files)):
            if not all(p not in ("", ".", "..") for p in rel.split("/")) or rel.startswith("/"):
                continue                 # not a path this module ever writes
            try:
                (objdir / rel).unlink()
                res.removed.append(rel)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise os_error(exc, "remove", objdir / rel) from None
        text = "# files gen.py build mirrored here from the rendered tree\n" + \
            "".join(f"{rel}\n" for rel in sorted(tree.files))
        write_files({RECORD: text.encode()}, objdir)
    return res
