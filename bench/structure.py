"""``python -m bench.structure``: how big the bot class is, and how many times one reconnect crosses modules.

Two figures of issue 17 ("a thin bot class"), measured the same way on any revision:

* ``VBot``: the lines of the class statement, first to last (docstrings, comments and
  blank lines included), and its methods (``ast``).
* One reconnect, traced: a ``tests.support.BotHarness`` (fake clock, a socketpair, no
  threads) is logged in and in #test; then the server drops it, the backoff passes, the
  bot connects, is welcomed and joins again. ``sys.setprofile`` sees every Python call of
  that span; a call whose caller and callee are in different modules of vbot, or between
  vbot and the ``irc`` library (``irc``, ``jaraco``), is a crossing; the standard library
  and the tests are not counted. Printed: the calls that cross, those with the library,
  and the distinct caller -> callee function pairs among them (the shape of the path,
  which does not grow with the number of lines handled). ``-v`` lists them.
"""

from __future__ import annotations

import ast
import collections
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_of(filename: str) -> str | None:
    """``vbot.<module>`` for vbot's files, ``library`` for irc's and jaraco's, None for the rest."""
    path = Path(filename)
    if path.suffix == ".py" and path.parent == ROOT / "vbot":
        return "vbot." + path.stem
    parts = path.parts
    if "site-packages" in parts and parts[parts.index("site-packages") + 1 :][:1] in (("irc",), ("jaraco",)):
        return "library"
    return None


def class_size(path: Path, name: str) -> tuple[int, int]:
    """``(lines, methods)`` of class ``name`` in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == name:
            methods = [item for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)]
            return (node.end_lineno or node.lineno) - node.lineno + 1, len(methods)
    raise LookupError(name)


def trace_reconnect() -> tuple[collections.Counter[tuple[str, str]], set[tuple[str, str]]]:
    """The crossings of one reconnect: calls per (caller module, callee module), and the distinct
    ``module:function`` pairs."""
    from tests.support import BotHarness
    from vbot.session import Backoff

    harness = BotHarness(reconnect=Backoff(first=2.0, rng=lambda: 0.5)).welcome()
    harness.sent()
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    pairs: set[tuple[str, str]] = set()

    def profile(frame, event, arg) -> None:
        if event != "call" or frame.f_back is None:
            return
        callee, caller = module_of(frame.f_code.co_filename), module_of(frame.f_back.f_code.co_filename)
        if callee and caller and callee != caller:
            calls[(caller, callee)] += 1
            pairs.add((f"{caller}:{frame.f_back.f_code.co_name}", f"{callee}:{frame.f_code.co_name}"))

    sys.setprofile(profile)
    try:
        harness.drop()
        harness.advance(60)
        harness.welcome()
    finally:
        sys.setprofile(None)
    if harness.connects != 2 or "JOIN #test" not in harness.sent():
        raise RuntimeError("the traced reconnect did not happen")
    return calls, pairs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.disable(logging.WARNING)  # the drop's WARNING is expected
    lines, methods = class_size(ROOT / "vbot" / "bot.py", "VBot")
    calls, pairs = trace_reconnect()
    with_library = sum(count for (caller, callee), count in calls.items() if "library" in (caller, callee))
    pairs_with_library = sum(1 for pair in pairs if any(end.startswith("library:") for end in pair))
    print(f"VBot: {lines} lines, {methods} methods")
    print(f"one reconnect: {sum(calls.values())} calls cross modules, {with_library} of them with the library; "
          f"{len(pairs)} distinct caller -> callee pairs, {pairs_with_library} with the library")
    if "-v" in argv:
        for (caller, callee), count in calls.most_common():
            print(f"  {count:4d}  {caller} -> {callee}")
        for pair in sorted(pairs):
            print("   ", " -> ".join(pair))
    return 0


if __name__ == "__main__":
    sys.exit(main())
