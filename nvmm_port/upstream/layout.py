"""Known upstream layouts and the normalised internal view.

Every upstream NVMM tree, whatever OS it comes from, is stored in the cache
under the same internal view::

    driver/        top-level driver files (nvmm.c, nvmm.h, nvmm_internal.h, nvmm_os.h, ...)
    driver/x86/    the x86 backend (nvmm_x86*.c/.h/.S)
    libnvmm/       libnvmm.c, libnvmm_x86.c, the public nvmm.h, libnvmm.3, ...
    tests/         upstream's libnvmm tests, one folder per test program:
                   tests/h_<name>/h_<name>.c, tests/h_<name>/h_<name>_asm.S, ...

A :class:`Layout` says where those live in one upstream's source tree; the
table :data:`LAYOUTS` is data, so supporting a new upstream is a new entry.
All paths here are POSIX, relative to the repository (or directory) root.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PortError

#: Where a path map may put files in the internal view.
DESTS = ("driver", "driver/x86", "libnvmm", "tests")

#: The destination whose flat ``h_<name>*`` files are grouped per test program.
TESTS_DEST = "tests"


@dataclass(frozen=True)
class PathMap:
    """Files under ``src`` (relative to the upstream root) go to ``dest``.

    ``exclude`` holds globs relative to the upstream root (``**`` crosses
    ``/``, ``*`` does not) for files under ``src`` that are not NVMM.
    """

    src: str
    dest: str
    exclude: tuple[str, ...] = ()
    optional: bool = field(default=False, compare=False)    # --path SUBDIR?: may be absent at a revision

    def owns(self, rel_path: str) -> bool:
        return rel_path.startswith(self.src + "/")


@dataclass(frozen=True)
class Layout:
    """One upstream's source tree.  ``maps[0]`` is the driver root."""

    name: str
    maps: tuple[PathMap, ...]
    description: str = field(default="", compare=False)

    @property
    def driver_root(self) -> str:
        return self.maps[0].src

    def roots(self) -> list[str]:
        return [m.src for m in self.maps]


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "dragonfly",
        (
            PathMap("sys/dev/virtual/nvmm", "driver"),
            PathMap("sys/dev/virtual/nvmm/x86", "driver/x86"),
            PathMap("lib/libnvmm", "libnvmm"),
            PathMap("test/testcases/libnvmm", "tests"),
        ),
        "DragonFly BSD source tree",
    ),
    Layout(
        "netbsd",
        (
            PathMap("sys/dev/nvmm", "driver"),
            PathMap("sys/dev/nvmm/x86", "driver/x86"),
            PathMap("lib/libnvmm", "libnvmm"),
            PathMap("tests/lib/libnvmm", "tests"),
        ),
        "NetBSD source tree (flat tests)",
    ),
    Layout(
        "haiku",
        (
            # include/ is Haiku's copy of BSD machine headers, not NVMM.
            PathMap("src/add-ons/kernel/drivers/nvmm", "driver",
                    ("src/add-ons/kernel/drivers/nvmm/include/**",)),
            PathMap("src/add-ons/kernel/drivers/nvmm/x86", "driver/x86"),
            PathMap("src/libs/nvmm", "libnvmm"),
            PathMap("headers/libs/nvmm", "libnvmm"),
            PathMap("src/tests/add-ons/kernel/drivers/nvmm", "tests"),
        ),
        "Haiku source tree",
    ),
)

LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}

#: Every root of every known layout (for listing only what could matter).
ALL_ROOTS: tuple[str, ...] = tuple(sorted({m.src for layout in LAYOUTS for m in layout.maps}))


def expected_layouts() -> str:
    """One line naming each known layout and the driver file it is detected by."""
    return "; ".join(f"{lay.name}: {lay.driver_root}/nvmm.c" for lay in LAYOUTS)


# -- globs ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape("["))
                i += 1
            else:
                body = pattern[i + 1:j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, rel_path: str) -> bool:
    """Does ``rel_path`` match ``pattern``?

    A pattern with a ``/`` matches the whole path (``**`` crosses folders,
    ``dir/**`` is everything under ``dir``); one without matches the file
    name anywhere (``*.orig``); ``dir/`` means ``dir/**``.
    """
    if pattern.endswith("/"):
        pattern = pattern.rstrip("/") + "/**"
    pattern = pattern.lstrip("/")
    if "/" not in pattern:
        return fnmatch.fnmatchcase(posixpath.basename(rel_path), pattern)
    return _glob_regex(pattern).match(rel_path) is not None


def excluded(rel_path: str, globs: Iterable[str]) -> bool:
    return any(glob_match(g, rel_path) for g in globs)


# -- normalisation -------------------------------------------------------------------------------

def clean_rel(path: str) -> str:
    """A repository-relative POSIX path without ``./``, doubled or trailing slashes."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def owning_map(maps: Iterable[PathMap], rel_path: str) -> PathMap | None:
    """The map with the longest ``src`` that ``rel_path`` lies under."""
    best: PathMap | None = None
    for m in maps:
        if m.owns(rel_path) and (best is None or len(m.src) > len(best.src)):
            best = m
    return best


def flat_test_groups(rel_paths: Iterable[str]) -> set[str]:
    """Names of the test programs in a flat tests folder: ``h_<name>.c`` -> ``<name>``."""
    groups = set()
    for rel in rel_paths:
        base = posixpath.basename(rel)
        if base.startswith("h_") and base.endswith(".c") and len(base) > 4:
            groups.add(base[2:-2])
    return groups


def _test_group(base: str, groups: set[str] | None) -> str:
    """Which test program the flat file ``base`` (``h_...``) belongs to."""
    if groups:
        matches = [g for g in groups if base.startswith(f"h_{g}") and base[len(g) + 2:len(g) + 3] in (".", "_", "")]
        if matches:
            return max(matches, key=len)
    stem = base[2:].split(".", 1)[0]
    for suffix in ("_asm",):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
    return stem


def map_path(maps: Iterable[PathMap], rel_path: str, groups: set[str] | None = None) -> str | None:
    """The internal path of ``rel_path`` under ``maps``, or None if no map takes it.

    ``groups`` names the test programs of a flat tests folder (see
    :func:`flat_test_groups`); without it a file's program is guessed from its name.
    """
    rel_path = clean_rel(rel_path)
    m = owning_map(maps, rel_path)
    if m is None or excluded(rel_path, m.exclude):
        return None
    inner = rel_path[len(m.src) + 1:]
    if m.dest == TESTS_DEST and "/" not in inner and inner.startswith("h_") and len(inner) > 2:
        inner = f"h_{_test_group(inner, groups)}/{inner}"
    return f"{m.dest}/{inner}"


def normalise(layout: Layout, rel_path: str, groups: set[str] | None = None) -> str | None:
    """The internal path of a file of ``layout``, or None when it is not imported."""
    return map_path(layout.maps, rel_path, groups)


def detect_layout(rel_paths: Iterable[str], where: str | Path | None = None) -> Layout:
    """The known layout of a tree, given its file paths (relative to its root).

    A layout matches when its driver root holds ``nvmm.c`` or ``nvmm.h``.
    Raises :class:`PortError` naming ``where`` when none (or several) match.
    """
    files = {clean_rel(p) for p in rel_paths}
    matched = []
    near = []
    for layout in LAYOUTS:
        root = layout.driver_root
        if f"{root}/nvmm.c" in files or f"{root}/nvmm.h" in files:
            matched.append(layout)
        elif any(p.startswith(root + "/") for p in files):
            near.append(root)
    if len(matched) == 1:
        return matched[0]
    if matched:
        names = ", ".join(lay.name for lay in matched)
        raise PortError(f"several NVMM layouts match ({names})", where,
                        "pick one with --git PATH --path SUBDIR:DEST ...")
    hint = f"; {', '.join(near)} exists but has no nvmm.c or nvmm.h" if near else ""
    raise PortError(f"no known NVMM layout found{hint}", where,
                    f"expected one of {expected_layouts()}")


def layout_of_maps(maps: Iterable[PathMap]) -> str:
    """The known layout a set of maps is part of (same src and dest), else ``custom``."""
    pairs = {(m.src, m.dest) for m in maps}
    for layout in LAYOUTS:
        if pairs and pairs <= {(m.src, m.dest) for m in layout.maps}:
            return layout.name
    return "custom"


def known_map(src: str) -> PathMap | None:
    """The known layout map whose root is ``src`` (to infer a ``--path`` destination)."""
    for layout in LAYOUTS:
        for m in layout.maps:
            if m.src == src:
                return m
    return None
