"""The noisy-CoT pipeline end to end on a tiny config: every step, the store's records, resume, config errors."""

from __future__ import annotations

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
data: {n_train: 240, n_test: 24, functions: [add, sub], min_digits: 2, max_digits: 2, dynamic_rate: 0.25}
model: {n_layer: 1, n_embd: 32, n_head: 2, steps: 40, batch_size: 16, max_length: 64}
attribution: {batch_size: 64, max_failing_queries: 8}
filter: {budget: 0.25}
"""


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
    names = set(store.datasets()["name"])
    assert {"tiny_train", "tiny_test", "tiny_curated", "tiny_clean_only"} <= names
    pipe = store.runs("pipeline").row(0, named=True)
    detection = store.sql("SELECT config FROM runs WHERE run_id = ?", [pipe["run_id"]])["config"][0]
    assert '"dynamic"' in detection and '"combined"' in detection
    # the curated set is the train set minus exactly the flagged traces, with reasons in the audit
    flagged = store.sql("SELECT count(*) AS n FROM flags WHERE flagged")["n"][0]
    assert flagged == 60
    assert store.sql("SELECT count(*) AS n FROM curated_drops WHERE curated = 'tiny_curated'")["n"][0] == 60
    assert store.sql("SELECT count(*) AS n FROM samples WHERE dataset = 'tiny_test' AND noise <> 'clean'")["n"][0] == 0
    shared = store.sql("""SELECT count(*) AS n FROM samples a JOIN samples b USING (prompt)
                          WHERE a.dataset = 'tiny_test' AND b.dataset = 'tiny_train'""")["n"][0]
    assert shared == 0
    page = tmp_path / "report.html"
    rep = runner.invoke(app, ["report", pipe["run_id"], "--out", str(page), "--store", str(st)])
    assert rep.exit_code == 0, rep.output + repr(rep.exception)
    html = page.read_text()
    assert "ROC: dynamic-noise traces" in html and html.count("<polyline") >= 4 and "test accuracy" in html
    push = store.sql("SELECT run_id FROM runs WHERE kind = 'attribute'")["run_id"][0]
    runner.invoke(app, ["report", push, "--out", str(tmp_path / "push.html"), "--store", str(st)])
    assert 'class="tok"' in (tmp_path / "push.html").read_text()  # the pushers' tokens are highlighted
    n_runs = store.runs().height
    trains = store.runs("train").height
    assert trains == 3  # noisy, curated, clean-only
    again = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert again.exit_code == 0, again.output
    assert store.runs("train").height == trains  # models reused, not retrained
    assert store.runs().height <= n_runs + 4  # only the filter, two curations and the pipeline record are new
    cfg.write_text(TINY.replace("n_test: 24", "n_test: 30"))  # another test set: no stale cached outputs
    third = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert third.exit_code == 0, third.output + repr(third.exception)
    assert "30 noise-free problems" in third.output


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
    again = runner.invoke(app, ["demo", "--store", str(tmp_path / "demo")])
    assert again.exit_code == 0 and store.runs("train").height == 3
