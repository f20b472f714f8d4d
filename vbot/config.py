"""Configuration: the only place that reads the environment and ``.env`` files.

Precedence, highest first: the real process environment, then the env file
(``--env-file PATH``, or ``.env`` in the working directory when it exists),
then the defaults documented in ``config.example.env``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

TWITCH_HOST = "irc.chat.twitch.tv"
TWITCH_AUTH_URL = "https://id.twitch.tv/oauth2"
MAX_VALIDATE_INTERVAL = 3600.0
"""Twitch requires validating a kept token at least hourly (docs, "Validating Requests")."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LOGIN = re.compile(r"[a-z0-9_]{1,25}")
_ANONYMOUS = re.compile(r"justinfan\d+")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigError(ValueError):
    """A configuration value is missing or invalid.

    The message is one line that names the variable and says how to fix it;
    it never contains the token.
    """


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything vbot is configured with; immutable, and its repr hides the token.

    ``token`` is the bare OAuth token (no ``oauth:`` prefix), or None for an
    anonymous ``justinfan<digits>`` login. ``channels`` are lowercase names
    with a leading ``#``. Times are in seconds. In console mode (see
    load_config) ``username`` may be ``''`` and ``channels`` empty.
    """

    username: str
    token: str | None = dataclasses.field(repr=False)
    channels: tuple[str, ...]
    host: str = TWITCH_HOST
    port: int = 6697
    tls: bool = True
    prefix: str = "!"
    owners: frozenset[str] = frozenset()
    log_level: str = "INFO"
    ping_interval: float = 60.0
    ping_timeout: float = 10.0
    commands_file: Path = Path("commands.toml")
    commands_file_required: bool = False
    state_file: Path = Path("vbot-state.sqlite3")
    client_id: str | None = None
    token_file: Path = Path("vbot-token.json")
    auth_url: str = TWITCH_AUTH_URL
    auth_url_set: bool = False
    validate_interval: float = MAX_VALIDATE_INTERVAL

    @property
    def password(self) -> str | None:
        """The PASS argument, ``oauth:<token>``, or None for anonymous logins."""
        return f"oauth:{self.token}" if self.token else None

    @property
    def is_anonymous(self) -> bool:
        """True for a read-only ``justinfan<digits>`` login."""
        return _ANONYMOUS.fullmatch(self.username) is not None

    @property
    def validates_token(self) -> bool:
        """True when vbot validates and renews its token with the token service at
        ``auth_url``: the host is Twitch's or VBOT_AUTH_URL is set, and the login is
        not anonymous. Otherwise (a plain IRC server) the token is only sent as PASS."""
        return not self.is_anonymous and (self.host == TWITCH_HOST or self.auth_url_set)


def read_settings(env_file: str | os.PathLike | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Merge the env file and the environment into one dict (environment wins; an empty
    environment variable counts as unset, like an empty value anywhere).

    ``env_file`` None means ``.env`` in the current working directory, if it
    exists. Raises ConfigError when a named ``env_file`` does not exist, or the
    file is not readable UTF-8.
    """
    environ = os.environ if environ is None else environ
    path = Path.cwd() / ".env" if env_file is None else Path(env_file)
    if env_file is not None and not path.is_file():
        raise ConfigError(f"--env-file {path}: not an existing file; give the path of an env file")
    try:
        file_values = dotenv_values(path, encoding="utf-8") if path.is_file() else {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror}); check its permissions") from None
    merged = {key: value for key, value in file_values.items() if value is not None}
    merged.update((key, value) for key, value in environ.items() if value.strip())
    return merged


def load_config(settings: Mapping[str, str], console: bool = False) -> Config:
    """Build a Config from VBOT_* settings (see read_settings).

    Empty values count as unset. Raises ConfigError for the first missing or
    invalid variable. When the token will be validated (the host is Twitch's or
    VBOT_AUTH_URL is set; see ``Config.validates_token``), VBOT_USERNAME and
    VBOT_TOKEN are optional: the login comes from Twitch, the token may come from
    the token file. With ``console`` (``vbot --console``, no connection)
    VBOT_USERNAME, VBOT_TOKEN and VBOT_CHANNEL are optional, but whatever is
    set is still validated.
    """

    def get(name: str) -> str:
        return (settings.get(name) or "").strip()

    auth = _auth_settings(get)
    validated = bool(auth["auth_url_set"]) or (get("VBOT_HOST") or TWITCH_HOST) == TWITCH_HOST
    username = get("VBOT_USERNAME").lower()
    if not username and not console and not validated:
        raise ConfigError("VBOT_USERNAME is not set: set it to the bot account's Twitch login, e.g. VBOT_USERNAME=mybot")
    if username and not _LOGIN.fullmatch(username):
        raise ConfigError("VBOT_USERNAME must be a Twitch login: 1-25 letters, digits or underscores")

    token = get("VBOT_TOKEN")
    if token.lower().startswith("oauth:"):
        token = token[len("oauth:"):]
    if not token and not console and not validated and not _ANONYMOUS.fullmatch(username):
        raise ConfigError("VBOT_TOKEN is not set: set it to the bot account's OAuth token "
                          "(scopes chat:read chat:edit), with or without 'oauth:'")
    if token and (re.search(r"\s", token) or token.lower().startswith("oauth:")):
        raise ConfigError("VBOT_TOKEN is malformed: give the token once, with at most one 'oauth:' prefix and no spaces")

    channels = tuple(dict.fromkeys(_channels(get("VBOT_CHANNEL"), required=not console)))
    tls = _boolean("VBOT_TLS", get("VBOT_TLS"), default=True)
    log_level = get("VBOT_LOG_LEVEL").upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"VBOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    prefix = get("VBOT_PREFIX") or "!"
    if re.search(r"\s", prefix):
        raise ConfigError("VBOT_PREFIX must not contain spaces, e.g. VBOT_PREFIX=!")
    ping_interval = _seconds("VBOT_PING_INTERVAL", get("VBOT_PING_INTERVAL"), 60.0)
    ping_timeout = _seconds("VBOT_PING_TIMEOUT", get("VBOT_PING_TIMEOUT"), 10.0)
    commands_file = get("VBOT_COMMANDS_FILE")
    return Config(
        username=username,
        token=token or None,
        channels=channels,
        host=get("VBOT_HOST") or TWITCH_HOST,
        port=_port(get("VBOT_PORT"), tls),
        tls=tls,
        prefix=prefix,
        owners=_owners(get("VBOT_OWNERS")),
        log_level=log_level,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        commands_file=Path(commands_file or "commands.toml"),
        commands_file_required=bool(commands_file),
        state_file=Path(get("VBOT_STATE_FILE") or "vbot-state.sqlite3"),
        **auth,
    )


def _auth_settings(get: Callable[[str], str]) -> dict[str, Any]:
    """The token service settings, as Config fields: VBOT_CLIENT_ID, VBOT_TOKEN_FILE,
    VBOT_AUTH_URL (``auth_url`` and ``auth_url_set``) and VBOT_VALIDATE_INTERVAL."""
    client_id = get("VBOT_CLIENT_ID")
    if client_id and not re.fullmatch(r"[A-Za-z0-9]{1,64}", client_id):
        raise ConfigError("VBOT_CLIENT_ID must be the Client ID of your Twitch application (letters and digits); "
                          "copy it from the application's page in Twitch's developer console")
    auth_url = get("VBOT_AUTH_URL").rstrip("/")
    parts = urllib.parse.urlsplit(auth_url)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    if auth_url and not ((parts.scheme == "https" and parts.hostname) or loopback):
        raise ConfigError(f"VBOT_AUTH_URL must be an https:// URL, e.g. VBOT_AUTH_URL={TWITCH_AUTH_URL}")
    interval = _seconds("VBOT_VALIDATE_INTERVAL", get("VBOT_VALIDATE_INTERVAL"), MAX_VALIDATE_INTERVAL)
    if interval > MAX_VALIDATE_INTERVAL:
        raise ConfigError(f"VBOT_VALIDATE_INTERVAL must be at most {MAX_VALIDATE_INTERVAL:g} seconds "
                          f"(Twitch requires hourly validation), e.g. VBOT_VALIDATE_INTERVAL={MAX_VALIDATE_INTERVAL:g}")
    return {"client_id": client_id or None, "token_file": Path(get("VBOT_TOKEN_FILE") or "vbot-token.json"),
            "auth_url": auth_url or TWITCH_AUTH_URL, "auth_url_set": bool(auth_url),
            "validate_interval": interval}


def _owners(value: str) -> frozenset[str]:
    owners = [name.lstrip("@") for name in _names(value)]
    if not all(_LOGIN.fullmatch(name) for name in owners):
        raise ConfigError("VBOT_OWNERS must be comma-separated Twitch logins, e.g. VBOT_OWNERS=alice,bob")
    return frozenset(owners)


def _names(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _channels(value: str, required: bool = True) -> list[str]:
    names = [name.lstrip("#") for name in _names(value)]
    if not names and required:
        raise ConfigError("VBOT_CHANNEL is not set: set it to the channel(s) to join, e.g. VBOT_CHANNEL=mychannel")
    for name in names:
        if not _LOGIN.fullmatch(name):
            raise ConfigError("VBOT_CHANNEL must be comma-separated channel names (letters, digits, "
                              "underscores; '#' optional), e.g. VBOT_CHANNEL=mychannel,#other")
    return ["#" + name for name in names]


def _boolean(name: str, value: str, default: bool) -> bool:
    if not value:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, e.g. {name}=true")


def _port(value: str, tls: bool) -> int:
    if not value:
        return 6697 if tls else 6667
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError("VBOT_PORT must be a number from 1 to 65535, e.g. VBOT_PORT=6697")
    return int(value)


def _seconds(name: str, value: str, default: float) -> float:
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise ConfigError(f"{name} must be a number of seconds greater than 0, e.g. {name}={default:g}")
    return seconds
