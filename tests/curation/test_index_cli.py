"""`curation index build` and `curation query` end to end: a tiny GPT-2 and char tokenizer saved locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import stores
from curation.cli import app
from curation.steps.index import QueryRequest, run_query
from tests.helpers import fast_gc, save_tiny_lm, write_jsonl

runner = CliRunner()
TRAIN = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(30)]
QUERIES = [{"prompt": f"{i}+1=", "completion": f" {i + 1}"} for i in range(40, 43)]


def _ok(*args: str) -> str:
    with fast_gc():  # kronfluence collects garbage often: cheap with the heap frozen
        res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.fixture(scope="module")
def lm_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with a training and a query dataset, and a tiny causal LM folder."""
    tmp = tmp_path_factory.mktemp("index-cli")
    save_tiny_lm(tmp / "lm")
    st = str(tmp / "st")
    for name, rows in (("train", TRAIN), ("q", QUERIES)):
        _ok("ingest", str(write_jsonl(tmp / f"{name}.jsonl", rows)), "-d", name, "--store", st)
    return {"tmp": tmp, "st": st, "lm": str(tmp / "lm")}


def _build(s: dict, *extra: str) -> str:
    return _ok("index", "build", "--dataset", "train", "--model", s["lm"], "--max-length", "16", "--batch-size", "8",
               "--shard-size", "12", "--store", s["st"], *extra)


def test_build_then_query_a_text_and_a_dataset(lm_store: dict) -> None:
    s = lm_store
    assert "3/3 shards computed" in _build(s, "--dim", "64")
    assert "0/3 shards computed" in _build(s, "--dim", "64")  # the same request finds the finished index
    store = stores.open(s["st"])
    run = store.runs("gradient-index").row(0, named=True)
    assert run["dataset"] == "train" and run["status"] == "finished"
    assert store.sql("SELECT count(*) AS n, max(len(vector)) AS d FROM gradient_vectors").rows() == [(30, 64 * 4)]

    output = _ok("query", "--index", "train", "--prompt", "40+1=", "--text", " 41", "--k", "5", "--store", s["st"])
    lines = [line for line in output.splitlines() if line.startswith("│")]
    assert len(lines) == 6 and "rank" in lines[0] and "sample_id" in lines[0] and "text" in lines[0]
    assert "+" in lines[1] and "=" in lines[1]  # a snippet of the training text
    assert "exact scores of the best 30 candidates" in output  # 100 asked for, 30 in the index

    output = _ok("query", "--index", run["run_id"], "--queries", "q", "--k", "3", "--write", "--behaviour", "sums",
                 "--store", s["st"])
    assert "written as scores run" in output
    scores = store.sql("SELECT query_id, sample_id, score FROM scores WHERE behaviour = 'sums'")
    assert scores.height == 9 and scores["query_id"].n_unique() == 3
    written = store.runs("query").row(0, named=True)
    assert written["parent_run"] == run["run_id"] and '"rescore": true' in written["config"]


def test_identity_index_of_a_language_model_is_exact(lm_store: dict) -> None:
    s = lm_store
    _build(s, "--projection", "identity", "--dim", "1")
    store = stores.open(s["st"])
    runs = store.runs("gradient-index")
    run_id = runs.filter(runs["config"].str.contains('"identity"'))["run_id"][0]
    approx = run_query(store, QueryRequest(index=run_id, queries="q", k=30, rescore=False)).result.table
    exact = run_query(store, QueryRequest(index=run_id, queries="q", k=30)).result.table
    joined = approx.join(exact, on=["query_id", "sample_id"], suffix="_exact")
    assert joined.height == 90
    scale = float(exact["score"].abs().max())
    np.testing.assert_allclose(joined["score"].to_numpy(), joined["score_exact"].to_numpy(), rtol=0, atol=1e-4 * scale)


def test_clear_errors(lm_store: dict) -> None:
    s = lm_store
    res = runner.invoke(app, ["index", "build", "--dataset", "train", "--model", s["lm"], "--dim", "0", "--store", s["st"]])
    assert res.exit_code == 2 and "--dim" in res.output
    res = runner.invoke(app, ["index", "build", "--dataset", "nope", "--model", s["lm"], "--store", s["st"]])
    assert res.exit_code == 1 and "nope" in str(res.exception)
    res = runner.invoke(app, ["query", "--index", "nope", "--text", "1", "--store", s["st"]])
    assert res.exit_code == 1 and "no gradient index run or dataset named 'nope'" in str(res.exception)
    res = runner.invoke(app, ["query", "--index", "q", "--text", "1", "--store", s["st"]])
    assert res.exit_code == 1 and "build one with `curation index build --dataset q`" in str(res.exception)
    res = runner.invoke(app, ["query", "--index", "train", "--store", s["st"]])
    assert res.exit_code == 2 and "--text" in res.output
    res = runner.invoke(app, ["query", "--index", "train", "--text", "1", "--queries", "q", "--store", s["st"]])
    assert res.exit_code == 2

    other = Path(s["tmp"]) / "other-lm"
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(s["lm"])
    with torch.no_grad():
        model.lm_head.weight.mul_(1.01)  # tied to the embeddings: another model
    model.save_pretrained(other)
    res = runner.invoke(app, ["query", "--index", "train", "--text", "12", "--model", str(other), "--store", s["st"]])
    assert res.exit_code == 1 and "was built for model" in str(res.exception)


def test_a_tabular_classifier_index(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    from attribution.models import MLP

    x, y = load_iris(return_X_y=True)
    rows = [{f"f{j}": float(v) for j, v in enumerate(xi)} | {"label": int(yi)} for xi, yi in zip(x, y, strict=True)]
    torch.manual_seed(0)
    net = MLP(4, [8], 3)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.tensor(x, dtype=torch.float32)), torch.tensor(y)).backward()
        opt.step()
    net.save(tmp_path / "mlp")
    st = str(tmp_path / "st")
    _ok("ingest", str(write_jsonl(tmp_path / "iris.jsonl", rows[::2])), "-d", "iris", "--store", st)
    _ok("ingest", str(write_jsonl(tmp_path / "q.jsonl", rows[1:12:2])), "-d", "q", "--store", st)
    out = _ok("index", "build", "--task", "classifier", "--dataset", "iris", "--model", str(tmp_path / "mlp"),
              "--dim", "32", "--global", "--store", st)
    assert "(32 dimensions)" in out
    store = stores.open(st)
    fast = run_query(store, QueryRequest(index="iris", queries="q", k=4, rescore=False)).result
    exact = run_query(store, QueryRequest(index="iris", queries="q", k=4)).result
    assert fast.table.height == exact.table.height == 24 and not fast.rescored and exact.rescored
    assert "label=" in _ok("query", "--index", "iris", "--queries", "q", "--k", "2", "--store", st)
    res = runner.invoke(app, ["query", "--index", "iris", "--text", "1", "--store", st])
    assert res.exit_code == 1 and "give --queries DATASET instead" in str(res.exception)
