"""Where a project's files live: locks, the upstream cache, shims, templates, build.

The project root is, in order: ``--project DIR`` / ``$NVMM_PORT_PROJECT``, the
checkout this package was imported from (it has ``gen.py`` beside the
package), or the current directory.  The upstream cache defaults to
``<root>/upstream/cache`` and can be moved with ``$NVMM_PORT_CACHE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import PortError

PACKAGE_DIR = Path(__file__).resolve().parent


def _default_root() -> Path:
    env = os.environ.get("NVMM_PORT_PROJECT")
    if env:
        return Path(env).resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "gen.py").is_file():
        return checkout
    return Path.cwd().resolve()


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def find(cls, root: str | Path | None = None) -> Project:
        return cls(Path(root).resolve() if root else _default_root())

    @property
    def upstream_dir(self) -> Path:
        return self.root / "upstream"

    @property
    def cache_root(self) -> Path:
        env = os.environ.get("NVMM_PORT_CACHE")
        return Path(env).resolve() if env else self.upstream_dir / "cache"

    def cache_dir(self, name: str) -> Path:
        return self.cache_root / name

    def lock_path(self, name: str) -> Path:
        return self.upstream_dir / f"{name}.lock"

    @property
    def shim_dir(self) -> Path:
        return self.root / "shim"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    def lock_names(self) -> list[str]:
        if not self.upstream_dir.is_dir():
            return []
        return sorted(p.stem for p in self.upstream_dir.glob("*.lock"))

    def resolve_upstream(self, name: str | None) -> str:
        """The upstream a command works on: the one given, or the only lock."""
        names = self.lock_names()
        if name:
            if name not in names:
                raise PortError(
                    f"no lock for upstream '{name}'",
                    self.lock_path(name),
                    f"run `gen.py sync --name {name} ...` first; known: {', '.join(names) or 'none'}",
                )
            return name
        if len(names) == 1:
            return names[0]
        if not names:
            raise PortError("no upstream has been synced", self.upstream_dir,
                            "run `gen.py sync --name NAME --git URL|PATH --ref REF` or `--dir PATH`")
        raise PortError(f"several upstreams are synced ({', '.join(names)})", self.upstream_dir,
                        "pass --upstream NAME")
