"""A failed build reports its first error (file:line, the lines GCC prints around it, how many
errors there were), not the tail of make's output, which shows the last consequences."""

from __future__ import annotations

import pytest

from nvmm_port.run.diagnostics import build_failure, diagnose

CASCADE = """\
make -C /usr/src/linux-headers M=/w/out modules
  CC [M]  /w/out/driver/nvmm.o
/w/out/driver/nvmm.c: In function 'nvmm_init':
shim/linux/target.toml:129:27: error: implicit declaration of function 'nvmm_linux_mtx_lck' [-Werror=implicit-function-declaration]
/w/out/driver/nvmm.c:138:9: note: in expansion of macro 'os_mtx_lock'
  138 |         os_mtx_lock(&vcpu->lock);
      |         ^~~~~~~~~~~
""" + "".join(f"/w/out/driver/nvmm.c:{200 + i}:1: error: consequence {i}\n" for i in range(20)) + """\
cc1: all warnings being treated as errors
make[1]: *** [scripts/Makefile.build:250: /w/out/driver/nvmm.o] Error 1
make: *** [Makefile:2010: /w/out] Error 2
"""


def test_first_error_not_the_tail(tmp_path):
    """The old report printed the last 15 lines: the consequences, not the cause."""
    err = build_failure("the kernel module did not build (make exit 2)", CASCADE, tmp_path / "build.log",
                        cwd=tmp_path)
    assert err.message == ("the kernel module did not build (make exit 2); the first of 21 errors: "
                           "shim/linux/target.toml:129: implicit declaration of function 'nvmm_linux_mtx_lck' "
                           "[-Werror=implicit-function-declaration]")
    assert err.details == CASCADE.splitlines()[2:7]
    assert err.where == str(tmp_path / "build.log")


def test_generated_files_are_named_from_here_with_their_origin(tmp_path):
    out = tmp_path / "build" / "toy"
    (out / "driver").mkdir(parents=True)
    (out / "driver" / "nvmm.c").write_text("int x;\n")
    (out / "PROVENANCE").write_text("0" * 64 + "  driver/nvmm.c\n    upstream driver/nvmm.c, 2 variation point(s) filled\n")
    text = ("In file included from driver/nvmm.c:3:\n"
            f"{out}/driver/nvmm.c:1:5: error: conflicting types for 'x'\n"
            "    1 | int x;\n")
    d = diagnose(text, tree=out, cwd=tmp_path)
    assert d.errors == 1 and d.first is not None and d.first.where == "build/toy/driver/nvmm.c:1"
    assert d.first.context == ["In file included from build/toy/driver/nvmm.c:3:",
                               "build/toy/driver/nvmm.c:1:5: error: conflicting types for 'x'", "    1 | int x;",
                               ("(build/toy/driver/nvmm.c is upstream driver/nvmm.c, 2 variation point(s) filled, "
                                "says PROVENANCE)")]


def test_spec_line_shown_when_the_compiler_cannot(tmp_path):
    """Kbuild compiles from the kernel's directory, where a #line name does not open: the line is added."""
    (tmp_path / "shim" / "x").mkdir(parents=True)
    (tmp_path / "shim" / "x" / "core.c").write_text("int a;\n\tretrun 1;\n")
    d = diagnose("shim/x/core.c:2:2: error: unknown type name 'retrun'\nshim/x/core.c:3:1: error: other\n",
                 cwd=tmp_path)
    assert d.errors == 2 and d.first is not None
    assert d.first.context == ["shim/x/core.c:2:2: error: unknown type name 'retrun'", "    2 | \tretrun 1;"]


@pytest.mark.parametrize("output,message", [
    ("out/x.S: Assembler messages:\nout/x.S:12: Error: no such instruction: `vmlaunchx'\n",
     "failed; 1 error: out/x.S:12: no such instruction: `vmlaunchx'"),
    ("ld: x.o: in function `main':\nx.c:(.text+0x5): undefined reference to `nvmm_foo'\ncollect2: error: ld returned 1\n",
     "failed; the first of 2 errors: x.c:(.text+0x5): undefined reference to `nvmm_foo'"),
    ("gcc: error: nosuch.c: No such file or directory\n", "failed; 1 error: nosuch.c: No such file or directory"),
    ("make[1]: *** No rule to make target 'driver/x.o'.  Stop.\n",
     "failed: make[1]: *** No rule to make target 'driver/x.o'.  Stop."),
])
def test_first_error_of_each_tool(tmp_path, output, message):
    assert build_failure("failed", output, tmp_path / "log").message == message


def test_no_error_line_falls_back_to_the_tail(tmp_path):
    output = "".join(f"line {i}\n" for i in range(40))
    err = build_failure("failed", output, tmp_path / "log")
    assert err.message == "failed" and err.details == [f"line {i}" for i in range(25, 40)]
