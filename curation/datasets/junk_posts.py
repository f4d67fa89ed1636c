"""One simulated junk post: fill a category's template, then decorate it like a real feed post.

:func:`junk_post` draws a template of the category (:mod:`.junk_claims`, :mod:`.junk_social`),
fills its slots, and adds what feeds look like: hashtags, emoji, @mentions, short links, typos,
shouting and stretched words, repeated spam. All of it is simulated (see :mod:`.junk_text`).
"""

from __future__ import annotations

import re
from random import Random
from typing import Any

from .junk_claims import (
    _CLICKBAIT,
    _CLICKBAIT_CLOSE,
    _CLICKBAIT_LONG,
    _CLICKBAIT_SLOTS,
    _CONSPIRACY,
    _CONSPIRACY_CLOSE,
    _CONSPIRACY_LONG,
    _CONSPIRACY_SLOTS,
)
from .junk_social import (
    _BRIEF,
    _BRIEF_SLOTS,
    _LIFESTYLE,
    _LIFESTYLE_SLOTS,
    _QUIZ_AFTER,
    _QUIZ_BEFORE,
    _QUIZ_SLOTS,
    _SPAM,
    _SPAM_SLOTS,
    QUIZ_LEADING,
)
from .junk_vocabulary import (
    _COMMON,
    _EMOJI,
    _mention,
)

#: The junk categories, in the order records and reports list them.
JUNK_CATEGORIES = ("conspiracy", "clickbait", "brief", "spam", "lifestyle", "quiz")
#: Share of conspiracy and clickbait posts that are long-form (30-80 words).
LONG_SHARE = 0.2

_SLOT = re.compile(r"\{(\w+)\}")
_LONG = {"conspiracy": (_CONSPIRACY_LONG, _CONSPIRACY_CLOSE), "clickbait": (_CLICKBAIT_LONG, _CLICKBAIT_CLOSE)}
_SLOTS: dict[str, dict[str, Any]] = {
    "conspiracy": {**_COMMON, **_CONSPIRACY_SLOTS},
    "clickbait": {**_COMMON, **_CLICKBAIT_SLOTS},
    "brief": {**_COMMON, **_BRIEF_SLOTS},
    "spam": {**_COMMON, **_SPAM_SLOTS},
    "lifestyle": {**_COMMON, **_LIFESTYLE_SLOTS},
    "quiz": {**_COMMON, **_QUIZ_SLOTS},
}
_TEMPLATES = {
    "conspiracy": _CONSPIRACY, "clickbait": _CLICKBAIT, "brief": _BRIEF, "spam": _SPAM, "lifestyle": _LIFESTYLE,
    "quiz": _QUIZ_BEFORE,
}
_TAGS = {
    "conspiracy": ("#wakeup", "#truth", "#doyourownresearch", "#openyoureyes", "#theyknow", "#bigpharma",
                   "#exposed", "#nwo", "#redpill", "#healthfreedom", "#questioneverything", "#factsnotfear"),
    "clickbait": ("#viral", "#shocking", "#mustwatch", "#omg", "#trending", "#fyp", "#unbelievable",
                  "#breaking", "#foryou", "#wow"),
    "brief": ("#fyp", "#relatable", "#mood", "#same", "#lol", "#foryoupage", "#meme"),
    "spam": ("#giveaway", "#sale", "#discount", "#followforfollow", "#f4f", "#crypto", "#bitcoin", "#forex",
             "#money", "#promo", "#dm", "#free", "#deal", "#l4l", "#passiveincome", "#shopnow"),
    "lifestyle": _LIFESTYLE_SLOTS["tag"],
    "quiz": ("#math", "#iqtest", "#brainteaser", "#quiz", "#genius", "#mathchallenge", "#puzzle"),
}
# per category: probability of typos, lower-casing, an elongated word, trailing emoji, hashtags, a reply @mention
_STYLE = {
    "conspiracy": (0.35, 0.25, 0.05, 0.35, 0.35, 0.10),
    "clickbait": (0.10, 0.05, 0.05, 0.45, 0.40, 0.05),
    "brief": (0.20, 0.45, 0.25, 0.30, 0.10, 0.20),
    "spam": (0.20, 0.10, 0.05, 0.35, 0.45, 0.10),
    "lifestyle": (0.20, 0.40, 0.15, 0.45, 0.40, 0.05),
    "quiz": (0.15, 0.35, 0.10, 0.25, 0.15, 0.05),
}
_SHORTHAND = {
    "you": "u", "your": "ur", "you're": "ur", "are": "r", "people": "ppl", "because": "bc", "though": "tho",
    "really": "rly", "please": "pls", "okay": "ok", "tonight": "tonite", "about": "abt", "with": "w/",
    "to": "2", "for": "4", "before": "b4", "what": "wat", "probably": "prob", "something": "smth",
    "seriously": "srsly", "thanks": "thx", "love": "luv", "the": "da", "know": "kno", "don't": "dont",
    "can't": "cant", "i'm": "im", "that's": "thats", "why": "y", "and": "&", "going": "goin",
}
_PUNCT = ".,!?;:…'\")("


def _fill(template: str, slots: dict[str, Any], rng: Random, depth: int = 0) -> str:
    """Fill every ``{slot}`` of ``template`` with an independent draw (values may hold slots too)."""

    def draw(match: re.Match[str]) -> str:
        value = slots[match.group(1)]
        if not callable(value):
            value = rng.choice(value)
        if callable(value):
            value = value(rng)
        return _fill(value, slots, rng, depth + 1) if depth < 4 and "{" in value else value

    return _SLOT.sub(draw, template)


def _typo_word(word: str, rng: Random) -> str:
    stripped = word.rstrip(_PUNCT)
    tail = word[len(stripped):]
    short = _SHORTHAND.get(stripped.lower())
    if short is not None and rng.random() < 0.7:
        return short + tail
    if len(stripped) < 4 or not stripped.isalpha():
        return word
    i = rng.randrange(1, len(stripped) - 1)
    op = rng.random()
    if op < 0.35:  # swap two neighbouring letters
        stripped = stripped[:i] + stripped[i + 1] + stripped[i] + stripped[i + 2:]
    elif op < 0.65:  # drop a letter
        stripped = stripped[:i] + stripped[i + 1:]
    elif op < 0.85:  # double a letter
        stripped = stripped[:i] + stripped[i] + stripped[i:]
    else:  # a neighbouring key
        stripped = stripped[:i] + rng.choice("qwertyuiopasdfghjklzxcvbnm") + stripped[i + 1:]
    return stripped + tail


def _typos(text: str, rng: Random, rate: float) -> str:
    """Misspell or abbreviate about ``rate`` of the plain words (never hashtags, mentions or links)."""
    words = text.split(" ")
    for k, word in enumerate(words):
        if not word or "\n" in word or word[0] in "#@$" or "/" in word or "." in word.rstrip(_PUNCT):
            continue
        if word.isascii() and rng.random() < rate:
            words[k] = _typo_word(word, rng)
    return " ".join(words)


def _elongate(text: str, rng: Random) -> str:
    words = text.split(" ")
    spots = [k for k, w in enumerate(words) if len(w) >= 2 and w.isalpha() and w.isascii() and w[-1] in "aeiouyshr"]
    if spots:
        k = rng.choice(spots)
        words[k] = words[k] + words[k][-1] * rng.randint(2, 5)
    return " ".join(words)


def _decorate(text: str, category: str, rng: Random) -> str:
    """Social-media noise: typos, lower case, elongation, emoji, hashtags, a reply @mention."""
    p_typo, p_lower, p_long, p_emoji, p_tags, p_mention = _STYLE[category]
    if rng.random() < p_typo:
        text = _typos(text, rng, rng.uniform(0.05, 0.3))
    if rng.random() < p_lower:
        text = text.lower()
    if rng.random() < p_long:
        text = _elongate(text, rng)
    if rng.random() < p_emoji:
        emoji = rng.choice(_EMOJI)
        text += " " + (emoji * rng.randint(1, 4) if rng.random() < 0.5 else
                       "".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 3))))
    if rng.random() < p_tags:
        tags = _TAGS[category]
        text += " " + " ".join(rng.choice(tags) for _ in range(rng.randint(1, 4)))
    if rng.random() < p_mention:
        text = _mention(rng) + " " + text
    return " ".join(part for part in text.split(" ") if part) if "\n" not in text else text


def _long_post(category: str, first: str, rng: Random) -> str:
    """A 30-80 word rant or teaser: the opening template, body sentences, a closing call to action."""
    slots = _SLOTS[category]
    body, close = _LONG[category]
    target = rng.randint(30, 74)
    parts = [_fill(first, slots, rng)]
    ending = _fill(rng.choice(close), slots, rng)
    order = list(range(len(body)))
    rng.shuffle(order)
    chosen: dict[int, str] = {}  # body sentences picked at random, told in their listed (story) order
    for k in order:
        words = len(parts[0].split()) + len(ending.split()) + sum(len(c.split()) for c in chosen.values())
        if words >= target:
            break
        candidate = _fill(body[k], slots, rng)
        if words + len(candidate.split()) <= 74:
            chosen[k] = candidate
    parts += [chosen[k] for k in sorted(chosen)] + [ending]
    joiner = " " if rng.random() < 0.7 else "\n"
    return joiner.join(parts)


def _repeat_spam(text: str, rng: Random) -> str:
    """Make a spam post repetitive: repeated lines, a repeated shout or a hashtag wall."""
    r = rng.random()
    if r < 0.4:
        return ("\n" if rng.random() < 0.6 else " ").join([text] * rng.randint(2, 5))
    if r < 0.7:
        shout = rng.choice(_SPAM_SLOTS["shout"])
        return text + " " + " ".join([shout] * rng.randint(3, 8))
    tags = _TAGS["spam"] + _SPAM_SLOTS["coin_tag"]
    wall = [rng.choice(tags) for _ in range(rng.randint(3, 8))]
    wall = wall * rng.randint(2, 4)
    return text + "\n" + " ".join(wall)


def junk_post(category: str, rng: Random, quiz: dict[str, Any] | None = None) -> tuple[str, str]:
    """One simulated junk post of ``category``: (template id, text).

    ``quiz`` is a TInt record (``prompt``, ``true_answer``), required for the ``quiz`` category:
    the post holds ``prompt + "ans = " + true_answer`` exactly, with bait text around it.
    """
    if category not in _TEMPLATES:
        raise ValueError(f"unknown junk category {category!r}; expected one of {', '.join(JUNK_CATEGORIES)}")
    slots, templates = _SLOTS[category], _TEMPLATES[category]
    k = rng.randrange(len(templates))
    template = f"{category}/{k:02d}"
    if category == "quiz":
        if quiz is None:
            raise ValueError("a quiz post needs a TInt record (prompt, true_answer)")
        bait = _decorate(_fill(templates[k], slots, rng), category, rng)
        problem = quiz["prompt"] + "ans = " + quiz["true_answer"]
        if rng.random() < QUIZ_LEADING:  # the problem first, the bait under it (a screenshot-style post)
            return template + "-lead", problem + "\n" + bait
        text = bait + "\n" + problem
        if rng.random() < 0.75:
            after = _fill(rng.choice(_QUIZ_AFTER), slots, rng)
            text += "\n" + (after.lower() if rng.random() < 0.3 else after)
        return template, text
    if category in _LONG and rng.random() < LONG_SHARE:
        text = _long_post(category, templates[k], rng)
        template += "-long"
    else:
        text = _fill(templates[k], slots, rng)
    text = _decorate(text, category, rng)
    if category == "spam" and rng.random() < 0.45:
        text = _repeat_spam(text, rng)
    return template, text


