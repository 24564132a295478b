"""Sphinx configuration. The build is offline, and so are the pages it writes.

No intersphinx or other fetches at build time; MathJax is bundled (sphinx-mathjax-offline
copies it into ``_static``) instead of being loaded from a CDN by the reader's browser.
``check_offline.py`` fails the docs session if a page still references a remote script.
"""

import xpnn

project = "xpnn"
author = "xpnn developers"
copyright = "2026, xpnn developers"
release = xpnn.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]
myst_enable_extensions = ["dollarmath", "amsmath"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"
html_theme = "furo"
html_title = f"xpnn {release}"
