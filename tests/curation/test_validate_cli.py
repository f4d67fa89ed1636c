"""`curation validate` end to end: real store, real retraining, real kronfluence, a tiny MLP on digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.helpers import write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these tiny models run several times faster than with two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> dict:
    """A store with 120 training digits and 20 queries, and an MLP trained on the 120 (epochs=30)."""
    from sklearn.datasets import load_digits
    from torch.utils.data import TensorDataset

    from curation.actions.recipes import MLPRecipe

    root = tmp_path_factory.mktemp("validate")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)

    def rows(lo: int, hi: int) -> list[dict]:
        return [{"row": i, **{f"f{j}": float(v) for j, v in enumerate(x[i])}, "label": int(y[i])} for i in range(lo, hi)]

    recipe = MLPRecipe(64, (32,), 10, epochs=30)
    recipe.fit(recipe.fresh(0), TensorDataset(torch.tensor(x[:120]), torch.tensor(y[:120])), 0).save(root / "mlp")
    st = str(root / "st")
    for name, lo, hi in (("train", 0, 120), ("queries", 1000, 1020)):
        res = runner.invoke(app, ["ingest", str(write_jsonl(root / f"{name}.jsonl", rows(lo, hi))), "-d", name, "--store", st])
        assert res.exit_code == 0, res.output
    return {"root": root, "st": st,
            "base": ["validate", "--train", "train", "--queries", "queries", "--model", str(root / "mlp"),
                     "--features", ",".join(f"f{j}" for j in range(64)), "--set", "epochs=30", "--store", st]}


def test_validate_writes_a_run_prints_the_table_and_reports(task) -> None:
    res = runner.invoke(app, [*task["base"], "--subsets", "8", "--topk-queries", "4", "--strategies", "identity,ekfac",
                              "--dampings", "heuristic,x10"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    for text in ("LDS", "95% CI", "top-k effect", "sign agreement", "8 subsets x 1 seed", "chosen:", "ekfac", "x10"):
        assert text in res.output
    store = stores.open(task["st"])
    run = store.runs("validation").row(0, named=True)
    assert run["status"] == "finished" and run["dataset"] == "train"
    cfg = store.get_run(run["run_id"])["config"]
    assert [(r["strategy"], r["damping"]) for r in cfg["results"]] == [("identity", "heuristic"), ("ekfac", "heuristic"),
                                                                      ("ekfac", "x10")]
    assert cfg["trainer"]["epochs"] == 30 and cfg["plan"]["subsets"] == 8
    assert all(r["ci_low"] <= r["lds"] <= r["ci_high"] for r in cfg["results"])
    html = task["root"] / "v.html"
    rep = runner.invoke(app, ["report", run["run_id"], "--out", str(html), "--store", task["st"]])
    assert rep.exit_code == 0, rep.output
    text = html.read_text()
    assert "How much to trust these scores" in text and f"Chosen: {cfg['chosen']['strategy']}" in text


def test_validate_within_a_budget_plans_and_says_so(task) -> None:
    # a budget far above what 8 subsets need, so the plan does not depend on this machine's speed
    res = runner.invoke(app, [*task["base"], "--budget-s", "600", "--max-subsets", "8", "--max-seeds", "1",
                              "--strategies", "identity", "--topk-queries", "0"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "plan:" in res.output and "retraining takes" in res.output and "8 subsets x 1 seed" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--train", "nope"], "no dataset 'nope'"),
    (["--strategies", "ekfac,magic"], "unknown 'magic'"),
    (["--dampings", "lots"], "not a damping"),
    (["--task", "vision"], "--task vision"),
    (["--recipe", "lm"], "does not train"),
    (["--set", "bogus=1"], "unknown setting"),
    (["--train-command", "python x.py"], "{subset}"),
    (["--budget-s", "0.3", "--strategies", "identity"], "too small"),
])
def test_validate_bad_input_fails_clearly_and_writes_no_run(task, args, message) -> None:
    before = stores.open(task["st"]).runs("validation").height
    res = runner.invoke(app, [*task["base"], *args])
    assert res.exit_code != 0
    assert message in str(res.exception) + res.output
    assert stores.open(task["st"]).runs("validation").height == before


def test_validate_a_causal_lm_with_the_built_in_lm_recipe(tmp_path) -> None:
    from tests.helpers import arith_rows, save_tiny_lm

    st = str(tmp_path / "st")
    for name, rows in (("arith", arith_rows(24)), ("asks", arith_rows(3, offset=100))):
        assert runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "-d", name,
                                   "--store", st]).exit_code == 0
    res = runner.invoke(app, ["validate", "--train", "arith", "--queries", "asks", "--model",
                              str(save_tiny_lm(tmp_path / "lm")), "--task", "lm", "--recipe", "lm", "--subsets", "3",
                              "--topk-queries", "0", "--strategies", "identity,ekfac", "--dampings", "heuristic",
                              "--set", "steps=8", "--set", "batch_size=8", "--store", st])
    assert res.exit_code == 0, res.output + repr(res.exception)
    cfg = stores.open(st).get_run(stores.open(st).runs("validation")["run_id"][0])["config"]
    assert cfg["trainer"]["recipe"] == "gpt2" and cfg["trainer"]["steps"] == 8 and cfg["task"] == "CausalLMTask"
    assert len(cfg["results"]) == 2 and all(-1 <= r["lds"] <= 1 for r in cfg["results"])


def test_attribute_auto_takes_the_stored_validations_choice(task) -> None:
    features = ",".join(f"f{j}" for j in range(64))
    attribute = ["attribute", "--train", "train", "--queries", "queries", "--model", str(task["root"] / "mlp"),
                 "--task", "classifier", "--features", features, "--store", task["st"]]
    # no validation of this model on this training set yet: a clear error naming the command to run
    fresh = task["root"] / "other"
    from curation.actions.recipes import MLPRecipe

    MLPRecipe(64, (32,), 10, epochs=1).fresh(5).save(fresh)
    res = runner.invoke(app, [*attribute[:6], str(fresh), *attribute[7:], "--strategy", "auto"])
    assert res.exit_code != 0 and "curation validate --train train" in str(res.exception) + res.output
    res = runner.invoke(app, [*task["base"], "--subsets", "8", "--topk-queries", "4", "--strategies", "identity,ekfac",
                              "--dampings", "heuristic,x10"])
    assert res.exit_code == 0, res.output
    store = stores.open(task["st"])
    validation = store.runs("validation")["run_id"][0]
    chosen = store.get_run(validation)["config"]["chosen"]
    res = runner.invoke(app, [*attribute, "--strategy", "auto"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert f"auto: {chosen['strategy']} with damping {chosen['damping']}" in res.output
    cfg = store.get_run(store.runs("attribute")["run_id"][0])["config"]
    assert cfg["auto"]["validation_run"] == validation and cfg["engine"]["strategy"] == chosen["strategy"]
    # a fixed strategy with the best damping the validation measured for it
    res = runner.invoke(app, [*attribute, "--strategy", "ekfac", "--damping", "auto", "--no-outlier-check"])
    assert res.exit_code == 0, res.output
    cfg = store.get_run(store.runs("attribute")["run_id"][0])["config"]
    assert cfg["engine"]["strategy"] == "ekfac" and cfg["auto"]["damping"] in ("heuristic", "x10")
    res = runner.invoke(app, [*attribute, "--damping", "x10"])
    assert res.exit_code == 0 and "gradient" in res.output  # the outlier check reports either way
    assert store.get_run(store.runs("attribute")["run_id"][0])["config"]["engine"]["damping_scale"] == 10.0
    res = runner.invoke(app, [*attribute, "--damping", "lots"])
    assert res.exit_code != 0 and "expected heuristic" in res.output
