"""Smoke: the bot answers !version on ngircd and on the scripted Twitch server."""

from tests.support import BotThread, IrcClient, TOKEN, make_config


def test_version_on_ngircd(ngircd):
    bot = BotThread(make_config(ngircd.port)).start()
    try:
        alice = IrcClient(ngircd.port, "alice", f"oauth:{TOKEN}")
        alice.join("#test")
        from tests.support import wait_until
        wait_until(lambda: bot.bot.viewer_count("#test") == 1)
        start = alice.say("#test", "!version")
        assert alice.wait_for_reply("#test", "Version: .*", start).startswith("Version: ")
    finally:
        assert bot.stop() == 0


def test_version_on_twitch(twitch):
    bot = BotThread(make_config(twitch.port)).start()
    try:
        twitch.wait_for(r"^JOIN #test$")
        twitch.chat("#test", "ronni", "!version", "badges=;mod=0")
        twitch.wait_for(r"^PRIVMSG #test :Version: ")
        assert twitch.received[:4] == ["CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
                                       f"PASS oauth:{TOKEN}", "NICK vbot", "USER vbot 0 * :vbot"]
    finally:
        assert bot.stop() == 0
