"""``python -m adaptive`` runs the command line (the same as ``adaptive``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
