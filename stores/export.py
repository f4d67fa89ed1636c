"""Export a dataset (or the rows of it matching a SQL predicate) to Parquet, jsonl or CSV."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .atomic import atomic_path
from .datasets import dataset_files_in
from .errors import QueryError, StoreError
from .records import first_row
from .schema import sql_literal
from .store import Store

EXPORT_FORMATS = {
    ".parquet": "(FORMAT parquet, COMPRESSION zstd)",
    ".jsonl": "(FORMAT json)",
    ".ndjson": "(FORMAT json)",
    ".json": "(FORMAT json)",
    ".jsonl.gz": "(FORMAT json, COMPRESSION gzip)",
    ".csv": "(FORMAT csv, HEADER true)",
}


def copy_options(out: Path) -> str:
    """DuckDB COPY options for an output path, chosen by its suffix."""
    name = out.name.lower()
    for suffix in sorted(EXPORT_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return EXPORT_FORMATS[suffix]
    raise StoreError(f"{out}: unknown output format; use one of {', '.join(EXPORT_FORMATS)}")


def dataset_relation(store: Store, con: duckdb.DuckDBPyConnection, dataset: str) -> str:
    """A FROM-clause expression over one dataset's own shards (only its own columns)."""
    files = dataset_files_in(store, con, dataset)
    if not files:
        raise StoreError(f"dataset {dataset!r} has no shards registered")
    return f"read_parquet([{', '.join(sql_literal(f) for f in files)}], hive_partitioning = false)"


def export(
    store: Store, dataset: str, out: str | os.PathLike, where: str | None = None, keep_ordinal: bool = False
) -> int:
    """Write the dataset's samples matching ``where`` (SQL over its columns) to ``out``.

    The format follows the suffix (.parquet, .jsonl, .jsonl.gz, .csv). The file appears only
    when complete (temp file + rename). Returns the number of rows written.
    """
    out = Path(out)
    options = copy_options(out)
    store.dataset_info(dataset)
    drop = "dataset" if keep_ordinal else "dataset, ordinal"
    with store.connect() as con:
        src = dataset_relation(store, con, dataset)
        query = f"SELECT * EXCLUDE ({drop}) FROM {src}"
        if where:
            query += f" WHERE ({where})"
        query += " ORDER BY ordinal"
        with atomic_path(out) as tmp:
            try:
                row = first_row(con.execute(f"COPY ({query}) TO {sql_literal(str(tmp))} {options}").fetchall())
            except duckdb.Error as exc:
                raise store.translate_error(exc) or QueryError(
                    f"export of {dataset!r} failed: {exc}" + (f"\n  --where was: {where}" if where else "")) from exc
    return int(row[0]) if row else 0
