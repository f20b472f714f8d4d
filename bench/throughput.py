"""Part 1, throughput: N chat lines as fast as the client reads them, then ``!version``; lines/s.

Three clients in turn each round: vbot, vbot with every spam filter on (FILTERS, the defaults of
issue 16; the bench's server is not Twitch, so the filters check every line and only log), and
the bare library client.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.chat import ChatStream, encode, make_user, privmsg
from bench.clients import CHANNEL, Session
from bench.server import BenchError

FILTERS = """
[filters]
exempt = ["vip"]
[filters.links]
allow = ["twitch.tv", "clips.twitch.tv"]
[filters.caps]
[filters.symbols]
[filters.repeat]
[filters.emotes]
[filters.length]
[filters.terms]
block = ["badword", "free followers*"]
"""
"""Every filter on, with the settings issue 16 shows: its defaults (PhantomBot's) elsewhere."""
KINDS = ("vbot", "filters", "bare")


def version_request(channel: str) -> str:
    """``!version`` from the channel's broadcaster (badges=broadcaster/1): no cooldown applies."""
    broadcaster = make_user(random.Random(1), 0, role="broadcaster")
    return privmsg(random.Random(2), broadcaster, channel, "!version", "", 1_800_000_000_000)


def is_version_reply(line: str) -> bool:
    return line.startswith(f"PRIVMSG {CHANNEL} :Version: ")


def send_quietly(peer, data: bytes) -> None:
    with contextlib.suppress(BenchError):
        peer.send(data)


def one_run(kind: str, data: bytes, lines: int, cwd: str, timeout: float) -> float:
    """Lines per second for one client (``vbot``, ``filters`` or ``bare``): from the first byte sent
    to the reply's arrival."""
    settings = {}
    if kind == "filters":
        path = Path(cwd) / "bench-filters.toml"
        path.write_text(FILTERS)
        settings["VBOT_COMMANDS_FILE"] = str(path)
    with Session("bare" if kind == "bare" else "vbot", cwd, **settings) as session:
        peer = session.peer
        try:
            peer.ping_round_trip("ready")  # the client has handled its JOIN and is idle
            # sendall blocks while the client is behind: send from a thread, read the reply here.
            # If the client dies, the send fails quietly and wait_for reports the closed connection.
            sender = threading.Thread(target=send_quietly, args=(peer, data), daemon=True)
            started = time.perf_counter()
            sender.start()
            arrived, _ = peer.wait_for(is_version_reply, timeout)
            sender.join(timeout)
        except BenchError as error:
            raise BenchError(session.failure(error)) from None
    return lines / (arrived - started)


def run(lines: int = 200_000, users: int = 5000, rounds: int = 5, cwd: str = ".", timeout: float = 300.0,
        progress=lambda text: print(text, file=sys.stderr, flush=True)) -> dict:
    """Alternate vbot, vbot with filters and bare for ``rounds`` rounds; lines/s of each and the
    per-round ratios to bare."""
    progress(f"throughput: generating {lines:,} lines from {users:,} chatters")
    data = encode(ChatStream(CHANNEL, users).lines(lines) + [version_request(CHANNEL)])
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    ratios: dict[str, list[float]] = {"vbot": [], "filters": []}
    for number in range(1, rounds + 1):
        for kind in KINDS:
            rates[kind].append(one_run(kind, data, lines, cwd, timeout))
        for kind in ratios:
            ratios[kind].append(rates[kind][-1] / rates["bare"][-1])
        progress(f"throughput round {number}/{rounds}: vbot {rates['vbot'][-1]:,.0f} lines/s, "
                 f"filters on {rates['filters'][-1]:,.0f}, bare {rates['bare'][-1]:,.0f}, "
                 f"ratios {ratios['vbot'][-1]:.3f} and {ratios['filters'][-1]:.3f}")
    return {
        "lines": lines, "users": users, "rounds": rounds, "bytes": len(data),
        **{kind: statistics.median(rates[kind]) for kind in KINDS},
        "ratio": statistics.median(ratios["vbot"]), "filters_ratio": statistics.median(ratios["filters"]),
        "ratios": ratios["vbot"], "filters_ratios": ratios["filters"],
    }
