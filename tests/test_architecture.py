"""The import graph of ``src/xpnn``: no cycle, and imports flow one way.

backend (``_config``, ``_install``, ``_io``, ``_params``, ``_download`` -> ``_backend`` ->
``random``, ``data``) -> numerics (``gradient_check``) and ``coco`` -> ``layers`` and ``optim`` ->
``layer_utils`` and ``images`` -> ``classifiers``, ``solver`` and the layer declarations
(``registry``) -> ``layer_checks`` and the ``jax`` and ``torch`` bridges -> ``cs231n``
(re-exports) -> the package API (``xpnn/__init__``) -> ``cli``. Imports inside functions
count too: a cycle held together by a deferred import is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import xpnn

SRC = Path(xpnn.__file__).resolve().parent

#: Rank of each module (by dotted name prefix); a module may import only lower ranks, or
#: modules of its own rank inside its own package.
RANKS = [
    ("xpnn._config", 0),
    ("xpnn._install", 0),
    ("xpnn._io", 0),
    ("xpnn._params", 0),  # the one check of integer parameters (counts, sizes, strides)
    ("xpnn._loop", 0),  # the training loop shared by the Solver and the torch Trainer
    ("xpnn._download", 0),
    ("xpnn._backend", 1),
    ("xpnn._native", 2),  # native primitives (JAX's convolution) beside the portable code
    ("xpnn.random", 2),
    ("xpnn.data", 2),
    ("xpnn.vis", 2),  # image grids (the assignment's vis_utils): display code over NumPy
    ("xpnn.gradient_check", 3),
    ("xpnn.coco", 3),  # the COCO captioning files (data's directory, _download)
    ("xpnn.layers", 4),
    ("xpnn.optim", 5),
    ("xpnn.layer_utils", 5),
    ("xpnn.images", 5),  # the assignment's image_utils: reading images, and a blur (conv)
    ("xpnn.classifiers", 6),
    ("xpnn.solver", 6),
    ("xpnn.captioning_solver", 7),  # the Solver's loop for captions
    ("xpnn._compiled_step", 5),  # the Solver's jax.jit step (imports only jax)
    ("xpnn._data_parallel", 5),  # the Solver's device mesh and shardings (jax, _params)
    ("xpnn.registry", 6),  # the declarations of the layers (imports layers, layer_utils)
    ("xpnn.layer_checks", 7),  # numerical-gradient and oracle checks of declared layers
    ("xpnn.gradcheck", 8),  # deprecated alias of registry + layer_checks
    ("xpnn.torch", 7),  # the PyTorch bridge: autograd functions and nn modules over layers
    ("xpnn.jax", 7),  # the JAX bridge: layers as jax.custom_vjp functions
    ("xpnn.cs231n", 8),
    ("xpnn.bench", 8),  # timings of layers and models against PyTorch / jax.lax
    ("xpnn.cli", 10),
    ("xpnn.__main__", 11),
    ("xpnn", 9),  # the package's __init__: the public API
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom, modules) -> list[str]:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join([*base, node.module] if node.module else base)
    else:
        prefix = node.module or ""
    targets = []
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        targets.append(candidate if candidate in modules else prefix)
    return targets


def import_graph() -> dict[str, set[str]]:
    """``{module: {xpnn modules it imports}}``, from the source (not from sys.modules)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                edges.update(_resolve(name, path.name == "__init__.py", node, modules))
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _rank(module: str) -> int:
    return next(r for prefix, r in RANKS if module == prefix or module.startswith(prefix + "."))


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_imports_flow_one_way():
    upward = [
        f"{a} (rank {_rank(a)}) imports {b} (rank {_rank(b)})"
        for a, targets in import_graph().items()
        for b in targets
        if _rank(b) > _rank(a) or (_rank(b) == _rank(a) and _package(a) != _package(b))
    ]
    assert not upward, "\n".join(upward)


def test_the_cs231n_mirror_only_re_exports():
    """DESIGN.md: ``xpnn.cs231n`` holds the assignment's module names, the code is elsewhere."""
    for name, path in _modules().items():
        if name.startswith("xpnn.cs231n"):
            defined = [
                node.name
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            ]
            assert not defined, f"{name} defines {defined}: move them out of xpnn.cs231n"


def test_layers_import_no_test_machinery():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith(("xpnn.layers", "xpnn.layer_utils")):
            assert not {
                t
                for t in targets
                if t.startswith(
                    ("xpnn.gradient_check", "xpnn.gradcheck", "xpnn.layer_checks", "xpnn.registry")
                )
            }


def test_import_xpnn_runs_no_check_machinery():
    import subprocess
    import sys

    code = (
        "import sys, xpnn; print(sorted(m for m in sys.modules "
        "if m.startswith(('xpnn.gradcheck', 'xpnn.layer_checks'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_star_import_of_gradient_check_gives_the_assignment_names():
    namespace: dict = {}
    exec("from xpnn.gradient_check import *", namespace)
    names = {k for k in namespace if not k.startswith("__")}
    assert names == {
        "eval_numerical_gradient",
        "eval_numerical_gradient_array",
        "grad_check_sparse",
        "rel_error",
    }


def test_no_module_above_the_layers_imports_their_private_helpers():
    """Checks shared beyond the layers (arrays, integer parameters) live in ``_backend`` and
    ``_params``; ``layers._validate`` is the layers' own (and the sandwiches', which are
    layers too)."""
    offenders = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not module.startswith(("xpnn.layers", "xpnn.layer_utils"))
        for target in targets
        if target.startswith("xpnn.layers._")
    ]
    assert not offenders, "\n".join(offenders)
