"""``python -m artsim``: the same as the ``artsim`` command."""

import sys

from artsim.cli import main

if __name__ == "__main__":
    sys.exit(main())
