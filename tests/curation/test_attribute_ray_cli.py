"""`curation attribute --executor ray`: a tiny GPT-2 (tied weights, buffers) scored on a local Ray cluster."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import stores
from curation.cli import app
from tests.helpers import save_tiny_lm, write_jsonl

runner = CliRunner()


def test_attribute_on_ray_writes_the_scores_of_a_local_run(tmp_path: Path, ray_cluster) -> None:
    save_tiny_lm(tmp_path / "lm")
    train = [{"prompt": f"{i}+{i % 5}=", "completion": f" {i + i % 5}"} for i in range(24)]
    queries = [{"prompt": f"{i}+1=", "completion": f" {i + 1}"} for i in range(40, 43)]
    got = {}
    for executor in ("local", "ray"):
        st = str(tmp_path / executor)
        for name, rows in (("train", train), ("q", queries)):
            res = runner.invoke(app, ["ingest", str(write_jsonl(tmp_path / f"{name}.jsonl", rows)), "-d", name,
                                      "--store", st])
            assert res.exit_code == 0, res.output
        extra = ["--executor", "ray", "--workers", "2"] if executor == "ray" else []
        extra += ["--factor-partitions", "2"]  # the factor fit in two tasks as well
        res = runner.invoke(app, ["attribute", "--train", "train", "--queries", "q", "--model", str(tmp_path / "lm"),
                                  "--max-length", "16", "--batch-size", "8", "--shard-size", "8",
                                  "--no-outlier-check", "--store", st, *extra])
        assert res.exit_code == 0, res.output + repr(res.exception)
        assert "3/3 shards computed" in res.output
        store = stores.open(st)
        got[executor] = store.sql("SELECT query_id, sample_id, score FROM scores ORDER BY ALL")
    assert got["ray"].height == 72 and got["ray"].equals(got["local"])  # (self-influence: test_engine_ray.py)


def test_executor_options_are_checked_before_any_work(tmp_path: Path) -> None:
    res = runner.invoke(app, ["attribute", "--train", "t", "--queries", "q", "--model", str(tmp_path),
                              "--executor", "slurm", "--store", str(tmp_path / "st")])
    assert res.exit_code == 2 and "expected one of local, ray" in _plain(res.output)
    res = runner.invoke(app, ["attribute", "--train", "t", "--queries", "q", "--model", str(tmp_path),
                              "--workers", "2", "--store", str(tmp_path / "st")])
    assert res.exit_code == 2 and "apply to --executor ray" in _plain(res.output)


def _plain(text: str) -> str:
    """The words of a usage error, without rich's box drawing and line breaks."""
    return " ".join(w for w in text.split() if w not in "│╭╮╰╯─")
