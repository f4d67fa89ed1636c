"""The engine's ekfac_cg strategy and damping_scale: consistent with EK-FAC, recorded, refused where undefined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kronfluence.factor import config as kronfluence_factor_config

import stores
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.tasks import ClassifierTask

from .conftest import _model_copy


def _scores(setup: dict, store: stores.Store, **cfg) -> tuple[np.ndarray, dict, InfluenceEngine]:
    engine = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(batch_size=64, **cfg))
    run = engine.pairwise_scores("b", setup["tr"], setup["qs"])
    return score_matrix(store, run.run_id, setup["qids"], setup["ids"]), store.get_run(run.run_id), engine


def test_ekfac_cg_starts_from_ekfac_and_records_its_residuals(setup: dict, tmp_path: Path) -> None:
    store = stores.open(tmp_path / "s")
    ekfac, _, _ = _scores(setup, store)
    zero, _, _ = _scores(setup, store, strategy="ekfac_cg", cg_iterations=0)
    # 0 iterations: EK-FAC's scores times a positive factor per query (the rescaled start)
    factor = (zero * ekfac).sum(1, keepdims=True) / (ekfac * ekfac).sum(1, keepdims=True)
    assert (factor > 0).all()
    np.testing.assert_allclose(zero, factor * ekfac, rtol=1e-4, atol=1e-5 * np.abs(zero).max())
    refined, run, engine = _scores(setup, store, strategy="ekfac_cg", cg_iterations=5, cg_max_examples=None)
    cg = run["config"]["conjugate_gradient"]
    assert cg["iterations"] == 5 and cg["fit_examples"] == len(setup["ids"])
    assert cg["residual_after"]["median"] < 0.5 * cg["residual_before"]["median"]
    assert not np.allclose(refined, ekfac)
    # the factors are EK-FAC's, fitted once for both strategies
    assert len(list(engine.analyzer.output_dir.glob("**/factors_ekfac-*"))) == 1
    # candidate scoring gives the same values at the candidate pairs
    cand = np.argsort(-refined, axis=1)[:, :7]
    values = engine.candidate_scores(setup["tr"], setup["qs"], cand)
    np.testing.assert_allclose(values, np.take_along_axis(refined, cand, 1), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="ekfac_cg"):
        engine.self_scores(setup["tr"])


def test_damping_scale_reaches_kronfluence_and_our_candidate_scoring(setup: dict, tmp_path: Path) -> None:
    store = stores.open(tmp_path / "s")
    base, _, _ = _scores(setup, store)
    damped, _, engine = _scores(setup, store, damping_scale=10.0)
    assert not np.allclose(base, damped, rtol=1e-3)
    assert kronfluence_factor_config.HEURISTIC_DAMPING_SCALE == pytest.approx(0.1)  # restored
    cand = np.tile(np.arange(20), (len(setup["qids"]), 1))
    values = engine.candidate_scores(setup["tr"], setup["qs"], cand)  # our preconditioner, same scale
    np.testing.assert_allclose(values, damped[:, :20], rtol=1e-4, atol=1e-6 * np.abs(damped).max())
    with pytest.raises(ValueError, match="damping_scale"):
        EngineConfig(damping=1e-3, damping_scale=2.0)
