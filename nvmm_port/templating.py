"""The package's one jinja2 environment, over the checkout's ``templates/``.

Every generated text that comes from a template (the port tree's glue, build files, compat headers
and PROVENANCE, the surface report, the new-target spec, the e2e boot files) is rendered here, with
the same settings: undefined names are errors (``StrictUndefined``), block tags leave no blank lines
(``trim_blocks``, ``lstrip_blocks``), a template's last newline is kept, nothing is HTML-escaped.

Templates choose no data: the Python that calls :func:`render` selects, filters and orders what a
template shows; a template only lays it out.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from .project import PACKAGE_DIR

TEMPLATES_DIR: Path = PACKAGE_DIR.parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    """The shared environment (built once; jinja2 caches the compiled templates in it)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


def template(name: str) -> jinja2.Template:
    """A template by its path under ``templates/`` (``"glue/glue.c.j2"``)."""
    return environment().get_template(name)


def render(name: str, /, **context: Any) -> str:
    """``templates/<name>`` rendered with ``context`` (which may hold a ``name`` of its own)."""
    return template(name).render(**context)
