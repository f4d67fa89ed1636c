"""`curation attribute` end to end: a tiny GPT-2 and char tokenizer saved locally, store datasets."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel
from typer.testing import CliRunner

import stores
from attribution.data import char_tokenizer
from curation.cli import app
from tests.helpers import write_jsonl

runner = CliRunner()


def _save_tiny_lm(folder: Path) -> None:
    tok = char_tokenizer("0123456789+= ")
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)


def test_attribute_scores_a_store_dataset_against_queries(tmp_path: Path) -> None:
    _save_tiny_lm(tmp_path / "lm")
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
    assert res.exit_code != 0 and "no hub downloads" in str(res.exception)
