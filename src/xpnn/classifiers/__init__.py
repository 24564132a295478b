"""The CS231n assignment's models, on any backend.

``TwoLayerNet`` and ``FullyConnectedNet`` (:mod:`xpnn.classifiers.fc_net`) and
``ThreeLayerConvNet`` (:mod:`xpnn.classifiers.cnn`), and the captioning model
``CaptioningRNN`` (:mod:`xpnn.classifiers.rnn`, whose ``loss(features, captions)`` always
returns ``(loss, grads)``). Each keeps its parameters in
``model.params`` (arrays of one backend and device, chosen with ``backend=`` and
``device=``), and ``model.loss(X, y=None)`` returns the scores, or ``(loss, grads)`` with
the loss as a 0-d array and one gradient per parameter, in its dtype.

Weights are drawn as ``weight_scale * randn(in, out)``, in order, from NumPy's global
RNG unless a seed is given (see each model), in float64, then cast to ``dtype`` and
moved to the backend: ``np.random.seed(231)`` before a constructor reproduces the
assignment's published numbers on every backend.
"""

from .cnn import ThreeLayerConvNet
from .fc_net import FullyConnectedNet, TwoLayerNet
from .rnn import CaptioningRNN

__all__ = ["CaptioningRNN", "FullyConnectedNet", "ThreeLayerConvNet", "TwoLayerNet"]
