"""Executors on a real local Ray cluster: same shards as local, a killed worker's task retried, failures named."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import stores
from stores.executors import ExecutorError, LocalExecutor, RayExecutor, make_executor
from stores.shards import completed_shards, shard_path, write_shard
from tests.conftest import kill_a_running_task


@dataclass
class SquaresWork:
    """A shard task: rows k*10 .. k*10+9 with their squares, written exclusively; sleeps to be killable."""

    root: str
    run_id: str
    sleep_s: float = 0.0
    fail_on: int | None = None

    def __call__(self, k: int) -> dict:
        store = stores.Store(self.root)
        if k in completed_shards(store, "flags", self.run_id):
            return {"shard": k, "skipped": True, "pid": os.getpid()}
        if k == self.fail_on:
            raise ValueError(f"bad row in shard {k}")
        time.sleep(self.sleep_s)
        ids = [f"s{i}" for i in range(10 * k, 10 * k + 10)]
        rows = pa.table({"sample_id": ids, "filter": ["sq"] * 10, "flagged": [True] * 10,
                         "score": np.arange(10 * k, 10 * k + 10, dtype=np.float64) ** 2, "reason": ["square"] * 10})
        write_shard(store, "flags", self.run_id, rows, shard=k, exclusive=True)
        return {"shard": k, "skipped": False, "pid": os.getpid()}


def _run(store: stores.Store, executor, work: SquaresWork, n: int) -> list[int]:
    order: list[int] = []
    done = completed_shards(store, "flags", work.run_id)
    executor.run(work, [k for k in range(n) if k not in done], lambda k, _r: order.append(k))
    return order


def _rows(store: stores.Store, run_id: str) -> list[tuple]:
    return sorted(store.sql(f"SELECT sample_id, score FROM flags WHERE run_id = '{run_id}'").rows())


def test_ray_writes_the_shards_a_local_run_writes(tmp_path: Path, ray_cluster) -> None:
    out = {}
    for name, executor in (("local", LocalExecutor()), ("ray", RayExecutor(workers=2))):
        store = stores.open(tmp_path / name)
        with store.run("filter", run_id="sq-run") as run:
            order = _run(store, executor, SquaresWork(str(store.root), run.id), 6)
        assert sorted(order) == list(range(6))
        out[name] = _rows(store, "sq-run")
    assert out["local"] == out["ray"] and len(out["ray"]) == 60


def test_a_killed_worker_is_retried_and_no_shard_is_written_twice(tmp_path: Path, ray_cluster) -> None:
    store = stores.open(tmp_path / "s")
    work = SquaresWork(str(store.root), "sq-run", sleep_s=0.5)
    inodes: dict[int, int] = {}
    killed: list[int] = []

    def on_done(k: int, _result) -> None:
        inodes[k] = shard_path(store, "flags", "sq-run", k).stat().st_ino
        if not killed:  # kill a worker in the middle of its task, once
            pid = kill_a_running_task()
            if pid is not None:
                killed.append(pid)

    with store.run("filter", run_id="sq-run"):
        RayExecutor(workers=2).run(work, range(6), on_done)
    assert killed, "no running task was found to kill"
    assert sorted(inodes) == list(range(6))
    for k, ino in inodes.items():  # each shard file is the one first written
        assert shard_path(store, "flags", "sq-run", k).stat().st_ino == ino
    rows = _rows(store, "sq-run")
    assert len(rows) == 60 and len({r[0] for r in rows}) == 60


def test_a_failing_task_names_its_shard_and_a_rerun_computes_only_the_rest(tmp_path: Path, ray_cluster) -> None:
    store = stores.open(tmp_path / "s")
    with pytest.raises(ExecutorError, match=r"shard 3 failed on Ray: ValueError: bad row in shard 3"):
        with store.run("filter", run_id="sq-run"):
            _run(store, RayExecutor(workers=1), SquaresWork(str(store.root), "sq-run", fail_on=3), 5)
    assert store.get_run("sq-run")["status"] == "failed"
    assert completed_shards(store, "flags", "sq-run") == {0, 1, 2}  # in order, one at a time: 0-2 done
    with store.run("filter", run_id="sq-run"):
        redone = _run(store, RayExecutor(workers=2), SquaresWork(str(store.root), "sq-run"), 5)
    assert sorted(redone) == [3, 4]
    assert len(_rows(store, "sq-run")) == 50


def test_an_exclusive_write_never_replaces_a_shard(store: stores.Store) -> None:
    first = write_shard(store, "flags", "r", {"sample_id": ["a"], "filter": ["f"], "flagged": [True], "score": [1.0],
                                              "reason": ["x"]}, shard=0, exclusive=True)
    again = write_shard(store, "flags", "r", {"sample_id": ["a", "b"], "filter": ["f"] * 2, "flagged": [True] * 2,
                                              "score": [2.0, 3.0], "reason": ["y"] * 2}, shard=0, exclusive=True)
    assert again.n_rows == first.n_rows == 1
    assert [p.name for p in (store.root / first.path).parent.iterdir()] == ["part-00000.parquet"]  # no temp left


def test_executor_options_are_checked() -> None:
    assert make_executor("local").name == "local"
    assert make_executor("ray", address="auto", workers=2).describe()["workers"] == 2
    with pytest.raises(ExecutorError, match="expected one of local, ray"):
        make_executor("slurm")
    with pytest.raises(ExecutorError, match="apply to --executor ray"):
        make_executor("local", workers=2)
    with pytest.raises(ExecutorError, match="at least 1"):
        RayExecutor(workers=0)
