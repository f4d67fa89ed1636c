"""Each query's top-k scores of a run (stores.topk) equal the window query, on every path it takes."""

from __future__ import annotations

import numpy as np
import pytest

import stores
from stores.errors import QueryError


def _window(store: stores.Store, run_id: str, k: int, bottom: bool = False):
    order = "score ASC" if bottom else "score DESC"
    return store.sql(f"""SELECT behaviour, query_id, sample_id, score FROM scores WHERE run_id = ?
                         QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY {order}, sample_id) <= {k}
                         ORDER BY query_id, {order}, sample_id""", [run_id])


def _run(store: stores.Store, shards: list[tuple[list[str], list[str]]], config: dict, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    with store.run("attribute", config=config) as run:
        for k, (sids, qids) in enumerate(shards):
            scores = rng.integers(-50, 50, size=len(sids)).astype(np.float32)  # many ties
            run.write("scores", {"behaviour": ["b"] * len(sids), "query_id": qids, "sample_id": sids,
                                 "score": scores}, shard=k)
    return run.id


def test_a_full_pairwise_run_takes_its_cut_on_a_tenth_of_the_shards(store: stores.Store) -> None:
    queries = [f"q{j}" for j in range(6)]
    shards = [([f"s{k}-{i}" for i in range(30) for _ in queries], queries * 30) for k in range(20)]
    run_id = _run(store, shards, {"n_queries": len(queries)})
    for k, bottom in ((10, False), (3, True), (1, False)):
        got = store.top_scores(run_id, k, bottom=bottom)
        assert got.equals(_window(store, run_id, k, bottom)) and got.height == 6 * k


def test_queries_spread_over_shards_and_short_queries_are_exact(store: stores.Store) -> None:
    shards = [([f"s{k}-{i}" for i in range(40)], [f"q{k}"] * 30 + ["rare"] * 10) for k in range(12)]
    run_id = _run(store, shards, {"prefilter": {"k": 40}}, seed=1)  # candidate runs: blocks of queries
    got = store.top_scores(run_id, 50)
    assert got.equals(_window(store, run_id, 50))
    assert got.filter(got["query_id"] == "q3").height == 30  # fewer rows than k: all of them


def test_bad_requests_are_refused(store: stores.Store) -> None:
    with pytest.raises(QueryError, match="at least 1"):
        store.top_scores("r", 0)
    with pytest.raises(QueryError, match="no finished scores"):
        store.top_scores("nope", 10)
