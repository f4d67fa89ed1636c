"""Baselines: per-sample loss, gradient norm and random scores land in self_scores, exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import stores
from attribution.baselines import gradient_norm_scores, loss_scores, random_scores
from attribution.tasks import ClassifierTask
from tests.attribution.conftest import _ce, _model_copy, _per_sample_grads


def _by_id(store: stores.Store, run_id: str, ids: list[str]) -> np.ndarray:
    df = store.read_self_scores(run_id)
    m = dict(zip(df["sample_id"].to_list(), df["score"].to_list(), strict=True))
    return np.array([m[i] for i in ids])


def test_loss_and_grad_norm_match_direct_computation(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    model = _model_copy(setup)
    expected_loss = torch.nn.functional.cross_entropy(model(setup["xt"]), setup["yt"], reduction="none").detach().numpy()
    expected_norm = _per_sample_grads(model, _ce, setup["xt"], setup["yt"]).norm(dim=1).numpy()
    run = loss_scores(store, model, ClassifierTask(), setup["tr"])
    np.testing.assert_allclose(_by_id(store, run.run_id, setup["ids"]), expected_loss, rtol=1e-5)
    run = gradient_norm_scores(store, model, ClassifierTask(), setup["tr"])
    np.testing.assert_allclose(_by_id(store, run.run_id, setup["ids"]), expected_norm, rtol=1e-4)
    methods = set(store.read_self_scores()["method"])
    assert {"loss", "grad_norm"} <= methods
    assert store.get_run(run.run_id)["kind"] == "baseline"


def test_random_is_seeded_and_idempotent(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    a = random_scores(store, setup["tr"], seed=3)
    again = random_scores(store, setup["tr"], seed=3)
    assert again.run_id == a.run_id and again.shards_computed == 0
    values = _by_id(store, a.run_id, setup["ids"])
    assert ((values >= 0) & (values < 1)).all()
    other = _by_id(store, random_scores(store, setup["tr"], seed=4).run_id, setup["ids"])
    assert not np.allclose(values, other)
