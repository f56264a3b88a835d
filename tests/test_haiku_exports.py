"""The Haiku export sets (nvmm_port/run/haiku_exports.py): small trees written here, and the real
Haiku tree when NVMM_PORT_HAIKU_TREE points at one (the tests on it skip, saying so, otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nvmm_port.errors import PortError
from nvmm_port.run.haiku_exports import (
    ExportSet,
    elf_undefined_symbols,
    kernel_exports,
    libroot_exports,
    qualified_name,
    unresolved,
)

# --- a small kernel tree ----------------------------------------------------------------------

KERNEL_JAMFILE = """\
SubDir HAIKU_TOP src system kernel ;

SEARCH_SOURCE += [ FDirName $(SUBDIR) locks ] ;

KernelMergeObject kernel_core.o :
	vm.cpp
	smp.cpp
	lock.cpp    # found through SEARCH_SOURCE
	cfile.c
	: $(TARGET_KERNEL_PIC_CCFLAGS)
;

KernelLd kernel_$(TARGET_ARCH) :
	kernel_core.o
	kernel_arch_$(TARGET_KERNEL_ARCH).o
	kernel_os_main.o
	linkhack.so
	: ldscript : -export-dynamic
;

SubInclude HAIKU_TOP src system kernel arch ;
SubInclude HAIKU_TOP src system kernel lib ;
"""

ARCH_JAMFILE = """\
SubDir HAIKU_TOP src system kernel arch ;
SubInclude HAIKU_TOP src system kernel arch $(TARGET_KERNEL_ARCH_DIR) ;
"""

X86_JAMFILE = """\
SubDir HAIKU_TOP src system kernel arch x86 ;

local archSpecificSources ;
if $(TARGET_ARCH) = x86_64 {
	SEARCH_SOURCE += [ FDirName $(SUBDIR) 64 ] ;
	archSpecificSources = arch.S ;
} else {
	SEARCH_SOURCE += [ FDirName $(SUBDIR) 32 ] ;
	archSpecificSources = bios.cpp arch.S ;
}

KernelMergeObject kernel_arch_$(TARGET_KERNEL_ARCH).o :
	$(archSpecificSources)
	gone.cpp
;
"""

LIB_JAMFILE = """\
SubDir HAIKU_TOP src system kernel lib ;

local sources = driver_settings.cpp ;
KernelMergeObject kernel_os_main.o : $(sources) ;
SEARCH on [ FGristFiles $(sources) ] = [ FDirName $(HAIKU_TOP) src system libroot os ] ;
"""

KERNEL_EXPORT_H = """\
#ifndef _KERNEL_EXPORT_H
#define _KERNEL_EXPORT_H
#ifdef __cplusplus
extern "C" {
#endif
extern status_t lock_memory_etc(team_id t, void *addr, size_t len, uint32 how);
extern void dprintf(const char *format, ...) _PRINTFLIKE(1, 2);
extern int32 smp_get_num_cpus(void);
extern area_id create_area(const char *name, void **address, uint32 spec, size_t size);
extern status_t delete_area(area_id area);
#ifdef __cplusplus
}
#endif
static inline int header_inline(int x) { return x; }
#endif
"""

VM_CPP = """\
// vm.cpp: C++, functions declared extern "C" in KernelExport.h take C linkage
#include <KernelExport.h>

static void delete_area(VMAddressSpace* addressSpace, VMArea* area, bool deletingAddressSpace);
static status_t cut_area(VMArea* area);

/* a comment with a fake definition: int not_code(void) { } */
status_t
lock_memory_etc(team_id t, void* addr, size_t len, uint32 how)
{
	if (len == 0) {
		return B_OK;
	}
	return do_it("}");
}

static status_t
cut_area(VMArea* area)
{
	return B_OK;
}

void
delete_area(VMAddressSpace* addressSpace, VMArea* area, bool deletingAddressSpace)
{
	// defined without "static", but declared static above: internal
}

status_t
delete_area(area_id area)
{
	return B_OK;
}

inline int
vm_inline_helper(int x)
{
	return x;
}

status_t
vm_cpp_only(int x)
{
	// declared nowhere as extern "C": C++ linkage
	return x;
}

template<typename T> T vm_template(T x) { return x; }

status_t
VMCache::Init(uint32 cacheType, uint32 allocationFlags)
{
	return B_OK;
}

VMCache::~VMCache()
{
}

namespace BKernel {

Thread*
Thread::Get(thread_id id)
{
	return NULL;
}

int32 sThreadCount = 0;

}	// namespace BKernel

namespace {

int
anonymous_helper()
{
	return 0;
}

}

struct vm_stats {
	int pages;
} gVMStats;

static int sStaticCounter;
const int kConstant = 5;			// namespace-scope const in C++: internal
const char* gVersionString = "x";	// a pointer to const is not const itself
extern int gDeclaredElsewhere;
int gInitialized = 1, gSecond;

extern "C" int
vm_extern_c(int x)
{
	return x;
}

#if 0
int
in_if_zero(void)
{
}
#endif

#ifdef __cplusplus
int only_cplusplus;
#else
int only_c;
#endif
"""

SMP_CPP = """\
#include <KernelExport.h>

extern "C" {

int32
smp_get_num_cpus()
{
	return 1;
}

void
call_all_cpus_sync(void (*fn)(void*, int), void* arg)
{
}

}	// extern "C"

cpu_ent gCPU[SMP_MAX_CPUS];
"""

LOCK_CPP = """\
#include <lock.h>

status_t
_mutex_lock(mutex* m, void* who)
{
	return B_OK;
}

static void
lock_static_helper(void)
{
}
"""

LOCK_H = """\
#ifdef __cplusplus
extern "C" {
#endif
extern status_t _mutex_lock(mutex* m, void* who);
#ifdef __cplusplus
}
#endif
"""

C_FILE = """\
/* C: everything non-static has C linkage */
static int c_static(void) { return 0; }
int c_global(void) { return c_static(); }
int c_variable = 3;
const int c_const = 4;		/* C: const objects have external linkage */
int
knr_function(a, b)
	int a;
	char *b;
{
	return a;
}
"""

ARCH_S = """\
#include <asm_defs.h>
#define FUNCTION_HELPER(x) .globl x
.text
FUNCTION(arch_cpu_user_memcpy):
	ret
FUNCTION_END(arch_cpu_user_memcpy)
.globl x86_64_global_label
x86_64_global_label:
	ret
local_label:
	ret
"""

DRIVER_SETTINGS_CPP = """\
extern "C" void*
load_driver_settings(const char* name)
{
	return NULL;
}

B_DEFINE_WEAK_ALIAS(load_driver_settings, load_driver_settings_alias);
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture()
def kernel_tree(tmp_path: Path) -> Path:
    return write(tmp_path / "haiku", {
        "src/system/kernel/Jamfile": KERNEL_JAMFILE,
        "src/system/kernel/arch/Jamfile": ARCH_JAMFILE,
        "src/system/kernel/arch/x86/Jamfile": X86_JAMFILE,
        "src/system/kernel/arch/x86/64/arch.S": ARCH_S,
        "src/system/kernel/arch/x86/32/arch.S": "FUNCTION(i386_only)\n",
        "src/system/kernel/arch/x86/32/bios.cpp": "int bios_only(void) { return 0; }\n",
        "src/system/kernel/lib/Jamfile": LIB_JAMFILE,
        "src/system/kernel/vm.cpp": VM_CPP,
        "src/system/kernel/smp.cpp": SMP_CPP,
        "src/system/kernel/locks/lock.cpp": LOCK_CPP,
        "src/system/kernel/cfile.c": C_FILE,
        "src/system/kernel/unlisted.cpp": "int not_in_any_jamfile(void) { return 0; }\n",
        "src/system/libroot/os/driver_settings.cpp": DRIVER_SETTINGS_CPP,
        "headers/os/drivers/KernelExport.h": KERNEL_EXPORT_H,
        "headers/private/kernel/lock.h": LOCK_H,
    })


def test_kernel_set_follows_the_jamfiles_and_models_linkage(kernel_tree: Path):
    k = kernel_exports(kernel_tree)
    assert k.binary == "kernel_x86_64" and k.tree == kernel_tree.resolve()
    assert sorted(k.c_names) == sorted([
        # vm.cpp
        "lock_memory_etc", "delete_area", "gVMStats", "gVersionString", "gInitialized", "gSecond",
        "vm_extern_c", "only_cplusplus",
        # smp.cpp, lock.cpp
        "smp_get_num_cpus", "call_all_cpus_sync", "gCPU", "_mutex_lock",
        # cfile.c
        "c_global", "c_variable", "c_const", "knr_function",
        # arch/x86/64/arch.S (the x86_64 branch of the Jamfile's if)
        "arch_cpu_user_memcpy", "x86_64_global_label",
        # libroot/os/driver_settings.cpp through kernel/lib's SEARCH on
        "load_driver_settings", "load_driver_settings_alias",
    ])
    assert sorted(k.cxx_names) == ["BKernel::Thread::Get", "BKernel::sThreadCount", "VMCache::Init",
                                   "VMCache::~VMCache", "vm_cpp_only"]
    assert k.files_scanned == 6
    assert k.missing == ("gone.cpp",)          # listed, found in no SEARCH directory
    assert "kernel_x86_64" in k.method
    for name in ("cut_area", "lock_static_helper", "c_static", "sStaticCounter", "kConstant",
                 "vm_inline_helper", "header_inline", "vm_template", "anonymous_helper", "in_if_zero",
                 "only_c", "not_code", "gDeclaredElsewhere", "bios_only", "i386_only", "local_label",
                 "not_in_any_jamfile"):
        assert name not in k.c_names and name not in k.cxx_names, name


def test_unresolved_reports_a_misspelled_name_and_demangles_cxx(kernel_tree: Path):
    if shutil.which("c++filt") is None and shutil.which("llvm-cxxfilt") is None:
        pytest.skip("c++filt (binutils) is not installed: mangled names cannot be demangled")
    k = kernel_exports(kernel_tree)
    undefined = [
        "lock_memory_etc", "lock_memory_etx",            # the second is misspelled
        "_ZN7VMCache4InitEjj",                           # VMCache::Init(unsigned, unsigned): defined
        "_ZN7VMCacheD2Ev",                               # VMCache::~VMCache(): defined
        "_ZN7BKernel6Thread3GetEi",                      # BKernel::Thread::Get(int): defined
        "_ZN7VMCache6DeleteEv",                          # VMCache::Delete(): not defined
        "_Z11vm_cpp_onlyi",                              # vm_cpp_only(int): C++ linkage, defined
        "_Z15lock_memory_etcPvm",                        # C++ reference to a C-linkage function
        "_ZTV7VMCache",                                  # vtable for VMCache: VMCache has members
        "__udivti3",                                     # libgcc, passed in `also`
        "gCPU@KERNEL_BASE",                              # a versioned reference
        "lock_memory_etx",                               # reported once
    ]
    assert unresolved(undefined, k, also=["__udivti3"]) == [
        "lock_memory_etx", "_ZN7VMCache6DeleteEv", "_Z15lock_memory_etcPvm"]
    assert unresolved([], k) == []


def test_qualified_name_drops_parameters_templates_and_return_type():
    assert qualified_name("BKernel::Thread::Get(int)") == "BKernel::Thread::Get"
    assert qualified_name("VMCache::Read(long, iovec const*, unsigned long) const") == "VMCache::Read"
    assert qualified_name("void DoublyLinkedList<Foo>::Add<int>(Foo*)") == "DoublyLinkedList::Add"
    assert qualified_name("operator new[](unsigned long)") == "operator new[]"
    assert qualified_name("Foo::operator==(Foo const&) const") == "Foo::operator=="
    assert qualified_name("BKernel::sThreadCount") == "BKernel::sThreadCount"


def test_jamfile_branches_of_other_architectures_are_not_taken(kernel_tree: Path):
    # the else branch (x86, 32-bit) would add bios.cpp and find arch.S in 32/
    k = kernel_exports(kernel_tree)
    assert "i386_only" not in k.c_names and "bios_only" not in k.c_names
    assert "arch_cpu_user_memcpy" in k.c_names


def test_not_a_haiku_tree_is_one_line_error(tmp_path: Path):
    with pytest.raises(PortError, match="not a Haiku tree"):
        kernel_exports(tmp_path)
    (tmp_path / "src").mkdir()
    with pytest.raises(PortError, match="no Jamfile at src/system/kernel/Jamfile"):
        kernel_exports(tmp_path)


# --- a small libroot tree ---------------------------------------------------------------------

LIBROOT_JAMFILE = """\
SubDir HAIKU_TOP src system libroot ;

local architectureObject ;
for architectureObject in [ MultiArchSubDirSetup ] {
	on $(architectureObject) {
		local architecture = $(TARGET_PACKAGING_ARCH) ;
		local librootObjects = posix_main.o posix_gnu.o posix_string_arch_$(TARGET_ARCH).o ;
		librootObjects = $(librootObjects:G=$(architecture)) ;
		local libroot = [ MultiArchDefaultGristFiles libroot.so ] ;
		local librootDebug = $(libroot:B=libroot_debug) ;
		SharedLibrary $(libroot) : libroot_init.c : $(librootObjects) <$(architecture)>posix_malloc.o ;
		SharedLibrary $(librootDebug) : libroot_init.c : $(librootObjects) <$(architecture)>posix_malloc_debug.o ;
	}
}

SubInclude HAIKU_TOP src system libroot posix ;
"""

POSIX_JAMFILE = """\
SubDir HAIKU_TOP src system libroot posix ;

local architectureObject ;
for architectureObject in [ MultiArchSubDirSetup ] {
	on $(architectureObject) {
		local architecture = $(TARGET_PACKAGING_ARCH) ;
		if $(HAIKU_MULTIUSER_QUERY) = 1 {
			PWD_BACKEND = pwd_query.c ;
		} else {
			PWD_BACKEND = pwd.cpp ;
		}
		MergeObject <$(architecture)>posix_main.o : $(PWD_BACKEND) unistd.c syscalls.S ;
		MergeObject <$(architecture)>posix_malloc.o : malloc.c ;
		MergeObject <$(architecture)>posix_malloc_debug.o : malloc_debug.c ;
	}
}

local arch ;
for arch in $(TARGET_ARCHS) {
	HaikuSubInclude arch $(arch) ;
}
SubInclude HAIKU_TOP src system libroot posix glibc ;
"""

POSIX_X86_64_JAMFILE = """\
SubDir HAIKU_TOP src system libroot posix arch x86_64 ;
local architectureObject ;
for architectureObject in [ MultiArchSubDirSetup x86_64 ] {
	on $(architectureObject) {
		MergeObject <$(TARGET_PACKAGING_ARCH)>posix_string_arch_$(TARGET_ARCH).o : memcpy.cpp ;
	}
}
"""

POSIX_ARM_JAMFILE = """\
SubDir HAIKU_TOP src system libroot posix arch arm ;
local architectureObject ;
for architectureObject in [ MultiArchSubDirSetup arm ] {
	on $(architectureObject) {
		MergeObject <$(TARGET_PACKAGING_ARCH)>posix_string_arch_$(TARGET_ARCH).o : arm_only.c ;
	}
}
"""

GLIBC_JAMFILE = """\
SubDir HAIKU_TOP src system libroot posix glibc ;
MergeObjectFromObjects <x86_64>posix_gnu.o : : <x86_64>posix_gnu_stdio.o ;
local architectureObject ;
for architectureObject in [ MultiArchSubDirSetup ] {
	on $(architectureObject) {
		MergeObject <$(TARGET_PACKAGING_ARCH)>posix_gnu_stdio.o : printf.c getc.c strtoul.c iofclose.c ;
	}
}
"""

GLIBC_PRINTF_C = """\
#include <libioP.h>
#undef printf

int
__printf (const char *format, ...)
{
  return 0;
}
ldbl_strong_alias (__printf, printf);
libc_hidden_def (__printf)
"""

GLIBC_GETC_C = """\
int
_IO_getc (fp)
     FILE *fp;
{
  return 0;
}

#ifdef weak_alias
weak_alias (_IO_getc, getc)
weak_alias (_IO_getc, fgetc)
#endif

int attribute_hidden __internal_only (void) { return 0; }
"""

GLIBC_STRTOL_C = """\
#ifdef UNSIGNED
# define strtol strtoul
#endif
long int
strtol (const char *nptr, char **endptr, int base)
{
  return 0;
}
"""

GLIBC_IOFCLOSE_C = """\
int
_IO_new_fwidget (_IO_FILE *w)
{
  return 0;
}
versioned_symbol (libc, _IO_new_fwidget, _IO_fwidget, GLIBC_2_1);
strong_alias (_IO_new_fwidget, __new_fwidget)
versioned_symbol (libc, __new_fwidget, fwidget, GLIBC_2_1);
"""

UNISTD_C = """\
pid_t
getpid(void)
{
	return 0;
}

int
__ioctl(int f, ulong c, void* a, size_t n)
{
	return 0;
}
B_DEFINE_WEAK_ALIAS(__ioctl, ioctl);

int __tick_beos(void) { return 0; }
int __tick(void) { return 0; }
DEFINE_LIBROOT_KERNEL_SYMBOL_VERSION("__tick_beos", "tick@", "BASE");
DEFINE_LIBROOT_KERNEL_SYMBOL_VERSION("__tick", "tick@@", "1_ALPHA4");

#define ENTRY(NAME, X) int NAME (int argc) { return X; }
ENTRY(made_by_macro, 0)
"""

SYSCALLS_S = """\
#include <asm_defs.h>
#include "syscalls.S.inc"
"""

SYSCALLS_H = """\
extern status_t		_kern_ioctl(int f, uint32 c, void *d, size_t n);
extern pid_t		_kern_getpid(void);
"""

MEMCPY_CPP = """\
extern "C" void*
memcpy(void* to, const void* from, size_t n)
{
	return to;
}
"""


@pytest.fixture()
def libroot_tree(tmp_path: Path) -> Path:
    return write(tmp_path / "haiku", {
        "src/system/libroot/Jamfile": LIBROOT_JAMFILE,
        "src/system/libroot/libroot_init.c": "void initialize_before(void) {}\n",
        "src/system/libroot/posix/Jamfile": POSIX_JAMFILE,
        "src/system/libroot/posix/pwd.cpp": 'extern "C" struct passwd* getpwnam(const char* name) { return 0; }\n',
        "src/system/libroot/posix/pwd_query.c": "int pwd_query_only(void) { return 0; }\n",
        "src/system/libroot/posix/unistd.c": UNISTD_C,
        "src/system/libroot/posix/syscalls.S": SYSCALLS_S,
        "src/system/libroot/posix/malloc.c": "void* malloc(size_t size) { return 0; }\nvoid free(void* p) {}\n",
        "src/system/libroot/posix/malloc_debug.c": "void* debug_only_malloc(size_t size) { return 0; }\n",
        "src/system/libroot/posix/arch/x86_64/Jamfile": POSIX_X86_64_JAMFILE,
        "src/system/libroot/posix/arch/x86_64/memcpy.cpp": MEMCPY_CPP,
        "src/system/libroot/posix/arch/arm/Jamfile": POSIX_ARM_JAMFILE,
        "src/system/libroot/posix/arch/arm/arm_only.c": "int arm_only(void) { return 0; }\n",
        "src/system/libroot/posix/glibc/Jamfile": GLIBC_JAMFILE,
        "src/system/libroot/posix/glibc/printf.c": GLIBC_PRINTF_C,
        "src/system/libroot/posix/glibc/getc.c": GLIBC_GETC_C,
        "src/system/libroot/posix/glibc/strtol.c": GLIBC_STRTOL_C,
        "src/system/libroot/posix/glibc/strtoul.c": '#define UNSIGNED 1\n#include "strtol.c"\n',
        "src/system/libroot/posix/glibc/iofclose.c": GLIBC_IOFCLOSE_C,
        "headers/private/system/syscalls.h": SYSCALLS_H,
    })


def test_libroot_set_has_alias_macros_versions_and_generated_syscalls(libroot_tree: Path):
    lib = libroot_exports(libroot_tree)
    assert lib.binary == "libroot.so" and lib.missing == ()
    assert sorted(lib.c_names) == sorted([
        "initialize_before", "getpwnam", "getpid", "__ioctl", "ioctl", "__tick_beos", "__tick", "tick",
        "made_by_macro", "malloc", "free", "memcpy",
        "__printf", "printf", "_IO_getc", "getc", "fgetc", "strtoul",
        "_IO_new_fwidget", "_IO_fwidget", "__new_fwidget", "fwidget",
        "_kern_ioctl", "_kern_getpid",
    ])
    for name in ("pwd_query_only", "debug_only_malloc", "arm_only", "__internal_only", "strtol"):
        assert name not in lib.c_names, name
    # strtol.c on its own is not in the Jamfile; through strtoul.c, UNSIGNED is defined: only strtoul


def test_the_cache_is_keyed_by_the_files_and_survives_damage(libroot_tree: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = libroot_exports(libroot_tree, cache_dir=cache)
    assert not first.cached
    files = list(cache.glob("haiku-exports-libroot.so-*.json"))
    assert len(files) == 1
    again = libroot_exports(libroot_tree, cache_dir=cache)
    assert again.cached and again.c_names == first.c_names and again.files_scanned == first.files_scanned
    # a changed source (another size) is another key
    (libroot_tree / "src/system/libroot/posix/malloc.c").write_text("void* malloc(size_t n) { return 0; }\n")
    changed = libroot_exports(libroot_tree, cache_dir=cache)
    assert not changed.cached and "free" not in changed.c_names
    # a damaged cache file is scanned again and rewritten
    newest = max(cache.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_text("{not json")
    assert not libroot_exports(libroot_tree, cache_dir=cache).cached
    assert json.loads(newest.read_text())["binary"] == "libroot.so"


def test_export_set_json_round_trip(libroot_tree: Path):
    lib = libroot_exports(libroot_tree)
    back = ExportSet.from_json(json.loads(json.dumps(lib.to_json())), lib.tree)
    assert back is not None and back.c_names == lib.c_names and back.cxx_names == lib.cxx_names
    assert ExportSet.from_json({"c_names": "x"}, lib.tree) is None


# --- ELF ----------------------------------------------------------------------------------------

def test_elf_undefined_symbols_reads_the_symbol_table(tmp_path: Path):
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc, clang or gcc) to make an ELF object with")
    src = tmp_path / "t.c"
    src.write_text("extern int needed(int);\nextern void maybe(void) __attribute__((weak));\n"
                   "static int local(int x) { return x; }\n"
                   "int defined_here(int x) { if (maybe) maybe(); return needed(local(x)); }\n")
    obj = tmp_path / "t.o"
    subprocess.run([cc, "-c", "-fno-pic", "-o", str(obj), str(src)], check=True)
    assert elf_undefined_symbols(obj) == ["maybe", "needed"]
    assert elf_undefined_symbols(obj, include_weak=False) == ["needed"]


def test_elf_undefined_symbols_rejects_what_is_not_elf(tmp_path: Path):
    bad = tmp_path / "x.o"
    bad.write_bytes(b"not an object file at all, just some text padded out" * 2)
    with pytest.raises(PortError, match="not an ELF file"):
        elf_undefined_symbols(bad)
    with pytest.raises(PortError, match="cannot read"):
        elf_undefined_symbols(tmp_path / "absent.o")


# --- the real Haiku tree ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def haiku_tree() -> Path:
    value = os.environ.get("NVMM_PORT_HAIKU_TREE")
    if not value:
        # the Haiku target's sysroot, once gen.py build --target haiku imported it
        from nvmm_port.project import Project
        cached = Project.find().cache_root / "sysroots" / "haiku"
        if not cached.is_dir():
            pytest.skip("no Haiku tree: run `gen.py build --target haiku` (it imports the sysroot from the "
                        "haiku/haiku mirror) or point NVMM_PORT_HAIKU_TREE at one")
        value = str(cached)
    tree = Path(value)
    if not (tree / "src" / "system" / "kernel" / "Jamfile").is_file():
        pytest.skip(f"NVMM_PORT_HAIKU_TREE={value} has no src/system/kernel/Jamfile (absent or not a Haiku tree)")
    return tree


@pytest.fixture(scope="module")
def real_kernel(haiku_tree: Path) -> ExportSet:
    return kernel_exports(haiku_tree)


@pytest.fixture(scope="module")
def real_libroot(haiku_tree: Path) -> ExportSet:
    return libroot_exports(haiku_tree)


KERNEL_NAMES = [
    "dprintf", "panic", "create_area", "delete_area", "get_memory_map_etc", "lock_memory_etc",
    "unlock_memory_etc", "call_all_cpus_sync", "call_single_cpu_sync", "smp_get_current_cpu",
    "smp_get_num_cpus", "mutex_init", "_mutex_lock", "rw_lock_init", "user_memcpy", "malloc", "free",
    "memset", "memcpy", "gCPU", "vm_clone_area",
    "strtoul",               # kernel/lib's borrowed libroot posix sources
    "vfs_synchronous_io",    # vfs_request_io.cpp, which vfs.cpp includes
    "printf", "fprintf",     # util/kernel_cpp.cpp, for the C++ support code
]


def test_real_kernel_exports_what_an_addon_uses(real_kernel: ExportSet):
    missing = [n for n in KERNEL_NAMES if n not in real_kernel.c_names]
    assert not missing
    assert real_kernel.files_scanned > 250
    assert "VMCache::Init" in real_kernel.cxx_names


def test_real_kernel_lacks_misspelled_static_and_inline_names(real_kernel: ExportSet):
    assert "get_memory_map_etx" not in real_kernel.c_names
    # vm.cpp: `static status_t cut_area(...)`, `static status_t map_page(...)`
    for name in ("cut_area", "map_page"):
        assert name not in real_kernel.c_names and name not in real_kernel.cxx_names
    # thread.h: `static inline thread_id thread_get_current_thread_id(void)` - not exported
    assert "thread_get_current_thread_id" not in real_kernel.c_names
    # libroot-only names: the kernel is not libroot (though util/kernel_cpp.cpp defines printf)
    assert "pthread_create" not in real_kernel.c_names and "fopen" not in real_kernel.c_names


LIBROOT_NAMES = [
    "printf", "fprintf", "snprintf", "puts", "malloc", "free", "mmap", "munmap", "ioctl", "open", "close",
    "memset", "memcpy", "strcmp", "strlen", "exit", "getpid", "pthread_create", "pthread_join", "sysconf",
    "strtoul", "getopt", "fclose", "_kern_ioctl",
]


def test_real_libroot_exports_what_a_c_test_uses(real_libroot: ExportSet):
    missing = [n for n in LIBROOT_NAMES if n not in real_libroot.c_names]
    assert not missing
    assert real_libroot.files_scanned > 700


def test_real_libroot_lacks_libbsd_and_inline_names(real_libroot: ExportSet):
    # err()/errx() are declared in headers/compatibility/bsd/err.h: Haiku has them in libbsd.so
    assert "err" not in real_libroot.c_names and "errx" not in real_libroot.c_names
    # x86_64 fenv.h defines feclearexcept inline
    assert "feclearexcept" not in real_libroot.c_names
    assert "printx" not in real_libroot.c_names
