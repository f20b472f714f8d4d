"""``python -m vbot`` and the ``vbot`` command: signal handlers first, then everything else."""

import gc
import sys

from vbot.signals import Signals


def run() -> None:
    """Install the signal handlers, then import and run ``vbot.cli.main``; exits with its code."""
    gc.disable()  # start-up makes long-lived objects only; vbot.cli.started() collects again
    try:
        signals = Signals().install()
        from vbot.cli import main

        code = main(signals=signals)
    except KeyboardInterrupt:  # SIGINT or SIGTERM during start-up, before the bot could take it
        code = 0
    Signals.ignore()  # exiting anyway: a late signal must not turn exit 0 into a KeyboardInterrupt
    sys.exit(code)


if __name__ == "__main__":
    run()
