"""SQL against a store: read-only queries in a sandbox, and trusted SQL under the writer lock.

Read-only SQL is checked statement by statement with DuckDB's own parser (:func:`classify_sql`),
then runs on a catalog connection DuckDB opened read-only and confined to the store folder
(:func:`sandbox`). :func:`execute` runs trusted SQL that may write, in one transaction.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from .catalog import Catalog, held_kinds, holding
from .errors import QueryError, ReadOnlyQueryError, StoreError
from .records import first_row
from .schema import sql_literal
from .views import shadow_stale_views

_sandbox_guard = threading.Lock()
# PRAGMA name / CALL pragma_name(...) that only read metadata (everything else is refused)
_READ_PRAGMAS = frozenset({
    "collations", "database_list", "database_size", "functions", "metadata_info", "platform", "show",
    "show_databases", "show_tables", "show_tables_expanded", "storage_info", "table_info", "user_agent",
    "version",
})
_READS_HELP = (
    "read-only SQL accepts only statements that read: SELECT, WITH ... SELECT, VALUES, FROM, SHOW, "
    "DESCRIBE, SUMMARIZE, EXPLAIN [ANALYZE] of those, and metadata PRAGMAs such as table_info. "
    "To modify the store or write files use `curation sql --write` or Store.execute()."
)


# ---------------------------------------------------------------------- classifying statements
@dataclass(frozen=True)
class SqlStatement:
    """One statement of a SQL string as DuckDB parses it: its text, its kind, whether it only reads."""

    text: str
    kind: str
    reads: bool


def classify_sql(query: str) -> list[SqlStatement]:
    """Split ``query`` into statements with DuckDB's own parser and say which only read.

    A statement reads when DuckDB types it SELECT (which covers WITH, VALUES, FROM, SHOW,
    DESCRIBE, SUMMARIZE), when it is EXPLAIN [ANALYZE] of such a statement, or a PRAGMA / CALL
    of a metadata pragma (table_info, show_tables, version ...). Everything else (COPY, CREATE,
    INSERT, ATTACH, SET, INSTALL, LOAD, EXPORT, IMPORT, CHECKPOINT, ...) does not. Raises
    :class:`QueryError` for SQL DuckDB cannot parse or an empty string.
    """
    try:
        statements = duckdb.extract_statements(query)
    except (duckdb.Error, ValueError) as exc:
        raise QueryError(str(exc)) from exc
    if not statements:
        raise QueryError("no SQL statement given")
    return [_classify(st) for st in statements]


def check_read_only(query: str) -> list[SqlStatement]:
    """:func:`classify_sql`, raising :class:`ReadOnlyQueryError` unless every statement only reads."""
    statements = classify_sql(query)
    for i, st in enumerate(statements, 1):
        if not st.reads:
            text = " ".join(st.text.split())
            text = text if len(text) <= 80 else text[:77] + "..."
            raise ReadOnlyQueryError(
                f"read-only SQL refused statement {i} of {len(statements)}, a {st.kind} statement: {text!r}. "
                + _READS_HELP
            )
    return statements


def _classify(statement: Any) -> SqlStatement:
    text = statement.query.strip()
    words = _words(text)
    first = words[0][1].upper() if words else ""
    try:
        kind = statement.type
    except ValueError:  # a statement type this DuckDB's Python API has no name for
        return SqlStatement(text, first or "unknown", False)
    label = kind.name if first in ("", kind.name) else f"{kind.name} ({first})"
    if kind == duckdb.StatementType.SELECT:
        return SqlStatement(text, label, True)
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _explained(text, words)
        if inner is not None:
            try:
                inner_statements = duckdb.extract_statements(inner)
            except (duckdb.Error, ValueError):
                inner_statements = []
            if len(inner_statements) == 1:
                got = _classify(inner_statements[0])
                return SqlStatement(text, f"EXPLAIN of {got.kind}", got.reads)
        return SqlStatement(text, label, False)
    if kind in (duckdb.StatementType.PRAGMA, duckdb.StatementType.CALL) and first in ("PRAGMA", "CALL"):
        name = words[1][1].lower() if len(words) > 1 else ""
        name = name.removeprefix("pragma_") if first == "CALL" else name
        plain = len(words) == 2 or words[2][1] in ("(", ";")
        return SqlStatement(text, label, name in _READ_PRAGMAS and plain)
    return SqlStatement(text, label, False)


def _words(text: str) -> list[tuple[int, str]]:
    """DuckDB's tokens of ``text`` as (offset, first word of the token)."""
    try:
        tokens = duckdb.tokenize(text)
    except (duckdb.Error, ValueError):
        return []
    out = []
    for i, (start, _type) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        piece = text[start:end].split()
        out.append((start, piece[0] if piece else ""))
    return out


def _explained(text: str, words: list[tuple[int, str]]) -> str | None:
    """The statement an EXPLAIN statement explains (after ANALYZE / an option list), or None."""
    if not words or words[0][1].upper() != "EXPLAIN":
        return None
    i, depth = 1, 0
    while i < len(words):
        word = words[i][1]
        if word.startswith("("):
            depth += 1
        elif word.startswith(")"):
            depth -= 1
        elif depth == 0 and word.upper() not in ("ANALYZE", "ANALYSE"):
            return text[words[i][0]:]
        i += 1
    return None


# ---------------------------------------------------------------------- the sandbox
@contextlib.contextmanager
def sandbox(catalog: Catalog) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only catalog connection whose file access DuckDB confines to the store folder.

    Opened read-only (DuckDB refuses any write to the catalog), then locked down with
    DuckDB's own settings: ``allowed_directories`` = the store root (the views' Parquet
    shards live under it, wherever the store was moved), ``enable_external_access = false``
    (every other file, URL, ATTACH, INSTALL and LOAD is refused) and
    ``lock_configuration = true`` (no SET can undo it). Extension auto-install/auto-load are
    off. Never shares a writable database: see :meth:`Catalog.open_duckdb`.
    """
    if held_kinds(catalog.catalog_path) - {"sandbox"}:
        raise StoreError(
            f"store.sql() cannot run inside a write() or connect() block of store {catalog.root} in the "
            "same thread: read-only SQL runs on its own sandboxed connection, which DuckDB cannot open "
            "while this thread holds the catalog open. Run the query on the connection the block "
            "yields, or after the block."
        )
    con = catalog.open_duckdb(read_only=True, sandboxed=True)
    try:
        with holding(catalog.catalog_path, "sandbox"), catalog.translating():
            _lock_down(catalog, con)
            shadow_stale_views(con, catalog.root)
            yield con
    finally:
        con.close()


def _lock_down(catalog: Catalog, con: duckdb.DuckDBPyConnection) -> None:
    """Confine ``con``'s database instance to the store folder (once per instance)."""
    with _sandbox_guard:  # threads of this process may share the instance: set it up once
        locked, external, allowed = con.execute(
            "SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
            "current_setting('allowed_directories')"
        ).fetchone()
        if not locked:
            con.execute(f"SET allowed_directories = [{sql_literal(str(catalog.root))}]")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
            return
    roots = {str(d).rstrip("/") for d in allowed or []}
    if external or str(catalog.root) not in roots:
        raise StoreError(
            f"the catalog {catalog.catalog_path} is open in this process with a locked configuration that is "
            f"not the store's read-only sandboxed one (external access {external}, allowed {sorted(roots)}); "
            "close that connection first"
        )


# ---------------------------------------------------------------------- running queries
def run_query(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None, catalog: Catalog | None = None
) -> pl.DataFrame:
    """Run ``query`` on ``con`` as a polars DataFrame; DuckDB errors become store or query errors."""
    try:
        rel = con.sql(query, params=list(params) if params else None)
        return pl.DataFrame() if rel is None else rel.pl()
    except duckdb.Error as exc:
        translated = catalog.translate_error(exc) if catalog is not None else None
        if translated is not None:
            raise translated from exc
        msg = str(exc)
        if "read-only" in msg.lower():
            msg += " (queries are read-only by default; use --write / Store.execute to modify)"
        elif "disabled by configuration" in msg:
            msg += " (read-only SQL may read only files inside the store folder; use --write / Store.execute)"
        raise QueryError(msg) from exc


def sql(catalog: Catalog, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run read-only SQL against the catalog; returns a polars DataFrame.

    Read-only means: every statement must be one that only reads (see :func:`classify_sql`;
    anything else raises :class:`ReadOnlyQueryError` before anything runs), it runs on a
    catalog connection DuckDB opened read-only, and DuckDB lets it touch no file outside the
    store folder. Use :func:`execute` (CLI: ``--write``) to modify the store or write files.
    """
    check_read_only(query)
    with sandbox(catalog) as con:
        return run_query(con, query, params, catalog)


@contextlib.contextmanager
def sql_reader(
    catalog: Catalog, query: str, params: Sequence[Any] | None = None, batch_rows: int = 100_000
) -> Iterator[pa.RecordBatchReader]:
    """Like :func:`sql` (same checks, same sandbox) but streams the result as Arrow batches.

    For results too large to hold in memory, e.g. ``curation sql ... --out FILE``; the
    reader is valid inside the block only.
    """
    check_read_only(query)
    with sandbox(catalog) as con:
        try:
            rel = con.sql(query, params=list(params) if params else None)
            if rel is None:
                raise QueryError("the query returned no result set")
            yield rel.to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            raise catalog.translate_error(exc) or QueryError(str(exc)) from exc


def execute(catalog: Catalog, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run SQL that may modify the catalog, under the writer lock, in one transaction.

    Runs with DuckDB's full privileges (COPY TO, ATTACH, files anywhere): for trusted SQL only.
    """
    with catalog.write() as con:
        return run_query(con, query, params, catalog)


def tables(catalog: Catalog) -> pl.DataFrame:
    """Tables and views of the catalog with their kind and row count."""
    with catalog.connect() as con:
        rows = con.execute(
            """SELECT table_name, table_type FROM information_schema.tables
               WHERE table_schema IN ('main', 'temp') ORDER BY table_name"""
        ).fetchall()
        seen: dict[str, str] = {}
        for name, ttype in rows:
            seen[name] = "view" if "VIEW" in ttype.upper() else "table"
        out = []
        for name, kind in sorted(seen.items()):
            n = first_row(con.execute(f'SELECT count(*) FROM "{name}"').fetchall())[0]
            out.append({"name": name, "kind": kind, "rows": n})
    return pl.DataFrame(out, schema={"name": pl.String, "kind": pl.String, "rows": pl.Int64})
