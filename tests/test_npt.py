# nvmm-port: portable nested page tables for NVMM ports. SPDX-License-Identifier: BSD-2-Clause
"""The portable nested pmap, shim/common/npt/: its C harness (sanitized, simulated physical memory,
a reference model for the randomized runs) and a freestanding kernel-style compile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NPT = ROOT / "shim" / "common" / "npt"
LICENSE = "nvmm-port: portable nested page tables for NVMM ports. SPDX-License-Identifier: BSD-2-Clause"

SCENARIOS = [
    "create_destroy",
    "fault_bits_npt",
    "fault_bits_ept",
    "fault_errors",
    "fault_idempotent",
    "obj_offset",
    "unmap_split",
    "unmap_unfaulted",
    "unmap_tables",
    "map_errors",
    "set_format",
    "root_stable",
    "destroy_many",
    "enomem",
    "random_npt",
    "random_ept",
    "random_ept_ad_xonly",
    "random_enomem",
]
RANDOM = [s for s in SCENARIOS if s.startswith("random_")]

HARNESS_FLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                 "-fno-sanitize-recover=all", "-g", "-O1"]
KERNEL_FLAGS = ["-ffreestanding", "-nostdinc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
                "-Wmissing-prototypes", "-Wstrict-prototypes", "-Wdeclaration-after-statement",
                "-Wvla", "-Wshadow", "-mno-red-zone", "-mcmodel=kernel", "-fno-pic",
                "-mno-sse", "-mno-mmx", "-mno-sse2", "-fno-common"]

# What the kernel gives a freestanding file: nothing but compiler builtins.
TYPES_H = """\
typedef __UINT64_TYPE__ uint64_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __SIZE_TYPE__ size_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)
#define NPT_OS_TYPES_INCLUDED 1
"""

# Calls GCC may emit by itself even in freestanding code; every kernel provides them.
COMPILER_RUNTIME = {"memcpy", "memmove", "memset", "memcmp"}


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: the nested-pmap C harness and the freestanding build need it")
    return gcc


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def harness(tmp_path_factory):
    """Build shim/common/npt/tests/npt_test.c with the code under test, sanitized; return
    (binary, environment)."""
    gcc = _gcc()
    out = tmp_path_factory.mktemp("npt")
    probe = out / "probe.c"
    probe.write_text("#include <stdlib.h>\nint main(void) { free(malloc(1)); return 0; }\n")
    r = _run([gcc, "-fsanitize=address,undefined", str(probe), "-o", str(out / "probe")])
    if r.returncode != 0:
        pytest.skip(f"gcc cannot link the ASan/UBSan runtimes: {r.stderr.strip()[:300]}")
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if _run([str(out / "probe")], env=env).returncode != 0:
        # LeakSanitizer cannot run under ptrace (strace, some sandboxes); the harness still checks
        # that every allocation, page, table and reference was given back.
        env["ASAN_OPTIONS"] = "detect_leaks=0:halt_on_error=1"
    binary = out / "npt_test"
    r = _run([gcc, *HARNESS_FLAGS, f"-I{NPT}", str(NPT / "tests" / "npt_test.c"),
              str(NPT / "nvmm_npt.c"), "-o", str(binary)])
    assert r.returncode == 0, f"harness build failed:\n{r.stderr}"
    assert r.stderr == "", f"harness build warned:\n{r.stderr}"
    return binary, env


def _scenario(harness, name, *args) -> str:
    binary, env = harness
    r = _run([str(binary), name, *map(str, args)], env=env)
    assert r.returncode == 0, f"{name} failed (rc {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert f"PASS {name}" in r.stdout.splitlines()
    assert "runtime error" not in r.stderr and "Sanitizer" not in r.stderr, r.stderr
    return r.stdout


def _stats(out: str) -> dict[str, int]:
    line = next(ln for ln in out.splitlines() if ln.startswith("STATS "))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_scenario_list_matches_harness(harness):
    binary, env = harness
    r = _run([str(binary), "--list"], env=env)
    assert r.returncode == 0
    assert r.stdout.split() == SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(harness, name):
    out = _scenario(harness, name)
    if name in RANDOM:
        st = _stats(out)
        # The run must have exercised every path, not idled on errors.
        assert st["map_ok"] > 100 and st["map_eexist"] > 0
        assert st["fault_ok"] > 200 and st["fault_efault"] > 0 and st["fault_eacces"] > 0
        assert st["unmap"] > 100 and st["invalidations"] > 50
        assert st["max_tables"] >= 12  # all four regions populated: PT, PD, PDPT boundaries crossed
        if name == "random_enomem":
            assert st["enomem"] > 20


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("name", ["random_npt", "random_ept", "random_enomem"])
def test_random_more_seeds(harness, name, seed):
    _scenario(harness, name, seed, 2000)


def test_freestanding_kernel_build(tmp_path):
    """nvmm_npt.c builds as kernel code: no libc, no headers but the target's types, no SSE, and
    no undefined symbol beyond what GCC itself may call in freestanding mode."""
    gcc = _gcc()
    (tmp_path / "types.h").write_text(TYPES_H)
    for opt in ("-O0", "-O2"):
        obj = tmp_path / f"npt{opt}.o"
        r = _run([gcc, "-c", opt, *KERNEL_FLAGS, "-include", str(tmp_path / "types.h"),
                  str(NPT / "nvmm_npt.c"), "-o", str(obj)])
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr
        nm = shutil.which("nm")
        if nm:
            r = _run([nm, "-u", str(obj)])
            assert r.returncode == 0
            undefined = {line.split()[-1] for line in r.stdout.splitlines() if line.strip()}
            assert undefined <= COMPILER_RUNTIME, f"{opt}: undefined symbols {undefined}"
            r = _run([nm, "--defined-only", str(obj)])
            # No global state: no data or bss symbols, only functions.
            kinds = {line.split()[1] for line in r.stdout.splitlines() if len(line.split()) == 3}
            assert kinds <= {"T", "t"}, r.stdout


def test_header_alone_freestanding_and_cxx(tmp_path):
    gcc = _gcc()
    (tmp_path / "types.h").write_text(TYPES_H)
    tu = tmp_path / "only_header.c"
    tu.write_text('#include "types.h"\n#include "nvmm_npt.h"\n'
                  "int npt_probe(void);\nint npt_probe(void) { return NPT_EINVAL + NPT_PROT_ALL; }\n")
    r = _run([gcc, "-c", *KERNEL_FLAGS, "-pedantic", f"-I{NPT}", f"-I{tmp_path}", str(tu),
              "-o", str(tmp_path / "h.o")])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    gxx = shutil.which("g++")
    if gxx:
        cc = tmp_path / "user.cc"
        cc.write_text('#include "nvmm_npt.h"\n'
                      "uint64_t f(const struct npt_space *s) { return npt_root_pa(s); }\n")
        r = _run([gxx, "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{NPT}",
                  str(cc)])
        assert r.returncode == 0, r.stderr


def _kernel_build_dir() -> Path | None:
    """$KDIR, else the running kernel's build dir, else the newest Debian linux-headers-*-amd64."""
    candidates = [Path(os.environ["KDIR"])] if os.environ.get("KDIR") else []
    candidates.append(Path("/lib/modules") / os.uname().release / "build")
    candidates += sorted(Path("/usr/src").glob("linux-headers-*-amd64"),
                         key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)], reverse=True)
    return next((c for c in candidates if (c / "Makefile").is_file()), None)


def test_linux_kbuild_module(tmp_path):
    """The first real target: nvmm_npt.c in an out-of-tree Linux module, Kbuild's own flags plus
    W=1 and -Werror, types from <linux/types.h>, errno from <linux/errno.h>."""
    kdir = _kernel_build_dir()
    if kdir is None:
        pytest.skip("no kernel build directory (set KDIR or apt-get install linux-headers-amd64)")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    mod = tmp_path / "mod"
    mod.mkdir()
    shutil.copy(NPT / "nvmm_npt.c", mod)
    shutil.copy(NPT / "nvmm_npt.h", mod)
    (mod / "npt_types.h").write_text("#include <linux/types.h>\n#include <linux/errno.h>\n"
                                     "#define NPT_OS_TYPES_INCLUDED 1\n")
    (mod / "glue.c").write_text(
        '#include <linux/module.h>\n#include "npt_types.h"\n#include "nvmm_npt.h"\n'
        "static int __init t_init(void) { return NPT_EINVAL == EINVAL ? 0 : -EINVAL; }\n"
        "static void __exit t_exit(void) { }\nmodule_init(t_init);\nmodule_exit(t_exit);\n"
        'MODULE_LICENSE("Dual BSD/GPL");\n')
    (mod / "Kbuild").write_text("obj-m := nptprobe.o\nnptprobe-y := glue.o nvmm_npt.o\n"
                                "ccflags-y := -Werror\n"
                                "CFLAGS_nvmm_npt.o := -include $(src)/npt_types.h\n")
    r = _run(["make", "-C", str(kdir), f"M={mod}", "W=1", "modules"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning:" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert (mod / "nptprobe.ko").is_file()


def test_files_carry_the_license_line():
    files = sorted(p for p in NPT.rglob("*") if p.suffix in (".c", ".h"))
    assert {p.name for p in files} >= {"nvmm_npt.c", "nvmm_npt.h", "npt_test.c"}
    for p in files:         # kernel style: the SPDX tag alone on line 1, // in .c files, /* */ in headers
        lines = p.read_text().splitlines()
        tag = "SPDX-License-Identifier: BSD-2-Clause"
        assert lines[0] == (f"// {tag}" if p.suffix == ".c" else f"/* {tag} */"), p
        assert lines[2].startswith(" * nvmm-port: portable nested page tables for NVMM ports"), p
    assert Path(__file__).read_text().splitlines()[0] == f"# {LICENSE}"
