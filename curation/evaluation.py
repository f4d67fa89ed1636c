"""Figures for judging filters and curation: detection on planted problems, flag quality, accuracy,
the share of a noise-induced accuracy gap that curation recovers, and spread over seeds."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def _as_bool_vector(values, name: str) -> np.ndarray:
    """A 1-D boolean array from booleans or 0/1 values; a clear error for anything else."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.size and (arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all()):
        raise ValueError(f"{name}: expected booleans (or 0/1), got dtype {arr.dtype} with other values")
    return arr.astype(bool)


def _rank_keys(score: np.ndarray) -> np.ndarray:
    """Dense integer ranks of ``score`` (larger = more suspicious; ties equal; NaN below everything,
    +inf above every finite value), for ranking and AUROC without losing the order of infinities."""
    key = np.zeros(len(score), dtype=np.int64)  # NaN -> 0
    ok = ~np.isnan(score)
    if ok.any():
        _, inverse = np.unique(score[ok], return_inverse=True)
        key[ok] = inverse + 1
    return key


def detection_metrics(score: np.ndarray, truth: np.ndarray, budget: float) -> dict[str, float]:
    """AUROC of ``score`` (larger = more suspicious) for boolean ``truth``; precision and recall
    among the top ``budget`` fraction of samples.

    The top set has ``k = round(budget * n)`` samples (Python's round, as
    :meth:`filters.base.Budget.select` uses, so the figures match what a filter with that budget
    flags). NaN scores rank last (below ``-inf``); ``+inf`` ranks first. Samples tied at the
    cut-off are counted by their expected hits under a random tie order (a tie group straddling the
    cut contributes its positive share of the places left), so the figures never depend on the
    samples' order, as AUROC (ties count half) does not. AUROC is NaN when ``truth`` has one class
    only; precision is NaN when ``k`` is 0; recall is NaN when there are no positives.
    """
    from sklearn.metrics import roc_auc_score

    score = np.asarray(score, dtype=np.float64)
    truth = _as_bool_vector(truth, "truth")
    if score.ndim != 1:
        raise ValueError(f"score: expected a 1-D array, got shape {score.shape}")
    if len(score) != len(truth):
        raise ValueError(f"score has {len(score)} values but truth has {len(truth)}")
    if not 0.0 <= budget <= 1.0:
        raise ValueError(f"budget must be a fraction in [0, 1], got {budget}")
    n = len(score)
    key = _rank_keys(score)
    k = int(round(budget * n))
    positives = int(truth.sum())
    hits = 0.0
    if k:
        cut = np.sort(key)[::-1][k - 1]  # the rank key of the k-th most suspicious sample
        above = key > cut
        tied = key == cut
        hits = float(truth[above].sum()) + (k - int(above.sum())) * float(truth[tied].sum()) / int(tied.sum())
    auroc = float(roc_auc_score(truth, key)) if 0 < positives < n else float("nan")
    return {
        "auroc": auroc,
        "precision_at_budget": hits / k if k else float("nan"),
        "recall_at_budget": hits / positives if positives else float("nan"),
        "n_positive": positives,
        "budget": budget,
    }


def flag_metrics(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision and recall of an actual boolean ``flagged`` column against boolean ``truth``.

    Unlike :func:`detection_metrics`, no budget is re-applied to a score: this judges the flags a
    filter wrote, exactly as they are. Returns ``precision`` (hits / n_flagged; NaN when nothing is
    flagged), ``recall`` (hits / n_positive; NaN when there are no positives), ``n_flagged``,
    ``n_positive`` and ``hits`` (flagged positives).
    """
    flagged = _as_bool_vector(flagged, "flagged")
    truth = _as_bool_vector(truth, "truth")
    if len(flagged) != len(truth):
        raise ValueError(f"flagged has {len(flagged)} values but truth has {len(truth)}")
    n_flagged = int(flagged.sum())
    n_positive = int(truth.sum())
    hits = int((flagged & truth).sum())
    return {
        "precision": hits / n_flagged if n_flagged else float("nan"),
        "recall": hits / n_positive if n_positive else float("nan"),
        "n_flagged": n_flagged,
        "n_positive": n_positive,
        "hits": hits,
    }


def gap_recovered(noisy_acc: float, curated_acc: float, clean_acc: float) -> float:
    """The fraction of the noisy-to-clean accuracy gap that curation recovers.

    ``(curated - noisy) / (clean - noisy)``: 0 means curation did no better than training on the
    noisy data, 1 means it matched training on clean data; it is negative when curation made things
    worse and above 1 when it beat the clean model. NaN when the gap ``clean - noisy`` is <= 0 (the
    noise did not hurt, so there is nothing to recover) or any accuracy is NaN.
    """
    noisy, curated, clean = float(noisy_acc), float(curated_acc), float(clean_acc)
    gap = clean - noisy
    if math.isnan(gap) or math.isnan(curated) or gap <= 0:
        return float("nan")
    return (curated - noisy) / gap


def mean_spread(values: Iterable[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max of a figure over several runs (e.g. seeds).

    ``std`` uses ddof=1 (the unbiased sample variance) and is NaN with fewer than two values: one
    run says nothing about the spread. NaN values (a run whose figure is undefined) are left out
    and counted in ``n_nan``; ``n`` is the number of values used. All figures are NaN when ``n``
    is 0.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"values: expected a flat sequence of numbers, got shape {arr.shape}")
    nan = np.isnan(arr)
    used = arr[~nan]
    n = len(used)
    if n == 0:
        mean = std = lo = hi = float("nan")
    else:
        mean, lo, hi = float(used.mean()), float(used.min()), float(used.max())
        std = float(used.std(ddof=1)) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "min": lo, "max": hi, "n": n, "n_nan": int(nan.sum())}


def hedges_g(treated: Iterable[float], control: Iterable[float]) -> float:
    """Hedges' g of ``treated`` against ``control``: Cohen's d with the pooled sd, bias-corrected.

    ``d = (mean(treated) - mean(control)) / s_pooled`` with ``s_pooled`` from the two samples'
    unbiased variances, times ``J = 1 - 3 / (4 (n1 + n2) - 9)`` (Hedges & Olkin's small-sample
    correction: with 3 seeds per arm, J = 0.8). Positive when the treated mean is larger. NaN with
    fewer than two values in an arm; +-inf when both arms have no spread but different means, 0
    when they are identical.
    """
    a = np.asarray(list(treated), float)
    b = np.asarray(list(control), float)
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return float("nan")
    diff = float(a.mean() - b.mean())
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / pooled * (1 - 3 / (4 * (n1 + n2) - 9))
