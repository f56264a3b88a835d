"""Compiler errors in spec-provided code name the spec file and line the porter edits: the
generated C frames every piece of spec text with #line directives (nvmm_port/targets/origins.py),
and gen.py build reports the first error."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, TOYOS, reference_cache

from nvmm_port.analysis import preprocessor as cpp
from nvmm_port.cli import main
from nvmm_port.run.build import default_kdir
from nvmm_port.run.diagnostics import diagnose
from nvmm_port.targets import origins

needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")


@pytest.fixture()
def proj(mini_project):
    return mini_project


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().split("\n"), 1) if needle in ln)


def _compile(out: Path, rel: str) -> str:
    """gcc -fsyntax-only of a generated toyos file, as test_generate compiles them; its stderr."""
    cmd = ["gcc", "-ffreestanding", "-nostdinc", "-D_KERNEL", "-D__toyos__", "-Icompat", "-Idriver", "-Idriver/x86",
           "-Wall", "-Werror=implicit-function-declaration", "-std=gnu11", "-fsyntax-only", rel]
    r = subprocess.run(cmd, cwd=out, capture_output=True, text=True, check=False)
    assert r.returncode != 0, f"{rel} compiled: the edit broke nothing"
    return r.stderr


# ---------------------------------------------------------------------------
# #line directives in generated files


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def _fragment(spec: Path, rel: str, text: str) -> None:
    (spec / rel).parent.mkdir(parents=True, exist_ok=True)
    (spec / rel).write_text(text)


# Each case: edit a copy of toyos so that one kind of spec text holds a C error; the generated file
# that compiles it; where the first error must be: (spec file, text on the line) or, for an error in
# upstream's code after a fragment, ("=" generated file, text on its line).
BAD_INPUTS = {
    "out-of-line primitive fragment": (
        lambda d: _replace(d / "primitives/os_vmspace_fault.c", "return toy_gspace_fill(vm, gpa, prot);",
                           "return toy_gspace_fill(vm, gpa, prot +);"),
        "driver/nvmm_toyos.c", ("primitives/os_vmspace_fault.c", "prot +)")),
    "glue source": (
        lambda d: (_replace(d / "target.toml", "headers = [", 'files = ["glue/extra.c"]\nheaders = ['),
                   _fragment(d, "glue/extra.c", "\n/* extra glue */\nint\ntoy_extra(void)\n{\n\treturn 1 +;\n}\n")),
        "driver/nvmm_toyos.c", ("glue/extra.c", "return 1 +;")),
    "variation point code": (
        lambda d: _replace(d / "target.toml", 'code = "\\ttoy_fpu_leave();"', 'code = "\\ttoy_fpu_leave(1 +);"'),
        "driver/x86/nvmm_x86_vmx.c", ("target.toml", "toy_fpu_leave(1 +)")),
    "variation point file": (
        lambda d: (_replace(d / "target.toml", 'code = "\\ttoy_fpu_leave();"', 'file = "vp/leave.c"'),
                   _fragment(d, "vp/leave.c", "\t/* toyos: leave the guest's FPU */\n\ttoy_fpu_leave(1 +);\n")),
        "driver/x86/nvmm_x86_vmx.c", ("vp/leave.c", "toy_fpu_leave(1 +)")),
    "macro in nvmm_os.h": (
        lambda d: _replace(d / "target.toml", 'body = "toy_mutex_lock(lock)"', 'body = "toy_mutex_lock(lock +)"'),
        "driver/nvmm.c", ("target.toml", "toy_mutex_lock(lock +)")),
    "typedef in nvmm_os.h": (
        lambda d: _replace(d / "target.toml", 'type = "struct toy_mutex"', 'type = "struct toy_mutex +"'),
        "driver/nvmm.c", ("target.toml", "struct toy_mutex +")),
    "static inline in nvmm_os.h": (
        lambda d: _replace(d / "target.toml", 'body = "\\ttoy_run_on_all_cpus(func, arg);"',
                           'body = "\\ttoy_run_on_all_cpus(func, arg +);"'),
        "driver/nvmm.c", ("target.toml", "toy_run_on_all_cpus(func, arg +)")),
    "body of a primitive defined for every OS": (
        lambda d: _replace(d / "target.toml", 'body = "\\treturn toy_thread_should_yield();"',
                           'body = "\\treturn toy_thread_should_yield(;"'),
        "driver/nvmm.c", ("target.toml", "toy_thread_should_yield(;")),
    "upstream code after a fragment": (     # the fragment is fine; upstream's next line no longer is
        lambda d: _replace(d / "target.toml", 'code = "\\ttoy_fpu_leave();"',
                           'code = "\\ttoy_fpu_leave();\\n#undef NVMM_EXIT_IO"'),
        "driver/x86/nvmm_x86_vmx.c", ("=driver/x86/nvmm_x86_vmx.c", "exitinfo->reason =")),
}


@needs_gcc
@pytest.mark.parametrize("flags", [[], ["--flatten"]], ids=["arms", "flat"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_error_in_spec_text_names_the_spec_file_and_line(proj, tmp_path, case, flags):
    edit, rel, (file, text) = BAD_INPUTS[case]
    spec = tmp_path / "toyos"
    shutil.copytree(TOYOS, spec)
    edit(spec)
    out = tmp_path / "out"
    assert main(["--project", str(proj), "generate", "--target", str(spec), "--out", str(out), *flags]) == 0
    d = diagnose(_compile(out, rel), tree=out, cwd=out)
    assert d.first is not None and d.errors >= 1
    if file.startswith("="):        # the generated file itself, at its own line
        want = f"{file[1:]}:{_line_of(out / file[1:], text)}"
    else:                           # the spec as the generated file names it: <spec dir name>/<file>
        want = f"toyos/{file}:{_line_of(spec / file, text)}"
    assert d.first.where == want, "\n".join(d.first.context)


def _check_directives(rel: str, text: str, spec_dirs: dict[str, Path]) -> int:
    """Every #line back to the file names the line after it; every #line into the spec names a line
    of the spec that holds the code after it.  Returns how many directives there were."""
    lines = text.split("\n")
    n = 0
    for i, ln in enumerate(lines):
        m = re.match(r'^#line (\d+) "([^"]+)"$', ln)
        if not m:
            continue
        n += 1
        num, name = int(m.group(1)), m.group(2)
        if name == rel:
            assert num == i + 2, f"{rel}:{i + 1}: {ln}"
            continue
        top, _, inner = name.partition("/")
        if name.startswith("shim/"):
            top, _, inner = inner.partition("/")
        src = (spec_dirs[top] / inner).read_text().split("\n")
        nxt, target = lines[i + 1], src[num - 1]
        if inner != "target.toml":          # a fragment file: the same line, verbatim
            assert nxt == target, f"{rel}:{i + 2}: {nxt!r} is not {name}:{num}: {target!r}"
            continue
        if nxt.startswith("static inline"):
            continue        # the head of an inline: its body has its own exact line
        # a string of target.toml: the words of the spec's part of the line are on that line
        part = nxt.split("\t")[-1] if nxt.startswith("#define") else \
            nxt[len("typedef "):nxt.rindex("\t")] if nxt.startswith("typedef ") and "\t" in nxt else nxt
        words = re.findall(r"\w+", part)
        assert words and all(w in target for w in words), f"{rel}:{i + 2}: {nxt!r} is not at {name}:{num}: {target!r}"
    return n


@pytest.mark.parametrize("flags", [[], ["--flatten"]], ids=["arms", "flat"])
def test_line_directives_point_at_the_right_lines(proj, tmp_path, flags):
    out = tmp_path / "out"
    assert main(["--project", str(proj), "generate", "--target", str(TOYOS), "--out", str(out), *flags]) == 0
    total = 0
    up = proj / "upstream" / "cache" / "mini"
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if f.suffix in (".c", ".h", ".S"):
            text = f.read_text()
            total += _check_directives(rel, text, {"toyos": TOYOS})
            if (up / rel).is_file() and not flags:
                # only the target's arms carry them: what another OS compiles has none
                env = {"__toyos__": None, "__NetBSD__": 1, "__DragonFly__": None}
                assert "#line" not in cpp.unifdef(text, env, rel), rel
    assert total > 20


def test_line_directives_in_the_linux_tree(tmp_path):
    """shim/linux: names relative to the project, every number right, upstream lines untouched."""
    if reference_cache() is None:
        pytest.skip("needs the synced reference upstream")
    out = tmp_path / "linux"
    assert main(["--project", str(ROOT), "generate", "--target", "linux", "--out", str(out)]) == 0
    glue = (out / "driver" / "nvmm_linux.c").read_text()
    assert '#line 2 "shim/linux/glue/core.c"' in glue     # line 1 is its SPDX tag, the glue's own first line
    vmx = (out / "driver/x86/nvmm_x86_vmx.c").read_text()
    code_line = _line_of(ROOT / "shim/linux/target.toml", "/* INVEPT ran: acknowledge the flush. */") - 1
    assert f'#line {code_line} "shim/linux/target.toml"' in vmx
    n = 0
    for f in sorted(out.rglob("*")):
        if f.suffix in (".c", ".h", ".S"):
            n += _check_directives(f.relative_to(out).as_posix(), f.read_text(), {"linux": ROOT / "shim" / "linux"})
    assert n > 50


def test_renumber_drops_back_directives_that_number_nothing():
    text = "\n".join(["a", origins.directive("s/t.toml", 3), "x", origins.back("f.h"), "", "",
                      origins.directive("s/t.toml", 9), "y", origins.back("f.h"), "b"])
    assert origins.renumber(text, "f.h").split("\n") == [
        "a", '#line 3 "s/t.toml"', "x", "", "", '#line 9 "s/t.toml"', "y", '#line 9 "f.h"', "b"]


def test_spec_origins_find_values():
    spec = type("S", (), {"dir": TOYOS, "toml_path": TOYOS / "target.toml"})()
    where = origins.SpecOrigins(spec, None)
    assert where.value(("primitives", "os_ipi_broadcast"), "body") == \
        origins.Origin("toyos/target.toml", _line_of(TOYOS / "target.toml", "toy_run_on_all_cpus"))
    vid = "driver/x86/nvmm_x86_vmx.c:vmx_vcpu_run#2"
    assert where.value(("variation_points", vid), "code").line == _line_of(TOYOS / "target.toml", "toy_fpu_leave")
    assert where.value(("variation_points", vid), "same_as") is None
    assert where.table("variation_points", vid).line == _line_of(TOYOS / "target.toml", vid)
    inside = origins.SpecOrigins(spec, TOYOS.parent.parent.parent.parent)
    assert inside.toml == "tests/fixtures/targets/toyos/target.toml"


KDIR = default_kdir()


@pytest.mark.skipif(not (KDIR / "Makefile").is_file(), reason="no kernel build directory")
@pytest.mark.parametrize("rel,old,new", [
    ("glue/memory.c", "\treturn vzalloc(size);", "\tretrun vzalloc(size);"),
    ("target.toml", 'body = "nvmm_linux_mtx_lock(lock)"', 'body = "nvmm_linux_mtx_lck(lock)"'),
], ids=["glue source", "macro in nvmm_os.h"])
def test_kbuild_error_names_the_fragment(tmp_path, capsys, rel, old, new):
    """gen.py build of a copy of shim/linux with one broken fragment: the error names its line."""
    if reference_cache() is None:
        pytest.skip("needs the synced reference upstream")
    shim = tmp_path / "shim"
    shutil.copytree(ROOT / "shim" / "linux", shim / "linux")
    shutil.copytree(ROOT / "shim" / "common", shim / "common")
    _replace(shim / "linux" / rel, old, new)
    line = _line_of(shim / "linux" / rel, new.strip())
    capsys.readouterr()
    assert main(["--project", str(ROOT), "build", "--target", str(shim / "linux"), "--out", str(tmp_path / "out"),
                 "--jobs", str(os.cpu_count() or 2)]) == 2
    err = capsys.readouterr().err
    first = next(ln for ln in err.splitlines() if ln.startswith("nvmm-port: error:"))
    assert "the kernel module did not build" in first and f": linux/{rel}:{line}: " in first, err
    assert re.search(r"; (1 error|the first of \d+ errors): ", first), err
