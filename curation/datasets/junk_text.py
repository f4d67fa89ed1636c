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
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .contamination_sources import carrier_document, load_carriers
from .junk_posts import JUNK_CATEGORIES, junk_post
from .tint import TintConfigError, generate_tint
from .tint_traces import FUNCTIONS

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
