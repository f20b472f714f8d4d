"""Runs only for ``python -m vbot`` started in the folder above a clone named ``vbot``.

There Python takes the clone for the package (a namespace package: the clone has no
``__init__.py``) and runs this file instead of ``vbot/__main__.py``, which would fail with
an ImportError. This file imports nothing from vbot: it says in one line how to start vbot
instead, and exits with 2. It is not installed (pyproject.toml installs ``vbot/`` only).
"""

import sys
from pathlib import Path


def main() -> int:
    """Print what to run instead to stderr; returns 2."""
    clone = Path(__file__).absolute().parent.name  # as the user sees it, symbolic links unresolved
    print(
        f"vbot: python -m vbot, run from the folder above the clone, finds the folder {clone}/ instead of "
        f"the package: cd {clone} first, or run {clone}/.venv/bin/vbot",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
