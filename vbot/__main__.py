"""``python -m vbot`` and the ``vbot`` command: signal handlers first, then everything else."""

import sys

from vbot.signals import Signals


def run() -> None:
    """Install the signal handlers, then import and run ``vbot.cli.main``; exits with its code."""
    signals = Signals().install()
    try:
        from vbot.cli import main
    except KeyboardInterrupt:  # SIGINT or SIGTERM while importing: nothing to clean up
        sys.exit(0)
    sys.exit(main(signals=signals))


if __name__ == "__main__":
    run()
