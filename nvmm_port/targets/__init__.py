"""Targets: the TargetSpec schema, rendering a port tree from the model, compat headers, extract and scaffold.

Imports: analysis/, upstream/ and the base layer."""
