"""Flag the samples that rank highest on one per-sample signal (loss, gradient norm, self-influence...).

The simplest filter there is, and the baseline every richer filter must beat: read one
``self_scores`` run from the store (the engine's self-influence or a baseline's loss, gradient
norm or random scores) and flag its top samples under the budget. Benchmarks run it once per
evidence so that each method's precision and recall come from a real flags run, exactly as a
user's ``curation curate --flags RUN`` would apply it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import stores

from .base import Budget, Filter, Flags, descending_ranks
from .evidence import dataset_ids, median_ratio, self_score_evidence


class SelfScoreFilter(Filter):
    """Flags the samples with the largest scores of one ``self_scores`` run.

    ``evidence`` names the signal in reasons and in the run config (default: the run's method).
    Samples of the dataset that the run did not score are never flagged.
    """

    name = "self_score"

    def __init__(self, run_id: str, *, evidence: str | None = None, unit: str = "",
                 budget: Budget | None = None):
        super().__init__(budget)
        self.run_id = run_id
        self.evidence = evidence
        self.unit = unit

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        ids = dataset_ids(store, dataset)
        ev = self_score_evidence(store, self.run_id, self.evidence, unit=self.unit)
        score = ev.aligned(ids)
        pct = ev.percentile(ids)
        ratio = median_ratio(score)
        n = len(ids)
        rank = descending_ranks(np.where(np.isfinite(score), score, np.nan))  # no finite score: ranked last

        def explain(i: int, flagged: bool) -> str:
            if not np.isfinite(score[i]):
                return f"no {ev.name} score in run {self.run_id}; kept"
            size = f", {ratio[i]:.2g}x median" if np.isfinite(ratio[i]) and ratio[i] > 0 else ""
            verdict = "flagged" if flagged else "kept"
            return (f"{ev.name} {score[i]:.4g}{(' ' + self.unit) if self.unit else ''}{size} "
                    f"(rank {rank[i]:,} of {n:,}, percentile {pct[i]:.1%}); {verdict} at {self.budget.describe()}")

        return self.flags_from_score(ids, score, [ev], explain)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "combine": "one evidence, largest first"}
