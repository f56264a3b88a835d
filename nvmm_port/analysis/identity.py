"""What identifies a variation point or a primitive across upstream revisions: its text, not its id.

A variation point's id (``file:scope#ordinal``) is a name for humans; it moves when a fork wraps the
block in a new conditional (the wrapper takes ``#1``), renames the scope or adds a block before it.
Its *fingerprint* is what the block compiles for NVMM's own OSes, NetBSD and DragonFly (the arms
every upstream has; a fork's arms for its own OS do not count), normalised for whitespace, with its
file.  A primitive's fingerprint is its kind and its definitions for those OSes (and outside them).

Specs record the fingerprint each entry was written against (``fingerprint = "..."``); validation
refuses an entry whose block or primitive no longer has it (``changed upstream: review``), and
``gen.py drift`` matches blocks between two revisions by it.
"""

from __future__ import annotations

import hashlib

from .model import Primitive, VariationPoint

#: NVMM's own OSes: the arms a fingerprint covers.
UPSTREAM_OSES = ("dragonfly", "netbsd")


def normalise(text: str) -> str:
    """Text with whitespace runs made one space and blank lines dropped."""
    return "\n".join(" ".join(ln.split()) for ln in text.splitlines() if ln.strip())


def vp_arms(vp: VariationPoint, oses: tuple[str, ...] | list[str] = UPSTREAM_OSES) -> dict[str, str]:
    """The normalised body a variation point compiles for each OS of ``oses`` (absent: none)."""
    out: dict[str, str] = {}
    for os in oses:
        for b in vp.branches:
            if os in b.oses:
                out[os] = normalise(b.text)
                break
    return out


def vp_fingerprint(vp: VariationPoint, oses: tuple[str, ...] | list[str] = UPSTREAM_OSES) -> str:
    arms = vp_arms(vp, oses)
    h = hashlib.sha256(vp.file.encode())
    for os in sorted(arms):
        h.update(b"\0" + os.encode() + b"\0" + arms[os].encode())
    return h.hexdigest()[:16]


def definition_text(p: Primitive, os: str) -> str:
    """One OS's definition of a primitive as the contract states it: a function's prototype, else
    its normalised text ("" when that OS has none)."""
    d = p.definitions.get(os)
    if d is None:
        return ""
    sig = d.signature
    if sig:
        params = ", ".join(x.get("type", "") for x in sig.get("params", []))
        return f"{sig.get('returns', '')} {p.name}({params}{', ...' if sig.get('variadic') else ''})"
    return normalise(d.text)


def primitive_fingerprint(p: Primitive) -> str:
    h = hashlib.sha256(f"{p.name}\0{p.kind}".encode())
    for os in ("all", *UPSTREAM_OSES):
        h.update(b"\0" + os.encode() + b"\0" + definition_text(p, os).encode())
    return h.hexdigest()[:16]
