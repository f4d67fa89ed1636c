"""The pruning filter: drops exactly the chosen end of a value score, as a real flags run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stores
from filters.prune import PruneFilter
from stores.ingest import ingest
from tests.helpers import write_jsonl


@pytest.fixture()
def scored(tmp_path: Path) -> dict:
    store = stores.open(tmp_path / "s")
    ingest(store, write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(40)]), "d")
    ids = store.read_samples("d", columns=["sample_id"])["sample_id"].to_list()
    values = np.random.default_rng(3).normal(size=39)
    values[5] = np.inf  # e.g. a sample never learned (forgetting events)
    with store.run("test-evidence") as run:
        run.write("self_scores", {"sample_id": ids[:39], "method": ["el2n"] * 39, "score": values}, shard=0)
    return {"store": store, "ids": ids, "values": values, "run": run.id}


@pytest.mark.parametrize("end", ["low", "high"])
def test_prunes_exactly_the_chosen_end(scored: dict, end: str) -> None:
    store, ids, values = scored["store"], scored["ids"], scored["values"]
    frun = PruneFilter(scored["run"], 0.25, prune=end).run(store, "d")
    flags = store.read_flags(frun.run_id)
    assert flags.height == 40 and int(flags["flagged"].sum()) == 10
    order = np.argsort(values if end == "low" else -values, kind="stable")[:10]
    assert set(flags.filter(flags["flagged"])["sample_id"].to_list()) == {ids[i] for i in order}
    reason = dict(zip(flags["sample_id"].to_list(), flags["reason"].to_list(), strict=True))
    first = ids[int(order[0])]
    assert reason[first].startswith("el2n ") and f"{'lowest' if end == 'low' else 'highest'}-first rank 1 of 40" in reason[first]
    assert "pruned: among the 25%" in reason[first]
    assert reason[ids[39]] == f"no el2n score in run {scored['run']}; kept"
    assert (ids[5] in set(flags.filter(flags["flagged"])["sample_id"])) == (end == "high")


def test_bad_settings_are_refused(scored: dict) -> None:
    with pytest.raises(ValueError, match="prune must be one of"):
        PruneFilter(scored["run"], 0.2, prune="middle")
    with pytest.raises(ValueError, match="fraction must be in"):
        PruneFilter(scored["run"], 1.5)
