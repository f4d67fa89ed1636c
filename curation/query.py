"""`curation sql` as a library call: read-only or --write SQL, printed or written to a file.

Flags that cannot all be honoured are refused before the query runs; result files are written
atomically by DuckDB from the Arrow rows, in a private in-memory database (no user SQL there).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import polars as pl
import pyarrow as pa

import stores
from stores.errors import QueryError, StoreError
from stores.store import classify_sql


class OutputFormat(StrEnum):
    """Output formats of `curation sql`."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


_OUT_FORMATS = {  # --out suffix -> the --format it implies (longest suffix first)
    ".jsonl.gz": OutputFormat.json,
    ".parquet": OutputFormat.parquet,
    ".ndjson": OutputFormat.json,
    ".jsonl": OutputFormat.json,
    ".json": OutputFormat.json,
    ".csv": OutputFormat.csv,
}
_FORMAT_SUFFIX = {OutputFormat.parquet: ".parquet", OutputFormat.json: ".jsonl", OutputFormat.csv: ".csv"}


def check_sql_flags(
    s: stores.Store, format: OutputFormat, out_file: Path | None, max_rows: int | None
) -> None:
    """Refuse combinations of `curation sql` options that cannot all be honoured."""
    if out_file is None:
        if format == OutputFormat.parquet:
            raise StoreError("--format parquet needs --out FILE")
        if max_rows is not None and format != OutputFormat.table:
            raise StoreError(f"--max-rows limits the table printed on screen; it has no effect with --format {format.value}")
        return
    if max_rows is not None:
        raise StoreError("--max-rows limits the table printed on screen; --out writes every row (drop one of them)")
    name = out_file.name.lower()
    implied = next((f for suffix, f in _OUT_FORMATS.items() if name.endswith(suffix)), None)
    if format != OutputFormat.table and implied is not None and implied != format:
        raise StoreError(f"--format {format.value} contradicts --out {out_file} (a {implied.value} file name)")
    target = out_file.resolve()
    if target == s.root or s.root in target.parents:
        raise StoreError(f"--out {out_file} is inside the store folder {s.root}; write results outside it")


def write_rows(rows: pa.Table | pa.RecordBatchReader, out_file: Path, format: OutputFormat) -> int:
    """Write result rows to ``out_file`` atomically; returns the row count.

    The format follows --format, else the file's suffix (as `curation export`). DuckDB writes
    the file from the Arrow rows in a private in-memory database, so no user SQL runs there.
    """
    import duckdb

    from stores.atomic import atomic_path
    from stores.export import EXPORT_FORMATS, copy_options
    from stores.schema import sql_literal

    name = out_file.name.lower()
    by_suffix = format == OutputFormat.table or any(name.endswith(x) for x in _OUT_FORMATS)
    options = copy_options(out_file) if by_suffix else EXPORT_FORMATS[_FORMAT_SUFFIX[format]]
    con = duckdb.connect()
    try:
        con.register("result_rows", rows)
        with atomic_path(out_file) as tmp:
            row = con.execute(f"COPY (SELECT * FROM result_rows) TO {sql_literal(str(tmp))} {options}").fetchone()
    except duckdb.Error as exc:
        raise QueryError(f"writing {out_file} failed: {exc}") from exc
    finally:
        con.close()
    return int(row[0]) if row else 0


@dataclass
class SqlResult:
    """What :func:`run_sql` did: the rows to show (when not written) or the file and its row count."""

    frame: pl.DataFrame | None = None
    out_file: Path | None = None
    n_written: int = 0


def run_sql(
    s: stores.Store, query: str, *, format: OutputFormat = OutputFormat.table, out_file: Path | None = None,
    write: bool = False, max_rows: int | None = None,
) -> SqlResult:
    """Run ``query`` on the store: read-only unless ``write``; rows returned, or written to ``out_file``.

    With ``write`` it runs in one transaction with DuckDB's full privileges; if ``out_file``
    cannot be written the changes roll back.
    """
    check_sql_flags(s, format, out_file, max_rows)
    if write:
        statements = classify_sql(query)
        if out_file is not None and not statements[-1].reads:
            raise StoreError(
                f"--out writes the rows the last statement returns, but it is a {statements[-1].kind} "
                "statement, which returns none; end the SQL with a SELECT, or drop --out"
            )
        with s.write():  # one transaction: if --out cannot be written, the changes roll back
            df = s.execute(query)
            if out_file is not None:
                return SqlResult(out_file=out_file, n_written=write_rows(df.to_arrow(), out_file, format))
        return SqlResult(frame=df)
    if out_file is not None:
        with s.sql_reader(query) as reader:
            return SqlResult(out_file=out_file, n_written=write_rows(reader, out_file, format))
    return SqlResult(frame=s.sql(query))
