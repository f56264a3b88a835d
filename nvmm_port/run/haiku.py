"""``gen.py build`` for Haiku: compile the add-on, libnvmm and the tests for x86_64-unknown-haiku on
this machine, link them, and check every symbol they need against Haiku's own tree.

No Haiku machine, compiler or kernel binary is reachable here, so the build stands in for Haiku's:

- **Compiler**: Debian's clang with ``--target=x86_64-unknown-haiku`` (a configuration Haiku itself
  supports, ``configure --use-clang``).  The flags are Haiku's, reconstructed from its build rules at
  the sysroot's revision (build/jam/ArchitectureRules ``KernelArchitectureSetup`` and
  ``ArchitectureSetup``, KernelRules ``SetupKernel``, BuildSetup's target defines); the compiler's
  own resource headers stand in for gcc-headers and Debian's libstdc++ headers for
  gcc_syslibs_devel's C++ headers, both packages Haiku ships and this machine cannot reach.
- **Headers and defines of each object**: read from the generated Jamfile (:mod:`.jam`), in the
  order Haiku's ``Object`` rule uses: ``-iquote`` the config headers, SEARCH_SOURCE and the local
  headers; ``-I`` the directory's and the object's system headers, then Haiku's standard headers
  (``FStandardHeaders``: C++ headers, glibc, posix, the compiler's, headers, the public OS headers,
  headers/private).
- **Warnings**: the glue is compiled with ``-Werror`` (its Jamfile flags); upstream's files keep
  their warnings, which are reported per file.  C is compiled with implicit declarations, implicit
  int, int conversions and incompatible pointers as errors, since a missing name in the compat
  layer would otherwise only warn.
- **Link**: the add-on is linked as Haiku's ``KernelAddon`` rule links one, a shared object named
  after the module (``ld -shared -soname``, ``-z noseparate-code -z norelro``), without kernel.so,
  which does not exist here: its undefined symbols are then checked against the kernel's export set
  established from Haiku's sources at the sysroot's revision (:mod:`.haiku_exports`), and the
  libgcc helpers Haiku links into every add-on (the host libgcc's names stand for them).  Any symbol
  neither provides is an error naming it and the object that needs it.
- **Userland**: libnvmm.a and each test program are compiled for Haiku's userland; each program is
  linked relocatable (``ld -r``) with libnvmm.a and what it leaves undefined is checked against
  libroot's export set the same way.

Objects live in the object directory (``<out>.obj/``): an object is compiled again only when its
command line, its source or a header it read (clang's dependency file) changed, so a second build
compiles nothing.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import ui
from ..analysis.model import Surface
from ..errors import PortError
from ..project import Project
from ..targets.generate import render_tree
from ..targets.spec import TargetSpec
from ..targets.writer import WriteReport, write_tree
from ..upstream import sysroot as sysroots
from . import haiku_exports
from .jam import Jamfile, JamVars, SourceFlags, read_jamfile
from .objdir import mirror_tree, objdir_of

TRIPLE = "x86_64-unknown-haiku"
ARCH = "x86_64"
KERNEL_PLATFORM = "bios_ia32"        # HAIKU_KERNEL_PLATFORM of x86_64 (its kernel headers' boot platform)

# BuildSetup: TARGET_DEFINES of every target object; SetupKernel adds _KERNEL_MODE
TARGET_DEFINES = ("ARCH_x86_64", '__HAIKU_PRIMARY_PACKAGING_ARCH="x86_64"', "HAIKU_DISTRO_COMPATIBILITY_DEFAULT",
                  "HAIKU_TARGET_PLATFORM_HAIKU")
KERNEL_DEFINES = ("_KERNEL_MODE",)

# ArchitectureRules: HAIKU_CCFLAGS (-nostdinc, strict aliasing off, null checks kept), the kernel's
# base flags, x86_64's -mno-red-zone and frame pointers, and the optimisation level.  -fPIC: Haiku's
# GCC makes position-independent code by default (add-ons are shared objects); clang 14's Haiku
# target does not, so it is asked for
KERNEL_FLAGS = ("-fPIC", "-nostdinc", "-fno-strict-aliasing", "-fno-delete-null-pointer-checks", "-ffreestanding",
                "-finline", "-fno-semantic-interposition", "-fno-tree-vectorize", "-mno-red-zone",
                "-fno-omit-frame-pointer", "-O2")
USER_FLAGS = ("-fPIC", "-nostdinc", "-fno-strict-aliasing", "-fno-delete-null-pointer-checks", "-O2",
              # clang knows vfork as a builtin of another type than Haiku's unistd.h declares; GCC does not
              "-Wno-incompatible-library-redeclaration")
# ArchitectureRules: HAIKU_WARNING_CCFLAGS / C++FLAGS, with the ones clang builds add
C_WARNINGS = ("-Wall", "-Wno-multichar", "-Wpointer-arith", "-Wsign-compare", "-Wmissing-prototypes",
              "-Wno-unused-private-field", "-Wno-gnu-designator", "-Wno-builtin-requires-header")
CXX_WARNINGS = ("-Wall", "-Wno-multichar", "-Wpointer-arith", "-Wsign-compare", "-Wno-ctor-dtor-privacy",
                "-Woverloaded-virtual", "-Wno-unused-private-field", "-Wno-gnu-designator",
                "-Wno-builtin-requires-header", "-Wno-non-c-typedef-for-linkage", "-Wno-non-power-of-two-alignment",
                # Haiku's VM headers declare some types both as class and struct: only clang warns
                "-Wno-mismatched-tags")
# C: a name the compat layer lacks must not compile (GCC 13, Haiku's compiler, errs on these too)
C_STRICT = ("-Werror=implicit-function-declaration", "-Werror=implicit-int", "-Werror=int-conversion",
            "-Werror=incompatible-pointer-types")
CXX_FLAGS = ("-fno-exceptions",
             # GCC only warns (-Wnarrowing) where clang errs; Haiku builds with GCC
             "-Wno-error=c++11-narrowing",
             # Debian's libstdc++ is configured for glibc; no Haiku header uses the macro
             "-D__GLIBC_PREREQ(maj,min)=0")
# KernelRules KernelAddon + ArchitectureRules HAIKU_KERNEL_ADDON_LINKFLAGS (clang builds)
ADDON_LINK = ("-shared", "-z", "noseparate-code", "-z", "norelro")
# shared libraries a userland program may link besides libroot: where their Jamfiles are
USER_LIBRARIES = {"libbsd.so": "src/libs/bsd"}
# HeadersRules FStandardOSHeaders
OS_HEADER_DIRS = ("add-ons", "add-ons/file_system", "add-ons/graphics", "add-ons/input_server", "add-ons/registrar",
                  "add-ons/screen_saver", "add-ons/tracker", "app", "device", "drivers", "game", "interface", "kernel",
                  "locale", "media", "mail", "midi", "midi2", "net", "storage", "support", "translation")

_DIAG = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? (?P<kind>warning|error): (?P<msg>.*)$", re.M)


@dataclass
class Toolchain:
    """Where the tools and the stand-in headers are on this machine."""

    cc: str
    cxx: str
    ld: str
    ar: str
    nm: str
    resource_include: Path           # the compiler's own headers (stand-in for gcc-headers)
    cxx_include: list[Path]          # libstdc++ headers (stand-in for gcc_syslibs_devel)
    libgcc: Path | None

    @classmethod
    def find(cls) -> Toolchain:
        missing = [t for t in ("clang", "clang++", "ld", "ar", "nm") if shutil.which(t) is None]
        if missing:
            raise PortError(f"{', '.join(missing)} not found", None,
                            "run `python gen.py setup --for build` (it installs clang and binutils)")
        res = subprocess.run(["clang", "-print-resource-dir"], capture_output=True, text=True, check=False)
        resource = Path(res.stdout.strip()) / "include"
        versions = sorted((p for p in Path("/usr/include/c++").glob("[0-9]*") if p.is_dir()),
                          key=lambda p: int(p.name) if p.name.isdigit() else 0)
        if not versions:
            raise PortError("no libstdc++ headers in /usr/include/c++", None,
                            "run `python gen.py setup --for build` (clang brings libstdc++-dev)")
        v = versions[-1]
        cxx = [v, Path(f"/usr/include/x86_64-linux-gnu/c++/{v.name}"), v / "backward"]
        gcc = shutil.which("gcc")
        libgcc = None
        if gcc:
            out = subprocess.run([gcc, "-print-libgcc-file-name"], capture_output=True, text=True, check=False)
            path = Path(out.stdout.strip())
            libgcc = path if path.is_file() else None
        return cls("clang", "clang++", "ld", "ar", "nm", resource, cxx, libgcc)


@dataclass
class Object:
    source: str                      # tree-relative
    obj: str                         # objdir-relative
    cmd: list[str]
    world: str                       # kernel | user


@dataclass
class AddonBuilt:
    spec: TargetSpec
    out: Path
    objdir: Path
    sysroot: sysroots.Sysroot
    addon: Path
    kernel_exports: haiku_exports.ExportSet
    libroot_exports: haiku_exports.ExportSet | None
    needed: list[str]                          # the add-on's undefined symbols, all provided
    objects: dict[str, int] = field(default_factory=dict)      # object -> bytes
    library: Path | None = None
    programs: dict[str, Path] = field(default_factory=dict)    # name -> relocatable program
    program_needs: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    compiled: list[str] = field(default_factory=list)
    rendered: WriteReport = field(default_factory=WriteReport)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Headers:
    """The include directories Haiku's build rules give every target object (absolute)."""

    def __init__(self, root: Path, tools: Toolchain, objdir: Path):
        self.root = root
        self.tools = tools
        # ArchitectureRules HAIKU_PRIVATE_KERNEL_HEADERS; the generated kernel headers dir
        # (objects/.../system/kernel: syscall tables, asm offsets) is empty here
        gen = objdir / ".haiku" / "objects" / "system" / "kernel"
        gen.mkdir(parents=True, exist_ok=True)
        p = root / "headers" / "private"
        self.private_kernel = [p / "kernel", p / "libroot", p / "shared", p / "kernel" / "boot" / "platform" /
                               KERNEL_PLATFORM, p / "kernel" / "arch" / "x86", gen, p / "system",
                               p / "system" / "arch" / ARCH]
        self.config = [root / "build" / "config_headers"]

    def standard(self, cxx: bool) -> list[Path]:
        """HeadersRules FStandardHeaders."""
        h = self.root / "headers"
        return ([*self.tools.cxx_include] if cxx else []) + [
            h / "glibc", h / "posix", self.tools.resource_include, h, h / "os",
            *(h / "os" / d for d in OS_HEADER_DIRS), h / "private"]


def _command(tools: Toolchain, headers: Headers, jam: Jamfile, source: str, obj: str, world: str) -> list[str]:
    """One object's compile command, as Haiku's Cc / C++ / As actions lay it out."""
    flags = jam.sources.get(Path(source).name, SourceFlags())
    ext = Path(source).suffix
    cxx = ext in (".cpp", ".cc")
    asm = ext in (".S", ".s")
    defines = list(TARGET_DEFINES) + (list(KERNEL_DEFINES) if world == "kernel" else []) + flags.defines
    local = [*map(str, headers.config), *jam.search, *jam.hdrs, *flags.hdrs]
    system = [*jam.sys_hdrs, *flags.sys_hdrs, *map(str, headers.standard(cxx))]
    incs = [a for d in local for a in ("-iquote", d)] + [a for d in system for a in ("-I", d)]
    base = KERNEL_FLAGS if world == "kernel" else USER_FLAGS
    if asm:
        cmd = [tools.cc, f"--target={TRIPLE}", "-c", source, "-O2", "-fPIC", "-nostdinc", "-D_ASSEMBLER"]
    elif cxx:
        cmd = [tools.cxx, f"--target={TRIPLE}", "-x", "c++", *base, *CXX_WARNINGS, *CXX_FLAGS, *jam.cxxflags,
               *flags.cxxflags, "-c", source]
    else:
        cmd = [tools.cc, f"--target={TRIPLE}", "-x", "c", *base, *C_WARNINGS, *C_STRICT, *jam.ccflags, *flags.ccflags,
               "-c", source]
    return [*cmd, *(f"-D{d}" for d in defines), *incs, "-MD", "-MF", obj + ".d", "-o", obj]


def _stale(objdir: Path, o: Object) -> bool:
    """Compile again unless the object exists with the same command and nothing it read is newer."""
    obj = objdir / o.obj
    cmdfile = objdir / (o.obj + ".cmd")
    if not obj.is_file() or not cmdfile.is_file() or cmdfile.read_text() != "\0".join(o.cmd):
        return True
    dep = objdir / (o.obj + ".d")
    if not dep.is_file():
        return True
    built = obj.stat().st_mtime_ns
    text = dep.read_text().replace("\\\n", " ")
    for word in text.partition(":")[2].split():
        p = Path(word) if os.path.isabs(word) else objdir / word
        try:
            if p.stat().st_mtime_ns > built:
                return True
        except OSError:
            return True
    return False


def _compile(objdir: Path, o: Object) -> tuple[Object, int, str]:
    (objdir / o.obj).parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(o.cmd, cwd=objdir, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode == 0:
        (objdir / (o.obj + ".err")).write_text(proc.stderr)
        (objdir / (o.obj + ".cmd")).write_text("\0".join(o.cmd))
    return o, proc.returncode, proc.stderr


def compile_all(objdir: Path, objects: list[Object], jobs: int, log: Path,
                update: Callable[[str], None]) -> tuple[list[str], dict[str, list[str]]]:
    """Compile the stale objects (``jobs`` at a time); return those compiled and every warning by file.
    The first failure raises with its first error; the whole output is in ``log``."""
    todo = [o for o in objects if _stale(objdir, o)]
    failed: list[tuple[Object, str]] = []
    with open(log, "a", encoding="utf-8") as f, \
            concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for o, rc, err in pool.map(lambda o: _compile(objdir, o), todo):
            update(f"{'CXX' if o.source.endswith('.cpp') else 'CC'} {o.source}")
            f.write("$ " + " ".join(o.cmd) + "\n" + err)
            if rc != 0:
                failed.append((o, err))
    if failed:
        o, err = failed[0]
        first = next((m for m in _DIAG.finditer(err) if m.group("kind") == "error"), None)
        what = f"{first.group('file')}:{first.group('line')}: {first.group('msg')}" if first else \
            (err.strip().splitlines() or ["no message"])[-1]
        raise PortError(f"{len(failed)} object(s) did not compile for Haiku; first: {what}", log,
                        "fix the spec's glue or variation points (the log has every command and message)")
    # every object's warnings, those compiled earlier too (kept beside the object): an up-to-date
    # build reports what a full one would
    warnings: dict[str, list[str]] = {}
    for o in objects:
        saved = objdir / (o.obj + ".err")
        for m in _DIAG.finditer(saved.read_text() if saved.is_file() else ""):
            if m.group("kind") == "warning":
                warnings.setdefault(m.group("file"), []).append(f"{m.group('line')}: {m.group('msg')}")
    return [o.source for o in todo], warnings


def _run(cmd: list[str], log: Path, what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise PortError(f"{what} failed: {last}", log, "see the log for the whole command and output")
    return proc.stdout


def undefined_symbols(tools: Toolchain, path: Path, dynamic: bool, log: Path) -> list[str]:
    """The symbols ``path`` leaves undefined (``nm -u``; ``-D`` for a shared object's dynamic table)."""
    out = _run([tools.nm, "-u", *(["-D"] if dynamic else []), str(path)], log, f"nm {path.name}")
    return sorted({line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()})


def defined_symbols(tools: Toolchain, path: Path, log: Path) -> set[str]:
    out = _run([tools.nm, "--defined-only", "-g", str(path)], log, f"nm {path.name}")
    return {parts[-1] for parts in (line.split() for line in out.splitlines()) if len(parts) >= 3}


def _who_needs(tools: Toolchain, objdir: Path, objects: list[str], names: list[str], log: Path) -> dict[str, list[str]]:
    """For each symbol, the objects that leave it undefined."""
    users: dict[str, list[str]] = {n: [] for n in names}
    for obj in objects:
        for sym in undefined_symbols(tools, objdir / obj, False, log):
            if sym in users:
                users[sym].append(obj)
    return users


def build_addon(project: Project, spec: TargetSpec, surface: Surface, cache: Path, out: Path, flatten: bool,
                jobs: int, progress: ui.Progress = ui.SILENT) -> AddonBuilt:
    """Render TARGET's tree, compile, link and check it for Haiku (see the module's docstring)."""
    start = time.monotonic()
    if not spec.sysroot.name:
        raise PortError(f"{spec.name} builds with Jam but has no [sysroot]", spec.toml_path,
                        "add [sysroot] with the Haiku tree it compiles against (name, git, ref, paths)")
    tools = Toolchain.find()
    root = sysroots.ensure(project, sysroots.SysrootSpec(spec.sysroot.name, spec.sysroot.git, spec.sysroot.ref,
                                                         tuple(spec.sysroot.paths), str(spec.toml_path)), progress)
    tree = render_tree(project, spec, surface, cache, flatten)
    report = write_tree(tree, out)
    objdir = objdir_of(out)
    mirror_tree(tree, objdir)
    log = objdir / "build.log"
    log.write_text(f"# gen.py build --target {spec.name}: Haiku {root.commit[:12]} ({root.root})\n")
    headers = Headers(root.root, tools, objdir)
    jam = read_jamfile(objdir / "Jamfile", objdir, JamVars(root.root, headers.private_kernel))
    addons = jam.target("KernelAddon")
    if len(addons) != 1:
        raise PortError(f"the Jamfile has {len(addons)} KernelAddon rules", objdir / "Jamfile", "it needs one")
    addon_t = addons[0]

    def obj_of(src: str) -> str:
        return str(Path(src).with_suffix(".o"))
    objects = [Object(s, obj_of(s), _command(tools, headers, jam, s, obj_of(s), "kernel"), "kernel")
               for s in addon_t.sources]
    user_t = jam.target("StaticLibrary") + jam.target("SimpleTest")
    seen = {o.source for o in objects}
    for t in user_t:
        for s in t.sources:
            if s not in seen:
                seen.add(s)
                objects.append(Object(s, obj_of(s), _command(tools, headers, jam, s, obj_of(s), "user"), "user"))
    with progress.task(f"compiling {len(objects)} objects for {TRIPLE}") as update:
        compiled, warnings = compile_all(objdir, objects, jobs, log, update)

    kernel_objs = [obj_of(s) for s in addon_t.sources]
    addon = objdir / addon_t.name
    with progress.task(f"linking and checking {addon_t.name}") as update:
        update("ld -shared")
        _run([tools.ld, *ADDON_LINK, f"-soname={addon_t.name}", "-o", str(addon), *(str(objdir / o) for o in
                                                                                  kernel_objs)],
             log, f"linking {addon_t.name}")
        update("the kernel's export set")
        kexports = haiku_exports.kernel_exports(root.root, cache_dir=objdir / ".haiku")
        libgcc = defined_symbols(tools, tools.libgcc, log) if tools.libgcc else set()
        needed = undefined_symbols(tools, addon, True, log)
        missing = haiku_exports.unresolved(needed, kexports, also=libgcc)
    if missing:
        users = _who_needs(tools, objdir, kernel_objs, missing, log)
        raise PortError(
            f"{len(missing)} symbol(s) the add-on needs are not exported by Haiku's kernel at "
            f"{root.commit[:12]}: " + "; ".join(f"{m} (needed by {', '.join(users[m]) or addon_t.name})"
                                                for m in missing),
            addon, "use what the kernel exports (a misspelled or private kernel function?), or define it in the glue")

    built = AddonBuilt(spec, out, objdir, root, addon, kexports, None, needed,
                       {o: (objdir / o).stat().st_size for o in kernel_objs}, warnings=warnings,
                       compiled=compiled, rendered=report)
    if user_t:
        _userland(tools, objdir, jam, root, built, log, obj_of, libgcc, progress)
    built.seconds = time.monotonic() - start
    return built


def _userland(tools: Toolchain, objdir: Path, jam: Jamfile, root: sysroots.Sysroot, built: AddonBuilt, log: Path,
              obj_of: Callable[[str], str], libgcc: set[str], progress: ui.Progress) -> None:
    """Archive libnvmm, link each program relocatable with it and check it against libroot."""
    libs: dict[str, Path] = {}
    with progress.task("checking libnvmm and the tests against libroot") as update:
        for t in jam.target("StaticLibrary"):
            archive = objdir / "libnvmm" / t.name if t.name == "libnvmm.a" else objdir / t.name
            archive.unlink(missing_ok=True)
            update(f"AR {t.name}")
            _run([tools.ar, "rcs", str(archive), *(str(objdir / obj_of(s)) for s in t.sources)], log, f"ar {t.name}")
            libs[t.name] = archive
            built.library = archive
        lexports = haiku_exports.libroot_exports(root.root, cache_dir=objdir / ".haiku")
        built.libroot_exports = lexports
        shared: dict[str, haiku_exports.ExportSet] = {}
        problems: list[str] = []
        for t in jam.target("SimpleTest"):
            update(f"LD -r {t.name}")
            prog = objdir / Path(t.sources[0]).parent / t.name      # relocatable: libroot's symbols left open
            unknown = [lib for lib in t.libs if lib not in libs and lib not in USER_LIBRARIES]
            if unknown:
                raise PortError(f"{t.name} links {', '.join(unknown)}, which neither the Jamfile builds nor "
                                f"this build knows in Haiku's tree ({', '.join(USER_LIBRARIES)})",
                                objdir / "Jamfile", "generate the tree again")
            _run([tools.ld, "-r", "-o", str(prog), *(str(objdir / obj_of(s)) for s in t.sources),
                  *(str(libs[lib]) for lib in t.libs if lib in libs)], log, f"linking {t.name}")
            needs = undefined_symbols(tools, prog, False, log)
            built.programs[t.name] = prog
            built.program_needs[t.name] = needs
            others = set(libgcc)
            for lib in t.libs:
                if lib in USER_LIBRARIES:
                    if lib not in shared:
                        shared[lib] = haiku_exports.library_exports(root.root, USER_LIBRARIES[lib], lib,
                                                                    cache_dir=objdir / ".haiku")
                    others |= shared[lib].c_names
            for m in haiku_exports.unresolved(needs, lexports, also=others):
                problems.append(f"{m} (needed by {t.name})")
    if problems:
        raise PortError(f"{len(problems)} symbol(s) the userland programs need are not in Haiku's libroot at "
                        f"{root.commit[:12]}: " + "; ".join(problems), objdir / "Jamfile",
                        "use what libroot provides, or fill the variation point that uses it")
