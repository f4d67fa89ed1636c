"""Noisy chain-of-thought traces: flag training traces whose steps are wrong.

Evidence (each optional, at least one required), all read from the store:
- ``self_influence``: self-influence of each trace (a ``self_scores`` run of the engine). Traces
  the model cannot fit from the rest (random digits, propagated errors) have large gradients
  that the curvature does not explain away, so they stand out (spec probe: AUROC 0.99).
- ``loss``: the completion-token loss of each trace (a ``loss`` baseline run).
- ``query_push``: pairwise influence on the model's *wrong* answers to failing test queries
  (measurement = -log p(its own wrong completion)); a trace that makes many wrong answers more
  likely is suspect. Influence on *clean* answers is not used: the spec's probe found it near
  random as a noise detector.

Combination rule (documented, not learned): the weighted mean of the evidence's rank
percentiles (1 = most suspicious). Rank averaging makes scales irrelevant and a trace must be
extreme on several signals to rank first. The flag budget is a fraction or a score threshold.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

import stores

from .base import Budget, Evidence, Filter, Flags
from .evidence import dataset_ids, median_ratio, query_push_evidence, self_score_evidence

# Default weights, chosen on a selection seed that no reported figure uses (bench/noisy_cot.py,
# step 0): completion loss alone ranked the planted noisy traces as well as loss and
# self-influence together, so self-influence does not score by default (a second evidence must
# add AUROC to be used). Both self-influence and query_push still explain every flag in its
# reason; query_push was at or below random as a detector in the spec's probe and in the bench.
DEFAULT_WEIGHTS = {"self_influence": 0.0, "loss": 1.0, "query_push": 0.0}


class NoisyCoTFilter(Filter):
    """Flags noisy chain-of-thought traces from self-influence, loss and failing-query influence.

    Pass the run ids of the evidence to use; ``weights`` maps evidence names
    (``self_influence``, ``loss``, ``query_push``) to their weight in the rank mean (default
    :data:`DEFAULT_WEIGHTS`: loss scores, the others explain). Without explicit weights, evidence
    given alone scores even if its default weight is 0 (e.g. only a self-influence run).
    """

    name = "noisy_cot"

    def __init__(
        self,
        *,
        self_influence_run: str | None = None,
        loss_run: str | None = None,
        query_run: str | None = None,
        weights: dict[str, float] | None = None,
        budget: Budget | None = None,
        top_fraction: float = 0.02,
    ):
        super().__init__(budget)
        if not (self_influence_run or loss_run or query_run):
            raise ValueError("NoisyCoTFilter needs at least one of self_influence_run, loss_run, query_run")
        self.self_influence_run = self_influence_run
        self.loss_run = loss_run
        self.query_run = query_run
        given = [n for n, r in (("self_influence", self_influence_run), ("loss", loss_run),
                                ("query_push", query_run)) if r]
        self.weights = dict(DEFAULT_WEIGHTS) | (weights or {})
        if weights is None and not any(self.weights[n] > 0 for n in given):
            self.weights |= {n: 1.0 for n in given}  # nothing that scores by default was given
        self.top_fraction = top_fraction

    def gather(self, store: stores.Store) -> tuple[list[Evidence], dict[str, int]]:
        """The evidence this filter was given, read from the store (and the per-sample push counts)."""
        evidence: list[Evidence] = []
        counts: dict[str, int] = {}
        if self.self_influence_run:
            evidence.append(self_score_evidence(store, self.self_influence_run, "self_influence"))
        if self.loss_run:
            evidence.append(self_score_evidence(store, self.loss_run, "loss", unit="nats"))
        if self.query_run:
            ev, counts = query_push_evidence(store, self.query_run, self.top_fraction, "query_push")
            evidence.append(ev)
        return evidence, counts

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        ids = dataset_ids(store, dataset)
        evidence, counts = self.gather(store)
        if not any(self.weights.get(e.name, 1.0) > 0 for e in evidence):
            raise ValueError(f"every evidence given ({', '.join(e.name for e in evidence)}) has weight 0; "
                             "give one a positive weight")
        pct = {e.name: e.percentile(ids) for e in evidence}
        raw = {e.name: e.aligned(ids) for e in evidence}
        score = combine_ranks(pct, self.weights)
        loss_ratio = median_ratio(raw["loss"]) if "loss" in raw else None
        n = len(ids)
        n_queries = _n_queries(store, self.query_run) if self.query_run else 0

        def explain(i: int, flagged: bool) -> str:
            # one clause per evidence, each true on its own; the scoring evidence that ranks this
            # trace highest comes first (its clause is what reason_category reads)
            clauses: dict[str, str] = {}
            if "self_influence" in pct and np.isfinite(pct["self_influence"][i]):
                clauses["self_influence"] = f"self-influence in {_standing(pct['self_influence'][i], n)}"
            if loss_ratio is not None and np.isfinite(loss_ratio[i]):
                clauses["loss"] = f"completion loss {loss_ratio[i]:.1f}x median"
            if "query_push" in pct and np.isfinite(pct["query_push"][i]):
                k = counts.get(ids[i], 0)
                standing = _standing(pct["query_push"][i], n)
                push = f"push on failing answers in {standing}"
                if k > 0:  # said only when it happened: no "0 of 100 queries" next to a ranking
                    push += (f"{' overall, though' if standing.startswith('bottom') else ','} among the top "
                             f"{self.top_fraction:.0%} of pushers of the wrong answer on "
                             f"{k:,} of {n_queries:,} failing {'query' if n_queries == 1 else 'queries'}")
                clauses["query_push"] = push
            scoring = [e for e in clauses if self.weights.get(e, 1.0) > 0 and np.isfinite(pct[e][i])]
            lead = max(scoring, key=lambda e: pct[e][i], default=None)
            ordered = ([clauses[lead]] if lead else []) + [c for e, c in clauses.items() if e != lead]
            verdict = "flagged" if flagged else "kept"
            return f"{'; '.join(ordered)}; combined rank {score[i]:.3f}, {verdict} at {self.budget.describe()}"

        return self.flags_from_score(ids, score, evidence, explain)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "combine": "weighted mean of rank percentiles"}


def combine_ranks(percentiles: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted mean of rank percentiles over the evidence a sample has (NaN where it has none)."""
    num = None
    den = None
    for name, p in percentiles.items():
        w = float(weights.get(name, 1.0))
        ok = np.isfinite(p)
        term = np.where(ok, p * w, 0.0)
        wt = np.where(ok, w, 0.0)
        num = term if num is None else num + term
        den = wt if den is None else den + wt
    if num is None:
        raise ValueError("no evidence to combine")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _standing(percentile: float, n: int) -> str:
    """Where a rank percentile puts a sample: "top 3% (rank 81 of 3,000)" in the upper half,
    "bottom 2% (rank 2,969 of 3,000)" in the lower one. The share is rounded up, so the rank is
    always inside it."""
    rank = int(round((1.0 - percentile) * (n - 1))) + 1
    upper = rank <= (n + 1) / 2
    share = (rank if upper else n - rank + 1) / n
    shown = f"{math.ceil(share * 100 - 1e-9):.0f}%" if share >= 0.01 else f"{math.ceil(share * 1000 - 1e-9) / 10:.1f}%"
    return f"{'top' if upper else 'bottom'} {shown} (rank {rank:,} of {n:,})"


# A reason's first clause names the evidence that put the trace where it is (see explain in
# NoisyCoTFilter.evaluate); SelfScoreFilter reasons start with the evidence's name.
REASON_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("completion loss", "high completion loss"),
    ("self-influence", "high self-influence"),
    ("push on failing answers", "pushes failing answers"),
    ("loss ", "high completion loss"),
    ("self_influence ", "high self-influence"),
    ("query_push ", "pushes failing answers"),
    ("random ", "random"),
)
_KEPT = re.compile(r"(\bkept at |; kept$)")


def reason_category(reason: str) -> str:
    """A short category for a flag's reason, from its first clause (the leading evidence).

    ``"high completion loss"``, ``"high self-influence"``, ``"pushes failing answers"`` or
    ``"random"``; ``"kept"`` when the reason says the sample was not flagged; for another
    filter's reason, its first word (``"other"`` when it has none).
    """
    if _KEPT.search(reason):
        return "kept"
    for prefix, category in REASON_CATEGORIES:
        if reason.startswith(prefix):
            return category
    first = reason.split(" ", 1)[0].strip(";,:")
    return first.replace("_", " ") if first.replace("_", "").isalpha() else "other"


def _n_queries(store: stores.Store, run_id: str) -> int:
    return int(store.sql("SELECT count(DISTINCT query_id) AS n FROM scores WHERE run_id = ?", [run_id])["n"][0])
