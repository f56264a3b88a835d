"""gen.py build's Kbuild machinery on tiny modules of our own (skipped without kernel headers)."""

from __future__ import annotations

import pytest

from nvmm_port.errors import PortError
from nvmm_port.run.build import default_kdir, kbuild, read_modinfo

KDIR = default_kdir()
needs_headers = pytest.mark.skipif(not (KDIR / "Makefile").is_file(),
                                   reason="no kernel build directory: apt-get install linux-headers-amd64")

MODULE = """\
#include <linux/module.h>
static int answer = 42;
module_param(answer, int, 0444);
MODULE_PARM_DESC(answer, "the answer");
%s
static int __init t_init(void) { return %s; }
static void __exit t_exit(void) { }
module_init(t_init);
module_exit(t_exit);
MODULE_LICENSE("Dual BSD/GPL");
MODULE_VERSION("1.2.3");
MODULE_DESCRIPTION("nvmm-port build test");
"""


def tree(tmp_path, extra_decl="", init="0"):
    d = tmp_path / "mod"
    d.mkdir()
    (d / "t.c").write_text(MODULE % (extra_decl, init))
    (d / "Kbuild").write_text("obj-m += nvmmtest.o\nnvmmtest-y := t.o\n")
    return d


@needs_headers
def test_kbuild_and_modinfo(tmp_path):
    res = kbuild(tree(tmp_path), KDIR, "nvmmtest", 2)
    assert res.module and res.module.name == "nvmmtest.ko" and res.undefined == []
    info = read_modinfo(res.module)
    assert info["license"] == ["Dual BSD/GPL"] and info["version"] == ["1.2.3"]
    assert info["description"] == ["nvmm-port build test"]
    assert info["parm"] == ["answer:the answer"] and info["parmtype"] == ["answer:int"]
    assert info["vermagic"][0].startswith(KDIR.name.replace("linux-headers-", "")) or info["vermagic"][0]
    assert "build.log" in str(res.log) and res.log.read_text().startswith("$ make -C")


@needs_headers
def test_undefined_symbols_are_reported(tmp_path):
    res = kbuild(tree(tmp_path, "int nvmm_port_no_such_symbol(void);", "nvmm_port_no_such_symbol()"),
                 KDIR, "nvmmtest", 2)
    assert res.undefined == ["nvmm_port_no_such_symbol"]


@needs_headers
def test_compile_error_names_the_log(tmp_path):
    d = tree(tmp_path, "this is not C;")
    with pytest.raises(PortError) as exc:
        kbuild(d, KDIR, "nvmmtest", 2)
    assert "did not build" in exc.value.message and exc.value.where.endswith("build.log")
    assert any("error" in line for line in exc.value.details)


def test_missing_kernel_dir(tmp_path):
    with pytest.raises(PortError) as exc:
        kbuild(tmp_path, tmp_path / "nokernel", "nvmm", 1)
    assert "linux-headers-amd64" in exc.value.fix
