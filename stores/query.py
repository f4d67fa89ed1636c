"""Write the result of a SQL query straight to a file, streamed by DuckDB and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .atomic import atomic_path
from .errors import QueryError
from .export import EXPORT_FORMATS, copy_options
from .schema import sql_literal
from .store import Store, first_row

_BY_NAME = {"parquet": ".parquet", "json": ".jsonl", "csv": ".csv"}


def copy_query(store: Store, query: str, out: str | os.PathLike, fmt: str | None = None) -> int:
    """Run a read-only SELECT and write its rows to ``out``; returns the row count.

    ``fmt`` is parquet, json (one object per line) or csv; by default it follows the suffix.
    """
    out = Path(out)
    options = EXPORT_FORMATS[_BY_NAME[fmt]] if fmt else copy_options(out)
    body = query.strip().rstrip(";")
    with store.connect() as con, atomic_path(out) as tmp:
        try:
            row = first_row(con.execute(f"COPY ({body}) TO {sql_literal(str(tmp))} {options}").fetchall())
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
    return int(row[0]) if row else 0
