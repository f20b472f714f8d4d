"""Command line: parse arguments, read configuration, set up logging, build and run the bot.

Exit codes: 0 clean stop (SIGINT, SIGTERM, an owner's ``!exit``), 2 configuration
error, 3 Twitch refused the login.
"""

from __future__ import annotations

import argparse
import signal
import sys

from vbot import __version__
from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.config import ConfigError, load_config, read_settings
from vbot.dispatch import Dispatcher
from vbot.logs import setup_logging

EXIT_OK, EXIT_CONFIG, EXIT_LOGIN = 0, 2, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; ``--help`` and ``--version`` exit here, needing no configuration."""
    parser = argparse.ArgumentParser(
        prog="vbot",
        description="A Twitch chat bot. Configure it with VBOT_* environment variables or a .env file "
                    "(see config.example.env).",
    )
    parser.add_argument("--version", action="version", version=f"vbot {__version__}")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from PATH instead of ./.env")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run vbot; returns the process exit code."""
    args = parse_args(argv)
    try:
        config = load_config(read_settings(args.env_file))
    except ConfigError as error:
        print(f"vbot: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, secrets=[config.token or "", config.password or ""])
    dispatcher = Dispatcher(builtin_table(), config.prefix, config.owners)
    bot = VBot(config, dispatcher)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: bot.request_stop(EXIT_OK))
    return bot.run()
