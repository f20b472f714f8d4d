"""``python -m bench``: run every part of vbot's benchmark and print one table (Markdown).

Progress goes to stderr, the table to stdout. Exit code 0 when every part ran (whether or not
a target is met), 1 when a part could not run, 2 for bad options.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile

import irc

from bench import burst, latency, memory, startup, throughput
from bench.server import BenchError

PARTS = ("throughput", "latency", "memory", "startup", "burst")
QUICK = dict(lines=3000, users=200, rounds=1, commands=5, interval=0.05, viewers=2000, starts=2, chatters="300",
             burst_rounds=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, a few seconds in all (for the test); figures mean nothing")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    group = parser.add_argument_group("throughput")
    group.add_argument("--lines", type=int, default=200_000, help="chat lines per run (default 200,000)")
    group.add_argument("--users", type=int, default=5000, help="distinct chatters (default 5,000)")
    group.add_argument("--rounds", type=int, default=5, help="rounds of vbot then bare (default 5)")
    group = parser.add_argument_group("latency")
    group.add_argument("--rates", default="1000,10000", help="background lines/s, comma-separated (default 1000,10000)")
    group.add_argument("--commands", type=int, default=100, help="commands per rate (default 100)")
    group.add_argument("--interval", type=float, default=0.1, help="seconds between commands (default 0.1)")
    group.add_argument("--count-rate", type=int, default=1000,
                       help="also time a {count} reply (SQLite) at this rate; 0 skips it (default 1000)")
    group = parser.add_argument_group("memory")
    group.add_argument("--viewers", type=int, default=100_000, help="distinct viewers tracked (default 100,000)")
    group = parser.add_argument_group("start-up")
    group.add_argument("--starts", type=int, default=10, help="launches of each client (default 10)")
    group = parser.add_argument_group("burst")
    group.add_argument("--chatters", default="10000,50000",
                       help="distinct chatters per burst, comma-separated (default 10000,50000)")
    group.add_argument("--burst-rounds", type=int, default=3, help="rounds per size, each a fresh bot (default 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for any one wait (default 300)")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == parser.get_default(name):
                setattr(args, name, value)
    try:
        args.rates = tuple(int(rate) for rate in args.rates.split(","))
    except ValueError:
        parser.error("--rates must be comma-separated integers, e.g. 1000,10000")
    try:
        args.chatters = tuple(int(size) for size in args.chatters.split(","))
    except ValueError:
        parser.error("--chatters must be comma-separated integers, e.g. 10000,50000")
    sizes = [args.lines, args.users, args.rounds, args.commands, args.viewers, args.starts, *args.rates,
             *args.chatters, args.burst_rounds]
    if min(sizes) < 1 or args.interval <= 0 or args.count_rate < 0 or args.viewers < 2:
        parser.error("sizes must be positive (--viewers at least 2)")
    args.only = tuple(args.only or PARTS)
    return args


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
            f"irc {irc._get_version()}, {platform.system()} {platform.release()}")


def met(value: float, limit: float) -> str:
    return "yes" if value <= limit else "**no**"


def table(results: dict) -> str:
    """The results as one Markdown table, then a note per part on how it was measured."""
    rows, notes = [], []
    if "throughput" in results:
        result = results["throughput"]
        rounds = f"{result['rounds']} round" + "s" * (result["rounds"] != 1)
        rows.append(("throughput", f"lines/s, median of {rounds}", f"{result['vbot']:,.0f}", f"{result['bare']:,.0f}",
                     "", ""))
        rows.append(("throughput", "ratio vbot/bare, median of the rounds' ratios", f"{result['ratio']:.3f}", "",
                     "≥ 2.0", "yes" if result["ratio"] >= 2.0 else "**no**"))
        rows.append(("throughput", f"filters on: lines/s, median of {rounds}", f"{result['filters']:,.0f}",
                     f"{result['bare']:,.0f}", "", ""))
        rows.append(("throughput", "filters on: ratio vbot/bare, median of the rounds' ratios",
                     f"{result['filters_ratio']:.3f}", "", "≥ 1.5",
                     "yes" if result["filters_ratio"] >= 1.5 else "**no**"))
        notes.append(f"throughput: {result['lines']:,} lines ({result['bytes'] / 2**20:.0f} MiB; 92% PRIVMSG with "
                     f"Twitch tags from {result['users']:,} chatters, 8% JOIN/PART) sent as fast as the client "
                     "reads, then `!version`; from the first byte to the reply. vbot is `python -m vbot`, bare is "
                     "`bench/bare.py` (a SimpleIRCClient that only answers `!version`), alternating. "
                     "Filters on: vbot with all seven spam filters of docs/filters.md on, issue 16's settings "
                     "(bench/throughput.py FILTERS); the bench's server is not Twitch, so they check every line "
                     "and only log.")
    for result in results.get("latency", ()):
        limit = 0.002 if result["rate"] <= 1000 else 0.001
        rows.append(("latency", f"ms p50 / p99 / max at {result['rate']:,} lines/s, reply `{result['reply']}`",
                     f"{result['p50'] * 1e3:.2f} / {result['p99'] * 1e3:.2f} / {result['max'] * 1e3:.2f}", "",
                     f"p99 ≤ {limit * 1e3:g}" if result["target"] else "",
                     met(result["p99"], limit) if result["target"] else ""))
    if "latency" in results:
        loads = results["latency"]
        notes.append(f"latency: `python -m vbot` under background chat; every {loads[0]['interval'] * 1e3:g} ms a new "
                     f"chatter sends {loads[0]['command']}; from sending it to the reply's arrival; replies received, "
                     "row by row: " + ", ".join(f"{load['replies']}/{load['commands']}" for load in loads) + ". "
                     "`{count}` writes the count to SQLite (vbot/state.py) before replying.")
    if "memory" in results:
        result = results["memory"]
        vbot, bare = result["vbot"], result.get("bare", {})
        rows.append(("memory", f"bytes per tracked viewer, {result['viewers']:,} viewers", f"{vbot['per_viewer']:.0f}",
                     "", "≤ 112", met(vbot["per_viewer"], 112)))
        for name in ("join", "part"):
            rows.append(("memory", f"µs per {name.upper()}", f"{vbot[name] * 1e6:.1f}",
                         f"{bare[name] * 1e6:.1f}" if bare else "", "≤ 30", met(vbot[name] * 1e6, 30)))
        notes.append(f"memory: VmRSS of `python -m vbot` after {result['viewers']:,} viewers (half in NAMES, half "
                     "in JOIN lines; `!count_viewers` confirms them) minus VmRSS in the empty channel. JOIN and PART: "
                     f"on the running process, {result['joins']:,} lines in one batch followed by PING, time to the "
                     "PONG minus the median PING round trip, per line: reading and parsing included. "
                     "The bare client parses the same lines but tracks no one.")
    if "startup" in results:
        result = results["startup"]
        rows.append(("start-up", f"ms from launch to JOIN, median of {result['runs']}", f"{result['vbot'] * 1e3:.0f}",
                     f"{result['bare'] * 1e3:.0f}", "≤ 300", met(result["vbot"] * 1e3, 300)))
        rows.append(("start-up", "ratio vbot/bare, median of the launches' ratios", f"{result['ratio']:.2f}", "",
                     "≤ 1.15", met(result["ratio"], 1.15)))
        notes.append("start-up: from `Popen` to the JOIN's arrival, vbot and bare launched in turn, after one "
                     "launch of each that is not timed: both run from bytecode compiled on that first launch "
                     "(as after an install), kept in the bench's temporary folder.")
    for result in results.get("burst", ()):
        rows.append(("burst", f"µs per line, `!enter` / unknown command, {result['chatters']:,} chatters",
                     f"{result['command'] * 1e6:.1f} / {result['unknown'] * 1e6:.1f}", "", "", ""))
        rows.append(("burst", f"ratio `!enter` / unknown command, {result['chatters']:,} chatters",
                     f"{result['ratio']:.2f}", "", "≤ 3", met(result["ratio"], 3)))
    if "burst" in results:
        loads = results["burst"]
        notes.append("burst: on a running `python -m vbot`, N chatters never seen before each send `!enter` (a "
                     "custom command with `cooldown = 0` and the default 10 s per-chatter cooldown) in one batch "
                     "followed by PING; the same for an unknown command; time to the PONG minus the median PING "
                     f"round trip, per line, median of {loads[0]['rounds']} round(s), each on a fresh process.")
    lines = ["| part | measure | vbot | bare irc | target | met |", "|---|---|---:|---:|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="vbot-bench-") as cwd:
        try:
            if "throughput" in args.only:
                results["throughput"] = throughput.run(args.lines, args.users, args.rounds, cwd, args.timeout)
            if "latency" in args.only:
                loads = latency.run(args.rates, args.commands, args.interval, cwd, args.users, "pong {args}")
                for load in loads:
                    load["target"] = True
                if args.count_rate and latency.has_custom_commands():
                    extra = latency.run((args.count_rate,), args.commands, args.interval, cwd, args.users,
                                        "pong {count}")
                    loads += [dict(load, target=False) for load in extra]
                results["latency"] = loads
            if "memory" in args.only:
                results["memory"] = memory.run(args.viewers, cwd, args.timeout)
            if "startup" in args.only:
                results["startup"] = startup.run(args.starts, cwd)
            if "burst" in args.only:
                results["burst"] = burst.run(args.chatters, args.burst_rounds, cwd, args.timeout)
        except BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
    print(f"vbot benchmark on {machine()}")
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
