"""Realistic Twitch chat lines, generated from a seed before any timing starts.

The shapes follow the samples in Twitch's "IRC Concepts" docs: PRIVMSG with the full tag set
(badge-info, badges, color, display-name, emotes, first-msg, flags, id, mod, returning-chatter,
room-id, subscriber, tmi-sent-ts, turbo, user-id, user-type), and JOIN/PART lines from the
``twitch.tv/membership`` capability.
"""

from __future__ import annotations

import dataclasses
import random

ROOM_ID = "713936733"
EMOTES = {  # Twitch global emotes: name -> id
    "Kappa": "25", "LUL": "425618", "PogChamp": "305954156", "Kreygasm": "41", "BibleThump": "86",
    "4Head": "354", "ResidentSleeper": "245", "NotLikeThis": "58765", "SeemsGood": "64138",
    "HeyGuys": "30259",
}
WORDS = (
    "gg wp lol that was close nice play what is going on chat hello everyone first time here "
    "love the stream can you play that song again how long have you been streaming today "
    "no way clip it mods please this game is so hard again one more try let's go "
    "pog omegalul KEKW monkaS ありがとう 😂 🔥 sheesh ez poggers w rizz holy"
).split()
OTHER_COMMANDS = ("!points", "!drop", "!hydrate", "!lurk", "!so", "!sr", "!discord")
"""Commands for other bots, common in real chat; none of them is a vbot command."""
COLORS = ("#FF0000", "#0000FF", "#008000", "#B22222", "#FF7F50", "#9ACD32", "#FF4500", "#2E8B57",
          "#DAA520", "#D2691E", "#5F9EA0", "#1E90FF", "#FF69B4", "#8A2BE2", "#00FF7F", "")


@dataclasses.dataclass(frozen=True)
class User:
    """One chatter: login (the nick), and the tags that stay the same on each of their lines."""

    login: str
    head: str
    """``badge-info=...;badges=...;color=...;display-name=...;emotes=`` up to the emotes value."""
    tail: str
    """``mod=...;returning-chatter=0;room-id=...;...;user-type=...`` after the id."""

    @property
    def source(self) -> str:
        return f"{self.login}!{self.login}@{self.login}.tmi.twitch.tv"


def make_user(rng: random.Random, number: int, role: str | None = None) -> User:
    """A chatter with a unique login; ``role`` forces ``broadcaster``, ``moderator`` or a plain viewer."""
    stem = rng.choice(("xx", "the", "real", "not", "its", "mr", "lil", "big", "")) + \
        rng.choice(("gamer", "pixel", "shadow", "wolf", "kitty", "ninja", "potato", "dragon", "frost"))
    login = f"{stem}{rng.choice(('_', ''))}{number}"[:25]
    display = login.capitalize() if rng.random() < 0.6 else login
    roll = rng.random() if role is None else 0.0
    badges, badge_info, mod, subscriber, user_type, vip = "", "", "0", "0", "", False
    if role == "broadcaster":
        badges = "broadcaster/1"
    elif role == "moderator" or (role is None and roll < 0.02):
        badges, mod, user_type = "moderator/1", "1", "mod"
    elif roll < 0.03:
        badges, vip = "vip/1", True
    if role is None and rng.random() < 0.35:
        months = rng.randint(1, 60)
        tier = min(months // 3 * 3, 48)
        badge_info = f"subscriber/{months}"
        badges = ",".join(filter(None, (badges, f"subscriber/{tier}" if tier else "subscriber/0")))
        subscriber = "1"
    if role is None and rng.random() < 0.1:
        badges = ",".join(filter(None, (badges, rng.choice(("premium/1", "glhf-pledge/1", "sub-gifter/5")))))
    user_id = ROOM_ID if role == "broadcaster" else str(100000000 + number * 7919 % 900000000)
    color = rng.choice(COLORS)
    head = f"badge-info={badge_info};badges={badges};color={color};display-name={display};emotes="
    tail = (f"mod={mod};returning-chatter=0;room-id={ROOM_ID};subscriber={subscriber};"
            "tmi-sent-ts={ts};turbo=0;" f"user-id={user_id};user-type={user_type}" + (";vip=1" if vip else ""))
    return User(login, head, tail)


def make_users(rng: random.Random, count: int, first: int = 0) -> list[User]:
    return [make_user(rng, first + number) for number in range(count)]


def message_text(rng: random.Random) -> tuple[str, str]:
    """A chat message and its ``emotes`` tag value (code-point positions, as Twitch gives them)."""
    if rng.random() < 0.01:
        return rng.choice(OTHER_COMMANDS), ""
    words, positions, at = [], {}, 0
    for _ in range(rng.choice((1, 2, 3, 4, 5, 6, 8, 10, 14, 20))):
        if rng.random() < 0.15:
            word = rng.choice(tuple(EMOTES))
            positions.setdefault(EMOTES[word], []).append(f"{at}-{at + len(word) - 1}")
        else:
            word = rng.choice(WORDS)
        words.append(word)
        at += len(word) + 1
    emotes = "/".join(f"{emote}:{','.join(spans)}" for emote, spans in positions.items())
    return " ".join(words), emotes


def privmsg(rng: random.Random, user: User, channel: str, text: str, emotes: str, ts: int,
            first_msg: bool = False) -> str:
    message_id = (f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
                  f"{0x8000 | rng.getrandbits(14):04x}-{rng.getrandbits(48):012x}")
    return (f"@{user.head}{emotes};first-msg={int(first_msg)};flags=;id={message_id};"
            f"{user.tail.replace('{ts}', str(ts), 1)} :{user.source} PRIVMSG {channel} :{text}")


def join(login: str, channel: str) -> str:
    return f":{login}!{login}@{login}.tmi.twitch.tv JOIN {channel}"


def part(login: str, channel: str) -> str:
    return f":{login}!{login}@{login}.tmi.twitch.tv PART {channel}"


class ChatStream:
    """An endless, reproducible stream of chat lines for one channel.

    About 92% PRIVMSG from ``users`` chatters, 8% JOIN/PART; a quarter of the PARTs are of
    users never seen before.
    """

    def __init__(self, channel: str, users: int = 5000, seed: int = 4, membership: float = 0.08):
        self.channel = channel
        self.rng = random.Random(seed)
        self.users = make_users(self.rng, users)
        self.membership = membership
        self.ts = 1_700_000_000_000
        self.present: list[str] = []
        self.spoken: set[str] = set()
        self.strangers = 0

    def line(self) -> str:
        rng = self.rng
        self.ts += rng.randint(0, 3)
        if rng.random() < self.membership:
            return self._membership()
        user = rng.choice(self.users)
        text, emotes = message_text(rng)
        first = user.login not in self.spoken
        self.spoken.add(user.login)
        return privmsg(rng, user, self.channel, text, emotes, self.ts, first)

    def _membership(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            self.strangers += 1
            return part(f"ghost_{self.strangers}", self.channel)  # a PART of a user never seen
        if roll < 0.5 and self.present:
            index = rng.randrange(len(self.present))
            self.present[index], self.present[-1] = self.present[-1], self.present[index]
            return part(self.present.pop(), self.channel)
        login = rng.choice(self.users).login
        self.present.append(login)
        return join(login, self.channel)

    def lines(self, count: int) -> list[str]:
        return [self.line() for _ in range(count)]


def encode(lines: list[str]) -> bytes:
    """Lines as the server sends them: UTF-8, each ending in CR LF."""
    return "".join(line + "\r\n" for line in lines).encode()
