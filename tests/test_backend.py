"""Backend selection, conversion and the mixed-backend errors."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

import xpnn
from xpnn import conv_forward_fast, get_backend, to_backend, use_backend
from xpnn._backend import array_namespace, backend_name


def test_default_backend_is_numpy():
    assert get_backend() == "numpy"


def test_use_backend_as_context_manager_restores(bk):
    with use_backend(bk.name) as name:
        assert name == bk.name and get_backend() == bk.name
        with use_backend("numpy"):
            assert get_backend() == "numpy"
        assert get_backend() == bk.name
    assert get_backend() == "numpy"


def test_use_backend_as_setter(bk):
    try:
        use_backend(bk.name)
        assert get_backend() == bk.name
    finally:
        use_backend("numpy")
    assert get_backend() == "numpy"


def test_unknown_backend_lists_the_valid_names():
    with pytest.raises(
        ValueError, match=r"backend must be one of 'numpy', 'jax'.*got 'tensorflow'"
    ):
        use_backend("tensorflow")


def test_missing_backend_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "jax":
            raise ImportError("No module named 'jax'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr("importlib.import_module", lambda name: fake_import(name))
    with pytest.raises(
        ImportError, match=r"not installed; install it with: pip install .*\[jax\]'"
    ):
        xpnn.get_namespace("jax")


def test_to_backend_moves_nested_containers(bk):
    tree = {
        "W1": np.arange(6.0).reshape(2, 3),
        "layers": [np.ones(2, dtype=np.float32), (np.zeros(1), "relu", 3)],
        "lr": 1e-3,
    }
    moved = to_backend(tree, bk.name, device=bk.device)
    assert backend_name(moved["W1"]) == bk.name
    assert backend_name(moved["layers"][0]) == bk.name
    assert moved["layers"][0].dtype == bk.xp.float32
    assert isinstance(moved["layers"][1], tuple)
    assert moved["layers"][1][1:] == ("relu", 3) and moved["lr"] == 1e-3
    if bk.device is not None:
        assert moved["W1"].device == bk.device
    back = to_backend(moved, "numpy")
    np.testing.assert_array_equal(back["W1"], tree["W1"])
    assert isinstance(back["layers"][1][0], np.ndarray)


def test_to_backend_uses_the_selected_backend(bk):
    with use_backend(bk.name):
        moved = to_backend(np.ones(3))
    assert backend_name(moved) == bk.name


def test_mixed_backends_name_both_arguments(bk):
    if bk.name == "numpy":
        pytest.skip("needs a second backend besides NumPy")
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    w = bk.asarray(np.ones((3, 2, 3, 3)))
    b = bk.asarray(np.zeros(3))
    with pytest.raises(TypeError, match=rf"x is a numpy array, w is a {bk.name} array"):
        conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})


def test_mixed_devices_name_both_arguments():
    strict = pytest.importorskip("array_api_strict")
    a = strict.asarray([1.0], device=strict.Device("device1"))
    c = strict.asarray([1.0], device=strict.Device("CPU_DEVICE"))
    with pytest.raises(ValueError, match=r"different devices.*x is on .*device1.*w is on"):
        array_namespace(x=a, w=c)


def test_array_namespace_needs_an_array():
    with pytest.raises(TypeError, match="at least one array"):
        array_namespace(1.0, None)


@pytest.mark.parametrize("value", [[1.0, 2.0], [[1], [2]], 3, 2.5, None, "text"])
def test_a_non_array_is_python_and_to_numpy_takes_it(value):
    """As documented: not an AttributeError from the array-api-strict probe."""
    assert backend_name(value) == "python"
    if value is not None:
        np.testing.assert_array_equal(xpnn.to_numpy(value), np.asarray(value))


def test_namespace_of_backend_arrays(bk):
    assert array_namespace(bk.asarray([1.0])) is array_api_compat.array_namespace(
        bk.asarray([1.0])
    )


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (1, 1), ()])
def test_stack_scalars_fills_the_shape_in_c_order_with_short_stacks(bk, shape, monkeypatch):
    """The naive layers and the gradient checkers build their outputs with it: each stack
    joins at most the longest axis's count of arrays (one long stack is superlinear on JAX)."""
    import math

    from xpnn._backend import stack_scalars

    expected = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    values = [bk.asarray(v) for v in expected.reshape(-1)]
    arities = []

    class Spy:
        def __getattr__(self, name):
            return getattr(bk.xp, name)

        def stack(self, arrays, *args, **kwargs):
            arities.append(len(arrays))
            return bk.xp.stack(arrays, *args, **kwargs)

    out = stack_scalars(Spy(), values, shape)
    assert tuple(out.shape) == shape
    np.testing.assert_array_equal(xpnn.to_numpy(out), expected)
    assert max(arities, default=1) <= max(shape, default=1)
    with pytest.raises(ValueError, match="cannot fill"):
        stack_scalars(bk.xp, values[:-1] if values else [], shape if shape else (2,))
