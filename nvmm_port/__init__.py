"""nvmm-port: retarget the NVMM hypervisor to other kernels.

The package follows the porter's flow, one subpackage per stage.  Layering rule: a module imports
only from its own subpackage or from a layer *below* it, never from one above (checked by
tests/test_layers.py).  From the bottom up:

  errors, project, tomlw, ui   the base: user-facing errors, where a project's files live, the TOML
                               writer, progress and messages for the command line
  upstream/     layout, lock, sync: import an upstream tree into the cache with provenance
  analysis/     preprocessor (conditional structure, three-valued #if), clangparse (the only
                libclang user), cdecl, catalog (the BSD names), model (the typed model every
                later stage reads), analyze (builds it), report (md / json renderings)
  targets/      spec (the TargetSpec schema and its validation), render (variation points and the
                contract), compat (BSD compat headers), writer (the output trees it owns), generate,
                extract, scaffold
  run/          build (Kbuild, userland, Jam, hosted), bootimage, bochs, e2e, hosted, fuzz, mutate
  cli           the command line: parses arguments, calls the library, prints

Library functions take typed arguments and return results; only ``cli`` parses arguments.
"""

__version__ = "0.1.0"
