"""Sphinx configuration. The build is offline, and so are the pages it writes.

The layers' part of the API reference is generated from their declarations
(:mod:`xpnn.registry`): ``api.md``'s marker ``<!-- registry:layers -->`` becomes a table of
the declared layers and the autodoc entries of their functions, module by module.

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


def _layers_reference() -> str:
    """Markdown for the marker in api.md: a table of the declared layers, then autodoc."""
    from xpnn.registry import BUILTIN_LAYERS

    rows = [
        "| forward | backward | derivation | oracle | bridges |",
        "|---|---|---|---|---|",
    ]
    modules: dict[str, list[str]] = {}
    for d in BUILTIN_LAYERS:
        backwards = ", ".join(f"`{f.__name__}`" for f in d.functions[1:]) or "(returns `dx`)"
        oracle = (
            ", ".join(k for k in ("torch", "jax") if getattr(d.oracle, k) is not None)
            if d.oracle is not None
            else "none: " + d.no_oracle
        )
        bridges = f"`xpnn.jax.{d.bridge}`, `xpnn.torch.functional.{d.bridge}`" if d.bridge else ""
        page = f"[{d.derivation}](derivations/{d.derivation}.md)"
        rows.append(f"| `{d.name}` | {backwards} | {page} | {oracle} | {bridges} |")
        for f in d.functions:
            modules.setdefault(f.__module__, []).append(f.__name__)
    autodoc = ["```{eval-rst}"]
    for module, names in modules.items():
        autodoc += [f".. automodule:: {module}", f"   :members: {', '.join(names)}", ""]
    autodoc.append("```")
    return "\n".join([*rows, "", *autodoc])


def _insert_generated(app, docname, source):
    if docname == "api":
        source[0] = source[0].replace("<!-- registry:layers -->", _layers_reference())


def setup(app):
    app.connect("source-read", _insert_generated)
