"""The target spec's one validation stage (issue 10, problems 6, 8, 9, 10, 11 and the schema).

Each bad input is a copy of the toyos fixture with one edit; every case checks the message and
that it carries the file and line to fix.  ``surface`` and ``generate`` must agree on each.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, TOYOS

from nvmm_port.cli import main
from nvmm_port.errors import DiagnosticsError
from nvmm_port.targets import spec as specmod
from nvmm_port.targets.spec import (
    SCHEMA,
    canonical_type,
    default_macro,
    load_spec,
    macro_problem,
    schema_keys,
    target_name_problem,
)

DOC = ROOT / "docs" / "target-spec.md"


@pytest.fixture()
def proj(mini_project):
    return mini_project


def toyos_copy(tmp_path: Path, edit=None, files: dict[str, str] | None = None) -> Path:
    d = tmp_path / "toyos"
    shutil.copytree(TOYOS, d)
    toml = d / "target.toml"
    if edit is not None:
        toml.write_text(edit(toml.read_text()))
    for rel, text in (files or {}).items():
        (d / rel).write_text(text)
    return d


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """The line of the nth line of ``path`` holding ``needle``."""
    hits = [i for i, ln in enumerate(path.read_text().split("\n"), 1) if needle in ln]
    return hits[nth - 1]


def generate_errors(proj, spec_dir: Path, tmp_path: Path, capsys) -> tuple[str, list[str]]:
    """generate's exit-2 output: (first line, detail lines without their indent)."""
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["--project", str(proj), "generate", "--target", str(spec_dir), "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    if len(err) == 1:
        # a single error is the one line itself: file:line: message (fix)
        one = err[0].removeprefix("nvmm-port: error: ")
        return "1 error in the spec: " + one, [one]
    return err[0], [ln[2:] for ln in err[1:]]


def surface_json(proj, spec_dir: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["--project", str(proj), "surface", "--target", str(spec_dir), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def at(path: Path, line: int) -> str:
    """How a diagnostic starts: the file (as shown from here) and line."""
    return f"{path.name}:{line}: "


# --------------------------------------------------------------------------- problem 6: prototypes, arities

BAD_CREATE = "int\nos_vmspace_create(char *lo, vaddr_t hi, int extra)\n{\n\treturn 0;\n}\n"


def test_out_of_line_fragment_prototype_is_checked(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, files={"primitives/os_vmspace_create.c": "/* toyos */\n\n" + BAD_CREATE})
    first, details = generate_errors(proj, d, tmp_path, capsys)
    assert "1 error in the spec" in first
    (line,) = details
    assert f"{d}/primitives/os_vmspace_create.c:3: " in line, line      # the fragment, where its definition starts
    assert "int os_vmspace_create(char *lo, vaddr_t hi, int extra) does not match the contract's " \
           "os_vmspace_t *os_vmspace_create(vaddr_t, vaddr_t)" in line
    assert "returns int, not os_vmspace_t *" in line and "takes 3 parameters, not 2" in line
    assert "nvmm_os.h:110" in line                       # where upstream declares it


def test_fragment_parameter_type_is_checked(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, files={"primitives/os_vmspace_fault.c":
                                    "int\nos_vmspace_fault(os_vmspace_t *vm, vaddr_t gpa, int prot)\n"
                                    "{\n\treturn 0;\n}\n"})
    _, details = generate_errors(proj, d, tmp_path, capsys)
    (line,) = details
    assert re.search(r"primitives/os_vmspace_fault\.c:1: ", line), line
    assert "parameter 3 (prot) is int, not vm_prot_t" in line and "returns" not in line.split(": ", 2)[2]


def test_fragment_prototype_after_typedefs_and_spelling_is_accepted(proj, tmp_path, capsys):
    # os_vmspace_t is `struct toy_gspace` in toyos; `signed int` is `int`; names and top-level const do not count
    d = toyos_copy(tmp_path, files={
        "primitives/os_vmspace_create.c": "struct toy_gspace *\nos_vmspace_create(const vaddr_t a, vaddr_t b)\n"
                                          "{\n\treturn toy_gspace_new(a, b);\n}\n",
        "primitives/os_vmspace_fault.c": "signed int\n"
                                         "os_vmspace_fault(struct toy_gspace *vm, vaddr_t gpa, vm_prot_t p)\n"
                                         "{\n\treturn toy_gspace_fill(vm, gpa, p);\n}\n"})
    capsys.readouterr()
    assert main(["--project", str(proj), "generate", "--target", str(d), "--out", str(tmp_path / "out")]) == 0


def test_function_like_macro_arity_is_checked(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, lambda t: t.replace('params = ["ptr", "size"]\nbody = "toy_free(ptr, size)"',
                                                 'params = ["ptr"]\nbody = "toy_free(ptr, 0)"'))
    _, details = generate_errors(proj, d, tmp_path, capsys)
    (line,) = details
    assert at(d / "target.toml", line_of(d / "target.toml", 'params = ["ptr"]')) in line
    assert "[primitives.os_mem_free] is a function-like macro of 1 parameter (ptr), but upstream's os_mem_free " \
           "takes 2" in line and "nvmm_os.h:53, 71" in line


def test_static_inline_prototype_is_checked(proj, tmp_path, capsys):
    # upstream's NetBSD and DragonFly arms differ on the callback's type: only the count is common
    d = toyos_copy(tmp_path, lambda t: t.replace('params = ["void (*func)(void *)", "void *arg"]',
                                                 'params = ["void (*func)(void *)", "void *arg", "int wait"]'))
    _, details = generate_errors(proj, d, tmp_path, capsys)
    (line,) = details
    assert "void os_ipi_broadcast(void (*func)(void *), void *arg, int wait) does not match the contract's " \
           "void os_ipi_broadcast(void (*)(void *), void *)" in line
    assert f"target.toml:{line_of(d / 'target.toml', 'int wait')}: " in line
    assert "takes 3 parameters, not 2" in line and "static inline at" in line


def test_kind_must_fit_upstream(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, lambda t: t.replace('[primitives.os_kernel_map]\nkind = "object-like macro"\n'
                                                 'body = "toy_kernel_space()"',
                                                 '[primitives.os_kernel_map]\nkind = "typedef"\ntype = "int"'))
    _, details = generate_errors(proj, d, tmp_path, capsys)
    (line,) = details
    assert 'kind = "typedef", but os_kernel_map is not a type upstream (object-like macro at' in line


def test_canonical_types():
    assert canonical_type("unsigned") == canonical_type("unsigned int") == canonical_type("int unsigned")
    assert canonical_type("long int") == canonical_type("signed long") == "long"
    assert canonical_type("const int") == "int"                          # top-level: not part of a prototype
    assert canonical_type("const char *") != canonical_type("char *")    # the pointee's: part of it
    assert canonical_type("char *const") == canonical_type("char *")
    assert canonical_type("os_vmspace_t *", {"os_vmspace_t": "struct vmspace"}) == "struct vmspace *"
    assert canonical_type("bool") == canonical_type("_Bool")


# --------------------------------------------------------------------------- problem 8: surface = generate

BAD_INPUTS = [
    pytest.param(lambda t: t + '\n[primitives.os_nonexistent]\nkind = "object-like macro"\nbody = "1"\n',
                 "[primitives.os_nonexistent]", "'os_nonexistent' is not a primitive of mini's contract",
                 id="unknown-primitive"),
    pytest.param(lambda t: t + '\n[variation_points."driver/nvmm.c:gone#1"]\nomit = true\n',
                 '[variation_points."driver/nvmm.c:gone#1"]', "no such variation point in mini", id="unknown-vp"),
    pytest.param(lambda t: t.replace('same_as = "netbsd"', 'same_as = "plan9"', 1), 'same_as = "plan9"',
                 "upstream mini knows only netbsd, dragonfly", id="unknown-os"),
    pytest.param(lambda t: t.replace('base = "netbsd"', 'base = "plan9"'), 'base = "plan9"',
                 "[target] base = 'plan9'", id="unknown-base"),
    pytest.param(lambda t: t.replace('system = "bsdmake"', 'system = "bsdmake"\nflavor = "x"'), 'flavor = "x"',
                 "[build] has unknown key 'flavor' (known keys: system, module, version, cflags,", id="unknown-key"),
]


@pytest.mark.parametrize("edit,needle,expect", BAD_INPUTS)
def test_surface_and_generate_agree(proj, tmp_path, capsys, edit, needle, expect):
    d = toyos_copy(tmp_path, edit)
    line = line_of(d / "target.toml", needle)
    code, rep = surface_json(proj, d, capsys)
    assert code == 1 and rep["lacking"] == []
    assert len(rep["errors"]) == 1 and at(d / "target.toml", line) in rep["errors"][0] and expect in rep["errors"][0]
    first, details = generate_errors(proj, d, tmp_path, capsys)
    assert "1 error in the spec" in first and details == rep["errors"]
    capsys.readouterr()
    assert main(["--project", str(proj), "surface", "--target", str(d)]) == 1
    text = capsys.readouterr().out
    assert "complete" not in text.splitlines()[-1] and expect in text


def test_complete_spec_is_complete_for_both(proj, tmp_path, capsys):
    code, rep = surface_json(proj, TOYOS, capsys)
    assert code == 0 and rep["errors"] == [] and rep["lacking"] == [] and rep["compat_exact"]
    assert main(["--project", str(proj), "surface", "--target", str(TOYOS)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "  complete"


def test_every_error_in_one_run(proj, tmp_path, capsys):
    """Errors of loading (schema, fragments) and of the check against upstream, all in one run."""
    def edit(t: str) -> str:
        t = t.replace('system = "bsdmake"', 'system = "bsdmake"\nuserland = "yes"')
        t = t.replace('file = "primitives/os_pagemem_free.c"', 'file = "primitives/gone.c"')
        t = t.replace('params = ["ptr", "size"]\nbody = "toy_free(ptr, size)"',
                      'params = ["ptr"]\nbody = "toy_free(ptr)"')
        return t + '\n[primitives.os_nonexistent]\nkind = "object-like macro"\nbody = "1"\n\n[devices]\nx = 1\n'
    d = toyos_copy(tmp_path, edit, files={"primitives/os_vmspace_create.c": BAD_CREATE})
    toml = d / "target.toml"
    first, details = generate_errors(proj, d, tmp_path, capsys)
    assert "6 errors in the spec" in first and "target.toml" in first
    want = [(toml, line_of(toml, 'userland = "yes"'), "[build] userland must be a boolean, not a string"),
            (toml, line_of(toml, 'params = ["ptr"]'), "function-like macro of 1 parameter"),
            (toml, line_of(toml, "gone.c"), "names 'primitives/gone.c', which does not exist"),
            (toml, line_of(toml, "[primitives.os_nonexistent]"), "'os_nonexistent' is not a primitive"),
            (toml, line_of(toml, "[devices]"), "unknown table [devices]"),
            (d / "primitives/os_vmspace_create.c", 1, "does not match the contract's")]
    assert len(details) == len(want)
    for (path, line, text), got in zip(want, details, strict=True):
        assert f"{path.name}:{line}: " in got and text in got, (path, line, text, got)
    code, rep = surface_json(proj, d, capsys)
    assert code == 1 and rep["errors"] == details


def test_incomplete_and_wrong_together(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, lambda t: t.replace('[primitives.os_printf]\nkind = "object-like macro"\nbody = "toy_log"',
                                                 '[primitives.os_printf]\ntodo = "later"\nbogus = 1'))
    first, details = generate_errors(proj, d, tmp_path, capsys)
    assert "1 error in the spec, and it is incomplete (1 primitives TODO)" in first
    toml = d / "target.toml"
    assert details[0].startswith(f"{toml}:{line_of(toml, 'bogus = 1')}: [primitives.os_printf] has unknown key")
    todo_line = line_of(toml, 'todo = "later"')
    assert details[1:] == ["primitives still TODO:", f"  {toml}:{todo_line}: os_printf: later"]


def test_missing_entries_name_upstream_and_where_to_add(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, lambda t: t.replace('[primitives.OS_MAXCPUS]\nkind = "object-like macro"\n'
                                                 'body = "TOY_MAX_CPUS"\n', ''))
    first, details = generate_errors(proj, d, tmp_path, capsys)
    assert "the spec is incomplete (1 primitives with no entry)" in first
    assert details[0] == "primitives with no entry:"
    assert re.match(r"  \S*target\.toml:\d+: OS_MAXCPUS \(object-like macro, driver/nvmm_os\.h:\d+\) "
                    r"\(add \[primitives\.OS_MAXCPUS\]\)$", details[1]), details[1]


# --------------------------------------------------------------------------- problem 9: file:line everywhere

def test_load_errors_carry_lines(tmp_path):
    d = toyos_copy(tmp_path, lambda t: t.replace('[glue]\n',
                                                 '[glue]\nfiles = [\n  "glue/a.c",\n  "glue/missing.c",\n]\n')
                   .replace('body = "toy_log"', 'body = ["toy_log"]'),
                   files={"glue/a.c": "/* a */\n"})
    toml = d / "target.toml"
    with pytest.raises(DiagnosticsError) as exc:
        load_spec(d)
    got = [(Path(x.file).name, x.line, x.message) for x in exc.value.diagnostics]
    assert got == [("target.toml", line_of(toml, '"glue/missing.c"'),
                    "[glue] files names 'glue/missing.c', which does not exist"),
                   ("target.toml", line_of(toml, 'body = ["toy_log"]'),
                    "[primitives.os_printf] body must be a string, not an array")]
    assert "2 errors in the spec" in exc.value.one_line()
    assert all(re.match(r"\S+:\d+: ", ln) for ln in exc.value.details)


def test_malformed_toml_names_its_line(tmp_path):
    d = toyos_copy(tmp_path, lambda t: t.replace('[primitives.os_printf]', '[primitives.os_printf'))
    with pytest.raises(DiagnosticsError) as exc:
        load_spec(d)
    (diag,) = exc.value.diagnostics
    assert diag.line == line_of(d / "target.toml", "[primitives.os_printf") and "malformed TOML" in diag.message


def test_fragment_naming_another_function_points_into_the_fragment(tmp_path):
    d = toyos_copy(tmp_path, files={"primitives/os_vmspace_fault.c":
                                    "/* x */\n\nstatic int helper(void) { return 0; }\n"
                                    "\nint\nos_vmspace_oops(void)\n{\n\treturn helper();\n}\n"})
    with pytest.raises(DiagnosticsError) as exc:
        load_spec(d)
    (diag,) = exc.value.diagnostics
    assert diag.file.endswith("primitives/os_vmspace_fault.c") and diag.line == 5
    assert "defines os_vmspace_oops, not os_vmspace_fault" in diag.message


# --------------------------------------------------------------------------- problem 10: names and macros

def test_new_target_derives_a_c_macro(proj, tmp_path, capsys):
    spec = tmp_path / "my-os"
    assert main(["--project", str(proj), "new-target", "my-os", "-o", str(spec)]) == 0
    text = (spec / "target.toml").read_text()
    assert 'macro = "__my_os__"' in text and "__my-os__" not in text
    assert load_spec(spec).macro == "__my_os__"
    assert load_spec(spec).os == "my_os"          # the glue file is driver/nvmm_my_os.c, a C-friendly name
    assert default_macro("my-os") == "__my_os__" and macro_problem(default_macro("a.b-c")) is None


@pytest.mark.parametrize("args,expect", [
    (["new-target", "my os"], "'my os' is not a usable target name: use letters, digits, - and _"),
    (["new-target", "-x"], None),
    (["new-target", "ok", "--macro", "__my-os__"], "'__my-os__' is not a C macro name: use a C identifier"),
])
def test_new_target_refuses_bad_names(proj, tmp_path, capsys, args, expect):
    capsys.readouterr()
    try:
        code = main(["--project", str(proj), *args[:2], "-o", str(tmp_path / "s"), *args[2:]])
    except SystemExit as exc:         # argparse: "-x" looks like an option
        code = exc.code
    assert code == 2 and not (tmp_path / "s").exists()
    if expect:
        assert expect in capsys.readouterr().err


def test_spec_macro_and_name_are_validated(tmp_path):
    d = toyos_copy(tmp_path, lambda t: t.replace('macro = "__toyos__"', 'macro = "__toy-os__"')
                   .replace('name = "toyos"', 'name = "toy os"').replace('system = "bsdmake"', 'system = "bsdmake"\n'
                                                                         'module = "nvmm/x"'))
    with pytest.raises(DiagnosticsError) as exc:
        load_spec(d)
    msgs = [(x.line, str(x)) for x in exc.value.diagnostics]
    toml = d / "target.toml"
    assert msgs[0][0] == line_of(toml, 'name = "toy os"') and "'toy os' is not a usable target name" in msgs[0][1]
    assert msgs[1][0] == line_of(toml, 'macro = "__toy-os__"')
    assert "'__toy-os__' is not a C macro name" in msgs[1][1] and 'write macro = "__toy_os__"' in msgs[1][1]
    assert msgs[2][0] == line_of(toml, 'module = "nvmm/x"') and "not a usable module name" in msgs[2][1]
    assert target_name_problem("linux") is None and macro_problem("int") is not None


def test_macro_params_and_includes_must_be_c(tmp_path):
    d = toyos_copy(tmp_path, lambda t: t.replace('params = ["lock"]\nbody = "toy_mutex_init(lock)"',
                                                 'params = ["the lock"]\nbody = "toy_mutex_init(lock)"')
                   .replace("includes = ['\"nvmm.h\"',", "includes = ['nvmm.h',"))
    with pytest.raises(DiagnosticsError) as exc:
        load_spec(d)
    text = "\n".join(exc.value.details)
    assert "[glue] includes has 'nvmm.h', which #include cannot take" in text
    assert "[primitives.os_mtx_init] params has 'the lock', which is not a macro parameter name" in text


# --------------------------------------------------------------------------- problem 11: [provides]

def test_missing_provides_name_the_spec_one_per_line(proj, tmp_path, capsys):
    d = toyos_copy(tmp_path, lambda t: t.replace('names = ["copyin", "curproc", "panic"]', 'names = ["panic"]'))
    first, details = generate_errors(proj, d, tmp_path, capsys)
    toml = d / "target.toml"
    assert "target.toml: 2 names the kernel build needs have no definition" in first and "shim/bsd" not in first
    line = line_of(toml, 'names = ["panic"]')
    assert len(details) == 2
    assert details[0].startswith(f"{toml}:{line}: copyin (1 use: driver/nvmm.c) is not catalog business")
    assert details[1].startswith(f"{toml}:{line}: curproc (2 uses: driver/nvmm.c)")
    assert all("list it in [provides] names" in ln and len(ln) < 400 for ln in details)
    code, rep = surface_json(proj, d, capsys)
    assert code == 1 and rep["errors"] == details


# --------------------------------------------------------------------------- the schema and its reference

def test_schema_is_typed_with_defaults_in_one_place():
    spec = load_spec(TOYOS)
    assert spec.build.system == "bsdmake" and spec.build.module == "nvmm" and spec.build.userland is False
    assert spec.build.dkms is True and spec.compat.emit is True and spec.compat.user_provides == []
    assert spec.glue.includes == ['"nvmm.h"', '"nvmm_internal.h"'] and spec.provides == {"copyin", "curproc", "panic"}
    assert not hasattr(spec, "raw")
    for cls in SCHEMA.values():
        for key, f in schema_keys(cls).items():
            assert f.metadata["doc"] and f.metadata["toml"] in (specmod.STRING, specmod.BOOLEAN, specmod.STRINGS), key


def test_no_raw_dict_access_to_the_spec():
    """Consumers read typed fields: no spec.raw, no spec.build.get(...), spec.glue.get(...)."""
    bad = []
    for path in sorted((ROOT / "nvmm_port").rglob("*.py")):
        for n, line in enumerate(path.read_text().split("\n"), 1):
            if re.search(r"spec\.(raw\b|(build|glue|compat|target)\.get\(|(build|glue|compat)\[)", line):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "\n".join(bad)


def _doc_sections() -> dict[str, str]:
    text = DOC.read_text()
    parts = re.split(r"^## `\[(.+?)\]`.*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_every_schema_key_is_documented():
    sections = _doc_sections()
    assert sorted(sections) == sorted(SCHEMA), "docs/target-spec.md: one '## `[table]`' section per table"
    for table, cls in SCHEMA.items():
        for key in schema_keys(cls):
            assert re.search(rf"^\| `{key}` \|", sections[table], re.MULTILINE), \
                f"[{table}] {key} is not in docs/target-spec.md"
    for kind in specmod.PRIMITIVE_KINDS:
        assert f"`{kind}`" in sections["primitives.NAME"]


def _keys_used(data: dict) -> list[tuple[str, str]]:
    out = []
    for table, value in data.items():
        if table in ("primitives", "variation_points"):
            name = "primitives.NAME" if table == "primitives" else 'variation_points."ID"'
            out += [(name, k) for entry in value.values() for k in entry]
        else:
            out += [(table, k) for k in value]
    return out


def test_every_key_the_specs_use_is_known(proj, tmp_path, capsys):
    texts = [(ROOT / "shim" / "linux" / "target.toml").read_text(), (TOYOS / "target.toml").read_text()]
    for os_name in ("netbsd", "dragonfly"):
        out = tmp_path / os_name
        assert main(["--project", str(proj), "extract-target", "--os", os_name, "-o", str(out)]) == 0
        texts.append((out / "target.toml").read_text())
    assert main(["--project", str(proj), "new-target", "fresh", "-o", str(tmp_path / "fresh")]) == 0
    texts.append((tmp_path / "fresh" / "target.toml").read_text())
    used = {k for text in texts for k in _keys_used(tomllib.loads(text))}
    known = {(table, key) for table, cls in SCHEMA.items() for key in schema_keys(cls)}
    assert used <= known, sorted(used - known)
    # shim/linux uses keys the old docstring never named; the reference has them all
    assert {("primitives.NAME", "external"), ("primitives.NAME", "native"), ("glue", "bridge"), ("glue", "common"),
            ("build", "userland")} <= used


def test_tables_are_dataclasses():
    for cls in SCHEMA.values():
        assert dataclasses.is_dataclass(cls)
