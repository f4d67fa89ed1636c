"""`curation sql`: parse options, run the query (curation.query), print or report the file written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from curation.query import OutputFormat, run_sql

from .common import DEFAULT_STORE, StoreOpt, app, err, open_store, print_frame


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the store's catalog")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format")] = OutputFormat.table,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the rows to this file (format from --format or the suffix)"),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Allow statements that modify the store or write files (full DuckDB)")
    ] = False,
    max_rows: Annotated[int | None, typer.Option(help="Rows shown in table format [default: 50]")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Run SQL over the store. Tables: see `curation tables`.

    Without --write it is read-only: only reading statements (SELECT, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN, metadata PRAGMAs), and no file outside the store folder.

    --write runs it in one transaction with DuckDB's full privileges; with --out, its last statement must return rows (end with a SELECT).
    """
    res = run_sql(open_store(store), query, format=format, out_file=out_file, write=write, max_rows=max_rows)
    if res.out_file is not None:
        err.print(f"wrote {res.n_written:,} rows to {res.out_file}")
    elif format == OutputFormat.table:
        print_frame(res.frame, 50 if max_rows is None else max_rows)
    elif format == OutputFormat.csv:
        sys.stdout.write(res.frame.write_csv())
    else:
        sys.stdout.write(res.frame.write_ndjson())
