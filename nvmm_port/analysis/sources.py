"""Upstream's files as the model carries them: each file's bytes, text, lines and preprocessor scan.

Generators read upstream only through here (``Surface.source(path)``, ``Surface.block(vp)``), never
from the cache directory and never by scanning upstream text again: the analysis attaches an
:class:`UpstreamSources` over the lock-verified cache to every ``Surface`` it returns, cached or
fresh, and each file is read and scanned once, when first asked for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from . import preprocessor as cpp


@dataclass(frozen=True)
class SourceFile:
    """One upstream file (``path`` in the internal view: ``driver/x86/nvmm_x86_vmx.c``)."""

    path: str
    data: bytes

    @functools.cached_property
    def text(self) -> str:
        """The text, byte for byte (bytes that are not UTF-8 survive as surrogate escapes)."""
        return self.data.decode("utf-8", errors="surrogateescape")

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @functools.cached_property
    def scan(self) -> cpp.FileScan:
        """Its preprocessor structure: conditional blocks and branches, defines, includes."""
        return cpp.scan_text(self.text, self.path)

    @functools.cached_property
    def _blocks(self) -> dict[int, cpp.CondBlock]:
        return {b.line_start: b for b in self.scan.all_blocks()}

    def block_at(self, line: int) -> cpp.CondBlock | None:
        """The conditional block whose ``#if`` is on ``line``."""
        return self._blocks.get(line)

    def body(self, br: cpp.Branch) -> str:
        """A branch's body, verbatim."""
        return "\n".join(self.lines[br.body_start - 1:br.body_end])

    def arm_scan(self, br: cpp.Branch) -> cpp.FileScan:
        """A branch's body scanned on its own (what the arm itself includes, defines, nests)."""
        key = br.line
        if key not in self._arms:
            self._arms[key] = cpp.scan_text(self.body(br), f"{self.path}:{br.line}",
                                            asm=self.path.endswith((".S", ".s")))
        return self._arms[key]

    @functools.cached_property
    def _arms(self) -> dict[int, cpp.FileScan]:
        return {}

    def encode(self, text: str) -> bytes:
        """Text derived from this file, as bytes the way the file holds them."""
        return text.encode("utf-8", errors="surrogateescape")


@dataclass
class UpstreamSources:
    """The files of one synced, lock-verified upstream tree, read and scanned on first use."""

    root: Path
    _files: dict[str, SourceFile] = field(default_factory=dict, repr=False)

    def get(self, path: str) -> SourceFile:
        found = self._files.get(path)
        if found is None:
            found = self._files[path] = SourceFile(path, (self.root / path).read_bytes())
        return found
