"""The yardstick: a bare ``irc.client.SimpleIRCClient`` that joins one channel and answers ``!version``.

Run as ``python bare.py HOST PORT NICK PASSWORD CHANNEL``; it exits when the server closes the
connection, or on SIGTERM.
"""

import sys

import irc.client


class Bare(irc.client.SimpleIRCClient):
    def __init__(self, channel: str):
        super().__init__()
        self.channel = channel

    def on_welcome(self, connection, event):
        connection.join(self.channel)

    def on_pubmsg(self, connection, event):
        if event.arguments[0] == "!version":
            connection.privmsg(event.target, "Version: bare")

    def on_disconnect(self, connection, event):
        raise SystemExit(0)


def main() -> None:
    host, port, nick, password, channel = sys.argv[1:6]
    client = Bare(channel)
    client.connect(host, int(port), nick, password)
    client.reactor.process_forever(timeout=0.2)


if __name__ == "__main__":
    main()
