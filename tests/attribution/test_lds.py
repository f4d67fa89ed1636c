"""The Linear Datamodeling Score against hand-worked cases and scipy's Spearman correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from attribution.lds import linear_datamodeling_score, per_query_lds


def _additive_world(seed: int = 0, n_train: int = 40, n_queries: int = 5, n_subsets: int = 30):
    """Masks, true per-sample effects and losses that are exactly additive in the members."""
    rng = np.random.default_rng(seed)
    masks = rng.random((n_subsets, n_train)) < 0.5
    effects = rng.normal(size=(n_queries, n_train))  # positive: the sample lowers the loss
    measured = 10.0 - masks.astype(float) @ effects.T  # (subsets, queries)
    return masks, effects, measured


def test_hand_worked_case():
    # 3 training samples, 4 subsets, 1 query. Predicted loss = -(sum of member scores):
    # subsets {0,1}, {0,2}, {1,2}, {0} -> -(3+1), -(3+0), -(1+0), -(3) = -4, -3, -1, -3
    # ranks 1, 2.5, 4, 2.5; measured 0.1, 0.5, 0.9, 0.2 ranks 1, 3, 4, 2.
    # Centred: (-1.5, 0, 1.5, 0) and (-1.5, 0.5, 1.5, -0.5): 4.5 / sqrt(4.5 * 5) = sqrt(0.9).
    masks = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0, 0]], dtype=bool)
    scores = np.array([[3.0, 1.0, 0.0]])
    measured = np.array([[0.1], [0.5], [0.9], [0.2]])
    assert per_query_lds(scores, masks, measured) == pytest.approx([math.sqrt(0.9)])
    assert linear_datamodeling_score(scores, masks, measured) == pytest.approx(math.sqrt(0.9))


def test_true_effects_score_one_and_reversed_minus_one():
    masks, effects, measured = _additive_world()
    assert linear_datamodeling_score(effects, masks, measured) == pytest.approx(1.0)
    assert linear_datamodeling_score(-effects, masks, measured) == pytest.approx(-1.0)
    # only ranks matter: a positive scale per query changes nothing
    scaled = effects * np.array([[0.1], [2.0], [5.0], [1.0], [3e4]])
    assert linear_datamodeling_score(scaled, masks, measured) == pytest.approx(1.0)


def test_matches_scipy_spearman_on_noisy_scores():
    masks, effects, measured = _additive_world(seed=3)
    rng = np.random.default_rng(7)
    scores = effects + rng.normal(scale=1.5, size=effects.shape)
    noisy_measured = measured + rng.normal(scale=0.5, size=measured.shape)
    predicted = -(masks.astype(float) @ scores.T)
    expected = [spearmanr(predicted[:, q], noisy_measured[:, q]).statistic for q in range(scores.shape[0])]
    got = per_query_lds(scores, masks, noisy_measured)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert linear_datamodeling_score(scores, masks, noisy_measured) == pytest.approx(np.mean(expected))
    assert 0.0 < np.mean(expected) < 1.0


def test_ties_are_averaged_like_scipy():
    masks = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=bool)
    scores = np.array([[1.0, 1.0, 2.0]])  # subsets 0 and 1 predict the same loss
    measured = np.array([[3.0], [3.0], [1.0], [0.0], [2.0]])
    predicted = -(masks.astype(float) @ scores.T)[:, 0]
    expected = spearmanr(predicted, measured[:, 0]).statistic
    assert per_query_lds(scores, masks, measured)[0] == pytest.approx(expected)


def test_constant_query_is_nan_and_left_out_of_the_mean():
    masks, effects, measured = _additive_world(n_queries=3)
    measured = measured.copy()
    measured[:, 1] = 4.2  # the retrained models all give this query the same loss
    zero = effects.copy()
    zero[2] = 0.0  # a method that scores nothing for this query predicts a constant
    rhos = per_query_lds(zero, masks, measured)
    assert rhos[0] == pytest.approx(1.0)
    assert np.isnan(rhos[1]) and np.isnan(rhos[2])
    assert linear_datamodeling_score(zero, masks, measured) == pytest.approx(1.0)
    assert math.isnan(linear_datamodeling_score(zero[1:], masks, measured[:, 1:]))


def test_shape_errors_name_the_shapes():
    masks, effects, measured = _additive_world()
    with pytest.raises(ValueError, match="masks cover 39"):
        linear_datamodeling_score(effects, masks[:, :-1], measured)
    with pytest.raises(ValueError, match=r"measured should be \(subsets, queries\)"):
        linear_datamodeling_score(effects, masks, measured.T)
    with pytest.raises(ValueError, match="2-d"):
        linear_datamodeling_score(effects[0], masks, measured)
    with pytest.raises(ValueError, match="at least 2 subsets"):
        linear_datamodeling_score(effects, masks[:1], measured[:1])
