"""``python -m vbot`` and the ``vbot`` command: signal handlers first, then everything else."""

import sys

from vbot.signals import Signals


def run() -> None:
    """Install the signal handlers, then import and run ``vbot.cli.main``; exits with its code."""
    signals = Signals().install()
    from vbot.cli import main

    sys.exit(main(signals=signals))


if __name__ == "__main__":
    run()
