"""The engine against exact influence, gradient dot products, retraining, resume and caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import stores
from attribution.data import Samples
from attribution.engine import EngineConfig, InfluenceEngine, model_fingerprint
from attribution.tasks import ClassifierTask
from tests.attribution.conftest import (
    N_QUERY,
    _ce,
    _matrix,
    _model_copy,
    _neg_margin,
    _per_sample_grads,
    _train,
)


def test_identity_equals_gradient_dot_products(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    model = _model_copy(setup)
    g_train = _per_sample_grads(model, _ce, setup["xt"], setup["yt"])
    g_query = _per_sample_grads(model, _neg_margin, setup["xq"], setup["yq"])
    expected = (g_query @ g_train.T).numpy()
    eng = InfluenceEngine(store, model, ClassifierTask(), EngineConfig(strategy="identity", shard_size=128))
    run = eng.pairwise_scores("b", setup["tr"], setup["qs"])
    got = _matrix(store, run.run_id, setup["qids"], setup["ids"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def _exact_damped(model: nn.Module, setup: dict, damping: float) -> np.ndarray:
    """Exact damped Gauss-Newton influence for softmax regression (650 parameters)."""
    xt = setup["xt"]
    a = torch.cat([xt, torch.ones(len(xt), 1)], dim=1).double()  # (N, 65)
    p = model(setup["xt"]).softmax(-1).detach().double()  # (N, 10)
    lam = torch.diag_embed(p) - p.unsqueeze(2) * p.unsqueeze(1)  # (N, 10, 10)
    # G = mean_n (lam_n kron a_n a_n^T) in the (out, in) row-major layout
    g = torch.einsum("nij,nk,nl->ikjl", lam, a, a).reshape(650, 650) / len(xt)
    g_train = _per_sample_grads(model, _ce, setup["xt"], setup["yt"]).double()
    g_query = _per_sample_grads(model, _neg_margin, setup["xq"], setup["yq"]).double()
    h = g + damping * torch.eye(650, dtype=torch.float64)
    return (g_query @ torch.linalg.solve(h, g_train.T)).numpy()


# Measured (seed 0): Pearson 0.918 (EK-FAC) and 0.925 (K-FAC) at damping 1e-2; 0.885 / 0.897 at
# 1e-3 and 0.984 / 0.981 at 1e-1. The sampled-label Fisher and the Kronecker factorisation
# E[aa'] x E[gg'] are the gap; with the empirical Fisher both reach 0.948 at 1e-2.
@pytest.mark.parametrize("strategy,threshold", [("ekfac", 0.9), ("kfac", 0.9)])
def test_kfac_family_tracks_exact_damped_influence(tmp_path: Path, setup: dict, strategy: str, threshold: float) -> None:
    store = stores.open(tmp_path / "s")
    model = _model_copy(setup)
    damping = 1e-2
    exact = _exact_damped(model, setup, damping)
    eng = InfluenceEngine(store, model, ClassifierTask(),
                          EngineConfig(strategy=strategy, damping=damping, shard_size=300))
    run = eng.pairwise_scores("b", setup["tr"], setup["qs"])
    got = _matrix(store, run.run_id, setup["qids"], setup["ids"])
    r = np.corrcoef(got.ravel(), exact.ravel())[0, 1]
    print(f"{strategy}: Pearson vs exact damped GN influence = {r:.4f}")
    assert r >= threshold


def test_sign_positive_means_training_on_it_helps_the_query(tmp_path: Path, setup: dict) -> None:
    """Adding copies of the most positive sample lowers the query's loss; the most negative raises it."""
    store = stores.open(tmp_path / "s")
    model = _model_copy(setup)
    eng = InfluenceEngine(store, model, ClassifierTask(), EngineConfig(strategy="ekfac", shard_size=300))
    run = eng.pairwise_scores("b", setup["tr"], setup["qs"])
    scores = _matrix(store, run.run_id, setup["qids"], setup["ids"])
    xt, yt, xq, yq = setup["xt"], setup["yt"], setup["xq"], setup["yq"]
    base = _train(xt, yt)
    checked = 0
    for q in range(N_QUERY):
        def margin(m: nn.Module, q: int = q) -> float:
            return -_neg_margin(m(xq[q : q + 1]), yq[q : q + 1]).item()

        before = margin(base)
        for idx, direction in ((int(scores[q].argmax()), 1), (int(scores[q].argmin()), -1)):
            more = torch.cat([xt, xt[idx].repeat(10, 1)]), torch.cat([yt, yt[idx].repeat(10)])
            after = margin(_train(*more))
            assert (after - before) * direction > 0, (q, idx, direction, before, after)
            checked += 1
    assert checked == 2 * N_QUERY


def test_resume_after_interruption_gives_identical_scores(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    cfg = EngineConfig(strategy="ekfac", shard_size=64)

    def boom(k: int) -> None:
        if k == 1:
            raise KeyboardInterrupt("killed")

    eng = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), cfg)
    with pytest.raises(KeyboardInterrupt):
        eng.pairwise_scores("b", setup["tr"], setup["qs"], on_shard=boom)
    run_id = store.runs("attribute")["run_id"][0]
    assert store.get_run(run_id)["status"] == "failed"
    assert store.read_scores().height == 0  # nothing visible from the unfinished run
    assert store.completed_shards("scores", run_id) == {0, 1}
    again = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), cfg)
    resumed = again.pairwise_scores("b", setup["tr"], setup["qs"])
    assert resumed.run_id == run_id and resumed.shards_computed == 3 and resumed.shards_total == 5
    fresh_store = stores.open(tmp_path / "fresh")
    fresh = InfluenceEngine(fresh_store, _model_copy(setup), ClassifierTask(), cfg).pairwise_scores("b", setup["tr"], setup["qs"])
    np.testing.assert_array_equal(
        _matrix(store, run_id, setup["qids"], setup["ids"]),
        _matrix(fresh_store, fresh.run_id, setup["qids"], setup["ids"]),
    )


def test_shard_boundaries_do_not_change_scores(tmp_path: Path, setup: dict) -> None:
    out = []
    for size in (37, 300):
        store = stores.open(tmp_path / f"s{size}")
        eng = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(strategy="ekfac", shard_size=size))
        run = eng.pairwise_scores("b", setup["tr"], setup["qs"])
        out.append(_matrix(store, run.run_id, setup["qids"], setup["ids"]))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-6 * np.abs(out[1]).max())


def test_factors_are_cached_by_model_and_data(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    eng = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(strategy="ekfac"))
    name, reused = eng.fit_factors(setup["tr"])
    assert not reused
    again = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(strategy="ekfac"))
    assert again.fit_factors(setup["tr"]) == (name, True)
    other = _model_copy(setup)
    with torch.no_grad():
        other[0].weight.add_(1e-3)
    changed = InfluenceEngine(store, other, ClassifierTask(), EngineConfig(strategy="ekfac"))
    assert changed.model_fingerprint != eng.model_fingerprint
    assert changed.fit_factors(setup["tr"])[1] is False
    subset = TensorDataset(setup["xt"][:100], setup["yt"][:100])
    assert eng.fit_factors(Samples(subset, setup["ids"][:100]))[0] != name


def test_fingerprint_ignores_kronfluence_wrappers(setup: dict) -> None:
    m = _model_copy(setup)
    before = model_fingerprint(m)
    from kronfluence.analyzer import prepare_model

    prepare_model(m, ClassifierTask())
    assert model_fingerprint(m) == before


def test_self_influence_scores_every_sample(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    sub = TensorDataset(setup["xt"][:40], setup["yt"][:40])
    ids = setup["ids"][:40]
    eng = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(strategy="ekfac", shard_size=16))
    run = eng.self_scores(Samples(sub, ids))
    assert run.shards_total == run.shards_computed == 3
    df = store.read_self_scores(run.run_id)
    assert df.height == 40 and set(df["method"]) == {"self_ekfac"}
    assert (df["score"] > 0).all()  # a damped positive-definite form
    again = eng.self_scores(Samples(sub, ids))  # the finished run is found, nothing recomputed
    assert again.run_id == run.run_id and again.shards_computed == 0


def test_same_ids_with_other_data_reuse_nothing(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    eng = InfluenceEngine(store, _model_copy(setup), ClassifierTask(), EngineConfig(strategy="ekfac", shard_size=300))
    first = eng.pairwise_scores("b", setup["tr"], setup["qs"])
    # e.g. another tokenizer or max_length
    rescaled = Samples(TensorDataset(setup["xt"] * 0.5, setup["yt"]), setup["ids"])
    assert eng.fit_factors(rescaled)[1] is False
    second = eng.pairwise_scores("b", rescaled, setup["qs"])
    assert second.run_id != first.run_id and second.shards_computed == 1


def test_candidate_runs_write_exactly_the_full_scores_of_candidate_pairs(tmp_path: Path, setup: dict) -> None:
    store = stores.open(tmp_path / "s")
    ids, qids = setup["ids"], setup["qids"]
    model = _model_copy(setup)
    full_engine = InfluenceEngine(store, model, ClassifierTask(), EngineConfig(shard_size=len(ids)))  # one shard
    full = full_engine.pairwise_scores("b", setup["tr"], setup["qs"])
    dense = _matrix(store, full.run_id, qids, ids)
    eng = InfluenceEngine(store, model, ClassifierTask(), EngineConfig(shard_size=7))  # same factors
    rng = np.random.default_rng(0)
    cand = np.stack([rng.choice(len(ids), 12, replace=False) for _ in qids])
    run = eng.pairwise_scores("b", setup["tr"], setup["qs"], candidates=cand, prefilter={"method": "random"})
    assert run.shards_total == -(-len(qids) // 7)
    df = store.read_scores(run.run_id)
    assert df.height == cand.size
    qi, ti = {q: i for i, q in enumerate(qids)}, {t: i for i, t in enumerate(ids)}
    got = df["score"].to_numpy()
    want = dense[[qi[q] for q in df["query_id"]], [ti[t] for t in df["sample_id"]]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(dense).max())
    cfg = store.get_run(run.run_id)["config"]
    assert cfg["prefilter"]["k"] == 12 and cfg["prefilter"]["method"] == "random"
    with pytest.raises(ValueError, match="candidate indices"):
        eng.pairwise_scores("b", setup["tr"], setup["qs"], candidates=cand + len(ids))
