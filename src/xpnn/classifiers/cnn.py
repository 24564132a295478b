"""``ThreeLayerConvNet``: conv - relu - 2x2 max pool - affine - relu - affine - softmax.

The convolution and the pooling are the fast (im2col, strided-slice) implementations.
"""

from __future__ import annotations

from typing import Any

from ..layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from ..layers import affine_backward, affine_forward, softmax_loss
from ._base import Classifier, host_zeros, weight_rng

__all__ = ["ThreeLayerConvNet"]


class ThreeLayerConvNet(Classifier):
    """Three-layer convolutional network on NCHW images.

    conv (``num_filters`` filters of ``filter_size`` x ``filter_size``, stride 1, zero
    padding ``(filter_size - 1) // 2``, which keeps H and W for odd sizes) - relu - 2x2
    max pool with stride 2 - affine - relu - affine - softmax. Uses the fast
    convolution and pooling (:func:`xpnn.conv_relu_pool_forward`).

    Parameters
    ----------
    input_dim : tuple of int
        (C, H, W) of one input. The convolution output must have even height and width,
        so that the 2x2 pool tiles it.
    num_filters : int
        F.
    filter_size : int
        Height and width of each filter.
    hidden_dim : int
        Size of the hidden affine layer.
    num_classes : int
    weight_scale : float
        Standard deviation of the initial weights (biases start at zero).
    reg : float
        L2 regularization strength (on ``W1``, ``W2``, ``W3``).
    dtype : {np.float32, np.float64, 'float32', 'float64'}
    seed : int, optional, keyword-only
        Seed of a private ``np.random.RandomState`` for the weights; without it they come
        from NumPy's global RNG (``np.random.seed`` reproduces the assignment).
    backend : str, optional, keyword-only
        Backend of the parameters (default :func:`xpnn.get_backend` at construction).
    device : optional, keyword-only
        Device on that backend.

    Attributes
    ----------
    params : dict
        ``'W1'`` (F, C, filter_size, filter_size), ``'b1'`` (F,),
        ``'W2'`` (F * H' * W', hidden_dim) with H', W' the pooled size (H/2, W/2 for an
        odd filter size), ``'b2'`` (hidden_dim,), ``'W3'`` (hidden_dim, num_classes),
        ``'b3'`` (num_classes,).
    reg, dtype, backend, device
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (3, 32, 32),
        num_filters: int = 32,
        filter_size: int = 7,
        hidden_dim: int = 100,
        num_classes: int = 10,
        weight_scale: float = 1e-3,
        reg: float = 0.0,
        dtype: Any = "float32",
        *,
        seed: int | None = None,
        backend: str | None = None,
        device: Any = None,
    ):
        self.reg = reg
        C, H, W = input_dim
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
        conv_h, conv_w = (n + 2 * self.conv_param["pad"] - filter_size + 1 for n in (H, W))
        if conv_h < 2 or conv_w < 2 or conv_h % 2 or conv_w % 2:
            raise ValueError(
                f"the 2x2 max pool needs an even convolution output of at least 2x2; with "
                f"input_dim {tuple(input_dim)} and filter_size {filter_size} it is "
                f"{conv_h}x{conv_w}"
            )
        rng = weight_rng(seed)
        pooled_size = num_filters * (conv_h // 2) * (conv_w // 2)
        params = {
            "W1": weight_scale * rng.randn(num_filters, C, filter_size, filter_size),
            "b1": host_zeros(num_filters),
            "W2": weight_scale * rng.randn(pooled_size, hidden_dim),
            "b2": host_zeros(hidden_dim),
            "W3": weight_scale * rng.randn(hidden_dim, num_classes),
            "b3": host_zeros(num_classes),
        }
        self._place(params, dtype, backend, device)

    def loss(self, X: Any, y: Any = None) -> Any:
        """Scores, or loss and gradients, for a minibatch.

        Parameters
        ----------
        X : array, shape (N, C, H, W)
            On the parameters' backend and device. A float64 ``X`` with float32
            parameters computes in float64 (the layers' dtype rule).
        y : integer array, shape (N,), optional
            Labels in ``[0, num_classes)``.

        Returns
        -------
        scores : array, shape (N, num_classes)
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
        pooled, conv_cache = conv_relu_pool_forward(
            X, p["W1"], p["b1"], self.conv_param, self.pool_param
        )
        hidden, hidden_cache = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, scores_cache = affine_forward(hidden, p["W3"], p["b3"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W3"], grads["b3"] = affine_backward(dscores, scores_cache)
        dpooled, grads["W2"], grads["b2"] = affine_relu_backward(dhidden, hidden_cache)
        # The images need no gradient: skip dx, as autograd frameworks do.
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(
            dpooled, conv_cache, input_grad=False
        )
        return self._l2(xp, params, loss, grads, ["W1", "W2", "W3"]), grads
