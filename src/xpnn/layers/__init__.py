"""The layers: each a pure forward ``(out, cache)`` and backward ``(dout, cache) -> grads``.

Every function takes arrays of any array-API backend (NumPy, CuPy, JAX, PyTorch,
array-api-strict) and returns arrays of the same backend, device and dtype.

The public names are those of each module's ``__all__``, gathered here from every module
of this package whose name does not start with ``_``: a new layer module needs no edit of
this file. What else a layer needs (its declaration, its derivation page) is in
``docs/adding_a_layer.md``.
"""

import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if _info.name.startswith("_"):
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in _module.__all__:
        if _name in globals():
            raise ImportError(f"xpnn.layers: {_name!r} is exported by two modules")
        globals()[_name] = getattr(_module, _name)
    __all__ += _module.__all__

__all__.sort()
del _info, _module, _name
