"""What to do about a message that broke a filter: exemptions, escalation, forget_after,
!permit, warnings, log mode, reload, bounded memory. Time is a FakeClock; nothing sleeps."""

from __future__ import annotations

import logging
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import BotHarness, FakeClock, run_vbot
from vbot.chat import ChatMessage, Role
from vbot.chatline import LazyTags, parse_tags
from vbot.commands import builtin_table
from vbot.custom import Reloader, load_file
from vbot.dispatch import Cooldowns, Dispatcher
from vbot.filters import Caps, Emotes, FilterSettings, Length, Links, Penalty, Repeat, Symbols, Terms
from vbot.moderation import WARN_INTERVAL, Action, Moderation
from vbot.state import CountStore

FILTERS = FilterSettings(filters=(Links(allow=("twitch.tv",)), Terms(("badword",)), Caps()))
LINK, SHOUT, CALM = "look at example.com/x", "THIS IS A VERY LOUD MESSAGE FOR ALL", "hello there"
TAGS = {"id": "885196de-cb67-427a-baa8-82f9b0fcd05f", "user-id": "1337", "display-name": "Alice"}


def moderation(settings: FilterSettings | None = FILTERS, **changes) -> tuple[Moderation, FakeClock]:
    clock = FakeClock()
    if settings is not None and changes:
        settings = FilterSettings(**{**vars(settings), **changes})
    return Moderation(settings, clock, owners=["owner"]), clock


def chat(text: str, login: str = "alice", role: Role = Role.EVERYONE, channel: str = "#test", **tags) -> ChatMessage:
    return ChatMessage(channel, login, text, role, login.capitalize(), {**TAGS, **tags})


def penalties(mod: Moderation, *texts: str, login: str = "alice") -> list[str | None]:
    """The penalty of each message in turn, or None when nothing is done."""
    actions = [mod.check(chat(text, login)) for text in texts]
    return [None if action is None else str(action.penalty) for action in actions]


# --- the action -------------------------------------------------------------------------------------


def test_a_broken_filter_gives_an_action_naming_everything_the_api_needs():
    mod, _ = moderation()
    action = mod.check(chat(LINK))
    assert action == Action(
        channel="#test", login="alice", user_id="1337", message_id="885196de-cb67-427a-baa8-82f9b0fcd05f",
        filter="links", penalty=Penalty(), offence=1, reason="spam filter: links (offence 1)", log_only=False,
        warning="@Alice, please ask a moderator before posting links (message deleted)",
    )
    assert action.describe() == "delete alice's message (links)"


def test_a_clean_message_gives_nothing():
    mod, _ = moderation()
    assert mod.check(chat(CALM)) is None and len(mod) == 0


def test_the_first_filter_broken_names_the_offence():
    mod, _ = moderation()
    assert mod.check(chat("BADWORD AT EXAMPLE.COM NOW FOR EVERYONE")).filter == "links"
    assert mod.check(chat("BADWORD BADWORD BADWORD BADWORD", login="bob")).filter == "terms"


def test_without_filters_nothing_is_checked():
    for nothing in (None, FilterSettings()):
        mod, _ = moderation(nothing)
        assert mod.check(chat(LINK)) is None


def test_messages_without_tags_still_give_an_action():
    mod, _ = moderation()
    action = mod.check(ChatMessage("#test", "alice", LINK))
    assert (action.user_id, action.message_id) == ("", "")


# --- escalation and forget_after ----------------------------------------------------------------------


def test_penalties_escalate_by_offence_and_stay_at_the_last():
    mod, _ = moderation()
    assert penalties(mod, LINK, SHOUT, "badword", LINK, LINK) == [
        "delete", "timeout 10", "timeout 600", "timeout 600", "timeout 600"]
    assert [mod.check(chat(LINK)).offence for _ in range(2)] == [6, 7]


def test_offences_are_counted_per_chatter_and_per_channel():
    mod, _ = moderation()
    assert penalties(mod, LINK, LINK) == ["delete", "timeout 10"]
    assert penalties(mod, LINK, login="bob") == ["delete"]
    assert str(mod.check(chat(LINK, channel="#other")).penalty) == "delete"


def test_offences_are_forgotten_forget_after_seconds_after_the_last():
    mod, clock = moderation(forget_after=3600)
    assert penalties(mod, LINK) == ["delete"]
    clock.advance(3599.9)
    assert penalties(mod, LINK) == ["timeout 10"]  # the count runs from the last offence
    clock.advance(3599.9)
    assert penalties(mod, LINK) == ["timeout 600"]
    clock.advance(3600)
    assert penalties(mod, LINK) == ["delete"]


def test_one_penalty_for_every_offence():
    mod, _ = moderation(penalties=(Penalty(30),))
    assert penalties(mod, LINK, LINK, LINK) == ["timeout 30"] * 3


# --- exemptions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("exempt, role, acted_on", [
    (Role.MODERATOR, Role.BROADCASTER, False),
    (Role.MODERATOR, Role.MODERATOR, False),
    (Role.MODERATOR, Role.VIP, True),
    (Role.MODERATOR, Role.SUBSCRIBER, True),
    (Role.MODERATOR, Role.EVERYONE, True),
    (Role.VIP, Role.VIP, False),
    (Role.VIP, Role.SUBSCRIBER, True),
    (Role.SUBSCRIBER, Role.VIP, False),  # a VIP who subscribes has the role vip: exempt with subscribers
    (Role.SUBSCRIBER, Role.SUBSCRIBER, False),
    (Role.SUBSCRIBER, Role.EVERYONE, True),
])
def test_exemptions(exempt, role, acted_on):
    mod, _ = moderation(exempt=exempt)
    assert (mod.check(chat(LINK, role=role)) is not None) is acted_on


def test_owners_are_exempt_everywhere():
    mod, _ = moderation()
    assert mod.check(chat(LINK, login="owner")) is None


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=st.text(max_size=400), role=st.sampled_from([Role.MODERATOR, Role.BROADCASTER, Role.VIP]),
       exempt=st.sampled_from([Role.SUBSCRIBER, Role.VIP, Role.MODERATOR]), emotes=st.text(max_size=40))
def test_no_message_from_an_exempt_role_is_ever_acted_on(text, role, exempt, emotes):
    mod, _ = moderation(filters=FILTERS.filters, exempt=exempt)
    if role >= exempt:
        assert mod.check(chat(text, role=role, emotes=emotes)) is None


# --- !permit --------------------------------------------------------------------------------------------


def test_a_permit_lets_links_through_for_permit_seconds():
    mod, clock = moderation()
    assert mod.permit("#test", "alice") == 60
    assert penalties(mod, LINK, LINK) == [None, None]
    assert penalties(mod, LINK, login="bob") == ["delete"]  # only alice
    assert mod.check(chat(LINK, channel="#other")) is not None  # only in that channel
    assert penalties(mod, SHOUT) == ["delete"]  # only links
    clock.advance(59.9)
    assert penalties(mod, LINK) == [None]
    clock.advance(0.1)
    assert penalties(mod, LINK) == ["timeout 10"]


def test_a_permit_is_refused_without_a_links_filter():
    mod, _ = moderation(filters=(Caps(),))
    assert mod.permit("#test", "alice") is None
    assert moderation(None)[0].permit("#test", "alice") is None


def permit_command(mod: Moderation, args: str, role: Role = Role.MODERATOR) -> str | None:
    dispatcher = Dispatcher(builtin_table(), moderation=mod)
    return dispatcher.handle(chat(f"!permit {args}", login="mod", role=role), None)


@pytest.mark.parametrize("args, reply", [
    ("alice", "alice may post links for the next 60 s."),
    ("@Alice", "alice may post links for the next 60 s."),
    ("", "Usage: !permit <login>"),
    ("alice bob", "Usage: !permit <login>"),
    ("not-a-login", "Usage: !permit <login>"),
])
def test_the_permit_command(args, reply):
    mod, _ = moderation()
    assert permit_command(mod, args) == reply
    assert (mod.check(chat(LINK)) is None) is reply.startswith("alice may")


def test_the_permit_command_is_for_moderators_and_up():
    mod, _ = moderation()
    assert permit_command(mod, "alice", role=Role.VIP) is None
    assert mod.check(chat(LINK)) is not None


def test_the_permit_command_without_a_links_filter():
    assert permit_command(moderation(filters=(Caps(),))[0], "alice") == "Links are not filtered here: no permit needed."
    assert permit_command(Moderation(), "alice") == "Links are not filtered here: no permit needed."


# --- warnings and log mode -----------------------------------------------------------------------------


def test_one_warning_per_30_seconds_per_channel():
    mod, clock = moderation()
    assert mod.check(chat(LINK)).warning is not None
    assert mod.check(chat(SHOUT, login="bob")).warning is None
    assert mod.check(chat(LINK, channel="#other")).warning == (
        "@Alice, please ask a moderator before posting links (message deleted)")
    clock.advance(WARN_INTERVAL - 0.1)
    assert mod.check(chat(LINK, login="carol")).warning is None
    clock.advance(0.1)
    assert mod.check(chat(SHOUT, login="dave")).warning == "@Dave, too many capitals (message deleted)"
    clock.advance(WARN_INTERVAL)
    assert mod.check(chat("badword")).warning == "@Alice, that word is not allowed here (10 s timeout)"


def test_no_warning_when_warn_is_false():
    mod, _ = moderation(warn=False)
    assert mod.check(chat(LINK)).warning is None


def test_log_mode_only_describes():
    mod, _ = moderation(mode="log")
    first, second = mod.check(chat(LINK)), mod.check(chat(LINK))
    assert first.log_only and second.log_only
    assert first.describe() == "would delete alice's message (links)"
    assert second.describe() == "would time out alice for 10 s (links)"  # offences count as they would


def test_log_only_overrides_act_mode():
    mod, _ = moderation(mode="act")
    assert not mod.check(chat(LINK)).log_only
    mod.log_only = True
    assert mod.check(chat(LINK)).log_only


def test_a_decision_logs_nothing_the_enforcer_or_the_console_reports_it_once(caplog):
    mod, _ = moderation(mode="log")
    with caplog.at_level(logging.DEBUG, logger="vbot.moderation"):
        assert mod.check(chat(LINK)) is not None
    assert caplog.messages == []


def test_a_channel_that_only_logs_counts_its_would_be_offences_and_warnings_apart():
    mod, _ = moderation()
    mod.may_act = lambda channel: channel != "#test"  # as the enforcer says: the bot is no moderator in #test
    tried = [mod.check(chat(LINK)) for _ in range(3)]
    assert [(action.log_only, action.offence) for action in tried] == [(True, 1), (True, 2), (True, 3)]
    assert tried[0].warning is not None and tried[1].warning is None  # they escalate among themselves
    assert mod.check(chat(LINK, channel="#other")).warning is not None
    mod.may_act = lambda channel: True  # the bot was made a moderator
    action = mod.check(chat(LINK))
    assert (action.log_only, action.offence, str(action.penalty)) == (False, 1, "delete")
    assert action.warning == "@Alice, please ask a moderator before posting links (message deleted)"
    assert str(mod.check(chat(LINK)).penalty) == "timeout 10"


# --- memory --------------------------------------------------------------------------------------------


def test_a_flood_of_distinct_chatters_is_forgotten_once_expired():
    mod, clock = moderation(forget_after=60)
    for number in range(5000):
        mod.check(chat(LINK, login=f"spammer{number}"))
        mod.permit("#test", f"friend{number}")
        clock.advance(0.1)  # 5,000 in 500 s: each forgotten after 60 s
    assert len(mod) <= 2 * 601


def test_memory_is_bounded_even_within_forget_after():
    clock = FakeClock()
    mod = Moderation(FILTERS, clock, max_entries=100)
    for number in range(1000):
        mod.check(chat(LINK, login=f"spammer{number}"))
        mod.permit("#test", f"friend{number}")
    assert len(mod) == 200
    assert str(mod.check(chat(LINK, login="spammer999")).penalty) == "timeout 10"  # the newest are kept
    assert str(mod.check(chat(LINK, login="spammer0")).penalty) == "delete"  # the oldest went first


def test_a_repeat_offender_is_not_forgotten_early():
    clock = FakeClock()
    mod = Moderation(FILTERS, clock, max_entries=3)
    for _ in range(10):
        mod.check(chat(LINK))  # one chatter, ten offences: one entry
    assert len(mod) == 1 and mod.check(chat(LINK)).offence == 11


# --- reload ---------------------------------------------------------------------------------------------


def reloadable(tmp_path, text: str):
    path = tmp_path / "commands.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    store = CountStore(tmp_path / "state.sqlite3")
    builtins = builtin_table()
    loaded = load_file(path, True, builtins, store)
    mod = Moderation(loaded.filters, FakeClock())
    dispatcher = Dispatcher(loaded.table(builtins), moderation=mod)
    return path, dispatcher, Reloader(dispatcher, builtins, path, True, store, interval=0)


def test_reload_installs_new_filters_and_keeps_the_offences(tmp_path):
    path, dispatcher, reload = reloadable(tmp_path, "[filters.links]\n")
    mod = dispatcher.moderation
    assert penalties(mod, LINK, SHOUT) == ["delete", None]
    path.write_text("[hi]\nreply = \"hi\"\n[filters.links]\n[filters.caps]\n")
    assert reload() == "Reloaded 1 custom command and filters: links, caps."
    assert penalties(mod, SHOUT) == ["timeout 10"]
    path.write_text('[filters]\nmode = "log"\n[filters.caps]\n[timers.t]\nmessage = "m"\ninterval = 60\n')
    assert reload() == "Reloaded 0 custom commands, 1 timer and filters: caps (log mode)."
    assert mod.check(chat(SHOUT)).log_only
    path.write_text("")
    assert reload() == "Reloaded 0 custom commands and filters: none."
    assert mod.settings is None and mod.check(chat(SHOUT)) is None


def test_trying_the_filters_in_log_mode_never_counts_once_they_act(tmp_path):
    path, dispatcher, reload = reloadable(tmp_path, '[filters]\nmode = "log"\n[filters.links]\n')
    mod = dispatcher.moderation
    tried = [mod.check(chat(LINK)), mod.check(chat(SHOUT + " at example.com"))]
    assert [action.describe() for action in tried] == [
        "would delete alice's message (links)", "would time out alice for 10 s (links)"]
    assert tried[0].warning is not None
    path.write_text("[filters.links]\n")  # mode = "act", the default
    reload()
    action = mod.check(chat(LINK))
    assert (action.log_only, action.offence, str(action.penalty)) == (False, 1, "delete")
    assert action.warning == "@Alice, please ask a moderator before posting links (message deleted)"


@pytest.mark.parametrize("broken", [
    "[filters.links]\npermit_seconds = 0\n",  # the filters are wrong
    '[filters.links]\n[hi]\nrole = "vip"\n',  # a command is wrong
])
def test_a_broken_file_on_reload_keeps_the_old_filters_running(tmp_path, broken, caplog):
    path, dispatcher, reload = reloadable(tmp_path, '[filters.terms]\nblock = ["badword"]\n')
    old = dispatcher.moderation.settings
    path.write_text(broken)
    with caplog.at_level(logging.WARNING, logger="vbot.custom"):
        assert reload().startswith("Reload failed, kept the old commands: commands.toml: [")
    assert dispatcher.moderation.settings is old
    assert dispatcher.moderation.check(chat("badword")) is not None
    assert "keeping the old commands, timers and filters" in caplog.text


def test_a_permit_does_not_survive_turning_the_links_filter_off(tmp_path):
    path, dispatcher, reload = reloadable(tmp_path, "[filters.links]\n")
    dispatcher.moderation.permit("#test", "alice")
    path.write_text("[filters.caps]\n")
    reload()
    path.write_text("[filters.links]\n")
    reload()
    assert dispatcher.moderation.check(chat(LINK)) is not None


# --- every chat line reaches the filters, CTCP-framed ones too -----------------------------------------


@pytest.mark.parametrize("text", [
    "visit evil.com now",
    "\x01ACTION visit evil.com now\x01",
    "\x01VERSION visit evil.com now\x01",  # the library made these ctcp events, which vbot ignores
    "\x01X\x01 visit evil.com now",
    "\x01VERSION\x01visit evil.com now",
    "\x01ACTION visit evil.com now",
    "\x01ACTION visit evil.com now\x01\x01",
    "\x01FREE FOLLOWERS AT EVIL.COM BUY NOW NOW NOW\x01",
])
@pytest.mark.parametrize("spacing", [" ", "  "], ids=["fast-path", "library"])  # "  ": left to the library
def test_every_chat_line_reaches_the_filters_ctcp_framed_or_not(caplog, text, spacing):
    """Trial: CTCP framing other than a plain ACTION hid a message from the filters."""
    clock = FakeClock()
    moderation = Moderation(FilterSettings(filters=(Links(),), mode="log"), clock)
    harness = BotHarness(dispatcher=Dispatcher(builtin_table(), "!", (), Cooldowns(clock), moderation), clock=clock)
    harness.welcome()
    with caplog.at_level(logging.INFO, logger="vbot.enforcer"):
        harness.feed(f":mallory!mallory@mallory.tmi.twitch.tv PRIVMSG #test{spacing}:{text}")
    assert "#test: would delete mallory's message (links), offence 1" in caplog.messages


@pytest.mark.parametrize("text", ["!version\x01X\x01", "\x01VERSION\x01!version", "!version \x01ACTION hi\x01"])
def test_a_ctcp_framed_line_never_runs_a_command(text):
    harness = BotHarness().welcome()
    harness.say("mallory", text)
    harness.say("mallory", "\x01ACTION !version\x01")  # a /me line never did
    assert harness.replies() == []
    harness.say("alice", "!version")
    assert len(harness.replies()) == 1


# --- the console: the filters in log mode -------------------------------------------------------------

CONSOLE_FILE = """\
[filters.links]
allow = ["twitch.tv"]
[filters.caps]
[filters.terms]
block = ["badword"]
[hi]
reply = "hi {user}"
"""


def test_the_console_says_what_would_be_done_and_runs_no_command_for_a_broken_filter(tmp_path):
    (tmp_path / "commands.toml").write_text(CONSOLE_FILE)
    lines = ("!hi example.com\n/as alice\n!hi example.com\nTHIS IS A VERY LOUD MESSAGE FOR ALL\n!hi badword\n"
             "twitch.tv/x\n!hi\n/as mod moderator\n!permit alice\n/as alice\ncheck example.com\n")
    result = run_vbot({}, "--console", input=lines, cwd=tmp_path, timeout=20)  # INFO, the default
    assert result.returncode == 0, result.stderr
    assert result.stdout == "vbot: hi console\nvbot: hi alice\nvbot: alice may post links for the next 60 s.\n"
    notes = [line for line in result.stderr.splitlines() if line.startswith("* would")]
    assert len([line for line in result.stderr.splitlines() if "would" in line]) == len(notes)  # each once
    assert notes == [
        "* would delete alice's message (links)",
        "* would reply: @alice, please ask a moderator before posting links (message deleted)",
        "* would time out alice for 10 s (caps)",
        "* would time out alice for 600 s (terms)",
    ]


# --- the text first, the sender only for a line that breaks a filter (issue 19) -------------------------

EVERY_FILTER = FilterSettings(
    filters=(Links(allow=("twitch.tv",)), Terms(("badword", "free follower*")), Emotes(2), Caps(70, 8), Symbols(50, 8),
             Repeat(4), Length(60)),
    exempt=Role.VIP,
)
SAID = st.one_of(
    st.sampled_from([LINK, SHOUT, CALM, "twitch.tv/x", "badword", "Free Followers here", "aaaaaa", "!!!!!!!!!!",
                     "x" * 70, "Kappa Kappa Kappa", "LUL LUL LUL LUL", "!permit bob", "é" * 9, "?!?!?!?! ok",
                     "hello there " * 6]),
    st.text(st.sampled_from("aA!. éÉ😂\u200bbx"), max_size=80),
)
TAG_TEXTS = st.sampled_from(["", "emotes=", "emotes=25:0-4", "emotes=25:0-4,6-10,12-16", "emotes=25:0-4/1:6-8/2:9-9",
                             "id=m1;user-id=1;emotes=25:0-4,6-10,12-16;display-name=Bob", r"emotes=25:0-4\s,6-10;x=\:"])
SAY = st.tuples(st.just("say"), SAID, st.sampled_from(list(Role)), st.sampled_from(["alice", "bob", "owner"]),
                st.sampled_from(["#test", "#other"]), TAG_TEXTS, st.booleans())
STEPS = st.lists(st.one_of(SAY, SAY, SAY, SAY, st.tuples(st.just("permit"), st.sampled_from(["alice", "bob"])),
                           st.tuples(st.just("wait"), st.sampled_from([1.0, 30.0, 61.0, 3600.0]))),
                 min_size=5, max_size=40)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(steps=STEPS)
def test_asking_check_only_for_a_text_that_breaks_a_filter_decides_as_check_alone(steps):
    """The driver asks ``check`` only about a chat line whose text breaks a filter (``breaks_a_filter``,
    before the sender's role is known). For any message, role, tags, permits and time, that decides
    what ``check`` alone decides about every line: the same actions, offences and warnings."""
    clock = FakeClock()
    alone, first = (Moderation(EVERY_FILTER, clock, owners=["owner"]) for _ in range(2))
    for step in steps:
        if step[0] == "wait":
            clock.advance(step[1])
        elif step[0] == "permit":
            assert alone.permit("#test", step[1]) == first.permit("#test", step[1])
        else:
            _, text, role, login, channel, tag_text, unparsed = step
            tags = LazyTags(tag_text) if unparsed else parse_tags(tag_text)
            message = ChatMessage(channel, login, text, role, login.capitalize(), tags)
            expected = alone.check(message)
            assert (first.check(message) if first.breaks_a_filter(text, tags) else None) == expected, step
            assert len(first) == len(alone)
