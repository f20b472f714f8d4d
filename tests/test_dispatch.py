"""Chat roles, command parsing, the command table and the dispatcher: pure logic, no network."""

from __future__ import annotations

import importlib.metadata
import logging
import random

import pytest
from irc.message import Tag

from tests.support import FakeClock
from vbot import __version__
from vbot.chat import ChatMessage, Role, parse_badges, role_from_tags, split_command, tags_to_dict
from vbot.commands import builtin_table
from vbot.dispatch import DEFAULT_COOLDOWN, DEFAULT_USER_COOLDOWN, Command, CommandTable, Cooldowns, Dispatcher, command
from vbot.facts import NoFacts

# Verbatim from Twitch's "IRC Concepts" docs (copied from ../shared/twitch-irc.md).
LOVINGT3S = ("@badge-info=;badges=broadcaster/1;client-nonce=459e3142897c7a22b7d275178f2259e0;color=#0000FF;"
             "display-name=lovingt3s;emote-only=1;emotes=62835:0-10;first-msg=0;flags=;"
             "id=885196de-cb67-427a-baa8-82f9b0fcd05f;mod=0;room-id=713936733;subscriber=0;"
             "tmi-sent-ts=1643904084794;turbo=0;user-id=713936733;user-type= "
             ":lovingt3s!lovingt3s@lovingt3s.tmi.twitch.tv PRIVMSG #lovingt3s :bleedPurple")
RONNI = ("@badge-info=;badges=turbo/1;color=#0D4200;display-name=ronni;emotes=25:0-4,12-16/1902:6-10;"
         "id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=0;room-id=1337;subscriber=0;tmi-sent-ts=1507246572675;"
         "turbo=1;user-id=1337;user-type=global_mod :ronni!ronni@ronni.tmi.twitch.tv PRIVMSG #ronni :Kappa Keepo Kappa")
USERSTATE = ("@badge-info=;badges=moderator/1;color=;display-name=bar;emote-sets=0,300374282;mod=1;"
             "subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE #foo")


def library_tags(line: str) -> list[dict]:
    """The tags of a raw line exactly as the ``irc`` library hands them to handlers."""
    assert line.startswith("@")
    return Tag.from_group(line[1:].split(" ", 1)[0])


class FakeHost:
    """A test double for the bot: fixed viewer counts, and records stop and reload requests."""

    def __init__(self, viewers: dict[str, int] | None = None):
        self.viewers = viewers or {}
        self.stops = 0
        self.reloads = 0
        self.facts = NoFacts()

    def viewer_count(self, channel: str) -> int:
        return self.viewers.get(channel, 0)

    def request_stop(self) -> None:
        self.stops += 1

    def reload(self) -> str:
        self.reloads += 1
        return "Reloaded 0 custom commands."


def msg(text: str, login: str = "alice", role: Role = Role.EVERYONE, channel: str = "#test") -> ChatMessage:
    """A chat message in ``channel`` from ``login`` with ``role``."""
    return ChatMessage(channel, login, text, role)


# --- tags and roles --------------------------------------------------------------------------


def test_tags_to_dict_turns_library_none_into_empty_string():
    tags = tags_to_dict(library_tags(USERSTATE))
    assert tags["badges"] == "moderator/1"
    assert tags["badge-info"] == "" and tags["color"] == ""
    assert tags["mod"] == "1"
    assert tags_to_dict(None) == {}
    assert tags_to_dict([]) == {}


def test_tags_to_dict_unescapes_values_as_the_library_does():
    tags = tags_to_dict(library_tags(r"@display-name=a\sb\:c;system-msg=x :tmi.twitch.tv USERNOTICE #c"))
    assert tags["display-name"] == "a b;c"


@pytest.mark.parametrize("value, expected", [
    ("", {}),
    ("broadcaster/1", {"broadcaster": "1"}),
    ("broadcaster/1,subscriber/12", {"broadcaster": "1", "subscriber": "12"}),
    ("moderator/1,,vip/1", {"moderator": "1", "vip": "1"}),
    ("founder/0", {"founder": "0"}),
    ("odd", {"odd": ""}),
])
def test_parse_badges(value, expected):
    assert parse_badges(value) == expected


@pytest.mark.parametrize("tags, login, channel, role", [
    # broadcaster: badge, login equal to the channel, or user-id equal to room-id (their mod=0)
    ({"badges": "broadcaster/1", "mod": "0"}, "streamer", "#streamer", Role.BROADCASTER),
    ({"badges": "broadcaster/1", "mod": "0"}, "someone", "#streamer", Role.BROADCASTER),
    ({}, "streamer", "#streamer", Role.BROADCASTER),
    ({"badges": "", "mod": "0"}, "streamer", "#streamer", Role.BROADCASTER),
    ({"user-id": "42", "room-id": "42"}, "renamed", "#streamer", Role.BROADCASTER),
    ({"badges": "broadcaster/1,subscriber/0", "subscriber": "1"}, "streamer", "#streamer", Role.BROADCASTER),
    # moderator
    ({"mod": "1"}, "alice", "#streamer", Role.MODERATOR),
    ({"badges": "moderator/1"}, "alice", "#streamer", Role.MODERATOR),
    ({"badges": "moderator/1,vip/1", "mod": "1", "vip": "1"}, "alice", "#streamer", Role.MODERATOR),
    ({"mod": "1", "subscriber": "1", "user-id": "7", "room-id": "42"}, "alice", "#streamer", Role.MODERATOR),
    # VIP: the vip tag, or only the badge (the tag may be absent)
    ({"vip": "1"}, "alice", "#streamer", Role.VIP),
    ({"badges": "vip/1"}, "alice", "#streamer", Role.VIP),
    ({"badges": "vip/1,subscriber/6", "subscriber": "1", "mod": "0"}, "alice", "#streamer", Role.VIP),
    # subscriber: tag, subscriber badge, or founder badge
    ({"subscriber": "1"}, "alice", "#streamer", Role.SUBSCRIBER),
    ({"badges": "subscriber/12"}, "alice", "#streamer", Role.SUBSCRIBER),
    ({"badges": "founder/0", "subscriber": "0"}, "alice", "#streamer", Role.SUBSCRIBER),
    # everyone
    ({}, "alice", "#streamer", Role.EVERYONE),
    ({"badges": "", "mod": "0", "subscriber": "0", "vip": ""}, "alice", "#streamer", Role.EVERYONE),
    ({"badges": "turbo/1,premium/1", "user-type": "global_mod"}, "alice", "#streamer", Role.EVERYONE),
    ({"user-id": "", "room-id": ""}, "alice", "#streamer", Role.EVERYONE),
    ({"user-id": "7"}, "alice", "#streamer", Role.EVERYONE),
    ({"user-id": "7", "room-id": "42"}, "alice", "#streamer", Role.EVERYONE),
])
def test_role_from_tags(tags, login, channel, role):
    assert role_from_tags(tags, login, channel) is role


def test_twitch_sample_broadcaster_message():
    tags = tags_to_dict(library_tags(LOVINGT3S))
    assert tags["mod"] == "0" and tags["badge-info"] == "" and tags["user-type"] == ""
    assert role_from_tags(tags, "lovingt3s", "#lovingt3s") is Role.BROADCASTER
    # the badge alone decides it, even under another login
    assert role_from_tags(tags, "someone", "#elsewhere") is Role.BROADCASTER


def test_twitch_sample_user_id_equal_to_room_id():
    tags = tags_to_dict(library_tags(RONNI))
    assert role_from_tags(tags, "ronni", "#ronni") is Role.BROADCASTER
    # ronni's user-id equals the room-id, so even another login (after a rename) is the broadcaster
    assert role_from_tags(tags, "ronni_renamed", "#ronni") is Role.BROADCASTER
    # in someone else's room, a global_mod with a turbo badge is just a chatter
    elsewhere = {**tags, "room-id": "713936733"}
    assert role_from_tags(elsewhere, "ronni", "#lovingt3s") is Role.EVERYONE


def test_twitch_sample_userstate_moderator():
    assert role_from_tags(tags_to_dict(library_tags(USERSTATE)), "bar", "#foo") is Role.MODERATOR


def test_roles_are_ordered():
    assert Role.BROADCASTER > Role.MODERATOR > Role.VIP > Role.SUBSCRIBER > Role.EVERYONE
    assert Role.parse(" Moderator ") is Role.MODERATOR
    assert Role.VIP.label == "vip"
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("admin")


def test_chat_message_name_falls_back_to_login():
    assert ChatMessage("#c", "alice", "hi").name == "alice"
    assert ChatMessage("#c", "alice", "hi", display_name="Alíce").name == "Alíce"


# --- splitting commands --------------------------------------------------------------------------


@pytest.mark.parametrize("text, prefix, expected", [
    ("!version", "!", ("version", "")),
    ("!Version", "!", ("version", "")),
    ("!COUNT_VIEWERS", "!", ("count_viewers", "")),
    ("!hug alice", "!", ("hug", "alice")),
    ("!hug  alice bob ", "!", ("hug", "alice bob")),
    ("!!", "!", ("!", "")),
    ("?help me", "?", ("help", "me")),
    ("!!help", "!!", ("help", "")),
    ("!", "!", None),
    ("! version", "!", None),
    ("!  ", "!", None),
    ("", "!", None),
    ("hello", "!", None),
    (" !version", "!", None),
    ("version!", "!", None),
    ("!help", "?", None),
    ("!help", "!!", None),
])
def test_split_command(text, prefix, expected):
    assert split_command(text, prefix) == expected


# --- the command table ------------------------------------------------------------------------------


def test_builtin_table():
    table = builtin_table()
    names = [entry.name for entry in table]
    assert names == ["version", "count_viewers", "uptime", "help", "reload", "botstatus", "permit", "exit"]
    assert table.find("commands") is table.find("help")
    assert table.find("exit").role is Role.BROADCASTER
    assert table.find("reload").role is table.find("botstatus").role is table.find("permit").role is Role.MODERATOR
    assert "version" in table and "nope" not in table
    assert table.find("nope") is None
    assert all(entry.help for entry in table)


def test_builtin_table_is_new_each_time():
    assert builtin_table() is not builtin_table()


def test_command_decorator_records_lowercase_names_and_defaults():
    @command("Hug", aliases=["Cuddle", "HUGS"], help="hug someone")
    def hug(ctx):
        return "hugs"

    entry = hug.vbot_command
    assert entry == Command("hug", hug, ("cuddle", "hugs"), "hug someone", Role.EVERYONE,
                            DEFAULT_COOLDOWN, DEFAULT_USER_COOLDOWN)
    assert entry.names == ("hug", "cuddle", "hugs")
    assert hug(None) == "hugs"  # the function itself is unchanged
    assert (DEFAULT_COOLDOWN, DEFAULT_USER_COOLDOWN) == (3.0, 10.0)


def test_collect_ignores_unmarked_objects():
    @command("a")
    def a(ctx):
        return "a"

    def plain(ctx):
        return "plain"

    assert [entry.name for entry in CommandTable.collect([a, plain, 42, "text"])] == ["a"]


@pytest.mark.parametrize("entries, clash", [
    ([("a", ()), ("a", ())], "a"),
    ([("a", ()), ("b", ("a",))], "a"),
    ([("a", ("x",)), ("b", ("x",))], "x"),
    ([("a", ("b",)), ("b", ())], "b"),
    ([("a", ("a",))], "a"),
])
def test_duplicate_names_are_rejected(entries, clash):
    commands = [Command(name, lambda ctx: None, aliases) for name, aliases in entries]
    with pytest.raises(ValueError, match=f"'{clash}'"):
        CommandTable(commands)


def test_decorated_duplicates_are_rejected():
    @command("Ping")
    def one(ctx):
        return "1"

    @command("x", aliases=["PING"])
    def two(ctx):
        return "2"

    with pytest.raises(ValueError, match="already used"):
        CommandTable.collect([one, two])


def test_available_to_keeps_table_order():
    table = builtin_table()
    names = lambda role: [entry.name for entry in table.available_to(role)]  # noqa: E731
    everyone = ["version", "count_viewers", "uptime", "help"]
    assert names(Role.EVERYONE) == names(Role.SUBSCRIBER) == names(Role.VIP) == everyone
    assert names(Role.MODERATOR) == [*everyone, "reload", "botstatus", "permit"]
    assert names(Role.BROADCASTER) == [*everyone, "reload", "botstatus", "permit", "exit"]


# --- dispatching -----------------------------------------------------------------------------------


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def host():
    return FakeHost({"#test": 3, "#other": 7})


def make_dispatcher(clock, *extra, prefix="!", owners=()) -> Dispatcher:
    """The built-in commands plus ``extra`` decorated functions, with a fake clock."""
    table = CommandTable([*builtin_table(), *(f.vbot_command for f in extra)])
    return Dispatcher(table, prefix, owners, Cooldowns(clock))


def test_version(clock, host):
    reply = make_dispatcher(clock).handle(msg("!version"), host)
    assert reply == f"Version: {__version__}"
    assert __version__ == importlib.metadata.version("vbot")


def test_commands_are_case_insensitive(clock, host):
    assert make_dispatcher(clock).handle(msg("!VeRsIoN extra words"), host) == f"Version: {__version__}"


def test_count_viewers_is_per_channel(clock, host):
    dispatcher = make_dispatcher(clock)
    assert dispatcher.handle(msg("!count_viewers"), host) == "Viewer count: 3"
    assert dispatcher.handle(msg("!count_viewers", channel="#other"), host) == "Viewer count: 7"
    assert dispatcher.handle(msg("!count_viewers", channel="#empty"), host) == "Viewer count: 0"


@pytest.mark.parametrize("text", ["!", "! ", "!nosuchcommand", "!nosuchcommand with args", "!!", "hello !version",
                                  "", "?version"])
def test_unknown_commands_bare_prefix_and_chat_are_ignored(clock, host, text, caplog):
    caplog.set_level(logging.DEBUG, logger="vbot")
    dispatcher = make_dispatcher(clock)
    assert dispatcher.handle(msg(text), host) is None
    assert not [record for record in caplog.records if record.levelno > logging.DEBUG]
    assert host.stops == host.reloads == 0


def test_unknown_command_is_logged_at_debug(clock, host, caplog):
    caplog.set_level(logging.DEBUG, logger="vbot")
    make_dispatcher(clock).handle(msg("!nosuchcommand"), host)
    assert any(record.levelno == logging.DEBUG and "nosuchcommand" in record.getMessage()
               for record in caplog.records)


def test_other_prefix(clock, host):
    dispatcher = make_dispatcher(clock, prefix="?")
    assert dispatcher.handle(msg("!version"), host) is None
    assert dispatcher.handle(msg("?version"), host) == f"Version: {__version__}"
    assert dispatcher.is_command("?x") and not dispatcher.is_command("!x")


def test_command_that_raises_is_logged_with_traceback(clock, host, caplog):
    @command("boom", cooldown=0, user_cooldown=0)
    def boom(ctx):
        raise RuntimeError("kaboom")

    dispatcher = make_dispatcher(clock, boom)
    assert dispatcher.handle(msg("!boom now"), host) is None
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info and errors[0].exc_info[0] is RuntimeError
    assert "boom" in errors[0].getMessage()
    assert "kaboom" in caplog.text and "Traceback" in caplog.text
    # and the dispatcher carries on
    assert dispatcher.handle(msg("!version"), host) == f"Version: {__version__}"
    assert dispatcher.handle(msg("!boom again"), host) is None


def test_context_carries_message_args_role_and_host(clock, host):
    seen = []

    @command("Probe", aliases=["pr"], cooldown=0, user_cooldown=0)
    def probe(ctx):
        seen.append(ctx)
        return None

    dispatcher = make_dispatcher(clock, probe, prefix="?")
    message = msg("?PR  one two ", role=Role.VIP)
    assert dispatcher.handle(message, host) is None
    (ctx,) = seen
    assert ctx.message is message and ctx.args == "one two" and ctx.role is Role.VIP
    assert ctx.command is probe.vbot_command and ctx.table is dispatcher.table
    assert ctx.chat is host and ctx.prefix == "?"


# --- !help -----------------------------------------------------------------------------------------

def listed(reply: str | None) -> list[str]:
    """The command names in a ``!help`` reply: ``'Commands: !a, !b'`` -> ``['!a', '!b']``."""
    assert reply is not None and reply.startswith("Commands: ")
    return reply.removeprefix("Commands: ").split(", ")


EVERYONE_HELP = "Commands: !version, !count_viewers, !uptime, !help"  # only what everyone may use, in table order


@pytest.mark.parametrize("role, shown, hidden", [
    (Role.EVERYONE, ["!version", "!count_viewers", "!uptime", "!help"], ["!reload", "!botstatus", "!exit"]),
    (Role.SUBSCRIBER, ["!version"], ["!reload", "!exit"]),
    (Role.VIP, ["!version"], ["!reload", "!exit"]),
    (Role.MODERATOR, ["!version", "!reload", "!botstatus"], ["!exit"]),
    (Role.BROADCASTER, ["!version", "!reload", "!botstatus", "!exit"], []),
])
@pytest.mark.parametrize("name", ["help", "commands", "HELP"])
def test_help_lists_what_the_role_may_use(clock, host, role, shown, hidden, name):
    names = listed(make_dispatcher(clock).handle(msg(f"!{name}", role=role), host))
    assert all(command in names for command in shown) and not any(command in names for command in hidden)


def test_help_for_everyone_is_exactly_the_open_commands(clock, host):
    assert make_dispatcher(clock).handle(msg("!help"), host) == EVERYONE_HELP


def test_help_for_an_owner_includes_exit(clock, host):
    dispatcher = make_dispatcher(clock, owners=["boss"])
    assert "!exit" in listed(dispatcher.handle(msg("!help", login="boss"), host))


def test_help_uses_the_prefix_and_lists_custom_commands(clock, host):
    @command("vipzone", role=Role.VIP)
    def vipzone(ctx):
        return "hi"

    dispatcher = make_dispatcher(clock, vipzone, prefix="?")
    assert dispatcher.handle(msg("?help", role=Role.SUBSCRIBER), host) == \
        "Commands: ?version, ?count_viewers, ?uptime, ?help"
    clock.advance(DEFAULT_COOLDOWN)
    assert dispatcher.handle(msg("?help", login="vippy", role=Role.VIP), host) == \
        "Commands: ?version, ?count_viewers, ?uptime, ?help, ?vipzone"


# --- owner-only and role-gated commands -----------------------------------------------------------


@pytest.mark.parametrize("role", [Role.EVERYONE, Role.SUBSCRIBER, Role.VIP, Role.MODERATOR])
def test_exit_is_refused_silently_below_broadcaster(clock, host, role, caplog):
    caplog.set_level(logging.DEBUG)
    dispatcher = make_dispatcher(clock, owners=["boss"])
    assert dispatcher.handle(msg("!exit", login="alice", role=role), host) is None
    assert host.stops == 0
    assert not [record for record in caplog.records if record.levelno > logging.DEBUG]


@pytest.mark.parametrize("login, role, owners", [
    ("streamer", Role.BROADCASTER, ()),      # as role_from_tags reports the channel's broadcaster
    ("boss", Role.EVERYONE, ("boss",)),      # VBOT_OWNERS, in any channel
    ("boss", Role.MODERATOR, ("alice", "boss")),
])
def test_exit_allowed_for_broadcaster_and_owners(clock, host, login, role, owners):
    dispatcher = make_dispatcher(clock, owners=owners)
    assert dispatcher.handle(msg("!exit", login=login, role=role), host) is None
    assert host.stops == 1


def test_exit_by_the_channel_owner_end_to_end_through_roles(clock, host):
    role = role_from_tags({"badges": "broadcaster/1", "mod": "0"}, "streamer", "#streamer")
    make_dispatcher(clock).handle(msg("!exit", login="streamer", role=role, channel="#streamer"), host)
    assert host.stops == 1


def test_owner_in_another_channel_is_still_owner(clock, host):
    dispatcher = make_dispatcher(clock, owners=["boss"])
    dispatcher.handle(msg("!exit", login="boss", channel="#someone_else"), host)
    assert host.stops == 1


def test_reload_for_moderators_only(clock, host):
    dispatcher = make_dispatcher(clock)
    assert dispatcher.handle(msg("!reload", role=Role.VIP), host) is None
    assert host.reloads == 0
    assert dispatcher.handle(msg("!reload", role=Role.MODERATOR), host) == "Reloaded 0 custom commands."
    assert host.reloads == 1


def test_refused_command_does_not_start_a_cooldown(clock, host):
    @command("vipzone", role=Role.VIP)
    def vipzone(ctx):
        return f"hi {ctx.message.login}"

    dispatcher = make_dispatcher(clock, vipzone)
    assert dispatcher.handle(msg("!vipzone", login="pleb"), host) is None
    assert dispatcher.handle(msg("!vipzone", login="vippy", role=Role.VIP), host) == "hi vippy"


# --- cooldowns -----------------------------------------------------------------------------------


def counter(name: str, **options):
    """A decorated command that replies with how often it has run."""
    runs = []

    @command(name, **options)
    def handler(ctx):
        runs.append(ctx.message.login)
        return f"{name} {len(runs)}"

    return handler


def test_channel_cooldown(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick", cooldown=3, user_cooldown=0))
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 1"
    clock.advance(2.9)
    assert dispatcher.handle(msg("!tick", login="bob"), host) is None
    assert dispatcher.handle(msg("!tick", login="bob", channel="#other"), host) == "tick 2"
    clock.advance(0.1)
    assert dispatcher.handle(msg("!tick", login="bob"), host) == "tick 3"


def test_user_cooldown(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick", cooldown=0, user_cooldown=10))
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 1"
    assert dispatcher.handle(msg("!tick", login="bob"), host) == "tick 2"
    clock.advance(9.9)
    assert dispatcher.handle(msg("!tick", login="alice"), host) is None
    assert dispatcher.handle(msg("!tick", login="alice", channel="#other"), host) == "tick 3"
    clock.advance(0.1)
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 4"


def test_default_cooldowns(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick"))
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 1"
    clock.advance(DEFAULT_COOLDOWN - 0.01)
    assert dispatcher.handle(msg("!tick", login="bob"), host) is None
    clock.advance(0.01)
    assert dispatcher.handle(msg("!tick", login="bob"), host) == "tick 2"
    clock.advance(DEFAULT_USER_COOLDOWN - DEFAULT_COOLDOWN - 0.01)
    assert dispatcher.handle(msg("!tick", login="alice"), host) is None
    clock.advance(0.01)
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 3"


def test_cooldowns_are_per_command(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick"), counter("tock"))
    assert dispatcher.handle(msg("!tick"), host) == "tick 1"
    assert dispatcher.handle(msg("!tock"), host) == "tock 1"
    assert dispatcher.handle(msg("!tick"), host) is None


def test_aliases_share_a_cooldown(clock, host):
    dispatcher = make_dispatcher(clock)
    assert dispatcher.handle(msg("!help", login="alice"), host) == EVERYONE_HELP
    assert dispatcher.handle(msg("!commands", login="bob"), host) is None


def test_builtin_version_has_the_default_cooldowns(clock, host):
    dispatcher = make_dispatcher(clock)
    assert dispatcher.handle(msg("!version", login="alice"), host)
    assert dispatcher.handle(msg("!version", login="bob"), host) is None
    clock.advance(3)
    assert dispatcher.handle(msg("!version", login="bob"), host)


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.BROADCASTER])
def test_moderators_and_broadcaster_bypass_cooldowns(clock, host, role):
    dispatcher = make_dispatcher(clock, counter("tick"))
    replies = [dispatcher.handle(msg("!tick", login="mod", role=role), host) for _ in range(5)]
    assert replies == ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5"]
    # their use does not start a cooldown for everyone else
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 6"


@pytest.mark.parametrize("role", [Role.EVERYONE, Role.SUBSCRIBER, Role.VIP])
def test_vip_and_below_do_not_bypass_cooldowns(clock, host, role):
    dispatcher = make_dispatcher(clock, counter("tick"))
    assert dispatcher.handle(msg("!tick", role=role), host) == "tick 1"
    assert dispatcher.handle(msg("!tick", role=role), host) is None


def test_owners_bypass_cooldowns(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick"), owners=["boss"])
    assert dispatcher.handle(msg("!tick", login="alice"), host) == "tick 1"
    assert dispatcher.handle(msg("!tick", login="boss"), host) == "tick 2"
    assert dispatcher.handle(msg("!tick", login="boss"), host) == "tick 3"


def test_zero_cooldowns(clock, host):
    dispatcher = make_dispatcher(clock, counter("tick", cooldown=0, user_cooldown=0))
    assert [dispatcher.handle(msg("!tick"), host) for _ in range(3)] == ["tick 1", "tick 2", "tick 3"]


def test_cooldowns_memory_stays_bounded(clock):
    cooldowns = Cooldowns(clock)
    entry = Command("tick", lambda ctx: None, cooldown=1, user_cooldown=1)
    for number in range(10_050):
        assert cooldowns.try_use(entry, "#test", f"user{number}")
        clock.advance(1)
    assert len(cooldowns) <= 2


def test_ended_cooldowns_are_forgotten_at_once(clock):
    """A burst of distinct chatters leaves nothing behind once their cooldowns are over."""
    cooldowns = Cooldowns(clock)
    entry = Command("enter", lambda ctx: None, cooldown=0, user_cooldown=10)
    for number in range(20_000):
        assert cooldowns.try_use(entry, "#test", f"user{number}")
    assert len(cooldowns) == 20_000  # all still running
    assert not cooldowns.try_use(entry, "#test", "user7")
    clock.advance(10)
    assert cooldowns.try_use(entry, "#test", "late")
    assert len(cooldowns) == 1


def test_a_flood_of_chatters_is_capped_by_forgetting_the_nearest_ends(clock):
    cooldowns = Cooldowns(clock, max_entries=1000)
    entry = Command("enter", lambda ctx: None, cooldown=0, user_cooldown=10)
    for number in range(5000):
        assert cooldowns.try_use(entry, "#test", f"user{number}")
        clock.advance(0.001)
    assert len(cooldowns) == 1000
    assert cooldowns.try_use(entry, "#test", "user0")  # forgotten early: may run again
    assert not cooldowns.try_use(entry, "#test", "user4999")  # the newest still cool down


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cooldowns_behave_like_a_table_that_forgets_nothing(seed):
    """Random uses of commands with mixed cooldown lengths, in several channels, against a plain
    dict of end times that is never pruned: the answers are the same every time."""
    rng = random.Random(seed)
    clock = FakeClock()
    cooldowns = Cooldowns(clock)
    entries = [Command(f"c{number}", lambda ctx: None, cooldown=rng.choice([0, 0.5, 3]),
                       user_cooldown=rng.choice([0, 1, 10])) for number in range(4)]
    reference: dict[tuple[str, ...], float] = {}
    for _ in range(20_000):
        clock.advance(rng.choice([0, 0, 0.01, 0.1, 0.5, 1, 3]))
        entry, channel, login = rng.choice(entries), rng.choice(["#a", "#b"]), f"user{rng.randrange(300)}"
        now = clock()
        keys = [(entry.name, channel), (entry.name, channel, login)]
        expected = all(reference.get(key, now) <= now for key in keys)
        if expected:
            for key, seconds in zip(keys, (entry.cooldown, entry.user_cooldown), strict=True):
                if seconds > 0:
                    reference[key] = now + seconds
        assert cooldowns.try_use(entry, channel, login) == expected
    assert len(cooldowns) == sum(at > clock() for at in reference.values())
