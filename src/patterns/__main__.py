"""``python -m patterns bench``: the same as the ``ftsync`` console script."""

import sys

from .cli import main

sys.exit(main())
