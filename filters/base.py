"""The interface every filter shares: evidence in, per-sample flags with reasons out.

A filter reads *evidence* already in the store (self-influence, per-sample loss, pairwise
influence on a behaviour, heuristics computed from the samples) and returns, for every sample
of a dataset, a score (larger = more suspicious), whether it is flagged under the filter's
budget, and a sentence saying why. :meth:`Filter.run` writes that as a ``flags`` run whose
config records the filter, its settings and the runs its evidence came from, so
``curation curate --flags RUN`` can drop the flagged samples with an audit trail.

Writing a filter takes a few lines::

    class LongCompletions(Filter):
        name = "long_completions"

        def evaluate(self, store, dataset):
            df = store.read_samples(dataset, columns=["sample_id", "completion"])
            n = df["completion"].str.len_chars().to_numpy().astype(float)
            ev = Evidence("length", df["sample_id"].to_list(), n, source="samples", unit="chars")
            return self.flags_from_score(ev.sample_ids, ev.values, [ev])
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

import stores


@dataclass
class Evidence:
    """One per-sample signal, aligned to ``sample_ids``; larger values are more suspicious.

    ``source`` names where it came from (a run id, "samples"...), so flags can be traced back.
    """

    name: str
    sample_ids: list[str]
    values: np.ndarray
    source: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if len(self.values) != len(self.sample_ids):
            raise ValueError(f"evidence {self.name!r}: {len(self.values)} values for {len(self.sample_ids)} ids")

    def aligned(self, sample_ids: Sequence[str]) -> np.ndarray:
        """Values in the order of ``sample_ids``; samples without evidence get NaN."""
        where = {s: i for i, s in enumerate(self.sample_ids)}
        idx = np.array([where.get(s, -1) for s in sample_ids])
        out = np.full(len(sample_ids), np.nan)
        out[idx >= 0] = self.values[idx[idx >= 0]]
        return out

    def percentile(self, sample_ids: Sequence[str] | None = None) -> np.ndarray:
        """Rank of each value in [0, 1] (1 = most suspicious; ties share their mean rank; NaN stays NaN)."""
        values = self.values if sample_ids is None else self.aligned(sample_ids)
        return rank_percentile(values)


def rank_percentile(values: np.ndarray) -> np.ndarray:
    """Average-rank percentiles in [0, 1] of the finite values (NaN stays NaN)."""
    from scipy.stats import rankdata

    out = np.full(len(values), np.nan)
    ok = np.isfinite(values)
    if ok.sum() == 1:
        out[ok] = 1.0
    elif ok.any():
        out[ok] = (rankdata(values[ok], method="average") - 1) / (ok.sum() - 1)
    return out


def descending_ranks(score: np.ndarray) -> np.ndarray:
    """1-based rank of each score, largest first (ties by position; NaN after everything, like -inf)."""
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-np.where(np.isnan(score), -np.inf, score), kind="stable")
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    return rank


@dataclass
class Budget:
    """How many samples a filter flags: a ``fraction`` of the dataset, or a score ``threshold``."""

    fraction: float | None = 0.1
    threshold: float | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.threshold is None):
            raise ValueError("give exactly one of fraction or threshold")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {self.fraction}")

    def select(self, scores: np.ndarray) -> np.ndarray:
        """Boolean mask of the flagged samples (highest scores first, +inf included; NaN never flagged)."""
        scores = np.asarray(scores, dtype=np.float64)
        ok = ~np.isnan(scores)
        if self.threshold is not None:
            return ok & (scores >= self.threshold)
        k = int(round(self.fraction * len(scores)))
        flagged = np.zeros(len(scores), dtype=bool)
        if k:
            order = np.argsort(-np.where(ok, scores, -np.inf), kind="stable")[:k]
            flagged[order] = True
        return flagged & ok

    def describe(self) -> str:
        """The budget in words, for reasons and run configs."""
        return f"top {self.fraction:.1%}" if self.fraction is not None else f"score >= {self.threshold:g}"


@dataclass
class Flags:
    """A filter's verdict on every sample: score (larger = worse), flagged, and a reason."""

    filter: str
    sample_ids: list[str]
    score: np.ndarray
    flagged: np.ndarray
    reason: list[str]
    evidence: list[Evidence] = field(default_factory=list)

    def table(self) -> pa.Table:
        """The ``flags`` shard of these flags."""
        n = len(self.sample_ids)
        return pa.table({
            "filter": pa.array([self.filter] * n, pa.string()),
            "sample_id": pa.array(self.sample_ids, pa.string()),
            "score": pa.array(np.asarray(self.score, dtype=np.float64)),
            "flagged": pa.array(np.asarray(self.flagged, dtype=bool)),
            "reason": pa.array(self.reason, pa.string()),
        })

    @property
    def n_flagged(self) -> int:
        """How many samples are flagged."""
        return int(np.sum(self.flagged))


@dataclass
class FilterRun:
    """What :meth:`Filter.run` wrote: the run id and the flags."""

    run_id: str
    flags: Flags


class Filter(abc.ABC):
    """Base class of filters: evaluate a dataset from evidence in the store, write flags.

    Subclasses set ``name`` and implement :meth:`evaluate`; :meth:`config` lists the settings
    recorded with each run (by default the instance's public attributes).
    """

    name: ClassVar[str] = "filter"

    def __init__(self, budget: Budget | None = None):
        self.budget = budget or Budget()

    @abc.abstractmethod
    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        """Score, flag and explain every sample of ``dataset``."""

    def config(self) -> dict[str, Any]:
        """Settings recorded in the run's config (JSON-serialisable)."""
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if k.startswith("_"):
                continue
            out[k] = v.describe() if isinstance(v, Budget) else v if isinstance(v, str | int | float | bool | type(None) | list | dict) else repr(v)
        return out

    def flags_from_score(self, sample_ids: Sequence[str], score: np.ndarray, evidence: list[Evidence],
                         explain: Any = None) -> Flags:
        """Flags under this filter's budget; ``explain(i, flagged)`` gives sample i's reason."""
        score = np.asarray(score, dtype=np.float64)
        flagged = self.budget.select(score)
        pct = rank_percentile(score)
        if explain is None:
            def explain(i: int, is_flagged: bool) -> str:
                return f"{self.name} score {score[i]:.3g} (percentile {pct[i]:.1%}); {'flagged' if is_flagged else 'kept'} at {self.budget.describe()}"
        reasons = [explain(i, bool(flagged[i])) for i in range(len(score))]
        return Flags(self.name, list(sample_ids), score, flagged, reasons, evidence)

    def run(self, store: stores.Store, dataset: str, *, seed: int | None = None) -> FilterRun:
        """Evaluate ``dataset`` and write the flags as a finished ``filter`` run."""
        flags = self.evaluate(store, dataset)
        executor = getattr(self, "executor", None)  # filters that can run parts of their work on Ray
        config = {"filter": self.name, "settings": self.config(),
                  **(executor.describe() if executor is not None else {"executor": "local"}),
                  "evidence": [{"name": e.name, "source": e.source} for e in flags.evidence],
                  "n_flagged": flags.n_flagged, "n_samples": len(flags.sample_ids)}
        with store.run("filter", config=config, seed=seed, dataset=dataset) as handle:
            handle.write("flags", flags.table(), shard=0)
        return FilterRun(handle.id, flags)
