"""The test servers themselves (tests/support.py): each option starts and behaves as documented,
so a test of the bot that uses one fails only for the bot's own reasons."""

from __future__ import annotations

import socket

import pytest

from tests.support import (
    REQUIRE_NGIRCD,
    WAIT,
    IrcClient,
    LineSocket,
    Miniircd,
    Ngircd,
    PlainIrcServer,
    needs_ngircd,
    real_ircd,
    registered_client,
)

CUSTOM_ISUPPORT = "PREFIX=(qaohv)~&@%+ CHANMODES=beI,kfL,lj,imnpstz CASEMAPPING=ascii"
ngircd_itself = needs_ngircd("the test checks ngircd itself")


def raw_client(port: int) -> LineSocket:
    return LineSocket(socket.create_connection(("127.0.0.1", port), timeout=WAIT))


@ngircd_itself
def test_ngircd_without_a_password_registers_clients_that_send_none(servers):
    server = servers(Ngircd(token=None))
    assert server.password is None and "Password" not in server.config.read_text()
    client = registered_client(server, "alice", "#open")
    assert client.wait_for(r" 353 alice . #open :@alice")
    client.close()


def assert_password_refused(port: int, password: str, nick: str) -> None:
    """Log in with ``PASS password``: the server must refuse it (ERROR, or 464 ERR_PASSWDMISMATCH)."""
    client = raw_client(port)
    client.send(f"PASS {password}")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick}")
    assert client.wait_for(r"^(ERROR|:\S+ 464 )")
    client.close()


@ngircd_itself
def test_ngircd_without_a_password_refuses_a_pass(servers):
    server = servers(Ngircd(token=None))
    assert_password_refused(server.port, "oauth:whatever", "vbot")


@ngircd_itself
def test_ngircd_with_a_plain_password(servers):
    server = servers(Ngircd(password="hunter2"))
    assert server.password == "hunter2"
    registered_client(server, "alice").close()
    assert_password_refused(server.port, "oauth:hunter2", "bob")


@ngircd_itself
@pytest.mark.parametrize(("modes", "refusal", "join"), [
    ("+i", "473", "JOIN #room"),
    ("+k sesame", "475", "JOIN #room"),
    ("+k sesame", None, "JOIN #room sesame"),
    ("+l 1", "471", "JOIN #room"),
])
def test_ngircd_channels_preconfigured_with_modes(servers, modes, refusal, join):
    server = servers(Ngircd(channels={"#room": modes}))
    first = registered_client(server, "alice")
    if modes == "+l 1":
        first.join("#room")  # the one place left
    second = registered_client(server, "bob")
    second.send(join)
    if refusal:
        assert second.wait_for(rf"^:\S+ {refusal} bob #room ")
    else:
        assert second.wait_for(r"^:bob!\S+ JOIN :?#room")
    for client in (first, second):
        client.close()


@pytest.mark.parametrize("kind", [pytest.param(Ngircd, marks=ngircd_itself), Miniircd])
def test_a_second_client_holds_the_nick(servers, kind):
    server = servers(kind())
    holder = registered_client(server, "vbot")
    newcomer = raw_client(server.port)
    newcomer.send(f"PASS {server.password}")
    newcomer.send("NICK vbot")
    newcomer.send("USER vbot 0 * :vbot")
    assert newcomer.wait_for(r"^:\S+ 433 \S+ vbot ")
    for client in (holder, newcomer):
        client.close()


@ngircd_itself
def test_ngircd_operator_sets_founder_and_admin_seen_by_members(servers):
    server = servers(Ngircd(operator=("boss", "bosspw")))
    member = registered_client(server, "gina", "#test")
    boss = registered_client(server, "boss", "#test", oper=True)
    boss.send("MODE #test +qa-o gina gina gina")
    assert member.wait_for(r"^:boss!\S+ MODE #test \+qa-o gina gina gina")
    member.send("NAMES #test")
    assert member.wait_for(r" 353 gina . #test :.*~gina")
    with pytest.raises(ValueError):
        registered_client(servers(Ngircd()), "someone", oper=True)
    for client in (member, boss):
        client.close()


@ngircd_itself
def test_ngircd_advertises_the_prefixes_it_supports(servers):
    server = servers(Ngircd())
    client = registered_client(server, "alice")
    assert client.wait_for(r" 005 alice .*PREFIX=\(qaohv\)~&@%\+")
    client.close()


def test_miniircd_without_a_password_registers_clients_that_send_none(servers):
    server = servers(Miniircd(token=None))
    assert server.password is None
    client = registered_client(server, "alice", "#open")
    assert client.wait_for(r" 353 alice . #open :alice$")
    client.close()


def test_miniircd_with_a_password_refuses_a_wrong_one(servers):
    server = servers(Miniircd(password="hunter2"))
    registered_client(server, "alice").close()
    assert_password_refused(server.port, "oauth:hunter2", "bob")


def test_miniircd_relays_chat_and_refuses_twitch_capabilities(servers):
    server = servers(Miniircd())
    alice, bob = registered_client(server, "alice", "#test"), registered_client(server, "bob", "#test")
    assert bob.wait_for_reply("#test", "hi bob", alice.say("#test", "hi bob")) == "hi bob"
    newcomer = raw_client(server.port)
    newcomer.send("CAP REQ :twitch.tv/membership")
    assert newcomer.wait_for(r" CAP \* NAK :twitch\.tv/membership")
    for client in (alice, bob, newcomer):
        client.close()


def test_real_ircd_is_ngircd_on_path_else_miniircd(monkeypatch, tmp_path):
    """Where ngircd is missing, miniircd stands in, unless REQUIRE_NGIRCD asks for ngircd."""
    monkeypatch.delenv(REQUIRE_NGIRCD, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert type(real_ircd()) is Miniircd
    monkeypatch.setenv(REQUIRE_NGIRCD, "1")
    assert type(real_ircd()) is Ngircd
    (tmp_path / "ngircd").write_text("#!/bin/sh\n")
    (tmp_path / "ngircd").chmod(0o755)
    monkeypatch.delenv(REQUIRE_NGIRCD)
    assert real_ircd().binary == str(tmp_path / "ngircd")


def test_plain_server_sends_a_custom_isupport_and_names_with_custom_prefixes(servers):
    server = servers(PlainIrcServer(isupport=CUSTOM_ISUPPORT, names="~fiona &adam @olga %hal +val"))
    client = IrcClient(server.port, "vbot")
    assert "PREFIX=(qaohv)~&@%+" in client.wait_for(r"^:irc\.vbot\.test 005 vbot ")
    assert "CHANMODES=beI,kfL,lj,imnpstz" in client.wait_for(r" 005 ")
    client.join("#test")
    assert client.wait_for(r"^:vbot!~vbot@127\.0\.0\.1 JOIN #test")
    assert client.wait_for(r" 353 vbot = #test :~fiona &adam @olga %hal \+val vbot$")
    start = len(client.lines)
    server.mode("#test", "-l+o gina")
    assert client.wait_for(r"^:olga!~olga@127\.0\.0\.1 MODE #test -l\+o gina$", start=start)
    client.close()


def test_plain_server_refuses_twitch_capabilities(servers):
    server = servers(PlainIrcServer())
    client = raw_client(server.port)
    client.send("CAP REQ :twitch.tv/membership twitch.tv/tags")
    assert client.wait_for(r"^:irc\.vbot\.test CAP \* NAK :twitch\.tv/membership")
    client.send("CAP REQ :multi-prefix")
    assert client.wait_for(r"CAP \* ACK :multi-prefix")
    client.close()


def test_plain_server_answers_a_privmsg_too_long_once_relayed_with_417(servers):
    server = servers(PlainIrcServer(relay_limit=512))
    client = IrcClient(server.port, "vbot")
    client.join("#test")
    prefix = f":{server.source('vbot')} "
    fits = "a" * (512 - len(prefix) - len("PRIVMSG #test :\r\n"))
    start = client.say("#test", fits)
    client.say("#test", fits + "b")
    line = client.wait_for(r" 417 ", start=start)
    assert line == ":irc.vbot.test 417 vbot :Input line was too long"
    assert sum(" 417 " in line for line in client.lines) == 1, "only the longer one is refused"
    client.close()


def test_plain_server_can_refuse_every_privmsg(servers):
    server = servers(PlainIrcServer(relay_limit=0))
    client = IrcClient(server.port, "vbot")
    assert client.wait_for(r" 417 vbot ", start=client.say("#test", "hi"))
    client.close()


def test_plain_server_hides_the_host_with_396(servers):
    server = servers(PlainIrcServer(hidden_host="vbot.users.example"))
    client = IrcClient(server.port, "vbot")
    assert client.wait_for(r"^:irc\.vbot\.test 396 vbot vbot\.users\.example :")
    client.join("#test")
    assert client.wait_for(r"^:vbot!~vbot@vbot\.users\.example JOIN #test")
    client.close()


def test_plain_server_with_a_password_refuses_a_wrong_one(servers):
    server = servers(PlainIrcServer(token="hunter2"))
    IrcClient(server.port, "alice", "hunter2").close()
    wrong = raw_client(server.port)
    wrong.send("PASS oauth:hunter2")
    wrong.send("NICK bob")
    assert wrong.wait_for(r" 464 bob ")
    wrong.close()
