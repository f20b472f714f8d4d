"""The token file: the bot account's tokens as a small private JSON file.

Written by ``vbot login`` and after every refresh, read at start. Twitch's refresh
tokens for public clients are single-use, so the file is the only copy of the
session that survives a crash: it is written to a temporary file in the same folder
(created with mode 0600, so never readable by others, not even for an instant),
fsync'ed, renamed over the old one with ``os.replace`` (atomic on POSIX), and the
folder is fsync'ed so the rename itself survives a power cut. A crash or SIGKILL
at any moment leaves the old complete file or the new complete file (and perhaps the
temporary file, which ``TokenFileLock.acquire`` adopts or removes at the next start). A
token file that is a symbolic link is written through: the link's target is replaced,
in the target's folder.

One process per token file (refresh tokens are single-use: two processes renewing one
pair lock each other out of it): ``TokenFileLock`` holds an exclusive ``flock`` on
``.<name>.lock`` beside the file while vbot or ``vbot login`` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import re
import secrets
import stat
from pathlib import Path

from vbot.auth import TOKEN_SHAPE, access_token
from vbot.config import ConfigError, NotAFile, read_regular_file
from vbot.http import parse_json

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LOGIN_HINT = 'run "vbot login"'
MAX_FILE_BYTES = 65536
"""A token file is about 500 bytes; anything larger than this is not one (and is not read)."""
LATEST_EXPIRY = 1e11
"""Epoch seconds (year 5138): an ``expires_at`` beyond this is not a time."""


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
    """Read the token file at ``path`` (a symbolic link is followed).

    Raises TokenFileMissing when it does not exist, TokenFileError when it cannot
    be read or is not a vbot token file (not a regular file: a FIFO is never waited
    on; larger than MAX_FILE_BYTES; invalid or hostile JSON; a missing or mistyped
    field), or has more than one hard link (see ``_one_name``). Logs a WARNING when
    others may read it.
    """
    try:
        text, status = read_regular_file(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise TokenFileMissing(f"VBOT_TOKEN_FILE={path}: no such file; {LOGIN_HINT} to create it") from None
    except NotAFile as error:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: cannot read it (a {error.kind}, not a file); "
            f'point VBOT_TOKEN_FILE at the file "vbot login" saves, or {LOGIN_HINT} again'
        ) from None
    except OSError as error:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: cannot read it ({error.strerror}); check its permissions, or {LOGIN_HINT} again"
        ) from None
    _one_name(path, status.st_nlink)
    if len(text) > MAX_FILE_BYTES:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: not a vbot token file (larger than {MAX_FILE_BYTES // 1024} KiB); "
            f"{LOGIN_HINT} again to replace it"
        )
    try:
        fields = parse_json(text)
    except ValueError as error:
        cause = "not JSON" if str(error).startswith(("not JSON", "not UTF-8")) else str(error)
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: not a vbot token file ({cause}); {LOGIN_HINT} again to replace it"
        ) from None
    try:
        tokens = _tokens_from(fields)
    except (KeyError, TypeError, ValueError) as error:
        what = f"no {error.args[0]!r}" if isinstance(error, KeyError) else str(error)
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: not a vbot token file ({what}); {LOGIN_HINT} again to replace it"
        ) from None
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s can be read by other users; make it private: chmod 600 %s", path, path)
    return tokens


def _one_name(path: Path, links: int) -> None:
    """TokenFileError unless the token file has one name (``links``, its hard link count, is 1).

    Each vbot locks the file by its name (``TokenFileLock``), so two vbots on two hard links
    both ran, and each renewal replaces the file, which leaves the other name with a spent
    refresh token: the other vbot then stops with exit 3. A symbolic link is followed (one lock).
    """
    if links > 1:
        raise TokenFileError(
            f"VBOT_TOKEN_FILE={path}: the file has {links} hard links; vbot replaces it at each renewal, "
            "which leaves the other names with a spent token (and two vbots on two names would spend each "
            "other's): keep one name (remove the other links), or make the others symbolic links to it"
        )


def _tokens_from(fields: object) -> Tokens:
    if not isinstance(fields, dict):
        raise TypeError("not a JSON object")
    if fields.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"format version {fields.get('version')!r}, not {FORMAT_VERSION}")
    expires_at = fields["expires_at"]
    if expires_at is not None and (
        isinstance(expires_at, bool)
        or not isinstance(expires_at, int | float)
        or not math.isfinite(expires_at)
        or abs(expires_at) > LATEST_EXPIRY
    ):
        raise TypeError("'expires_at' is not a time in epoch seconds")
    scopes = fields["scopes"]
    if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
        raise TypeError("'scopes' is not a list of strings")
    return Tokens(
        access_token=access_token(_string(fields, "access_token", required=True)),
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

    The file is created with mode 0600 (and keeps it when replaced). A symbolic link is
    written through: its target is replaced, in the target's folder. Raises
    TokenFileError (one line naming the path and the cause) when the folder is not
    writable or the disk is full; the old file is then untouched.
    """
    target = Path(os.path.realpath(path))
    folder = target.parent
    temporary = folder / f".{target.name}.{secrets.token_hex(4)}.tmp"
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
        os.replace(temporary, target)
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


class TokenFileInUse(TokenFileError):
    """Another process holds the token file's lock; the message names its pid."""


class TokenFileLock:
    """One process per token file: an exclusive ``flock`` on ``.<name>.lock`` in the folder of
    the token file's target (so two paths to one file share it), holding the owner's pid.

    ``acquire()`` takes it (raising TokenFileInUse, one line naming the other process's pid),
    then tidies what a SIGKILL during a save left (``adopt_leftovers``) and warns once when
    renewed tokens could not be saved in that folder. ``release()`` lets it go; the system
    releases it too when the process ends, however it ends.
    """

    def __init__(self, path: Path):
        self.path = path
        target = Path(os.path.realpath(path))
        self.lock_path = target.parent / f".{target.name}.lock"
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Take the lock. A folder where no lock file can be created gets the WARNING that
        nothing can be saved there, and no lock (nothing to protect then)."""
        import fcntl

        if not self._writable():
            return
        try:
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as error:
            log.warning("cannot create %s (%s): vbot runs without a lock on its token file", self.lock_path, error)
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            owner = _read_pid(descriptor)
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                log.warning("cannot lock %s (%s): vbot runs without a lock on its token file", self.lock_path, error)
                return
            raise TokenFileInUse(
                f"VBOT_TOKEN_FILE={self.path} is in use by another vbot (pid {owner or 'unknown'}): "
                "two processes renewing one token lock each other out of it (refresh tokens work once); "
                "stop the other one, or give each bot its own token file"
            ) from None
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor
        adopt_leftovers(self.path)

    def release(self) -> None:
        """Let the lock go (the lock file stays: removing it would race another process taking it)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _writable(self) -> bool:
        """True when renewed tokens can be saved in the target's folder; else one WARNING."""
        folder = self.lock_path.parent
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return True
        log.warning(
            "renewed tokens cannot be saved in %s (not a writable folder): vbot renews the token in memory only, "
            "and a restart after the first renewal (within about 4 hours) cannot log in; make the folder writable "
            "or set VBOT_TOKEN_FILE to a file in a writable folder",
            folder,
        )
        return False


def _read_pid(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def adopt_leftovers(path: Path) -> None:
    """Tidy the temporary files (``.<name>.<8 hex>.tmp``) that a SIGKILL during a save left
    beside the token file's target: the newest that holds a complete token file newer than
    the file itself (a later ``expires_at``, the same client ID) replaces it (its refresh
    token is the live one: Twitch consumed the file's); every other is removed. Call it only
    while holding the TokenFileLock (another process's save would look the same)."""
    target = Path(os.path.realpath(path))
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{8}}\.tmp")
    try:
        leftovers = [entry for entry in target.parent.iterdir() if pattern.fullmatch(entry.name)]
    except OSError:
        return
    try:
        current: Tokens | None = load_tokens(target)
    except TokenFileError:
        current = None
    newest: tuple[float, Path] | None = None
    for leftover in leftovers:
        try:
            tokens = load_tokens(leftover)
        except TokenFileError:
            continue
        expiry = tokens.expires_at
        if expiry is None or (newest is not None and expiry <= newest[0]):
            continue
        if current is None or (current.client_id == tokens.client_id and expiry > (current.expires_at or -math.inf)):
            newest = (expiry, leftover)
    if newest is not None:
        try:
            os.replace(newest[1], target)
            _fsync_folder(target.parent)
            log.warning("adopted the renewed token that an interrupted save left in %s", newest[1].name)
        except OSError as error:
            log.warning("could not adopt %s (%s)", newest[1].name, error)
    for leftover in leftovers:
        if newest is not None and leftover == newest[1]:
            continue
        try:
            leftover.unlink()
            log.info("removed %s, left by an interrupted save", leftover.name)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("could not remove %s (%s), left by an interrupted save", leftover.name, error)
