"""Data pruning by value: drop the least valuable fraction of a dataset by one per-sample score.

A value score (EL2N, GraNd, forgetting events from :mod:`attribution.dynamics`; self-influence;
influence on a validation set; a junk score; random) is read from a ``self_scores`` run. Which end
is "least valuable" depends on the score and the data, so the filter says it explicitly:
``prune="low"`` drops the samples with the smallest scores (the easy, redundant ones: Paul et al.
keep high-EL2N samples), ``prune="high"`` the largest (with noisy labels the hardest samples are
often the mislabelled ones). The flags mark the samples to drop, so ``curation curate --flags RUN``
keeps the rest; each reason gives the sample's score, its rank, and the end it was pruned from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import stores

from .base import Budget, Filter, Flags, descending_ranks
from .evidence import dataset_ids, self_score_evidence

PRUNE_ENDS = ("low", "high")


class PruneFilter(Filter):
    """Flags the ``fraction`` of samples at the ``prune`` end of a value score (see the module doc).

    Samples the run did not score are kept (never flagged), and say so in their reason.
    """

    name = "prune"

    def __init__(self, run_id: str, fraction: float, *, prune: str = "low", evidence: str | None = None):
        if prune not in PRUNE_ENDS:
            raise ValueError(f"prune must be one of {', '.join(PRUNE_ENDS)}, got {prune!r}")
        super().__init__(Budget(fraction=fraction))
        self.run_id = run_id
        self.prune = prune
        self.evidence = evidence

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        ids = dataset_ids(store, dataset)
        ev = self_score_evidence(store, self.run_id, self.evidence)
        value = ev.aligned(ids)
        score = -value if self.prune == "low" else value  # larger = pruned first; NaN (no score) stays NaN
        n = len(ids)
        rank = descending_ranks(score)
        end = "lowest" if self.prune == "low" else "highest"

        def explain(i: int, flagged: bool) -> str:
            if np.isnan(value[i]):
                return f"no {ev.name} score in run {self.run_id}; kept"
            verdict = f"pruned: among the {self.budget.fraction:.0%} {end}" if flagged else "kept"
            return f"{ev.name} {value[i]:.4g} ({end}-first rank {rank[i]:,} of {n:,}); {verdict}"

        return self.flags_from_score(ids, score, [ev], explain)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "prune": f"the {self.budget.fraction:.0%} {self.prune}est {self.evidence or 'scores'}"}


__all__ = ["PRUNE_ENDS", "PruneFilter"]
