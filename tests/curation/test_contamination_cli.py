"""`curation contamination`, `curation curate --cut-spans` and `curation run` of a contamination config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.curation.test_new_user_errors import one_line_error, run_main
from tests.helpers import write_jsonl

runner = CliRunner()
ITEM_Q = "Janet has 17 red apples and gives 5 of them to her brother who then eats two of them quickly."
ITEM_A = "She has 12 apples left after giving 5 away."
FILLER = " ".join(f"filler{i} text about nothing in particular" for i in range(80))


def _ok(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _corpus(tmp_path: Path) -> str:
    st = str(tmp_path / "st")
    docs = [{"id": f"d{i}", "text": f"document {i} says hello to the world number {i}. " + FILLER} for i in range(30)]
    docs[3]["text"] = FILLER + " " + ITEM_Q.upper() + "\n" + ITEM_A + " " + FILLER
    docs[4]["text"] = "Janet has 99 red apples and gives 3 of them to her brother who then eats two of them quickly."
    docs[5]["text"] = "Janet has red apples. Her brother eats them quickly."  # shares only short phrases
    bench = [{"id": "apples", "question": ITEM_Q, "answer": ITEM_A},
             {"id": "capital", "question": "Which city became the capital of the country after the long war ended?",
              "answer": "The old port city."}]
    _ok("ingest", str(write_jsonl(tmp_path / "t.jsonl", docs)), "--dataset", "train", "--store", st)
    _ok("ingest", str(write_jsonl(tmp_path / "b.jsonl", bench)), "--dataset", "bench", "--store", st)
    return st


def test_contamination_command_flags_documents_and_lists_items(tmp_path: Path) -> None:
    st = _corpus(tmp_path)
    out = _ok("contamination", "--train", "train", "--benchmark", "bench", "--methods", "ngram,coverage",
              "--store", st)
    assert "bench: 1 of 2 items found in train" in out
    s = stores.open(st)
    run = s.sql("SELECT run_id FROM runs WHERE kind = 'filter'")["run_id"][0]
    items = s.sql("SELECT item_name, dirty, forms, n_documents FROM contamination_items WHERE run_id = ? "
                  "ORDER BY item_name", [run])
    assert items.rows() == [("apples", True, "embedded,renumbered", 2), ("capital", False, "", 0)]
    flagged = s.sql("SELECT f.reason, s.id FROM flags f JOIN samples s USING (sample_id) "
                    "WHERE f.run_id = ? AND f.flagged ORDER BY s.id", [run])
    assert flagged["id"].to_list() == ["d3", "d4"]
    assert all("bench:apples" in r for r in flagged["reason"])
    # a second check reuses every evidence run
    assert "reused" in _ok("contamination", "--train", "train", "--benchmark", "bench", "--methods", "ngram",
                           "--store", st)
    # remove whole documents, or cut the matches out
    _ok("curate", "clean", "--from", "train", "--flags", run, "--store", st)
    assert s.dataset_info("clean")["n_samples"] == 28
    out = _ok("curate", "cut", "--from", "train", "--flags", run, "--cut-spans", "--store", st)
    assert "curated_edits" in out
    texts = stores.open(st).read_samples("cut", columns=["id", "text"])
    doc3 = texts.filter(texts["id"] == "d3")["text"][0]
    assert "JANET" not in doc3 and doc3.startswith("filler0") and texts.height == 29   # d4 was all match: dropped
    edits = s.sql("SELECT removed FROM curated_edits WHERE curated = 'cut'")
    assert ITEM_Q.upper() in edits["removed"][0]


def test_bad_benchmarks_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    st = _corpus(tmp_path)
    write_jsonl(tmp_path / "nq.jsonl", [{"prob": "x", "answer": "y"}])
    _ok("ingest", str(tmp_path / "nq.jsonl"), "--dataset", "noq", "--store", st)
    code, _, err = run_main(monkeypatch, capsys, "contamination", "--train", "train", "--benchmark", "noq",
                            "--store", st)
    line = one_line_error(err)
    assert code == 1 and "'noq'" in line and "question" in line and "prob" in line
    write_jsonl(tmp_path / "num.jsonl", [{"question": 5, "answer": "y"}])
    _ok("ingest", str(tmp_path / "num.jsonl"), "--dataset", "num", "--store", st)
    code, _, err = run_main(monkeypatch, capsys, "contamination", "--train", "train", "--benchmark", "num",
                            "--store", st)
    assert code == 1 and "expected text" in one_line_error(err)
    code, _, err = run_main(monkeypatch, capsys, "contamination", "--train", "train", "--benchmark", "bench",
                            "--methods", "ngram,telepathy", "--store", st)
    assert code == 1 and "telepathy" in one_line_error(err)
    code, _, err = run_main(monkeypatch, capsys, "curate", "x", "--from", "train", "--cut-spans", "--store", st)
    assert code == 1 and "exactly one --flags" in one_line_error(err)


def test_pipeline_config_on_store_datasets(tmp_path: Path) -> None:
    st = _corpus(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"pipeline": "contamination", "name": "mine",
                                   "data": {"train": "train", "benchmarks": ["bench"]},
                                   "methods": ["ngram", "coverage", "code"]}))
    out = _ok("run", str(cfg), "--store", st)
    assert "contamination_items" in out
    s = stores.open(st)
    assert {"mine_decontaminated", "mine_cut"} <= set(s.datasets()["name"].to_list())
    run = s.runs("pipeline").row(0, named=True)
    assert '"contamination"' in run["config"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"pipeline": "contamination", "data": {"benchmarks": ["bench"]}}))
    res = runner.invoke(app, ["run", str(bad), "--store", st])
    assert res.exit_code != 0


def test_paraphrase_method_finds_a_reordered_copy_no_ngram_sees(tmp_path: Path) -> None:
    st = _corpus(tmp_path)
    words = (ITEM_Q + " " + ITEM_A).replace(".", "").split()
    shuffled = " ".join(words[i] for i in sorted(range(len(words)), key=lambda i: (i * 7) % len(words)))
    write_jsonl(tmp_path / "p.jsonl", [{"id": "para", "text": shuffled}])
    _ok("ingest", str(tmp_path / "p.jsonl"), "--dataset", "para", "--store", st)
    out = _ok("contamination", "--train", "para", "--benchmark", "bench", "--methods", "ngram,paraphrase",
              "--store", st)
    assert "bench: 1 of 2 items found in para" in out
    s = stores.open(st)
    hits = s.sql("SELECT method, hit FROM contamination_matches m JOIN runs r USING (run_id) "
                 "WHERE r.dataset = 'para' AND hit ORDER BY method")
    assert hits["method"].to_list() == ["paraphrase"]


def test_pipeline_model_arm_adds_influence_and_membership_runs(tmp_path: Path) -> None:
    """``model.train``: a tiny corpus model, its influence rows join the verdict, a membership run."""
    st = _corpus(tmp_path)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({
        "pipeline": "contamination", "name": "m", "data": {"train": "train", "benchmarks": ["bench"]},
        "methods": ["ngram"], "curate": {"drop": False, "cut": False},
        "model": {"train": True, "vocab": 300, "n_layer": 1, "n_embd": 16, "n_head": 2, "steps": 100,
                  "batch_size": 8, "max_length": 32, "top_k": 2}}))
    _ok("run", str(cfg), "--store", st)
    s = stores.open(st)
    run = s.runs("pipeline").row(0, named=True)
    import json

    model = json.loads(run["config"])["model"]
    assert {"model", "influence", "membership"} <= set(model)
    verdict = json.loads(run["config"])["flags_run"]
    evidence = json.loads(s.get_run(verdict)["config"] if isinstance(s.get_run(verdict)["config"], str)
                          else json.dumps(s.get_run(verdict)["config"]))["evidence"]
    assert model["influence"] in evidence
    rows = s.sql("SELECT method, count(*) AS n FROM contamination_matches WHERE run_id = ? GROUP BY 1",
                 [model["influence"]])
    assert rows.rows() == [("influence", 4)]      # top 2 documents for each of the 2 items
    mem = s.sql("SELECT count(DISTINCT method) AS m, count(*) AS n FROM self_scores WHERE run_id = ?",
                [model["membership"]])
    assert mem.row(0) == (4, 8)
