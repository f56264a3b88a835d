"""nvmm-port: retarget the NVMM hypervisor to other kernels.

Layers (one module per concern):
  project   where the project, its locks and the upstream cache live
  layout    known upstream layouts and the normalised internal view
  lock      the provenance lock file (TOML)
  sync      importing an upstream tree into the cache
  cpp       preprocessor-conditional structure (variation points)
  clangparse  libclang front end (the only module that touches clang.cindex)
  model     the typed model of upstream every generator reads
  analyze   builds the model
  catalog   the BSD compatibility catalog (shim/bsd)
  report    JSON / Markdown renderings of the model
  cli       the command line
"""

__version__ = "0.1.0"
