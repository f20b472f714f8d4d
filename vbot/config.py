"""Configuration: the only place that reads the environment and ``.env`` files, and the one
way vbot reads a file it is pointed at (``read_regular_file``: never waits on a FIFO).

Precedence, highest first: the real process environment, then the env file
(``--env-file PATH``, or ``.env`` in the working directory when it exists),
then the defaults in ``SETTINGS``, the one table of every ``VBOT_*`` variable
(README's configuration table and ``config.example.env`` are checked against
it by ``tests/test_config.py``).
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from vbot.lines import MAX_LINE_BYTES
from vbot.network import is_twitch_host

TWITCH_HOST = "irc.chat.twitch.tv"
TLS_PORT, PLAIN_PORT = 6697, 6667
TWITCH_AUTH_URL = "https://id.twitch.tv/oauth2"
TWITCH_HELIX_URL = "https://api.twitch.tv/helix"
MAX_VALIDATE_INTERVAL = 3600.0
"""Twitch requires validating a kept token at least hourly (docs, "Validating Requests")."""
MAX_PASSWORD_BYTES = MAX_LINE_BYTES - len("PASS \r\n")
"""The longest PASS argument (``oauth:<token>`` on Twitch), in bytes: ``PASS <password>`` and CR LF
must fit in one IRC line (RFC 1459 section 2.3); the irc library refuses a longer line."""
MAX_ACCESS_TOKEN_CHARS = MAX_PASSWORD_BYTES - len("oauth:")
"""An access token goes to chat as ``PASS oauth:<token>``, which with CR LF must fit in one IRC
line of 512 bytes: 499 characters at most (Twitch's are 30)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOGIN_PATTERN = re.compile(r"[a-z0-9_]{1,25}")
"""A Twitch login: 1 to 25 lowercase letters, digits or underscores."""
NICK_PATTERN = re.compile(r"[a-z\[\]\\`_^{|}][a-z0-9\[\]\\`_^{|}-]{0,63}")
"""An IRC nick, lowercased (RFC 2812 section 2.3.1: a letter or one of ``[]\\`_^{|}``, then
letters, digits, those or ``-``): ``frank[x]``, ``my-bot``. RFC 2812 allows 9 characters,
servers more (their NICKLEN: 30 on InspIRCd, 32 on Ergo); at most 64 here."""
MAX_ENV_FILE_BYTES = 1024 * 1024
"""An env file larger than this (1 MiB; a few hundred bytes is usual) is refused."""
_ANONYMOUS = re.compile(r"justinfan[0-9]+")
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
"""ASCII digits only: ``str.isdigit()``, ``int()`` and ``float()`` also take ``'١٢'``."""
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Setting(NamedTuple):
    """One ``VBOT_*`` variable: the single home of its default and its documentation.

    ``default`` is the value used when the variable is unset or empty, as written
    in an env file (``''``: none, or worked out from other settings; then
    ``default_text`` says what). ``meaning`` is README's text for it, and
    ``bounds`` the smallest and largest accepted number, for numeric settings.
    """

    name: str
    default: str
    meaning: str
    default_text: str = ""
    bounds: tuple[float, float] | None = None

    @property
    def description(self) -> str:
        """``meaning``, with the bounds when there are some: README's "meaning" column."""
        if self.bounds is None:
            return self.meaning
        low, high = self.bounds
        return f"{self.meaning}, {low:g} to {high:g}"

    @property
    def documented_default(self) -> str:
        """README's "default" column (Markdown)."""
        return self.default_text or f"`{self.default}`"


SETTINGS: tuple[Setting, ...] = (
    Setting("VBOT_CHANNEL", "", "channel(s) to join: comma-separated, `#` optional, any case", "required"),
    Setting(
        "VBOT_CLIENT_ID",
        "",
        "Client ID of your own Twitch application, client type Public (see [Getting a token](#getting-a-token))",
        "none; required by `vbot login`",
    ),
    Setting("VBOT_TOKEN_FILE", "vbot-token.json", "where `vbot login` saves the tokens and the bot keeps them fresh"),
    Setting(
        "VBOT_USERNAME",
        "",
        "the bot account's login; sent lowercased as NICK. With Twitch, learned from "
        "the token (a different value is an error)",
        "required for other servers (unless VBOT_AUTH_URL is set)",
    ),
    Setting(
        "VBOT_TOKEN",
        "",
        "on Twitch (or with `VBOT_AUTH_URL`), a pasted OAuth token (scopes `chat:read chat:edit`), with or "
        "without `oauth:`, ignored (with a warning) when the token file exists; on another server, its "
        "password, sent as given",
        "none; on Twitch needed without a token file; elsewhere empty (no PASS)",
    ),
    Setting("VBOT_HOST", TWITCH_HOST, "server host name or IP address"),
    Setting("VBOT_PORT", "", "server port", f"{TLS_PORT} with TLS, {PLAIN_PORT} without", bounds=(1, 65535)),
    Setting("VBOT_TLS", "true", "`true`/`false`; TLS always verifies the certificate"),
    Setting("VBOT_PREFIX", "!", "command prefix"),
    Setting("VBOT_OWNERS", "", "logins treated as the broadcaster in every channel, comma-separated", "empty"),
    Setting("VBOT_LOG_LEVEL", "INFO", "`DEBUG`, `INFO`, `WARNING` or `ERROR`"),
    Setting("VBOT_PING_INTERVAL", "60", "seconds of silence before vbot sends PING", bounds=(10, 3600)),
    Setting("VBOT_PING_TIMEOUT", "10", "seconds to wait after that PING before reconnecting", bounds=(5, 300)),
    Setting(
        "VBOT_COMMANDS_FILE",
        "commands.toml",
        "custom commands file (see [Custom commands](#custom-commands)); when set, it must exist",
        "`commands.toml`, used when it exists",
    ),
    Setting(
        "VBOT_STATE_FILE",
        "vbot-state.sqlite3",
        "SQLite file keeping `{count}` values, created once a custom reply uses `{count}`",
    ),
    Setting(
        "VBOT_AUTH_URL",
        TWITCH_AUTH_URL,
        "base URL of Twitch's token service; `https://`, or `http://` to loopback (tests); set, it "
        "turns token checks on for a `VBOT_HOST` other than Twitch's",
    ),
    Setting(
        "VBOT_VALIDATE_INTERVAL",
        "3600",
        "seconds between token validations while running (Twitch requires hourly)",
        bounds=(0.1, MAX_VALIDATE_INTERVAL),
    ),
    Setting(
        "VBOT_HELIX_URL",
        TWITCH_HELIX_URL,
        "base URL of Twitch's API, Helix (stream facts, spam filters' actions); `https://`, or `http://` "
        "to loopback (tests); set, it turns them on for a `VBOT_HOST` other than Twitch's (with `VBOT_AUTH_URL`)",
    ),
)
"""Every ``VBOT_*`` variable, in README's order. A new setting is one more row here, plus its
line in README's table and in ``config.example.env`` (a test compares the three)."""
SETTING: Mapping[str, Setting] = MappingProxyType({setting.name: setting for setting in SETTINGS})
"""``SETTINGS`` by name."""


class ConfigError(ValueError):
    """A configuration value is missing or invalid.

    The message is one line that names the variable and says how to fix it;
    it never contains the token.
    """


class SettingMissing(ConfigError):
    """A required setting is set nowhere (environment, env file): ``error_text`` says where
    ``.env`` was looked for when none was read."""


def error_text(error: ConfigError, env_file: str | os.PathLike | None, command: str = "vbot") -> str:
    """``str(error)``, and for a SettingMissing error when no env file was read (none named with
    ``--env-file``, no ``.env`` in the working directory), that ``.env`` was not found there and
    how ``command`` finds it: the user's ``.env`` is often elsewhere (trial)."""
    if not isinstance(error, SettingMissing) or env_file is not None or os.path.lexists(".env"):
        return str(error)
    try:
        folder = _shown(Path.cwd())
    except OSError:  # the working directory was removed
        folder = "the working directory"
    return f"{error}; no .env in {folder}: run {command} from the folder holding .env, or give --env-file PATH"


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything vbot is configured with; immutable, and its repr hides the token.

    On Twitch's host, and wherever VBOT_AUTH_URL is set (a Twitch-like server whose
    token vbot checks), ``token`` is the bare OAuth token (no ``oauth:`` prefix), or
    None (the token file, or an anonymous ``justinfan<digits>`` login); on any other
    host it is the server password exactly as configured, or None for no password.
    ``channels`` are lowercase names with a leading ``#``. Times are in seconds.
    In console mode (see load_config) ``username`` may be ``''`` and
    ``channels`` empty. The field defaults are those of ``SETTINGS``.
    """

    username: str
    token: str | None = dataclasses.field(repr=False)
    channels: tuple[str, ...]
    host: str = SETTING["VBOT_HOST"].default
    port: int = TLS_PORT
    tls: bool = SETTING["VBOT_TLS"].default == "true"
    prefix: str = SETTING["VBOT_PREFIX"].default
    owners: frozenset[str] = frozenset()
    log_level: str = SETTING["VBOT_LOG_LEVEL"].default
    ping_interval: float = float(SETTING["VBOT_PING_INTERVAL"].default)
    ping_timeout: float = float(SETTING["VBOT_PING_TIMEOUT"].default)
    commands_file: Path = Path(SETTING["VBOT_COMMANDS_FILE"].default)
    commands_file_required: bool = False
    state_file: Path = Path(SETTING["VBOT_STATE_FILE"].default)
    client_id: str | None = None
    token_file: Path = Path(SETTING["VBOT_TOKEN_FILE"].default)
    auth_url: str = SETTING["VBOT_AUTH_URL"].default
    auth_url_set: bool = False
    validate_interval: float = float(SETTING["VBOT_VALIDATE_INTERVAL"].default)
    helix_url: str = SETTING["VBOT_HELIX_URL"].default
    helix_url_set: bool = False

    @property
    def is_twitch_host(self) -> bool:
        """True when ``host`` is Twitch's chat server (``vbot.network.is_twitch_host``)."""
        return is_twitch_host(self.host)

    @property
    def ident(self) -> str:
        """The user name sent with USER at login: ``username`` without what servers refuse
        there (ngIRCd: "Invalid user name" for ``frank[x]``), so ``frank[x]`` logs in as ``frankx``."""
        return re.sub(r"[^a-z0-9_-]", "", self.username) or "vbot"

    @property
    def password(self) -> str | None:
        """The argument of PASS, or None to send no PASS.

        ``oauth:<token>`` for an OAuth token (Twitch's host, or VBOT_AUTH_URL set: Twitch docs,
        "IRC Concepts" > Authenticating); on any other host the token as configured.
        """
        if not self.token:
            return None
        return f"oauth:{self.token}" if self.is_twitch_host or self.auth_url_set else self.token

    @property
    def is_anonymous(self) -> bool:
        """True for a read-only ``justinfan<digits>`` login on Twitch's host."""
        return self.is_twitch_host and _ANONYMOUS.fullmatch(self.username) is not None

    @property
    def validates_token(self) -> bool:
        """True when vbot validates and renews its token with the token service at
        ``auth_url``: the host is Twitch's or VBOT_AUTH_URL is set, and the login is
        not anonymous. Otherwise (a plain IRC server) the token is only sent as PASS."""
        return not self.is_anonymous and (self.is_twitch_host or self.auth_url_set)

    @property
    def uses_helix(self) -> bool:
        """True when vbot asks Twitch's API (``helix_url``) for stream facts: the token is validated
        (a token service gives the client ID and keeps the token fresh), and the host is Twitch's or
        VBOT_HELIX_URL is set. Otherwise commands answer without stream facts."""
        return self.validates_token and (self.is_twitch_host or self.helix_url_set)


class NotAFile(Exception):
    """``read_regular_file`` was pointed at something other than a regular file; ``kind`` says
    what, for a message: ``folder``, ``FIFO``, ``device``, ``socket`` or ``special file``."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def read_regular_file(path: str | os.PathLike, limit: int) -> tuple[bytes, os.stat_result]:
    """The first ``limit + 1`` bytes of the regular file at ``path`` (a symbolic link is followed),
    and its status (mode, links); more than ``limit`` bytes read means the file is larger.

    The file is opened with O_NONBLOCK and checked on the open descriptor (``fstat``), never by
    name before opening: whatever ``path`` names by the time it is opened (a FIFO swapped in, whose
    ``open()`` would wait for a writer; a device such as /dev/zero, endless), nothing waits and
    only a regular file is read. Raises NotAFile, FileNotFoundError, or another OSError.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotAFile(_kind(status.st_mode))
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(descriptor, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), status
    finally:
        os.close(descriptor)


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message.

    >>> _kind(stat.S_IFIFO), _kind(stat.S_IFDIR), _kind(stat.S_IFCHR)
    ('FIFO', 'folder', 'device')
    """
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "socket" if stat.S_ISSOCK(mode) else "special file"


def read_settings(
    env_file: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Merge the env file and the environment into one dict (environment wins; an empty
    environment variable counts as unset, like an empty value anywhere).

    ``env_file`` None means ``.env`` in the current working directory, if there is
    one. Raises ConfigError, naming the file, when a named ``env_file`` is not an
    existing file, or when the file (``.env`` too) is a directory or anything but
    a regular file, cannot be read, is larger than MAX_ENV_FILE_BYTES, is not UTF-8
    text, or has a line python-dotenv cannot parse (naming the first such line's number).
    """
    environ = os.environ if environ is None else environ
    path = Path(".env") if env_file is None else Path(env_file)
    shown = _shown(path)
    file_values: dict[str, str | None] = {}
    if env_file is not None or os.path.lexists(path):
        missing = f"--env-file {shown}: not an existing file; give the path of an env file"
        try:
            raw, _ = read_regular_file(path, MAX_ENV_FILE_BYTES)
            if len(raw) > MAX_ENV_FILE_BYTES:
                raise ConfigError(f"{shown}: larger than {MAX_ENV_FILE_BYTES // 1024} KiB; is it the right file?")
            text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # newlines as open() reads text
        except NotAFile as error:
            special = f"{shown}: not a regular file (a {error.kind}); remove or rename it, or name one with --env-file"
            raise ConfigError(missing if env_file is not None else special) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{shown}: not UTF-8 text; save the file as UTF-8") from None
        except OSError as error:
            if env_file is not None and isinstance(error, FileNotFoundError):
                raise ConfigError(missing) from None
            raise ConfigError(
                f"{shown}: cannot read it ({error.strerror or error}); check that it exists and its permissions"
            ) from None
        from dotenv import dotenv_values  # here: most starts have no env file (a few ms saved)

        _check_env_lines(text, shown)
        file_values = dotenv_values(stream=io.StringIO(text))
    merged = {key: value for key, value in file_values.items() if value is not None}
    merged.update((key, value) for key, value in environ.items() if value.strip())
    return merged


def _check_env_lines(text: str, shown: str) -> None:
    """ConfigError naming the first line of the env file ``text`` that python-dotenv cannot parse
    (``VBOT_CHANNEL mychannel``, an unclosed quote), which it would skip with a warning of its own;
    the line itself is not repeated (it may hold a token)."""
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{shown} line {binding.original.line}: not a setting; write NAME=value, "
                "e.g. VBOT_CHANNEL=mychannel, and close any quote"
            )


def unknown_settings(settings: Mapping[str, str]) -> list[str]:
    """One line for each ``VBOT_*`` name in ``settings`` (in any case) that vbot does not know (a
    typo's value would otherwise be ignored in silence), with the closest known name when one is close.

    >>> unknown_settings({"VBOT_CHANEL": "x", "VBOT_CHANNEL": "y", "vbot_tls": "false", "HOME": "/root"})
    ['VBOT_CHANEL is not a vbot setting and is ignored; did you mean VBOT_CHANNEL?', \
'vbot_tls is not a vbot setting and is ignored; did you mean VBOT_TLS?']
    """
    lines = []
    for name in sorted(settings):
        if name.upper().startswith("VBOT_") and name not in SETTING:
            import difflib  # here: only a typo needs it (a few ms saved at start)

            close = difflib.get_close_matches(name.upper(), list(SETTING), n=1)
            hint = f"; did you mean {close[0]}?" if close else " (README lists the settings)"
            lines.append(f"{name} is not a vbot setting and is ignored{hint}")
    return lines


def load_config(settings: Mapping[str, str], console: bool = False) -> Config:
    """Build a Config from VBOT_* settings (see read_settings).

    Empty values count as unset: the default of ``SETTINGS`` applies. Raises
    ConfigError for the first missing or invalid variable; never anything else,
    whatever the strings. When the token will be validated (the host is Twitch's or
    VBOT_AUTH_URL is set; see ``Config.validates_token``), VBOT_USERNAME and
    VBOT_TOKEN are optional: the login comes from Twitch, the token may come from
    the token file. With ``console`` (``vbot --console``, no connection)
    VBOT_USERNAME, VBOT_TOKEN and VBOT_CHANNEL are optional, but whatever is
    set is still validated.
    """

    def get(name: str) -> str:
        return (settings.get(name) or "").strip()

    auth = _auth_settings(get)
    host = _host(get("VBOT_HOST"))
    twitch = is_twitch_host(host)
    validated = bool(auth["auth_url_set"]) or twitch
    username = get("VBOT_USERNAME").lower()
    if not username and not console and not validated:
        raise SettingMissing(
            "VBOT_USERNAME is not set: set it to the bot account's Twitch login, e.g. VBOT_USERNAME=mybot"
        )
    if username and not _is_login(username, twitch):
        if twitch:
            raise ConfigError("VBOT_USERNAME must be a Twitch login: 1-25 letters, digits or underscores")
        raise ConfigError(
            "VBOT_USERNAME must be an IRC nick (a letter or one of []\\`_^{|} first, then letters, digits, "
            "those or '-') or a Twitch login, e.g. VBOT_USERNAME=my-bot"
        )
    token = _token(get("VBOT_TOKEN"), oauth=validated, required=not console and not validated)
    channels = tuple(dict.fromkeys(_channels(settings.get("VBOT_CHANNEL") or "", required=not console)))
    tls = _boolean(SETTING["VBOT_TLS"], get("VBOT_TLS"))
    log_level = get("VBOT_LOG_LEVEL").upper() or SETTING["VBOT_LOG_LEVEL"].default
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"VBOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    prefix = get("VBOT_PREFIX") or SETTING["VBOT_PREFIX"].default
    if not prefix.isprintable() or " " in prefix:
        raise ConfigError("VBOT_PREFIX must be printable characters without spaces, e.g. VBOT_PREFIX=!")
    commands_file = get("VBOT_COMMANDS_FILE")
    helix_url = _service_url(SETTING["VBOT_HELIX_URL"], get("VBOT_HELIX_URL"))
    if helix_url and not validated and not console:
        raise ConfigError(
            "VBOT_HELIX_URL needs a token vbot checks with a token service: set VBOT_AUTH_URL too "
            "(or VBOT_HOST to Twitch's), or unset VBOT_HELIX_URL"
        )
    return Config(
        username=username,
        token=token or None,
        channels=channels,
        host=host,
        port=int(_number(SETTING["VBOT_PORT"], get("VBOT_PORT"), str(TLS_PORT if tls else PLAIN_PORT), whole=True)),
        tls=tls,
        prefix=prefix,
        owners=_owners(get("VBOT_OWNERS"), twitch),
        log_level=log_level,
        ping_interval=_number(SETTING["VBOT_PING_INTERVAL"], get("VBOT_PING_INTERVAL")),
        ping_timeout=_number(SETTING["VBOT_PING_TIMEOUT"], get("VBOT_PING_TIMEOUT")),
        commands_file=_path(SETTING["VBOT_COMMANDS_FILE"], commands_file),
        commands_file_required=bool(commands_file),
        state_file=_path(SETTING["VBOT_STATE_FILE"], get("VBOT_STATE_FILE")),
        helix_url=helix_url or TWITCH_HELIX_URL,
        helix_url_set=bool(helix_url),
        **auth,
    )


def _token(value: str, oauth: bool, required: bool) -> str:
    """The bare OAuth token when ``oauth`` (Twitch's host, or VBOT_AUTH_URL set: the token goes to
    the token service's /validate, which refuses the ``oauth:`` prefix), the server password as
    given elsewhere; ``''`` for none."""
    if oauth:
        if value.lower().startswith("oauth:"):
            value = value[len("oauth:") :]
        if not value and required:
            raise SettingMissing(
                "VBOT_TOKEN is not set: set it to the bot account's OAuth token "
                "(scopes chat:read chat:edit), with or without 'oauth:'"
            )
        if value and (not value.isprintable() or " " in value or value.lower().startswith("oauth:")):
            raise ConfigError(
                "VBOT_TOKEN is malformed: give the token once, with at most one 'oauth:' prefix and no spaces"
            )
    elif value and (not value.isprintable() or " " in value or value.startswith(":")):
        raise ConfigError(
            "VBOT_TOKEN is malformed: give the server password as printable characters without "
            "spaces, not starting with ':' (or leave it empty for a server without password)"
        )
    room = MAX_ACCESS_TOKEN_CHARS if oauth else MAX_PASSWORD_BYTES
    if len(value.encode()) > room:
        raise ConfigError(
            f"VBOT_TOKEN is too long ({len(value.encode())} bytes): the line PASS "
            f"{'oauth:<token>' if oauth else '<password>'} and CR LF must fit in IRC's {MAX_LINE_BYTES} bytes, "
            f"so it may have {room}; check that it was pasted once and whole"
        )
    return value


def _host(value: str) -> str:
    host = value or SETTING["VBOT_HOST"].default
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(
            "VBOT_HOST must be a host name (ASCII letters, digits, '-' and dots) or an IP address, "
            f"e.g. VBOT_HOST={TWITCH_HOST}"
        )
    return host


def _auth_settings(get: Callable[[str], str]) -> dict[str, Any]:
    """The token service settings, as Config fields: VBOT_CLIENT_ID, VBOT_TOKEN_FILE,
    VBOT_AUTH_URL (``auth_url`` and ``auth_url_set``) and VBOT_VALIDATE_INTERVAL."""
    client_id = get("VBOT_CLIENT_ID")
    if client_id and not re.fullmatch(r"[A-Za-z0-9]{1,64}", client_id):
        raise ConfigError(
            "VBOT_CLIENT_ID must be the Client ID of your Twitch application (letters and digits); "
            "copy it from the application's page in Twitch's developer console"
        )
    auth_url = _service_url(SETTING["VBOT_AUTH_URL"], get("VBOT_AUTH_URL"))
    interval = _number(SETTING["VBOT_VALIDATE_INTERVAL"], get("VBOT_VALIDATE_INTERVAL"))
    return {
        "client_id": client_id or None,
        "token_file": _path(SETTING["VBOT_TOKEN_FILE"], get("VBOT_TOKEN_FILE")),
        "auth_url": auth_url or TWITCH_AUTH_URL,
        "auth_url_set": bool(auth_url),
        "validate_interval": interval,
    }


def _service_url(setting: Setting, value: str) -> str:
    """``value`` without a trailing ``/`` (``''`` when unset); ConfigError unless ``_is_service_url``."""
    url = value.rstrip("/")
    if url and not _is_service_url(url):
        raise ConfigError(
            f"{setting.name} must be an https:// URL without ?query or #fragment (http:// only to loopback), "
            f"e.g. {setting.name}={setting.default}"
        )
    return url


def _is_service_url(url: str) -> bool:
    """``https://host[:port]/path``, or ``http://`` to a loopback host (tests); no query, no fragment.

    >>> [_is_service_url(url) for url in ("https://id.twitch.tv/oauth2", "http://127.0.0.1:8080/o",
    ...                                   "http://example.org/o", "https://x/o?a=1", "https://x:99999/o", "https://[")]
    [True, True, False, False, False, False]
    """
    try:
        parts = urllib.parse.urlsplit(url)  # raises ValueError for a bad [IPv6] host
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return False
    if parts.query or parts.fragment or not url.isprintable() or " " in url:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _is_login(name: str, twitch: bool) -> bool:
    """``name`` (lowercased) is a Twitch login; off Twitch's host an IRC nick will do too."""
    return LOGIN_PATTERN.fullmatch(name) is not None or (not twitch and NICK_PATTERN.fullmatch(name) is not None)


def _owners(value: str, twitch: bool) -> frozenset[str]:
    owners = [name.lstrip("@") for name in _names(value)]
    if not all(_is_login(name, twitch) for name in owners):
        if twitch:
            raise ConfigError("VBOT_OWNERS must be comma-separated Twitch logins, e.g. VBOT_OWNERS=alice,bob")
        raise ConfigError(
            "VBOT_OWNERS must be comma-separated IRC nicks or Twitch logins, e.g. VBOT_OWNERS=alice,frank[x]"
        )
    return frozenset(owners)


def _names(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _channels(value: str, required: bool = True) -> list[str]:
    names = [name.lstrip("#") for name in _names(value)]
    if not names and required:
        if value.strip():
            raise ConfigError(
                "VBOT_CHANNEL names no channel, only commas: set it to the channel(s) to join, "
                "e.g. VBOT_CHANNEL=mychannel"
            )
        raise SettingMissing("VBOT_CHANNEL is not set: set it to the channel(s) to join, e.g. VBOT_CHANNEL=mychannel")
    for name in names:
        if not LOGIN_PATTERN.fullmatch(name):
            raise ConfigError(
                "VBOT_CHANNEL must be comma-separated channel names (letters, digits, "
                "underscores; '#' optional), e.g. VBOT_CHANNEL=mychannel,#other"
            )
    return ["#" + name for name in names]


def _boolean(setting: Setting, value: str) -> bool:
    word = (value or setting.default).lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{setting.name} must be true or false, e.g. {setting.name}=true")


def _number(setting: Setting, value: str, default: str = "", whole: bool = False) -> float:
    """``value`` (ASCII digits, a decimal point unless ``whole``) within ``setting.bounds``;
    ``default`` (or the setting's) when empty."""
    assert setting.bounds is not None
    low, high = setting.bounds
    example = default or setting.default
    text = value or example
    if not (_WHOLE if whole else _DECIMAL).fullmatch(text) or not low <= float(text) <= high:
        kind = "a whole number" if whole else "a number of seconds"
        raise ConfigError(f"{setting.name} must be {kind} from {low:g} to {high:g}, e.g. {setting.name}={example}")
    return float(text)


def _path(setting: Setting, value: str) -> Path:
    text = value or setting.default
    try:
        os.fsencode(text)
    except UnicodeError:
        text = "\0"
    if "\0" in text:
        raise ConfigError(
            f"{setting.name} must be a file path the system can use (no NUL character, valid "
            f"UTF-8), e.g. {setting.name}={setting.default}"
        )
    return Path(text)


def _shown(path: Path) -> str:
    """``path`` for a one-line message: as is when printable, else Python's escaped form."""
    text = str(path)
    return text if text.isprintable() else ascii(text)
