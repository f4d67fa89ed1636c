"""Parquet shards: where a run's shards live, writing them atomically, validating and registering them.

A shard is one immutable Parquet file of a shard table (``samples``, ``scores``, ...) written by
one run, at ``data/<table>/run=<run_id>/part-NNNNN.parquet``. Any process may write shards
without the catalog; they become visible when the run is finished (see :mod:`stores.runs`),
which validates and registers every shard found on disk.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path, write_parquet_atomic, write_parquet_atomic_duckdb
from .catalog import Catalog
from .errors import StoreError
from .records import utcnow
from .schema import OPEN_SCHEMA_TABLES, SHARD_SCHEMAS, SHARD_TABLES

PART_RE = re.compile(r"^part-(\d+)\.parquet$")


@dataclass(frozen=True)
class ShardInfo:
    """One Parquet shard on disk: its table, run, index, path (relative to the store) and size."""

    table: str
    run_id: str
    shard: int
    path: str
    n_rows: int
    bytes: int


# ---------------------------------------------------------------------- data and schemas
def to_arrow(data: Any) -> pa.Table:
    """Accept an Arrow table/batch, polars or pandas DataFrame, or a dict of columns."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pl.DataFrame):
        return data.to_arrow()
    if isinstance(data, Mapping):
        return pa.table(dict(data))
    if hasattr(data, "to_arrow"):
        return data.to_arrow()
    try:
        return pa.Table.from_pandas(data, preserve_index=False)
    except Exception as exc:  # noqa: BLE001 - report what we accept
        raise StoreError(
            f"cannot write {type(data).__name__}: expected an Arrow table, polars/pandas "
            "DataFrame or a dict of columns"
        ) from exc


def check_table(table: str) -> None:
    """Raise :class:`StoreError` unless ``table`` is a shard table."""
    if table not in SHARD_SCHEMAS:
        raise StoreError(f"unknown shard table {table!r}; expected one of {', '.join(SHARD_TABLES)}")


def constant_strings(value: str, n: int) -> pa.Array:
    """A string array of ``n`` copies of ``value``, built from buffers (fast for millions of rows)."""
    raw = value.encode()
    if n * len(raw) >= 2**31 - 1:
        return pa.array([value] * n, pa.string())
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(raw))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(raw * n))


def conform(table: str, data: pa.Table, run_id: str) -> pa.Table:
    """Fill ``run_id``, check required columns and cast to the table's schema."""
    check_table(table)
    schema = SHARD_SCHEMAS[table]
    if "run_id" in schema.names and "run_id" not in data.column_names:
        data = data.append_column("run_id", constant_strings(run_id, data.num_rows))
    missing = [n for n in schema.names if n not in data.column_names]
    if missing:
        raise StoreError(
            f"{table} shard is missing column(s) {', '.join(missing)}; got {', '.join(data.column_names)}"
        )
    if table in OPEN_SCHEMA_TABLES:
        extra = [n for n in data.column_names if n not in schema.names]
        cols = [data.column(n).cast(f.type) for n, f in zip(schema.names, schema, strict=True)] + [
            data.column(n) for n in extra
        ]
        return pa.table(cols, names=list(schema.names) + extra)
    extra = [n for n in data.column_names if n not in schema.names]
    if extra:
        raise StoreError(f"{table} shard has unexpected column(s) {', '.join(extra)}; expected {', '.join(schema.names)}")
    try:
        return data.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise StoreError(f"{table} shard does not match schema {schema}: {exc}") from exc


def _same_type(found: pa.DataType, wanted: pa.DataType) -> bool:
    if pa.types.is_string(wanted) or pa.types.is_large_string(wanted):
        return pa.types.is_string(found) or pa.types.is_large_string(found) or pa.types.is_string_view(found)
    return found == wanted


def validated_metadata(table: str, path: Path) -> pq.FileMetaData:
    """Parquet metadata of a shard file of ``table``, checked to hold the table's columns and types."""
    try:
        meta = pq.read_metadata(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise StoreError(f"shard {path} is not a readable Parquet file: {exc}") from exc
    found = meta.schema.to_arrow_schema()
    missing = [f.name for f in SHARD_SCHEMAS[table] if f.name not in found.names]
    if missing:
        raise StoreError(f"shard {path} lacks column(s) {', '.join(missing)} required by table {table}")
    wrong = [
        f"{f.name} is {found.field(f.name).type}, expected {f.type}"
        for f in SHARD_SCHEMAS[table]
        if not _same_type(found.field(f.name).type, f.type)
    ]
    if wrong:
        raise StoreError(f"shard {path} has the wrong column types for table {table}: {'; '.join(wrong)}")
    return meta


# ---------------------------------------------------------------------- files of a run
def shard_dir(catalog: Catalog, table: str, run_id: str) -> Path:
    """Folder holding one run's shards of one table."""
    check_table(table)
    return catalog.data_dir / table / f"run={run_id}"


def shard_path(catalog: Catalog, table: str, run_id: str, shard: int) -> Path:
    """Path of one shard file."""
    return shard_dir(catalog, table, run_id) / f"part-{shard:05d}.parquet"


def completed_shards(catalog: Catalog, table: str, run_id: str) -> set[int]:
    """Indices of the shards of ``table`` that ``run_id`` has written (complete files only)."""
    folder = shard_dir(catalog, table, run_id)
    if not folder.is_dir():
        return set()
    return {int(m.group(1)) for p in folder.iterdir() if (m := PART_RE.match(p.name))}


def delete_run_files(catalog: Catalog, run_id: str) -> None:
    """Remove every shard file a run wrote (used for failed ingests and superseded datasets)."""
    for table in SHARD_TABLES:
        shutil.rmtree(shard_dir(catalog, table, run_id), ignore_errors=True)


def write_shard(
    catalog: Catalog, table: str, run_id: str, data: Any, shard: int | None = None, *, exclusive: bool = False,
    **parquet_options: Any,
) -> ShardInfo:
    """Write one immutable Parquet shard of ``table`` for ``run_id`` by atomic rename.

    Works from any process without the catalog (workers); the shard becomes visible when the
    run is finished (which registers every shard found). Missing ``run_id`` columns are filled
    in; columns are checked and cast to the table's schema. ``parquet_options`` go to
    ``pyarrow.parquet.write_table``; without them, fixed-schema tables (scores, flags, ...) are
    written by DuckDB's Parquet writer (snappy). ``exclusive`` (distributed workers): a shard
    already on disk is never replaced; the returned info then describes the file that is there.
    """
    arrow = conform(table, to_arrow(data), run_id)
    if shard is None:
        done = completed_shards(catalog, table, run_id)
        shard = max(done) + 1 if done else 0
    path = shard_path(catalog, table, run_id, shard)
    if table in OPEN_SCHEMA_TABLES or parquet_options:
        size = write_parquet_atomic(arrow, path, exclusive=exclusive, **parquet_options)
    else:  # fixed-schema tables are queried in bulk: DuckDB's own files read fastest
        size = write_parquet_atomic_duckdb(arrow, path, exclusive=exclusive)
    n_rows = pq.read_metadata(path).num_rows if exclusive else arrow.num_rows
    return ShardInfo(table, run_id, shard, str(path.relative_to(catalog.root)), n_rows, size)


@contextlib.contextmanager
def shard_target(catalog: Catalog, table: str, run_id: str, shard: int) -> Iterator[Path]:
    """Yield a temp path for a worker to write one shard with any tool (DuckDB COPY, Spark...).

    On success the file is renamed into place atomically; it is validated when the run is
    registered or finished. On error nothing appears.
    """
    with atomic_path(shard_path(catalog, table, run_id, shard)) as tmp:
        yield tmp


# ---------------------------------------------------------------------- the catalog's manifest
def register_shards(catalog: Catalog, run_id: str) -> list[ShardInfo]:
    """Register shards that other processes wrote for ``run_id`` (validated), without finishing it.

    Runs in the current ``write()`` transaction when there is one (as when a run is finished).
    """
    with catalog.write() as con:
        known = {
            (t, s) for t, s in con.execute(
                "SELECT table_name, shard FROM shards WHERE run_id = ?", [run_id]
            ).fetchall()
        }
        found = []
        for table in SHARD_TABLES:
            for shard in sorted(completed_shards(catalog, table, run_id)):
                if (table, shard) in known:
                    continue
                path = shard_path(catalog, table, run_id, shard)
                meta = validated_metadata(table, path)
                info = ShardInfo(
                    table, run_id, shard, str(path.relative_to(catalog.root)),
                    meta.num_rows, path.stat().st_size,
                )
                con.execute(
                    "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [table, run_id, shard, info.path, info.n_rows, info.bytes, utcnow()],
                )
                found.append(info)
    return found


def shard_paths(catalog: Catalog, table: str, run_id: str | None = None) -> list[str]:
    """Absolute paths of the registered shards of ``table`` of finished runs (optionally one run)."""
    check_table(table)
    query = """SELECT s.path FROM shards s JOIN runs r USING (run_id)
               WHERE r.status = 'finished' AND s.table_name = ?"""
    params: list[Any] = [table]
    if run_id:
        query += " AND s.run_id = ?"
        params.append(run_id)
    with catalog.connect() as con:
        rows = con.execute(query + " ORDER BY s.run_id, s.shard", params).fetchall()
    return [str(catalog.root / p) for (p,) in rows]


def scan(catalog: Catalog, table: str, run_id: str | None = None) -> pl.LazyFrame:
    """A polars LazyFrame over the visible shards of ``table`` (optionally of one run)."""
    paths = shard_paths(catalog, table, run_id)
    if not paths:
        return pl.from_arrow(SHARD_SCHEMAS[table].empty_table()).lazy()
    if table in OPEN_SCHEMA_TABLES:  # datasets differ in columns: align on the first one's
        return pl.scan_parquet(paths, missing_columns="insert", extra_columns="ignore")
    return pl.scan_parquet(paths)

