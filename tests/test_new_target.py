"""gen.py new-target: every TODO entry shows the TOML that fills it (the forms its kind allows, with
the contract's exact shape), what the primitive means and where it is used, and for a variation
point what each of upstream's arms does and which OS macros it tests, without quoting upstream."""

from __future__ import annotations

import re
import shutil
import tomllib

import pytest
from conftest import ROOT

from nvmm_port.cli import main
from nvmm_port.errors import PortError
from nvmm_port.project import Project
from nvmm_port.targets.spec import load_spec


@pytest.fixture()
def scaffolded(mini_project, tmp_path):
    """The spec new-target writes for the mini upstream, with the porters' meanings available."""
    shutil.copy(ROOT / "shim" / "contract.toml", mini_project / "shim" / "contract.toml")
    spec = tmp_path / "half"
    assert main(["--project", str(mini_project), "new-target", "half", "-o", str(spec)]) == 0
    return mini_project, spec, (spec / "target.toml").read_text()


def entry(text: str, header: str) -> str:
    """The lines of one entry, from its table header to its todo."""
    start = text.index(header + "\n")
    return text[start:text.index("\ntodo = ", start)]


def test_primitive_todos_show_meaning_uses_and_the_toml_to_write(scaffolded):
    _, _, text = scaffolded
    fault = entry(text, "[primitives.os_vmspace_fault]")
    meanings = tomllib.loads((ROOT / "shim" / "contract.toml").read_text())["semantics"]
    assert meanings["os_vmspace_fault"][:60] in fault.replace("\n#   ", " ")
    assert "# contract: int os_vmspace_fault(os_vmspace_t *, vaddr_t, vm_prot_t)" in fault
    assert "# used at 1 site(s): driver/nvmm.c:110 in nvmm_vcpu_run" in fault
    assert '#     kind = "out-of-line function"' in fault
    assert '#     file = "primitives/os_vmspace_fault.c"' in fault and "#     external = true" in fault

    lock = entry(text, "[primitives.os_mtx_lock]")
    assert "# contract: #define os_mtx_lock(m)" in lock
    assert '#     kind = "function-like macro"\n#     params = ["m"]\n#     body = "..."' in lock
    assert "driver/nvmm.c:44 in nvmm_machine_create" in lock and "#     native = true" in lock

    ipi = entry(text, "[primitives.os_ipi_broadcast]")
    # the OSes' signatures differ: both are shown, and the form carries one exactly
    assert "dragonfly: void os_ipi_broadcast(void (*fn)(void *), void *arg)" in ipi.replace("\n#   ", " ")
    assert '#     returns = "void"' in ipi and re.search(r'#     params = \["void \(\*fn\)\(void \*(, void \*)?\)", "void \*arg"\]', ipi)

    typ = entry(text, "[primitives.os_mtx_t]")
    assert '#     kind = "typedef"\n#     type = "..."' in typ and "declaration = " in typ
    assert "# used at 1 site(s): driver/nvmm_internal.h:26 in struct nvmm_machine" in typ

    shared = entry(text, "[primitives.os_return_needed]")
    assert "one function for every OS" in shared and '#     body = "\\t..."' in shared


def test_vp_todos_describe_each_arm_and_the_forms(scaffolded):
    _, _, text = scaffolded
    ram = entry(text, '[variation_points."driver/nvmm_internal.h:NVMM_MAX_RAM#1"]')
    assert "#   1. #if, tests __NetBSD__; netbsd compiles it: defines macro NVMM_MAX_RAM." in ram
    assert "#   2. #elif, tests __DragonFly__; dragonfly compiles it: defines macro NVMM_MAX_RAM." in ram
    assert "#   3. #else; no OS upstream knows takes it: stops the build with #error." in ram
    assert re.search(r'#     same_as = "netbsd" +# compile what netbsd compiles here \(arm 1\)', ram)
    assert re.search(r'#     same_as = "dragonfly" +# compile what dragonfly compiles here \(arm 2\)', ram)
    assert "#     omit = true" in ram and '#     file = "vp/nvmm_internal-NVMM_MAX_RAM_1.h"' in ram
    assert "#     code = '''\n#     ...\n#     '''" in ram

    flush = entry(text, '[variation_points."driver/x86/nvmm_x86_vmx.c:vmx_tlb_flush#1"]')
    assert "defines function vmx_tlb_flush" in flush
    joined = flush.replace("\n#      ", " ")
    assert re.search(r"1\. #if\w*, tests __NetBSD__; netbsd compiles it: .*uses primitives? os_pmap_mach", joined)
    assert re.search(r'same_as = "dragonfly" +# like dragonfly, compile nothing here', flush) or \
        "dragonfly compiles" in flush


def test_scaffold_never_quotes_upstream(scaffolded):
    """Arms are described from their structure, primitives by their contract: no line of upstream's
    code (beyond a function's signature, which the contract is) appears in the spec."""
    project, _, text = scaffolded
    from nvmm_port.analysis.analyze import analyze_project
    surface = analyze_project(Project.find(project), "mini")
    flat = " ".join(text.split())
    quoted = []
    texts = [b.text for v in surface.variation_points for b in v.branches]
    for p in surface.primitives:
        for d in p.definitions.values():
            if d.kind == "out-of-line function":
                continue                        # a prototype: the contract itself
            body = d.text.split("{", 1)[1] if d.kind == "static inline" else d.text
            texts.append(body)
    heads = tuple(f"{p.name}(" for p in surface.primitives)
    for t in texts:
        for line in t.split("\n"):
            norm = " ".join(line.split())
            if norm.startswith(heads):
                continue                        # the head of an inline in a contract block: its signature
            if len(norm) >= 16 and norm in flat:
                quoted.append(norm)
    assert quoted == []


def _filled(text: str, header: str, lines: list[str]) -> str:
    """``text`` with the todo of entry ``header`` replaced by ``lines`` (uncommented form lines)."""
    start = text.index(header + "\n")
    todo = text.index("\ntodo = ", start)
    end = text.index("\n", todo + 1)
    return text[:todo] + "\n" + "\n".join(lines) + text[end:]


def _forms(block: str) -> list[list[str]]:
    """The forms of an entry's comment block: runs of '#     ' lines after an intro, uncommented,
    comments dropped; after "write one of:", each line is a form of its own."""
    forms: list[list[str]] = []
    run: list[str] = []
    in_form = one_of = False
    for ln in block.split("\n") + [""]:
        if in_form and ln.startswith("#     "):
            run.append(re.sub(r"\s+# .*$", "", ln[6:]) if not ln[6:].startswith(("code", "...", "'''")) else ln[6:])
            continue
        if run:
            forms.extend([[x] for x in run] if one_of else [run])
            run = []
        in_form = ln.endswith(":")
        one_of = ln.endswith("one of:")
    return forms


def test_every_form_written_out_loads(scaffolded):
    """Uncommenting any form of any entry (with '...' filled in) gives a spec that loads: the TODO
    texts show exactly what the spec format accepts."""
    _, spec, text = scaffolded
    headers = re.findall(r"^(\[(?:primitives|variation_points)\..*\])$", text, re.MULTILINE)
    assert len(headers) == 23 + 17     # os_pmap_mach, private to NetBSD's arms, is not asked for
    tried = 0
    for header in headers:
        block = entry(text, header)
        contract = re.search(r"# contract: (?:\w+: )?([^;\n]+\))", block)
        forms = _forms(block)
        assert forms, header
        for form in forms:
            lines = []
            for ln in form:
                if ln.startswith("file = "):
                    rel = tomllib.loads(ln)["file"]
                    (spec / rel).parent.mkdir(parents=True, exist_ok=True)
                    (spec / rel).write_text(f"{contract.group(1)}\n{{\n}}\n" if header.startswith("[primitives")
                                            else "\t/* here */\n")
                lines.append(ln.replace('"..."', '"x"').replace('"\\t..."', '"\\tx;"').replace("...", "x;"))
            (spec / "target.toml").write_text(_filled(text, header, lines))
            try:
                s = load_spec(spec)
            except PortError as exc:        # pragma: no cover - the message says which form
                pytest.fail(f"{header} form {form}: {exc}")
            assert sum(len(v) for v in s.todos().values()) == 23 + 17 - 1, (header, form)
            tried += 1
    assert tried > 24 * 2 + 17 * 5 - 10


def test_scaffolded_spec_loads_and_surface_lacks_every_entry(scaffolded, capsys):
    project, spec, _ = scaffolded
    todos = load_spec(spec).todos()
    assert len(todos["primitives"]) == 23 and len(todos["variation points"]) == 17
    capsys.readouterr()
    assert main(["--project", str(project), "surface", "--target", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "primitive os_vmspace_fault: TODO" in out
    assert "variation point driver/nvmm_internal.h:NVMM_MAX_RAM#1: TODO" in out
    assert len(re.findall(r"^    (?:primitive|variation point) .*: TODO", out, re.MULTILINE)) == 23 + 17
