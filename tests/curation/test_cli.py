"""The command line: ingest, sql in every format, tables, export, curate, errors, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from curation.cli import app
from tests.helpers import arith_rows, write_jsonl

runner = CliRunner()


def _ok(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_ingest_sql_tables_export_curate(tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    src = write_jsonl(tmp_path / "a.jsonl", arith_rows(40) + arith_rows(2))
    out = _ok("ingest", str(src), "--dataset", "arith", "--store", st)
    assert "42 rows" in out and "2 exact duplicates kept" in out
    assert "samples" in _ok("tables", "--store", st)
    csv_out = _ok("sql", "SELECT count(*) AS n FROM samples", "--format", "csv", "--store", st)
    assert csv_out.splitlines() == ["n", "42"]
    js = _ok("sql", "SELECT idx FROM samples ORDER BY ordinal LIMIT 2", "-f", "json", "--store", st)
    assert [json.loads(line)["idx"] for line in js.splitlines()] == [0, 1]
    pq_path = tmp_path / "r.parquet"
    _ok("sql", "SELECT sample_id, idx FROM samples", "--format", "parquet", "--out", str(pq_path), "--store", st)
    assert pl.read_parquet(pq_path).height == 42
    exp = tmp_path / "e.jsonl"
    assert "exported 7" in _ok("export", "arith", "--where", "idx < 5", "--out", str(exp), "--store", st)
    assert len(exp.read_text().splitlines()) == 7
    assert "kept 30" in _ok("curate", "small", "--from", "arith", "--where", "idx >= 10", "--store", st)
    assert "small" in _ok("datasets", "--store", st)
    assert "curate" in _ok("runs", "--store", st)


def test_store_from_environment(tmp_path: Path) -> None:
    st = tmp_path / "envstore"
    src = write_jsonl(tmp_path / "a.jsonl", arith_rows(3))
    res = runner.invoke(app, ["ingest", str(src), "-d", "x"], env={"CURATION_STORE": str(st)})
    assert res.exit_code == 0, res.output
    assert (st / "catalog.duckdb").exists()


def test_errors_are_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": \n')
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "ingest", str(bad), "-d", "b", "--store", str(tmp_path / "st")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert f"error: {bad}:2:" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "sql", "DROP TABLE runs", "--store", str(tmp_path / "st")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "read-only" in proc.stderr


def test_sql_on_missing_store_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "curation", "sql", "SELECT 1", "--store", str(tmp_path / "none")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1 and "no store at" in proc.stderr
