"""How a damaged store shows: DuckDB errors and unreadable files turned into one-line messages.

A damaged catalog (checksum or format errors) gives :class:`CatalogCorruptError`; a shard that is
missing or unreadable gives :class:`ShardDamagedError`. Views built around unreadable shards carry
a guard (see :mod:`stores.views`) whose error text this module writes and recognises.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from .errors import CatalogCorruptError, ShardDamagedError, StoreError
from .schema import sql_literal

# FROM alias of the guard a view gets for shards it could not read (see stores.views); finding it
# in a stored view's SQL tells readers to rebuild that view, in case the shard has been restored.
GUARD_ALIAS = "_curation_unreadable_shards"
_GUARD_RE = re.compile(r"(shard \S+ was unreadable when the \w+ view was built.*)")
_DUCK_PREFIX_RE = re.compile(r"^[A-Za-z ]*Error: ")
_QUOTED_RE = re.compile(r"'([^'\n]+)'" + r'|"([^"\n]+)"')
_CATALOG_DAMAGE = (
    "corrupt database file",
    "not a valid duckdb database file",
    "could not read enough bytes from file",
    "failure while replaying wal",
)


def first_line(msg: str) -> str:
    """The first non-empty line of a (DuckDB) error message."""
    return next((line.strip() for line in msg.splitlines() if line.strip()), msg.strip())


def short_reason(msg: str, path: str | None = None) -> str:
    """A DuckDB error as a short reason: first line, without the error kind and the quoted ``path``."""
    line = _DUCK_PREFIX_RE.sub("", first_line(msg), count=1)
    if path:
        line = line.replace(f"'{path}'", "").replace(f'"{path}"', "")
    line = re.sub(r"\s+([:;,])", r"\1", " ".join(line.split()))
    return line.rstrip(" :;,") or "unreadable"


def unreadable(con: duckdb.DuckDBPyConnection, path: str) -> str | None:
    """Why DuckDB cannot bind ``path`` as a Parquet file (missing, truncated footer, ...), or None."""
    if not os.path.exists(path):
        return "file is missing"
    try:
        con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(path)})").fetchall()
    except duckdb.Error as exc:
        return short_reason(str(exc), path)
    return None


def unreadable_arrow(path: str) -> str | None:
    """Why pyarrow cannot read ``path`` fully as Parquet (missing, truncated, corrupt), or None."""
    if not os.path.exists(path):
        return "file is missing"
    try:
        pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the answer
        return first_line(str(exc)) or type(exc).__name__
    return None


def guard_message(table: str, rel_paths: list[str], why: str) -> str:
    """The error a view's guard raises for its unreadable shards ``rel_paths`` (the first one ``why``)."""
    more = f" (and {len(rel_paths) - 1} more)" if len(rel_paths) > 1 else ""
    owner = "dataset" if table == "samples" else "run"
    return (
        f"shard {rel_paths[0]} was unreadable when the {table} view was built ({why}){more}; "
        f"run `curation check` to list damaged files, then restore them from a backup or drop their {owner}"
    )


def corrupt_message(catalog_path: Path, data_dir: Path, msg: str) -> str:
    """What to do about a damaged catalog, given DuckDB's error ``msg``."""
    samples = sql_literal(str(data_dir / "samples" / "**" / "*.parquet"))
    return (
        f"the catalog {catalog_path} is damaged ({short_reason(msg)}): restore catalog.duckdb from a "
        f"backup. The Parquet shards under {data_dir} are separate files and stay readable with "
        f"plain DuckDB, e.g. SELECT * FROM read_parquet({samples}, union_by_name = true); "
        "`curation check` lists which are intact"
    )


def translate_error(exc: BaseException, *, root: Path, catalog_path: Path, data_dir: Path) -> StoreError | None:
    """The store's one-line error for a DuckDB error caused by a damaged store, else None.

    A damaged catalog (checksum or format errors) gives :class:`CatalogCorruptError`; a
    shard that is missing or unreadable (a file under ``data_dir`` named in the error, or a
    view's guard) gives :class:`ShardDamagedError`.
    """
    if isinstance(exc, StoreError):
        return exc
    if not isinstance(exc, duckdb.Error):
        return None
    msg = str(exc)
    low = msg.lower()
    if any(p in low for p in _CATALOG_DAMAGE) and (
        "corrupt database file" in low or str(catalog_path) in msg  # not a shard's read error
    ):
        return CatalogCorruptError(corrupt_message(catalog_path, data_dir, msg))
    guard = _GUARD_RE.search(msg)
    if guard:
        return ShardDamagedError(first_line(guard.group(1)))
    if isinstance(exc, duckdb.PermissionException):  # the sandbox refused a path: not damage
        return None
    for m in _QUOTED_RE.finditer(msg):
        path = m.group(1) or m.group(2)
        if os.path.normpath(path).startswith(str(data_dir) + os.sep):  # a shard, not ../elsewhere
            rel = os.path.relpath(os.path.normpath(path), root)
            why = "file is missing" if not Path(path).exists() else short_reason(msg, path)
            return ShardDamagedError(
                f"cannot read {rel} ({why}); run `curation check` to list damaged files, "
                "then restore them from a backup or drop their dataset/run"
            )
    return None
