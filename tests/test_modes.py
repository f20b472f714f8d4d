"""Channel membership by the server's own rules: ISUPPORT, MODE lines, NAMES prefixes, roles.

Sources: RFC 1459 (4.2.3.1 channel modes, 2.2 case), the modern client protocol at
modern.ircdocs.horse (MODE types A-D, ISUPPORT PREFIX/CHANMODES/CASEMAPPING, RPL_NAMREPLY).
"""

from __future__ import annotations

import logging

import irc.client
import pytest

from vbot.chat import Role
from vbot.modes import Isupport, Members, Membership, ModeChange, Own, role_from_modes
from vbot.network import is_twitch

CUSTOM = ("PREFIX=(qaohv)~&@%+", "CHANMODES=beI,k,l,imnpst")
SOLANUM = ("PREFIX=(ov)@+", "CHANMODES=eIbq,k,flj,CFLMPQScgimnprstuz")  # q is a quiet *list* there
UNUSUAL = ("PREFIX=(Yqaohv)!~&@%+", "CHANMODES=beI,kfL,lj,psmntirRcOAQKVCuzNSMTGZ")  # modern spec's example

# (case, ISUPPORT tokens, NAMES entries, MODE lines (the parameters after the channel), every member's role after)
REPLAYS = [
    ("op with a limit removed first", (), "gina alice", ["-l+o gina"],
     {"gina": "moderator", "alice": "everyone"}),
    ("deop with a limit removed first", (), "@gina alice", ["-l-o gina"],
     {"gina": "everyone", "alice": "everyone"}),
    ("op and voice in one line", (), "a b c", ["+ov a b"],
     {"a": "moderator", "b": "vip", "c": "everyone"}),
    ("ban then deop", (), "@nick other", ["+b-o *!*@bad.example nick"],
     {"nick": "everyone", "other": "everyone"}),
    ("limit set, then deop", (), "@gina", ["+l-o 10 gina"], {"gina": "everyone"}),
    ("key set then op", (), "gina", ["+k-o+o sesame gina gina"], {"gina": "moderator"}),
    ("key removed (type B keeps its argument) then op", (), "gina", ["-k+o sesame gina"], {"gina": "moderator"}),
    ("unknown letters take no argument", (), "gina", ["+XY+o gina"], {"gina": "moderator"}),
    ("a missing argument changes nobody", (), "@gina", ["-o"], {"gina": "moderator"}),
    ("a nick not in the channel is not added", (), "gina", ["+o stranger"], {"gina": "everyone"}),
    ("founder and admin with custom prefixes", CUSTOM, "fiona adam olga hal val",
     ["+qa fiona adam", "+o-l+hv olga hal val"],
     {"fiona": "moderator", "adam": "moderator", "olga": "moderator", "hal": "moderator", "val": "vip"}),
    ("NAMES with custom prefixes", CUSTOM, "~fiona &adam @olga %hal +val plain", [],
     {"fiona": "moderator", "adam": "moderator", "olga": "moderator", "hal": "moderator", "val": "vip",
      "plain": "everyone"}),
    ("founder removed, admin kept", CUSTOM, "~&fiona", ["-q fiona"], {"fiona": "moderator"}),
    ("every status removed", CUSTOM, "~&@%+fiona", ["-qaohv fiona fiona fiona fiona fiona"], {"fiona": "everyone"}),
    ("halfop removed keeps voice", CUSTOM, "%+hal", ["-h hal"], {"hal": "vip"}),
    ("+q is a quiet list where it is no prefix", SOLANUM, "gina", ["+qo *!*@spam.example gina"],
     {"gina": "moderator"}),
    ("+q list entry removed, then deop", SOLANUM, "@gina", ["-q-o *!*@spam.example gina"], {"gina": "everyone"}),
    ("type C j and type B f of unusual CHANMODES", UNUSUAL, "gina bob",
     ["+jf-l+o 3:5 #overflow gina", "+L-j+v #big bob"],
     {"gina": "moderator", "bob": "vip"}),
    ("an unknown prefix ranked above op", UNUSUAL, "gina !yann", ["+Y gina"],
     {"gina": "moderator", "yann": "moderator"}),
    ("multi-prefix NAMES, then deop keeps voice", (), "@+gina", ["-o gina"], {"gina": "vip"}),
    ("highest-only NAMES plus a voice seen in MODE", (), "@gina", ["+v gina", "-o gina"], {"gina": "vip"}),
    ("nicks fold by rfc1459 by default", (), "Gina[m]", ["+o GINA{M}"], {"gina[m]": "moderator"}),
    ("CASEMAPPING=ascii keeps brackets apart", ("CASEMAPPING=ascii",), "Gina[m]", ["+o GINA{M}"],
     {"gina[m]": "everyone"}),
    ("an empty PREFIX means no statuses", ("PREFIX=",), "@gina", ["+o gina"], {"@gina": "everyone"}),
]


def replay(tokens, names: str, lines: list[str]) -> tuple[Isupport, Members]:
    isupport = Isupport().update(tokens)
    members = Members(isupport)
    for entry in names.split():
        members.add(*reversed(isupport.split_prefixes(entry)))
    for line in lines:
        members.apply_modes(isupport.parse_modes(line.split(" ")))
    return isupport, members


@pytest.mark.parametrize(("case", "tokens", "names", "lines", "roles"), REPLAYS, ids=[row[0] for row in REPLAYS])
def test_replayed_mode_lines_leave_every_member_with_the_right_role(case, tokens, names, lines, roles):
    isupport, members = replay(tokens, names, lines)
    assert sorted(members.nicks()) == sorted(map(isupport.fold, roles)), "no member added or lost"
    assert {nick: members.role(nick).label for nick in roles} == roles


@pytest.mark.parametrize(("tokens", "arguments", "changes"), [
    ((), "-l+o gina", [("-", "l", None), ("+", "o", "gina")]),
    ((), "-l-o gina", [("-", "l", None), ("-", "o", "gina")]),
    ((), "+ov a b", [("+", "o", "a"), ("+", "v", "b")]),
    ((), "+b-o mask nick", [("+", "b", "mask"), ("-", "o", "nick")]),
    ((), "+k key", [("+", "k", "key")]),
    ((), "-k key", [("-", "k", "key")]),
    ((), "+l 5", [("+", "l", "5")]),
    ((), "-l", [("-", "l", None)]),
    ((), "+mZ-n", [("+", "m", None), ("+", "Z", None), ("-", "n", None)]),
    ((), "o gina", [("+", "o", "gina")]),
    ((), "+ov gina", [("+", "o", "gina"), ("+", "v", None)]),
    ((), "+o gina extra", [("+", "o", "gina")]),
    ((), "", []),
    (CUSTOM, "+q-a f a", [("+", "q", "f"), ("-", "a", "a")]),
    (SOLANUM, "+q mask", [("+", "q", "mask")]),
    (("CHANMODES=b,k,l,imnpst,XYZ",), "+X+o gina", [("+", "X", None), ("+", "o", "gina")]),
])
def test_mode_lines_parse_by_the_servers_chanmodes(tokens, arguments, changes):
    parsed = Isupport().update(tokens).parse_modes(arguments.split(" ") if arguments else [])
    assert parsed == [ModeChange(*change) for change in changes]


@pytest.mark.parametrize(("tokens", "entry", "modes", "nick"), [
    ((), "gina", "", "gina"),
    ((), "@gina", "o", "gina"),
    ((), "+@gina", "ov", "gina"),
    ((), "@+gina!g@host.example", "ov", "gina"),
    ((), "%gina", "", "%gina"),
    (CUSTOM, "~&@%+gina", "qaohv", "gina"),
    (CUSTOM, "%gina", "h", "gina"),
    (("PREFIX=",), "@gina", "", "@gina"),
])
def test_names_entries_lose_their_prefixes(tokens, entry, modes, nick):
    assert Isupport().update(tokens).split_prefixes(entry) == (modes, nick)


def test_isupport_defaults_are_rfc1459s():
    isupport = Isupport()
    assert (isupport.prefix_modes, isupport.prefix_symbols) == ("ov", "@+")
    assert isupport.chanmodes == ("b", "k", "l", "imnpst")
    assert isupport.casemapping == "rfc1459" and isupport.fold("A[b]~") == "a{b}^"


def test_isupport_builds_up_over_several_005_lines_and_can_be_reset():
    first = Isupport().update(["CASEMAPPING=ascii", "PREFIX=(qaohv)~&@%+", "CHANTYPES=#",
                               "are supported by this server"])
    second = first.update(["CHANMODES=beI,k,l,imMnOPQRstVz", "NICKLEN=30", "are supported by this server"])
    assert (second.prefix_modes, second.casemapping, second.chanmodes[0]) == ("qaohv", "ascii", "beI")
    assert first.chanmodes == ("b", "k", "l", "imnpst"), "update returns a copy"
    reset = second.update(["-PREFIX", "-CASEMAPPING", "-CHANMODES"])
    assert reset == Isupport()
    assert reset.fold("A[B]") == "a{b}"


@pytest.mark.parametrize("token", ["PREFIX=(ov)@", "PREFIX=ov@+", "PREFIX=(ov"])
def test_a_malformed_prefix_is_logged_and_skipped(token, caplog):
    caplog.set_level(logging.INFO, logger="vbot.modes")
    assert Isupport().update([token, "CASEMAPPING=ascii"]) == Isupport(casemapping="ascii")
    assert "malformed ISUPPORT token" in caplog.text


@pytest.mark.parametrize(("modes", "prefix", "role"), [
    ("", "ov", Role.EVERYONE),
    ("v", "ov", Role.VIP),
    ("o", "ov", Role.MODERATOR),
    ("ov", "ov", Role.MODERATOR),
    ("q", "qaohv", Role.MODERATOR),
    ("a", "qaohv", Role.MODERATOR),
    ("h", "qaohv", Role.MODERATOR),
    ("hv", "qaohv", Role.MODERATOR),
    ("Y", "Yqaohv", Role.MODERATOR),
    ("x", "ohxv", Role.EVERYONE),
    ("x", "x", Role.EVERYONE),
])
def test_roles_from_prefix_modes_never_reach_broadcaster(modes, prefix, role):
    assert role_from_modes(modes, prefix) == role


def test_members_follow_join_part_kick_quit_and_nick():
    members = Members(Isupport().update(CUSTOM))
    for nick in ("vbot", "Alice", "bob", "carol"):
        members.add(nick)
    members.add("ALICE", "o")  # NAMES after the JOIN: modes merge
    members.add("alice")  # a repeated JOIN keeps them
    assert members.role("alice") == Role.MODERATOR and members.viewer_count("VBot") == 3
    assert members.rename("Alice", "Alicia") and not members.rename("ghost", "spirit")
    assert members.role("ALICIA") == Role.MODERATOR and "alice" not in members
    assert members.remove("bob") and not members.remove("bob")  # PART/KICK, then a stray PART
    members.rename("carol", "Carol")  # a case-only change keeps the member
    assert "carol" in members and len(members) == 3 and members.viewer_count("vbot") == 2
    assert members.role("nobody") == Role.EVERYONE and members.modes("nobody") == ""
    assert members.viewer_count("notinchannel") == 3
    assert 42 not in members


def test_members_store_a_shared_empty_string_for_plain_members():
    members = Members()
    members.add("alice")
    members.add("bob")
    assert members.modes("alice") is members.modes("bob") == ""


@pytest.mark.parametrize(("host", "server_name", "capabilities", "twitch"), [
    ("irc.chat.twitch.tv", None, (), True),
    ("IRC.CHAT.TWITCH.TV.", None, (), True),
    ("127.0.0.1", None, (), False),
    ("127.0.0.1", "tmi.twitch.tv", (), True),
    ("127.0.0.1", "irc.vbot.test", ["twitch.tv/membership", "twitch.tv/tags"], True),
    ("127.0.0.1", "irc.vbot.test", ["multi-prefix"], False),
    ("irc.libera.chat", "tantalum.libera.chat", [], False),
    ("twitch.tv.example.org", "irc.example.org", [], False),
    ("nottwitch.tv", "tmi.twitch.tv.example", [], False),
])
def test_twitch_is_known_by_host_server_name_or_capabilities(host, server_name, capabilities, twitch):
    assert is_twitch(host, server_name, capabilities) is twitch


# --- Membership: every channel, fed the server's events ----------------------------------------


def event(line_type: str, source: str | None, target: str | None, *arguments: str) -> irc.client.Event:
    return irc.client.Event(line_type, irc.client.NickMask(source) if source else None, target, list(arguments))


def test_membership_follows_events_and_reports_only_the_bots_own_joins_and_leaves():
    nick = ["vbot"]
    membership = Membership(lambda: nick[0])
    membership.isupport = membership.isupport.update(CUSTOM)
    channels = membership.channels
    assert membership.feed(event("join", "alice!a@h", "#test")) is None  # not in #test: nothing kept
    own = membership.feed(event("join", "VBot!~vbot@cloak.example", "#Test"))
    assert own == Own("#test", joined=True, source="VBot!~vbot@cloak.example")
    assert membership.feed(event("join", "vbot!~vbot@cloak.example", "#test")) is None  # a duplicate echo
    membership.feed(event("namreply", "irc.example", "vbot", "=", "#test", "vbot ~&fiona @olga +val"))
    for line in [event("join", "pat!p@h", "#test"), event("mode", "olga!o@h", "#test", "+v", "pat"),
                 event("mode", "olga!o@h", "#test", "-q", "fiona"), event("nick", "val!v@h", "valerie"),
                 event("quit", "olga!o@h", None, "bye"), event("part", "ghost!g@h", "#test")]:
        assert membership.feed(line) is None
    members = membership.members("#TEST")
    assert {name: members.role(name).label for name in members.nicks()} == {
        "vbot": "everyone", "fiona": "moderator", "valerie": "vip", "pat": "vip"}
    assert membership.viewer_count("#test") == 3
    nick[0] = "vbot2"  # the server renamed the bot (the library follows its own nick)
    membership.feed(event("nick", "vbot!~vbot@h", "vbot2"))
    assert membership.viewer_count("#test") == 3
    kicked = membership.feed(event("kick", "fiona!f@h", "#test", "VBOT2", "spam"))
    assert kicked == Own("#test", joined=False, why="kicked by fiona (spam)")
    assert membership.members("#test") is None and membership.viewer_count("#test") == 0
    membership.feed(event("join", "vbot2!~vbot@h", "#other"))
    assert membership.feed(event("part", "vbot2!~vbot@h", "#other")) == Own(
        "#other", joined=False, why="parted by the server (no reason)")
    membership.feed(event("join", "vbot2!~vbot@h", "#other"))
    membership.clear()
    assert membership.channels is channels and channels == {}  # the same dict, emptied
    assert membership.isupport == Isupport()


def test_membership_ignores_the_bots_join_of_a_channel_it_was_not_asked_to_join():
    membership = Membership(lambda: "vbot", accepts=lambda channel: channel.lower() == "#test")
    assert membership.feed(event("join", "vbot!v@h", "#elsewhere")) is None
    assert membership.feed(event("join", "alice!a@h", "#elsewhere")) is None
    assert membership.feed(event("join", "vbot!v@h", "#Test")) == Own("#test", joined=True, source="vbot!v@h")
    assert list(membership.channels) == ["#test"]


def test_membership_skips_odd_events():
    membership = Membership(lambda: "vbot")
    for odd in [event("join", None, "#test"), event("join", "vbot!v@h", None), event("kick", "x!x@h", "#test"),
                event("namreply", "irc.example", "vbot", "#test"), event("mode", "x!x@h", "#nowhere", "+o", "x"),
                event("nick", "x!x@h", None), event("part", None, "#test")]:
        assert membership.feed(odd) is None
    assert membership.channels == {}


class CountedReads(str):
    """A PREFIX mode string that counts how often it is scanned (iterated, searched, indexed)."""

    reads = 0

    def __iter__(self):
        CountedReads.reads += 1
        return super().__iter__()

    def __contains__(self, item):
        CountedReads.reads += 1
        return super().__contains__(item)

    def index(self, *args):
        CountedReads.reads += 1
        return super().index(*args)

    def find(self, *args):
        CountedReads.reads += 1
        return super().find(*args)


def test_a_mode_line_costs_its_own_length_not_the_size_of_prefix():
    """Issue 18 item 5: a server announcing 2,500 PREFIX modes made each MODE line cost ~11 ms, every
    change scanning all of PREFIX. Now PREFIX is read once, into a rank table, whatever follows."""
    letters = "".join(chr(0x100 + index) for index in range(2500))
    symbols = "".join(chr(0x3000 + index) for index in range(2500))
    rules = Isupport(prefix_modes=CountedReads(letters + "ov"), prefix_symbols=symbols + "@+")
    members = Members(rules)
    for index in range(20):
        members.add(f"gina{index}")
    CountedReads.reads = 0
    for _ in range(200):
        changes = rules.parse_modes(["+oov" + letters[-3:] + "-o", *[f"gina{index}" for index in range(8)]])
        members.apply_modes(changes)
        assert members.role("gina0") is Role.MODERATOR and members.role("gina2") is Role.VIP
    print(f"\nmeasured: scans of a 2,502-mode PREFIX for 200 MODE lines: {CountedReads.reads}")
    assert CountedReads.reads <= 2  # the rank table and the argument sets, built once
