"""Command line: parse arguments, read configuration, set up logging, build and run the bot.

Exit codes: 0 clean stop (SIGINT, SIGTERM, an owner's ``!exit``, end of console
input), 2 configuration error (environment, custom commands file, state file),
3 Twitch refused the login.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable

from vbot import __version__
from vbot.commands import builtin_table
from vbot.config import Config, ConfigError, load_config, read_settings
from vbot.console import Console, ConsoleClock
from vbot.custom import Reloader, load_file
from vbot.dispatch import Cooldowns, Dispatcher
from vbot.logs import setup_logging
from vbot.notify import Notifier
from vbot.outbox import Outbox
from vbot.signals import Signals
from vbot.state import CountStore
from vbot.timers import TimerSchedule

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
    parser.add_argument("--console", action="store_true",
                        help="chat with the bot in this terminal (stdin/stdout): no network, no token needed")
    return parser.parse_args(argv)


def build_dispatcher(config: Config, store: CountStore, clock: Callable[[], float] = time.monotonic,
                     ) -> tuple[Dispatcher, TimerSchedule, Reloader]:
    """From one read of the custom commands file: the dispatcher over built-in plus custom
    commands, the timers, and the reload callable for ``!reload``/SIGHUP, which swaps both.

    ``clock`` (monotonic seconds) drives cooldowns and timers. Raises ConfigError
    (CommandsFileError, StateError) when the commands file or the state file cannot be used.
    """
    builtins = builtin_table()
    loaded = load_file(config.commands_file, config.commands_file_required, builtins, store)
    dispatcher = Dispatcher(loaded.table(builtins), config.prefix, config.owners, Cooldowns(clock))
    timers = TimerSchedule(loaded.timers, bot_login=config.username, clock=clock)  # the transport sets its channels
    reload = Reloader(dispatcher, builtins, config.commands_file, config.commands_file_required, store,
                      timers.set_timers)
    return dispatcher, timers, reload


def main(argv: list[str] | None = None, signals: Signals | None = None) -> int:
    """Run vbot; returns the process exit code. ``signals``: handlers installed earlier
    (``vbot.__main__``), else installed now."""
    signals = signals or Signals().install()
    args = parse_args(argv)
    try:
        config = load_config(read_settings(args.env_file), console=args.console)
        setup_logging(config.log_level, secrets=[config.token or "", config.password or ""])
        store = CountStore(config.state_file)
        clock = ConsoleClock() if args.console else time.monotonic
        dispatcher, timers, reload = build_dispatcher(config, store, clock)
    except ConfigError as error:
        print(f"vbot: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    with store:
        if signals.stop_requested:
            return EXIT_OK
        if isinstance(clock, ConsoleClock):
            return run_console(config, dispatcher, reload, timers, clock)
        return run_bot(config, dispatcher, reload, timers, signals)


def run_bot(config: Config, dispatcher: Dispatcher, reload: Reloader, timers: TimerSchedule,
            signals: Signals) -> int:
    """Connect to chat until stopped (SIGINT, SIGTERM, ``!exit``); SIGHUP reloads custom commands.

    systemd's NOTIFY_SOCKET and WATCHDOG_USEC come from the real environment only (vbot.notify).
    """
    from vbot.bot import VBot  # here, so that the console never imports the irc library

    bot = VBot(config, dispatcher, reload=reload, timers=timers, notifier=Notifier.from_environment(os.environ))
    signals.attach(bot)
    return bot.run()


def run_console(config: Config, dispatcher: Dispatcher, reload: Reloader, timers: TimerSchedule,
                clock: ConsoleClock) -> int:
    """Chat in this terminal until ``/quit``, end of input, ``!exit``, SIGINT or SIGTERM."""
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    console = Console(config, dispatcher, Outbox(clock=clock), sys.stdin, sys.stdout, sys.stderr, reload=reload,
                      timers=timers, clock=clock)
    return console.run()
