"""The Linux target (shim/linux) on the real upstream: spec completeness, what the generator
changes in upstream's files, the two worlds, and the full build (nvmm.ko with both backends,
libnvmm, upstream's test programs).  Skipped without the synced cache; the build tests also
without kernel headers (.ci/run installs linux-headers-amd64)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, reference_cache, upstream_changes_outside_variation_points

from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.run.build import default_kdir, is_static_elf, kbuild, read_modinfo, userland
from nvmm_port.targets.generate import render_tree
from nvmm_port.targets.spec import check_spec, load_spec
from nvmm_port.targets.writer import write_tree

KDIR = default_kdir()
needs_headers = pytest.mark.skipif(not (KDIR / "Makefile").is_file(),
                                   reason="no kernel build directory: apt-get install linux-headers-amd64")


@pytest.fixture(scope="module")
def linux_tree(tmp_path_factory, reference_surface):
    project = Project.find(ROOT)
    spec = load_spec(ROOT / "shim" / "linux")
    check_spec(spec, reference_surface)
    tree = render_tree(project, spec, reference_surface, reference_cache(), False)
    out = tmp_path_factory.mktemp("linux") / "linux"
    write_tree(tree, out)
    return spec, reference_surface, tree, out


@pytest.fixture(scope="module")
def linux_build(linux_tree):
    if not (KDIR / "Makefile").is_file():
        pytest.skip("no kernel build directory: apt-get install linux-headers-amd64")
    spec, surface, tree, out = linux_tree
    res = kbuild(out, KDIR, "nvmm", os.cpu_count() or 2)
    return res, out


def test_spec_is_complete_and_names_only_upstream_things(reference_surface):
    spec = load_spec(ROOT / "shim" / "linux")
    check_spec(spec, reference_surface)         # raises on TODOs, unknown names, missing entries
    assert spec.todos() == {}
    assert {p.name for p in reference_surface.primitives} <= set(spec.primitives)


def test_upstream_files_change_only_at_variation_points(linux_tree):
    """Every line the generator changes in an upstream file lies in one of its variation points."""
    spec, surface, tree, _ = linux_tree
    changed_files, outside = upstream_changes_outside_variation_points(surface, tree, reference_cache())
    assert outside == []
    assert changed_files >= 8          # nvmm_os.h, nvmm.h, nvmm_internal.h, nvmm_ioctl.h, the x86 files


def test_glue_world_and_upstream_world_stay_apart(linux_tree):
    _, surface, tree, out = linux_tree
    glue = tree.files["driver/nvmm_linux.c"].decode()
    assert "#include <linux/mutex.h>" in glue and "compat" not in glue
    for rel in surface.upstream.files:
        if rel.startswith("driver/"):
            text = tree.files[rel].decode(errors="surrogateescape")
            assert "<linux/" not in text, rel          # upstream's files never see Linux headers
    # no compat header is generated for a Linux header path (only upstream's includes get them)
    assert not [p for p in tree.files if p.startswith(("compat/linux/", "compat/asm/"))]
    kbuild_text = (out / "Kbuild").read_text()
    assert "CFLAGS_driver/nvmm_linux.o := $(NVMM_GLUE_FLAGS)" in kbuild_text
    assert "CFLAGS_driver/nvmm_linux_bridge.o := $(NVMM_UPSTREAM_FLAGS)" in kbuild_text
    assert "CFLAGS_driver/nvmm_npt.o := $(NVMM_GLUE_FLAGS) -DNPT_OS_TYPES_INCLUDED" in kbuild_text
    assert (out / "dkms.conf").is_file() and (out / "Makefile.userland").is_file()


def test_shared_header_is_plain_c_in_both_worlds(tmp_path):
    """nvmm_linux.h compiles alone with no headers at all, as upstream's world and as the glue's."""
    header = ROOT / "shim" / "linux" / "glue" / "nvmm_linux.h"
    for world in (["-D_KERNEL"], []):
        src = tmp_path / "t.c"
        src.write_text('#include "nvmm_linux.h"\nint f(struct vmspace *vm) { return (int)nvmm_linux_vmspace_gen(vm); }\n')
        r = subprocess.run(["gcc", "-std=gnu11", "-ffreestanding", "-nostdinc", "-Wall", "-Werror", "-c",
                            "-DCONFIG_NR_CPUS=64", f"-I{header.parent}", *world, str(src), "-o", str(tmp_path / "t.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_userland_compat_is_per_program(linux_tree):
    _, _, tree, _ = linux_tree
    lib = {p for p in tree.files if p.startswith("compat-libnvmm/")}
    tests = {p for p in tree.files if p.startswith("compat-tests/")}
    assert lib and tests
    # the tests' page-table bits come from <machine/pte.h>; libnvmm defines its own and gets none
    assert "compat-tests/machine/pte.h" in tests
    assert "#define PTE_P" in tree.files["compat-tests/machine/pte.h"].decode()
    assert not any("#define PTE_P" in tree.files[p].decode() for p in lib)
    # ioctl encodings come from the C library in userland (Linux's encoding, as the driver's)
    ioccom = tree.files.get("compat-libnvmm/sys/ioccom.h", b"").decode()
    assert "#define _IOW" not in ioccom


@needs_headers
def test_module_builds_with_both_backends_and_no_undefined_symbols(linux_build):
    res, out = linux_build
    assert res.undefined == []
    assert res.module is not None and res.module.name == "nvmm.ko"
    info = read_modinfo(res.module)
    assert info["license"] == ["Dual BSD/GPL"]
    assert info["version"] == [load_spec(ROOT / "shim" / "linux").build.version]
    assert "NVMM" in info["description"][0]
    assert [p.split(":")[0] for p in info["parm"]] == ["group", "nmi_nudges"]
    syms = subprocess.run(["nm", str(res.module)], capture_output=True, text=True, check=True).stdout.split()
    for name in ("nvmm_x86_vmx", "nvmm_x86_svm", "vmx_vmlaunch", "vmx_vmresume", "svm_vmrun", "npt_fault"):
        assert name in syms, name
    # warnings in the glue are errors (the build would have failed); upstream's are reported per file
    assert not [f for f in res.warnings if "nvmm_linux" in f or "nvmm_npt" in f]


@needs_headers
def test_userland_builds_static_programs(linux_build):
    _, out = linux_build
    res = userland(out, os.cpu_count() or 2)
    assert set(res.programs) == {"h_io_assist", "h_mem_assist"}
    assert all(is_static_elf(p) for p in res.programs.values())
    assert res.library is not None
    syms = subprocess.run(["nm", str(res.library)], capture_output=True, text=True, check=True).stdout
    assert " T nvmm_vcpu_run" in syms and " T nvmm_assist_io" in syms


def test_static_elf_check_tells_dynamic_from_static(tmp_path):
    assert not is_static_elf(Path(sys.executable).resolve())
    src = tmp_path / "s.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / "s"
    r = subprocess.run(["gcc", "-static", "-o", str(exe), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("no static C library here")
    assert is_static_elf(exe)


def test_common_names_a_missing_directory(tmp_path):
    import shutil
    d = tmp_path / "shim" / "linux"
    shutil.copytree(ROOT / "shim" / "linux", d)
    toml = d / "target.toml"
    toml.write_text(toml.read_text().replace('common = ["npt"]', 'common = ["no-such-thing"]'))
    with pytest.raises(PortError) as exc:
        load_spec(d)
    assert "no-such-thing" in str(exc.value) and "shim/common" in str(exc.value)
