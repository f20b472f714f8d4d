"""Part 2, reply latency: background chat at a fixed rate, a command from a new chatter every
``interval`` seconds, and the time from sending each command to receiving its reply.

The command goes through vbot's whole production path (``python -m vbot``: connection, dispatch,
outbox). Its reply differs every time, so the duplicate rule never holds it back, and the bench
server's USERSTATE makes the bot a moderator (100 messages per 30 s), so the rate limit does
not either while no 30 s hold more than 100 commands; each rate gets a fresh bot process.

The command is ``!bench <n>``, a custom command (``vbot/custom.py``) without cooldowns whose
reply is ``reply``: ``pong {args}`` echoes n and touches no disk; ``pong {count}`` also writes
the count to the state file. Should custom commands be missing, it is ``!count_viewers`` from a
new moderator (moderators skip cooldowns) who JOINs just before, with no PARTs in the
background, so that every count is new.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
import time
from pathlib import Path

from bench.chat import ChatStream, join, make_user, privmsg
from bench.clients import CHANNEL, Session
from bench.server import BenchError

COMMANDS_FILE = '[bench]\nreply = "{reply}"\ncooldown = 0\nuser_cooldown = 0\n'
MAX_COMMANDS_PER_30S = 100
"""Twitch's limit for a moderator, which the outbox enforces."""


def has_custom_commands() -> bool:
    return importlib.util.find_spec("vbot.custom") is not None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Commands:
    """The k-th command line (and the JOIN that goes before it, if any)."""

    def __init__(self, custom: bool, seed: int = 7):
        self.custom = custom
        self.rng = random.Random(seed)

    def user(self, number: int):
        return make_user(random.Random(number), 20_000_000 + number, role=None if self.custom else "moderator")

    def before(self, number: int) -> list[str]:
        return [] if self.custom else [join(self.user(number).login, CHANNEL)]

    def line(self, number: int) -> str:
        text = f"!bench {number}" if self.custom else "!count_viewers"
        return privmsg(self.rng, self.user(number), CHANNEL, text, "", 1_800_000_000_000 + number)


def is_reply(line: str) -> bool:
    """A reply to the timed command (``pong ...`` or ``Viewer count: ...``), nothing else the bot says."""
    return line.startswith((f"PRIVMSG {CHANNEL} :pong ", f"PRIVMSG {CHANNEL} :Viewer count: "))


def one_load(rate: int, commands: int, interval: float, cwd: str, users: int, reply: str = "pong {args}") -> dict:
    """Latencies (seconds) of ``commands`` commands under ``rate`` background lines per second."""
    custom = has_custom_commands()
    settings = {}
    if custom:
        path = Path(cwd) / "bench-commands.toml"
        path.write_text(COMMANDS_FILE.replace("{reply}", reply))
        settings["VBOT_COMMANDS_FILE"] = str(path)
    needed = int(rate * interval * (commands + 2)) + 1
    background = ChatStream(CHANNEL, users, seed=rate).lines(needed)
    if not custom:
        background = [line for line in background if " PART " not in line]
    encoded = [(line + "\r\n").encode() for line in background]
    command = Commands(custom)
    with Session("vbot", cwd, **settings) as session:
        peer = session.peer
        try:
            peer.ping_round_trip("ready")
            sent_at = []
            sent = 0
            peer.send_lines(command.before(0))
            start = time.perf_counter()
            next_command = start + interval
            deadline = start + interval * (commands + 2) + 30
            while len(sent_at) < commands and time.perf_counter() < deadline:
                now = time.perf_counter()
                due = min(int((now - start) * rate), len(encoded))
                if due > sent:
                    peer.send(b"".join(encoded[sent:due]))
                    sent = due
                if now >= next_command:
                    sent_at.append(peer.send(command.line(len(sent_at))))
                    next_command += interval
                    if len(sent_at) < commands:
                        peer.send_lines(command.before(len(sent_at)))
                time.sleep(max(0.0, min(0.001, next_command - time.perf_counter())))
            replies = []
            reply_deadline = time.monotonic() + 10
            while len(replies) < len(sent_at) and time.monotonic() < reply_deadline:
                try:
                    replies.append(peer.wait_for(is_reply, max(reply_deadline - time.monotonic(), 0.01))[0])
                except BenchError:
                    break
        except BenchError as error:
            raise BenchError(session.failure(error)) from None
    latencies = [reply - sent for sent, reply in zip(sent_at, replies, strict=False)]
    if not latencies:
        raise BenchError(f"latency at {rate:,} lines/s: no reply to any of {len(sent_at)} commands")
    return {
        "rate": rate, "commands": len(sent_at), "replies": len(replies), "lost": len(sent_at) - len(replies),
        "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "max": max(latencies),
        "command": "`!bench <n>` (a custom command)" if custom else "`!count_viewers` (a moderator)",
        "reply": reply if custom else "Viewer count: <n>", "interval": interval,
    }


def run(rates: tuple[int, ...] = (1000, 10000), commands: int = 100, interval: float = 0.1, cwd: str = ".",
        users: int = 5000, reply: str = "pong {args}",
        progress=lambda text: print(text, file=sys.stderr, flush=True)) -> list[dict]:
    """One fresh vbot process per background rate."""
    if min(commands, 30 / interval) > MAX_COMMANDS_PER_30S:
        progress(f"latency: warning: more than {MAX_COMMANDS_PER_30S} commands in 30 s exceed a moderator's "
                 "send limit; the outbox will hold replies back")
    results = []
    for rate in rates:
        result = one_load(rate, commands, interval, cwd, users, reply)
        progress(f"latency at {rate:,} lines/s: p50 {result['p50'] * 1e3:.2f} ms, p99 {result['p99'] * 1e3:.2f} ms, "
                 f"max {result['max'] * 1e3:.2f} ms, {result['replies']}/{result['commands']} replies")
        results.append(result)
    return results
