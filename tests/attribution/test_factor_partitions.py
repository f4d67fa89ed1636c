"""Factors fitted in kronfluence data partitions, one task each: here and on a real local Ray cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stores
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.tasks import ClassifierTask
from stores.executors import LocalExecutor, RayExecutor

from .conftest import _matrix, _model_copy

N = 150  # training samples (the first of the fixture's)


def _scores(store: stores.Store, setup: dict, executor=None, **cfg) -> np.ndarray:
    engine = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(shard_size=N, **cfg),
                             executor=executor)
    run = engine.pairwise_scores("b", setup["tr"].subset(range(N)), setup["qs"])
    return _matrix(store, run.run_id, setup["qids"], setup["ids"][:N])


def test_partitions_on_ray_give_the_local_partitioned_factors(tmp_path: Path, setup: dict, ray_cluster) -> None:
    local = _scores(stores.open(tmp_path / "local"), setup, factor_partitions=3)
    on_ray = _scores(stores.open(tmp_path / "ray"), setup, RayExecutor(workers=2), factor_partitions=3)
    np.testing.assert_array_equal(on_ray, local)  # same partitions, same per-partition seeds


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_with_the_data_labels_partitions_only_reorder_a_sum(tmp_path: Path, setup: dict) -> None:
    one = _scores(stores.open(tmp_path / "one"), setup, use_empirical_fisher=True)
    three = _scores(stores.open(tmp_path / "three"), setup, use_empirical_fisher=True, factor_partitions=3)
    np.testing.assert_allclose(three, one, rtol=1e-4, atol=1e-5 * np.abs(one).max())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["kfac", "diagonal"])
def test_other_strategies_fit_in_partitions(tmp_path: Path, setup: dict, strategy: str) -> None:
    one = _scores(stores.open(tmp_path / "one"), setup, strategy=strategy, use_empirical_fisher=True)
    two = _scores(stores.open(tmp_path / "two"), setup, strategy=strategy, use_empirical_fisher=True,
                  factor_partitions=2)
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5 * np.abs(one).max())


class _StopAfter(LocalExecutor):
    """A local executor killed after ``n`` tasks (as a killed coordinator would be)."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def run(self, work, shards, on_done):
        for k in shards:
            if self.left == 0:
                raise KeyboardInterrupt("killed")
            self.left -= 1
            on_done(k, work(k))


def test_a_killed_fit_resumes_with_the_partitions_it_has(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    cfg = EngineConfig(shard_size=N, factor_partitions=3)
    train = setup["tr"].subset(range(N))
    with pytest.raises(KeyboardInterrupt):
        InfluenceEngine(store, _model_copy(setup), ClassifierTask(), cfg, executor=_StopAfter(2)).fit_factors(train)
    folder = next((store.root / "artifacts" / "kronfluence").glob("*/factors_*.tmp"))
    kept = {f.name: f.stat().st_ino for f in folder.glob("*_data_partition*")}
    assert len(kept) == 8  # two covariance partitions of four files each
    engine = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), cfg)
    name, reused = engine.fit_factors(train)
    assert not reused and not folder.exists()
    done = store.root / "artifacts" / "kronfluence" / folder.parent.name / f"factors_{name}"
    assert {f.name: f.stat().st_ino for f in done.glob("*_data_partition*") if f.name in kept} == kept
    fresh = _scores(stores.open(tmp_path / "fresh"), setup, factor_partitions=3)
    np.testing.assert_array_equal(_scores(store, setup, factor_partitions=3), fresh)


def test_more_partitions_than_samples_is_refused(tmp_path: Path, setup: dict) -> None:
    with pytest.raises(ValueError, match=f"more than the {N} training samples"):
        _scores(stores.open(tmp_path / "s"), setup, factor_partitions=N + 1)
    with pytest.raises(ValueError, match="at least 1"):
        EngineConfig(factor_partitions=0)
