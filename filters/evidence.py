"""Read evidence for filters out of the store: per-sample statistics and pairwise influence.

Filters never compute factors or scores; they read what the engine and the baselines wrote
(``self_scores`` and ``scores``) and turn it into :class:`filters.base.Evidence`.
"""

from __future__ import annotations

import numpy as np

import stores

from .base import Evidence


def self_score_evidence(store: stores.Store, run_id: str, name: str | None = None, unit: str = "") -> Evidence:
    """A ``self_scores`` run (self-influence, loss, grad norm...) as evidence; larger = worse."""
    df = store.sql("SELECT sample_id, method, score FROM self_scores WHERE run_id = ?", [run_id])
    if df.height == 0:
        raise stores.StoreError(f"no finished self_scores for run {run_id!r}")
    methods = sorted(set(df["method"]))
    if len(methods) != 1:
        raise stores.StoreError(f"run {run_id!r} has several methods ({', '.join(methods)}); filter one")
    return Evidence(name or methods[0], df["sample_id"].to_list(), df["score"].to_numpy(), source=run_id, unit=unit)


def query_push_evidence(
    store: stores.Store, run_id: str, top_fraction: float = 0.02, name: str = "pushes_failures",
) -> tuple[Evidence, dict[str, int]]:
    """How strongly each training sample pushes the queries of a pairwise run.

    For a behaviour made of a model's *wrong* answers (measurement = -log p(wrong completion)),
    a positive score means the sample made that wrong answer more likely. Scores are
    standardised per query (so no single query dominates), and the evidence is each sample's
    mean standardised score over the queries; the second return value counts, per sample, the
    queries for which it is in the top ``top_fraction`` of pushers (used in reasons).
    """
    df = store.sql(
        """WITH z AS (
             SELECT sample_id, query_id,
                    (score - avg(score) OVER q) / nullif(stddev_pop(score) OVER q, 0) AS z,
                    percent_rank() OVER (PARTITION BY query_id ORDER BY score DESC) AS pr
             FROM scores WHERE run_id = ?
             WINDOW q AS (PARTITION BY query_id))
           SELECT sample_id, avg(coalesce(z, 0)) AS push, count(*) FILTER (WHERE pr < ?) AS n_top
           FROM z GROUP BY sample_id""",
        [run_id, top_fraction],
    )
    if df.height == 0:
        raise stores.StoreError(f"no finished scores for run {run_id!r}")
    counts = dict(zip(df["sample_id"].to_list(), df["n_top"].to_list(), strict=True))
    return Evidence(name, df["sample_id"].to_list(), df["push"].to_numpy(), source=run_id, unit="z"), counts


def dataset_ids(store: stores.Store, dataset: str) -> list[str]:
    """Sample ids of a dataset in ingest order."""
    return store.read_samples(dataset, columns=["sample_id"])["sample_id"].to_list()


def median_ratio(values: np.ndarray) -> np.ndarray:
    """Each value divided by the median of the finite values (for "3.1x median" reasons)."""
    finite = values[np.isfinite(values)]
    med = float(np.median(finite)) if finite.size else np.nan
    return values / med if med else np.full_like(values, np.nan)
