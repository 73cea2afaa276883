"""``python -m benchmarks``: the same as ``pricefeed bench``."""

import sys

from .cli import main

sys.exit(main())
