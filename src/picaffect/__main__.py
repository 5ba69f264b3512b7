"""``python -m picaffect``: the same command line as the ``picaffect`` script."""
import sys

from .app.cli import main

sys.exit(main())
