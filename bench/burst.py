"""Part 5, a burst of chatters: N distinct chatters each send one command at once (a giveaway's
``!enter``), against the same burst of a command vbot does not know.

``!enter`` is a custom command with ``cooldown = 0`` and the default per-chatter cooldown (10 s),
so every message starts a new per-chatter cooldown; the unknown command is looked up and
ignored. Each burst is sent in one batch followed by ``PING``; the time is from the first byte to
the PONG, minus the PING round trip alone (median of 5): reading, parsing, dispatch and the
outbox included. The chatters are plain viewers (no badges), so the cooldowns apply, and every
burst uses chatters never seen before. The figure is the ratio of the two times.
"""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path

from bench.chat import ROOM_ID, User, privmsg
from bench.clients import CHANNEL, Session
from bench.latency import has_custom_commands
from bench.memory import batch_time
from bench.server import BenchError

COMMANDS_FILE = '[enter]\nreply = "{user} is in!"\ncooldown = 0\n'
"""A giveaway entry: no channel cooldown, the default per-chatter cooldown."""


def viewer(number: int) -> User:
    """A chatter without badges (cooldowns apply) and a login no other burst uses."""
    login = f"entrant_{number}"
    head = f"badge-info=;badges=;color=;display-name=Entrant_{number};emotes="
    tail = (f"mod=0;returning-chatter=0;room-id={ROOM_ID};subscriber=0;tmi-sent-ts={{ts}};turbo=0;"
            f"user-id={300_000_000 + number};user-type=")
    return User(login, head, tail)


def burst(text: str, first: int, chatters: int, seed: int) -> list[str]:
    """``chatters`` lines of ``text``, one per new chatter numbered from ``first``."""
    rng = random.Random(seed)
    return [privmsg(rng, viewer(first + number), CHANNEL, text, "", 1_800_000_000_000 + number)
            for number in range(chatters)]


def run(sizes: tuple[int, ...] = (10_000, 50_000), rounds: int = 3, cwd: str = ".", timeout: float = 300.0,
        progress=lambda text: print(text, file=sys.stderr, flush=True)) -> list[dict]:
    """For each size N: µs per line of the command burst and of the unknown-command burst, and their ratio
    (median of ``rounds`` rounds, each on a fresh ``python -m vbot``)."""
    if not has_custom_commands():
        raise BenchError("burst: needs custom commands (vbot/custom.py)")
    path = Path(cwd) / "burst-commands.toml"
    path.write_text(COMMANDS_FILE)
    results = []
    for size in sizes:
        command_times, unknown_times, ratios = [], [], []
        for number in range(rounds):
            first = 1_000_000 * (number + 1)
            unknown = burst("!nothere", first, size, seed=number)
            entries = burst("!enter", first + size, size, seed=number)
            with Session("vbot", cwd, VBOT_COMMANDS_FILE=str(path)) as session:
                peer = session.peer
                try:
                    round_trip = statistics.median(peer.ping_round_trip(f"rtt{n}") for n in range(5))
                    unknown_time = max(batch_time(peer, unknown, "unknown", timeout) - round_trip, 0.0)
                    command_time = max(batch_time(peer, entries, "entries", timeout) - round_trip, 0.0)
                    if not any(line.startswith(f"PRIVMSG {CHANNEL} :Entrant_") for line in peer.received):
                        raise BenchError("no reply to !enter: the custom command did not run")
                except BenchError as error:
                    raise BenchError(session.failure(error)) from None
            command_times.append(command_time / size)
            unknown_times.append(unknown_time / size)
            ratios.append(command_time / max(unknown_time, 1e-9))
        result = {"chatters": size, "rounds": rounds, "command": statistics.median(command_times),
                  "unknown": statistics.median(unknown_times), "ratio": statistics.median(ratios)}
        progress(f"burst of {size:,} chatters: !enter {result['command'] * 1e6:.1f} µs per line, unknown command "
                 f"{result['unknown'] * 1e6:.1f} µs per line, ratio {result['ratio']:.2f}")
        results.append(result)
    return results
