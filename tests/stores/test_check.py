"""check_store: a healthy store passes; each kind of damage is reported with the file it concerns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import stores
from stores.check import CheckReport, check_store
from stores.errors import StoreNotFoundError
from stores.ingest import ingest
from tests.helpers import write_jsonl


def _filled(tmp_path: Path, store: stores.Store) -> dict[str, str]:
    """Two datasets and a finished scores run; the relative paths of their shards."""
    a = ingest(store, write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(30)]), "a", text_field="text")
    b = ingest(store, write_jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(30)]), "b", text_field="text")
    run_id = store.start_run("attribute")
    store.write_scores(run_id, {"behaviour": ["x"] * 4, "query_id": ["q"] * 4, "sample_id": list("abcd"), "score": [1.0] * 4})
    store.finish_run(run_id)

    def rel(table: str, run: str) -> str:
        return str(store.shard_path(table, run, 0).relative_to(store.root))

    return {"a": rel("samples", a.run_id), "b": rel("samples", b.run_id), "scores": rel("scores", run_id), "run": run_id}


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _only(report: CheckReport, kind: str) -> list[str]:
    return [p.path for p in report.problems if p.kind == kind]


def test_healthy_store_passes(tmp_path: Path, store: stores.Store) -> None:
    _filled(tmp_path, store)
    report = check_store(store.root)
    assert report.ok and report.problems == [], report.lines()
    c = report.counts
    assert c["shards"] == c["shards_ok"] == 3 and c["shard_rows"] == 64 and c["runs"] == 3
    assert c["catalog_tables"] == 6 and c["catalog_rows"] > 0
    lines = report.lines()
    assert lines[0] == f"store {store.root}: OK"
    assert any("3 of 3 registered shards intact (64 rows" in line for line in lines)


def test_truncated_shard_is_an_error_naming_the_file(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    shard = store.root / paths["b"]
    shard.write_bytes(shard.read_bytes()[:100])
    report = check_store(store.root)
    assert not report.ok
    assert [(p.path, p.kind, p.severity) for p in report.problems] == [(paths["b"], "shard_size", "error")]
    assert report.counts["shards_ok"] == 2
    assert any(paths["b"] in line and line.startswith("  ERROR") for line in report.lines())
    assert report.lines()[0].endswith("DAMAGED: 1 error")


def test_replaced_shard_with_other_rows_is_reported(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    pq.write_table(pa.table({"dataset": ["a"], "sample_id": ["x"], "ordinal": [0], "text": ["t"]}), store.root / paths["a"])
    report = check_store(store.root, read_data=False)
    kinds = {p.path: p.kind for p in report.problems}
    assert kinds[paths["a"]] in ("shard_size", "shard_rows")
    # same size, different footer: a damaged footer
    shard = store.root / paths["scores"]
    data = bytearray(shard.read_bytes())
    data[-12:-8] = b"\xff\xff\xff\x7f"  # footer length beyond the file
    shard.write_bytes(bytes(data))
    report = check_store(store.root)
    assert {p.path: p.kind for p in report.problems}[paths["scores"]] == "shard_unreadable"


def test_missing_shard_is_reported(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    (store.root / paths["a"]).unlink()
    report = check_store(store.root)
    assert _only(report, "shard_missing") == [paths["a"]] and not report.ok


def test_corrupt_catalog_is_reported_and_shards_still_read(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    shard = store.root / paths["b"]
    shard.write_bytes(shard.read_bytes()[:100])
    with open(store.catalog_path, "r+b") as fh:  # the first block: DuckDB's own metadata
        fh.seek(12288 + 1000)
        fh.write(os.urandom(64))
    with pytest.raises(stores.CatalogCorruptError):
        stores.open(store.root)
    report = check_store(store.root)
    assert not report.ok
    corrupt = [p for p in report.problems if p.kind == "catalog_corrupt"]
    assert [p.path for p in corrupt] == ["catalog.duckdb"] and "backup" in corrupt[0].message
    assert _only(report, "shard_unreadable") == [paths["b"]]  # every file on disk is read instead
    assert report.counts["files_checked"] == 3 and report.counts["files_ok"] == 2


def test_missing_catalog_is_reported(tmp_path: Path, store: stores.Store) -> None:
    _filled(tmp_path, store)
    store.catalog_path.unlink()
    report = check_store(store.root)
    assert _only(report, "catalog_missing") == ["catalog.duckdb"] and report.counts["files_ok"] == 3
    with pytest.raises(StoreNotFoundError):
        check_store(tmp_path / "nowhere")


def test_leftovers_are_warnings_naming_the_file(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    run_dir = (store.root / paths["scores"]).parent
    temp_dir = run_dir / f".part-00001.parquet.tmp-{_dead_pid()}-0badf00d"
    temp_dir.mkdir()
    (temp_dir / "x").write_text("half")
    live = run_dir / f".part-00002.parquet.tmp-{os.getpid()}-00c0ffee"  # a writer of this live process
    live.write_text("in progress")
    shutil.copy(store.root / paths["scores"], run_dir / "part-00007.parquet")  # never registered
    (run_dir / "notes.txt").write_text("?")
    report = check_store(store.root)
    assert report.ok  # nothing a reader sees is damaged
    assert _only(report, "leftover_temp") == [str(temp_dir.relative_to(store.root))]
    assert _only(report, "unregistered_file") == [str((run_dir / "part-00007.parquet").relative_to(store.root))]
    assert _only(report, "unexpected_file") == [str((run_dir / "notes.txt").relative_to(store.root))]
    assert report.counts["in_progress_files"] == 1
    assert all(p.severity == "warning" for p in report.problems)
    assert report.lines()[0].endswith("OK (3 warnings)")


def test_stuck_running_run_is_reported(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    store.execute("UPDATE runs SET pid = ? WHERE run_id = ?", [_dead_pid(), run_id])
    report = check_store(store.root)
    assert _only(report, "stuck_run") == [run_id] and report.ok
    assert store.runs()["status"].to_list() == ["interrupted"]


def test_view_built_around_a_damaged_shard_is_reported(tmp_path: Path, store: stores.Store) -> None:
    paths = _filled(tmp_path, store)
    shard = store.root / paths["b"]
    original = shard.read_bytes()
    shard.write_bytes(original[:100])
    store.refresh_views()  # the samples view now guards the damaged shard
    report = check_store(store.root)
    assert _only(report, "view_guarded") == ["view samples"] and _only(report, "shard_size") == [paths["b"]]
    shard.write_bytes(original)
    assert _only(check_store(store.root), "view_guarded") == ["view samples"]
    store.refresh_views()
    assert check_store(store.root).problems == []
