"""The noisy-CoT pipeline on a user's own datasets: word problems with a GSM8K-style answer line.

Not TInt: capitals and punctuation in the text (a tokenizer built from the data's characters),
the answer on a ``#### N`` line (a configurable pattern), held-out splits given by name, and no
planted-truth columns (so no detection metrics and no clean reference, but curation and accuracy).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stores
from curation.cli import app
from stores.ingest import ingest
from tests.helpers import write_jsonl

runner = CliRunner()

NAMES = ["Ann", "Bo", "Cy", "Di"]


def _problem(rng: random.Random, noisy: bool = False) -> dict:
    name, a, b = rng.choice(NAMES), rng.randint(1, 9), rng.randint(1, 9)
    total = a + b + (rng.randint(1, 3) if noisy else 0)
    return {"prompt": f"{name} has {a} pens and buys {b}. How many now?\n",
            "completion": f"{a} + {b} = {total}.\n#### {total}", "answer": str(a + b)}


@pytest.mark.slow  # heavy; `make test-all` runs it (the fast suite must stay under 15 min on 2 cores)
def test_pipeline_curates_a_users_own_word_problems(tmp_path: Path) -> None:
    rng = random.Random(0)
    train = [_problem(rng, noisy=i % 4 == 0) for i in range(160)]
    dev = [_problem(rng) for _ in range(16)]
    test = [_problem(rng) for _ in range(16)]
    st = tmp_path / "store"
    s = stores.open(st)
    for name, rows in (("words_train", train), ("words_dev", dev), ("words_test", test)):
        ingest(s, write_jsonl(tmp_path / f"{name}.jsonl", rows), name)
    cfg = tmp_path / "words.yaml"
    cfg.write_text("""\
name: words
seed: 0
data: {train: words_train, dev: words_dev, test: words_test, answer_field: answer, answer_pattern: '^#### (\\d+)$'}
model: {n_layer: 1, n_embd: 32, n_head: 2, steps: 40, batch_size: 16, max_length: 64}
attribution: {batch_size: 64, max_failing_queries: 8}
filter: {budget: 0.25}
""")
    res = runner.invoke(app, ["run", str(cfg), "--store", str(st)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "words_train: 160 traces (no planted truth)" in res.output
    run = stores.open(st).runs("pipeline").row(0, named=True)
    config = json.loads(run["config"])
    assert config["detection"] == {} and config["recovery"] == {}
    assert config["budget"] == 0.25 and config["n_flagged"] == 40
    curated = config["datasets"]["curated"]
    assert stores.open(st).dataset_info(curated)["n_samples"] == 120
    assert set(config["accuracy"]) == {"noisy", "curated"}
    # the model's tokenizer has the data's own characters: nothing became <unk>
    folder = next((st / "artifacts" / "models").glob("words_train-*"))
    vocab = json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"] if (folder / "tokenizer.json").exists() \
        else json.loads((folder / "vocab.json").read_text())
    assert {"A", "H", "?", "#", "."} <= set(vocab)
    page = tmp_path / "report.html"
    rep = runner.invoke(app, ["report", run["run_id"], "--out", str(page), "--store", str(st)])
    assert rep.exit_code == 0, rep.output + repr(rep.exception)


def test_store_data_config_errors_name_the_key(tmp_path: Path) -> None:
    from curation.config import ConfigError, load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {train: mine}\n")
    try:
        load_config(bad)
    except ConfigError as exc:
        assert "data.test" in str(exc)
    else:
        raise AssertionError("a store train set without a test set must be refused")
    bad.write_text("data: {answer_pattern: '(unclosed'}\n")
    try:
        load_config(bad)
    except ConfigError as exc:
        assert "data.answer_pattern" in str(exc) and "regular expression" in str(exc)
    else:
        raise AssertionError("a bad pattern must be refused")
