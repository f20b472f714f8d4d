"""The bot's health in one line, for ``!botstatus``: a frozen record the host fills in, and its text;
and ``format_duration``, vbot's one way to write a duration for people (``2h 14m``): in chat
(``!botstatus``, ``!uptime``, ``{uptime}``), in the console, in the token keeper's log lines
and in ``vbot login``'s.

The host (the live bot, or the console) keeps the counters; this module only
formats them. Nothing here can carry a secret or a path: the record holds
numbers and one fixed label.
"""

from __future__ import annotations

from typing import NamedTuple


class Health(NamedTuple):
    """What ``!botstatus`` reports; times in seconds.

    ``uptime``: since the process started. ``connected``: how long the current
    connection has been logged in, None when not logged in. ``connection``: a
    label shown instead of ``connected`` and the PING by a transport without
    a connection (the console: ``"console"``). ``reconnects``: logins after
    the first one, since start. ``sent``: chat messages sent; ``dropped``: replies dropped
    because too many were waiting; ``waiting``: replies queued now.
    ``ping_rtt``: the last PING's round trip, None before the first.
    ``token_expires_in``: None when unknown (a token vbot does not refresh).
    """

    uptime: float
    connected: float | None
    reconnects: int
    sent: int
    dropped: int
    waiting: int
    ping_rtt: float | None = None
    token_expires_in: float | None = None
    connection: str | None = None


def format_duration(seconds: float) -> str:
    """A duration in at most two units, rounded down: ``'42s'``, ``'5m 3s'``, ``'2h 5m'``, ``'3d 4h'``.

    Negative durations count as 0.

    >>> [format_duration(s) for s in (0, 59.9, 300, 303, 7500, 7200, 90000)]
    ['0s', '59s', '5m', '5m 3s', '2h 5m', '2h', '1d 1h']
    """
    total = max(int(seconds), 0)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for index, (name, size) in enumerate(units[:-1]):
        if total >= size:
            small_name, small_size = units[index + 1]
            rest = total % size // small_size
            return f"{total // size}{name}" + (f" {rest}{small_name}" if rest else "")
    return f"{total}s"


def format_health(health: Health) -> str:
    """The one-line ``!botstatus`` reply.

    >>> format_health(Health(7500, 3720.5, 3, 120, 2, 0, 0.0451, 273600)).split(" | ")[::3]
    ['Up 2h 5m', 'replies sent 120, dropped 2, waiting 0']
    >>> format_health(Health(7500, 3720.5, 3, 120, 2, 0, 0.0451, 273600)).split(" | ")[-2:]
    ['PING 45 ms', 'token expires in 3d 4h']
    >>> format_health(Health(65, None, 0, 0, 0, 1))
    'Up 1m 5s | not connected | reconnects 0 | replies sent 0, dropped 0, waiting 1 | PING none yet'
    >>> format_health(Health(65, None, 0, 3, 0, 0, connection="console"))
    'Up 1m 5s | connection: console | reconnects 0 | replies sent 3, dropped 0, waiting 0'
    """
    if health.connection is not None:
        connected = f"connection: {health.connection}"
    elif health.connected is None:
        connected = "not connected"
    else:
        connected = f"connected {format_duration(health.connected)}"
    parts = [
        f"Up {format_duration(health.uptime)}",
        connected,
        f"reconnects {health.reconnects}",
        f"replies sent {health.sent}, dropped {health.dropped}, waiting {health.waiting}",
    ]
    if health.connection is None:
        parts.append("PING none yet" if health.ping_rtt is None else f"PING {health.ping_rtt * 1000:.0f} ms")
    if health.token_expires_in is not None:
        expires = health.token_expires_in
        parts.append(f"token expires in {format_duration(expires)}" if expires > 0 else "token expired")
    return " | ".join(parts)
