"""``python -m patterns bench``: the same as the ``ftsync`` console script."""

import sys

from .cli import main

if __name__ == "__main__":  # importing this module (docs tools walk packages) must not run it
    sys.exit(main())
