"""Part 3, memory and scale: RSS per tracked viewer, and the time per JOIN and per PART.

The bot (``python -m vbot``) joins an empty channel; its RSS then is the baseline. Half of the
viewers arrive in NAMES (353) lines, half in JOIN lines; the RSS after that, minus the
baseline, divided by the viewers, is the bytes per viewer, and ``!count_viewers`` must report
them all. The JOIN time is measured on the process as it runs: a batch of JOIN lines followed
by ``PING``, from the first byte sent to the PONG, minus the PING round trip alone (median of
5), divided by the batch size; the same for PARTs of the joined viewers.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

from bench.chat import join, make_user, part, privmsg
from bench.clients import CHANNEL, Session
from bench.server import BenchError

NAMES_LINE_BYTES = 512


def viewer_logins(count: int, seed: int = 11) -> list[str]:
    """``count`` distinct, realistic Twitch logins."""
    rng = random.Random(seed)
    return [make_user(rng, 1_000_000 + number).login for number in range(count)]


def names_lines(nick: str, logins: list[str]) -> list[str]:
    """353 lines of at most 512 bytes listing ``logins``, then 366."""
    lines, names = [], []
    head = f":{nick}.tmi.twitch.tv 353 {nick} = {CHANNEL} :"
    size = len(head) + 2
    for login in logins:
        if names and size + len(login) + 1 > NAMES_LINE_BYTES:
            lines.append(head + " ".join(names))
            names, size = [], len(head) + 2
        names.append(login)
        size += len(login) + 1
    if names:
        lines.append(head + " ".join(names))
    lines.append(f":{nick}.tmi.twitch.tv 366 {nick} {CHANNEL} :End of /NAMES list")
    return lines


def count_request() -> str:
    broadcaster = make_user(random.Random(1), 0, role="broadcaster")
    return privmsg(random.Random(3), broadcaster, CHANNEL, "!count_viewers", "", 1_800_000_000_001)


def batch_time(peer, lines: list[str], token: str, timeout: float) -> float:
    """Seconds from sending ``lines`` + PING to the PONG's arrival."""
    data = "".join(line + "\r\n" for line in lines + [f"PING :{token}"]).encode()
    sent = peer.send(data)
    arrived, _ = peer.wait_for(lambda line: line.startswith("PONG") and line.endswith(token), timeout)
    return arrived - sent


def run(viewers: int = 100_000, cwd: str = ".", timeout: float = 300.0, kinds: tuple[str, ...] = ("vbot", "bare"),
        progress=lambda text: print(text, file=sys.stderr, flush=True)) -> dict:
    """Bytes per viewer for vbot; µs per JOIN and per PART for each of ``kinds``."""
    logins = viewer_logins(viewers)
    named, joining = logins[: viewers // 2], logins[viewers // 2:]
    joins = [join(login, CHANNEL) for login in joining]
    parts = [part(login, CHANNEL) for login in joining]
    result: dict = {"viewers": viewers, "joins": len(joins)}
    for kind in kinds:
        with Session(kind, cwd) as session:
            peer, client = session.peer, session.client
            try:
                round_trip = statistics.median(peer.ping_round_trip(f"rtt{number}") for number in range(5))
                time.sleep(0.2)
                before = client.rss_bytes()
                batch_time(peer, names_lines(peer.nick, named), "names", timeout)
                join_time = batch_time(peer, joins, "joins", timeout)
                time.sleep(0.2)
                after = client.rss_bytes()
                if kind == "vbot":
                    peer.send(count_request())
                    _, reply = peer.wait_for(lambda line: line.startswith(f"PRIVMSG {CHANNEL} :"), timeout)
                    if reply != f"PRIVMSG {CHANNEL} :Viewer count: {viewers}":
                        raise BenchError(f"expected {viewers} viewers tracked, the bot said {reply!r}")
                part_time = batch_time(peer, parts, "parts", timeout)
            except BenchError as error:
                raise BenchError(session.failure(error)) from None
        result[kind] = {
            "round_trip": round_trip,
            "join": max(join_time - round_trip, 0.0) / len(joins),
            "part": max(part_time - round_trip, 0.0) / len(parts),
            "rss_before": before, "rss_after": after, "per_viewer": (after - before) / viewers,
        }
        progress(f"memory {kind}: {result[kind]['per_viewer']:.0f} bytes per viewer "
                 f"(RSS {before / 2**20:.1f} → {after / 2**20:.1f} MiB), JOIN {result[kind]['join'] * 1e6:.1f} µs, "
                 f"PART {result[kind]['part'] * 1e6:.1f} µs")
    return result
