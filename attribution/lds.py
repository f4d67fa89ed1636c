"""Linear Datamodeling Score (LDS): how well attribution scores predict retraining outcomes.

The TRAK paper's check of an attribution method (Park et al. 2023; ``../shared/specs/engine.md``):
retrain the model on many random subsets of the training set, record each query's measurement
(a loss) after each retraining, and ask whether the scores rank the subsets in the same order.
A method predicts a subset's query loss as the sum of its scores over the subset's members; with
this toolkit's sign convention (a positive score means training on the sample *lowered* the
query's loss) the prediction is minus that sum. LDS is the Spearman rank correlation between
prediction and measurement across subsets, computed per query and averaged over queries.

Only ranks matter, so a score scaled by a positive constant per query has the same LDS.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def per_query_lds(scores: np.ndarray, masks: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Spearman correlation across subsets between predicted and measured loss, one per query.

    ``scores`` is (queries, train): a positive score means the training sample lowers that
    query's loss. ``masks`` is (subsets, train), true where the sample was in the subset.
    ``measured`` is (subsets, queries): each query's loss after retraining on each subset.
    A query whose prediction or measurement is constant across subsets has no defined rank
    correlation and gets NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    masks = np.asarray(masks)
    measured = np.asarray(measured, dtype=np.float64)
    if scores.ndim != 2 or masks.ndim != 2 or measured.ndim != 2:
        raise ValueError(
            f"expected 2-d arrays: scores (queries, train), masks (subsets, train), measured "
            f"(subsets, queries); got shapes {scores.shape}, {masks.shape}, {measured.shape}"
        )
    n_queries, n_train = scores.shape
    if masks.shape[1] != n_train:
        raise ValueError(f"masks cover {masks.shape[1]} training samples but scores have {n_train}")
    if measured.shape != (masks.shape[0], n_queries):
        raise ValueError(
            f"measured should be (subsets, queries) = ({masks.shape[0]}, {n_queries}); "
            f"got {measured.shape}"
        )
    if masks.shape[0] < 2:
        raise ValueError("LDS needs at least 2 subsets")
    predicted = -(masks.astype(np.float64) @ scores.T)  # (subsets, queries)
    return _spearman_columns(predicted, measured)


def linear_datamodeling_score(scores: np.ndarray, masks: np.ndarray, measured: np.ndarray) -> float:
    """Mean over queries of :func:`per_query_lds`, ignoring undefined (NaN) queries.

    Returns NaN when no query has a defined correlation. Arguments as in :func:`per_query_lds`.
    """
    rhos = per_query_lds(scores, masks, measured)
    defined = rhos[~np.isnan(rhos)]
    return float(defined.mean()) if defined.size else float("nan")


def _spearman_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each column of ``a`` with the same column of ``b`` (ties averaged)."""
    ra = rankdata(a, axis=0)
    rb = rankdata(b, axis=0)
    ra -= ra.mean(axis=0)
    rb -= rb.mean(axis=0)
    num = (ra * rb).sum(axis=0)
    den = np.sqrt((ra * ra).sum(axis=0) * (rb * rb).sum(axis=0))
    rho = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(rho, -1.0, 1.0)
