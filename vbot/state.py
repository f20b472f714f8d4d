"""Persistent counters for custom commands' ``{count}``, in one small SQLite file.

Each increment is its own transaction in SQLite's write-ahead log with
``synchronous=NORMAL`` (https://sqlite.org/wal.html): a crash or a kill leaves
either the old or the new value, never a damaged file; a power cut may lose the
last few increments but still not damage the file. One commit costs no fsync,
so a ``{count}`` reply does not stall the event loop. Two vbot processes may share the file
(SQLite locks it). A writer waits at most ``BUSY_TIMEOUT`` (0.1 s) for another process's
write lock (a ``sqlite3`` shell with a transaction open, a backup), since it waits in the
event loop: then that count is not made (StateError), and the reply says so.

The console (``vbot --console``) counts with ``ConsoleCounts`` instead: it starts from the
file's values, read once and read-only, and counts on in memory only, so trying commands
never changes the live bot's counters.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from vbot.config import ConfigError

if TYPE_CHECKING:  # sqlite3 loads when a count is first read or written, not at start-up
    import sqlite3

BUSY_TIMEOUT = 0.1
"""Seconds to wait for another process's write lock before giving up that count (the wait holds up
the event loop: PONG, every reply; at 5 s, a locked file made each ``{count}`` reply a 5 s stall)."""
SQLITE_BUSY = 5
"""SQLite's result code for "another connection holds the lock" (https://sqlite.org/rescode.html#busy)."""


class StateError(ConfigError):
    """The state file at ``path`` cannot be opened or is not a vbot state database.

    ``str(error)`` is one line naming VBOT_STATE_FILE, the path, the ``cause``
    (SQLite's message) and the ``fix``; ``brief()`` names only the file's base name,
    for chat.
    """

    def __init__(self, path: Path, cause: str, fix: str = "set VBOT_STATE_FILE to a writable file path"):
        self.path, self.cause = path, cause
        super().__init__(f"VBOT_STATE_FILE={path}: cannot use it as vbot's state database ({cause}); {fix}")

    @classmethod
    def from_sqlite(cls, path: Path, error: Exception) -> StateError:
        """The StateError for SQLite's ``error``: a lock held by another process says so, and what to do."""
        if getattr(error, "sqlite_errorcode", None) == SQLITE_BUSY:
            return cls(
                path,
                f"{error}: another process held it for more than {BUSY_TIMEOUT:g} s",
                "end that process's transaction (a sqlite3 shell, a backup?)",
            )
        return cls(path, str(error))

    def brief(self) -> str:
        """The reason without the directory, e.g. ``"vbot-state.sqlite3: cannot use it as ... (disk I/O error)"``."""
        return f"{self.path.name}: cannot use it as vbot's state database ({self.cause})"


class CountStore:
    """Counts by command name, kept in the SQLite file at ``path``.

    Nothing touches the disk until ``open()`` (or the first ``increment()``);
    the connection is then kept until ``close()``. Safe to use from several
    threads (one lock), though vbot uses it from one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> CountStore:
        """Open (creating if needed) the file; does nothing when already open.

        Returns self. Raises StateError when the file cannot be created or read
        as a database.
        """
        self._connected()
        return self

    def _connected(self) -> sqlite3.Connection:
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            return self._connection

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        connection = None
        try:
            # isolation_level=None: no implicit transactions; each increment runs its own BEGIN/COMMIT.
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, count INTEGER NOT NULL)")
            return connection
        except sqlite3.Error as error:
            if connection is not None:
                connection.close()
            raise StateError.from_sqlite(self.path, error) from None

    def increment(self, name: str) -> int:
        """Add one to the count for ``name`` in one transaction; returns the new count (1 the first time).

        Raises StateError when the file cannot be opened or written, or another process held its
        write lock for more than BUSY_TIMEOUT seconds (the count is then unchanged).
        """
        import sqlite3

        connection = self._connected()
        with self._lock:
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.execute(
                        "INSERT INTO counts (name, count) VALUES (?, 1) "
                        "ON CONFLICT (name) DO UPDATE SET count = count + 1",
                        (name,),
                    )
                    (count,) = connection.execute("SELECT count FROM counts WHERE name = ?", (name,)).fetchone()
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise StateError.from_sqlite(self.path, error) from None
            return count

    def get(self, name: str) -> int:
        """The current count for ``name`` (0 when it never ran). Raises as ``increment``."""
        import sqlite3

        connection = self._connected()
        with self._lock:
            try:
                row = connection.execute("SELECT count FROM counts WHERE name = ?", (name,)).fetchone()
            except sqlite3.Error as error:
                raise StateError.from_sqlite(self.path, error) from None
        return row[0] if row else 0

    def close(self) -> None:
        """Close the file; a later ``increment()`` opens it again."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> CountStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ConsoleCounts:
    """``{count}`` values for the console: they start from the state file's, read once, read-only
    (0 for every name when the file does not exist), and are counted on in memory only; nothing
    is ever written and no file is created.

    ``open()`` reads the file (once: a ``!reload`` keeps the counts) and raises StateError when it
    exists but cannot be read as a state database, as the live bot would.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.counts: dict[str, int] | None = None
        """Counts by command name; None until ``open()``."""

    def open(self) -> ConsoleCounts:
        """Read the file's counts, the first time; returns self."""
        if self.counts is None:
            self.counts = self._read() if self.path.exists() else {}
        return self

    def _read(self) -> dict[str, int]:
        import sqlite3

        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as error:
            raise StateError.from_sqlite(self.path, error) from None
        try:
            return dict(connection.execute("SELECT name, count FROM counts"))
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):  # an empty database: the live bot would create the table
                return {}
            raise StateError.from_sqlite(self.path, error) from None
        except sqlite3.Error as error:
            raise StateError.from_sqlite(self.path, error) from None
        finally:
            connection.close()

    def increment(self, name: str) -> int:
        """Add one to ``name``'s count, in memory only; returns the new count. Raises as ``open()``."""
        counts = self.open().counts
        assert counts is not None
        counts[name] = counts.get(name, 0) + 1
        return counts[name]

    def close(self) -> None:
        """Nothing to close: the file is read and closed in ``open()``."""

    def __enter__(self) -> ConsoleCounts:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
