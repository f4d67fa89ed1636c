"""Metric code against scikit-learn, numpy/statistics, and hand-worked cases."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from curation.evaluation import (
    detection_metrics,
    flag_metrics,
    gap_recovered,
    mean_spread,
)
from curation.steps.evaluate import answers_correct, extract_answer
from filters.base import Budget

nan = float("nan")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------- detection_metrics
def test_detection_hand_worked() -> None:
    # top 2 of 4 = samples 0 (positive) and 1 (negative); positive/negative pairs ordered: 3 of 4
    m = detection_metrics(np.array([0.9, 0.8, 0.7, 0.1]), np.array([True, False, True, False]), 0.5)
    assert m == {"auroc": 0.75, "precision_at_budget": 0.5, "recall_at_budget": 0.5, "n_positive": 2,
                 "budget": 0.5}
    m = detection_metrics([3.0, 2.0, 1.0], [1, 1, 0], 1 / 3)  # 0/1 truth is accepted
    assert (m["auroc"], m["precision_at_budget"], m["recall_at_budget"]) == (1.0, 1.0, 0.5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget", [0.05, 0.1, 0.2, 0.33, 0.5, 1.0])
def test_detection_matches_sklearn_without_ties(seed: int, budget: float) -> None:
    rng = np.random.default_rng(seed)
    n = 57
    truth = rng.random(n) < 0.3
    score = rng.normal(size=n) + truth  # continuous: no ties
    k = int(round(budget * n))
    flagged = score >= np.sort(score)[::-1][k - 1]
    assert flagged.sum() == k
    m = detection_metrics(score, truth, budget)
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert m["precision_at_budget"] == pytest.approx(precision_score(truth, flagged), abs=1e-12)
    assert m["recall_at_budget"] == pytest.approx(recall_score(truth, flagged), abs=1e-12)
    assert m["n_positive"] == truth.sum()


def _tie_average(score: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall at top-k averaged over every order of the tied samples (brute force)."""
    counts: dict[tuple[bool, ...], int] = {}
    for perm in itertools.permutations(range(len(score))):
        perm = np.array(perm)
        order = perm[np.argsort(-score[perm], kind="stable")]  # ties broken by the permutation
        flagged = np.zeros(len(score), dtype=bool)
        flagged[order[:k]] = True
        counts[tuple(flagged)] = counts.get(tuple(flagged), 0) + 1
    total = sum(counts.values())
    precision = sum(c * precision_score(truth, np.array(f)) for f, c in counts.items()) / total
    recall = sum(c * recall_score(truth, np.array(f)) for f, c in counts.items()) / total
    return float(precision), float(recall)


@pytest.mark.parametrize("budget", [0.2, 0.4, 0.6, 0.8])
def test_detection_ties_count_expected_hits(budget: float) -> None:
    score = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 2.0])
    truth = np.array([True, False, False, False, True, False])
    k = int(round(budget * len(score)))
    m = detection_metrics(score, truth, budget)
    p, r = _tie_average(score, truth, k)
    assert m["precision_at_budget"] == pytest.approx(p) and m["recall_at_budget"] == pytest.approx(r)
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, score))  # sklearn counts ties as half


def test_detection_ties_hand_worked_and_order_free() -> None:
    # k = 2 of a 4-way tie holding 1 positive: expected hits 2 * 1/4 = 0.5
    score, truth = np.array([1.0, 1.0, 1.0, 1.0, 0.0]), np.array([True, False, False, False, True])
    m = detection_metrics(score, truth, 0.4)
    assert (m["precision_at_budget"], m["recall_at_budget"]) == (0.25, 0.25)
    # the figures do not depend on where the positives sit among tied samples
    for perm in itertools.permutations(range(5)):
        perm = np.array(perm)
        assert detection_metrics(score[perm], truth[perm], 0.4) == m


def test_detection_constant_score_is_chance() -> None:
    truth = np.zeros(100, dtype=bool)
    truth[:10] = True  # positives first: index tie-breaking would give precision 1
    m = detection_metrics(np.zeros(100), truth, 0.1)
    assert m["auroc"] == 0.5
    assert m["precision_at_budget"] == pytest.approx(0.1) and m["recall_at_budget"] == pytest.approx(0.1)


def test_detection_nan_scores_rank_last() -> None:
    score = np.array([nan, 0.5, 0.2, nan])
    truth = np.array([True, False, True, False])
    m = detection_metrics(score, truth, 0.5)  # top 2: 0.5 (neg), 0.2 (pos)
    assert (m["precision_at_budget"], m["recall_at_budget"]) == (0.5, 0.5)
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, np.nan_to_num(score, nan=-1e9)))
    m = detection_metrics(score, truth, 0.75)  # third place: one of the two NaNs, half a hit
    assert (m["precision_at_budget"], m["recall_at_budget"]) == (0.5, 0.75)
    m = detection_metrics(np.full(4, nan), truth, 0.5)  # all NaN: no information
    assert (m["auroc"], m["precision_at_budget"], m["recall_at_budget"]) == (0.5, 0.5, 0.5)


def test_detection_infinities_keep_their_order() -> None:
    score = np.array([np.inf, 1.0, -np.inf, nan, 0.0])
    truth = np.array([True, False, True, False, False])
    m = detection_metrics(score, truth, 0.2)  # +inf is the most suspicious
    assert m["precision_at_budget"] == 1.0
    # -inf ranks below finite scores but above NaN
    assert m["auroc"] == pytest.approx(roc_auc_score(truth, [10.0, 1.0, -5.0, -10.0, 0.0]))


@pytest.mark.parametrize(("budget", "k"), [(0.0, 0), (0.04, 0), (0.05, 0), (0.06, 1), (0.15, 2), (0.25, 2),
                                           (0.35, 4), (0.5, 5), (1.0, 10)])
def test_detection_budget_rounding_matches_filter_budget(budget: float, k: int) -> None:
    score = np.arange(10, dtype=float)[::-1]  # sample i has rank i
    truth = np.zeros(10, dtype=bool)
    truth[[0, 2, 9]] = True
    assert int(Budget(fraction=budget).select(score).sum()) == k  # what a filter with this budget flags
    m = detection_metrics(score, truth, budget)
    hits = int(truth[:k].sum())
    assert _same(m["precision_at_budget"], hits / k if k else nan)
    assert m["recall_at_budget"] == hits / 3


def test_detection_one_class_and_bad_input() -> None:
    m = detection_metrics(np.arange(4.0), np.zeros(4, dtype=bool), 0.5)
    assert math.isnan(m["auroc"]) and math.isnan(m["recall_at_budget"]) and m["precision_at_budget"] == 0
    m = detection_metrics(np.arange(4.0), np.ones(4, dtype=bool), 0.5)
    assert math.isnan(m["auroc"]) and m["precision_at_budget"] == 1 and m["recall_at_budget"] == 0.5
    with pytest.raises(ValueError, match="budget"):
        detection_metrics(np.arange(4.0), np.ones(4, dtype=bool), 1.5)
    with pytest.raises(ValueError, match="budget"):
        detection_metrics(np.arange(4.0), np.ones(4, dtype=bool), -0.1)
    with pytest.raises(ValueError, match="4 values but truth has 3"):
        detection_metrics(np.arange(4.0), np.ones(3, dtype=bool), 0.5)
    with pytest.raises(ValueError, match="truth"):
        detection_metrics(np.arange(3.0), np.array([0.0, 0.5, nan]), 0.5)


# ---------------------------------------------------------------- flag_metrics
def test_flag_metrics_hand_worked() -> None:
    flagged = np.array([True, True, False, False, True])
    truth = np.array([True, False, True, False, True])
    assert flag_metrics(flagged, truth) == {"precision": 2 / 3, "recall": 2 / 3, "n_flagged": 3,
                                            "n_positive": 3, "hits": 2}
    none = flag_metrics(np.zeros(3, dtype=bool), np.array([True, False, False]))
    assert math.isnan(none["precision"]) and none["recall"] == 0 and none["n_flagged"] == 0
    no_pos = flag_metrics(np.array([True, False, False]), np.zeros(3, dtype=bool))
    assert no_pos["precision"] == 0 and math.isnan(no_pos["recall"]) and no_pos["n_positive"] == 0
    empty = flag_metrics(np.zeros(0, dtype=bool), np.zeros(0, dtype=bool))
    assert math.isnan(empty["precision"]) and math.isnan(empty["recall"])


@pytest.mark.parametrize("seed", range(8))
def test_flag_metrics_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    flagged, truth = rng.random(n) < rng.random(), rng.random(n) < rng.random()
    m = flag_metrics(flagged, truth)
    assert _same(m["precision"], precision_score(truth, flagged, zero_division=np.nan))
    assert _same(m["recall"], recall_score(truth, flagged, zero_division=np.nan))
    assert (m["n_flagged"], m["n_positive"], m["hits"]) == (flagged.sum(), truth.sum(), (flagged & truth).sum())


def test_flag_metrics_bad_input() -> None:
    assert flag_metrics([1, 0, 1], [1, 1, 0])["hits"] == 1  # 0/1 integers are booleans
    with pytest.raises(ValueError, match="flagged"):
        flag_metrics(np.array([0.2, 0.9]), np.array([True, False]))
    with pytest.raises(ValueError, match="flagged has 2 values but truth has 3"):
        flag_metrics(np.array([True, False]), np.array([True, False, True]))
    with pytest.raises(ValueError, match="1-D"):
        flag_metrics(np.ones((2, 2), dtype=bool), np.ones((2, 2), dtype=bool))


# ---------------------------------------------------------------- gap_recovered
@pytest.mark.parametrize(("noisy", "curated", "clean", "expected"), [
    (0.5, 0.7, 0.9, 0.5),      # half the gap recovered
    (0.5, 0.9, 0.9, 1.0),      # matches the clean model
    (0.5, 0.5, 0.9, 0.0),      # no better than noisy
    (0.5, 0.4, 0.9, -0.25),    # worse than noisy
    (0.5, 1.0, 0.9, 1.25),     # beats the clean model
    (0.6, 0.7, 0.6, nan),      # no gap: noise did not hurt
    (0.7, 0.8, 0.6, nan),      # negative gap
    (nan, 0.7, 0.9, nan),
    (0.5, nan, 0.9, nan),
])
def test_gap_recovered(noisy: float, curated: float, clean: float, expected: float) -> None:
    assert _same(gap_recovered(noisy, curated, clean), expected)


# ---------------------------------------------------------------- mean_spread
def test_mean_spread_matches_numpy_and_statistics() -> None:
    values = [0.61, 0.72, 0.55, 0.70]
    m = mean_spread(values)
    assert m["mean"] == pytest.approx(statistics.mean(values)) == pytest.approx(np.mean(values))
    assert m["std"] == pytest.approx(statistics.stdev(values)) == pytest.approx(np.std(values, ddof=1))
    assert (m["min"], m["max"], m["n"], m["n_nan"]) == (0.55, 0.72, 4, 0)
    assert mean_spread(np.array([1.0, 3.0])) == {"mean": 2.0, "std": math.sqrt(2), "min": 1.0, "max": 3.0,
                                                 "n": 2, "n_nan": 0}


def test_mean_spread_few_values_and_nan() -> None:
    one = mean_spread([0.4])
    assert (one["mean"], one["min"], one["max"], one["n"]) == (0.4, 0.4, 0.4, 1) and math.isnan(one["std"])
    empty = mean_spread([])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("mean", "std", "min", "max"))
    with_nan = mean_spread([0.2, nan, 0.4])
    assert with_nan["mean"] == pytest.approx(0.3) and with_nan["std"] == pytest.approx(statistics.stdev([0.2, 0.4]))
    assert (with_nan["n"], with_nan["n_nan"]) == (2, 1)
    with pytest.raises(ValueError, match="flat"):
        mean_spread([[1.0, 2.0]])


# ---------------------------------------------------------------- answer_accuracy
def test_answers_correct_hand_worked() -> None:
    cases = [
        ("x = 1\nans = 5", "5", True),
        ("x = 1\nans = 5   \n\n  \n", "5", True),   # trailing whitespace and blank lines
        ("x = 1\r\nans = 5\r\n", "5", True),       # Windows line ends
        ("  ans = 5", "5", True),                  # indentation
        ("ans = 5", " 5 ", True),                  # whitespace around the true answer
        ("", "5", False),                          # empty output
        ("   \n\n", "5", False),                   # blank output
        ("ans = 5\nx = 1", "5", False),            # right answer, not on the last line
        ("ans = 50", "5", False),
        ("ans =5", "5", False),
        ("x = 1\nans = [1, 2]", "[1, 2]", True),
    ]
    got = answers_correct([c[0] for c in cases], [c[1] for c in cases])
    assert got.dtype == bool
    assert got.tolist() == [c[2] for c in cases]
    assert answers_correct([], []).shape == (0,)
    with pytest.raises(ValueError):
        answers_correct(["ans = 1"], ["1", "2"])


def test_answers_with_another_pattern() -> None:
    pattern = r"^#### (-?\d+)$"  # GSM8K-style final line
    cases = [("Tom has 3.\nHe gets 4.\n#### 7", "7", True), ("#### 7 apples", "7", False),
             ("#### -2", "-2", True), ("so 7", "7", False)]
    assert answers_correct([c[0] for c in cases], [c[1] for c in cases], pattern).tolist() == [c[2] for c in cases]
    assert extract_answer("x\nThe answer is 12", r"answer is \d+") == "answer is 12"  # no group: the whole match


def test_hedges_g_matches_scipy_pooled_t_statistic():
    """g = t * sqrt(1/n1 + 1/n2) * J, with t scipy's equal-variance two-sample t statistic."""
    from scipy import stats

    from curation.evaluation import hedges_g

    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 2.0, 5), rng.normal(0.0, 1.0, 4)
    t = stats.ttest_ind(a, b, equal_var=True).statistic
    expected = t * np.sqrt(1 / 5 + 1 / 4) * (1 - 3 / (4 * 9 - 9))
    assert hedges_g(a, b) == pytest.approx(expected)
    assert hedges_g(b, a) == pytest.approx(-expected)
    assert hedges_g([0.2, 0.3, 0.4], [0.1, 0.2, 0.3]) == pytest.approx(0.1 / 0.1 * 0.8)


def test_hedges_g_degenerate_cases():
    from curation.evaluation import hedges_g

    assert np.isnan(hedges_g([1.0], [0.0, 1.0]))
    assert hedges_g([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert hedges_g([2.0, 2.0], [1.0, 1.0]) == float("inf")
