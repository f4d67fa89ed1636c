"""M1 junk evidence, engagement degree (Xing et al. 2025, "LLMs Can Get Brain Rot!").

The paper's M1 split calls a post junk when it is *short* (fewer than 30 tokens) and *popular*
(likes + retweets + replies above 500), and found popularity predicted the damage to reasoning
better than length. :class:`EngagementFilter` applies that rule to a dataset with popularity
fields (``likes``, ``shares``, ``replies``... summed) and a length (``n_words``, or the
whitespace word count of ``text``). Its flags are the paper's rule; its score, for ranking the
samples (larger = more junk-like), is the mean of the popularity and shortness rank percentiles
(:func:`engagement_scores`), so two posts that both pass or both fail the rule are still ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

import stores

from ..base import Evidence, Filter, Flags, rank_percentile

#: Popularity fields looked for when none are named, in this order.
POPULARITY_FIELDS = ("likes", "shares", "replies", "retweets", "upvotes", "comments")
#: The paper's thresholds: short = fewer than 30 words, popular = popularity above 500.
MAX_WORDS = 30
MIN_POPULARITY = 500


def sample_texts(df: pl.DataFrame, dataset: str) -> list[str]:
    """The text of each sample: ``text``, else ``prompt`` + ``completion`` (nulls read as empty).

    Shared by the junk evidences so they all read a dataset the same way.
    """
    if "text" in df.columns:
        return df["text"].cast(pl.String).fill_null("").to_list()
    if "completion" in df.columns:
        prompts = df["prompt"].cast(pl.String).fill_null("").to_list() if "prompt" in df.columns else [""] * df.height
        return [p + c for p, c in zip(prompts, df["completion"].cast(pl.String).fill_null("").to_list(), strict=True)]
    raise ValueError(f"dataset {dataset!r} has neither a text nor a prompt/completion field")


def dataset_fields(df: pl.DataFrame) -> list[str]:
    """A dataset's own fields (its samples' columns less the store's ``dataset``, ``sample_id``, ``ordinal``)."""
    from stores.schema import SHARD_SCHEMAS

    return [c for c in df.columns if c not in SHARD_SCHEMAS["samples"].names]


def popularity_fields_of(columns: Sequence[str]) -> list[str]:
    """The default popularity fields among ``columns`` (see :data:`POPULARITY_FIELDS`)."""
    return [f for f in POPULARITY_FIELDS if f in columns]


def engagement_scores(popularity: np.ndarray, n_words: np.ndarray) -> np.ndarray:
    """Junk-likeness for ranking: mean of the popularity and the shortness rank percentiles, in [0, 1].

    1 = the most popular and shortest post; a sample whose popularity or length is NaN gets NaN.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    n_words = np.asarray(n_words, dtype=np.float64)
    if popularity.shape != n_words.shape:
        raise ValueError(f"{len(popularity)} popularity values for {len(n_words)} lengths")
    ok = np.isfinite(popularity) & np.isfinite(n_words)
    out = np.full(len(popularity), np.nan)
    if ok.any():
        out[ok] = (rank_percentile(popularity[ok]) + rank_percentile(-n_words[ok])) / 2
    return out


def engagement_rule(popularity: np.ndarray, n_words: np.ndarray, *, max_words: float = MAX_WORDS,
                    min_popularity: float = MIN_POPULARITY) -> np.ndarray:
    """The paper's M1 rule: short (``n_words < max_words``) and popular (``popularity > min_popularity``).

    NaN (unknown popularity or length) is never junk.
    """
    popularity = np.asarray(popularity, dtype=np.float64)
    n_words = np.asarray(n_words, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(popularity) & np.isfinite(n_words) & (n_words < max_words) & (popularity > min_popularity)


@dataclass
class Engagement:
    """What :meth:`EngagementFilter.measure` read and computed, aligned to ``sample_ids``."""

    sample_ids: list[str]
    popularity: np.ndarray
    n_words: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    fields: list[str]
    length_source: str

    def describe(self, i: int, max_words: float, min_popularity: float) -> str:
        """Sample i's words and popularity against the thresholds, in words."""
        if not np.isfinite(self.popularity[i]) or not np.isfinite(self.n_words[i]):
            return "engagement unknown (missing popularity or length)"
        w, p = self.n_words[i], self.popularity[i]
        short = f"{w:,.0f} words {'<' if w < max_words else '>='} {max_words:g}"
        popular = f"popularity {p:,.0f} {'>' if p > min_popularity else '<='} {min_popularity:,g} ({'+'.join(self.fields)})"
        return f"{short}, {popular}"


class EngagementFilter(Filter):
    """M1 engagement degree: flags short and popular samples (the paper's rule; see the module doc).

    ``popularity_fields`` are summed (default: whichever of :data:`POPULARITY_FIELDS` the dataset
    has); ``length_field`` is the length in words (default ``n_words`` if present, else the
    whitespace word count of the text). The score ranks samples by :func:`engagement_scores`.
    """

    name = "engagement"

    def __init__(self, popularity_fields: Sequence[str] | None = None, *, length_field: str | None = None,
                 max_words: float = MAX_WORDS, min_popularity: float = MIN_POPULARITY):
        from ..base import Budget

        super().__init__(Budget(fraction=None, threshold=np.inf))  # not used: the paper's rule flags
        if popularity_fields is not None and not list(popularity_fields):
            raise ValueError("popularity_fields is empty: name at least one field, or None for the defaults")
        self.popularity_fields = list(popularity_fields) if popularity_fields is not None else None
        self.length_field = length_field
        self.max_words = max_words
        self.min_popularity = min_popularity

    def measure(self, store: stores.Store, dataset: str, df: pl.DataFrame | None = None) -> Engagement:
        """Popularity, length, score and the rule's verdict for every sample of ``dataset``."""
        df = store.read_samples(dataset) if df is None else df
        fields = self.popularity_fields or popularity_fields_of(df.columns)
        if not fields:
            raise ValueError(f"dataset {dataset!r} has no popularity field: expected one of "
                             f"{', '.join(POPULARITY_FIELDS)}, or name them with popularity_fields")
        missing = [f for f in fields if f not in df.columns]
        if missing:
            raise ValueError(f"dataset {dataset!r} has no field(s) {', '.join(missing)} "
                             f"(its fields: {', '.join(dataset_fields(df))})")
        # a null count is unknown, not zero: the sum is NaN and the sample is never flagged
        popularity = df.select(pl.sum_horizontal([pl.col(f).cast(pl.Float64).fill_null(np.nan) for f in fields])
                               ).to_series().to_numpy().astype(np.float64)
        length_field = self.length_field or ("n_words" if "n_words" in df.columns else None)
        if length_field is not None:
            if length_field not in df.columns:
                raise ValueError(f"dataset {dataset!r} has no length field {length_field!r}")
            n_words = df[length_field].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)
            source = length_field
        else:
            n_words = np.array([len(t.split()) for t in sample_texts(df, dataset)], dtype=np.float64)
            source = "words in text"
        return Engagement(df["sample_id"].to_list(), popularity, n_words, engagement_scores(popularity, n_words),
                          engagement_rule(popularity, n_words, max_words=self.max_words,
                                          min_popularity=self.min_popularity), list(fields), source)

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        """Flags by the paper's rule, scores by :func:`engagement_scores`, reasons with words and popularity."""
        m = self.measure(store, dataset)
        evidence = [Evidence("popularity", m.sample_ids, m.popularity, source="samples", unit="+".join(m.fields)),
                    Evidence("shortness", m.sample_ids, -m.n_words, source="samples", unit=f"-{m.length_source}")]
        reasons = [f"{m.describe(i, self.max_words, self.min_popularity)}; "
                   + ("flagged: short and popular (M1 junk)" if m.flagged[i] else "kept")
                   for i in range(len(m.sample_ids))]
        return Flags(self.name, m.sample_ids, m.score, m.flagged, reasons, evidence)

    def config(self) -> dict[str, Any]:
        """The fields and thresholds, and the rule in words."""
        return {"popularity_fields": self.popularity_fields, "length_field": self.length_field,
                "max_words": self.max_words, "min_popularity": self.min_popularity,
                "rule": f"words < {self.max_words:g} and popularity > {self.min_popularity:g}"}


__all__ = ["MAX_WORDS", "MIN_POPULARITY", "POPULARITY_FIELDS", "Engagement", "EngagementFilter", "dataset_fields",
           "engagement_rule", "engagement_scores", "popularity_fields_of", "sample_texts"]
