"""Fully connected classifiers: ``TwoLayerNet`` and ``FullyConnectedNet`` (CS231n).

Both keep their parameters in ``model.params`` on one backend and compute, in
``loss(X, y=None)``, the class scores (``y`` is None) or the softmax loss with L2
regularization and its gradient with respect to every parameter.
"""

from __future__ import annotations

from typing import Any

from .. import random as xprandom
from ..layer_utils import (
    affine_bn_relu_backward,
    affine_bn_relu_forward,
    affine_ln_relu_backward,
    affine_ln_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
)
from ..layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)
from ._base import Classifier, host_ones, host_zeros, weight_rng

__all__ = ["FullyConnectedNet", "TwoLayerNet"]

_NORMALIZATIONS = (None, "batchnorm", "layernorm")


class TwoLayerNet(Classifier):
    """Two-layer network: affine - relu - affine - softmax.

    Parameters
    ----------
    input_dim : int
        D, the size of one input.
    hidden_dim : int
        H, the size of the hidden layer.
    num_classes : int
        C.
    weight_scale : float
        Standard deviation of the initial weights (biases start at zero).
    reg : float
        L2 regularization strength.
    dtype : {np.float64, np.float32, 'float64', 'float32'}, keyword-only
        Dtype of the parameters.
    seed : int, optional, keyword-only
        Seed of a private ``np.random.RandomState`` for the weights. Without it the
        weights come from NumPy's global RNG, so ``np.random.seed(231)`` before the
        constructor reproduces the assignment.
    backend : str, optional, keyword-only
        Backend of the parameters (default :func:`xpnn.get_backend` at construction).
    device : optional, keyword-only
        Device on that backend (default: the library's default device).

    Attributes
    ----------
    params : dict
        ``'W1'`` (D, H), ``'b1'`` (H,), ``'W2'`` (H, C), ``'b2'`` (C,).
    reg, dtype, backend, device
    """

    def __init__(
        self,
        input_dim: int = 3 * 32 * 32,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        *,
        dtype: Any = "float64",
        seed: int | None = None,
        backend: str | None = None,
        device: Any = None,
    ):
        self.reg = reg
        rng = weight_rng(seed)
        params = {
            "W1": weight_scale * rng.randn(input_dim, hidden_dim),
            "b1": host_zeros(hidden_dim),
            "W2": weight_scale * rng.randn(hidden_dim, num_classes),
            "b2": host_zeros(num_classes),
        }
        self._place(params, dtype, backend, device)

    def loss(self, X: Any, y: Any = None) -> Any:
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : array, shape (N, d_1, ..., d_k) with d_1 * ... * d_k = D
            On the parameters' backend and device. A float64 ``X`` with float32
            parameters computes in float64 (the layers' dtype rule).
        y : integer array, shape (N,), optional
            Labels in ``[0, C)``.

        Returns
        -------
        scores : array, shape (N, C)
            If ``y`` is None.
        loss : 0-d array
            Otherwise, with
        grads : dict
            Same keys as ``params``, each gradient in its parameter's shape and dtype.
        """
        return self._compute(self.params, [], X, y, None)

    def _compute(self, params: dict, bn_params: list, X: Any, y: Any, key: Any) -> Any:
        xp = self._namespace(params, X, y)
        p = params
        hidden, hidden_cache = affine_relu_forward(X, p["W1"], p["b1"])
        scores, scores_cache = affine_forward(hidden, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W2"], grads["b2"] = affine_backward(dscores, scores_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dhidden, hidden_cache)
        return self._l2(xp, params, loss, grads, ["W1", "W2"]), grads


class FullyConnectedNet(Classifier):
    """Fully connected network of any depth, with optional normalization and dropout.

    ``{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax``.

    Parameters
    ----------
    hidden_dims : list of int
        Size of each hidden layer; ``L = len(hidden_dims) + 1`` affine layers in all.
    input_dim : int
        D, the size of one input.
    num_classes : int
        C.
    dropout_keep_ratio : float in (0, 1]
        Probability of *keeping* a unit in dropout; 1 means no dropout.
    normalization : {None, 'batchnorm', 'layernorm'}
        Normalization after each hidden affine layer.
    reg : float
        L2 regularization strength (on the weights ``W1..WL`` only).
    weight_scale : float
        Standard deviation of the initial weights.
    dtype : {np.float32, np.float64, 'float32', 'float64'}
    seed : int, optional
        Seed of the dropout masks (``dropout_param['seed']``), exactly as in the
        assignment. It does **not** seed the weights: they always come from NumPy's
        global RNG, because the assignment draws them there even when ``seed`` is given,
        and its Dropout notebook (``np.random.seed(231)``, then
        ``FullyConnectedNet(..., seed=123)``) prints losses that depend on those draws.
        Seed the weights with ``np.random.seed`` before the constructor. On NumPy a
        seeded dropout layer reseeds the global RNG on every training pass, as the
        assignment's does.
    dropout : float, optional, keyword-only
        The 2019-2020 name of ``dropout_keep_ratio`` (also a keep probability). Passing
        both with different values is a ``ValueError``.
    backend : str, optional, keyword-only
        Backend of the parameters (default :func:`xpnn.get_backend` at construction).
    device : optional, keyword-only
        Device on that backend.

    Attributes
    ----------
    params : dict
        ``'W1'`` (D, H1), ``'b1'`` (H1,), ..., ``'WL'`` (H_{L-1}, C), ``'bL'`` (C,), and
        with normalization ``'gamma{i}'`` (ones) and ``'beta{i}'`` (zeros), shape (H_i,),
        for each hidden layer i.
    num_layers : int
        L.
    normalization, reg, dtype, backend, device
    use_dropout : bool
        ``dropout_keep_ratio != 1``.
    dropout_param : dict
        ``{'mode': 'train', 'p': keep}`` (plus ``'seed'``) when dropout is used, else ``{}``.
    bn_params : list of dict
        ``{'mode': 'train'}`` per hidden layer when normalized, else ``[]``; batch norm
        keeps its running averages here. (Layer norm reads only ``'eps'``.)
    """

    def __init__(
        self,
        hidden_dims: list[int],
        input_dim: int = 3 * 32 * 32,
        num_classes: int = 10,
        dropout_keep_ratio: float = 1,
        normalization: str | None = None,
        reg: float = 0.0,
        weight_scale: float = 1e-2,
        dtype: Any = "float32",
        seed: int | None = None,
        *,
        dropout: float | None = None,
        backend: str | None = None,
        device: Any = None,
    ):
        if dropout is not None:
            if dropout_keep_ratio != 1 and dropout_keep_ratio != dropout:
                raise ValueError(
                    f"dropout is another name for dropout_keep_ratio; got both, with different "
                    f"values ({dropout!r} and {dropout_keep_ratio!r})"
                )
            dropout_keep_ratio = dropout
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError(
                "dropout_keep_ratio is the probability of keeping a unit and must be in "
                f"(0, 1] (1: no dropout); got {dropout_keep_ratio!r}"
            )
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}; got {normalization!r}"
            )
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)

        rng = weight_rng(None)  # see ``seed`` in the docstring
        dims = [input_dim, *hidden_dims, num_classes]
        params = {}
        for i in range(1, self.num_layers + 1):
            params[f"W{i}"] = weight_scale * rng.randn(dims[i - 1], dims[i])
            params[f"b{i}"] = host_zeros(dims[i])
            if normalization is not None and i < self.num_layers:
                params[f"gamma{i}"] = host_ones(dims[i])
                params[f"beta{i}"] = host_zeros(dims[i])
        self._place(params, dtype, backend, device)

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed
        self.bn_params = []
        if normalization is not None:
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]

    def loss(self, X: Any, y: Any = None) -> Any:
        """Scores in test mode (``y`` None), or loss and gradients in train mode.

        The mode is written into ``dropout_param`` and every ``bn_param``: test mode
        turns dropout off and makes batch norm use its running averages.

        Parameters
        ----------
        X : array, shape (N, d_1, ..., d_k) with d_1 * ... * d_k = D
            On the parameters' backend and device. A float64 ``X`` with float32
            parameters computes in float64 (the layers' dtype rule).
        y : integer array, shape (N,), optional
            Labels in ``[0, C)``.

        Returns
        -------
        scores : array, shape (N, C)
            If ``y`` is None.
        loss : 0-d array
            Otherwise, with
        grads : dict
            Same keys as ``params``, each gradient in its parameter's shape and dtype.
        """
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        return self._compute(self.params, self.bn_params, X, y, None)

    def _compute(self, params: dict, bn_params: list, X: Any, y: Any, key: Any) -> Any:
        xp = self._namespace(params, X, y)
        mode = "test" if y is None else "train"
        p, L = params, self.num_layers
        out, caches = X, []
        for i in range(1, L):
            args = (out, p[f"W{i}"], p[f"b{i}"])
            if self.normalization == "batchnorm":
                out, cache = affine_bn_relu_forward(
                    *args, p[f"gamma{i}"], p[f"beta{i}"], bn_params[i - 1]
                )
            elif self.normalization == "layernorm":
                out, cache = affine_ln_relu_forward(
                    *args, p[f"gamma{i}"], p[f"beta{i}"], bn_params[i - 1]
                )
            else:
                out, cache = affine_relu_forward(*args)
            dropout_cache = None
            if self.use_dropout:
                dropout_param = {**self.dropout_param, "mode": mode}
                if key is not None and mode == "train":
                    dropout_param.pop("seed", None)
                    dropout_param["mask"] = xprandom.bernoulli(
                        tuple(out.shape), dropout_param["p"], like=out,
                        key=xprandom.fold_in(key, i),
                    )  # fmt: skip
                out, dropout_cache = dropout_forward(out, dropout_param)
            caches.append((cache, dropout_cache))
        scores, scores_cache = affine_forward(out, p[f"W{L}"], p[f"b{L}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, scores_cache)
        for i in range(L - 1, 0, -1):
            cache, dropout_cache = caches[i - 1]
            if dropout_cache is not None:
                dout = dropout_backward(dout, dropout_cache)
            if self.normalization is None:
                dout, grads[f"W{i}"], grads[f"b{i}"] = affine_relu_backward(dout, cache)
            else:
                backward = (
                    affine_bn_relu_backward
                    if self.normalization == "batchnorm"
                    else affine_ln_relu_backward
                )
                dout, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = (
                    backward(dout, cache)
                )
        weights = [f"W{i}" for i in range(1, L + 1)]
        return self._l2(xp, params, loss, grads, weights), grads
