"""Part 1, throughput: N chat lines as fast as the client reads them, then ``!version``; lines/s."""

from __future__ import annotations

import contextlib
import random
import statistics
import sys
import threading
import time

from bench.chat import ChatStream, encode, make_user, privmsg
from bench.clients import CHANNEL, Session
from bench.server import BenchError


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
    """Lines per second for one client: from the first byte sent to the reply's arrival."""
    with Session(kind, cwd) as session:
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
    """Alternate vbot and bare for ``rounds`` rounds; lines/s of each and the per-round ratios."""
    progress(f"throughput: generating {lines:,} lines from {users:,} chatters")
    data = encode(ChatStream(CHANNEL, users).lines(lines) + [version_request(CHANNEL)])
    rates: dict[str, list[float]] = {"vbot": [], "bare": []}
    ratios = []
    for number in range(1, rounds + 1):
        for kind in ("vbot", "bare"):
            rates[kind].append(one_run(kind, data, lines, cwd, timeout))
        ratios.append(rates["vbot"][-1] / rates["bare"][-1])
        progress(f"throughput round {number}/{rounds}: vbot {rates['vbot'][-1]:,.0f} lines/s, "
                 f"bare {rates['bare'][-1]:,.0f} lines/s, ratio {ratios[-1]:.3f}")
    return {
        "lines": lines, "users": users, "rounds": rounds, "bytes": len(data),
        "vbot": statistics.median(rates["vbot"]), "bare": statistics.median(rates["bare"]),
        "ratio": statistics.median(ratios), "ratios": ratios,
    }
