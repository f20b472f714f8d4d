"""Command line: parse arguments, read configuration, set up logging, build and run the bot.

Exit codes (EXIT_CODES; ``vbot --help`` lists them): 0 clean stop (SIGINT, SIGTERM, an owner's ``!exit``, end of console
input), 2 configuration error (environment, custom commands file, state file,
token file), 3 Twitch refused the login or the token. ``vbot login`` has its own
(see vbot/login.py): 0 logged in, 1 token service unreachable, 2 configuration,
3 refused, denied or expired, 130 stopped with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vbot import __version__
from vbot.commands import builtin_table
from vbot.config import Config, ConfigError, SettingMissing, error_text, load_config, read_settings, unknown_settings
from vbot.dispatch import Cooldowns, Dispatcher, Reloads
from vbot.logs import mask_oauth, setup_logging
from vbot.moderation import Moderation
from vbot.notify import Notifier
from vbot.signals import Signals
from vbot.state import ConsoleCounts, CountStore
from vbot.timers import Timer, TimerSchedule

if TYPE_CHECKING:
    import argparse

    from vbot.console import ConsoleClock
    from vbot.custom import Counter
    from vbot.enforcer import Enforcer
    from vbot.keeper import TokenKeeper
    from vbot.streamfacts import StreamFacts
    from vbot.tokens import Tokens

# Start-up imports only what the path in use needs: the token service's code (vbot.auth,
# keeper, tokens, login) when a token is checked or `vbot login` runs, Twitch's API
# (vbot.helix, streamfacts, enforcer) when a token allows it, the console's with --console,
# custom commands' (vbot.custom) with a commands file, argparse with options on the command
# line, the irc library's (vbot.bot) only for a live connection.

EXIT_OK, EXIT_CONFIG, EXIT_LOGIN = 0, 2, 3
EXIT_CODES = {
    EXIT_OK: "clean stop: SIGINT, SIGTERM, an owner's !exit, end of console input",
    EXIT_CONFIG: "configuration error (settings, env file, custom commands file, state file, token file): "
    "one line on stderr says what to fix",
    EXIT_LOGIN: 'Twitch refused the login or the token: run "vbot login" again',
}
"""What each exit code of the bot means (``vbot --help`` lists them)."""
HELP_TOPICS = ("login",)
"""What ``vbot help <topic>`` explains."""
log = logging.getLogger(__name__)


NO_ARGUMENTS = {"env_file": None, "console": False, "command": None}
"""What ``parse_args`` gives for an empty command line."""


def parse_args(argv: list[str] | None) -> argparse.Namespace | types.SimpleNamespace:
    """Parse the command line: ``command`` is None (run the bot) or ``"login"``; ``--help``,
    ``--version``, ``login --help`` and ``help [login]`` print and exit here (SystemExit 0),
    needing no configuration; a mistake exits with argparse's usage line (SystemExit 2).
    An empty command line, the usual start, is answered without argparse (a few ms at start)."""
    arguments = sys.argv[1:] if argv is None else argv
    if not arguments:
        return types.SimpleNamespace(**NO_ARGUMENTS)
    parser, login = argument_parser()
    args = parser.parse_args(arguments)
    if args.command == "help":
        if args.topic not in (None, *HELP_TOPICS):
            parser.error(
                f"no help on {args.topic!r}: the topics are {', '.join(HELP_TOPICS)} (vbot help login); "
                "vbot help alone shows the options and commands"
            )
        (login if args.topic else parser).print_help()
        parser.exit()
    if args.command and args.console:
        parser.error("--console and login cannot be combined")
    return args


def argument_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """vbot's command line (``vbot --help``), and its ``login`` command's (``vbot login --help``)."""
    import argparse
    import textwrap

    from vbot import login as login_help

    def exit_codes(codes: dict[int, str]) -> str:
        return "\n".join(
            ["exit codes:"]
            + [
                textwrap.fill(meaning, 80, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
                for code, meaning in codes.items()
            ]
        )

    parser = argparse.ArgumentParser(
        prog="vbot",
        description=textwrap.fill(
            "A Twitch chat bot. Configure it with VBOT_* environment variables or a .env file "
            "(see config.example.env).",
            80,
        ),
        epilog="VBOT_CHANNEL, the channel(s) to join, is required."
        + "\n\n"
        + exit_codes(EXIT_CODES)
        + "\n\nvbot login has its own (vbot login --help).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vbot {__version__}")
    parser.add_argument("--env-file", metavar="PATH", help="read settings from PATH instead of ./.env")
    parser.add_argument(
        "--console",
        action="store_true",
        help="chat with the bot in this terminal (stdin/stdout): no network, no token needed",
    )
    commands = parser.add_subparsers(dest="command", metavar="{login,help}", title="commands")
    login = commands.add_parser(
        "login",
        help="log the bot account in with Twitch's device code login and save its token to "
        "VBOT_TOKEN_FILE (needs VBOT_CLIENT_ID; vbot login --help says more)",
        description=login_help.HELP,
        epilog=exit_codes(login_help.EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument(  # also after "login"; SUPPRESS keeps a --env-file given before it
        "--env-file", metavar="PATH", default=argparse.SUPPRESS, help="read settings from PATH instead of ./.env"
    )
    helping = commands.add_parser("help", help="show this help (help login: the login's)")
    helping.add_argument("topic", nargs="?", metavar="login", help="the login command's help")
    return parser, login


def build_dispatcher(
    config: Config,
    store: Counter,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Dispatcher, TimerSchedule, Reloads]:
    """From one read of the custom commands file: the dispatcher over built-in plus custom
    commands (its ``moderation`` holding the spam filters), the timers, and the reloads for
    ``!reload``/SIGHUP (``vbot.custom.Reloader``, made at the first of them), which swap all three.

    ``clock`` (monotonic seconds) drives cooldowns, timers and the filters' memory. Raises ConfigError
    (CommandsFileError, StateError) when the commands file or the state file cannot be used.
    Without a commands file (none required), vbot.custom loads at the first reload.
    """
    builtins = builtin_table()
    path, required = config.commands_file, config.commands_file_required
    table, filters = builtins, None
    timer_list: tuple[Timer, ...] = ()
    if required or path.exists():
        from vbot.custom import load_file

        loaded = load_file(path, required, builtins, store, config.prefix)
        table, filters, timer_list = loaded.table(builtins), loaded.filters, loaded.timers
    moderation = Moderation(filters, clock, config.owners)
    dispatcher = Dispatcher(table, config.prefix, config.owners, Cooldowns(clock), moderation)
    timers = TimerSchedule(timer_list, bot_login=config.username, clock=clock)  # the transport sets its channels

    def reloader() -> Reloads:
        from vbot.custom import Reloader

        return Reloader(dispatcher, builtins, path, required, store, timers.set_timers, clock)

    return dispatcher, timers, LazyReloads(reloader)


class LazyReloads:
    """The ``Reloads`` that ``make()`` returns (``vbot.custom.Reloader``), made at the first ``!reload``
    or SIGHUP and kept for the run (it keeps the time of the last reload): without a commands file
    at start, vbot.custom is imported only then (start-up time)."""

    def __init__(self, make: Callable[[], Reloads]):
        self._make = make
        self._made: Reloads | None = None

    def _reloads(self) -> Reloads:
        if self._made is None:
            self._made = self._make()
        return self._made

    def __call__(self) -> str | None:
        return self._reloads()()

    def request(self) -> None:
        self._reloads().request()

    def tick(self) -> float | None:
        return None if self._made is None else self._made.tick()


def main(argv: list[str] | None = None, signals: Signals | None = None) -> int:
    """Run vbot (or ``vbot login``); returns the process exit code. ``signals``: handlers
    installed earlier (``vbot.__main__``), else installed now."""
    signals = signals or Signals().install()
    args = parse_args(argv)
    if args.command == "login":
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_DFL)  # a closed terminal ends the login
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        return run_login(args.env_file)
    if not args.console:  # the irc library, imported before a stop may interrupt anything
        # irc.events first, from here: it finds its data file with importlib_resources.files(), which
        # reads every frame of the stack (about 0.3 ms each): 4 ms less than from inside vbot.bot's import.
        import irc.events  # noqa: F401

        import vbot.bot  # noqa: F401
    if signals.stop_requested:
        return EXIT_OK
    signals.interruptible = True
    keeper = None
    facts = None
    enforcer = None
    settings: dict[str, str] = {}
    typos = True  # the unknown names are still to be told
    try:
        settings = read_settings(args.env_file)
        config = load_config(settings, console=args.console)
        handler = setup_logging(config.log_level, secrets=[config.token or "", config.password or ""])
        for line in unknown_settings(settings):
            log.warning("%s", line)
        typos = False
        store = ConsoleCounts(config.state_file) if args.console else CountStore(config.state_file)
        console_clock: ConsoleClock | None = None
        if args.console:
            from vbot.console import ConsoleClock

            console_clock = ConsoleClock()
        clock = console_clock or time.monotonic
        dispatcher, timers, reload = build_dispatcher(config, store, clock)
        if config.validates_token and not args.console:
            from vbot.keeper import CannotLogIn

            try:
                with _closed_on_error(store):
                    config, keeper = start_token(config, handler.add_secret)
            except CannotLogIn as error:
                log.error("cannot log in to Twitch: %s", error)
                return EXIT_LOGIN
        if config.uses_helix and keeper is not None:
            from vbot.custom import file_needs
            from vbot.enforcer import LANE as MODERATION_LANE
            from vbot.enforcer import Enforcer
            from vbot.helix import Calls, HelixClient
            from vbot.streamfacts import LANE as FACTS_LANE
            from vbot.streamfacts import stream_facts

            calls = Calls(HelixClient(config.helix_url), keeper, lanes=(FACTS_LANE, MODERATION_LANE))
            facts = stream_facts(config, calls, file_needs(dispatcher.table, timers.timers))
            enforcer = Enforcer(calls, dispatcher.moderation)
    except ConfigError as error:
        print(f"vbot: configuration error: {error_text(error, args.env_file)}", file=sys.stderr)
        for line in unknown_settings(settings) if typos else ():  # the typo may be the cause
            print(f"vbot: note: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C while the token service is slow to answer
        log.info("stopped before connecting")
        return EXIT_OK
    with store:
        try:
            if signals.stop_requested:
                return EXIT_OK
            if console_clock is not None:
                return run_console(config, dispatcher, reload, timers, console_clock)
            return run_bot(
                config, dispatcher, reload, timers, signals, keeper, facts, enforcer, handler.redaction.redact
            )
        except KeyboardInterrupt:  # a stop before the bot could take it (see vbot.signals)
            return EXIT_OK
        finally:
            if keeper is not None:
                keeper.close()


@contextlib.contextmanager
def _closed_on_error(store: CountStore | ConsoleCounts) -> Iterator[None]:
    try:
        yield
    except BaseException:
        store.close()
        raise


def started() -> None:
    """Start-up is over: cyclic garbage is collected again, if ``vbot.__main__`` had turned it
    off for the start-up (imports make only long-lived objects: collecting among them was about
    5% of the start-up's time), and what start-up made is left out of later collections."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run_login(env_file: str | None) -> int:
    """``vbot login``: the device code login, saving VBOT_TOKEN_FILE; returns its exit code."""
    from vbot.auth import CHAT_SCOPES, TokenService
    from vbot.custom import file_needs, read_file
    from vbot.enforcer import MODERATION_SCOPES
    from vbot.facts import login_scopes
    from vbot.login import DeviceLogin

    try:
        config = load_config(read_settings(env_file), console=True)
        if not config.client_id:
            raise SettingMissing(
                "VBOT_CLIENT_ID is not set: register an application (client type Public) in "
                "Twitch's developer console and set VBOT_CLIENT_ID to its Client ID "
                "(README: Getting a token)"
            )
        loaded = read_file(
            config.commands_file, config.commands_file_required, builtin_table(), _Uncounted(), config.prefix
        )
    except ConfigError as error:
        print(f"vbot login: {error_text(error, env_file, 'vbot login')}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level)
    scopes = login_scopes(file_needs(loaded.commands, loaded.timers))
    notes = []
    extra = " ".join(scope for scope in scopes if scope not in CHAT_SCOPES)
    if extra:
        notes.append(f"Asking for {extra} too: {config.commands_file} needs it (docs/stream-facts.md)")
    if loaded.filters is not None:
        scopes += MODERATION_SCOPES
        notes.append(f"Asking for {' '.join(MODERATION_SCOPES)} too: the spam filters need them (docs/filters.md)")
    service = TokenService(config.auth_url, config.client_id)
    login = DeviceLogin(
        service,
        config.token_file,
        sys.stdout,
        sys.stderr,
        is_tty=sys.stdout.isatty(),
        username=config.username,
        scopes=scopes,
        channels=config.channels,
        pasted_token=bool(config.token),
        settings_file=env_file or ".env",
        scope_notes=tuple(notes),
    )
    started()
    return login.run()


class _Uncounted:
    """A ``{count}`` store that keeps nothing: ``vbot login`` reads the commands file for the
    scopes they need, and must not create the state file."""

    def open(self) -> _Uncounted:
        return self

    def increment(self, name: str) -> int:
        return 0


def choose_tokens(config: Config) -> tuple[Tokens, Path | None]:
    """The token to start with, and the file to keep it in (None for a pasted VBOT_TOKEN).

    The rule: the token file wins when it exists (vbot can renew it), with a WARNING
    when VBOT_TOKEN is set too; otherwise VBOT_TOKEN. Raises ConfigError
    (TokenFileError) when the file cannot be read, or neither exists.
    """
    from vbot.tokens import TokenFileMissing, Tokens, load_tokens

    try:
        tokens = load_tokens(config.token_file)
    except TokenFileMissing:
        if config.token:
            return Tokens(access_token=config.token, refresh_token=None, expires_at=None), None
        raise SettingMissing(
            f"no token: VBOT_TOKEN is not set and VBOT_TOKEN_FILE={config.token_file} does not exist; "
            'run "vbot login" to create it (README: Getting a token)'
        ) from None
    if config.token:
        log.warning(
            "both VBOT_TOKEN and the token file %s are set: using the token file, which vbot renews; "
            "remove VBOT_TOKEN from .env",
            config.token_file,
        )
    return tokens, config.token_file


def start_token(config: Config, on_new_secret: Callable[[str], None]) -> tuple[Config, TokenKeeper]:
    """Validate (and if needed renew) the token before the bot is built.

    Returns the Config with the current token and the login learned from Twitch,
    and the TokenKeeper that keeps the token fresh (holding the token file's lock, if
    any, until its ``close()``). Raises ConfigError (no token, unreadable token file,
    the token file in use by another vbot, VBOT_USERNAME differing from the token's
    login) and CannotLogIn (exit 3). An unreachable token service only logs a WARNING.
    """
    from vbot.auth import TokenService
    from vbot.keeper import TokenKeeper
    from vbot.tokens import TokenFileLock

    lock = None
    if os.path.lexists(config.token_file):
        lock = TokenFileLock(config.token_file)
        lock.acquire()  # before reading: it adopts a renewed pair an interrupted save left
    tokens, token_file = choose_tokens(config)
    service = TokenService(config.auth_url, config.client_id)
    keeper = TokenKeeper(
        service,
        tokens,
        token_file,
        validate_interval=config.validate_interval,
        on_new_secret=on_new_secret,
        lock=lock,
    )
    keeper.start()
    login = keeper.tokens.login
    if config.username and login and config.username != login:
        raise ConfigError(
            f"VBOT_USERNAME={config.username}, but the token belongs to {login}: "
            f"set VBOT_USERNAME={login}, or remove it (vbot learns the login from the token)"
        )
    if not (config.username or login):
        raise ConfigError(
            "VBOT_USERNAME is not set and the token service could not tell the token's login: "
            "set VBOT_USERNAME to the bot account's Twitch login"
        )
    keeper.chat_login = config.username or login  # a later validation naming another login ends the session
    return dataclasses.replace(config, username=keeper.chat_login, token=keeper.tokens.access_token), keeper


def run_bot(
    config: Config,
    dispatcher: Dispatcher,
    reload: Reloads,
    timers: TimerSchedule,
    signals: Signals,
    keeper: TokenKeeper | None = None,
    facts: StreamFacts | None = None,
    enforcer: Enforcer | None = None,
    redact: Callable[[str], str] = mask_oauth,
) -> int:
    """Connect to chat until stopped (SIGINT, SIGTERM, ``!exit``); SIGHUP reloads custom commands.

    ``keeper`` (None for a plain IRC server or an anonymous login) keeps the token fresh;
    ``facts`` (None without Twitch's API) tell stream facts; ``enforcer`` (None without
    Twitch's API: the spam filters then only log) carries out the filters' actions.
    systemd's NOTIFY_SOCKET and WATCHDOG_USEC come from the real environment only (vbot.notify);
    what is sent there passes through ``redact``, the log's redaction.
    """
    from vbot.bot import VBot  # here, so that the console never imports the irc library

    bot = VBot(
        config,
        dispatcher,
        reload=reload,
        timers=timers,
        notifier=Notifier.from_environment(os.environ, redact=redact),
        keeper=keeper,
        facts=facts,
        enforcer=enforcer,
    )
    signals.attach(bot)
    started()
    return bot.run()


def run_console(
    config: Config, dispatcher: Dispatcher, reload: Reloads, timers: TimerSchedule, clock: ConsoleClock
) -> int:
    """Chat in this terminal until ``/quit``, end of input, ``!exit``, SIGINT or SIGTERM."""
    from vbot.console import Console
    from vbot.outbox import Outbox

    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    console = Console(
        config,
        dispatcher,
        Outbox(clock=clock),
        sys.stdin,
        sys.stdout,
        sys.stderr,
        reload=reload,
        timers=timers,
        clock=clock,
    )
    started()
    return console.run()
