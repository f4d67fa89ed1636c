"""The one-signal filter: flags exactly the top of a self_scores run, with reasons, as a real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import stores
from filters import Budget, SelfScoreFilter
from stores.ingest import ingest
from tests.helpers import write_jsonl


def test_flags_the_top_scores_of_the_run(tmp_path: Path) -> None:
    store = stores.open(tmp_path / "s")
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(50)]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "d")
    ids = store.read_samples("d", columns=["sample_id"])["sample_id"].to_list()
    values = np.random.default_rng(1).normal(size=49)  # the last sample has no score
    with store.run("test-evidence") as run:
        run.write("self_scores", {"sample_id": ids[:49], "method": ["loss"] * 49, "score": values}, shard=0)
    frun = SelfScoreFilter(run.id, unit="nats", budget=Budget(fraction=0.2)).run(store, "d")
    flags = store.read_flags(frun.run_id)
    assert flags.height == 50 and int(flags["flagged"].sum()) == 10
    expected = {ids[i] for i in np.argsort(-values)[:10]}
    assert set(flags.filter(flags["flagged"])["sample_id"].to_list()) == expected
    by_id = dict(zip(flags["sample_id"].to_list(), flags["reason"].to_list(), strict=True))
    top = ids[int(np.argmax(values))]
    assert by_id[top].startswith("loss ") and "rank 1 of 50" in by_id[top] and "flagged at top 20.0%" in by_id[top]
    assert by_id[ids[49]] == f"no loss score in run {run.id}; kept"
    assert not flags.filter(flags["sample_id"] == ids[49])["flagged"][0]
    config = store.get_run(frun.run_id)["config"]
    assert run.id in str(config)
