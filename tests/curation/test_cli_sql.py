"""`curation sql`: read-only by default, --write to modify, --out honoured or refused, never ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

import stores
from curation.cli import app
from stores.errors import QueryError, ReadOnlyQueryError, StoreError
from stores.ingest import ingest
from tests.helpers import arith_rows, write_jsonl

runner = CliRunner()


@pytest.fixture
def st(tmp_path: Path) -> str:
    """A store folder holding one dataset of 10 samples."""
    store = stores.open(tmp_path / "st")
    ingest(store, write_jsonl(tmp_path / "a.jsonl", arith_rows(10)), "arith")
    return str(store.root)


def _ok(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def _fails(*args: str) -> BaseException:
    res = runner.invoke(app, list(args))
    assert res.exit_code != 0, res.output
    assert res.exception is not None
    return res.exception


def _tables(st: str) -> set[str]:
    con = duckdb.connect(str(Path(st) / "catalog.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def test_copy_to_is_refused_with_one_clear_line(tmp_path: Path, st: str) -> None:
    target = tmp_path / "leak.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "sql", f"COPY (SELECT * FROM samples) TO '{target}'", "--store", st],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "read-only SQL refused statement 1 of 1, a COPY statement" in proc.stderr and "--write" in proc.stderr
    assert not target.exists()


def test_copy_into_a_shard_folder_is_refused(st: str) -> None:
    shard_dir = next((Path(st) / "data" / "samples").iterdir())
    target = shard_dir / "part-00099.parquet"
    exc = _fails("sql", f"COPY (SELECT * FROM samples) TO '{target}' (FORMAT parquet)", "--store", st)
    assert isinstance(exc, ReadOnlyQueryError)
    assert not target.exists()


def test_create_table_is_refused_without_write(st: str) -> None:
    exc = _fails("sql", "CREATE TABLE notes AS SELECT 1 AS x", "--store", st)
    assert isinstance(exc, ReadOnlyQueryError) and "CREATE" in str(exc)
    assert "notes" not in _tables(st)


def test_multiple_statements_with_one_write_are_refused(st: str) -> None:
    exc = _fails("sql", "SELECT 1; INSERT INTO meta VALUES ('k', 'v'); SELECT 2", "--store", st)
    assert isinstance(exc, ReadOnlyQueryError) and "statement 2 of 3, a INSERT statement" in str(exc)
    assert _ok("sql", "SELECT count(*) AS n FROM meta WHERE key = 'k'", "-f", "csv", "--store", st).split() == ["n", "0"]


def test_reading_a_file_outside_the_store_is_refused(tmp_path: Path, st: str) -> None:
    secret = tmp_path / "secret.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(secret)
    exc = _fails("sql", f"SELECT * FROM read_parquet('{secret}')", "--store", st)
    assert isinstance(exc, QueryError) and "only files inside the store folder" in str(exc)


def test_reading_outside_the_store_is_refused_with_out_too(tmp_path: Path, st: str) -> None:
    out = tmp_path / "copy.csv"
    exc = _fails("sql", "SELECT * FROM read_csv('/etc/passwd', sep = ':')", "--out", str(out), "--store", st)
    assert isinstance(exc, QueryError) and "disabled by configuration" in str(exc)
    assert not out.exists()


def test_write_executes_a_write(st: str) -> None:
    _ok("sql", "CREATE TABLE notes AS SELECT 7 AS x", "--write", "--store", st)
    assert "notes" in _tables(st)
    assert _ok("sql", "SELECT x FROM notes", "-f", "csv", "--store", st).split() == ["x", "7"]


def test_out_writes_the_rows_of_a_read_only_query(tmp_path: Path, st: str) -> None:
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["sql", "SELECT ordinal FROM samples ORDER BY ordinal", "--out", str(out), "--store", st])
    assert res.exit_code == 0, res.output
    assert pl.read_ndjson(out)["ordinal"].to_list() == list(range(10))
    csv_out = tmp_path / "r.data"
    _ok("sql", "SELECT ordinal FROM samples ORDER BY ordinal", "-f", "csv", "--out", str(csv_out), "--store", st)
    assert csv_out.read_text().splitlines()[:2] == ["ordinal", "0"]


def test_write_with_out_writes_the_last_statements_rows(tmp_path: Path, st: str) -> None:
    out = tmp_path / "notes.parquet"
    _ok("sql", "CREATE TABLE notes AS SELECT range AS x FROM range(3); SELECT x FROM notes ORDER BY x",
        "--write", "--out", str(out), "--store", st)
    assert pl.read_parquet(out)["x"].to_list() == [0, 1, 2]
    assert "notes" in _tables(st)


def test_write_with_out_and_no_rows_is_an_error_and_changes_nothing(tmp_path: Path, st: str) -> None:
    out = tmp_path / "nothing.csv"
    exc = _fails("sql", "CREATE TABLE notes AS SELECT 1 AS x", "--write", "--out", str(out), "--store", st)
    assert isinstance(exc, StoreError) and "--out writes the rows the last statement returns" in str(exc)
    assert not out.exists()
    assert "notes" not in _tables(st)


def test_write_with_out_rolls_back_when_the_file_cannot_be_written(tmp_path: Path, st: str) -> None:
    out = tmp_path / "rows.unknown"  # no format for this suffix and none given
    exc = _fails("sql", "CREATE TABLE notes AS SELECT 1 AS x; SELECT * FROM notes", "--write", "--out", str(out),
                 "--store", st)
    assert isinstance(exc, StoreError) and "unknown output format" in str(exc)
    assert not out.exists()
    assert "notes" not in _tables(st)


def test_out_inside_the_store_folder_is_refused(st: str) -> None:
    shard_dir = next((Path(st) / "data" / "samples").iterdir())
    target = shard_dir / "part-00099.parquet"
    exc = _fails("sql", "SELECT * FROM samples", "--out", str(target), "--store", st)
    assert isinstance(exc, StoreError) and "inside the store folder" in str(exc)
    assert not target.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--format", "parquet"], "--format parquet needs --out"),
        (["--format", "csv", "--out", "{tmp}/r.parquet"], "--format csv contradicts --out"),
        (["--max-rows", "5", "--out", "{tmp}/r.csv"], "--max-rows limits the table printed on screen"),
        (["--max-rows", "5", "--format", "json"], "no effect with --format json"),
        (["--write", "--format", "parquet"], "--format parquet needs --out"),
    ],
)
def test_contradictory_flags_are_an_error(tmp_path: Path, st: str, flags: list[str], message: str) -> None:
    args = [f.format(tmp=tmp_path) for f in flags]
    exc = _fails("sql", "SELECT 1 AS x", *args, "--store", st)
    assert isinstance(exc, StoreError) and message in str(exc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "st"]  # no output file appeared
