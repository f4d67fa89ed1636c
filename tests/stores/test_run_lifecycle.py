"""The one run lifecycle: ``Store.run`` and the steps it is built on, including finishing inside a transaction."""

from __future__ import annotations

import pytest

import stores

FLAG = {"filter": ["f"], "sample_id": ["s"], "score": [1.0], "flagged": [True], "reason": ["r"]}


def test_a_run_is_finished_when_its_block_ends(store: stores.Store) -> None:
    with store.run("filter", config={"k": 1}, seed=3) as run:
        run.write("flags", FLAG)
        assert run.completed_shards("flags") == {0}
    rec = store.get_run(run.id)
    assert rec["status"] == "finished" and rec["seed"] == 3 and rec["config"] == {"k": 1}
    assert store.read_flags(run.id).height == 1


def test_an_all_or_nothing_run_deletes_its_shards_when_it_fails(store: stores.Store) -> None:
    with pytest.raises(RuntimeError), store.run("filter", all_or_nothing=True) as run:
        run.write("flags", FLAG)
        raise RuntimeError("boom")
    assert not store.shard_dir("flags", run.id).exists()
    rec = store.get_run(run.id)
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: boom"


def test_a_failed_run_keeps_its_shards_and_resumes_with_run_id(store: stores.Store) -> None:
    with pytest.raises(RuntimeError), store.run("attribute") as run:
        run.write("flags", FLAG, shard=0)
        raise RuntimeError("killed")
    with store.run("attribute", run_id=run.id) as resumed:
        assert resumed.completed_shards("flags") == {0}
        resumed.write("flags", FLAG, shard=1)
    assert resumed.id == run.id and store.read_flags(run.id).height == 2


@pytest.mark.parametrize("committed", [True, False])
def test_finish_inside_a_transaction_counts_only_once_committed(store: stores.Store, committed: bool) -> None:
    with pytest.raises(RuntimeError), store.run("filter", all_or_nothing=True) as run:
        run.write("flags", FLAG)
        with store.write():
            run.finish()
            if not committed:  # the transaction rolls back, and the finish with it
                raise RuntimeError("before the commit")
        raise RuntimeError("after the commit")
    rec = store.get_run(run.id)
    if committed:
        assert rec["status"] == "finished" and store.read_flags(run.id).height == 1
    else:
        assert rec["status"] == "failed" and "before the commit" in rec["error"]
        assert not store.shard_dir("flags", run.id).exists() and store.read_flags().height == 0


def test_a_run_finished_in_its_block_is_not_finished_twice(store: stores.Store) -> None:
    with store.run("filter") as run:
        run.write("flags", FLAG)
        infos = run.finish()
    assert [i.shard for i in infos] == [0]
    assert store.sql("SELECT count(*) AS n FROM shards WHERE run_id = ?", [run.id])["n"][0] == 1
