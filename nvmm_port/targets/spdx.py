"""SPDX license lines of the glue's fragments, and the one the generated glue starts with.

Kernel style (Linux's Documentation/process/license-rules.rst, checked by checkpatch) wants a file's
license as an SPDX tag on its first line: ``// SPDX-License-Identifier: ...`` in a .c file,
``/* SPDX-License-Identifier: ... */`` in a header or assembly file.  A spec's glue fragments
(``[glue] files`` and out-of-line primitives' ``file``) are C files the porter edits, so each
carries its own tag on line 1; the generator concatenates them into one ``driver/nvmm_<os>.c``.

So when the glue is rendered, :func:`glue_license` takes the fragments' common license for the
generated file's first line (before the generator's banner), and :func:`blank` removes each
fragment's own tag line, leaving an empty line in its place: the tag is never repeated in the
middle of the generated file, and the ``#line`` that opens the fragment (which skips leading blank
lines) still names the fragment's lines right.  Fragments without a tag add nothing; fragments
whose tags disagree are an error, since one file has one license line.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import PortError

_TAG = re.compile(r"^[ \t]*(?://|/\*)[ \t]*SPDX-License-Identifier:[ \t]*(?P<id>.*?)[ \t]*(?:\*/)?[ \t]*$")


def license_of(text: str) -> str | None:
    """The SPDX license expression on the first line of ``text``, if it has one there."""
    m = _TAG.match(text.split("\n", 1)[0])
    return m.group("id") if m and m.group("id") else None


def blank(text: str) -> str:
    """``text`` with its first-line SPDX tag (if any) replaced by an empty line."""
    if license_of(text) is None:
        return text
    _, nl, rest = text.partition("\n")
    return nl + rest


def glue_license(fragments: list[tuple[str, str]], where: str | Path | None = None) -> str | None:
    """The one license of the fragments (path, text) that carry a tag; None when none does."""
    found: dict[str, list[str]] = {}
    for rel, text in fragments:
        lic = license_of(text)
        if lic is not None:
            found.setdefault(lic, []).append(rel)
    if len(found) > 1:
        raise PortError("the glue fragments carry different SPDX licenses, but the generated glue is one file "
                        "with one license line", where,
                        "give every fragment the same SPDX-License-Identifier on its first line",
                        [f"{lic}: {', '.join(rels)}" for lic, rels in sorted(found.items())])
    return next(iter(found), None)
