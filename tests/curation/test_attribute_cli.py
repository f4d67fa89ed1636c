"""`curation attribute` end to end: a tiny GPT-2 and char tokenizer saved locally, store datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.helpers import save_tiny_lm, write_jsonl

runner = CliRunner()


def test_attribute_scores_a_store_dataset_against_queries(tmp_path: Path) -> None:
    save_tiny_lm(tmp_path / "lm")
    st = str(tmp_path / "st")
    train = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(30)]
    queries = [{"prompt": f"{i}+1=", "completion": f" {i + 1}"} for i in range(40, 44)]
    for name, rows in (("train", train), ("q", queries)):
        res = runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "-d", name, "--store", st])
        assert res.exit_code == 0, res.output
    args = ["attribute", "--train", "train", "--queries", "q", "--model", str(tmp_path / "lm"),
            "--max-length", "16", "--batch-size", "8", "--shard-size", "12", "--self", "--store", st]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "3/3 shards computed" in res.output
    store = stores.open(st)
    df = store.sql("SELECT behaviour, count(*) AS n, count(DISTINCT sample_id) AS samples FROM scores GROUP BY 1")
    assert df.rows() == [("q-completions", 120, 30)]
    assert store.read_self_scores(method="self_ekfac").height == 30
    run = store.runs("attribute").row(0, named=True)
    assert run["dataset"] == "train" and '"strategy": "ekfac"' in run["config"]
    again = runner.invoke(app, args)  # the same request finds the finished run
    assert again.exit_code == 0 and "0/3 shards computed" in again.output


def test_attribute_refuses_missing_model_and_bad_strategy(tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "t.jsonl", [{"text": "1+1=2"}])), "-d", "t", "--store", st])
    res = runner.invoke(app, ["attribute", "--train", "t", "--queries", "t", "--model", "nope", "--strategy", "bogus", "--store", st])
    assert res.exit_code == 2 and "--strategy" in res.output
    res = runner.invoke(app, ["attribute", "--train", "t", "--queries", "t", "--model", str(tmp_path / "nope"), "--store", st])
    assert res.exit_code != 0 and "no such folder" in str(res.exception)


def test_attribute_writes_module_and_token_decompositions(tmp_path: Path) -> None:
    save_tiny_lm(tmp_path / "lm")
    st = str(tmp_path / "st")
    train = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(20)]
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "t.jsonl", train)), "-d", "train", "--store", st])
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "q.jsonl", train[:2])), "-d", "q", "--store", st])
    res = runner.invoke(app, ["attribute", "--train", "train", "--queries", "q", "--model", str(tmp_path / "lm"),
                              "--max-length", "16", "--batch-size", "8", "--per-module", "--explain-top", "2",
                              "--store", st])
    assert res.exit_code == 0, res.output + repr(res.exception)
    store = stores.open(st)
    modules = store.sql("SELECT DISTINCT module FROM score_parts WHERE module IS NOT NULL ORDER BY 1")["module"].to_list()
    assert modules == [f"transformer.h.{i}.mlp.{m}" for i in range(2) for m in ("c_fc", "c_proj")]
    tokens = store.sql("SELECT sample_id, string_agg(token, '' ORDER BY position) AS text FROM score_parts "
                       "WHERE position IS NOT NULL AND query_id = (SELECT min(query_id) FROM score_parts) GROUP BY 1")
    texts = {r["prompt"] + r["completion"] + "<eos>" for r in train}
    assert 1 <= tokens.height <= 4 and set(tokens["text"]) <= texts


def test_attribute_a_tabular_classifier(tmp_path: Path) -> None:
    from sklearn.datasets import load_iris

    from attribution.models import MLP

    x, y = load_iris(return_X_y=True)
    rows = [{f"f{j}": float(v) for j, v in enumerate(xi)} | {"label": int(yi)} for xi, yi in zip(x, y, strict=True)]
    torch.manual_seed(0)
    net = MLP(4, [8], 3)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.save(tmp_path / "mlp")
    st = str(tmp_path / "st")
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "iris.jsonl", rows[::2])), "-d", "iris", "--store", st])
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "q.jsonl", rows[1:12:2])), "-d", "q", "--store", st])
    res = runner.invoke(app, ["attribute", "--task", "classifier", "--train", "iris", "--queries", "q",
                              "--model", str(tmp_path / "mlp"), "--store", st])
    assert res.exit_code == 0, res.output + repr(res.exception)
    store = stores.open(st)
    assert store.sql("SELECT count(*) AS n FROM scores")["n"][0] == 75 * 6
    assert store.behaviour("q-labels")["measurement"] == "neg_margin"
    # the query's own class helps it: same-label training samples score higher on average
    by_label = store.sql("""SELECT t.label = q.label AS same, avg(s.score) AS mean FROM scores s
                            JOIN samples t ON t.sample_id = s.sample_id AND t.dataset = 'iris'
                            JOIN samples q ON q.sample_id = s.query_id AND q.dataset = 'q' GROUP BY 1""")
    means = dict(by_label.iter_rows())
    assert means[True] > means[False]
    bad = runner.invoke(app, ["attribute", "--task", "classifier", "--train", "iris", "--queries", "q",
                              "--model", str(tmp_path / "mlp"), "--features", "f0,f1", "--store", st])
    assert bad.exit_code == 1 and "--features: the model takes 4 features" in str(bad.exception)


def test_report_of_an_attribution_run_is_self_contained_html(tmp_path: Path) -> None:
    save_tiny_lm(tmp_path / "lm")
    st = str(tmp_path / "st")
    train = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(16)]
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "t.jsonl", train)), "-d", "train", "--store", st])
    runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / "q.jsonl", train[:2])), "-d", "q", "--store", st])
    res = runner.invoke(app, ["attribute", "--train", "train", "--queries", "q", "--model", str(tmp_path / "lm"),
                              "--max-length", "16", "--batch-size", "8", "--explain-top", "2", "--store", st])
    assert res.exit_code == 0, res.output
    run_id = stores.open(st).runs("attribute")["run_id"][0]
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", run_id, "--out", str(out), "--store", st])
    assert res.exit_code == 0, res.output + repr(res.exception)
    page = out.read_text()
    for text in ("config and versions", "most positive (helped)", "most negative (hurt)", "<svg", "curation sql"):
        assert text in page
    assert 'class="tok"' in page  # per-token highlighting of the explained samples
    assert "src=\"http" not in page and "href=\"http" not in page  # nothing fetched from the network
    latest = runner.invoke(app, ["report", "--out", str(tmp_path / "latest.html"), "--store", st])
    assert latest.exit_code == 0 and (tmp_path / "latest.html").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the Debian package chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from curation.report import render_page
    from curation.report_check import check_report

    test_report_of_an_attribution_run_is_self_contained_html(tmp_path)
    assert check_report(tmp_path / "r.html", tmp_path / "shot.png") == []
    assert (tmp_path / "shot.png").stat().st_size > 5_000
    broken = tmp_path / "broken.html"
    broken.write_text(render_page("t", "<h1>t</h1>", [("ok", "fine", "<p>x</p>"), ("hole", "empty", "")]))
    problems = check_report(broken)
    assert any("empty section: hole" in p for p in problems), problems
