"""Twitch's API client (vbot/helix.py): one call against the scripted Helix on loopback
(tests/fake_helix.py), the rate-limit bucket on fake clocks, and background calls as the
event loop drives them (a 401 renewed once by the real token keeper, one WARNING per outage)."""

from __future__ import annotations

import logging

import pytest

from tests.fake_auth import CLIENT_ID
from tests.fake_helix import FakeHelix
from tests.support import FakeClock
from tests.test_auth import HeldJobs, make_keeper, run_now
from vbot.helix import (
    MAX_WAIT,
    MIN_WAIT,
    RENEW_PAUSE,
    Answer,
    Calls,
    Credentials,
    HelixClient,
    HelixUnavailable,
    Outcome,
    RateLimit,
    Request,
)

STREAMS = Request("GET", "/streams", (("user_id", "1001"),))
EPOCH = 1_800_000_000.0


@pytest.fixture
def helix():
    """The scripted Helix, with a broadcaster ``streamer`` (1001) live to 1,234 viewers."""
    with FakeHelix() as server:
        server.add_user("streamer", "1001")
        server.go_live("streamer", 1234, game="Chess", title="Blitz")
        yield server


def credentials(token: str = "accesstoken0123456789abcdef") -> Credentials:
    return Credentials(CLIENT_ID, token)


# --- one call ------------------------------------------------------------------------------------------


def test_a_call_carries_client_id_and_bearer_and_reads_data_and_limits(helix):
    answer = HelixClient(helix.url).call(STREAMS, credentials())
    assert answer.ok and answer.data[0]["viewer_count"] == 1234 and answer.data[0]["game_name"] == "Chess"
    assert answer.remaining == 799 and answer.reset is not None and answer.reset > 0
    assert helix.requests == ["GET /streams?user_id=1001"]


def test_repeated_parameters_and_followers_total(helix):
    client = HelixClient(helix.url)
    users = client.call(Request("GET", "/users", (("login", "streamer"), ("login", "nobody"))), credentials())
    assert [user["id"] for user in users.data] == ["1001"]
    followers = client.call(Request("GET", "/channels/followers", (("broadcaster_id", "1001"),)), credentials())
    assert followers.total == 0 and followers.data == ()


def test_an_error_gives_twitchs_message_and_never_the_token(helix):
    helix.accept = lambda token: False
    token = "s3cr3ttoken0123456789abcdef"
    answer = HelixClient(helix.url).call(STREAMS, credentials(token))
    assert (answer.status, answer.message, answer.ok) == (401, "Invalid OAuth token", False)
    assert answer.describe(STREAMS) == "GET /streams: HTTP 401: Invalid OAuth token"
    assert token not in repr(answer) and token not in repr(credentials(token))


@pytest.mark.parametrize("fault, reason", [
    ("hang", "GET /streams: no complete answer within 0.5 s"),
    ("bad_json", "GET /streams: HTTP 200: the reply is not Twitch's JSON"),
    ("huge", "GET /streams: the reply is longer than 524288 bytes"),
])
def test_no_usable_answer_is_unavailable_on_one_line(helix, fault, reason):
    helix.hang_for = 5
    helix.fail("/streams", fault)
    with pytest.raises(HelixUnavailable) as caught:
        HelixClient(helix.url, deadline=0.5).call(STREAMS, credentials())
    assert str(caught.value) == reason


def test_a_redirect_is_not_followed(helix):
    helix.fail("/streams", "redirect")
    answer = HelixClient(helix.url).call(STREAMS, credentials())
    assert answer.status == 302 and not answer.ok
    assert helix.requests == ["GET /streams?user_id=1001"]  # the token never went to another URL


def test_a_refused_connection_is_unavailable():
    with FakeHelix() as gone:
        url = gone.url
    with pytest.raises(HelixUnavailable, match=r"^GET /streams: .*refused"):
        HelixClient(url, deadline=1).call(STREAMS, credentials())


# --- the bucket ----------------------------------------------------------------------------------------


@pytest.fixture
def clocks():
    """(monotonic, wall) fake clocks."""
    return FakeClock(), FakeClock(EPOCH)


def test_bucket_empty_means_no_call_before_the_reset(clocks):
    clock, wall = clocks
    bucket = RateLimit(clock, wall)
    assert bucket.wait_time() == 0
    bucket.note(Answer(200, remaining=0, reset=int(EPOCH) + 7))
    assert bucket.wait_time() == 7
    clock.advance(6.5)
    assert bucket.wait_time() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.wait_time() == 0  # refilled


def test_bucket_counts_calls_started_before_the_next_reply(clocks):
    bucket = RateLimit(*clocks)
    bucket.note(Answer(200, remaining=2, reset=int(EPOCH) + 30))
    bucket.started()
    assert bucket.wait_time() == 0
    bucket.started()
    assert bucket.wait_time() == 30  # both points used: the next call waits for the reset


@pytest.mark.parametrize("answer, wait", [
    (Answer(429, remaining=0, reset=int(EPOCH) + 12), 12),
    (Answer(429, retry_after=4), 4),
    (Answer(429), MAX_WAIT),  # no headers: a whole window
    (Answer(429, reset=int(EPOCH) - 300), MIN_WAIT),  # a clock off by minutes: never a burst of 429s
    (Answer(429, reset=int(EPOCH) + 86400), MAX_WAIT),  # nor a day's silence
    (Answer(200, remaining=0, reset=int(EPOCH) + 3600), MAX_WAIT),
])
def test_bucket_waits_after_429_and_bounds_the_wait(clocks, answer, wait):
    bucket = RateLimit(*clocks)
    bucket.note(answer)
    assert bucket.wait_time() == wait


def test_bucket_with_points_left_never_waits(clocks):
    bucket = RateLimit(*clocks)
    bucket.note(Answer(200, remaining=5, reset=int(EPOCH) + 60))
    bucket.note(Answer(404, message="Not Found"))  # no headers: nothing learned
    assert bucket.wait_time() == 0


# --- background calls -------------------------------------------------------------------------------


@pytest.fixture
def wired(fake, tmp_path):
    """(Calls, the token keeper, the scripted Helix accepting the keeper's valid tokens, the fake clock)."""
    keeper, clock = make_keeper(fake, tmp_path, submit=run_now)
    with FakeHelix(accept=fake.is_valid, clock=lambda: EPOCH) as server:
        server.add_user("streamer", "1001")
        calls = Calls(HelixClient(server.url, deadline=1), keeper, clock=clock, wall_clock=lambda: EPOCH,
                      submit=run_now)
        yield calls, keeper, server, clock


def test_a_call_in_the_background_is_collected_on_the_tick(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, submit=run_now)
    held = HeldJobs()
    with FakeHelix(accept=fake.is_valid) as server:
        calls = Calls(HelixClient(server.url), keeper, clock=clock, submit=held)
        assert calls.may_start("facts")
        calls.start("facts", STREAMS)
        assert not calls.may_start("facts") and calls.collect("facts") is None  # still running
        held.run()
        outcome = calls.collect("facts")
        assert outcome is not None and outcome.ok and outcome.problem == ""
        assert calls.may_start("facts")


def test_a_401_renews_the_token_once_and_retries(wired, fake, caplog):
    caplog.set_level(logging.INFO, logger="vbot")
    calls, keeper, server, clock = wired
    refused = keeper.tokens.access_token
    fake.expire(refused)  # e.g. revoked mid-run: Helix answers 401
    calls.start("facts", STREAMS)
    assert calls.collect("facts") is None and not calls.may_start("facts")  # waiting for the renewal
    keeper.tick()  # the keeper renews (its call runs at once here)
    keeper.tick()
    assert keeper.tokens.access_token != refused and fake.count("token:refresh") == 1
    assert calls.collect("facts") is None  # the retry starts, with the new token
    outcome = calls.collect("facts")
    assert outcome is not None and outcome.ok
    assert [answer for answer in server.answered] == [401, 200]
    assert "renewing it" in caplog.text and refused not in caplog.text


def test_a_second_401_fails_the_call_with_one_warning(wired, fake, caplog):
    calls, keeper, server, clock = wired
    server.accept = lambda token: False  # Helix refuses every token
    calls.start("facts", STREAMS)
    assert calls.collect("facts") is None
    keeper.tick()
    keeper.tick()
    assert calls.collect("facts") is None
    outcome = calls.collect("facts")
    assert outcome is not None and not outcome.ok and outcome.problem == "GET /streams: HTTP 401: Invalid OAuth token"
    assert fake.count("token:refresh") == 1 and server.answered == [401, 401]
    calls.start("facts", STREAMS)  # within RENEW_EVERY: no second renewal
    assert calls.collect("facts").problem.endswith("Invalid OAuth token")
    assert fake.count("token:refresh") == 1
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "refused the token" in warnings[0].getMessage()


def test_a_renewed_token_refused_too_pauses_the_renewals_for_an_hour(wired, fake, caplog):
    """Helix refusing every token (a missing scope, Twitch's trouble) made vbot renew once a
    minute forever (q2 of the attack trial): a fresh token refused too means renewing cannot
    help, so a 401 asks for no renewal for RENEW_PAUSE, with one WARNING for it all."""
    caplog.set_level(logging.INFO, logger="vbot")
    calls, keeper, server, clock = wired
    server.accept = lambda token: False

    def call() -> Outcome | None:
        calls.start("facts", STREAMS)
        outcome = calls.collect("facts")
        if outcome is None:  # a renewal was asked for: the keeper renews, the call is retried
            keeper.tick()
            keeper.tick()
            assert calls.collect("facts") is None
            outcome = calls.collect("facts")
        return outcome

    assert call().problem == "GET /streams: HTTP 401: Invalid OAuth token"
    assert fake.count("token:refresh") == 1
    for _ in range(59):  # a call a minute for the next hour: none renews
        clock.advance(RENEW_PAUSE / 60)
        assert call().problem == "GET /streams: HTTP 401: Invalid OAuth token"
    assert fake.count("token:refresh") == 1 and len(server.answered) == 61
    clock.advance(RENEW_PAUSE / 60)
    call()  # an hour later: one more try with a renewed token
    assert fake.count("token:refresh") == 2
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "a freshly renewed one too: no renewal for Twitch's API for 60 min" in warnings[0]


def test_a_401_with_a_pasted_token_is_not_retried(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, submit=run_now, pasted=True)
    keeper.tokens = keeper.tokens.__class__(keeper.tokens.access_token, None, None, client_id=CLIENT_ID)
    with FakeHelix(accept=lambda token: False) as server:
        calls = Calls(HelixClient(server.url), keeper, clock=clock, submit=run_now)
        calls.start("facts", STREAMS)
        outcome = calls.collect("facts")
        assert outcome is not None and outcome.answer is not None and outcome.answer.status == 401
        assert fake.count("token:refresh") == 0


def test_no_credentials_no_call(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, submit=run_now, pasted=True)  # client ID not known yet
    calls = Calls(HelixClient("http://127.0.0.1:9"), keeper, clock=clock, submit=run_now)
    assert calls.credentials() is None and not calls.may_start("facts")


def test_one_warning_per_outage_and_a_line_when_back(wired, caplog):
    caplog.set_level(logging.INFO, logger="vbot")
    calls, keeper, server, clock = wired
    server.fail("/streams", "500", "500", "500")
    for _ in range(3):
        calls.start("facts", STREAMS)
        outcome = calls.collect("facts")
        assert outcome is not None and not outcome.ok and not outcome.retry
    calls.start("facts", STREAMS)
    assert calls.collect("facts").ok
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ["Twitch's API is not answering (GET /streams: HTTP 500: Internal Server Error)"]
    assert "Twitch's API answers again" in caplog.text


def test_429_holds_every_call_until_the_reset(wired, caplog):
    calls, keeper, server, clock = wired
    server.fail("/streams", "429")  # the fake says: bucket empty, reset in a second
    calls.start("facts", STREAMS)
    outcome = calls.collect("facts")
    assert outcome is not None and outcome.retry and not outcome.ok
    assert not calls.may_start("facts") and not calls.may_start("facts")
    clock.advance(MIN_WAIT)
    assert calls.may_start("facts")
    assert "rate limit reached" in caplog.text


def test_lanes_run_independently(wired):
    calls, keeper, server, clock = wired
    held = HeldJobs()
    calls = Calls(calls.client, keeper, lanes=("facts", "moderation"), clock=clock, submit=held)
    calls.start("facts", STREAMS)
    assert not calls.may_start("facts") and calls.may_start("moderation")
    calls.start("moderation", Request("DELETE", "/moderation/chat", (("broadcaster_id", "1001"),)))
    held.run()
    assert calls.collect("moderation") is not None and calls.collect("facts").ok
