"""The spam filters' actions carried out (vbot/enforcer.py) on fake clocks, against the scripted Helix
(tests/fake_helix.py) with the real token keeper and ``vbot.helix.Calls``: the exact calls (path,
query, body), who may act where, the rate-limit bucket, 429, 409, 403, the bounded queue.
Calls run at once (``run_now``) or are held (``HeldJobs``) as a slow Helix; nothing sleeps."""

from __future__ import annotations

import contextlib
import logging

import pytest

from tests.fake_auth import CHAT_SCOPES
from tests.fake_helix import BANS_SCOPE, DELETE_SCOPE, FakeHelix
from tests.support import FakeClock
from tests.test_auth import HeldJobs, file_tokens, run_now, service_for
from vbot.chat import ChatMessage, Role
from vbot.enforcer import MODERATION_SCOPES, Enforcer
from vbot.filters import Caps, FilterSettings, Links, Penalty, Terms
from vbot.helix import MIN_WAIT, Calls, HelixClient
from vbot.keeper import TokenKeeper
from vbot.moderation import Action, Moderation

EPOCH = 1_800_000_000.0
FILTERS = FilterSettings(filters=(Links(), Terms(("badword",)), Caps()))
LINK = "look at example.com/x"
BROADCASTER, BOT, ALICE = "1001", "12345678", "2002"
DELETE = "DELETE /moderation/chat?broadcaster_id=1001&moderator_id=12345678&message_id="
BAN = "POST /moderation/bans?broadcaster_id=1001&moderator_id=12345678"
ALL_SCOPES = (*CHAT_SCOPES, *MODERATION_SCOPES)


class World:
    """The enforcer of #test (broadcaster test, 1001) for the bot vbot (12345678), its moderator,
    with a token holding ``scopes``; the scripted Helix; fake monotonic and wall clocks."""

    def __init__(self, fake, tmp_path, helixes: contextlib.ExitStack, scopes=ALL_SCOPES, submit=run_now,
                 settings=FILTERS, max_waiting=100, **helix_options):
        self.clock, self.wall = FakeClock(), FakeClock(EPOCH)
        tokens, path = file_tokens(fake, tmp_path, self.clock, scopes=scopes)
        self.keeper = TokenKeeper(service_for(fake), tokens, path, clock=self.clock, submit=run_now)
        self.helix = helixes.enter_context(FakeHelix(
            accept=fake.is_valid, scopes_of=lambda token: fake.access_tokens[token].scopes, clock=self.wall,
            **helix_options))
        for login, user_id in [("test", BROADCASTER), ("other", "1002"), ("alice", ALICE), ("vbot", BOT)]:
            self.helix.add_user(login, user_id)
        self.helix.make_moderator("test", BOT)
        self.calls = Calls(HelixClient(self.helix.url, deadline=2), self.keeper, lanes=("facts", "moderation"),
                           clock=self.clock, wall_clock=self.wall, submit=submit)
        self.moderation = Moderation(settings, self.clock)
        self.enforcer = Enforcer(self.calls, self.moderation, max_waiting=max_waiting, clock=self.clock)
        self.enforcer.note_room("#test", BROADCASTER)
        self.enforcer.note_bot_role("#test", True)
        self.messages = 0
        self.said: list[tuple[str, str]] = []  # the warnings the enforcer posted, as (channel, text)

    def say(self, text: str, login: str = "alice", user_id: str = ALICE, channel: str = "#test",
            **tags: str) -> Action | None:
        """``login`` says ``text``: the message checked by the enforcer as the bot does; the action decided."""
        self.messages += 1
        tags = {"id": f"msg-{self.messages}", "user-id": user_id, "display-name": login.capitalize(), **tags}
        message = ChatMessage(channel, login, text, Role.EVERYONE, login.capitalize(), tags)
        return self.enforcer.check(message, lambda channel, text: self.said.append((channel, text)))

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on both clocks, then one tick."""
        self.clock.advance(seconds)
        self.wall.advance(seconds)
        self.enforcer.tick()

    def calls_made(self) -> list[tuple[str, object]]:
        return self.helix.moderation_calls()


def delete(number: int) -> tuple[str, None]:
    """The Delete Chat Messages call for the ``number``-th message said."""
    return f"{DELETE}msg-{number}", None


def ban(seconds: int, offence: int, filter: str = "links", user_id: str = ALICE) -> tuple[str, dict]:
    """The Ban User call timing ``user_id`` out for ``seconds``."""
    reason = f"spam filter: {filter} (offence {offence})"
    return BAN, {"data": {"user_id": user_id, "duration": seconds, "reason": reason}}


@pytest.fixture
def world(fake, tmp_path):
    """``world(**options)`` makes a World; its Helix stops after the test."""
    with contextlib.ExitStack() as helixes:
        yield lambda **options: World(fake, tmp_path, helixes, **options)


@pytest.fixture(autouse=True)
def info_logged(caplog):
    caplog.set_level(logging.INFO)


def warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


# --- the calls -----------------------------------------------------------------------------------------


def test_delete_then_timeouts_are_the_exact_calls_twitch_documents(world, caplog):
    w = world()
    w.say(LINK)
    w.say("BADWORD here")
    w.say("THIS IS A VERY LOUD MESSAGE FOR ALL")
    for _ in range(3):  # each tick collects one call and starts the next
        w.advance(0)
    assert w.calls_made() == [delete(1), ban(10, 2, "terms"), ban(600, 3, "caps")]
    assert w.helix.answered == [204, 200, 200] and w.enforcer.waiting == 0
    assert warnings(caplog) == []


def test_a_log_only_action_calls_nothing(world):
    w = world(settings=FilterSettings(filters=(Links(),), mode="log"))
    action = w.say(LINK)
    w.advance(1)
    assert action is not None and action.log_only and w.helix.requests == []


def test_an_action_goes_at_once_and_the_next_waits_for_the_tick(world):
    w = world(submit=HeldJobs())
    w.say(LINK)
    w.say(LINK)
    assert w.enforcer.waiting == 2 and w.calls.may_start("facts") and not w.calls.may_start("moderation")


@pytest.mark.parametrize("tags, what", [({"id": ""}, "id"), ({"id": "a b&message_id="}, "id")])
def test_a_delete_without_a_message_id_is_never_sent_it_would_clear_the_chat(world, caplog, tags, what):
    w = world()
    assert w.say(LINK, **tags) is not None
    w.advance(1)
    assert w.helix.requests == []
    assert warnings(caplog) == [f"#test: cannot delete alice's message (links): the message has no {what} tag"]


def test_a_timeout_without_a_user_id_is_not_sent(world, caplog):
    w = world(settings=FilterSettings(filters=(Links(),), penalties=(Penalty(10),)))
    w.say(LINK, user_id="")
    w.advance(1)
    assert w.helix.requests == []
    assert warnings(caplog) == ["#test: cannot time out alice for 10 s (links): the message has no user-id tag"]


# --- who may act where -----------------------------------------------------------------------------------


def test_not_a_moderator_logs_only_with_one_warning_then_acts_once_modded(world, caplog):
    w = world()
    w.enforcer.note_bot_role("#test", False)  # USERSTATE without mod=1: warns at once
    actions = [w.say(LINK), w.say(LINK)]
    w.advance(1)
    assert all(action.log_only for action in actions) and w.helix.requests == []
    assert warnings(caplog) == [
        "spam filters in #test only log, as in log mode: the bot is not a moderator there: the broadcaster types "
        "/mod vbot in that chat"]
    assert "#test: would delete alice's message (links), offence 1" in caplog.text
    w.enforcer.note_bot_role("#test", True)
    assert "spam filters in #test act from now on" in caplog.text
    action = w.say(LINK)
    assert not action.log_only and action.offence == 1  # the would-be offences never count for real
    assert action.warning is not None  # nor did their warning use up the real one
    w.advance(0)
    assert w.calls_made() == [delete(3)]
    assert w.said == [("#test", "@Alice, please ask a moderator before posting links (message deleted)")]


@pytest.mark.parametrize("scopes, missing", [
    (CHAT_SCOPES, "the moderator:manage:banned_users and moderator:manage:chat_messages scopes"),
    ((*CHAT_SCOPES, DELETE_SCOPE), "the moderator:manage:banned_users scope"),
    ((*CHAT_SCOPES, BANS_SCOPE), "the moderator:manage:chat_messages scope"),
])
def test_a_missing_scope_logs_only_with_one_warning_and_calls_nothing(world, caplog, scopes, missing):
    w = world(scopes=scopes)
    for _ in range(3):
        assert w.say(LINK).log_only
    w.advance(1)
    assert w.helix.requests == []
    assert warnings(caplog) == [f'spam filters in #test only log, as in log mode: the token lacks {missing}: '
                                'run "vbot login" again, which asks for the filters\' scopes']


def test_the_broadcasters_own_account_acts_without_the_moderator_badge(world):
    w = world()
    w.enforcer.note_room("#test", BOT)  # the bot logs in as the broadcaster
    w.enforcer.note_bot_role("#test", False)
    assert not w.say(LINK).log_only


def test_without_roomstate_the_broadcaster_is_unknown_and_nothing_is_called(world, caplog):
    w = world()
    w.enforcer.note_room("#other", "not digits")
    w.enforcer.note_bot_role("#other", True)
    assert w.say(LINK, channel="#other").log_only
    assert warnings(caplog)[-1].endswith("the broadcaster's user ID is not known (Twitch sent no ROOMSTATE)")


def test_without_twitchs_api_every_channel_only_logs(caplog):
    moderation = Moderation(FILTERS, FakeClock())
    enforcer = Enforcer(None, moderation)
    enforcer.note_bot_role("#test", True)
    action = moderation.check(ChatMessage("#test", "alice", LINK, tags={"id": "x"}))
    enforcer.submit(action)
    enforcer.tick()
    assert action.log_only and enforcer.waiting == 0
    assert warnings(caplog) == ["spam filters in #test only log, as in log mode: acting needs Twitch's API, which "
                                "vbot uses on Twitch chat with a token (README: Getting a token)"]


def test_the_warning_waits_for_both_userstate_and_roomstate(world, caplog):
    w = world()
    w.enforcer.note_bot_role("#other", True)  # Twitch sends USERSTATE, then ROOMSTATE
    w.enforcer.note_room("#other", "1002")
    assert warnings(caplog) == []
    w.enforcer.note_bot_role("#other", False)  # the USERSTATE after the bot's next message: no longer one
    assert warnings(caplog) == ["spam filters in #other only log, as in log mode: the bot is not a moderator there: "
                                "the broadcaster types /mod vbot in that chat"]


def test_the_warning_comes_at_once_only_when_filters_are_meant_to_act(world, caplog):
    w = world(settings=FilterSettings(filters=(Links(),), mode="log"))
    w.enforcer.note_bot_role("#test", False)
    w.moderation.set_filters(None)
    w.enforcer.note_bot_role("#test", False)
    assert warnings(caplog) == []
    w.moderation.set_filters(FILTERS)  # a reload turns them on: the next USERSTATE or action says so
    w.enforcer.note_bot_role("#test", False)
    w.enforcer.note_bot_role("#test", False)
    assert len(warnings(caplog)) == 1


# --- Twitch's answers ----------------------------------------------------------------------------------


def test_429_makes_the_actions_wait_for_the_reset_then_go_in_order(world, caplog):
    w = world()
    w.helix.fail("/moderation/chat", "429")  # the bucket is said to be empty for a second
    w.say(LINK)
    w.say("BADWORD", login="bob", user_id="2003")
    w.say(LINK, login="carol", user_id="2004")
    w.advance(0)  # the 429 is collected: nothing may start before the reset
    w.advance(0)
    assert [line for line, _ in w.calls_made()] == [delete(1)[0]]
    w.advance(MIN_WAIT)
    w.advance(0)
    w.advance(0)
    assert w.calls_made() == [delete(1), delete(1), delete(2), delete(3)]
    assert w.helix.answered == [429, 204, 204, 204]
    assert warnings(caplog) == ["Twitch's API rate limit reached (DELETE /moderation/chat: HTTP 429: Too Many "
                                "Requests); no call for 1 s"]


def test_an_empty_bucket_holds_the_actions_until_its_reset_in_order(world):
    w = world(points=2, window=30)
    for number in range(4):
        w.say(LINK, login=f"user{number}", user_id=f"300{number}")
    for _ in range(4):
        w.advance(0)
    assert w.calls_made() == [delete(1), delete(2)]  # the second answer said: none left until the reset
    w.advance(29)
    assert len(w.calls_made()) == 2
    w.advance(1)
    w.advance(0)
    assert w.calls_made() == [delete(1), delete(2), delete(3), delete(4)]
    assert 429 not in w.helix.answered


def test_409_another_ban_under_way_is_not_an_error(world, caplog):
    w = world(settings=FilterSettings(filters=(Links(),), penalties=(Penalty(10),)))
    w.helix.fail("/moderation/bans", "409")
    w.say(LINK)
    w.say(LINK, login="bob", user_id="2003")
    w.advance(0)
    w.advance(0)
    assert w.helix.answered == [409, 200] and len(w.calls_made()) == 2
    assert warnings(caplog) == []


def test_403_the_bot_was_unmodded_turns_the_channel_to_log_mode(world, caplog):
    held = HeldJobs()
    w = world(submit=held)
    w.helix.moderators.clear()  # Twitch no longer counts the bot as a moderator; IRC did not say yet
    w.say(LINK)
    w.say(LINK, login="bob", user_id="2003")
    for _ in range(2):
        held.run()
        w.advance(0)
    assert w.helix.answered == [403] and w.enforcer.waiting == 0  # bob's delete, queued, was not tried
    assert warnings(caplog) == [
        "spam filters in #test only log, as in log mode: the bot is not a moderator there: the broadcaster types "
        "/mod vbot in that chat"]
    assert w.say(LINK, login="carol", user_id="2004").log_only


def test_a_refusal_warns_once_per_status_until_a_call_succeeds(world, caplog):
    w = world(settings=FilterSettings(filters=(Links(),), penalties=(Penalty(10),)))
    w.helix.add_user("gone", "4004")
    w.helix.fail("/moderation/bans", "500")
    w.say(LINK)  # an outage: Calls says so
    w.advance(0)
    w.helix.channels.pop(BROADCASTER)  # the fake now answers 400
    for login in ("bob", "carol"):
        w.say(LINK, login=login, user_id="2003")
        w.advance(0)
    assert w.helix.answered == [500, 400, 400]
    assert warnings(caplog) == [
        "Twitch's API is not answering (POST /moderation/bans: HTTP 500: Internal Server Error)",
        "#test: Twitch's API refused to time out bob for 10 s (links): POST /moderation/bans: HTTP 400: Missing "
        "required parameter \"broadcaster_id\""]


# --- the bounded queue ---------------------------------------------------------------------------------------


def test_a_full_queue_drops_the_oldest_with_one_warning_then_says_how_many(world, caplog):
    held = HeldJobs()
    w = world(submit=held, max_waiting=3)
    for number in range(1, 8):  # the first goes at once; 6 wait for 3 places
        w.say(LINK, login=f"user{number}", user_id=f"300{number}")
    assert w.enforcer.waiting == 4
    assert warnings(caplog) == [
        "3 moderation actions wait for Twitch's API: dropping the oldest, delete user2's message (links) in #test"]
    for _ in range(4):
        held.run()
        w.advance(0)
    assert w.calls_made() == [delete(1), delete(5), delete(6), delete(7)]
    assert "the moderation queue has room again; 3 actions were dropped in all" in caplog.text
    assert len(warnings(caplog)) == 1


def test_every_call_is_delete_with_a_message_id_or_a_timeout_never_a_ban(world):
    penalties = (Penalty(), Penalty(1), Penalty(1_209_600))
    w = world(settings=FilterSettings(filters=(Links(),), penalties=penalties, forget_after=10**6))
    for _ in range(5):
        w.say(LINK)
        w.advance(0)
    for line, body in w.calls_made():
        assert (line.startswith(DELETE) and "message_id=msg-" in line and body is None) or (
            line == BAN and 1 <= body["data"]["duration"] <= 1_209_600)
    assert w.helix.answered == [204, 200, 200, 200, 200]


# --- what the driver asks ----------------------------------------------------------------------------------


def test_check_queues_the_action_and_says_the_warning_once_twitch_has_carried_it_out(world):
    held = HeldJobs()
    w = world(submit=held)
    assert w.enforcer.moderation.is_on and w.say("hello") is None
    assert w.say(LINK) is not None  # broke it: no command either
    assert w.said == [] and w.enforcer.waiting == 1  # the call is under way: nothing said yet
    held.run()
    w.advance(0)
    assert w.said == [("#test", "@Alice, please ask a moderator before posting links (message deleted)")]
    w.moderation.set_filters(FilterSettings(filters=(Links(),), mode="log"))
    w.advance(60)  # past the warning's interval
    assert w.say(LINK).warning is not None
    w.advance(0)
    assert len(w.said) == 1 and w.enforcer.waiting == 0  # log mode: never said


@pytest.mark.parametrize("fault", ["500", "400", "403", "hang"])
def test_no_warning_when_the_call_fails_or_has_not_answered(world, fault):
    held = HeldJobs()
    w = world(submit=held)
    if fault == "403":
        w.helix.moderators.clear()
    elif fault == "400":
        w.helix.channels.pop(BROADCASTER)
    elif fault == "500":
        w.helix.fail("/moderation/chat", "500")
    w.say(LINK)
    if fault != "hang":  # a hanging call: its answer never comes
        held.run()
    w.advance(0)
    assert w.said == [] and w.helix.answered == ([] if fault == "hang" else [int(fault)])


def test_each_action_is_one_info_line_and_the_text_only_at_debug(world, caplog):
    w = world(settings=FilterSettings(filters=(Links(),), mode="log"))
    w.say(LINK)
    assert [record.getMessage() for record in caplog.records if record.name == "vbot.enforcer"] == [
        "#test: would delete alice's message (links), offence 1"]
    assert LINK not in caplog.text
    caplog.set_level(logging.DEBUG, logger="vbot.enforcer")
    w.say(LINK)
    assert "#test: would time out alice for 10 s (links), offence 2" in caplog.text and LINK in caplog.text


def test_tick_says_when_to_ask_again(world):
    held = HeldJobs()
    w = world(submit=held, points=1, window=30)
    assert w.enforcer.tick() is None  # idle: only a message brings work
    w.say(LINK)
    w.say(LINK, login="bob", user_id="2003")
    assert w.enforcer.tick() == 0.02  # a call under way
    held.run()
    assert w.enforcer.tick() == pytest.approx(30)  # the bucket is empty until its reset; bob's delete waits
    w.advance(30)
    held.run()
    w.enforcer.tick()
    assert w.enforcer.tick() is None and w.calls_made() == [delete(1), delete(2)]
