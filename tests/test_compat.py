"""The BSD compatibility catalog's definitions (shim/bsd/entries) and the compat header generator."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

from nvmm_port.analysis.catalog import CONTEXTS, ENTRY_KINDS, MEMBERS, UNKNOWN, Catalog, CatalogGroup
from nvmm_port.analysis.model import ForeignIdentifier
from nvmm_port.errors import PortError
from nvmm_port.targets.compat import needed_names, render_compat

CATALOG = ROOT / "shim" / "bsd" / "catalog.toml"
GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")
KERNEL_FLAGS = ["-ffreestanding", "-nostdinc", "-std=gnu11", "-Wall", "-Wextra", "-Werror"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(CATALOG)


def all_names(catalog: Catalog, context: str) -> set[str]:
    return {n for n, e in catalog.entries.items() if e.in_context(context)}


def write_tree(files: dict[str, str], root: Path) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def gcc(args: list[str], cwd: Path) -> None:
    r = subprocess.run([GCC, *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------- the data


def test_catalog_api_still_answers(catalog):
    assert catalog.group_of("__BIT") == "sys/bitops.h"
    assert catalog.group_of("MSR_EFER") == "machine/specialreg.h"
    assert catalog.group_of("frobnicate") is None
    assert catalog.title_of(UNKNOWN).startswith("Not in the catalog") and catalog.title_of(MEMBERS)
    assert all(isinstance(g, CatalogGroup) for g in catalog.groups)


def test_every_entry_parses(catalog):
    entries = catalog.entries
    assert len(entries) > 300
    for e in entries.values():
        assert e.kind in ENTRY_KINDS and e.c.strip() and e.source.strip(), e.name
        assert set(e.contexts) <= set(CONTEXTS) and e.contexts, e.name
        assert e.file == catalog.entry_file(e.header), e.name


def test_entries_agree_with_the_groups(catalog):
    """An entry's header is a group header, and that group is the one claiming the name."""
    headers = {g.header for g in catalog.groups}
    for e in catalog.entries.values():
        assert e.header in headers, e.name
        assert catalog.group_of(e.name) == e.header, (e.name, e.header, catalog.group_of(e.name))


def test_a_duplicate_name_is_refused(tmp_path):
    shutil.copytree(CATALOG.parent, tmp_path / "bsd")
    extra = tmp_path / "bsd" / "entries" / "sys_param.toml"
    extra.write_text(extra.read_text() + '\n[[entry]]\nname = "roundup"\nkind = "macro"\n'
                     'c = "#define roundup(x, y) (x)"\nsource = "test"\n')
    with pytest.raises(PortError, match=r"roundup is defined twice"):
        _ = Catalog.load(tmp_path / "bsd" / "catalog.toml").entries


@pytest.mark.parametrize("body, message", [
    ('name = "X"\nkind = "gadget"\nc = "#define X 1"\nsource = "s"', "kind 'gadget'"),
    ('name = "X"\nkind = "macro"\nsource = "s"', "no C text"),
    ('name = "X"\nkind = "macro"\nc = "#define X 1"', "no 'source'"),
    ('name = "X"\nkind = "macro"\nc = "#define X 1"\nsource = "s"\ncontexts = ["boot"]', "contexts"),
    ('name = "X"\nkind = "macro"\nc = "#define X 1"\nsource = "s"\nvalue = 1', "unknown key"),
])
def test_a_bad_entry_names_its_file(tmp_path, body, message):
    shutil.copytree(CATALOG.parent, tmp_path / "bsd")
    f = tmp_path / "bsd" / "entries" / "sys_param.toml"
    f.write_text(f.read_text() + "\n[[entry]]\n" + body + "\n")
    with pytest.raises(PortError) as exc:
        _ = Catalog.load(tmp_path / "bsd" / "catalog.toml").entries
    assert message in str(exc.value) and "sys_param.toml" in str(exc.value)


def test_every_requires_resolves(catalog):
    """Each name an entry requires has an entry in every context the entry is for (or, in the
    user context, comes from the C library)."""
    for e in catalog.entries.values():
        for r in e.requires:
            for ctx in e.contexts:
                dep = catalog.entry(r)
                ok = (dep is not None and dep.in_context(ctx)) or (ctx == "user" and catalog.provided_by_libc(r))
                assert ok, f"{e.name} requires {r}, which has no {ctx} definition"


def _identifiers(c_text: str) -> set[str]:
    text = re.sub(r'"(\\.|[^"\\])*"', '""', c_text)        # string literals (asm templates) name nothing
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def test_requires_lists_every_catalog_name_the_text_uses(catalog):
    names = set(catalog.entries)
    for e in catalog.entries.values():
        used = (_identifiers(e.c) & names) - {e.name}
        assert used <= set(e.requires), f"{e.name} uses {sorted(used - set(e.requires))} without requiring it"


def test_assembly_safe_entries_use_only_assembly_safe_ones(catalog):
    for e in catalog.entries.values():
        if e.lang in ("any", "asm"):
            for r in e.requires:
                assert catalog.entry(r).lang in (e.lang, "any"), f"{e.name} ({e.lang}) requires C-only {r}"


def test_not_in_catalog_and_entries_do_not_overlap(catalog):
    for e in catalog.entries.values():
        for ctx in e.contexts:
            assert catalog.exclusion(e.name, ctx) is None, f"{e.name} is both an entry and not_in_catalog ({ctx})"
    # the kernel services the brief names are not catalog business
    for name in ("copyin", "copyout", "panic", "curlwp", "fpu_kern_enter", "x86_dbregs_save", "pmap_ept_transform",
                 "time_second", "kpreempt_disable", "xc_broadcast", "kcpuset_create", "KASSERT", "MAXCPUS",
                 "x86_xsave_features", "GDATA_SEL"):
        x = catalog.exclusion(name, "kernel")
        assert x is not None and x.provider == "target" and x.reason, name


def test_instruction_wrappers_are_entries(catalog):
    for name in ["rdmsr", "wrmsr", "rdtsc", "x86_cpuid", "x86_cpuid2"] + \
            [f"{op}{n}" for op in ("rcr", "lcr") for n in (0, 2, 3, 4)] + \
            [f"{op}{n}" for op in ("rdr", "ldr") for n in (0, 1, 2, 3, 6, 7)]:
        e = catalog.entry(name)
        assert e is not None and e.kind in ("inline", "macro"), name
    assert "uint32_t *regs" in catalog.entry("x86_cpuid2").c


# --------------------------------------------------------------------------- needed_names


def fid(name, kind="identifier", flavours=("netbsd",), where="driver", uses=1, files=None):
    return ForeignIdentifier(name, "g", uses, kind, list(flavours), files or {"driver/nvmm.c": uses}, where)


def test_needed_names_filters_kind_flavour_and_where():
    fis = [fid("__BIT"), fid("vm_map", kind="member"), fid("savefpu", kind="tag"),
           fid("do_cpuid", flavours=("dragonfly",)), fid("LIST_FIRST", where="libnvmm"),
           fid("CR0_PG", where="driver+libnvmm+tests")]
    assert needed_names(fis) == {"__BIT", "CR0_PG"}
    assert needed_names(fis, "dragonfly") == {"do_cpuid"}
    assert needed_names(fis, where=("libnvmm", "tests")) == {"LIST_FIRST", "CR0_PG"}
    assert needed_names(fis).sources["__BIT"].files == {"driver/nvmm.c": 1}


# --------------------------------------------------------------------------- rendering


def test_minimal_output(catalog):
    files = render_compat(catalog, {"__BIT"}, set(), "kernel", "test banner")
    assert set(files) == {"sys/bitops.h", "stdint.h", "nvmm_compat.h"}     # __BIT needs uintmax_t
    assert "#define __BIT(n)" in files["sys/bitops.h"] and "#define __BITS" not in files["sys/bitops.h"]
    assert "typedef __UINTMAX_TYPE__ uintmax_t;" in files["stdint.h"] and "uint64_t" not in files["stdint.h"]
    assert not any("MSR" in text for text in files.values())
    assert all(text.startswith("/*\n * test banner\n */\n") for text in files.values())
    bare = render_compat(catalog, {"__BIT"}, set(), "kernel", "")
    assert bare["sys/bitops.h"].startswith("/*\n * <sys/bitops.h>: ")


def test_provided_names_are_not_emitted(catalog):
    files = render_compat(catalog, {"__BIT", "CR4_VMXE"}, {"uintmax_t", "CR4_VMXE"}, "kernel", "b")
    assert set(files) == {"sys/bitops.h", "nvmm_compat.h"}
    assert "uintmax_t;" not in "".join(files.values()) and "CR4_VMXE" not in "".join(files.values())


def test_headers_include_the_umbrella_before_their_guard(catalog):
    files = render_compat(catalog, {"rdmsr"}, set(), "kernel", "b")
    text = files["machine/cpufunc.h"]
    assert text.index('#include "nvmm_compat.h"') < text.index("#ifndef NVMM_COMPAT_MACHINE_CPUFUNC_H")
    umbrella = files["nvmm_compat.h"]
    assert umbrella.index('"stdint.h"') < umbrella.index('"machine/cpufunc.h"')     # a definition after its uses


def test_a_missing_name_names_the_file_to_extend(catalog):
    fis = [fid("frobnicate", uses=3, files={"driver/x86/nvmm_x86_vmx.c": 3}), fid("__BIT")]
    with pytest.raises(PortError) as exc:
        render_compat(catalog, needed_names(fis), set(), "kernel", "b")
    msg = str(exc.value)
    assert "frobnicate" in msg and "nvmm_x86_vmx.c" in msg and "3 uses" in msg
    assert "shim/bsd/catalog.toml" in msg and "[provides]" in msg
    # a name a group claims but no entry defines: the group's entry file
    with pytest.raises(PortError) as exc:
        render_compat(catalog, {"MSR_FROBNICATE"}, set(), "kernel", "b")
    assert "MSR_FROBNICATE" in str(exc.value) and "shim/bsd/entries/machine_specialreg.toml" in str(exc.value)
    # an OS service: the target must provide it
    with pytest.raises(PortError) as exc:
        render_compat(catalog, {"copyin", "__BIT"}, set(), "kernel", "b")
    assert "copyin" in str(exc.value) and "target" in str(exc.value) and "[provides]" in str(exc.value)
    assert render_compat(catalog, {"copyin", "__BIT"}, {"copyin"}, "kernel", "b")


def test_rendering_is_deterministic(catalog):
    names = all_names(catalog, "kernel")
    a = render_compat(catalog, names, set(), "kernel", "b", ["sys/systm.h", "uvm/uvm_extern.h"])
    b = render_compat(catalog, sorted(names, reverse=True), [], "kernel", "b", ("uvm/uvm_extern.h", "sys/systm.h"))
    assert a == b and list(a) == sorted(a)


def test_extra_paths_forward_to_the_umbrella(catalog):
    files = render_compat(catalog, {"__BIT"}, set(), "kernel", "b", ["sys/systm.h", "sys/bitops.h"])
    fwd = files["sys/systm.h"]
    assert '#include "nvmm_compat.h"' in fwd and "#define" not in fwd.replace("#define NVMM_COMPAT_SYS_SYSTM_H", "")
    assert "#define __BIT(n)" in files["sys/bitops.h"]          # an extra path that has entries keeps them


def test_user_context_leaves_the_c_library_alone(catalog):
    files = render_compat(catalog, {"uint64_t", "errno", "printf", "EINVAL", "LIST_FOREACH_SAFE", "EPROGMISMATCH",
                                    "CR0_PG", "GCODE_SEL"}, set(), "user", "b")
    assert "stdint.h" not in files and "stddef.h" not in files
    assert "#include_next <sys/queue.h>" in files["sys/queue.h"]
    assert "#ifndef LIST_FOREACH_SAFE" in files["sys/queue.h"]
    assert "#include <stddef.h>" in files["nvmm_compat.h"]          # NULL, which the LIST macros use
    assert "EPROGMISMATCH" in files["sys/errno.h"] and "EINVAL" not in files["sys/errno.h"]
    assert "#define GCODE_SEL" in files["machine/segments.h"]
    with pytest.raises(PortError, match="GCODE_SEL"):
        render_compat(catalog, {"GCODE_SEL"}, set(), "kernel", "b")


# --------------------------------------------------------------------------- compiling what is rendered

SAMPLE = r"""
#include <nvmm_compat.h>

struct x { uint64_t a, b; };

_Static_assert(__BIT(0) == 1 && __BIT(63) == 0x8000000000000000ULL, "__BIT");
_Static_assert(__BITS(7, 4) == 0xf0 && __BITS(4, 7) == 0xf0 && __BITS(63, 0) == ~0ULL, "__BITS");
_Static_assert(__SHIFTOUT(0xab0, __BITS(11, 4)) == 0xab, "__SHIFTOUT");
_Static_assert(__SHIFTIN(0xab, __BITS(11, 4)) == 0xab0, "__SHIFTIN");
_Static_assert(__LOWEST_SET_BIT(0x30) == 0x10, "__LOWEST_SET_BIT");
_Static_assert(ilog2(1) == 0 && ilog2(64) == 6 && ilog2(65) == 6, "ilog2");
_Static_assert(sizeof(__BIT(1)) == 8 && sizeof(uintmax_t) == 8, "64-bit masks");
/* BSD ioctl encoding: IN 0x80000000 | 16-byte length at bit 16 | 'N' << 8 | 3 */
_Static_assert(_IOW('N', 3, struct x) == 0x80104e03UL, "_IOW");
_Static_assert(_IOR('N', 4, uint32_t) == 0x40044e04UL, "_IOR");
_Static_assert(_IOWR('N', 5, struct x) == 0xc0104e05UL, "_IOWR");
_Static_assert(_IO('N', 6) == 0x20004e06UL, "_IO");
_Static_assert(IOCPARM_LEN(_IOW('N', 3, struct x)) == 16 && IOCGROUP(_IOW('N', 3, struct x)) == 'N', "decode");
_Static_assert(MSR_EFER == 0xc0000080 && MSR_STAR == 0xc0000081 && MSR_LSTAR == 0xc0000082, "EFER, STAR");
_Static_assert(MSR_FSBASE == 0xc0000100 && MSR_GSBASE == 0xc0000101 && MSR_KERNELGSBASE == 0xc0000102, "bases");
_Static_assert(MSR_CR_PAT == 0x277 && MSR_MISC_ENABLE == 0x1a0 && MSR_IA32_ARCH_CAPABILITIES == 0x10a, "MSRs");
_Static_assert(MSR_NB_CFG == 0xc001001f && NB_CFG_INITAPICCPUIDLO == (1ULL << 54), "NB_CFG");
_Static_assert(CR4_VMXE == (1 << 13) && CR4_OSXSAVE == (1 << 18) && CR4_PCIDE == (1 << 17), "CR4");
_Static_assert(CR0_PG == 0x80000000u && CR0_PE == 1 && CR0_NE == (1 << 5) && CR0_WP == (1 << 16), "CR0");
_Static_assert(EFER_SVME == (1 << 12) && EFER_LME == (1 << 8) && EFER_LMA == (1 << 10), "EFER");
_Static_assert(XCR0_X87 == 1 && XCR0_SSE == 2 && PSL_I == 0x200 && PSL_RF == 0x10000, "XCR0, RFLAGS");
_Static_assert(PGEX_W == 2 && PGEX_I == 0x10 && GSEL(4, SEL_UPL) == 0x23 && SEL_KPL == 0, "PGEX, selectors");
_Static_assert(PAGE_SIZE == 4096 && PAGE_SHIFT == 12 && PAGE_MASK == 4095, "pages");
_Static_assert(roundup(5, 8) == 8 && rounddown(13, 8) == 8 && howmany(9, 8) == 2, "arithmetic");
_Static_assert(EINVAL == 22 && ENOMEM == 12 && ENOBUFS == 55 && ENOTSUP == 86 && ERESTART == -3, "errno");
_Static_assert(sizeof(vaddr_t) == 8 && sizeof(paddr_t) == 8 && sizeof(pid_t) == 4 && sizeof(time_t) == 8, "types");
_Static_assert(__arraycount((int[5]){0}) == 5 && offsetof(struct x, b) == 8, "cdefs");

static int table[4] __read_mostly;
struct __packed p { uint8_t a; uint32_t b; };
_Static_assert(sizeof(struct p) == 5, "__packed");

struct item { int v; LIST_ENTRY(item) link; };
LIST_HEAD(items, item);

uint64_t
sample(uint32_t *regs)
{
	struct items head;
	struct item a, *it, *tmp;
	uint64_t v __diagused = 0;
	bool b = true;

	LIST_INIT(&head);
	LIST_INSERT_HEAD(&head, &a, link);
	LIST_FOREACH_SAFE(it, &head, link, tmp)
		LIST_REMOVE(it, link);
	x86_cpuid(0, regs);
	x86_cpuid2(7, 0, regs);
	if (__predict_false(!b))
		__unreachable();
	__insn_barrier();
	memset(table, 0, sizeof(table));
	wrmsr(MSR_TSC, rdmsr(MSR_TSC) + rdtsc());
	lcr0(rcr0()); lcr2(rcr2()); lcr3(rcr3()); lcr4(rcr4() | CR4_VMXE);
	ldr0(rdr0()); ldr1(rdr1()); ldr2(rdr2()); ldr3(rdr3()); ldr6(rdr6()); ldr7(rdr7());
	return uimin(3, 4) + __BIT(5) + (uint64_t)table[0] + v;
}
"""

ASM = r"""
#include <machine/asm.h>
#include <machine/specialreg.h>
#include <machine/segments.h>

ENTRY(compat_probe)
	movl	$MSR_GSBASE, %ecx
	movq	$GSEL(4, SEL_UPL), %rax
	call	_C_LABEL(compat_probe)
	ret
END(compat_probe)
"""


def compile_kernel(files: dict[str, str], tmp_path: Path, source: str = SAMPLE) -> None:
    inc = write_tree(files, tmp_path / "compat")
    (tmp_path / "t.c").write_text(source)
    gcc(["-fsyntax-only", *KERNEL_FLAGS, "-I", str(inc), "-x", "c", "t.c"], tmp_path)
    # and assemble: the inline assembly must be accepted by GNU as
    gcc(["-c", "-O2", *KERNEL_FLAGS, "-I", str(inc), "-x", "c", "t.c", "-o", "t.o"], tmp_path)


@needs_gcc
def test_all_kernel_entries_compile_standalone(catalog, tmp_path):
    files = render_compat(catalog, all_names(catalog, "kernel"), set(), "kernel", "test")
    compile_kernel(files, tmp_path)


@needs_gcc
@pytest.mark.parametrize("first", ["stdint.h", "machine/cpufunc.h", "sys/queue.h", "sys/types.h"])
def test_any_bsd_path_gives_every_name(catalog, tmp_path, first):
    files = render_compat(catalog, all_names(catalog, "kernel"), set(), "kernel", "test")
    compile_kernel(files, tmp_path, SAMPLE.replace("#include <nvmm_compat.h>", f"#include <{first}>"))


@needs_gcc
def test_asm_entries_assemble(catalog, tmp_path):
    files = render_compat(catalog, all_names(catalog, "kernel"), set(), "kernel", "test")
    inc = write_tree(files, tmp_path / "compat")
    (tmp_path / "t.S").write_text(ASM)
    gcc(["-c", "-nostdinc", "-I", str(inc), "-x", "assembler-with-cpp", "t.S", "-o", "t.o"], tmp_path)
    r = subprocess.run(["nm", "-S", "t.o"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode != 0 or re.search(r"^0+ [0-9a-f]+ T compat_probe$", r.stdout, re.M), r.stdout


HOSTED = r"""
#include <stdio.h>
#include <sys/queue.h>
#include <sys/param.h>
#include <errno.h>
#include <machine/specialreg.h>

struct item { int v; LIST_ENTRY(item) link; };
LIST_HEAD(items, item);

int
main(void)
{
	struct items head;
	struct item a, *it, *tmp;

	LIST_INIT(&head);
	LIST_INSERT_HEAD(&head, &a, link);
	LIST_FOREACH_SAFE(it, &head, link, tmp)
		LIST_REMOVE(it, link);
	printf("%d %d %d\n", CR4_VMXE, EPROGMISMATCH, (int)PAGE_SIZE);
	return (int)__SHIFTOUT(0, __BITS(3, 0)) + (errno == EINVAL);
}
"""


@needs_gcc
def test_user_entries_compile_against_the_c_library(catalog, tmp_path):
    probe = tmp_path / "probe.c"
    probe.write_text("#include <stdio.h>\n#include <sys/queue.h>\nint main(void) { return 0; }\n")
    if subprocess.run([GCC, "-fsyntax-only", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("no C library headers on this host")
    files = render_compat(catalog, all_names(catalog, "user"), set(), "user", "test", ["stdint.h"])
    inc = write_tree(files, tmp_path / "compat")
    (tmp_path / "u.c").write_text(HOSTED)
    gcc(["-fsyntax-only", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I", str(inc), "u.c"], tmp_path)


# --------------------------------------------------------------------------- the real upstream


@pytest.mark.upstream
def test_catalog_covers_every_bsd_name_the_driver_needs(reference_surface, catalog):
    """Acceptance: every BSD name the NetBSD-flavour driver uses has a kernel entry, except the
    OS services catalog.toml lists as not_in_catalog."""
    needed = needed_names(reference_surface.foreign_identifiers)
    services = {n for n in needed if catalog.exclusion(n, "kernel") is not None}
    uncovered = sorted(n for n in needed - services
                       if catalog.entry(n) is None or not catalog.entry(n).in_context("kernel"))
    assert uncovered == []
    assert len(needed - services) >= 140
    special = {f.name for f in reference_surface.foreign_identifiers
               if f.group == "machine/specialreg.h" and f.name in needed}
    assert len(special) == 69 and all(catalog.entry(n) for n in special)
    # the services left to the target are what only an OS can do
    assert {"copyin", "copyout", "panic", "curlwp", "fpu_kern_enter"} <= services
    assert not services & {"rdmsr", "x86_cpuid2", "__BIT", "MSR_EFER"}


@needs_gcc
@pytest.mark.upstream
@pytest.mark.parametrize("flavour", ["netbsd", "dragonfly"])
def test_upstream_compat_set_compiles(reference_surface, catalog, tmp_path, flavour):
    needed = needed_names(reference_surface.foreign_identifiers, flavour)
    services = {n for n in needed if catalog.exclusion(n, "kernel") is not None}
    files = render_compat(catalog, needed, services, "kernel", "test", ["sys/systm.h", "uvm/uvm_extern.h"])
    emitted = {n for n in catalog.entries if any(re.search(rf"\b{re.escape(n)}\b", t) for t in files.values())}
    assert needed - services <= emitted
    compile_kernel(files, tmp_path, "#include <sys/systm.h>\n#include <uvm/uvm_extern.h>\n"
                   "#include <machine/cpufunc.h>\n"
                   "uint64_t probe(void) { return __SHIFTOUT(rdmsr(MSR_EFER), 0xf00); }\n")


# The catalog's x86 architectural constants, checked against an independent statement of the same
# SDM values: Linux's own headers (the UAPI <asm/processor-flags.h> for EFLAGS, CR0 and CR4; the
# kernel's msr-index.h for EFER's bit numbers).  catalog name -> Linux name.
PSL_TO_LINUX = {"PSL_C": "CF", "PSL_PF": "PF", "PSL_AF": "AF", "PSL_Z": "ZF", "PSL_N": "SF", "PSL_T": "TF",
                "PSL_I": "IF", "PSL_D": "DF", "PSL_V": "OF", "PSL_IOPL": "IOPL", "PSL_NT": "NT", "PSL_RF": "RF",
                "PSL_VM": "VM", "PSL_AC": "AC", "PSL_VIF": "VIF", "PSL_VIP": "VIP", "PSL_ID": "ID",
                "PSL_MBO": "FIXED"}
EFER_TO_LINUX = {"EFER_SCE": "SCE", "EFER_LME": "LME", "EFER_LMA": "LMA", "EFER_NXE": "NX", "EFER_SVME": "SVME",
                 "EFER_LMSLE": "LMSLE", "EFER_FFXSR": "FFXSR"}


@needs_gcc
def test_x86_constants_agree_with_linux_headers(catalog, tmp_path):
    uapi = Path("/usr/include/x86_64-linux-gnu/asm/processor-flags.h")
    if not uapi.is_file():
        pytest.skip("no Linux UAPI headers (linux-libc-dev)")
    pairs = {name: f"X86_EFLAGS_{linux}" for name, linux in PSL_TO_LINUX.items()}
    pairs |= {n: f"X86_{n}" for n in catalog.entries if re.fullmatch(r"CR[04]_[A-Z0-9]+", n)}
    defines = [catalog.entries[n].c for n in pairs if n in catalog.entries]
    assert len(defines) >= 40, "the catalog lost its EFLAGS/CR0/CR4 constants"
    checks = [f'_Static_assert({n} == {linux}, "{n} is not Linux\'s {linux}");' for n, linux in pairs.items()
              if n in catalog.entries]
    src = tmp_path / "check.c"
    src.write_text("#include <asm/processor-flags.h>\n" + "\n".join(d for d in defines if d) + "\n"
                   + "\n".join(checks) + "\n")
    proc = subprocess.run([GCC, "-fsyntax-only", str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    msr_index = sorted(Path("/usr/src").glob("linux-headers-*-common/arch/x86/include/asm/msr-index.h"))
    if msr_index:
        bits = dict(re.findall(r"#define\s+_EFER_(\w+)\s+(\d+)", msr_index[-1].read_text()))
        for name, linux in EFER_TO_LINUX.items():
            value = int(re.search(r"(0x[0-9a-fA-F]+|\d+)\s*$", catalog.entries[name].c or "").group(1), 0)
            assert value == 1 << int(bits[linux]), f"{name} is not Linux's EFER bit {linux}"
