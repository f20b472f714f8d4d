"""Reconnect backoff: first retry within 2 s, doubling to a 60 s cap, reset on welcome, per bot.

The ``irc`` library's own ExponentialBackoff waits at least 60 s, never resets its
attempt counter and is one object shared by every bot (a default argument); these
tests pin down that vbot's Backoff does none of that. The random factor is injected.
"""

from __future__ import annotations

import irc.bot
import pytest

from tests.support import make_config
from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.dispatch import Dispatcher
from vbot.session import Backoff


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next_delay() for _ in range(count)]


def test_first_retry_within_two_seconds_whatever_the_jitter():
    assert Backoff(rng=lambda: 0.0).next_delay() == pytest.approx(1.0)
    assert Backoff(rng=lambda: 0.999999).next_delay() < 2.0


def test_delays_double_up_to_a_sixty_second_cap():
    top = Backoff(rng=lambda: 0.999999)
    assert delays(top, 8) == pytest.approx([2, 4, 8, 16, 32, 60, 60, 60], rel=1e-5)
    bottom = Backoff(rng=lambda: 0.0)
    assert delays(bottom, 8) == pytest.approx([1, 2, 4, 8, 16, 30, 30, 30])


def test_jitter_comes_from_the_injected_rng():
    values = iter([0.0, 0.5, 0.999999])
    backoff = Backoff(rng=lambda: next(values))
    assert delays(backoff, 3) == pytest.approx([1.0, 4 * 0.75, 8 * 0.9999995], rel=1e-6)


def test_the_cap_holds_after_many_attempts():
    backoff = Backoff(rng=lambda: 0.999999)
    assert max(delays(backoff, 1000)) <= 60


def test_reset_starts_over():
    backoff = Backoff(rng=lambda: 0.5)
    first = delays(backoff, 5)
    backoff.reset()
    assert delays(backoff, 5) == first


def test_custom_first_and_cap():
    backoff = Backoff(first=0.2, cap=1.0, rng=lambda: 0.999999)
    assert delays(backoff, 4) == pytest.approx([0.2, 0.4, 0.8, 1.0], rel=1e-5)


def test_each_instance_has_its_own_state():
    one, two = Backoff(rng=lambda: 0.0), Backoff(rng=lambda: 0.0)
    delays(one, 5)
    assert two.next_delay() == pytest.approx(1.0)


def test_each_bot_gets_its_own_backoff_not_the_library_default():
    def bot() -> VBot:
        return VBot(make_config(6667), Dispatcher(builtin_table()))

    first, second = bot(), bot()
    assert isinstance(first.session.backoff, Backoff)
    assert first.session.backoff is not second.session.backoff
    assert not isinstance(first.session.backoff, irc.bot.ExponentialBackoff)
    first.session.backoff.next_delay()
    assert second.session.backoff.attempt == 0
