"""Store.sql is read-only: only reading statements, a read-only catalog, no file outside the store.

Every test checks the effect too (no file written, no table created), not just the error.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

import stores
from stores.errors import QueryError, ReadOnlyQueryError, StoreError, StoreLockedError
from stores.ingest import ingest
from stores.store import check_read_only, classify_sql
from tests.helpers import arith_rows, write_jsonl


@pytest.fixture
def loaded(tmp_path: Path, store: stores.Store) -> stores.Store:
    """A store holding one small dataset (so there are Parquet shards under data/)."""
    ingest(store, write_jsonl(tmp_path / "a.jsonl", arith_rows(10)), "arith")
    return store


def _tables(store: stores.Store) -> set[str]:
    con = duckdb.connect(str(store.catalog_path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def _shard_dir(store: stores.Store) -> Path:
    run_id = store.dataset_info("arith")["run_id"]
    folder = store.shard_dir("samples", run_id)
    assert folder.is_dir()
    return folder


# ---------------------------------------------------------------------- writes are refused
def test_copy_to_is_refused_and_writes_no_file(tmp_path: Path, loaded: stores.Store) -> None:
    outside = tmp_path / "leak.csv"
    with pytest.raises(ReadOnlyQueryError, match=r"a COPY statement.*--write.*Store.execute"):
        loaded.sql(f"COPY (SELECT * FROM samples) TO '{outside}' (FORMAT csv)")
    assert not outside.exists()


def test_copy_into_a_shard_folder_is_refused(loaded: stores.Store) -> None:
    folder = _shard_dir(loaded)
    before = sorted(p.name for p in folder.iterdir())
    target = folder / "part-00099.parquet"
    with pytest.raises(ReadOnlyQueryError, match="COPY"):
        loaded.sql(f"COPY (SELECT * FROM samples) TO '{target}' (FORMAT parquet)")
    assert not target.exists()
    assert sorted(p.name for p in folder.iterdir()) == before


def test_explain_analyze_of_a_copy_is_refused(loaded: stores.Store) -> None:
    target = _shard_dir(loaded) / "explained.csv"
    with pytest.raises(ReadOnlyQueryError, match="EXPLAIN of COPY"):
        loaded.sql(f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'")
    assert not target.exists()


def test_sql_reader_applies_the_same_checks(tmp_path: Path, loaded: stores.Store) -> None:
    target = tmp_path / "x.csv"
    with pytest.raises(ReadOnlyQueryError, match="COPY"), loaded.sql_reader(f"COPY (SELECT 1) TO '{target}'"):
        pass
    assert not target.exists()


def test_create_table_is_refused(store: stores.Store) -> None:
    with pytest.raises(ReadOnlyQueryError, match="a CREATE statement"):
        store.sql("CREATE TABLE notes AS SELECT 1 AS x")
    assert "notes" not in _tables(store)


def test_create_table_refused_inside_this_threads_write_block(store: stores.Store) -> None:
    with store.write():
        with pytest.raises(ReadOnlyQueryError, match="a CREATE statement"):
            store.sql("CREATE TABLE notes AS SELECT 1 AS x")
        with pytest.raises(StoreError, match="cannot run inside a write"):
            store.sql("SELECT 1")
    assert "notes" not in _tables(store)


def test_a_raw_writable_connection_in_this_process_never_makes_sql_writable(store: stores.Store) -> None:
    raw = duckdb.connect(str(store.catalog_path))  # read-write, opened by someone else in this process
    try:
        impatient = stores.Store(store.root, lock_timeout=0.3)
        with pytest.raises(ReadOnlyQueryError, match="CREATE"):
            impatient.sql("CREATE TABLE notes AS SELECT 1 AS x")
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError, match="open in this process with other settings.*waited 0.3s"):
            impatient.sql("SELECT count(*) FROM runs")
        assert time.monotonic() - t0 < 5
    finally:
        raw.close()
    assert "notes" not in _tables(store)


def test_another_threads_writer_is_waited_for_not_shared(store: stores.Store) -> None:
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.write() as con:
            con.execute("CREATE TABLE from_writer AS SELECT 1 AS x")
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        other = stores.Store(store.root, lock_timeout=0.3)
        with pytest.raises(ReadOnlyQueryError, match="CREATE"):
            other.sql("CREATE TABLE notes AS SELECT 1 AS x")
        with pytest.raises(StoreLockedError, match="open in this process"):
            other.sql("SELECT 1")
        patient = stores.Store(store.root, lock_timeout=30)
        threading.Timer(0.3, release.set).start()
        # runs once the writer has committed, on its own read-only connection: sees the commit
        assert patient.sql("SELECT x FROM from_writer")["x"].to_list() == [1]
    finally:
        release.set()
        thread.join(10)
    assert "notes" not in _tables(store)


def test_a_write_hidden_in_a_select_is_stopped_by_the_read_only_catalog(loaded: stores.Store) -> None:
    n_runs = loaded.sql("SELECT count(*) AS n FROM runs")["n"][0]
    assert classify_sql("WITH gone AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM gone")[0].reads
    with pytest.raises(QueryError, match="read-only"):
        loaded.sql("WITH gone AS (DELETE FROM runs RETURNING *) SELECT count(*) FROM gone")
    assert loaded.sql("SELECT count(*) AS n FROM runs")["n"][0] == n_runs


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("ATTACH '{tmp}/new.db' AS other", "ATTACH"),
        ("DETACH other", "DETACH"),
        ("INSTALL httpfs", "LOAD (INSTALL)"),
        ("LOAD '{tmp}/evil.duckdb_extension'", "LOAD"),
        ("SET threads = 1", "SET"),
        ("SET enable_external_access = true", "SET"),
        ("RESET allowed_directories", "SET (RESET)"),
        ("PRAGMA enable_external_access = true", "SET (PRAGMA)"),
        ("PRAGMA force_checkpoint", "PRAGMA"),
        ("CHECKPOINT", "CALL (CHECKPOINT)"),
        ("EXPORT DATABASE '{tmp}/dump'", "EXPORT"),
        ("IMPORT DATABASE '{tmp}/dump'", "PRAGMA (IMPORT)"),
        ("INSERT INTO meta VALUES ('x', 'y')", "INSERT"),
        ("UPDATE runs SET status = 'finished'", "UPDATE"),
        ("DELETE FROM runs", "DELETE"),
        ("DROP TABLE runs", "DROP"),
        ("ALTER TABLE runs ADD COLUMN x INT", "ALTER"),
        ("USE memory", "SET (USE)"),
        ("BEGIN TRANSACTION", "TRANSACTION (BEGIN)"),
    ],
)
def test_statements_that_write_or_reach_out_are_refused(
    tmp_path: Path, store: stores.Store, statement: str, kind: str
) -> None:
    query = statement.format(tmp=tmp_path)
    tables = _tables(store)
    with pytest.raises(ReadOnlyQueryError, match=rf"read-only SQL refused statement 1 of 1, a {re.escape(kind)} statement"):
        store.sql(query)
    assert list(tmp_path.iterdir()) == [store.root]  # no attached database, dump or file appeared
    assert _tables(store) == tables


def test_multiple_statements_with_one_write_are_all_refused(store: stores.Store) -> None:
    with pytest.raises(ReadOnlyQueryError, match=r"statement 2 of 3, a CREATE statement"):
        store.sql("SELECT 1; CREATE TABLE notes AS SELECT 1 AS x; SELECT 2")
    assert "notes" not in _tables(store)


# ---------------------------------------------------------------------- files outside the store
def test_reading_system_files_is_refused(store: stores.Store) -> None:
    with pytest.raises(QueryError, match="only files inside the store folder"):
        store.sql("SELECT * FROM read_csv('/etc/passwd', sep = ':')")


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM read_parquet('{path}')",
        "SELECT * FROM '{path}'",
        "SELECT * FROM read_parquet('{root}/../outside.parquet')",
        "SELECT * FROM parquet_metadata('{path}')",
        "SELECT content FROM read_text('{path}')",
        "SELECT * FROM glob('{dir}/*')",
        "WITH x AS (SELECT * FROM read_parquet('{path}')) SELECT count(*) FROM x",
    ],
)
def test_reading_a_file_outside_the_store_is_refused(tmp_path: Path, loaded: stores.Store, template: str) -> None:
    path = tmp_path / "outside.parquet"
    pl.DataFrame({"secret": [1, 2, 3]}).write_parquet(path)  # it exists and is readable by plain DuckDB
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall() == [(3,)]
    with pytest.raises(QueryError, match="disabled by configuration"):
        loaded.sql(template.format(path=path, root=loaded.root, dir=tmp_path))


def test_files_inside_the_store_can_be_read(loaded: stores.Store) -> None:
    shard = next(_shard_dir(loaded).glob("part-*.parquet"))
    df = loaded.sql(f"SELECT count(*) AS n FROM read_parquet('{shard}')")
    assert df["n"][0] == 10


# ---------------------------------------------------------------------- reads keep working
def test_reading_store_tables_and_views_works(loaded: stores.Store) -> None:
    assert loaded.sql("SELECT count(*) AS n FROM samples WHERE dataset = ?", ["arith"])["n"][0] == 10
    assert loaded.sql("WITH d AS (SELECT name FROM datasets) SELECT * FROM d")["name"].to_list() == ["arith"]
    assert loaded.sql("FROM runs SELECT kind")["kind"].to_list() == ["ingest"]
    assert loaded.sql("VALUES (1, 'a')").shape == (1, 2)
    assert "samples" in loaded.sql("SHOW TABLES")["name"].to_list()
    assert "sample_id" in loaded.sql("DESCRIBE samples")["column_name"].to_list()
    assert loaded.sql("SUMMARIZE runs").height > 0
    assert "run_id" in loaded.sql("PRAGMA table_info('runs')")["name"].to_list()
    assert loaded.sql("CALL pragma_version()").height == 1
    assert loaded.sql("EXPLAIN SELECT * FROM samples").height >= 1
    assert loaded.sql("EXPLAIN ANALYZE SELECT count(*) FROM scores").height >= 1
    assert loaded.get_run(loaded.dataset_info("arith")["run_id"])["status"] == "finished"


def test_a_moved_store_still_reads_its_shards(tmp_path: Path, loaded: stores.Store) -> None:
    moved = tmp_path / "moved"
    shutil.move(str(loaded.root), moved)
    reopened = stores.open(moved)
    assert reopened.sql("SELECT count(*) AS n FROM samples")["n"][0] == 10
    with pytest.raises(QueryError, match="disabled by configuration"):
        reopened.sql(f"SELECT * FROM read_parquet('{tmp_path}/*.parquet')")


def test_sql_reader_streams_rows(loaded: stores.Store) -> None:
    with loaded.sql_reader("SELECT ordinal FROM samples ORDER BY ordinal", batch_rows=4) as reader:
        batches = list(reader)
    assert [b.num_rows for b in batches if b.num_rows] and sum(b.num_rows for b in batches) == 10


def test_execute_still_writes(store: stores.Store) -> None:
    store.execute("CREATE TABLE notes AS SELECT 1 AS x")
    assert "notes" in _tables(store)
    assert store.sql("SELECT x FROM notes")["x"].to_list() == [1]


# ---------------------------------------------------------------------- classification
@pytest.mark.parametrize(
    ("query", "reads"),
    [
        ("SELECT 1", True),
        ("with a as (select 1) select * from a", True),
        ("EXPLAIN (FORMAT json) SELECT 1", True),
        ("EXPLAIN (ANALYZE) CREATE TABLE t AS SELECT 1", False),
        ("PRAGMA show_tables", True),
        ("PRAGMA table_info('runs');", True),
        ("CALL pragma_table_info('runs')", True),
        ("CALL checkpoint()", False),
        ("PIVOT runs ON kind", False),
        ("SET VARIABLE x = 1", False),
        ("PREPARE p AS SELECT 1", False),
    ],
)
def test_classification_uses_duckdbs_parser(query: str, reads: bool) -> None:
    (statement,) = classify_sql(query)
    assert statement.reads is reads


def test_unparsable_or_empty_sql_is_a_query_error_not_a_refusal() -> None:
    with pytest.raises(QueryError, match="syntax error") as info:
        check_read_only("SELEC 1")
    assert not isinstance(info.value, ReadOnlyQueryError)
    with pytest.raises(QueryError, match="no SQL statement"):
        check_read_only("  ;  ")
