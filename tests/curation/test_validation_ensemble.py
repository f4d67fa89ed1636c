"""Validation with --ensemble: the ensemble's LDS is the mean scores' LDS, its models are cached, and
`curation attribute --strategy auto` applies an ensemble choice. Real retraining, kronfluence, store."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_model
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

import stores
from attribution.data import Samples
from attribution.lds import linear_datamodeling_score
from attribution.score_tables import score_matrix
from attribution.tasks import ClassifierTask
from curation.actions.recipes import MLPRecipe
from curation.cli import app
from curation.steps.validation import ValidationPlan, validate
from curation.steps.validation_retrain import cached_model_path
from curation.steps.validation_settings import (
    Setting,
    ValidationRequestError,
    parse_dampings,
    setting_scores,
)
from tests.helpers import write_jsonl

RECIPE = MLPRecipe(64, (32,), 10, epochs=30)
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> dict:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y
    return {"x": x, "y": y,
            "train": Samples(TensorDataset(torch.tensor(x[:120]), torch.tensor(y[:120])), [f"t{i}" for i in range(120)],
                             "train"),
            "queries": Samples(TensorDataset(torch.tensor(x[1000:1020]), torch.tensor(y[1000:1020])),
                               [f"q{i}" for i in range(20)], "queries")}


def test_ensemble_lds_is_the_lds_of_the_mean_scores(digits, tmp_path) -> None:
    store = stores.open(tmp_path / "s")
    model = RECIPE.fit(RECIPE.fresh(0), digits["train"].data, 0)
    res = validate(store, copy.deepcopy(model), ClassifierTask(), digits["train"], digits["queries"], recipe=RECIPE,
                   plan=ValidationPlan(8, 1, topk_queries=0), strategies=["identity", "ekfac"], dampings=["heuristic"],
                   ensemble=3)
    single = next(r for r in res.results if (r.strategy, r.damping) == res.chosen and r.ensemble == 1)
    ens = next(r for r in res.results if r.ensemble == 3)
    assert (ens.strategy, ens.damping) == res.chosen and ens.label.endswith("+ens3")
    # the members: cached weights of two models trained on the whole set with other seeds
    cfg = store.get_run(res.run_id)["config"]
    paths = sorted((tmp_path / "s").rglob("model-*.safetensors"))
    assert len(paths) == 2
    setting = Setting(ens.strategy, parse_dampings([ens.damping])[0])
    mats = [res.scores[single.label]]
    for p in paths:
        m = RECIPE.fresh(0)
        load_model(m, str(p))
        mats.append(setting_scores(store, m.eval(), ClassifierTask(), digits["train"], digits["queries"], setting))
    assert not np.allclose(mats[1], mats[2])
    np.testing.assert_allclose(res.scores[ens.label], np.mean(mats, axis=0), rtol=1e-6)
    assert ens.lds == pytest.approx(linear_datamodeling_score(np.mean(mats, axis=0), res.masks, res.measured), abs=1e-9)
    # the rule: chosen only when it adds more than the margin
    assert (res.chosen_ensemble == 3) == (ens.lds > single.lds + 0.01)
    assert cfg["chosen"]["ensemble"] == res.chosen_ensemble
    assert len(cfg["chosen"]["ensemble_models"]) == (2 if res.chosen_ensemble == 3 else 0)
    with pytest.raises(ValidationRequestError, match="--ensemble"):
        validate(store, copy.deepcopy(model), ClassifierTask(), digits["train"], digits["queries"], recipe=RECIPE,
                 plan=ValidationPlan(8, 1, topk_queries=0), ensemble=0)


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_attribute_auto_applies_an_ensemble_choice(digits, tmp_path, monkeypatch) -> None:
    import curation.steps.validation as validation

    monkeypatch.setattr(validation, "ENSEMBLE_MARGIN", -1.0)  # choose the ensemble whatever its LDS
    x, y = digits["x"], digits["y"]

    def rows(lo: int, hi: int) -> list[dict]:
        return [{"row": i, **{f"f{j}": float(v) for j, v in enumerate(x[i])}, "label": int(y[i])} for i in range(lo, hi)]

    RECIPE.fit(RECIPE.fresh(0), digits["train"].data, 0).save(tmp_path / "mlp")
    st = str(tmp_path / "st")
    for name, lo, hi in (("train", 0, 120), ("queries", 1000, 1020)):
        res = runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / f"{name}.jsonl", rows(lo, hi))), "-d", name,
                                  "--store", st])
        assert res.exit_code == 0, res.output
    features = ",".join(f"f{j}" for j in range(64))
    common = ["--train", "train", "--queries", "queries", "--model", str(tmp_path / "mlp"), "--features", features,
              "--store", st]
    res = runner.invoke(app, ["validate", *common, "--set", "epochs=30", "--subsets", "6", "--topk-queries", "0",
                              "--strategies", "identity,ekfac", "--dampings", "heuristic", "--ensemble", "3"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "x3 models" in res.output and "averaged over 3 models" in res.output
    validation_run = stores.open(st).runs("validation")["run_id"][0]
    rep = runner.invoke(app, ["report", validation_run, "--out", str(tmp_path / "v.html"), "--store", st])
    assert rep.exit_code == 0, rep.output
    html = (tmp_path / "v.html").read_text()
    assert "x 3 models" in html and "averaged over 3 models</b>" in html
    res = runner.invoke(app, ["attribute", *common, "--task", "classifier", "--strategy", "auto", "--no-outlier-check"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "averaged over 3 models" in res.output
    store = stores.open(st)
    run = store.runs("attribute")["run_id"][0]
    cfg = store.get_run(run)["config"]
    assert cfg["ensemble"]["size"] == 3 and cfg["auto"]["ensemble"] == 3
    members = [score_matrix_of(store, r) for r in cfg["ensemble"]["member_runs"]]
    np.testing.assert_allclose(score_matrix_of(store, run), np.mean(members, axis=0), rtol=1e-5, atol=1e-8)
    # a member's weights gone: a clear error, nothing written
    validation_cfg = store.get_run(cfg["auto"]["validation_run"])["config"]
    cached_model_path(store, validation_cfg["chosen"]["ensemble_models"][0]).unlink()
    n_runs = store.runs("attribute").height
    res = runner.invoke(app, ["attribute", *common, "--task", "classifier", "--strategy", "auto", "--no-outlier-check"])
    assert res.exit_code != 0 and "no longer in the store" in res.output + str(res.exception)
    assert store.runs("attribute").height == n_runs


def score_matrix_of(store: stores.Store, run_id: str) -> np.ndarray:
    """A run's scores as a (queries x samples) matrix in sorted id order."""
    df = store.read_scores(run_id)
    qids, ids = sorted(set(df["query_id"])), sorted(set(df["sample_id"]))
    return score_matrix(store, run_id, qids, ids)
