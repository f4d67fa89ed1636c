"""A junk-text benchmark for the "brain rot" filter: real clean prose mixed with simulated junk posts.

Built for the junk filter and the dose-response experiment of Xing et al. 2025, "LLMs Can Get
Brain Rot!" (filters.md section 2): a tiny model is continually trained on mixtures of clean
text and junk, and a filter is judged on how well it finds the junk.

What is real and what is simulated
----------------------------------
* **Clean documents are real text.** Each one is drawn by
  :func:`~curation.datasets.contamination_sources.carrier_document` from the offline carrier
  pools of :mod:`curation.datasets.contamination_sources` (gensim's test data: the shortened
  English Wikipedia dump, the Lee news corpus, Pang & Lee review sentences and the para2para
  essays), with its paragraphs joined by a blank line. The text is not changed apart from
  ``carrier_document``'s truncation at a sentence boundary; ``source`` names the pool.
* **Junk posts are simulated.** They are generated from templates and word lists written for
  this module; no real social-media post is included. They imitate real junk (hashtags, emoji,
  @mentions, ALL-CAPS trigger words, short links such as ``bit.ly/x7Qa2``, typos and
  shorthand, repeated lines) in the six categories below, with many templates and large slot
  vocabularies per category so that a classifier cannot just learn a handful of fixed strings.
  Quiz posts embed real TInt problems (:func:`curation.datasets.tint.generate_tint`) with their
  correct answers.
* **Engagement is simulated for every document**, clean and junk: likes, shares and replies
  are heavy tailed; junk is mostly popular (likes + shares + replies above
  ``popular_threshold``, the M1 criterion) and clean text mostly not, except for an
  ``engagement_overlap`` share of each, which is swapped (M1 is imperfect in reality).

Junk categories (``JUNK_CATEGORIES``; ``CATEGORY_LABELS`` gives the reason label of each):

============ =================================================================================
conspiracy   conspiracy theories, unsupported claims, fake health claims, misinformation
clickbait    clickbait and trigger words, listicle teasers
brief        extremely brief posts without substance ("lol same", "mood", "this.")
spam         spam, promotional or repetitive text (discount codes, DM me, crypto, hashtag walls)
lifestyle    superficial lifestyle flaunting (brunch, outfits, travel, "living my best life")
quiz         answer-only quiz bait: a TInt problem line, then ``ans = <answer>``, no working; half of
             the posts open with the problem (bait text under it), half put the bait first
============ =================================================================================

Junk posts are mostly short (under 30 words); spam can be longer and repetitive, and a fifth of
conspiracy and clickbait posts are long-form rants or teasers of 30-80 words.

Record fields: ``text``, ``category`` (``clean`` or a junk category), ``is_junk``, ``likes``,
``shares``, ``replies`` (simulated), ``n_words`` (whitespace words), ``source`` (``enwiki``,
``news``, ``reviews``, ``essays`` for clean text, ``simulated`` for junk), ``template`` (the
generator template of a junk post, e.g. ``spam/07``, or ``conspiracy/12-long`` for a long-form
post opening with template 12; ``""`` for clean text: hold templates or categories out when
training a classifier on this data, or it learns the generator) and ``index`` (position in the
shuffled list).
"""

from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .contamination_sources import carrier_document, load_carriers
from .tint import TintConfigError, generate_tint
from .tint_traces import FUNCTIONS

JUNK_CATEGORIES = ("conspiracy", "clickbait", "brief", "spam", "lifestyle", "quiz")
CATEGORY_LABELS = {
    "conspiracy": "conspiracy theory, unsupported claim or misinformation",
    "clickbait": "clickbait or trigger words",
    "brief": "extremely brief, without substance",
    "spam": "spam, repetitive or promotional text",
    "lifestyle": "superficial lifestyle flaunting",
    "quiz": "answer-only quiz bait (answer without working)",
}
CLEAN = "clean"
CLEAN_TRIES = 20  # draws per clean document to land within clean_words
LONG_SHARE = 0.2  # share of conspiracy and clickbait posts that are long-form (30-80 words)
SIMULATED = "simulated"


class JunkTextConfigError(ValueError):
    """A generator setting is out of range; ``param`` names the setting (the Python name)."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


@dataclass(frozen=True)
class JunkTextConfig:
    """What to generate; validated on construction (:class:`JunkTextConfigError` names the setting).

    ``n_clean`` real documents and ``n_junk`` simulated posts; junk is spread evenly over
    ``categories`` (the remainder goes to randomly chosen categories). ``clean_words`` is the
    range of clean document lengths in words (uniform; the M1 control is long text, > 100
    tokens). Quiz posts draw TInt problems of ``quiz_functions`` with ``quiz_min_digits`` to
    ``quiz_max_digits`` digits. Exactly ``round(n_junk * engagement_overlap)`` junk posts are
    not popular and ``round(n_clean * engagement_overlap)`` clean documents are, where popular
    means likes + shares + replies > ``popular_threshold``. A clean document whose length
    (after ``carrier_document``'s truncation at a sentence boundary) falls outside
    ``clean_words`` is redrawn, up to ``CLEAN_TRIES`` times.
    """

    n_clean: int = 1000
    n_junk: int = 1000
    categories: tuple[str, ...] = JUNK_CATEGORIES
    clean_words: tuple[int, int] = (60, 160)
    quiz_functions: tuple[str, ...] = ("add", "sub")
    quiz_min_digits: int = 2
    quiz_max_digits: int = 2
    popular_threshold: int = 500
    engagement_overlap: float = 0.15

    def __post_init__(self) -> None:
        for name in ("categories", "clean_words", "quiz_functions"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise JunkTextConfigError(name, f"expected a tuple, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("n_clean", "n_junk"):
            value = getattr(self, name)
            if not (_is_int(value) and value >= 0):
                raise JunkTextConfigError(name, f"expected an integer >= 0, got {value!r}")
        if self.n_clean + self.n_junk == 0:
            raise JunkTextConfigError("n_junk", "n_clean and n_junk are both 0: nothing to generate")
        if not self.categories:
            raise JunkTextConfigError("categories", "give at least one junk category")
        unknown = [c for c in self.categories if c not in JUNK_CATEGORIES]
        if unknown:
            raise JunkTextConfigError(
                "categories",
                f"unknown category {', '.join(map(repr, unknown))}; expected some of {', '.join(JUNK_CATEGORIES)}",
            )
        if len(set(self.categories)) != len(self.categories):
            raise JunkTextConfigError("categories", "a category is listed twice")
        lo, hi = self.clean_words if len(self.clean_words) == 2 else (0, -1)
        if not (_is_int(lo) and _is_int(hi) and 1 <= lo <= hi <= 5000):
            raise JunkTextConfigError(
                "clean_words", f"expected (min, max) words with 1 <= min <= max <= 5000, got {self.clean_words!r}"
            )
        if not self.quiz_functions:
            raise JunkTextConfigError("quiz_functions", "give at least one TInt function")
        unknown = [f for f in self.quiz_functions if f not in FUNCTIONS]
        if unknown:
            raise JunkTextConfigError(
                "quiz_functions",
                f"unknown TInt function {', '.join(map(repr, unknown))}; expected some of {', '.join(FUNCTIONS)}",
            )
        if len(set(self.quiz_functions)) != len(self.quiz_functions):
            raise JunkTextConfigError("quiz_functions", "a function is listed twice")
        if not (_is_int(self.quiz_max_digits) and 1 <= self.quiz_max_digits <= 30):
            raise JunkTextConfigError("quiz_max_digits", f"expected an integer in 1..30, got {self.quiz_max_digits!r}")
        if not (_is_int(self.quiz_min_digits) and 1 <= self.quiz_min_digits <= self.quiz_max_digits):
            raise JunkTextConfigError(
                "quiz_min_digits", f"expected an integer in 1..quiz_max_digits, got {self.quiz_min_digits!r}"
            )
        if not (_is_int(self.popular_threshold) and self.popular_threshold >= 0):
            raise JunkTextConfigError(
                "popular_threshold", f"expected an integer >= 0, got {self.popular_threshold!r}"
            )
        overlap = self.engagement_overlap
        if not (isinstance(overlap, int | float) and not isinstance(overlap, bool) and 0.0 <= overlap <= 1.0):
            raise JunkTextConfigError("engagement_overlap", f"expected a share in [0, 1], got {overlap!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for run configs)."""
        return asdict(self)


# ----------------------------------------------------------------------------- shared vocabulary

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


# ----------------------------------------------------------------------------- conspiracy

_CONSPIRACY_SLOTS: dict[str, Any] = {
    "actor": (
        "the government", "big pharma", "the WHO", "the elites", "the mainstream media", "the banks",
        "the globalists", "big tech", "the FDA", "the CDC", "the billionaires", "the UN", "the deep state",
        "the food industry", "the cabal", "Silicon Valley", "the central banks", "the illuminati", "they",
        "the pharma lobby", "the weather service", "NASA", "the military", "the school system",
        "the insurance companies", "Hollywood", "the tech bros", "the oil companies",
    ),
    "thing": (
        "fluoride in the water", "chemtrails", "5G towers", "seed oils", "the vaccines", "smart meters",
        "lab-grown meat", "digital IDs", "the moon landing", "cloud seeding", "microwave ovens",
        "sunscreen", "tap water", "the flu shot", "wind turbines", "LED streetlights", "fake meat",
        "contactless cards", "grocery store bread", "GMO corn", "QR codes", "daylight saving time",
        "electric cars", "the satellites", "bluetooth earbuds", "the new money", "fortified cereal",
        "wifi routers", "the census", "artificial sweeteners", "nasal swabs", "the ice wall",
    ),
    "effect": (
        "control your mind", "make you sterile", "track everything you do", "keep you sick and paying",
        "dumb the population down", "change your DNA", "calcify your pineal gland", "make you docile",
        "give you brain fog", "shut down your immune system", "cause the headaches everyone is having",
        "lower your IQ", "make people depressed on purpose", "keep you asleep", "drain your energy",
        "shorten your life by 20 years", "make you addicted", "block your third eye",
        "make you easier to control", "rewire the brains of kids",
    ),
    "cure": (
        "lemon water", "turmeric", "apple cider vinegar", "raw garlic", "colloidal silver", "baking soda",
        "castor oil", "cold plunges", "sungazing", "raw milk", "beef tallow", "pine needle tea",
        "grounding barefoot", "a 10 day juice cleanse", "oil pulling", "crystals under your pillow",
        "celery juice", "frequency healing", "borax in your coffee", "a coffee enema", "raw liver",
        "iodine drops", "black seed oil", "fasting for 7 days", "onions in your socks",
    ),
    "disease": (
        "cancer", "diabetes", "autism", "anxiety", "heart disease", "arthritis", "the flu", "alzheimer's",
        "high blood pressure", "parasites", "acne", "depression", "asthma", "migraines", "ADHD",
        "thyroid problems", "long covid", "eczema", "insomnia", "kidney stones",
    ),
    "evidence": (
        "my uncle who works at {org}", "a nurse I know", "a leaked memo", "an old documentary they took down",
        "a guy on a podcast with 2 million views", "the patent from {year}", "a whistleblower",
        "my chiropractor", "a deleted tweet", "a screenshot my cousin sent me", "declassified files",
        "a thread that got nuked", "a retired pilot", "an ex {org} employee", "my {relative}'s doctor",
    ),
    "org": (
        "the water company", "a pharmacy", "a big hospital", "the airport", "the phone company",
        "a vaccine lab", "the DMV", "NASA", "a news station", "a search engine company", "the power plant",
        "a food factory", "the city council", "a bank",
    ),
    "hidden": (
        "the cure for {disease}", "free energy", "the real shape of the earth", "what happened in {year}",
        "the truth about {thing}", "how old the pyramids really are", "the real reason prices went up",
        "what's really in {thing}", "the real moon footage", "the tech that makes {disease} go away",
        "the second sun", "the giant skeletons", "the real death numbers",
    ),
    "wake": (
        "WAKE UP", "Do your own research.", "Open your eyes.", "Think about it.", "Connect the dots.",
        "Wake up sheeple", "Coincidence? I think NOT.", "The truth is out there.", "Question everything.",
        "Nobody is talking about this.", "Share before they delete this.", "They can't hide it forever.",
        "Stay woke.", "Research it yourself.", "Don't say nobody warned you.", "WAKE UP PEOPLE!!!",
        "Trust your gut, not the news.", "The sheep will laugh.",
    ),
    "event": (
        "moon landing", "{year} blackout", "eclipse", "last election", "pandemic", "Mars rover footage",
        "earthquake last week", "royal wedding", "halftime show", "hurricane season", "train crash",
    ),
    "detail": (
        "shadows", "flag moving", "lighting", "background extras", "timestamps", "reflection in the visor",
        "same clouds in every shot", "crisis actors", "missing stars", "weird editing at 2:14",
    ),
    "observation": (
        "everyone got sick right after {thing} went up", "the news all use the exact same words",
        "prices go up every time {actor} has a meeting", "the planes only spray on sunny days",
        "every celebrity does the same hand sign", "the birds sit on power lines to recharge",
        "nobody has ever filmed the whole earth spinning", "every {disease} case is near {thing}",
        "kids got smarter in countries that banned {thing}", "{actor} never eat what they sell us",
    ),
    "suspicious": (
        "delete the study", "pay off the scientists", "quietly change the label", "ban it in Europe",
        "patent it in {year}", "refuse to answer my email", "block the FOIA request", "fire the researcher",
    ),
    "food": ("bread", "baby formula", "chicken nuggets", "bottled water", "cereal", "school lunches",
             "coffee creamer", "ketchup", "protein bars", "salad dressing"),
    "habit": ("drinking tap water", "using sunscreen", "eating seed oils", "using a microwave",
              "sleeping next to her phone", "taking the pills", "eating bread", "using fluoride toothpaste"),
    "product": ("pills", "vaccines", "masks", "antidepressants", "insulin", "chemo", "inhalers", "boosters"),
}
_CONSPIRACY = (
    "they don't want you to know that {thing} is designed to {effect}. {wake}",
    "{actor} has been hiding {hidden} since {year}. {wake}",
    "{cure} cured my {disease} in {days} days. doctors HATE this {emoji}",
    "why is NOBODY talking about {thing}??? {wake}",
    "{evidence} confirmed it: {thing} can {effect}. {wake}",
    "FACT: {thing} can {effect}. {actor} knows. {wake}",
    "{pct}% of doctors know {cure} cures {disease} but they are paid to stay quiet",
    "ever notice how {observation}? not a coincidence. {wake}",
    "the {event} was staged. look at the {detail}. {wake}",
    "stop putting {thing} in your body. {cure} is all you need {emoji}",
    "{actor} and {actor} are working together on this. connect the dots {emoji}",
    "they're literally putting {thing} in the {food} now and ppl are ok with it??",
    "my {relative} stopped {habit} and her {disease} went away. coincidence?",
    "{thing} = poison. look it up before they scrub it {url}",
    "they banned this video for a reason {emoji} {url}",
    "if {thing} is safe why did {actor} {suspicious}?",
    "The real reason {thing} exists is to {effect}. {wake}",
    "{actor} released {disease} on purpose to sell more {product}",
    "detox from {thing} with {cure}. thank me later 🙏",
    "remember when they said {thing} was safe? yeah. {wake}",
    "the {disease} 'cure' is just {cure}. {actor} buried the research in {year}",
    "I'm not saying it's {actor}... but it's {actor}.",
    "i did the research. {thing} -> {disease}. every. single. time.",
    "name one person who had {disease} before {thing}. I'll wait.",
    "{actor} owns the patent on {disease}. Think about THAT.",
    "BREAKING (they won't report this): {thing} linked to {disease} {url}",
    "{evidence} told me {actor} will {effect_future} by {future_year}. {wake}",
    "Don't let them {effect}. Say NO to {thing} TODAY.",
    "the media won't show you this but {thing} causes {disease}. {wake}",
    "Fun fact: {cure} does more for {disease} than any of their {product}. Big pharma can't patent it.",
    "How is nobody connecting {thing} and {disease}?? I can't be the only one seeing this {emoji}",
    "{actor} is panicking because people are finding out about {thing} {emoji}",
)
_CONSPIRACY_SLOTS["effect_future"] = (
    "ban cash", "make {thing} mandatory", "put chips in every newborn", "shut down the internet",
    "lock us in 15 minute cities", "replace real food with {food}", "cancel the next election",
)
_CONSPIRACY_SLOTS["future_year"] = _num(2026, 2035)
_CONSPIRACY_LONG = (
    "I used to believe everything {actor} said until I started asking questions.",
    "{evidence} told me the truth and I haven't been the same since.",
    "Look at the numbers yourself, {disease} went up the same year {thing} came in.",
    "Of course {actor} will call it a conspiracy theory, that's what they always say.",
    "They laughed at people who warned about {thing} too.",
    "My {relative} had {disease} for years and nothing the doctors gave her worked.",
    "Then she tried {cure} for {days} days and now she's completely fine.",
    "Ask yourself who profits when you stay sick.",
    "The studies exist, they just bury them so you never see them.",
    "It's all connected: {thing}, {thing}, {actor}, the {event}.",
    "Why would {actor} {suspicious} if they had nothing to hide?",
    "Everyone I tell about {thing} goes quiet because deep down they know.",
    "Throw out your {food}, stop {habit} and start {cure} today.",
    "The {event} was just the beginning.",
    "Even {evidence} admitted it when nobody was recording.",
)
_CONSPIRACY_CLOSE = (
    "I'm done being quiet about this. {wake}", "Watch the video before it gets taken down again {url}",
    "{wake}", "{wake} {emoji}", "Share this before it disappears.", "Don't say I didn't warn you.",
    "Read the full thread here {url}", "{wake} {wake}",
)


# ----------------------------------------------------------------------------- clickbait

_CLICKBAIT_SLOTS: dict[str, Any] = {
    "celeb": (_person, _person, _person, "this former child star", "a famous 90s singer",
              "a reality TV star", "this A-list actor", "a famous chef", "this pop princess", "a TV host"),
    "subject": (
        "this dog", "a waiter", "this grandma", "a 7-year-old", "my landlord", "this teacher",
        "a flight attendant", "this cat", "a stranger", "this man", "the bride", "this farmer",
        "a janitor", "this toddler", "a hotel maid", "a delivery driver", "this nurse", "a bus driver",
        "this twin", "a pizza guy", "this mechanic", "a lifeguard", "a security guard",
    ),
    "found": (
        "found in the attic", "did at the wedding", "said to the judge", "pulled out of the lake",
        "bought with his last $20", "built in the backyard", "saw on the security camera",
        "found inside the wall", "did when nobody was watching", "wrote on the receipt",
        "discovered under the floorboards", "left in the tip jar", "caught on the doorbell cam",
    ),
    "happened": (
        "walked into the bank", "opened the old box", "took a DNA test", "refused to leave the plane",
        "called the police on the neighbours", "read the will", "lifted the rug", "checked the baby monitor",
        "looked inside the suitcase", "answered the door", "tried to pay with a coin", "went back to the store",
    ),
    "reaction": (
        "blow your mind", "leave you speechless", "make you cry", "change your life",
        "restore your faith in humanity", "make your jaw drop", "SHOCK you", "break the internet",
        "give you chills", "make you rethink everything", "leave you SHAKING",
    ),
    "listicle": (
        "celebrities who aged backwards", "foods you should never eat", "signs you're secretly a genius",
        "things your dentist won't tell you", "photos taken at the perfect moment",
        "hotels with dark secrets", "habits of self-made millionaires", "mistakes everyone makes in the shower",
        "hacks that will save you money", "actors who hated their co-stars", "places you can never visit",
        "kitchen tricks chefs hide from you", "items you should never buy at the dollar store",
        "wedding fails caught on camera", "TV couples who hated each other", "child stars who look unrecognizable",
    ),
    "trigger": (
        "SHOCKING", "BREAKING", "UNBELIEVABLE", "INSANE", "MUST SEE", "OMG", "WOW", "JAW-DROPPING",
        "EXPOSED", "GONE WRONG", "NOT CLICKBAIT", "URGENT", "WATCH", "LEAKED", "YOU NEED TO SEE THIS",
    ),
    "celeb_event": (
        "finally breaks silence on {topic}", "spotted with a mystery partner", "reveals the truth about {topic}",
        "is unrecognizable in new photos", "quits the show after {k} years", "caught on camera",
        "responds to the rumours", "admits the shocking truth", "breaks down in tears on live TV",
        "reveals what really happened on set", "files for divorce",
    ),
    "topic": ("the divorce", "the feud", "the surgery rumours", "the secret wedding", "the scandal",
              "the lawsuit", "the breakup", "the pregnancy rumours", "the weight loss", "the arrest"),
    "adj": ("weird", "simple", "bizarre", "60-second", "ancient", "forgotten", "genius", "banned", "free"),
    "goal": ("lose belly fat", "fix back pain", "sleep 8 hours", "look 10 years younger", "stop snoring",
             "whiten teeth overnight", "get rid of wrinkles", "boost your memory", "double your salary",
             "clear your skin", "pay off your mortgage"),
    "trend": ("drinking only water", "waking up at 4am", "cold showers", "quitting sugar", "walking 20k steps",
              "eating like a billionaire", "sleeping on the floor", "talking to strangers",
              "the viral TikTok diet", "no phone after 8pm", "eating only eggs", "saying yes to everything"),
    "doing": ("peeling bananas", "tying your shoes", "washing your hair", "cooking pasta", "brushing your teeth",
              "charging your phone", "folding towels", "eating oranges", "boiling eggs", "drinking water"),
    "why": ("planes are white", "hotel sheets are always white", "jeans have tiny pockets",
            "pilots can't have beards", "you never see baby pigeons", "gas stations sell milk",
            "stores play slow music", "pencils are yellow", "cruise ships don't fill the pool"),
    "relation": ("partner", "boss", "best friend", "cat", "neighbour", "coworker", "dog", "crush"),
    "secret": ("a genius", "lying to you", "secretly rich", "in love with you", "a psychopath",
               "hiding something", "smarter than you"),
    "place": ("the wedding", "the school talent show", "the airport", "the job interview", "the gender reveal",
              "the funeral", "the graduation", "the zoo", "the football game", "the birthday party"),
    "everyday": ("buy your next car", "eat another egg", "charge your phone tonight", "book your next flight",
                 "open a bank account", "drink another coffee", "sleep tonight", "throw away that receipt"),
}
_CLICKBAIT = (
    "You WON'T BELIEVE what {subject} {found}...",
    "{subject} {happened}... what happened next will {reaction}",
    "{trigger}: {celeb} {celeb_event} {emoji}",
    "{n} {listicle} (number {k} will {reaction})",
    "Doctors are STUNNED by this {adj} trick to {goal}",
    "I tried {trend} for {days} days and THIS happened {emoji}",
    "What {celeb} looks like NOW will {reaction}",
    "STOP SCROLLING!!! {n} {listicle} {emoji}",
    "You've been {doing} WRONG your whole life {emoji}",
    "The REAL reason {why} (it's not what you think)",
    "{trigger}!! {subject} {happened} and the internet can't handle it",
    "This video has {big} views and counting... watch till the end {emoji} {url}",
    "{pct}% of people don't know this {adj} trick to {goal}",
    "Everyone is talking about what {celeb} said last night {emoji}",
    "They said it was impossible. Then {subject} {happened}.",
    "Read this before you {everyday}. Seriously. {url}",
    "{n} signs your {relation} is {secret}",
    "Nobody expected THIS at {place} {emoji}",
    "{celeb}'s {relative} just EXPOSED everything {emoji}",
    "this changes EVERYTHING {emoji}",
    "{trigger} {n} {listicle} you need to see before they're deleted",
    "one {adj} trick to {goal}. banks HATE it",
    "{celeb} {celeb_event} and fans are FURIOUS",
    "wait for it... {emoji}{emoji}",
    "I can't believe this is real {emoji} {url}",
    "{subject} {happened}. I'm not crying, you're crying {emoji}",
    "Scientists finally explain why {why} {emoji}",
    "she thought it was a normal day at {place}. she was WRONG",
    "{trigger}: the {listicle} list is out and #{k} is insane",
    "Number {k} made me gasp {emoji} {n} {listicle}",
)
_CLICKBAIT_LONG = (
    "It all started when {subject} {happened}.",
    "Nobody could have predicted what came next.",
    "At first everyone thought it was a joke.",
    "Then the video hit {big} views overnight.",
    "Experts are still trying to explain it.",
    "We've rounded up {n} {listicle} and number {k} will {reaction}.",
    "{celeb} even commented on it, and the reply is priceless.",
    "The internet has been going crazy about this since {weekday}.",
    "People in the comments are losing it.",
    "And that was only the beginning.",
)
_CLICKBAIT_CLOSE = (
    "Click the link to see the full story {url}", "You'll have to see it to believe it {emoji}",
    "Trust us, you are NOT ready for this {emoji}", "Make sure you watch until the very end {url}",
    "Share this with someone who needs to see it!", "{trigger} {emoji} {url}", "Full video here 👉 {url}",
)
_CLICKBAIT_SLOTS["weekday"] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend",
                               "last night", "this morning")


# ----------------------------------------------------------------------------- brief

_BRIEF_FRAGMENTS = (
    "lol same", "mood", "this.", "ok but why", "real", "fr fr", "no bc same", "i'm screaming", "dead",
    "ratio", "W", "L take", "not me doing this", "bestie...", "it's giving", "slay", "period.", "who asked",
    "the way i", "me fr", "big mood", "crying", "yesss", "nahhh", "bruh", "sksksk", "literally me",
    "same tbh", "omg", "lmaooo", "why is this so real", "i can't", "ok and?", "bffr", "iconic", "obsessed",
    "+1", "this ^", "facts", "say less", "no way", "sheesh", "valid", "based", "mid", "cope", "pls", "help-",
    "HELP", "rip", "ong", "deadass", "lowkey", "highkey", "ate", "no thoughts", "vibes", "yikes", "oop",
    "and i oop", "chile", "girl what", "sir??", "ma'am", "hmm", "k", "ok", "wow", "wait what", "LMAO",
    "STOP", "i'm weak", "go off", "and that's on", "tea", "spill", "the audacity", "bye", "gn", "gm",
    "first", "late", "who's here in {year2}", "anyone else?", "same energy", "relatable", "true",
    "100%", "exactly", "yep", "nope", "idk", "idc", "tbh", "smh", "ikr", "wtf", "cap", "no cap",
    "on god", "bet", "nvm", "huh", "me too", "ugh", "aww", "cute", "love this", "hate this",
    "why tho", "when", "where", "big if true", "this is it", "peak", "cinema", "goat", "rent free",
    "understood the assignment", "not the", "can't relate", "felt", "I-", "...",
)
_BRIEF_SLOTS: dict[str, Any] = {
    "frag": _BRIEF_FRAGMENTS,
    "noun": ("cat", "audio", "outfit", "lighting", "eyebrows", "ending", "caption", "vibes", "music", "dog",
             "hair", "shoes", "timing", "plot twist", "accent", "face", "dance", "fit", "beat", "edit",
             "filter", "song", "third guy", "background", "transition", "voice crack", "side eye", "hat",
             "nails", "laugh", "baby", "sound", "camera work", "grandma", "last part", "zoom in"),
    "slang": ("sending me", "so real", "iconic", "unhinged", "feral", "elite", "so mid", "everything",
              "a vibe", "cursed", "too much", "giving"),
    "year2": _num(2019, 2026),
}
_BRIEF = (
    "{frag}", "{frag} {emoji}", "{frag} {frag}", "not the {noun} {emoji}", "the {noun}?? {emoji}",
    "{noun} core", "{noun} >>>", "{noun} is {slang}", "{frag} fr", "{mention} {frag}", "{emoji}{emoji}{emoji}",
    "{frag} {emoji}{emoji}", "the {noun} tho", "{frag}. {frag}.", "why is the {noun} {slang}",
    "{emoji} {frag}", "ok the {noun}", "me: {frag}", "{frag}!!", "{mention} this is u",
    "{frag} lol", "obsessed w the {noun}", "pov: {frag}", "{frag}??", "ngl {frag}",
)


# ----------------------------------------------------------------------------- spam

def _code(rng: Random) -> str:
    head = rng.choice(("SAVE", "MEGA", "VIP", "GLOW", "FREE", "BOSS", "DEAL", "LUXE", "FLASH", "SUMMER",
                       "XMAS", "BFF", "HOT", "NEW", "WIN", "GET", "EXTRA", "LOVE"))
    return head + str(rng.choice((10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 99, 2024, 2025)))


def _ticker(rng: Random) -> str:
    if rng.random() < 0.5:
        return "$" + "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(3, 5)))
    return rng.choice(("Moon", "Safe", "Baby", "Elon", "Floki", "Pepe", "Doge", "Shiba", "Rocket", "Giga")) + \
        rng.choice(("Doge", "Inu", "Coin", "Moon", "Rocket", "Swap", "Cash", "Chain", "X", "AI"))


_SPAM_SLOTS: dict[str, Any] = {
    "code": _code,
    "coin": (_ticker, _ticker, "bitcoin", "BTC", "ETH", "forex", "gold", "options", "crypto", "Solana"),
    "coin_tag": ("#crypto", "#bitcoin", "#btc", "#forex", "#eth", "#trading", "#passiveincome",
                 "#nft", "#altcoin", "#1000x", "#moon", "#hodl", "#wealth", "#money"),
    "product": (
        "detox tea", "teeth whitening kits", "phone cases", "sneakers", "lash serum", "gaming chairs",
        "hair vitamins", "waist trainers", "wireless earbuds", "LED strip lights", "skincare sets",
        "protein powder", "smart watches", "hoodies", "lip gloss", "posture correctors", "perfume dupes",
        "massage guns", "sunglasses", "gym leggings", "phone chargers", "mini projectors", "e-books",
    ),
    "shop": ("my store", "the link in bio", "our shop", "glowbox", "fitfuel", "shopnow", "dealzone", "luxedupes"),
    "service": ("promo", "collabs", "followers", "shoutouts", "signals", "coaching", "bulk orders",
                "paid partnerships", "account recovery", "custom logos", "essay help", "likes", "verified badges"),
    "platform": ("Telegram", "WhatsApp", "Discord", "Signal", "Snapchat", "my VIP group", "my close friends"),
    "money": _money(800, 48000),
    "money2": _money(5, 99),
    "word": ("START", "MONEY", "INFO", "YES", "RICH", "GO", "FREEDOM", "WIN"),
    "prize": ("$1000 gift card", "new iPhone", "free cruise", "PS5", "$500 cash prize", "luxury watch"),
    "phone": lambda rng: "+1 " + "".join(rng.choice(string.digits) for _ in range(3)) + " " +
    "".join(rng.choice(string.digits) for _ in range(3)) + " " + "".join(rng.choice(string.digits) for _ in range(4)),
    "shout": ("BUY NOW", "LIMITED STOCK", "DON'T MISS OUT", "FREE SHIPPING", "ACT FAST", "CLICK THE LINK",
              "DM ME", "FOLLOW BACK", "100% LEGIT", "SALE SALE SALE", "LAST CHANCE"),
}
_SPAM = (
    "🔥 {pct}% OFF {product} with code {code} 🔥 {url}",
    "DM me for {service} 📩",
    "I made {money} in {days} days trading {coin}. DM me to learn how 💰",
    "Join my {platform} for FREE {coin} signals 📈📈 {url}",
    "FREE {product} giveaway!! Like, RT and tag 3 friends 🎁 #giveaway",
    "follow me and i follow back 100% {emoji}",
    "check my bio!! 💋 {url}",
    "Limited time only!!! {product} just {money2} {url} {shout}",
    "{coin} to the moon 🚀🚀🚀 {coin_tag} {coin_tag} {coin_tag}",
    "Earn {money}/week from home, no experience needed. DM '{word}' to start",
    "Congratulations! You have been selected to receive a {prize}. Claim here: {url}",
    "Hey {mention} we love your content! DM us to become a brand ambassador 💕",
    "Use my code {code} for {pct}% off at {shop} 💖 {url}",
    "NEW DROP!! {product} restocked, only {k} left!!! {url}",
    "looking for {service}? we got u. whatsapp {phone}",
    "Stop working 9-5! Financial freedom is one click away {url}",
    "Buy {big} followers for {money2} 💯 real & fast {url}",
    "Flash sale ⚡ {product} {pct}% off ⚡ ends tonight ⚡ {url}",
    "sub to my channel pls i post every day 🙏🙏 {url}",
    "Want passive income? My mentor {mention} changed my life. Send him a message 🙏",
    "{shout}!!! {product} {pct}% OFF {shout}!!!",
    "invested {money2} in {coin} and now I have {money}. ask me how {emoji}",
    "{mention} {mention} {mention} check this out {url}",
    "100% legit {service}, payment after delivery. {platform}: {phone}",
    "I'm giving away {money} to the first {k} people who follow me and {mention} {emoji}",
    "Your account has been flagged. Verify now to avoid suspension: {url}",
    "wholesale {product} available, min order {k} pcs, DM for price list",
    "{coin} presale is LIVE 🚀 get in before it's too late {url} {coin_tag}",
)


# ----------------------------------------------------------------------------- lifestyle

_LIFESTYLE_SLOTS: dict[str, Any] = {
    "brand": ("Gucci", "Prada", "Chanel", "Louis V", "Dior", "Balenciaga", "Cartier", "Rolex", "Hermès",
              "Lululemon", "Aritzia", "Skims", "Off-White", "Moncler", "Bottega", "Celine", "Miu Miu",
              "YSL", "Van Cleef", "Loewe", "Jacquemus", "Golden Goose", "Alo", "Fendi", "Valentino"),
    "item": ("bag", "heels", "sunnies", "watch", "tracksuit", "dress", "set", "sneakers", "blazer", "belt",
             "bracelet", "slides", "puffer", "mini skirt", "clutch", "earrings", "bikini", "loafers", "coat"),
    "destination": ("Bali", "Mykonos", "Dubai", "Tulum", "Santorini", "the Amalfi coast", "the Maldives",
                    "Ibiza", "Cabo", "St Barts", "Aspen", "Paris", "Monaco", "Lake Como", "Capri", "Miami",
                    "Positano", "Marrakech", "Bora Bora", "Saint-Tropez", "Tokyo", "Cannes", "Lisbon"),
    "meal": ("avocado toast", "acai bowl", "oat milk latte", "iced matcha", "bottomless mimosas", "truffle fries",
             "oysters", "eggs benny", "smoothie bowl", "caviar bumps", "omakase", "pink pancakes",
             "lavender latte", "wagyu sliders", "rose and burrata", "gold leaf dessert", "cold pressed juice"),
    "venue": ("the rooftop", "the beach club", "my fave cafe", "the hotel pool", "the spa", "the members club",
              "brunch spot", "the marina", "the penthouse", "the new place downtown", "the villa"),
    "activity": ("pilates", "hot yoga", "journaling", "a face mask", "a sound bath", "a 10k walk",
                 "cold plunge", "lymphatic massage", "meditation", "a blowout", "nails done", "tennis",
                 "sauna", "reformer class", "a shopping spree", "red light therapy"),
    "drink": ("a spritz", "champagne", "an espresso martini", "rose", "a coconut", "a matcha latte",
              "a green juice", "a margarita", "prosecco"),
    "time": ("golden hour", "sunset", "sunrise", "brunch o'clock", "rooftop season", "summer"),
    "day": ("sunday", "saturday", "friday", "monday", "weekend", "day off"),
    "hotel": ("the Four Seasons", "the Ritz", "an overwater villa", "the Aman", "the Bulgari", "a private villa"),
    "car": ("G wagon", "Range Rover", "Porsche", "Tesla", "Lambo", "Bentley"),
    "tag": ("#blessed", "#livingmybestlife", "#travelgram", "#wanderlust", "#luxurylife", "#ootd", "#selfcare",
            "#softlife", "#thatgirl", "#grateful", "#brunchgoals", "#jetsetter", "#richvibes", "#goodvibesonly"),
}
_LIFESTYLE = (
    "{meal} at {venue} ✨ living my best life {tag}",
    "new {brand} {item} who dis 💅",
    "{destination} never disappoints {emoji}",
    "sunday reset: {activity}, {activity} and {meal} 🕯️",
    "outfit of the day: {brand} {item}, {brand} {item}, {brand} {item} #ootd",
    "just landed in {destination} ✈️ {tag}",
    "5am club 💪 {activity} then {meal}. discipline = freedom",
    "treat yourself 💸 {brand} {item} finally mine",
    "{time} in {destination} hits different {emoji}",
    "yacht day with the girls 🛥️ {destination} {tag}",
    "another day another {meal} {emoji}",
    "when the {meal} matches the {item} 💕",
    "booked {k} nights at {hotel} bc why not {emoji}",
    "{activity} + {meal} + {activity} = perfect {day}",
    "main character energy in {destination} ✨",
    "can't believe this is my life 🥹 {destination} {tag}",
    "rate my {item} 1-10 {emoji} ({brand} obviously)",
    "pov: you're sipping {drink} by the pool in {destination}",
    "first class > everything ✈️🥂 {tag}",
    "manifested this {brand} {item} and it came true ✨ #manifestation",
    "my {day} routine: {activity}, {meal}, {activity}, repeat",
    "soft life only 🌸 {meal} at {venue}",
    "new car who dis 🚗 {car} {tag}",
    "{day} vibes: {drink} in hand, {destination} views",
    "birthday week in {destination} 🎂✨ {tag}",
    "honestly so grateful for this life 🙏 {emoji}",
    "life is short, buy the {item} 💳 {tag}",
    "hotel robe, {drink}, {destination}. no notes.",
    "{drink} for breakfast bc I'm on vacation {emoji}",
    "matching {brand} sets w my bestie {mention} 👯‍♀️",
    "back in {destination} where I belong {emoji} {tag}",
    "that {time} glow {emoji} wearing {brand} head to toe",
)


# ----------------------------------------------------------------------------- quiz

#: Share of quiz posts that open with the problem (the rest put bait text first).
QUIZ_LEADING = 0.5
_QUIZ_SLOTS: dict[str, Any] = {
    "secs": lambda rng: str(rng.choice((3, 5, 10, 15, 20, 30))),
    "grade": ("3rd", "4th", "5th", "6th", "7th"),
}
_QUIZ_BEFORE = (
    "only {pct_small}% get this right {emoji}",
    "can you solve this without a calculator? 🧠",
    "{k} out of 10 people get this WRONG",
    "IQ TEST: {pct_small}% fail this one",
    "my {relative} got this wrong lol",
    "bet you can't do this in {secs} seconds ⏱️",
    "math teachers HATE this one",
    "only geniuses get this 🤓",
    "prove you're smarter than a {grade} grader 👇",
    "quick maths time {emoji}",
    "stop scrolling and solve this 🛑",
    "the internet is divided over this one 😤",
    "no calculator. no cheating. go.",
    "easy? think again 🤔",
    "day {k} of posting a math problem until I go viral",
    "i bet {pct_small}% of you can't solve this",
    "this broke my brain ngl {emoji}",
    "{mention} you said this was easy??",
    "solve it in your head 👇",
    "GENIUS TEST {emoji}",
)
_QUIZ_AFTER = (
    "like if you got it #genius", "comment your time ⏱️", "tag someone who can't do this 😂",
    "did you get it? 🤔 #mathchallenge", "share if you got it right ✅", "follow for more brain teasers 🧠",
    "told you it was easy 😎", "drop a 🔥 if you got it", "be honest 👀", "#iqtest #brainteaser",
    "{k}k people got this wrong", "retweet if u got it first try", "too easy {emoji}", "#math #quiz #smart",
    "who else got it in {secs} seconds?", "part {k} tomorrow 👀",
)


# ----------------------------------------------------------------------------- text machinery

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


# ----------------------------------------------------------------------------- engagement


def _engagement(n: int, popular: np.ndarray, threshold: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) likes, shares, replies: heavy tailed, total > threshold exactly where ``popular``."""
    totals = np.empty(n, dtype=np.int64)
    n_pop = int(popular.sum())
    # popular: threshold + a Pareto tail (a few posts go viral with millions of interactions)
    scale = max(threshold, 50)
    tail = scale * rng.pareto(1.2, size=n_pop)
    totals[popular] = threshold + 1 + np.minimum(tail, 5e7).astype(np.int64)
    # not popular: log-normal (median ~12), redrawn above the threshold
    quiet = rng.lognormal(math.log(12), 1.3, size=n - n_pop)
    for _ in range(100):
        over = quiet > threshold
        if not over.any():
            break
        quiet[over] = rng.lognormal(math.log(12), 1.3, size=int(over.sum()))
    totals[~popular] = np.minimum(np.floor(quiet), threshold).astype(np.int64)
    shares = rng.dirichlet((8.0, 2.0, 1.5), size=n)  # mostly likes, then shares, then replies
    return rng.multinomial(totals, shares).astype(np.int64) if n else np.zeros((0, 3), dtype=np.int64)


# ----------------------------------------------------------------------------- generator


def _quiz_problems(cfg: JunkTextConfig, n: int, seed: int, exclude_prompts: Iterable[str]) -> list[dict]:
    if n == 0:
        return []
    kwargs = dict(seed=seed, functions=cfg.quiz_functions, min_digits=cfg.quiz_min_digits,
                  max_digits=cfg.quiz_max_digits, exclude_prompts=tuple(exclude_prompts))
    try:
        return generate_tint(n, **kwargs)
    except TintConfigError as exc:  # more quiz posts than distinct problems: allow repeats
        if exc.param != "n":
            raise
        return generate_tint(n, unique=False, **kwargs)


def generate_junk_text(
    cfg: JunkTextConfig = JunkTextConfig(), *, seed: int = 0, exclude_prompts: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Generate ``cfg.n_clean`` real documents and ``cfg.n_junk`` simulated junk posts, shuffled.

    Deterministic by ``seed``; clean documents, junk posts, engagement and the shuffle use
    separate random streams derived from it, so the clean documents do not depend on
    ``n_junk``. Quiz problems never have a prompt in ``exclude_prompts`` (pass the prompts of
    a TInt test set so that quiz bait does not leak its answers). See the module docstring for
    the record fields.
    """
    if not isinstance(cfg, JunkTextConfig):
        raise TypeError(f"cfg: expected a JunkTextConfig, got {type(cfg).__name__}")
    if not _is_int(seed):
        raise JunkTextConfigError("seed", f"expected an integer, got {seed!r}")
    seed = int(seed)
    records: list[dict[str, Any]] = []

    clean_rng = Random(f"junk-text:{seed}:clean")
    pools = load_carriers() if cfg.n_clean else None
    lo, hi = cfg.clean_words
    for _ in range(cfg.n_clean):
        for _ in range(CLEAN_TRIES):  # truncation at a sentence boundary can miss the range: redraw
            source, paragraphs = carrier_document(pools, clean_rng, clean_rng.randint(lo, hi))
            text = "\n\n".join(p for p in paragraphs if p)
            if lo <= len(text.split()) <= hi:
                break
        records.append(_record(text, CLEAN, source, ""))

    junk_rng = Random(f"junk-text:{seed}:junk")
    k = len(cfg.categories)
    counts = [cfg.n_junk // k] * k
    for j in junk_rng.sample(range(k), cfg.n_junk % k):
        counts[j] += 1
    categories = [c for c, m in zip(cfg.categories, counts, strict=True) for _ in range(m)]
    junk_rng.shuffle(categories)
    quizzes = iter(_quiz_problems(cfg, categories.count("quiz"), junk_rng.randrange(2**32), exclude_prompts))
    for category in categories:
        template, text = junk_post(category, junk_rng, next(quizzes) if category == "quiz" else None)
        records.append(_record(text, category, SIMULATED, template))

    np_rng = np.random.default_rng([seed, 7])
    is_junk = np.array([r["is_junk"] for r in records], dtype=bool)
    popular = is_junk.copy()
    for mask in (is_junk, ~is_junk):
        where = np.flatnonzero(mask)
        swap = np_rng.choice(where, size=round(len(where) * cfg.engagement_overlap), replace=False)
        popular[swap] = ~popular[swap]
    counts_3 = _engagement(len(records), popular, cfg.popular_threshold, np_rng)
    for rec, (likes, shares, replies) in zip(records, counts_3.tolist(), strict=True):
        rec.update(likes=int(likes), shares=int(shares), replies=int(replies))

    Random(f"junk-text:{seed}:shuffle").shuffle(records)
    for index, rec in enumerate(records):
        rec["index"] = index
    return records


def _record(text: str, category: str, source: str, template: str) -> dict[str, Any]:
    return {
        "text": text, "category": category, "is_junk": category != CLEAN, "likes": 0, "shares": 0, "replies": 0,
        "n_words": len(text.split()), "source": source, "template": template, "index": -1,
    }


# ----------------------------------------------------------------------------- output


JUNK_SCHEMA = pa.schema([
    ("text", pa.string()), ("category", pa.string()), ("is_junk", pa.bool_()), ("likes", pa.int64()),
    ("shares", pa.int64()), ("replies", pa.int64()), ("n_words", pa.int64()), ("source", pa.string()),
    ("template", pa.string()), ("index", pa.int64()),
])


def junk_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table with fixed column types (:data:`JUNK_SCHEMA`)."""
    return pa.Table.from_pylist(list(records), schema=JUNK_SCHEMA)


def write_junk_parquet(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write records as a Parquet file with fixed column types, atomically; returns the path.

    Written to a temporary file in the same folder, flushed to disk (fsync), then renamed over
    ``path``, so a reader never sees a half-written file.
    """
    path = Path(path)
    table = junk_table(records)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename durable too (best effort: not every platform can open a folder)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def summarize_junk(records: Sequence[dict[str, Any]], popular_threshold: int = 500) -> dict[str, Any]:
    """Counts per category, mean words per category and share popular per category.

    Returns ``{"n", "junk_ratio", "count", "mean_words", "share_popular"}``; the last three map
    category (``clean`` first, then the junk categories in order) to a value. Popular means
    likes + shares + replies > ``popular_threshold`` (pass the config's threshold).
    """
    order = [CLEAN, *JUNK_CATEGORIES]
    seen = {r["category"] for r in records}
    cats = [c for c in order if c in seen] + sorted(seen - set(order))
    count = {c: 0 for c in cats}
    words = {c: 0 for c in cats}
    pop = {c: 0 for c in cats}
    for r in records:
        c = r["category"]
        count[c] += 1
        words[c] += r["n_words"]
        pop[c] += (r["likes"] + r["shares"] + r["replies"]) > popular_threshold
    return {
        "n": len(records),
        "junk_ratio": sum(bool(r["is_junk"]) for r in records) / len(records) if records else 0.0,
        "count": count,
        "mean_words": {c: words[c] / count[c] for c in cats},
        "share_popular": {c: pop[c] / count[c] for c in cats},
    }
