"""The token never appears in anything vbot writes, and TLS always verifies the server.

The end-to-end tests run the real program (``python -m vbot``, or ``vbot.cli.main`` with
one extra crashing command) at VBOT_LOG_LEVEL=DEBUG against the scripted Twitch server
and search all of stdout and stderr for the token, bare and with ``oauth:``. DEBUG
matters: the ``irc`` library logs every line it sends, ``PASS oauth:...`` included.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import ssl
import subprocess
import sys
import threading

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import TOKEN, ScriptedServer, make_config, run_vbot, start_vbot, wait_until
from vbot.config import ConfigError, load_config
from vbot.irclib import make_connect_factory
from vbot.logs import ENDS_A_VALUE, LEARNED_KEPT, PIECE_MIN, REDACTED, Clipped, RedactingFormatter, setup_logging

CRASHING_VBOT = """
import sys
import vbot.commands
from vbot.dispatch import command

@command("crash", cooldown=0, user_cooldown=0)
def crash(ctx):
    raise RuntimeError("the token is " + ctx.args)

vbot.commands.crash = crash  # builtin_table() collects the module's commands
from vbot.cli import main
sys.exit(main())
"""
"""``python -m vbot`` plus a ``!crash <text>`` command whose exception message repeats <text>."""


@pytest.fixture
def twitch():
    """The scripted server accepting any PASS: off Twitch's host (loopback) vbot sends VBOT_TOKEN as
    given, so a bare token and an ``oauth:`` one reach the server as written."""
    server = ScriptedServer(token=None).start()
    yield server
    server.stop()


def env_for(server: ScriptedServer, tmp_path, token: str) -> dict[str, str]:
    return {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": token, "VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1",
            "VBOT_PORT": str(server.port), "VBOT_TLS": "false", "VBOT_LOG_LEVEL": "DEBUG",
            "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3")}


def assert_no_token(output: str) -> None:
    assert TOKEN not in output
    assert TOKEN[:12] not in output  # not even a recognisable piece of it


def pass_line(output: str) -> str:
    """The library's DEBUG line for the PASS it sent (proves DEBUG logging ran)."""
    return next(line for line in output.splitlines() if "TO SERVER: PASS " in line)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        stdout, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return process.returncode, stdout + stderr


@pytest.mark.parametrize("token", [TOKEN, f"oauth:{TOKEN}"], ids=["bare", "oauth-prefix"])
def test_connect_chat_and_exit_at_debug(twitch, tmp_path, token):
    process = start_vbot(env_for(twitch, tmp_path, token), cwd=tmp_path)
    try:
        twitch.wait_for(r"^JOIN #test$", timeout=15)
        twitch.chat("#test", "alice", f"!version oauth:{TOKEN}")  # pasted into chat: logged at DEBUG
        twitch.wait_for(r"^PRIVMSG #test :Version: ")
        twitch.chat("#test", "test", "!exit")  # the broadcaster of #test
    finally:
        code, output = finish(process)
    assert code == 0, output
    assert f"PASS {token}" in twitch.received  # the server did get it
    assert "[REDACTED]" in pass_line(output)
    assert "FROM SERVER: :alice!alice@alice.tmi.twitch.tv PRIVMSG #test :!version " in output
    assert_no_token(output)


@pytest.mark.parametrize("token", [TOKEN, f"oauth:{TOKEN}"], ids=["bare", "oauth-prefix"])
def test_crash_in_a_command_with_the_token_in_its_message(twitch, tmp_path, token):
    process = subprocess.Popen([sys.executable, "-c", CRASHING_VBOT], env=env_for(twitch, tmp_path, token) | {
        "PATH": "/usr/bin:/bin"}, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        twitch.wait_for(r"^JOIN #test$", timeout=15)
        twitch.chat("#test", "alice", f"!crash {TOKEN}")
        twitch.chat("#test", "bob", f"!crash oauth:{TOKEN}")
        twitch.chat("#test", "carol", "!version")
        twitch.wait_for(r"^PRIVMSG #test :Version: ")  # the crash did not stop it
        twitch.chat("#test", "test", "!exit")
    finally:
        code, output = finish(process)
    assert code == 0, output
    assert output.count("Traceback (most recent call last)") == 2
    assert output.count("RuntimeError: the token is ") == 2 and "[REDACTED]" in output
    assert_no_token(output)


@pytest.mark.parametrize("token", [TOKEN, f"oauth:{TOKEN}"], ids=["bare", "oauth-prefix"])
def test_login_failure_at_debug(tmp_path, token):
    server = ScriptedServer(token="the-right-token").start()
    try:
        result = run_vbot(env_for(server, tmp_path, token), cwd=tmp_path, timeout=20)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Twitch refused the login" in output and "[REDACTED]" in pass_line(output)
    assert_no_token(output)


@pytest.mark.parametrize("token", [f"oauth:oauth:{TOKEN}", f"{TOKEN} {TOKEN}", f"oauth:{TOKEN}\tx"])
def test_configuration_errors_never_show_the_token(tmp_path, token):
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": token, "VBOT_CHANNEL": "test"}
    with pytest.raises(ConfigError) as error:
        load_config(env)
    assert_no_token(str(error.value))
    result = run_vbot(env, cwd=tmp_path)
    assert result.returncode == 2
    assert "VBOT_TOKEN" in result.stderr
    assert_no_token(result.stdout + result.stderr)


@pytest.mark.parametrize("broken", [{"VBOT_USERNAME": "not a login"}, {"VBOT_CHANNEL": "#bad channel"},
                                    {"VBOT_PORT": "99999"}, {"VBOT_TLS": "maybe"}, {"VBOT_LOG_LEVEL": "LOUD"},
                                    {"VBOT_PING_INTERVAL": "-1"}])
def test_other_configuration_errors_with_a_token_set(broken):
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{TOKEN}", "VBOT_CHANNEL": "test", **broken}
    with pytest.raises(ConfigError) as error:
        load_config(env)
    assert_no_token(str(error.value))


def test_config_repr_hides_the_token():
    for config in (make_config(6667, token=TOKEN), load_config({"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{TOKEN}",
                                                   "VBOT_CHANNEL": "test"})):
        assert config.token == TOKEN
        assert_no_token(repr(config))
        assert_no_token(str(config))
        assert_no_token(f"{config!r} {[config]} {{'c': config}}")


def test_uncaught_exception_after_logging_setup_is_redacted():
    """Even a traceback Python prints itself, outside any handler, goes through the redacting formatter."""
    code = ("from vbot.logs import setup_logging\n"
            f"setup_logging('DEBUG', secrets=['{TOKEN}', 'oauth:{TOKEN}'])\n"
            f"raise RuntimeError('oauth:{TOKEN}')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr
    assert_no_token(result.stdout + result.stderr)


# --- the redacting formatter ------------------------------------------------------------------------


def formatted(formatter: RedactingFormatter, message: str, *args) -> str:
    record = logging.LogRecord("vbot.bot", logging.DEBUG, __file__, 1, message, args, None)
    return formatter.format(record).split("vbot.bot: ", 1)[-1]


def test_a_line_cut_for_the_log_never_shows_the_start_of_the_token():
    """The bot logs the first 300 characters of a line it skips; wherever the cut falls, not one
    character of the token shows (the echoed line is cut after redaction)."""
    formatter = RedactingFormatter([TOKEN], fmt="%(message)s")
    for echoed in (TOKEN, f"oauth:{TOKEN}", TOKEN.upper()):
        head = ":tmi.twitch.tv NOTICE * :bad auth "
        for cut in range(len(head), len(head) + len("oauth:") + len(TOKEN) + 1):
            line = (head + "x" * (300 - cut) + echoed + " trailing")
            output = formatted(formatter, "skipping a line that does not parse (%s): %r", "error", Clipped(line, 300))
            assert TOKEN[:3] not in output.lower(), (cut, output[-40:])


@pytest.mark.parametrize("copy", [TOKEN.upper(), TOKEN.title(), f"OAUTH:{TOKEN.upper()}", f"oAuTh:{TOKEN}"])
def test_altered_copies_are_masked(copy):
    output = formatted(RedactingFormatter([TOKEN]), "server said %s", copy)
    assert output == f"server said {REDACTED}"


@pytest.mark.parametrize("value", ["someoneelsestoken123", "x", "ABC-def_123.456", "abc\\def"])
def test_any_oauth_value_is_masked_even_when_unknown(value):
    output = formatted(RedactingFormatter([]), "PASS oauth:%s and OAuth:%s", value, value)
    assert output == f"PASS {REDACTED} and {REDACTED}"
    assert formatted(RedactingFormatter([]), "see OAuth: the docs") == "see OAuth: the docs"


def test_a_prefixed_secret_is_masked_without_its_prefix_too():
    output = formatted(RedactingFormatter([f"oauth:{TOKEN}"]), "the token is %s", TOKEN)
    assert output == f"the token is {REDACTED}"


def test_clipped_without_the_redacting_formatter_still_masks_oauth_values():
    line = "x" * 10 + f" oauth:{TOKEN}"
    assert str(Clipped(line, 20)) == "x" * 10 + " " + REDACTED[:9]
    assert repr(Clipped("abc", 2)) == "'ab'"
    record = logging.LogRecord("vbot", logging.DEBUG, __file__, 1, "%r", (Clipped(line, 300),), None)
    RedactingFormatter([TOKEN]).format(record)
    assert isinstance(record.args[0], Clipped)  # the shared record is left as it was


def test_secrets_learned_at_run_time_are_masked_from_then_on():
    stream = io.StringIO()
    handler = setup_logging("DEBUG", secrets=[TOKEN], stream=stream)
    try:
        new_token = "refreshed0123456789abcdefghij"
        handler.formatter.add_secret(new_token)
        handler.formatter.add_secret("")  # ignored
        logging.getLogger("vbot.auth").info("new token %s, refresh %s", new_token, new_token.upper())
    finally:
        logging.getLogger().removeHandler(handler)
        sys.excepthook = sys.__excepthook__
    assert stream.getvalue().endswith(f"new token {REDACTED}, refresh {REDACTED}\n")


def test_add_secret_is_thread_safe():
    secrets = [[f"secret{thread}x{number:04d}" for number in range(150)] for thread in range(4)]
    formatter = RedactingFormatter([TOKEN], learned_kept=4 * 150)  # keeps them all
    failures = []

    def learn(mine: list[str]) -> None:
        for secret in mine:
            formatter.add_secret(secret)
            if secret in formatted(formatter, "token %s", secret):  # masked as soon as add_secret returned
                failures.append(secret)

    threads = [threading.Thread(target=learn, args=(mine,)) for mine in secrets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    everything = " ".join(secret for mine in secrets for secret in mine)
    assert "secret" not in formatted(formatter, "%s", everything)


def test_the_oauth_mask_stops_where_a_token_ends_in_a_servers_message():
    """An unknown value stops at a bracket, quote, comma or semicolon; a known token is masked
    whole, whatever printable characters it holds (vbot.auth.TOKEN_SHAPE)."""
    formatter = RedactingFormatter(["ab]c);d'e"])
    line = "Closing link: (vbot@127.0.0.1) [Access denied, bad password oauth:%s]);"
    assert formatted(formatter, line, "f18e54d81ae2") == line.replace("oauth:%s", REDACTED)
    assert formatted(formatter, line, "ab]c);d'e") == line.replace("oauth:%s", REDACTED)
    assert formatted(formatter, "[%s], %s", "AB]C);D'E", "oauth:ab]c);d'e") == f"[{REDACTED}], {REDACTED}"
    formatter.add_secret("oauth:g(h)i")
    assert formatted(formatter, "(oauth:%s) (%s)", "g(h)i", "G(H)I") == f"({REDACTED}) ({REDACTED})"


def test_the_redaction_keeps_the_configured_secrets_and_the_newest_learned_ones():
    """A bot that renews every minute for days learns thousands of tokens: the redaction keeps
    the configured secrets and the newest LEARNED_KEPT learned ones (the older are long dead)."""
    formatter = RedactingFormatter([TOKEN, "serverpass"])
    learned = [f"renewed{number:05d}token" for number in range(3 * LEARNED_KEPT)]
    for secret in learned:
        formatter.add_secret(secret)
    formatter.add_secret(TOKEN)  # configured already: it stays, and pushes nothing out
    everything = " ".join([TOKEN, "serverpass", *learned])
    kept = {TOKEN, "serverpass", *learned[-LEARNED_KEPT:]}
    shown = formatted(formatter, "%s", everything).split()
    assert [secret for secret, text in zip(everything.split(), shown, strict=True) if text == REDACTED] == [
        secret for secret in everything.split() if secret in kept
    ]
    assert formatted(formatter, "PASS oauth:%s", learned[0]) == f"PASS {REDACTED}"  # still masked after oauth:


CLOSING = "Closing link: (vbot@127.0.0.1) [Access denied, bad password {}]"
"""A plain IRC server's ERROR, which may quote the password whole or in part."""
PIECES = {  # how a server may quote part of the token -> what the log shows in its place
    "prefix 24 of 30": (TOKEN[:24], REDACTED),
    "suffix": (TOKEN[-PIECE_MIN:], REDACTED),
    "middle": (TOKEN[9 : 9 + PIECE_MIN], REDACTED),
    "upper-cased": (TOKEN[3:20].upper(), REDACTED),
    "quoted": (f'"{TOKEN[:20]}"', f'"{REDACTED}"'),
    "in brackets": (f"[{TOKEN[5:25]}]", f"[{REDACTED}]"),
    "after a comma": (f"x,{TOKEN[:PIECE_MIN]};", f"x,{REDACTED};"),
    "glued to other characters": (f"password={TOKEN[:24]}...", REDACTED),  # the whole run goes
}
SHORT_PIECES = [TOKEN[: PIECE_MIN - 1], TOKEN[-PIECE_MIN + 1 :], TOKEN[9 : 8 + PIECE_MIN].upper()]


@pytest.mark.parametrize(("quoted", "shown"), PIECES.values(), ids=PIECES.keys())
def test_a_piece_of_a_secret_is_masked(quoted, shown):
    """A server quoting the first 24 characters of the password (no ``oauth:``) leaked them: any piece of
    PIECE_MIN (12) or more characters of a known secret, any case, masks the run of characters holding it."""
    formatter = RedactingFormatter([TOKEN, "hunter2"])
    assert formatted(formatter, "%s", CLOSING.format(quoted)) == CLOSING.format(shown)
    assert TOKEN[:3] not in formatted(formatter, "%s", CLOSING.format(quoted)).lower()


def test_every_piece_of_piece_min_characters_is_masked_wherever_it_starts_in_a_run():
    """Each piece of exactly PIECE_MIN characters, glued after 0 to 9 other characters (the run is looked
    up in windows every few characters: no alignment may slip between them)."""
    formatter = RedactingFormatter([TOKEN])
    for start in range(len(TOKEN) - PIECE_MIN + 1):
        for glued in range(10):
            run = "=" * glued + TOKEN[start : start + PIECE_MIN]
            assert formatted(formatter, "bad password %s.", run) == f"bad password {REDACTED}", (start, glued)


@pytest.mark.parametrize("piece", SHORT_PIECES, ids=["prefix", "suffix", "middle"])
def test_a_piece_shorter_than_piece_min_is_shown(piece):
    """11 characters of a 30-character token leave 19 unknown; ordinary words stay readable."""
    assert formatted(RedactingFormatter([TOKEN]), "%s", CLOSING.format(piece)) == CLOSING.format(piece)


def test_a_secret_shorter_than_piece_min_is_masked_only_whole():
    formatter = RedactingFormatter(["hunter2", "correcthorse1"])  # 7 and 13 characters
    line = "the hunter's hunter2; hunter23; correcthorse; orrecthorse1; correcthors"
    assert formatted(formatter, line) == f"the hunter's {REDACTED}; {REDACTED}3; {REDACTED}; {REDACTED}; correcthors"


def test_pieces_of_learned_secrets_are_masked_while_they_are_kept():
    formatter = RedactingFormatter([TOKEN], learned_kept=1)
    access, refresh = "9k2mq7x4w1v8n3b6c5z0l2j4h6g8f0", "r8t2y6u4i1o9p3a7s5d0f2g4h6j8k1l3z5x7c9v0b2n4m6q8w"
    formatter.add_secret(access)
    assert formatted(formatter, "renewed: %s", access[4:20].upper()) == f"renewed: {REDACTED}"
    formatter.add_secret(refresh)  # access is forgotten (learned_kept=1)
    assert formatted(formatter, "got %s and %s", refresh[10:40], access[4:20]) == f"got {REDACTED} and {access[4:20]}"


def test_ordinary_lines_are_left_as_they_are():
    formatter = RedactingFormatter([TOKEN, "hunter2"])
    formatter.add_secret("r8t2y6u4i1o9p3a7s5d0f2g4h6j8k1l3z5x7c9v0b2n4m6q8w")
    lines = [
        "FROM SERVER: @badge-info=;badges=moderator/1;color=#FF0000;display-name=alice;id=1c8f2d3a-1111-2222-3333-"
        "444455556666;room-id=12345678;tmi-sent-ts=1700000000000;user-id=87654321 :alice!alice@alice.tmi.twitch.tv "
        "PRIVMSG #test :hello chat, testing 0123456789 abcdefghijk https://example.com/testtoken",
        "renewed the token; it expires in 14400 s (scopes chat:read chat:edit moderator:manage:banned_users)",
        CLOSING.format("not-the-password-at-all-0123"),
    ]
    for line in lines:
        assert formatted(formatter, "%s", line) == line


_TOKEN_SLICES = st.tuples(st.integers(0, len(TOKEN)), st.integers(0, len(TOKEN)), st.booleans()).map(
    lambda cut: (TOKEN[min(cut[:2]) : max(cut[:2])].upper() if cut[2] else TOKEN[min(cut[:2]) : max(cut[:2])])
)
_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=15)
_SEPARATORS = st.sampled_from([" ", *ENDS_A_VALUE])


def _pieces_shown(text: str) -> list[str]:
    """Every window of PIECE_MIN characters of ``text`` that is a piece of TOKEN, any case."""
    windows = (text.lower()[start : start + PIECE_MIN] for start in range(len(text) - PIECE_MIN + 1))
    return [window for window in windows if window in TOKEN.lower()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_TOKEN_SLICES, _PRINTABLE, _SEPARATORS), max_size=12))
def test_no_piece_of_piece_min_characters_is_ever_shown(parts):
    """Whatever a line glues together (slices of the token in either case, printable text, separators), what
    the log shows holds no PIECE_MIN characters of the token; a line holding none is shown unchanged."""
    text = "".join(parts)
    shown = formatted(RedactingFormatter([TOKEN]), "%s", text)
    assert _pieces_shown(shown) == []
    if not _pieces_shown(text) and "oauth:" not in text.lower():
        assert shown == text


# --- TLS -------------------------------------------------------------------------------------


@contextlib.contextmanager
def tls_server_once(ca: trustme.CA):
    """A TLS server on loopback for one connection, with a certificate for 127.0.0.1 from
    ``ca``; yields its address and the bytes it received."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    received.append(tls.recv(1024))
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname(), received
    finally:
        listener.close()
        thread.join(5)


@pytest.fixture
def untrusted_tls_server():
    """A TLS server on loopback whose certificate, for 127.0.0.1, comes from a certificate
    authority that no system trusts (a throwaway one made by ``trustme``)."""
    with tls_server_once(trustme.CA()) as server:
        yield server


def test_tls_refuses_an_unverified_certificate(untrusted_tls_server):
    address, received = untrusted_tls_server
    with pytest.raises(ssl.SSLCertVerificationError):
        make_connect_factory(tls=True)(address)
    assert received == []  # nothing, so no PASS, reached the server


def test_a_private_ca_named_by_ssl_cert_file_is_trusted(tmp_path, monkeypatch):
    """A plain IRC server with a certificate from its own CA: the standard OpenSSL variable
    SSL_CERT_FILE, naming a PEM file with that CA, makes vbot trust it (issue 18 item 8)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with tls_server_once(ca) as (address, received):
        with make_connect_factory(tls=True)(address) as sock:
            sock.sendall(b"PASS secret\r\n")
        wait_until(lambda: received, message="the line over TLS")
    assert received == [b"PASS secret\r\n"]


def test_control_characters_from_chat_reach_the_log_escaped(twitch, tmp_path):
    """A chatter's ESC sequence (or a server's CR) in a DEBUG line cannot rewrite the terminal showing the log."""
    process = start_vbot(env_for(twitch, tmp_path, TOKEN), cwd=tmp_path)
    try:
        twitch.wait_for(r"^JOIN #test$", timeout=15)
        twitch.chat("#test", "alice", "hello \x1b[2J\x1b]0;owned\x07 \x85 there")
        twitch.chat("#test", "test", "!exit")  # the broadcaster of #test
    finally:
        code, output = finish(process)
    assert code == 0, output
    assert "PRIVMSG #test :hello \\x1b[2J\\x1b]0;owned\\x07 \\x85 there" in output
    assert not any(char in output for char in "\x1b\x07\x85\r")
