"""vbot: a Twitch chat bot built on the ``irc`` library."""

__version__ = "0.3.0"
