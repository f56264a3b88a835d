"""The package's layering rule (nvmm_port/__init__.py): no module imports from a layer above it."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "nvmm_port"
# lowest first; a module may import its own layer and those before it
LAYERS = ["base", "upstream", "analysis", "targets", "run", "cli"]
BASE = {"errors", "project", "templating", "tomlw", "ui", "__init__"}


def layer_of(parts: tuple[str, ...]) -> str:
    if not parts:
        return "base"
    if parts[0] in ("upstream", "analysis", "targets", "run"):
        return parts[0]
    if parts[0] == "cli":
        return "cli"
    assert parts[0] in BASE, f"module nvmm_port.{'.'.join(parts)} belongs to no layer"
    return "base"


def imports(path: Path, pkg_dir: Path = PKG) -> list[tuple[int, tuple[str, ...]]]:
    """(line, target module parts relative to nvmm_port) for every import of the package."""
    here = path.relative_to(pkg_dir).with_suffix("").parts
    pkg = here[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                mod = tuple(node.module.split(".")) if node.module else ()
                target = base + mod
                names = [a.name for a in node.names]
                if not node.module:
                    for n in names:
                        out.append((node.lineno, target + (n,)))
                    continue
                out.append((node.lineno, target))
            elif node.module and node.module.split(".")[0] == "nvmm_port":
                out.append((node.lineno, tuple(node.module.split(".")[1:])))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "nvmm_port":
                    out.append((node.lineno, tuple(a.name.split(".")[1:])))
    return out


def upward_imports(pkg_dir: Path) -> list[str]:
    bad = []
    for path in sorted(pkg_dir.rglob("*.py")):
        own = layer_of(path.relative_to(pkg_dir).with_suffix("").parts)
        for line, target in imports(path, pkg_dir):
            if target and target[-1] == "__version__":
                continue
            other = layer_of(target)
            if LAYERS.index(other) > LAYERS.index(own):
                bad.append(f"{path.relative_to(pkg_dir)}:{line} ({own}) imports nvmm_port.{'.'.join(target)} ({other})")
    return bad


def test_no_module_imports_from_a_layer_above_it():
    bad = upward_imports(PKG)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_the_rule_catches_upward_imports(tmp_path):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "upstream").mkdir()
    (tmp_path / "errors.py").write_text("from .targets.spec import load_spec\n")
    (tmp_path / "analysis" / "model.py").write_text("from ..errors import PortError\nfrom ..run import build\n")
    (tmp_path / "upstream" / "lock.py").write_text("import nvmm_port.analysis.model\nfrom . import layout\n")
    assert upward_imports(tmp_path) == [
        "analysis/model.py:2 (analysis) imports nvmm_port.run (run)",
        "errors.py:1 (base) imports nvmm_port.targets.spec (targets)",
        "upstream/lock.py:1 (upstream) imports nvmm_port.analysis.model (analysis)",
    ]


# modules that write to the terminal: the command line, and the progress it hands the library
PRINTERS = {("cli",), ("ui",)}


def printing(path: Path) -> list[int]:
    """Lines of ``path`` that call print() or use sys.stdout / sys.stderr."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            lines.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            lines.append(node.lineno)
    return sorted(set(lines))


def test_only_the_cli_prints():
    """Library functions return results (and report progress on the Progress they are given)."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG).with_suffix("").parts
        if parts[:1] in PRINTERS or parts == ("__init__",):
            continue
        bad += [f"{path.relative_to(PKG)}:{line}" for line in printing(path)]
    assert not bad, "library modules that print:\n" + "\n".join(bad)
