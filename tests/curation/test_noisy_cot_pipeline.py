"""The noisy-CoT pipeline end to end on a tiny config: every step, the store's records, resume, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stores
from curation.cli import app
from curation.config import ConfigError, load_config

runner = CliRunner()

TINY = """\
name: tiny
seed: 0
data: {n_train: 240, n_test: 24, n_dev: 20, functions: [add, sub], min_digits: 2, max_digits: 2, dynamic_rate: 0.25}
model: {n_layer: 1, n_embd: 32, n_head: 2, steps: 40, batch_size: 16, max_length: 64}
attribution: {batch_size: 64, max_failing_queries: 8}
filter: {budget: dev, budget_grid: [0.25, 0.5]}
"""


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_pipeline_runs_every_step_and_resumes(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    st = tmp_path / "store"
    res = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    for text in ("detecting dynamic-noise traces", "noisy_cot filter (combined)", "test accuracy",
                 "clean traces only", "curation sql --store"):
        assert text in res.output
    store = stores.open(st)
    pipe = store.runs("pipeline").row(0, named=True)
    config = json.loads(store.sql("SELECT config FROM runs WHERE run_id = ?", [pipe["run_id"]])["config"][0])
    # curated data is named by the flags run it applies: another run never overwrites it
    curated = config["datasets"]["curated"]
    assert curated == f"tiny_curated_{config['flag_runs']['combined']}"
    grid = {f"tiny_curated_{b['flags_run']}" for b in config["budgets"] if b["flags_run"]}
    assert len(grid) == 2 and (curated in grid or config["budget"] == 0)
    assert {"tiny_train", "tiny_test", "tiny_dev", "tiny_clean_only"} | grid <= set(store.datasets()["name"])
    assert set(config["detection"]) == {"dynamic", "overall"}
    assert set(config["detection"]["overall"]) == {"random", "loss", "self_influence", "query_push", "combined"}
    # the budget is the most accurate on dev (ties to the smaller; 0 = keep everything), never chosen on test
    budgets = config["budgets"]
    assert [b["budget"] for b in budgets] == [0.0, 0.25, 0.5]
    best = max(budgets, key=lambda b: (b["dev_acc"], -b["budget"]))
    assert config["budget"] == best["budget"]
    # every method's precision/recall comes from its own flags run at that budget
    n_flag = round(config["budget"] * 240)
    for method, run_id in config["flag_runs"].items():
        flags = store.read_flags(run_id)
        assert flags.height == 240 and int(flags["flagged"].sum()) == n_flag, method
        truth = store.sql("SELECT sample_id, noise <> 'clean' AND trace_changed AS bad FROM samples "
                          "WHERE dataset = 'tiny_train'")
        joined = flags.join(truth, on="sample_id")
        hits = int((joined["flagged"] & joined["bad"]).sum())
        m = config["detection"]["overall"][method]
        assert m["hits"] == hits and m["n_flagged"] == n_flag and m["n_positive"] == int(truth["bad"].sum())
        assert m["recall"] == pytest.approx(hits / int(truth["bad"].sum()))
    assert config["n_flagged"] == n_flag
    # the curated set is the train set minus exactly the combined filter's flagged traces
    combined = config["flag_runs"]["combined"]
    assert store.sql("SELECT count(*) AS n FROM curated_drops WHERE curated = ?", [curated])["n"][0] == n_flag
    assert store.sql("SELECT count(*) AS n FROM curated_drops WHERE curated = ? AND run_id <> ?",
                     [curated, combined])["n"][0] == 0
    assert store.sql("SELECT count(*) AS n FROM samples WHERE dataset = 'tiny_test' AND noise <> 'clean'")["n"][0] == 0
    for held_out in ("tiny_test", "tiny_dev"):
        shared = store.sql("""SELECT count(*) AS n FROM samples a JOIN samples b USING (prompt)
                              WHERE a.dataset = ? AND b.dataset = 'tiny_train'""", [held_out])["n"][0]
        assert shared == 0
    assert store.sql("""SELECT count(*) AS n FROM samples a JOIN samples b USING (prompt)
                        WHERE a.dataset = 'tiny_test' AND b.dataset = 'tiny_dev'""")["n"][0] == 0
    # failing queries are the noisy model's wrong answers to dev problems, never test ones
    failures = store.sql("SELECT prompt FROM samples WHERE dataset = 'tiny_train_failures'")["prompt"].to_list()
    dev = set(store.sql("SELECT prompt FROM samples WHERE dataset = 'tiny_dev'")["prompt"].to_list())
    assert failures and set(failures) <= dev
    page = tmp_path / "report.html"
    rep = runner.invoke(app, ["report", pipe["run_id"], "--out", str(page), "--store", str(st)])
    assert rep.exit_code == 0, rep.output + repr(rep.exception)
    html = page.read_text()
    assert "ROC: dynamic-noise traces" in html and html.count("<polyline") >= 4 and "test accuracy" in html
    push = store.sql("SELECT run_id FROM runs WHERE kind = 'attribute'")["run_id"][0]
    runner.invoke(app, ["report", push, "--out", str(tmp_path / "push.html"), "--store", str(st)])
    assert 'class="tok"' in (tmp_path / "push.html").read_text()  # the pushers' tokens are highlighted
    trains = store.runs("train").height
    assert trains == 4  # noisy, two budget candidates (the chosen one is reused as the curated set), clean-only
    evidence = store.sql("SELECT count(*) AS n FROM runs WHERE kind IN ('attribute', 'self-influence', 'token-scores')")["n"][0]
    again = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert again.exit_code == 0, again.output
    assert store.runs("train").height == trains  # models reused, not retrained
    assert store.sql("SELECT count(*) AS n FROM runs WHERE kind IN ('attribute', 'self-influence', 'token-scores')")["n"][0] == evidence
    kept = {name: store.dataset_info(name)["n_samples"] for name in grid}
    # another test set (no stale cached outputs) and a fixed budget: the first run's curated data stays
    cfg.write_text(TINY.replace("n_test: 24", "n_test: 30").replace("budget: dev, ", "budget: 0.25, "))
    third = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert third.exit_code == 0, third.output + repr(third.exception)
    assert "30 held-out problems" in third.output
    assert {name: store.dataset_info(name)["n_samples"] for name in grid} == kept
    latest = json.loads(store.runs("pipeline").row(0, named=True)["config"])
    assert latest["budget"] == 0.25 and latest["datasets"]["curated"] not in grid
    assert store.dataset_info(latest["datasets"]["curated"])["n_samples"] == 240 - 60


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {n_train: -5, colour: red}\nmodel: {steps: 10}\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    msg = str(err.value)
    assert "data.n_train" in msg and "data.colour" in msg and "Extra inputs" in msg and str(bad) in msg
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+:\d+: not valid YAML"):
        load_config(broken)
    res = runner.invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert res.exit_code != 0 and "no such pipeline config" in str(res.exception)


def test_bundled_config_is_valid() -> None:
    from curation.config import default_config_path

    cfg = load_config(default_config_path())
    assert cfg.data.dynamic_rate == 0.2 and cfg.data.static_rate == 0.2 and cfg.attribution.strategy == "ekfac"
    assert (Path(__file__).parents[2] / "examples" / "noisy_cot.yaml").resolve() == default_config_path().resolve()


@pytest.mark.slow
def test_demo_end_to_end_on_the_bundled_config(tmp_path: Path) -> None:
    """`curation demo` as `make demo` runs it (about 5 minutes on 2 cores), then resumed."""
    res = runner.invoke(app, ["demo", "--store", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "detecting dynamic-noise traces" in res.output and "gap recovered" in res.output
    store = stores.open(tmp_path / "demo")
    combined = store.runs("pipeline").row(0, named=True)["config"]
    assert '"combined"' in combined
    trains = store.runs("train").height
    again = runner.invoke(app, ["demo", "--store", str(tmp_path / "demo")])
    assert again.exit_code == 0 and store.runs("train").height == trains
