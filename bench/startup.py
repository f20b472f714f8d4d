"""Part 4, start-up: from launching the process to the server receiving its JOIN."""

from __future__ import annotations

import statistics
import sys

from bench.clients import Session


def run(runs: int = 10, cwd: str = ".", kinds: tuple[str, ...] = ("vbot", "bare"),
        progress=lambda text: print(text, file=sys.stderr, flush=True)) -> dict:
    """Median seconds from ``Popen`` to JOIN over ``runs`` launches of each kind, alternating,
    after one launch of each that is not timed (it compiles the bytecode, as a first run after
    an install does); ``ratio`` is the median of the launches' ratios, first kind over second."""
    for kind in kinds:
        with Session(kind, cwd):
            pass
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(runs):
        for kind in kinds:
            with Session(kind, cwd) as session:
                times[kind].append(session.joined_at - session.client.started)
    result = {"runs": runs, **{kind: statistics.median(values) for kind, values in times.items()}}
    if len(kinds) == 2:
        result["ratio"] = statistics.median(a / b for a, b in zip(*times.values(), strict=True))
    progress("start-up: " + ", ".join(f"{kind} {result[kind] * 1e3:.0f} ms" for kind in kinds))
    return result
