"""The token file: the bot account's tokens as a small private JSON file.

Written by ``vbot login`` and after every refresh, read at start. Twitch's refresh
tokens for public clients are single-use, so the file is the only copy of the
session that survives a crash: it is written to a temporary file in the same folder
(created with mode 0600, so never readable by others, not even for an instant),
fsync'ed, renamed over the old one with ``os.replace`` (atomic on POSIX), and the
folder is fsync'ed so the rename itself survives a power cut. A crash or SIGKILL
at any moment leaves the old complete file or the new complete file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import secrets
import stat
from pathlib import Path

from vbot.auth import TOKEN_SHAPE
from vbot.config import ConfigError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOGIN_HINT = 'run "vbot login"'


class TokenFileError(ConfigError):
    """The token file cannot be read or is not a vbot token file.

    The message is one line naming VBOT_TOKEN_FILE, the path, the cause and the fix.
    """


class TokenFileMissing(TokenFileError):
    """The token file does not exist."""


@dataclasses.dataclass(frozen=True)
class Tokens:
    """The bot account's tokens and what Twitch said about them; the secrets stay out of ``repr``.

    ``expires_at`` is the access token's expiry as wall-clock epoch seconds
    (``time.time()``), None when unknown or never. ``refresh_token`` is None for a
    pasted ``VBOT_TOKEN``, which vbot cannot renew. ``login`` and ``user_id`` are
    ``''`` until ``/validate`` told them; ``client_id`` is the application the tokens
    were issued to (refreshing needs it), ``''`` when unknown.
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str | None = dataclasses.field(repr=False)
    expires_at: float | None
    scopes: tuple[str, ...] = ()
    login: str = ""
    user_id: str = ""
    client_id: str = ""

    @property
    def is_renewable(self) -> bool:
        """True when a refresh token and the client ID to use it with are known."""
        return bool(self.refresh_token and self.client_id)

    @property
    def password(self) -> str:
        """The IRC PASS argument, ``oauth:<access token>``."""
        return f"oauth:{self.access_token}"

    def to_json(self) -> str:
        """The file's text: a JSON object with a format ``version``."""
        fields = dataclasses.asdict(self)
        fields["scopes"] = list(self.scopes)
        return json.dumps({"version": FORMAT_VERSION, **fields}, indent=2) + "\n"


def load_tokens(path: Path) -> Tokens:
    """Read the token file at ``path``.

    Raises TokenFileMissing when it does not exist, TokenFileError when it cannot
    be read or is not a vbot token file (invalid JSON, a missing or mistyped field).
    Logs a WARNING when others may read it.
    """
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            text = file.read(1 << 20)
    except FileNotFoundError:
        raise TokenFileMissing(f"VBOT_TOKEN_FILE={path}: no such file; {LOGIN_HINT} to create it") from None
    except OSError as error:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: cannot read it ({error.strerror}); check its permissions, or {LOGIN_HINT} again"
        ) from None
    try:
        fields = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: not a vbot token file (not JSON); {LOGIN_HINT} again to replace it"
        ) from None
    try:
        tokens = _tokens_from(fields)
    except (KeyError, TypeError, ValueError) as error:
        what = f"no {error.args[0]!r}" if isinstance(error, KeyError) else str(error)
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: not a vbot token file ({what}); {LOGIN_HINT} again to replace it"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s can be read by other users; make it private: chmod 600 %s", path, path)
    return tokens


def _tokens_from(fields: object) -> Tokens:
    if not isinstance(fields, dict):
        raise TypeError("not a JSON object")
    if fields.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"format version {fields.get('version')!r}, not {FORMAT_VERSION}")
    expires_at = fields["expires_at"]
    if expires_at is not None and (
        isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or not math.isfinite(expires_at)
    ):
        raise TypeError("'expires_at' is not a number")
    scopes = fields["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise TypeError("'scopes' is not a list of strings")
    return Tokens(
        access_token=_string(fields, "access_token", required=True),
        refresh_token=_string(fields, "refresh_token", required=True),
        expires_at=None if expires_at is None else float(expires_at),
        scopes=tuple(scopes),
        login=_string(fields, "login"),
        user_id=_string(fields, "user_id"),
        client_id=_string(fields, "client_id", required=True),
    )


def _string(fields: dict, name: str, required: bool = False) -> str:
    """The field, a token-shaped string (``auth.TOKEN_SHAPE``); empty only when not ``required``."""
    value = fields[name]
    if not isinstance(value, str) or not (TOKEN_SHAPE.fullmatch(value) or (value == "" and not required)):
        raise TypeError(f"{name!r} is not printable ASCII without spaces" + ("" if required else ", or empty"))
    return value


def save_tokens(path: Path, tokens: Tokens) -> None:
    """Replace the file at ``path`` with ``tokens``, atomically and durably (see the module doc).

    The file is created with mode 0600 (and keeps it when replaced). Raises
    TokenFileError (one line naming the path and the cause) when the folder is not
    writable or the disk is full; the old file is then untouched.
    """
    folder = path.parent
    temporary = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as error:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: cannot write in {folder} ({error.strerror}); "
            "set VBOT_TOKEN_FILE to a file in a writable folder"
        ) from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(tokens.to_json())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: cannot write it ({error.strerror}); "
            "check that it is not a folder and that there is free disk space, or set VBOT_TOKEN_FILE to another file"
        ) from None
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; systems that cannot open folders skip it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
