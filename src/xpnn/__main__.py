"""``python -m xpnn``: the same as the ``xpnn`` command."""

import sys

from .cli import main

sys.exit(main())
