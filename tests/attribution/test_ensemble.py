"""Ensembles (attribution.ensemble): the run holds the mean of its members' runs, reruns reuse it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import stores
from attribution.config import EngineConfig
from attribution.data import Samples
from attribution.ensemble import ensemble_matrix, ensemble_pairwise_scores
from attribution.score_tables import score_matrix
from attribution.tasks import ClassifierTask
from curation.actions.recipes import MLPRecipe


@pytest.fixture(scope="module")
def setup() -> dict:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    train = Samples(TensorDataset(x[:80], y[:80]), [f"t{i}" for i in range(80)], "train")
    queries = Samples(TensorDataset(x[900:906], y[900:906]), [f"q{i}" for i in range(6)], "queries")
    recipe = MLPRecipe(64, (16,), 10, epochs=10)
    return {"train": train, "queries": queries,
            "models": [recipe.fit(recipe.fresh(s), train.data, s).eval() for s in range(3)]}


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_the_ensemble_run_is_the_mean_of_its_members(setup, tmp_path) -> None:
    store = stores.open(tmp_path / "s")
    cfg = EngineConfig(strategy="ekfac", batch_size=40, seed=0)
    run = ensemble_pairwise_scores(store, setup["models"], lambda _m: ClassifierTask(), cfg, "b", setup["train"],
                                   setup["queries"], record={"note": "test"})
    qids, ids = setup["queries"].ids, setup["train"].ids
    got = score_matrix(store, run.run_id, qids, ids)
    rec = store.get_run(run.run_id)
    members = rec["config"]["ensemble"]["member_runs"]
    assert len(members) == 3 and len(set(rec["config"]["ensemble"]["member_models"])) == 3
    mats = [score_matrix(store, r, qids, ids) for r in members]
    np.testing.assert_allclose(got, np.mean(mats, axis=0), rtol=1e-5, atol=1e-7 * np.abs(got).max())
    assert not np.allclose(mats[0], mats[1])  # other seeds, other scores: the mean is not any member's
    assert rec["status"] == "finished" and rec["config"]["note"] == "test" and rec["config"]["engine"]["strategy"] == "ekfac"
    again = ensemble_pairwise_scores(store, setup["models"], lambda _m: ClassifierTask(), cfg, "b", setup["train"],
                                     setup["queries"])
    assert again.run_id == run.run_id and again.shards_computed == 0
    # other members, another run
    two = ensemble_pairwise_scores(store, setup["models"][:2], lambda _m: ClassifierTask(), cfg, "b", setup["train"],
                                   setup["queries"])
    assert two.run_id != run.run_id
    np.testing.assert_allclose(score_matrix(store, two.run_id, qids, ids), np.mean(mats[:2], axis=0), rtol=1e-5,
                               atol=1e-7 * np.abs(got).max())


def test_ensemble_matrix_checks_its_input() -> None:
    np.testing.assert_allclose(ensemble_matrix([np.ones((2, 3)), 3 * np.ones((2, 3))]), 2 * np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        ensemble_matrix([np.ones((2, 3)), np.ones((3, 2))])
    with pytest.raises(ValueError, match="at least one"):
        ensemble_matrix([])
