"""SPDX tags: every shim C file carries its license on line 1 (kernel style), and the generated glue,
which concatenates fragments, starts with their common tag and does not repeat theirs
(nvmm_port/targets/spdx.py)."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import ROOT, TOYOS, reference_cache

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.targets import spdx

TAG = "SPDX-License-Identifier: BSD-2-Clause"
LINUX_WORLD = ["driver/nvmm_linux.c", "driver/nvmm_linux.h", "driver/nvmm_linux_bridge.c",
               "driver/nvmm_npt.c", "driver/nvmm_npt.h"]


def kernel_style_tag(path: str, lic: str = "BSD-2-Clause") -> str:
    """Linux's license-rules.rst: // in a .c file, /* */ in a header or assembly file."""
    return f"// SPDX-License-Identifier: {lic}" if path.endswith(".c") else f"/* SPDX-License-Identifier: {lic} */"


def test_license_of_reads_line_one_only():
    assert spdx.license_of("// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause\nint x;\n") == "GPL-2.0 OR BSD-2-Clause"
    assert spdx.license_of("/* SPDX-License-Identifier: BSD-2-Clause */\n") == "BSD-2-Clause"
    assert spdx.license_of("/* x */\n// SPDX-License-Identifier: MIT\n") is None
    assert spdx.license_of("int x; // SPDX-License-Identifier: MIT\n") is None


def test_blank_keeps_the_line_count():
    text = "// SPDX-License-Identifier: MIT\n/* f */\nint x;\n"
    assert spdx.blank(text) == "\n/* f */\nint x;\n"
    assert spdx.blank("int x;\n") == "int x;\n"


def test_fragments_must_agree():
    assert spdx.glue_license([("a.c", "// SPDX-License-Identifier: MIT\n"), ("b.c", "int x;\n")]) == "MIT"
    assert spdx.glue_license([("b.c", "int x;\n")]) is None
    with pytest.raises(PortError) as e:
        spdx.glue_license([("a.c", "// SPDX-License-Identifier: MIT\n"),
                           ("b.c", "// SPDX-License-Identifier: GPL-2.0\n")])
    assert "different SPDX licenses" in str(e.value) and any("b.c" in d for d in e.value.details)


def _tagged_toyos(tmp_path, lic_of=lambda name: "BSD-2-Clause"):
    d = tmp_path / "toyos"
    shutil.copytree(TOYOS, d)
    for f in sorted((d / "primitives").glob("*.c")):
        f.write_text(f"// SPDX-License-Identifier: {lic_of(f.name)}\n" + f.read_text())
    return d


def test_glue_starts_with_the_fragments_tag_once(mini_project, tmp_path):
    spec = _tagged_toyos(tmp_path)
    out = tmp_path / "out"
    assert main(["--project", str(mini_project), "generate", "--target", str(spec), "--out", str(out)]) == 0
    lines = (out / "driver" / "nvmm_toyos.c").read_text().split("\n")
    assert lines[0] == f"// {TAG}" and lines[1] == "/*"            # before the generator's banner
    assert [i for i, ln in enumerate(lines) if "SPDX" in ln] == [0]
    # each fragment's #line still names its own lines: the tag was line 1, its code starts below
    frag = (spec / "primitives" / "os_vmspace_create.c").read_text().split("\n")
    i = next(i for i, ln in enumerate(lines) if re.fullmatch(r'#line \d+ ".*primitives/os_vmspace_create\.c"', ln))
    n = int(lines[i].split()[1])
    assert n >= 2 and lines[i + 1] == frag[n - 1] and lines[i + 1].strip()


def test_glue_without_tags_has_no_tag_line(mini_project, tmp_path):
    out = tmp_path / "out"
    assert main(["--project", str(mini_project), "generate", "--target", str(TOYOS), "--out", str(out)]) == 0
    assert (out / "driver" / "nvmm_toyos.c").read_text().startswith("/*\n")


def test_disagreeing_fragments_are_an_error(mini_project, tmp_path, capsys):
    spec = _tagged_toyos(tmp_path, lambda name: "GPL-2.0" if name == "os_vmspace_fault.c" else "BSD-2-Clause")
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["--project", str(mini_project), "generate", "--target", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different SPDX licenses" in err and "os_vmspace_fault.c" in err


def test_shim_c_files_carry_the_tag_on_line_one():
    """The porter's own files: glue fragments, the shared header, the bridge, the nested pmap."""
    files = sorted(p for d in ("shim/linux/glue", "shim/common/npt", "shim/common/e2e") for p in (ROOT / d).rglob("*")
                   if p.suffix in (".c", ".h", ".S"))
    assert len(files) >= 18
    for p in files:
        lines = p.read_text().split("\n")
        assert lines[0] == kernel_style_tag(p.name), p
        assert not any("SPDX" in ln for ln in lines[1:]), p


def test_linux_world_files_start_with_their_tag(tmp_path):
    if reference_cache() is None:
        pytest.skip("needs the synced reference upstream (python gen.py sync --name dragonfly-2024)")
    out = tmp_path / "linux"
    assert main(["--project", str(ROOT), "generate", "--target", "linux", "--out", str(out)]) == 0
    for rel in LINUX_WORLD:
        lines = (out / rel).read_text().split("\n")
        assert lines[0] == kernel_style_tag(rel), rel
        assert [i for i, ln in enumerate(lines) if "SPDX" in ln] == [0], rel
