"""Scoring on a real local Ray cluster: the same rows as a local run, resumable, robust to a killed worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stores
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.tasks import ClassifierTask
from attribution.worker import WorkerModelError, save_model_artifact
from stores.executors import RayExecutor
from tests.conftest import kill_a_running_task

from .conftest import _matrix, _model_copy

N = 150  # training samples scored here (the first of the fixture's): 3 shards of 50


def _score(store: stores.Store, setup: dict, executor=None, **kwargs):
    cfg = EngineConfig(strategy="ekfac", shard_size=50)
    engine = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), cfg, executor=executor)
    return engine, engine.pairwise_scores("b", setup["tr"].subset(range(N)), setup["qs"], **kwargs)


def _scores(store: stores.Store, setup: dict, run_id: str) -> np.ndarray:
    return _matrix(store, run_id, setup["qids"], setup["ids"][:N])


@pytest.fixture(scope="module")
def local_scores(tmp_path_factory: pytest.TempPathFactory, setup: dict) -> np.ndarray:
    """The local run's score matrix (shards of 50), the reference of every Ray run here."""
    store = stores.open(tmp_path_factory.mktemp("local") / "s")
    _, run = _score(store, setup)
    return _scores(store, setup, run.run_id)


def test_ray_scores_equal_local_scores(tmp_path: Path, setup: dict, ray_cluster) -> None:
    local_store = stores.open(tmp_path / "local")
    engine, local = _score(local_store, setup, per_module=True)
    want = _scores(local_store, setup, local.run_id)
    store = stores.open(tmp_path / "ray")
    ray_engine, run = _score(store, setup, RayExecutor(workers=2), per_module=True)
    assert run.run_id == local.run_id and run.shards_computed == 3
    np.testing.assert_array_equal(_scores(store, setup, run.run_id), want)
    parts = "SELECT query_id, sample_id, module, score FROM score_parts ORDER BY ALL"
    assert store.sql(parts).equals(local_store.sql(parts))
    assert store.get_run(run.run_id)["config"]["executor"] == "ray"
    ray_self = ray_engine.self_scores(setup["tr"].subset(range(N)))
    local_self = engine.self_scores(setup["tr"].subset(range(N)))
    q = "SELECT sample_id, score FROM self_scores ORDER BY sample_id"
    assert store.sql(q).equals(local_store.sql(q)) and ray_self.shards_computed == 3
    assert local_self.run_id == ray_self.run_id


def test_a_killed_coordinator_resumes_on_ray_with_only_the_missing_shards(tmp_path: Path, setup: dict, ray_cluster,
                                                                           local_scores: np.ndarray) -> None:
    store = stores.open(tmp_path / "s")

    def stop(k: int) -> None:
        raise KeyboardInterrupt("coordinator killed")

    with pytest.raises(KeyboardInterrupt):
        _score(store, setup, RayExecutor(workers=1), on_shard=stop)
    run_id = store.runs("attribute")["run_id"][0]
    assert store.get_run(run_id)["status"] == "failed" and store.read_scores().height == 0
    written = store.completed_shards("scores", run_id)
    assert 1 <= len(written) < 3
    _, resumed = _score(store, setup, RayExecutor(workers=2))
    assert resumed.shards_computed == 3 - len(written)
    np.testing.assert_array_equal(_scores(store, setup, run_id), local_scores)
    assert store.sql("SELECT count(*) - count(DISTINCT (query_id, sample_id)) FROM scores").item() == 0


def test_a_killed_worker_during_scoring_changes_nothing(tmp_path: Path, setup: dict, ray_cluster,
                                                        local_scores: np.ndarray) -> None:
    store = stores.open(tmp_path / "s")
    killed: list[int] = []

    def kill_one(k: int) -> None:
        if not killed and (pid := kill_a_running_task()) is not None:
            killed.append(pid)

    _, run = _score(store, setup, RayExecutor(workers=2), on_shard=kill_one)
    assert killed
    np.testing.assert_array_equal(_scores(store, setup, run.run_id), local_scores)
    assert store.sql("SELECT count(*) FROM shards WHERE table_name = 'scores'").item() == 3


def test_a_worker_refuses_weights_that_are_not_the_model(store: stores.Store, setup: dict) -> None:
    model = _model_copy(setup)
    artifact = save_model_artifact(store, model, "not-its-fingerprint")
    with pytest.raises(WorkerModelError, match="expected not-its-fingerprint"):
        artifact.load()
    good = save_model_artifact(store, model, InfluenceEngine(store, model, ClassifierTask()).model_fingerprint)
    rebuilt = good.load()
    x = setup["xq"]
    assert torch.equal(rebuilt(x), model(x))
