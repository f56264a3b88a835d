"""pyproject.toml lists the package's packages by hand: every one must be there, or an installed
`nvmm-port` misses it (nvmm_port.cli, a package since the CLI moved into it, was left out once)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    present = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nvmm_port").rglob("__init__.py")}
    assert present - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - present == set(), "these are listed in pyproject.toml but are no package"


def test_the_cli_runs_as_a_module():
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "nvmm_port.cli", "--version"], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0 and proc.stdout.startswith("nvmm-port "), proc
