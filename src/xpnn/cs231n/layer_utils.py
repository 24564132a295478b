"""``cs231n.layer_utils``: the sandwich layers, plus everything ``layers`` and
``fast_layers`` give (the assignment's module star-imports both)."""

from ..layer_utils import *  # noqa: F403
from ..layer_utils import __all__ as _sandwiches
from .fast_layers import *  # noqa: F403
from .fast_layers import __all__ as _fast
from .layers import *  # noqa: F403
from .layers import __all__ as _layers

__all__ = sorted({*_layers, *_fast, *_sandwiches})
