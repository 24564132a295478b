"""The registry: every public layer is declared once, and everything derived from the
declarations sees every layer (the public names, the gradient-check matrix, the oracles, the
bridges, the derivation pages, the API reference).

A new layer that misses any of its three parts (module, declaration, derivation page) fails
here; so does a declaration whose oracle disagrees with the layer.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

import xpnn
from xpnn import layer_utils, layers, registry
from xpnn.layer_checks import run_oracle
from xpnn.registry import GradCase, Layer, Oracle, case, labels, nonzero

ROOT = Path(__file__).resolve().parents[1]
DECLARED = registry.BUILTIN_LAYERS
BACKEND = os.environ.get("XPNN_BACKEND", "numpy")


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --------------------------------------------------------------------------- completeness


def test_the_public_layer_functions_are_exactly_the_declared_ones():
    modules = set(layers.__all__) | set(layer_utils.__all__)
    declared = set(registry.public_names())
    assert modules - declared == set(), "public layer functions without a declaration"
    assert declared - modules == set(), "declared functions that no module exports"
    assert declared <= set(xpnn.__all__)
    from xpnn.cs231n import layers as cs231n_layers

    assert set(layers.__all__) <= set(cs231n_layers.__all__)


def test_every_public_forward_has_cases_of_its_own():
    forwards = {n for n in xpnn.__all__ if n.endswith("_forward") or n.endswith("_loss")}
    cased = {c.name for c in registry.registered_cases()}
    assert forwards - cased == set()
    assert len({d.name for d in DECLARED}) == len(DECLARED), "a layer declared twice"


@pytest.mark.parametrize("declaration", DECLARED, ids=[d.name for d in DECLARED])
def test_every_declaration_has_its_derivation_page(declaration):
    page = ROOT / "docs" / "derivations" / f"{declaration.derivation}.md"
    assert page.is_file(), f"{declaration.name}: no derivation page {page.relative_to(ROOT)}"
    text = page.read_text()
    for name in declaration.public_names:
        assert f"`{name}`" in text or f"{name}(" in text, f"{page.name} never names {name}"


@pytest.mark.parametrize("declaration", DECLARED, ids=[d.name for d in DECLARED])
def test_every_declaration_has_an_oracle_or_says_why_not(declaration):
    if declaration.oracle is None:
        assert len(declaration.no_oracle) > 20
    else:
        assert declaration.oracle.torch is not None or declaration.oracle.jax is not None


def test_every_layer_module_is_public():
    """The package gathers every module not starting with ``_``: a new module needs no edit
    of ``layers/__init__``, and each exports its functions through ``__all__``."""
    package = ROOT / "src" / "xpnn" / "layers"
    for path in package.glob("[!_]*.py"):
        module = importlib.import_module(f"xpnn.layers.{path.stem}")
        assert set(module.__all__) <= set(layers.__all__), path.name


@pytest.mark.skipif(not _has("jax"), reason="xpnn.jax needs jax")
def test_every_bridged_declaration_is_in_the_jax_bridge():
    import xpnn.jax as xj

    for d in DECLARED:
        if d.bridge is not None:
            assert d.bridge in xj.__all__ and callable(getattr(xj, d.bridge))


@pytest.mark.skipif(not _has("torch"), reason="xpnn.torch needs torch")
def test_every_bridged_declaration_is_in_the_torch_bridge():
    import xpnn.torch.functional as xf

    for d in DECLARED:
        if d.bridge is not None:
            assert d.bridge in xf.__all__ and callable(getattr(xf, d.bridge))


def test_the_api_reference_is_generated_from_the_registry():
    conf = (ROOT / "docs" / "conf.py").read_text()
    api = (ROOT / "docs" / "api.md").read_text()
    assert "registry" in conf and "<!-- registry:layers -->" in api
    assert not re.search(r"automodule:: xpnn\.layers\.\w+", api), "a hand-kept layer list"


# --------------------------------------------------------------------------- declarations


def _identity_forward(x):
    return x * 1, None


def test_a_declaration_without_cases_oracle_or_a_consistent_grads_is_refused():
    with pytest.raises(ValueError, match="at least one case"):
        Layer(_identity_forward, None, inputs=("x",), cases=(), derivation="x", no_oracle="-")
    with pytest.raises(ValueError, match="oracle"):
        Layer(_identity_forward, None, inputs=("x",), cases=(case(x=(2,)),), derivation="x")
    with pytest.raises(ValueError, match="lacks the inputs"):
        Layer(
            _identity_forward, None, inputs=("x", "y"), cases=(case(x=(2,)),), derivation="x",
            no_oracle="none",
        )  # fmt: skip
    with pytest.raises(ValueError, match="'y' is drawn as 'labels' but is in grads"):
        Layer(
            _identity_forward, None, inputs=("x", "y"), grads=("x", "y"),
            cases=(case(x=(2,), y=labels(2, 3)),), derivation="x", no_oracle="none",
        )  # fmt: skip


def test_bridge_keywords_are_checked():
    conv = registry.layer("conv_forward_fast")
    assert conv.arguments({"stride": 2}) == {"conv_param": {"stride": 2, "pad": 0}}
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['padding'\]"):
        conv.arguments({"padding": 1})
    with pytest.raises(TypeError, match="missing the keyword argument 'groups'"):
        registry.layer("spatial_groupnorm_forward").arguments({})
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        registry.layer("nope")


def _softsign_forward(x):
    out = x / (1 + abs(x))
    return out, x


def _softsign_backward(dout, x):
    return dout / (1 + abs(x)) ** 2


SOFTSIGN = Layer(
    _softsign_forward,
    _softsign_backward,
    inputs=("x",),
    cases=(case(x=nonzero(3, 4)),),
    derivation="softsign",
    oracle=Oracle(
        torch=lambda torch, x: torch.nn.functional.softsign(x),
        jax=lambda jax, x: jax.nn.soft_sign(x),
    ),
    bridge="softsign",
)


def test_a_registered_layer_reaches_the_checks_and_the_bridges(monkeypatch):
    """A layer of one's own: declared and registered, it is gradient-checked by the same
    matrix, and the bridges make it a differentiable function."""
    monkeypatch.setattr(registry, "_LAYERS", [])
    registry.register_layer(SOFTSIGN)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_layer(SOFTSIGN)
    assert [c.name for c in registry.registered_cases()][-1] == "_softsign_forward"
    if _has("torch"):
        import torch

        import xpnn.torch.functional as xf

        x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(xf.function(SOFTSIGN), (x,))
    if _has("jax") and BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        import xpnn.jax as xj

        fn = xj.function(SOFTSIGN)
        x = jnp.linspace(-2.0, 2.0, 7)
        np.testing.assert_allclose(jax.grad(lambda v: fn(v).sum())(x), 1 / (1 + abs(x)) ** 2)


# --------------------------------------------------------------------------- oracles


def _framework() -> str | None:
    if BACKEND != "jax" and _has("torch"):
        return "torch"
    if BACKEND == "jax":
        return "jax"
    return None


FRAMEWORK = _framework()
ORACLE_CASES = [
    (d, c)
    for d in DECLARED
    if d.oracle is not None and getattr(d.oracle, FRAMEWORK or "torch") is not None
    # every case against torch; in the JAX session (compile-heavy, and the same layers'
    # torch oracles run in the other sessions) the first case of each layer
    for c in (d.grad_cases() if FRAMEWORK == "torch" else d.grad_cases()[:1])
]


@pytest.mark.skipif(FRAMEWORK is None, reason="no oracle framework (torch or jax) installed")
@pytest.mark.parametrize(
    ("declaration", "case_"),
    ORACLE_CASES,
    ids=[f"{c.name}[{c.describe()}]" for _, c in ORACLE_CASES],
)
def test_every_layer_agrees_with_its_oracle(bk, declaration, case_):
    """xpnn's forward and backward, on the selected backend, against an independent
    implementation differentiated by PyTorch autograd (or jax.vjp in the JAX session)."""
    result = run_oracle(case_, declaration.oracle, FRAMEWORK, xp=bk.xp, device=bk.device)
    assert result.passed, f"{case_.name}: {result.worst} off by {result.ratio:.3g}x the tolerance"


@pytest.mark.skipif(FRAMEWORK is None, reason="no oracle framework (torch or jax) installed")
def test_a_planted_wrong_backward_is_caught_by_the_oracle():
    """The oracle check can fail: leaky ReLU's backward with the slope forgotten."""
    declaration = registry.layer("leaky_relu_forward")
    good = declaration.grad_cases()[1]  # slope 0.2
    from xpnn.layers.leaky_relu import leaky_relu_backward

    def forgotten_slope(dout, cache):
        return leaky_relu_backward(dout, cache._replace(negative_slope=0.0))

    wrong = GradCase(good.name, good.forward, forgotten_slope, good.inputs, good.params)
    assert run_oracle(good, declaration.oracle, FRAMEWORK).passed
    result = run_oracle(wrong, declaration.oracle, FRAMEWORK)
    assert not result.passed and result.worst == "x"


# --------------------------------------------------------------------------- bridge calls


def _bridges():
    modules = []
    if _has("torch"):
        import xpnn.torch.functional as xf

        modules.append(xf)
    if _has("jax") and BACKEND == "jax":
        import xpnn.jax as xj

        modules.append(xj)
    return modules


def test_bridge_functions_have_real_signatures_and_take_arrays_by_name():
    import inspect

    for module in _bridges():
        assert str(inspect.signature(module.conv)) == "(x, w, b, *, stride=1, pad=0)"
        assert str(inspect.signature(module.batchnorm)) == (
            "(x, gamma, beta, running_mean, running_var, *, train, momentum=0.9, eps=1e-05)"
        )
        x = np.arange(6.0).reshape(2, 3)
        w = np.ones((3, 2))
        b = np.zeros(2)
        if module.__name__.startswith("xpnn.torch"):
            import torch

            x, w, b = (torch.tensor(a) for a in (x, w, b))
        out = module.affine(x, w=w, b=b)
        np.testing.assert_allclose(np.asarray(out), [[3.0, 3.0], [12.0, 12.0]])
        with pytest.raises(TypeError, match=r"affine\(\): missing a required argument: 'b'"):
            module.affine(x, w)
        with pytest.raises(TypeError, match=r"conv\(\): got an unexpected keyword argument"):
            module.conv(x, w, b, padding=1)
        doc = module.conv.__doc__
        assert "x : array, shape (N, C, H, W)" in doc and "stride : int, default 1" in doc
