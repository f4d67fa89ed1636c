"""Value scores for pruning: digits with flipped labels (MLP) and TInt traces (tiny GPT-2); real store, engine, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

import curation.steps.value as value_module
import stores
from attribution.data import completion_samples, tabular_samples
from curation.actions.recipes import LMRecipe, MLPRecipe, completion_tensors
from curation.steps.records import ingest_records
from curation.steps.train import train_lm
from curation.steps.value import VALUE_SCORES, value_score_runs
from tests.helpers import fast_gc

N, FLIP = 300, 0.2
FEATURES = [f"v{j}" for j in range(64)]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(12345)  # not the random baseline's stream (default_rng(0)), or it would read the flips
    flipped = rng.random(N + 60) < FLIP
    labels = np.where(flipped, (y[: N + 60] + rng.integers(1, 10, N + 60)) % 10, y[: N + 60])
    store = stores.open(tmp_path_factory.mktemp("value") / "st", create=True)
    rows = [{**dict(zip(FEATURES, map(float, x[i] / 16.0), strict=True)), "label": int(labels[i]), "row": i,
             "flipped": bool(flipped[i])} for i in range(N + 60)]
    ingest_records(store, {"train": rows[:N], "val": [dict(r, label=int(y[r["row"]])) for r in rows[N:]]},
                   config={"test": "value"}, roles={})
    train, _ = tabular_samples(store, "train", FEATURES, "label")
    val, _ = tabular_samples(store, "val", FEATURES, "label")
    meta = store.read_samples("train", columns=["sample_id", "flipped"])
    truth = dict(zip(meta["sample_id"].to_list(), meta["flipped"].to_list(), strict=True))
    recipe = MLPRecipe(64, (32,), 10, epochs=12, batch_size=32)
    with fast_gc():
        res = value_score_runs(store, train, recipe, validation=val, n_models=2, early_epochs=3)
    return {"store": store, "train": train, "val": val, "recipe": recipe, "res": res,
            "truth": np.array([truth[s] for s in train.ids])}


def _values(store, run_id: str, ids: list[str]) -> np.ndarray:
    df = store.read_self_scores(run_id)
    where = dict(zip(df["sample_id"].to_list(), df["score"].to_list(), strict=True))
    return np.array([where[s] for s in ids], dtype=np.float64)


def test_every_score_is_a_run_over_every_sample(noisy: dict) -> None:
    store, res, ids = noisy["store"], noisy["res"], noisy["train"].ids
    assert set(res.runs) == set(VALUE_SCORES)
    for name, run_id in res.runs.items():
        df = store.read_self_scores(run_id)
        assert df.height == len(ids) and set(df["sample_id"]) == set(ids), name
        assert store.get_run(run_id)["status"] == "finished"


def test_hard_scores_single_out_flipped_labels(noisy: dict) -> None:
    store, res, ids, truth = noisy["store"], noisy["res"], noisy["train"].ids, noisy["truth"]
    for name in ("el2n", "grand", "self_influence"):
        assert roc_auc_score(truth, _values(store, res.runs[name], ids)) > 0.75, name
    forgetting = _values(store, res.runs["forgetting"], ids)
    assert roc_auc_score(truth, np.where(np.isinf(forgetting), 1e9, forgetting)) > 0.6
    # a flipped sample hurts the (clean) validation loss: its summed influence is lower
    assert roc_auc_score(truth, -_values(store, res.runs["val_influence"], ids)) > 0.75
    assert 0.3 < roc_auc_score(truth, _values(store, res.runs["random"], ids)) < 0.7


def test_a_repeat_reuses_the_runs(noisy: dict) -> None:
    store = noisy["store"]
    before = store.sql("SELECT count(*) AS n FROM runs")["n"][0]
    with fast_gc():
        again = value_score_runs(store, noisy["train"], noisy["recipe"], validation=noisy["val"], n_models=2,
                                 early_epochs=3)
    assert again.runs == noisy["res"].runs
    assert store.sql("SELECT count(*) AS n FROM runs")["n"][0] == before


def test_bad_requests_are_refused(noisy: dict) -> None:
    store, train, recipe = noisy["store"], noisy["train"], noisy["recipe"]
    with pytest.raises(ValueError, match="unknown value score"):
        value_score_runs(store, train, recipe, scores=["magic"])
    with pytest.raises(ValueError, match="needs a validation set"):
        value_score_runs(store, train, recipe, scores=["val_influence"])
    with pytest.raises(ValueError, match="early_epochs must be in"):
        value_score_runs(store, train, recipe, scores=["el2n"], early_epochs=99)


# ---------------------------------------------------------------------- causal LMs (TInt traces)
@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from curation.datasets.tint import generate_tint, generate_tint_test
    from curation.datasets.tint_traces import CHARSET
    from curation.steps.train import LMConfig, trace_tokenizer

    recs = generate_tint(24, seed=5, functions=("add", "sub"), min_digits=2, max_digits=2, dynamic_rate=0.2)
    val = generate_tint_test(6, seed=5, functions=("add", "sub"), min_digits=2, max_digits=2,
                             exclude_prompts=[r["prompt"] for r in recs])
    store = stores.open(tmp_path_factory.mktemp("lm-value") / "st", create=True)
    ingest_records(store, {"train": recs, "val": val}, config={"test": "lm-value"})
    tok = trace_tokenizer(CHARSET)
    recipe = LMRecipe(tok, LMConfig(n_layer=1, n_embd=16, n_head=2, steps=12, batch_size=8, max_length=64))
    train = completion_samples(store, "train", tok, 64)
    validation = completion_samples(store, "val", tok, 64)
    kw = dict(validation=validation, n_models=2, early_steps=4, forget_every=3)
    with fast_gc():
        res = value_score_runs(store, train, recipe, **kw)
    return {"store": store, "train": train, "recipe": recipe, "res": res, "kw": kw}


def test_lm_scores_are_one_run_each_over_every_sample(traces: dict) -> None:
    store, res, ids = traces["store"], traces["res"], traces["train"].ids
    assert set(res.runs) == set(VALUE_SCORES)
    assert len(set(res.runs.values())) == len(VALUE_SCORES)
    for name, run_id in res.runs.items():
        df = store.read_self_scores(run_id)
        assert df.height == len(ids) and set(df["sample_id"]) == set(ids), name
        assert store.get_run(run_id)["status"] == "finished"
        assert not np.isnan(_values(store, run_id, ids)).any(), name
    assert (_values(store, res.runs["el2n"], ids) > 0).all() and (_values(store, res.runs["grand"], ids) > 0).all()


def test_lm_full_model_is_the_recipes_model(traces: dict) -> None:
    recipe, train = traces["recipe"], traces["train"]
    want = recipe.fit(recipe.fresh(0), train.data, 0).state_dict()
    got = traces["res"].model.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    steps = []
    early = recipe.fresh(0)
    train_lm(early, completion_tensors(train.data), recipe.lm, 0, on_step=lambda step, m: steps.append(step), stop=4)
    assert steps == [1, 2, 3, 4] and not early.training


def test_lm_repeat_reuses_the_runs_without_recomputing(traces: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    store = traces["store"]
    before = store.sql("SELECT count(*) AS n FROM runs")["n"][0]

    def refuse(*args, **kwargs):
        raise AssertionError("a finished score was recomputed")

    for name in ("lm_el2n_scores", "lm_grand_scores", "sequences_learned"):
        monkeypatch.setattr(value_module, name, refuse)
    with fast_gc():
        again = value_score_runs(store, traces["train"], traces["recipe"], **traces["kw"])
    assert again.runs == traces["res"].runs
    assert store.sql("SELECT count(*) AS n FROM runs")["n"][0] == before


def test_bad_lm_requests_are_refused(traces: dict) -> None:
    store, train, recipe = traces["store"], traces["train"], traces["recipe"]
    with pytest.raises(ValueError, match="early_steps must be in"):
        value_score_runs(store, train, recipe, scores=["el2n"], early_steps=99)
    with pytest.raises(ValueError, match="forget_every must be in"):
        value_score_runs(store, train, recipe, scores=["forgetting"], forget_every=0)
