"""A small deterministic TOML writer (values and keys); tomllib reads.

Multi-line strings (C fragments in target specs) are written as literal ''' strings when they can
be, so a porter reads the C as C.
"""

from __future__ import annotations

import re
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def key(k: str) -> str:
    return k if _BARE_KEY.match(k) else value(k)


def value(v: Any, multiline: bool = False) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if multiline and "\n" in v and "'''" not in v and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", v) \
                and not v.endswith("'"):
            return "'''\n" + v + "'''"
        chars = []
        for ch in v:
            if ch in _ESCAPES:
                chars.append(_ESCAPES[ch])
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                chars.append(f"\\u{ord(ch):04X}")
            else:
                chars.append(ch)
        return '"' + "".join(chars) + '"'
    if isinstance(v, (list, tuple)):
        if multiline and any(isinstance(x, str) and "\n" in x for x in v):
            return "[\n" + "".join(f"    {value(x, True)},\n" for x in v) + "]"
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
