"""The catalog's views over shards of finished runs, built even when some shards are unreadable.

Each shard table (``samples``, ``scores``, ...) is a view over the Parquet shards of *finished*
runs. Views hold absolute paths, so a moved store shadows them with temp views; a shard that
cannot be read is left out of its view and replaced by a guard that raises one line naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

from .damage import GUARD_ALIAS, first_line, guard_message, unreadable
from .errors import StoreError
from .records import first_row
from .schema import _DUCK_TYPES, SHARD_SCHEMAS, SHARD_TABLES, sql_literal, view_sql


def shadow_stale_views(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Shadow stored views that do not fit the store at ``root`` with temp views on ``con``.

    The views hold absolute paths: if the store folder moved, every view is rebuilt. A view
    that was built around unreadable shards (see :func:`rebuild_views`) is rebuilt too, so a
    shard restored from a backup is read again at once.
    """
    try:
        row = first_row(con.execute("SELECT value FROM meta WHERE key = 'root'").fetchall())
    except duckdb.CatalogException:
        return
    if row and row[0] != str(root):
        rebuild_views(con, root, temporary=True)
        return
    guarded = guarded_views(con)
    if guarded:
        rebuild_views(con, root, temporary=True, tables=guarded)


def guarded_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Shard tables whose stored view was built around unreadable shards."""
    rows = con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary AND contains(sql, ?)",
        [GUARD_ALIAS],
    ).fetchall()
    return [t for t in SHARD_TABLES if (t,) in rows]


def _visible_paths(con: duckdb.DuckDBPyConnection, root: Path) -> dict[str, list[str]]:
    rows = con.execute(
        """SELECT s.table_name, s.path FROM shards s JOIN runs r USING (run_id)
           WHERE r.status = 'finished' ORDER BY s.table_name, s.run_id, s.shard"""
    ).fetchall()
    out: dict[str, list[str]] = {t: [] for t in SHARD_TABLES}
    for table, path in rows:
        out.setdefault(table, []).append(str(root / path))
    return out


def rebuild_views(
    con: duckdb.DuckDBPyConnection, root: Path, temporary: bool, tables: Sequence[str] = SHARD_TABLES
) -> None:
    """(Re)create the views of ``tables`` over their finished shards; stored ones record ``root``."""
    paths = _visible_paths(con, root)
    scratch: list[duckdb.DuckDBPyConnection] = []  # an in-memory DuckDB to probe files, made on demand
    try:
        for table in tables:
            _create_view(con, root, table, paths[table], temporary, scratch)
    finally:
        for c in scratch:
            c.close()
    if not temporary:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", [str(root)])


def _create_view(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    table: str,
    files: list[str],
    temporary: bool,
    scratch: list[duckdb.DuckDBPyConnection],
) -> None:
    """Create (or replace) the view of ``table`` over ``files``, even when some cannot be read.

    DuckDB reads Parquet footers to bind a view, so one truncated or missing shard would make
    the view, and with it opening the store, fail. Such shards are left out and replaced by a
    guard: a branch of the view that raises one line naming the first of them (and pointing
    to ``curation check``) whenever a query reads the view. Views of other tables, and reads
    that go to other shards directly, are not affected. A stored view (``temporary=False``)
    is probed on a scratch DuckDB first, as a failed statement would abort the writer's
    transaction; a temp view is simply tried.
    """
    kind = "TEMPORARY VIEW" if temporary else "VIEW"

    def probe() -> duckdb.DuckDBPyConnection:
        if not scratch:
            scratch.append(duckdb.connect())
        return scratch[0]

    sql = view_sql(table, files)
    try:
        if not temporary:
            probe().execute(f"DESCRIBE {sql}").fetchall()
        con.execute(f"CREATE OR REPLACE {kind} {table} AS {sql}")
        return
    except duckdb.Error as exc:
        failure = exc
    bad = {f: why for f in files if (why := unreadable(probe(), f))}
    if not bad:
        raise StoreError(
            f"cannot build the {table} view over its {len(files)} shards: {first_line(str(failure))}; "
            "run `curation check` to check the store"
        ) from failure
    good = [f for f in files if f not in bad]
    guards = [_guard_sql(con, root, table, bad, dataset_columns=True), _guard_sql(con, root, table, bad)]
    for guard in guards:
        sql = guard if not good else f"({view_sql(table, good)}) UNION ALL BY NAME ({guard})"
        try:
            probe().execute(f"DESCRIBE {sql}").fetchall()
        except duckdb.Error as exc:
            failure = exc
            continue
        con.execute(f"CREATE OR REPLACE {kind} {table} AS {sql}")
        return
    raise StoreError(
        f"cannot build the {table} view without its unreadable shards: {first_line(str(failure))}; "
        "run `curation check` to check the store"
    ) from failure


def _guard_sql(
    con: duckdb.DuckDBPyConnection, root: Path, table: str, bad: dict[str, str], dataset_columns: bool = False
) -> str:
    """A one-row SELECT with the table's columns that raises a one-line error when evaluated.

    Every column and the WHERE clause call ``error()``, so neither column pruning (count(*))
    nor filter pushdown can skip it. ``dataset_columns`` adds the columns of the datasets the
    unreadable ``samples`` shards belong to, so queries naming them still reach the error.
    """
    rels = [os.path.relpath(f, root) for f in bad]
    err = f"error({sql_literal(guard_message(table, rels, bad[next(iter(bad))]))})"
    columns = {f.name: _DUCK_TYPES[f.type] for f in SHARD_SCHEMAS[table]}
    if dataset_columns and table == "samples":
        rows = con.execute(
            """SELECT d.fields FROM datasets d JOIN shards s ON s.run_id = d.run_id
               WHERE s.table_name = 'samples' AND list_contains(?, s.path)""",
            [rels],
        ).fetchall()
        for (fields,) in rows:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                for field in json.loads(fields) if isinstance(fields, str) else fields or []:
                    columns.setdefault(str(field["name"]), str(field.get("type") or "VARCHAR"))
    select = ", ".join(f'CAST({err} AS {typ}) AS "{name.replace(chr(34), chr(34) * 2)}"' for name, typ in columns.items())
    return f"SELECT {select} FROM (SELECT 1) AS {GUARD_ALIAS} WHERE {err} IS NULL"
