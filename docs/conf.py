"""Sphinx configuration for hyper's documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` from the
repository root. Nothing here needs the network.
"""

from __future__ import annotations

import os
import sys

# Document the hyper in this checkout, whether or not it is installed.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import hyper

project = "hyper"
author = "The hyper developers"
copyright = "the hyper developers"
release = hyper.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

# intersphinx is loaded, but no inventories are configured: the build never fetches
# anything over the network (links to the standard library stay plain text).
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []
default_role = "py:obj"
pygments_style = "sphinx"

# -- autodoc -------------------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
# Show the request helpers' long unions under their alias names (documented in api.rst).
# Aliases used as ``Alias | None`` are left out: Sphinx cannot print such a union of an
# alias, and expands it instead.
autodoc_type_aliases = {
    "BodyArg": "hyper.common.request.BodyArg",
    "TimeoutArg": "hyper.http20.connection.TimeoutArg",
    "RequestTimeoutArg": "hyper.common.util.RequestTimeoutArg",
    "HeaderText": "hyper.common.headers.HeaderText",
    "HeaderSource": "hyper.common.headers.HeaderSource",
}
python_use_unqualified_type_names = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "alabaster"
html_title = f"hyper {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "A synchronous HTTP/2 client for Python, in the shape of http.client.",
    "fixed_sidebar": False,
    "show_relbars": True,
}
html_sidebars = {
    "**": ["about.html", "navigation.html", "relations.html", "searchbox.html"],
}
