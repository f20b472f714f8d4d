"""``python -m vbot``: the same entry point as the ``vbot`` console script."""

import sys

from vbot.cli import main

sys.exit(main())
