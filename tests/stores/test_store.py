"""The catalog: runs, shards, views of finished runs only, schema versions, moved stores, plain DuckDB."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

import stores
from stores.errors import (
    CatalogCorruptError,
    QueryError,
    SchemaVersionError,
    ShardDamagedError,
    StoreError,
    StoreNotFoundError,
)
from stores.ingest import ingest
from tests.helpers import arith_rows, write_jsonl


def _scores(n: int, behaviour: str = "b") -> dict:
    return {
        "behaviour": [behaviour] * n,
        "query_id": [f"q{i % 3}" for i in range(n)],
        "sample_id": [f"s{i}" for i in range(n)],
        "score": [float(i) for i in range(n)],
    }


def test_new_store_has_every_table_and_view(store: stores.Store) -> None:
    df = store.tables()
    kinds = dict(zip(df["name"], df["kind"], strict=True))
    for t in ("datasets", "runs", "behaviours", "curated", "shards", "meta"):
        assert kinds[t] == "table"
    for v in ("samples", "scores", "self_scores", "flags", "curated_drops"):
        assert kinds[v] == "view"
    assert df["rows"].sum() == 4  # only meta's rows


def test_open_without_create_on_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no store at"):
        stores.open(tmp_path / "nope", create=False)


def test_shards_visible_only_when_run_finished(store: stores.Store) -> None:
    run_id = store.start_run("attribute", config={"strategy": "ekfac"}, seed=7)
    store.write_scores(run_id, _scores(10), shard=0)
    store.write_scores(run_id, _scores(5, "c"), shard=1)
    assert store.completed_shards("scores", run_id) == {0, 1}
    assert store.sql("SELECT count(*) AS n FROM scores")["n"][0] == 0
    store.finish_run(run_id)
    df = store.read_scores(run_id)
    assert df.height == 15 and set(df["run_id"]) == {run_id}
    assert df.schema["score"] == pl.Float32
    assert store.read_scores(behaviour="c").height == 5
    lazy = store.scan("scores", run_id).filter(pl.col("behaviour") == "b").collect()
    assert lazy.height == 10 and lazy.columns == df.columns
    assert store.scan("flags").collect().height == 0
    run = store.get_run(run_id)
    assert run["seed"] == 7 and run["config"] == {"strategy": "ekfac"} and run["status"] == "finished"


def test_failed_run_stays_invisible(store: stores.Store) -> None:
    with pytest.raises(RuntimeError), store.run("filter", dataset="x") as run:
        run.write("flags", {"filter": ["f"], "sample_id": ["s"], "score": [1.0], "flagged": [True], "reason": ["r"]})
        raise RuntimeError("boom")
    assert store.read_flags().height == 0
    rec = store.get_run(run.id)
    assert rec["status"] == "failed" and "boom" in rec["error"]


def test_resuming_a_failed_run_keeps_its_shards(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    store.write_scores(run_id, _scores(4), shard=0)
    store.fail_run(run_id, "killed")
    assert store.start_run("attribute", run_id=run_id) == run_id
    assert store.completed_shards("scores", run_id) == {0}
    store.write_scores(run_id, _scores(4), shard=1)
    store.finish_run(run_id)
    assert store.read_scores(run_id).height == 8
    with pytest.raises(StoreError, match="already finished"):
        store.start_run("attribute", run_id=run_id)


def test_shard_schema_is_checked(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    with pytest.raises(StoreError, match="missing column"):
        store.write_scores(run_id, {"sample_id": ["a"], "score": [1.0]})
    with pytest.raises(StoreError, match="unexpected column"):
        store.write_scores(run_id, dict(_scores(1), extra=[1]))


def test_shards_written_by_another_process_are_registered(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    code = (
        "import stores, sys;"
        f"s = stores.Store({str(store.root)!r});"
        "[s.write_self_scores(sys.argv[1], {'sample_id': [f'w{k}'], 'method': ['loss'], 'score': [float(k)]}, shard=k) for k in range(3)]"
    )
    subprocess.run([sys.executable, "-c", code, run_id], check=True)
    (store.shard_dir("self_scores", run_id) / "part-00003.parquet").write_text("not parquet")
    with pytest.raises(StoreError, match="part-00003.parquet is not a readable Parquet file"):
        store.finish_run(run_id)
    (store.shard_dir("self_scores", run_id) / "part-00003.parquet").unlink()
    infos = store.finish_run(run_id)
    assert [i.shard for i in infos] == [0, 1, 2]
    assert sorted(store.read_self_scores(method="loss")["sample_id"]) == ["w0", "w1", "w2"]


def test_sql_is_read_only_by_default(store: stores.Store) -> None:
    with pytest.raises(QueryError, match="read-only"):
        store.sql("DELETE FROM runs")
    store.execute("CREATE TABLE notes AS SELECT 1 AS x")
    assert store.sql("SELECT x FROM notes")["x"].to_list() == [1]


def test_schema_version_mismatch_is_explained(store: stores.Store) -> None:
    con = duckdb.connect(str(store.catalog_path))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaVersionError, match="schema version 999; this curation .* reads version 1. Upgrade"):
        stores.open(store.root)


def test_foreign_duckdb_file_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    con = duckdb.connect(str(tmp_path / "s" / "catalog.duckdb"))
    con.execute("CREATE TABLE other (x INT)")
    con.close()
    with pytest.raises(SchemaVersionError, match="not a curation store"):
        stores.open(tmp_path / "s")


def test_plain_duckdb_sees_the_same_tables(tmp_path: Path, store: stores.Store) -> None:
    ingest(store, write_jsonl(tmp_path / "a.jsonl", arith_rows(20)), "a")
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    n = con.execute("SELECT count(*) FROM samples WHERE dataset = 'a'").fetchall()[0][0]
    names = {r[0] for r in con.execute("SELECT name FROM datasets").fetchall()}
    con.close()
    assert n == 20 and names == {"a"}


def test_moved_store_still_answers(tmp_path: Path, store: stores.Store) -> None:
    ingest(store, write_jsonl(tmp_path / "a.jsonl", arith_rows(12)), "a")
    moved = tmp_path / "moved"
    shutil.move(str(store.root), moved)
    reopened = stores.open(moved)
    assert reopened.sql("SELECT count(*) AS n FROM samples")["n"][0] == 12
    reopened.refresh_views()  # rewrites the view paths for plain DuckDB users
    con = duckdb.connect(str(moved / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM samples").fetchall()[0][0] == 12
    con.close()


def test_samples_view_unions_datasets_by_column_name(tmp_path: Path, store: stores.Store) -> None:
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "label": 1}]), "a")
    ingest(store, write_jsonl(tmp_path / "b.jsonl", [{"text": "y", "label": "neg", "extra": 2}]), "b")
    df = store.sql("SELECT dataset, text, label, extra FROM samples ORDER BY dataset")
    assert df.rows() == [("a", "x", "1", None), ("b", "y", "neg", 2)]


def test_behaviours_validate_query_ids(tmp_path: Path, store: stores.Store) -> None:
    ingest(store, write_jsonl(tmp_path / "q.jsonl", arith_rows(5)), "q")
    ids = store.read_samples("q")["sample_id"].to_list()
    store.add_behaviour("answers", "q", "completion_logprob", query_ids=ids[:2], description="first two")
    rec = store.behaviour("answers")
    assert rec["query_ids"] == ids[:2] and rec["measurement"] == "completion_logprob"
    store.add_behaviour("all", "q", "completion_logprob")
    assert store.behaviour("all")["query_ids"] == ids
    with pytest.raises(StoreError, match="not in dataset"):
        store.add_behaviour("bad", "q", "m", query_ids=["nope"])
    with pytest.raises(StoreError, match="exists"):
        store.add_behaviour("answers", "q", "m")


def test_unknown_dataset_lists_known(tmp_path: Path, store: stores.Store) -> None:
    ingest(store, write_jsonl(tmp_path / "k.jsonl", arith_rows(2)), "known")
    with pytest.raises(stores.UnknownDatasetError, match="known: known"):
        store.read_samples("other")


def test_invalid_names_rejected(store: stores.Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="invalid dataset name"):
        ingest(store, write_jsonl(tmp_path / "x.jsonl", arith_rows(1)), "../evil")


def test_drop_dataset_removes_files(tmp_path: Path, store: stores.Store) -> None:
    res = ingest(store, write_jsonl(tmp_path / "x.jsonl", arith_rows(3)), "x")
    store.drop_dataset("x")
    assert store.datasets().height == 0 and not store.shard_dir("samples", res.run_id).exists()
    assert store.get_run(res.run_id)["status"] == "superseded"


def test_shard_target_lets_other_tools_write_shards(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    con = duckdb.connect()
    select = (
        "SELECT ? AS run_id, 'b' AS behaviour, 'q' AS query_id, 's' || i AS sample_id, "
        "i::{} AS score FROM range(5) t(i)"
    )
    with store.shard_target("scores", run_id, 0) as tmp:
        con.execute(f"COPY ({select.format('DOUBLE')}) TO '{tmp}' (FORMAT parquet)", [run_id])
    with pytest.raises(StoreError, match="score is double, expected float"):
        store.finish_run(run_id)
    with store.shard_target("scores", run_id, 0) as tmp:
        con.execute(f"COPY ({select.format('FLOAT')}) TO '{tmp}' (FORMAT parquet)", [run_id])
    with pytest.raises(RuntimeError), store.shard_target("scores", run_id, 1) as tmp:
        tmp.write_text("half a file")
        raise RuntimeError("worker died")
    assert store.completed_shards("scores", run_id) == {0}
    store.finish_run(run_id)
    assert store.read_scores(run_id)["score"].sum() == 10


def _two_datasets_and_scores(tmp_path: Path, store: stores.Store) -> tuple[str, str]:
    """Datasets a and b and one finished scores run; returns (b's shard path relative to the store, scores run)."""
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(20)]), "a", text_field="text")
    res = ingest(store, write_jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(20)]), "b", text_field="text")
    run_id = store.start_run("attribute")
    store.write_scores(run_id, _scores(6))
    store.finish_run(run_id)
    rel = str(store.shard_path("samples", res.run_id, 0).relative_to(store.root))
    return rel, run_id


def _truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return data


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 600, msg
    return msg


def test_moved_store_with_a_truncated_shard_opens_and_names_the_shard(tmp_path: Path, store: stores.Store) -> None:
    rel, run_id = _two_datasets_and_scores(tmp_path, store)
    moved = tmp_path / "moved"
    shutil.move(str(store.root), moved)
    _truncate(moved / rel)
    reopened = stores.open(moved)  # used to die rebuilding the views over the truncated shard
    assert set(reopened.datasets()["name"]) == {"a", "b"}
    assert reopened.runs().height == 3
    assert reopened.read_scores(run_id).height == 6
    assert reopened.sql("SELECT count(*) AS n FROM scores")["n"][0] == 6
    assert reopened.read_samples("a").height == 20
    with pytest.raises(ShardDamagedError) as exc:
        reopened.sql("SELECT count(*) FROM samples WHERE dataset = 'b'")
    msg = _one_line(exc)
    assert rel in msg and "curation check" in msg
    with pytest.raises(ShardDamagedError) as exc:
        reopened.read_samples("b")
    assert rel in _one_line(exc) and "curation check" in str(exc.value)
    with pytest.raises(ShardDamagedError, match="curation check"):
        reopened.tables()


def test_truncated_shard_in_place_fails_only_queries_that_read_it(tmp_path: Path, store: stores.Store) -> None:
    rel, _ = _two_datasets_and_scores(tmp_path, store)
    original = _truncate(store.root / rel)
    reopened = stores.open(store.root)
    with pytest.raises(ShardDamagedError) as exc:
        reopened.sql("SELECT * FROM samples")
    assert rel in _one_line(exc) and "curation check" in str(exc.value)
    # runs over other tables still finish, though finishing rebuilds every view
    run_id = reopened.start_run("attribute")
    reopened.write_scores(run_id, _scores(3, "c"))
    reopened.finish_run(run_id)
    assert reopened.read_scores(behaviour="c").height == 3
    # a new dataset rebuilds the samples view around the damaged shard; queries of samples name it
    ingest(reopened, write_jsonl(tmp_path / "c.jsonl", [{"text": "c"}]), "c", text_field="text")
    with pytest.raises(ShardDamagedError) as exc:
        reopened.sql("SELECT text FROM samples WHERE dataset = 'c'")
    assert rel in _one_line(exc)
    con = duckdb.connect(str(store.catalog_path), read_only=True)  # plain DuckDB gets the same one line
    with pytest.raises(duckdb.Error, match="curation check"):
        con.execute("SELECT count(*) FROM samples").fetchall()
    con.close()
    # restoring the file heals readers at once, and the next write rebuilds the stored views
    (store.root / rel).write_bytes(original)
    assert reopened.sql("SELECT count(*) AS n FROM samples")["n"][0] == 41
    reopened.refresh_views()
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    assert con.execute("SELECT count(*) FROM samples").fetchall()[0][0] == 41
    con.close()


def test_missing_shard_of_a_moved_store_is_named(tmp_path: Path, store: stores.Store) -> None:
    rel, _ = _two_datasets_and_scores(tmp_path, store)
    moved = tmp_path / "moved"
    shutil.move(str(store.root), moved)
    (moved / rel).unlink()
    reopened = stores.open(moved)
    assert reopened.sql("SELECT count(*) AS n FROM scores")["n"][0] == 6
    with pytest.raises(ShardDamagedError) as exc:
        reopened.sql("SELECT count(*) FROM samples")
    assert rel in _one_line(exc) and "missing" in str(exc.value)


def _corrupt_copies(src: Path, dst_root: Path) -> list[Path]:
    """Copies of a store, each with 64 random bytes written inside one block of its catalog."""
    size = (src / "catalog.duckdb").stat().st_size
    header, block = 12288, 262144  # DuckDB's file header and block size
    out = []
    for b in range(min((size - header) // block, 12)):
        dst = dst_root / f"corrupt{b}"
        shutil.copytree(src, dst)
        with open(dst / "catalog.duckdb", "r+b") as fh:
            fh.seek(header + b * block + 1000)
            fh.write(os.urandom(64))
        out.append(dst)
    return out


def test_corrupt_catalog_is_one_clear_error(tmp_path: Path, store: stores.Store) -> None:
    _two_datasets_and_scores(tmp_path, store)
    for k in range(3):  # more catalog blocks in use
        store.execute("CREATE TABLE IF NOT EXISTS pad AS SELECT 'x' AS v WHERE false")
        store.execute(f"INSERT INTO pad SELECT repeat('{k}', 100) || i::VARCHAR FROM range(5000) t(i)")
    raised = 0
    for copy in _corrupt_copies(store.root, tmp_path):
        try:
            s = stores.open(copy)
            s.runs(), s.datasets(), s.tables(), s.sql("SELECT * FROM shards"), s.sql("SELECT * FROM pad")
            s.read_scores()
        except CatalogCorruptError as exc:
            msg = str(exc)
            assert "\n" not in msg and "catalog.duckdb" in msg and "backup" in msg and "read_parquet(" in msg, msg
            raised += 1
    assert raised >= 1


def test_runs_shows_a_killed_run_as_interrupted(store: stores.Store) -> None:
    code = (
        "import stores, sys, time;"
        "s = stores.open(sys.argv[1]);"
        "print(s.start_run('attribute'), flush=True);"
        "time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(store.root)], stdout=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id
        assert store.runs().row(0, named=True)["status"] == "running"  # its process is alive
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    row = store.runs().row(0, named=True)
    assert (row["run_id"], row["status"], row["error"]) == (run_id, "interrupted", "process died")
    assert store.get_run(run_id)["status"] == "interrupted"
    assert store.runs(kind="attribute")["status"].to_list() == ["interrupted"]
    con = duckdb.connect(str(store.catalog_path), read_only=True)  # reading wrote nothing
    assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    con.close()


def test_runs_of_another_host_keep_their_status(store: stores.Store) -> None:
    run_id = store.start_run("attribute")
    store.execute("UPDATE runs SET host = ?, pid = 999999999 WHERE run_id = ?", [socket.gethostname() + "-other", run_id])
    assert store.runs()["status"].to_list() == ["running"]  # its pid cannot be checked from here
