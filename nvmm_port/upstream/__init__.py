"""Upstream NVMM: known layouts, the provenance lock and syncing a tree into the cache.

Imports: the base layer (errors, project, tomlw) only."""
