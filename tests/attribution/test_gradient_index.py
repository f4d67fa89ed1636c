"""The gradient index against exact EK-FAC scores on a small MLP (digits): exact, correlated, recalled, resumed.

Reference: the engine's full (queries x training samples) EK-FAC matrix from kronfluence. Measured
on this machine (300 training samples, 16 queries, 1,210 parameters in two Linear layers):
identity projection equals the full scores (max |diff| 2.5e-7 of the largest score); correlation
0.9985 for Rademacher with 8,192 dimensions per module, 0.9965 for Gaussian with 4,096, 0.954 for
Kronecker with 4,096; with 256 per module the approximate search finds 0.76 of each query's exact
top-10, and 0.98 after re-scoring 50 candidates. The thresholds leave room for other BLAS.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

import stores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, score_matrix
from attribution.gradient_index import (
    GradientIndex,
    IndexMismatchError,
    ProjectionSpec,
    build_index,
    find_index,
)
from attribution.models import MLP
from attribution.tasks import ClassifierTask
from stores import vectors as store_vectors
from tests.helpers import fast_gc

N_TRAIN, N_QUERY = 300, 16


def _mlp(seed: int = 0) -> MLP:
    x, y = _digits()
    torch.manual_seed(seed)
    net = MLP(64, [16], 10)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[:N_TRAIN]), y[:N_TRAIN]).backward()
        opt.step()
    return net.eval()


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def _engine(store: stores.Store, net: torch.nn.Module) -> InfluenceEngine:
    return InfluenceEngine(store, net, ClassifierTask(), EngineConfig(batch_size=100, shard_size=N_TRAIN))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small MLP on digits, its engine, and the exact EK-FAC scores of every (query, sample) pair."""
    x, y = _digits()
    train = Samples(TensorDataset(x[:N_TRAIN], y[:N_TRAIN]), [f"t{i}" for i in range(N_TRAIN)], "digits")
    queries = Samples(TensorDataset(x[N_TRAIN: N_TRAIN + N_QUERY], y[N_TRAIN: N_TRAIN + N_QUERY]),
                      [f"q{i}" for i in range(N_QUERY)])
    store = stores.open(tmp_path_factory.mktemp("index") / "s")
    with fast_gc():
        engine = _engine(store, _mlp())
        run = engine.pairwise_scores("b", train, queries)
    full = score_matrix(store, run.run_id, queries.ids, train.ids)
    return {"store": store, "engine": engine, "train": train, "queries": queries, "full": full,
            "top10": np.argsort(-full, axis=1, kind="stable")[:, :10]}


def _approx(mlp: dict, spec: ProjectionSpec, **kwargs) -> tuple[GradientIndex, np.ndarray]:
    build = build_index(mlp["engine"], mlp["train"], spec, shard_size=128, **kwargs)
    index = GradientIndex.open(mlp["engine"], build.run_id)
    _, vectors = store_vectors.read_vectors(mlp["store"], build.run_id)
    return index, index.query_vectors(mlp["queries"]) @ vectors.T


def _recall(found: np.ndarray, exact_top: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact_top, strict=True)]))


def test_identity_projection_gives_the_exact_scores(mlp: dict) -> None:
    index, approx = _approx(mlp, ProjectionSpec(dim=1, kind="identity"))
    scale = np.abs(mlp["full"]).max()
    print(f"identity: max |diff| / max |score| {np.abs(approx - mlp['full']).max() / scale:.2g}")
    assert index.projector.dim == 16 * 65 + 10 * 17  # one entry per parameter
    np.testing.assert_allclose(approx, mlp["full"], rtol=0, atol=1e-5 * scale)


def test_a_large_projection_correlates_with_exact_scores(mlp: dict) -> None:
    for spec, floor in ((ProjectionSpec(dim=8192, seed=1), 0.99), (ProjectionSpec(dim=4096, kind="gaussian"), 0.97),
                        (ProjectionSpec(dim=4096, kind="kronecker"), 0.85)):
        _, approx = _approx(mlp, spec)
        corr = np.corrcoef(approx.ravel(), mlp["full"].ravel())[0, 1]
        print(f"{spec.kind} dim {spec.dim}: correlation {corr:.4f}")
        assert corr > floor


def test_top_k_recall_with_a_small_projection_and_exact_rescoring(mlp: dict) -> None:
    index, approx = _approx(mlp, ProjectionSpec(dim=256))
    approx_recall = _recall(np.argsort(-approx, axis=1)[:, :10], mlp["top10"])
    res = index.search(mlp["queries"], 10, candidates=50, train=mlp["train"])
    table = res.table
    found = table["position"].to_numpy().reshape(N_QUERY, 10)
    rescored_recall = _recall(found, mlp["top10"])
    print(f"dim 256 per module: recall@10 approximate {approx_recall:.2f}, after re-scoring 50 {rescored_recall:.2f}; "
          f"{res.seconds}")
    assert approx_recall >= 0.5 and rescored_recall >= 0.85
    # re-scored values are the exact scores, in descending order, and the ids match the positions
    exact = np.take_along_axis(mlp["full"], found, axis=1)
    np.testing.assert_allclose(table["score"].to_numpy().reshape(N_QUERY, 10), exact, rtol=0,
                               atol=1e-5 * np.abs(mlp["full"]).max())
    assert (np.diff(exact, axis=1) <= 1e-6).all()
    assert table["sample_id"].to_list() == [f"t{p}" for p in table["position"]]
    assert table["query_id"].to_list()[:10] == ["q0"] * 10 and table["rank"].to_list()[:3] == [1, 2, 3]
    # without re-scoring: the approximate top-k; the most harmful end with most="negative"
    fast = index.search(mlp["queries"], 5, rescore=False)
    assert fast.table.height == N_QUERY * 5 and (fast.table["score"] == fast.table["approx_score"]).all()
    worst = index.search(mlp["queries"], 5, candidates=50, train=mlp["train"], most="negative")
    bottom = np.sort(mlp["full"], axis=1)[:, :5]
    assert np.mean(worst.table["score"].to_numpy().reshape(N_QUERY, 5)[:, 0] <= bottom[:, 4] + 1e-9) > 0.8


def test_ivf_search_and_global_projection(mlp: dict) -> None:
    index, _ = _approx(mlp, ProjectionSpec(dim=512, per_module=False), search="ivf", nprobe=2)
    assert index.projector.dim == 512 and index.config["search"]["kind"] == "ivf"
    res = index.search(mlp["queries"], 10, rescore=False)
    assert res.table.height == N_QUERY * 10 and res.table["position"].min() >= 0


def test_an_interrupted_build_resumes_with_identical_vectors(mlp: dict, tmp_path) -> None:
    spec = ProjectionSpec(dim=64, seed=3)
    reference = build_index(mlp["engine"], mlp["train"], spec, shard_size=100)
    _, want = store_vectors.read_vectors(mlp["store"], reference.run_id)

    store = stores.open(tmp_path / "s")
    with fast_gc():
        engine = _engine(store, _mlp())

    def stop(k: int) -> None:
        if k == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(engine, mlp["train"], spec, shard_size=100, on_shard=stop)
    assert store.get_run(reference.run_id)["status"] == "failed"  # same inputs, same run id
    computed: list[int] = []
    again = build_index(engine, mlp["train"], spec, shard_size=100, on_shard=computed.append)
    assert computed == [2] and again.shards_computed == 1 and again.shards_total == 3
    ids, got = store_vectors.read_vectors(store, again.run_id)
    assert ids == mlp["train"].ids and np.array_equal(got, want)
    assert build_index(engine, mlp["train"], spec, shard_size=100).shards_computed == 0  # finished: nothing to do
    run = store.get_run(again.run_id)
    assert run["kind"] == "gradient-index" and run["dataset"] == "digits"
    assert run["config"]["projection"] == {"dim": 64, "seed": 3, "kind": "rademacher", "per_module": True}
    assert run["config"]["dim"] == 128 and run["config"]["factors"].startswith("ekfac-")
    assert find_index(store, "digits") == again.run_id and store_vectors.index_file(store, again.run_id).is_file()
    assert store.sql("SELECT count(*) AS n FROM gradient_vectors")["n"][0] == N_TRAIN


def test_the_index_refuses_another_model_and_bad_settings(mlp: dict) -> None:
    build = build_index(mlp["engine"], mlp["train"], ProjectionSpec(dim=32), shard_size=N_TRAIN)
    with fast_gc():
        other = _engine(mlp["store"], _mlp(seed=1))
    with pytest.raises(IndexMismatchError, match="was built for model"):
        GradientIndex.open(other, build.run_id)
    with pytest.raises(IndexMismatchError, match="not a gradient index"):
        GradientIndex.open(mlp["engine"], mlp["store"].runs("attribute")["run_id"][0])
    for bad in ({"dim": 0}, {"dim": -3}, {"dim": 64, "kind": "sparse"}, {"dim": 97, "kind": "kronecker"}):
        with pytest.raises(ValueError):
            ProjectionSpec(**bad)
    index = GradientIndex.open(mlp["engine"], build.run_id)
    with pytest.raises(ValueError, match="needs the indexed training samples"):
        index.search(mlp["queries"], 5)
    with pytest.raises(IndexMismatchError, match="not the ones"):
        index.search(mlp["queries"], 5, train=mlp["train"].subset(range(10)))
    with pytest.raises(stores.StoreError, match="no gradient index run or dataset"):
        find_index(mlp["store"], "nope")
