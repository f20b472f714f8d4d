"""The benchmark (``python -m bench``) runs end to end at tiny sizes; speed is never asserted here."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(150)
def test_quick_benchmark_prints_the_table():
    done = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=140)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    assert "| part | measure | vbot | bare irc | target | met |" in table
    for heading in ("| throughput | lines/s", "| throughput | ratio vbot/bare",
                    "| throughput | filters on: lines/s", "| throughput | filters on: ratio vbot/bare",
                    "| latency | ms p50 / p99 / max at 1,000 lines/s",
                    "| latency | ms p50 / p99 / max at 10,000 lines/s",
                    "| memory | bytes per tracked viewer", "| memory | µs per JOIN", "| memory | µs per PART",
                    "| start-up | ms from launch to JOIN", "| start-up | ratio vbot/bare",
                    "| burst | ratio `!enter` / unknown command"):
        assert heading in table, table


def test_the_background_chat_holds_no_command_of_vbot():
    """Its other bots' commands must stay unanswered, or replies to them would count as the timed ones."""
    from bench.chat import OTHER_COMMANDS
    from vbot.commands import builtin_table

    names = {name for entry in builtin_table() for name in (entry.name, *entry.aliases)}
    assert not {command.removeprefix("!") for command in OTHER_COMMANDS} & names
