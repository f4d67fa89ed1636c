"""Crash safety and concurrency: SIGKILL mid-ingest, a second writer, parallel ingests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stores
from stores.errors import StoreLockedError
from stores.ingest import ingest
from tests.helpers import arith_rows, write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _big_jsonl(path: Path, n: int) -> Path:
    with open(path, "w") as fh:
        for r in arith_rows(n):
            fh.write(json.dumps(dict(r, pad="x" * 100)) + "\n")
    return path


def test_sigkill_mid_ingest_leaves_no_partial_dataset_and_rerun_matches(tmp_path: Path) -> None:
    src = _big_jsonl(tmp_path / "big.jsonl", 300_000)
    root = tmp_path / "store"
    stores.open(root)
    code = (
        "import sys, stores; from stores.ingest import ingest;"
        "ingest(stores.open(sys.argv[1]), sys.argv[2], 'big', batch_rows=10_000)"
    )
    proc = _python(code, str(root), str(src))
    samples_dir = root / "data" / "samples"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(samples_dir.glob("run=*/part-*.parquet")):
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert any(samples_dir.glob("run=*/part-*.parquet"))  # it really was killed mid-way

    store = stores.open(root)
    assert store.datasets().height == 0
    assert store.sql("SELECT count(*) AS n FROM samples")["n"][0] == 0
    assert store.runs()["status"].to_list() == ["interrupted"]  # its process is gone
    assert store.sql("SELECT status FROM runs")["status"].to_list() == ["running"]  # as the killed process left it

    rerun = ingest(store, src, "big", batch_rows=10_000)
    assert rerun.n_samples == 300_000
    statuses = dict(store.sql("SELECT run_id, status FROM runs").iter_rows())
    assert sorted(statuses.values()) == ["finished", "interrupted"]
    leftover = [p for p in samples_dir.iterdir() if p.name != f"run={rerun.run_id}"]
    assert leftover == []  # the killed run's shards were cleaned up
    fresh = stores.open(tmp_path / "fresh")
    ingest(fresh, src, "big")
    assert store.read_samples("big")["sample_id"].to_list() == fresh.read_samples("big")["sample_id"].to_list()
    assert store.dataset_info("big")["fingerprint"] == fresh.dataset_info("big")["fingerprint"]


HOLD = (
    "import sys, time, stores; s = stores.open(sys.argv[1]);\n"
    "with s.write():\n"
    "    print('locked', flush=True); time.sleep(float(sys.argv[2]))\n"
)


def test_second_writer_gets_clear_error_naming_holder(tmp_path: Path, store: stores.Store) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", arith_rows(10))
    holder = _python(HOLD, str(store.root), "4")
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    with pytest.raises(StoreLockedError, match=rf"in use by pid {holder.pid}.*waited 0.5s"):
        ingest(stores.open(store.root, lock_timeout=0.5), src, "a")
    assert time.monotonic() - t0 < 3
    holder.wait()
    assert store.datasets().height == 0


def test_second_writer_waits_for_the_first(tmp_path: Path, store: stores.Store) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", arith_rows(10))
    holder = _python(HOLD, str(store.root), "1")
    assert holder.stdout.readline().strip() == "locked"
    patient = stores.open(store.root, lock_timeout=30)
    res = ingest(patient, src, "a")
    assert res.n_samples == 10
    assert holder.wait() == 0


def test_parallel_ingests_from_two_processes_both_land(tmp_path: Path, store: stores.Store) -> None:
    code = (
        "import sys, stores; from stores.ingest import ingest;"
        "ingest(stores.open(sys.argv[1], lock_timeout=60), sys.argv[2], sys.argv[3], batch_rows=5000)"
    )
    procs = []
    for i in range(2):
        src = _big_jsonl(tmp_path / f"in{i}.jsonl", 20_000 + i)
        procs.append(_python(code, str(store.root), str(src), f"ds{i}"))
    for p in procs:
        _, errs = p.communicate(timeout=120)
        assert p.returncode == 0, errs
    df = store.sql("SELECT dataset, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1")
    assert df.rows() == [("ds0", 20_000), ("ds1", 20_001)]
