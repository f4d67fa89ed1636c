"""Shared vocabulary of the simulated junk posts: emoji, handles, links, names, numbers and common slots.

Every junk category's templates (:mod:`.junk_claims`, :mod:`.junk_social`) fill ``{slot}``s from
these word lists and small drawing functions; all of it is simulated (see :mod:`.junk_text`).
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from random import Random
from typing import Any

_EMOJI = (
    "😂", "🤣", "😭", "💀", "🔥", "✨", "💯", "🙏", "😍", "🥰", "😳", "😱", "🤯", "👀", "🙄", "😤",
    "🥹", "😎", "🤔", "🤡", "💅", "👏", "🙌", "💪", "🚀", "💰", "💸", "📈", "🎉", "🥂", "🌴", "☀️",
    "🌸", "💖", "💕", "❤️", "🖤", "⚠️", "‼️", "❗", "👇", "👉", "🧠", "🤓", "😩", "🫠", "🫶", "🤌",
    "😬", "😈", "🐸", "🍑", "🌈", "⭐", "🤑", "😏", "🥴", "😴", "🧐", "🙃",
)
_HANDLE_A = (
    "jess", "mike", "crypto", "daily", "real", "its", "the", "official", "lil", "big", "bella", "tay",
    "josh", "queen", "king", "vibes", "mama", "team", "sam", "alex", "nina", "lola", "max", "zoe", "kai",
    "leo", "mia", "ash", "jay", "brook", "tyler", "chloe", "ryan", "dani", "maddie", "chris", "em", "noah",
    "sasha", "marco", "kenji", "priya", "omar", "lena", "nico", "ava", "jordan", "riley", "skye", "trent",
)
_HANDLE_B = (
    "xo", "official", "vibes", "daily", "hq", "tv", "fit", "eats", "travels", "life", "world", "nation",
    "gang", "irl", "fan", "stan", "updates", "news", "trades", "fx", "wins", "szn", "clips", "memes",
    "babe", "boss", "coach", "mindset", "luxe", "glow", "styles", "gains", "truth", "speaks", "lol",
)
_URL_HOSTS = (
    "bit.ly/", "tinyurl.com/", "t.co/", "linktr.ee/", "cutt.ly/", "rb.gy/", "is.gd/", "shorturl.at/",
    "ow.ly/", "goo.su/", "tiny.cc/", "bit.do/",
)
_ALNUM = string.ascii_letters + string.digits
_FIRST = (
    "Kayla", "Brandon", "Tiffany", "Derek", "Jasmine", "Tyler", "Brianna", "Chad", "Mariah", "Logan",
    "Savannah", "Trevor", "Destiny", "Austin", "Kendra", "Blake", "Sienna", "Colton", "Paige", "Jaxon",
    "Ariana", "Dominic", "Harper", "Reese", "Camila", "Dallas", "Monique", "Preston", "Selena", "Wyatt",
)
_LAST = (
    "Brooks", "Vance", "Sterling", "Monroe", "Delgado", "Whitfield", "Hart", "Carrington", "Blaine",
    "Fox", "Lockhart", "Rivers", "Santos", "Kingsley", "Mercer", "Ashford", "Quinn", "Valentine", "Cruz",
    "Holloway", "Sinclair", "Reyes", "Langley", "Park", "Donovan", "Wilde", "Chase", "Moreno",
)


def _mention(rng: Random) -> str:
    digits = str(rng.randint(1, 999)) if rng.random() < 0.4 else ""
    return "@" + rng.choice(_HANDLE_A) + rng.choice(("", "_", ".", "")) + rng.choice(_HANDLE_B) + digits


def _url(rng: Random) -> str:
    code = "".join(rng.choice(_ALNUM) for _ in range(rng.randint(4, 8)))
    return ("https://" if rng.random() < 0.2 else "") + rng.choice(_URL_HOSTS) + code


def _person(rng: Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _num(lo: int, hi: int) -> Callable[[Random], str]:
    return lambda rng: str(rng.randint(lo, hi))


def _money(lo: int, hi: int) -> Callable[[Random], str]:
    def draw(rng: Random) -> str:
        value = rng.randint(lo, hi)
        value = round(value, -len(str(value)) + 2) if value >= 1000 and rng.random() < 0.6 else value
        return f"${value:,}" if rng.random() < 0.8 else f"{value:,} USD"

    return draw


def _big(rng: Random) -> str:
    value = int(math.exp(rng.uniform(math.log(1e4), math.log(5e7))))
    if rng.random() < 0.5:
        return f"{value / 1e6:.1f}M" if value >= 1e6 else f"{value // 1000}K"
    return f"{value:,}"


_COMMON: dict[str, Any] = {
    "emoji": _EMOJI,
    "mention": _mention,
    "url": _url,
    "person": _person,
    "n": _num(3, 25),
    "k": _num(2, 15),
    "days": _num(3, 60),
    "pct": lambda rng: str(rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90))),
    "pct_small": lambda rng: str(rng.choice((1, 2, 3, 4, 5, 7, 8, 9, 10, 12))),
    "year": _num(1947, 2019),
    "big": _big,
    "relative": ("mom", "dad", "aunt", "uncle", "grandma", "grandpa", "cousin", "sister", "brother",
                 "neighbour", "coworker", "boss", "roommate", "bestie", "ex", "teacher"),
}


