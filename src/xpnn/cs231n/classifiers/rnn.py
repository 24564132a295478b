"""``cs231n.classifiers.rnn``: CaptioningRNN, plus every name of ``rnn_layers``, which the
assignment's module star-imports."""

from ...classifiers import CaptioningRNN  # noqa: F401  (exported by __all__)
from ..rnn_layers import *  # noqa: F403
from ..rnn_layers import __all__ as _rnn_layers

__all__ = sorted({"CaptioningRNN", *_rnn_layers})
