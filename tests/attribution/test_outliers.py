"""Outlier gradients: norms equal kronfluence's identity self-influence; planted outliers found and clipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import stores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.outliers import find_gradient_outliers
from attribution.tasks import ClassifierTask

from .conftest import _model_copy


def _planted(setup: dict, n: int = 120) -> Samples:
    x, y = setup["xt"][:n].clone(), setup["yt"][:n].clone()
    x[7] = x[7] * 60.0  # a blown-up input: its gradient norm dwarfs the median
    y[7] = (y[7] + 1) % 10
    return Samples(TensorDataset(x, y), setup["ids"][:n])


def test_gradient_norms_equal_identity_self_influence(setup: dict, tmp_path: Path) -> None:
    store = stores.open(tmp_path / "s")
    model = _model_copy(setup)
    train = _planted(setup)
    engine = InfluenceEngine(store, model, ClassifierTask(), EngineConfig(strategy="identity", batch_size=32))
    found = engine.gradient_outliers(train)
    sq = store.read_self_scores(engine.self_scores(train).run_id)
    order = {s: i for i, s in enumerate(sq["sample_id"].to_list())}
    self_identity = sq["score"].to_numpy()[[order[s] for s in train.ids]]
    np.testing.assert_allclose(found.norms ** 2, self_identity, rtol=1e-4, atol=1e-6)
    assert found.outlier_ids == [train.ids[7]]
    assert found.threshold == pytest.approx(10 * np.median(found.norms))
    assert "1 training sample(s)" in found.describe() and train.ids[7] in found.describe()


def test_find_gradient_outliers_scale_and_errors() -> None:
    found = find_gradient_outliers(np.array([1.0, 2.0, 1.5, 40.0, 1.2]), list("abcde"), ratio=10)
    assert found.median == 1.5 and found.outlier_ids == ["d"]
    np.testing.assert_allclose(found.scale, [1, 1, 1, 15.0 / 40.0, 1])
    assert found.summary()["largest"][0]["times_median"] == pytest.approx(40 / 1.5)
    with pytest.raises(ValueError, match="above 1"):
        find_gradient_outliers(np.ones(3), list("abc"), ratio=1)
    with pytest.raises(ValueError, match="non-finite"):
        find_gradient_outliers(np.array([1.0, np.nan]), ["a", "b"])
    with pytest.raises(ValueError, match="clip_gradient_ratio"):
        EngineConfig(clip_gradient_ratio=0.5)


def test_clipping_scales_the_outlier_scores_and_is_recorded(setup: dict, tmp_path: Path) -> None:
    train, queries = _planted(setup), setup["qs"]
    runs = {}
    for clip in (None, 10.0):
        store = stores.open(tmp_path / f"s{clip}")
        engine = InfluenceEngine(store, _model_copy(setup), ClassifierTask(),
                                 EngineConfig(batch_size=32, clip_gradient_ratio=clip))
        run = engine.pairwise_scores("b", train, queries)
        runs[clip] = (score_matrix(store, run.run_id, queries.ids, train.ids), store.get_run(run.run_id),
                      engine.gradient_outliers(train))
    plain, clipped = runs[None][0], runs[10.0][0]
    scale = runs[10.0][2].scale
    assert scale[7] < 0.5 and (np.delete(scale, 7) == 1).all()
    np.testing.assert_allclose(clipped, plain * scale[None, :], rtol=1e-5, atol=1e-7)
    recorded = runs[10.0][1]["config"]["gradient_outliers"]
    assert recorded["outliers"] == 1 and recorded["largest"][0]["sample_id"] == train.ids[7]
    assert "gradient_outliers" not in runs[None][1]["config"]
    assert torch.isfinite(torch.tensor(clipped)).all()
