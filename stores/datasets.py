"""Registered datasets: their records, their sample shards, reading their samples, dropping them.

Writing a dataset (ingest, curate) is :mod:`stores.dataset_writer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import Catalog
from .damage import unreadable_arrow
from .errors import ShardDamagedError, UnknownDatasetError
from .ids import quote_ident
from .runs import supersede_run
from .shards import delete_run_files
from .sql import sql


def list_datasets(catalog: Catalog) -> pl.DataFrame:
    """Registered datasets (curated ones included), oldest first."""
    return sql(catalog, "SELECT * FROM datasets ORDER BY created_at")


def dataset_info(catalog: Catalog, name: str) -> dict[str, Any]:
    """One dataset's record; raises :class:`UnknownDatasetError` listing known names."""
    df = sql(catalog, "SELECT * FROM datasets WHERE name = ?", [name])
    if df.height == 0:
        known = sql(catalog, "SELECT name FROM datasets ORDER BY name")["name"].to_list()
        raise UnknownDatasetError(
            f"no dataset {name!r} in {catalog.root}; known: {', '.join(known) or '(none)'}"
        )
    rec = df.row(0, named=True)
    rec["fields"] = json.loads(rec["fields"]) if isinstance(rec["fields"], str) else rec["fields"]
    return rec


def dataset_files_in(catalog: Catalog, con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Absolute paths of a dataset's Parquet shards, in sample order, read on ``con``."""
    rows = con.execute(
        """SELECT s.path FROM datasets d JOIN shards s ON s.run_id = d.run_id AND s.table_name = 'samples'
           WHERE d.name = ? ORDER BY s.shard""",
        [name],
    ).fetchall()
    return [str(catalog.root / p) for (p,) in rows]


def dataset_files(catalog: Catalog, name: str) -> list[str]:
    """Absolute paths of a dataset's Parquet shards, in sample order."""
    dataset_info(catalog, name)
    with catalog.connect() as con:
        return dataset_files_in(catalog, con, name)


def read_samples(catalog: Catalog, name: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """A dataset's samples (only its own columns), in ingest order."""
    files = dataset_files(catalog, name)
    if not files:  # a dataset with no rows (e.g. curated with a strict predicate) has no shards
        empty = _empty_samples_frame(dataset_info(catalog, name)["fields"])
        return empty.select(list(columns)) if columns else empty
    lf = pl.scan_parquet(files)
    if columns:
        lf = lf.select(list(columns))
    try:
        return lf.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        for f in files:
            reason = unreadable_arrow(f)
            if reason:
                raise ShardDamagedError(
                    f"cannot read {Path(f).relative_to(catalog.root)} of dataset {name!r} ({reason}); "
                    "run `curation check` to list damaged files, then restore them from a backup "
                    "or drop the dataset"
                ) from exc
        raise


def iter_samples(
    catalog: Catalog, name: str, columns: Sequence[str] | None = None, batch_rows: int = 10_000
) -> Iterator[pl.DataFrame]:
    """A dataset's samples in ingest order, ``batch_rows`` at a time (memory bounded by the batch).

    Every batch has the ``ordinal`` column (the sample's position in the dataset) besides
    ``columns``; a dataset without rows yields nothing.
    """
    for path in dataset_files(catalog, name):
        try:
            yield from iter_file_batches(path, columns, batch_rows)
        except (OSError, pa.ArrowException) as exc:
            reason = unreadable_arrow(path) or str(exc)
            raise ShardDamagedError(
                f"cannot read {Path(path).relative_to(catalog.root)} of dataset {name!r} ({reason}); "
                "run `curation check` to list damaged files"
            ) from exc


@dataclass(frozen=True)
class SampleFile:
    """One sample shard of a dataset, for a worker: its path, rows, and the number of its first batch.

    ``first_batch`` counts the batches of ``batch_rows`` that :func:`iter_samples` yields before
    this file's, so work done per batch can be numbered the same in any process.
    """

    path: str
    n_rows: int
    first_batch: int


def dataset_sample_files(catalog: Catalog, name: str, batch_rows: int = 10_000) -> list[SampleFile]:
    """A dataset's sample shards in sample order, each with the number of its first batch."""
    out, first = [], 0
    for path in dataset_files(catalog, name):
        n = pq.read_metadata(path).num_rows
        out.append(SampleFile(path, n, first))
        first += -(-n // batch_rows)
    return out


def iter_file_batches(path: str, columns: Sequence[str] | None = None,
                      batch_rows: int = 10_000) -> Iterator[pl.DataFrame]:
    """One sample shard's batches as :func:`iter_samples` yields them (with ``ordinal``)."""
    wanted = list(dict.fromkeys(["ordinal", *(columns or [])])) if columns else None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=wanted):
        yield pl.from_arrow(batch)


def _empty_samples_frame(fields: list[dict[str, Any]]) -> pl.DataFrame:
    """A 0-row frame with the columns and types a dataset's shards would have."""
    cols = [("dataset", "VARCHAR"), ("sample_id", "VARCHAR"), ("ordinal", "BIGINT")]
    cols += [(f["name"], f.get("type") or "VARCHAR") for f in fields]
    select = ", ".join(f"NULL::{t} AS {quote_ident(n)}" for n, t in cols)
    con = duckdb.connect()
    try:
        return pl.from_arrow(con.sql(f"SELECT {select} LIMIT 0").to_arrow_table())
    finally:
        con.close()


def drop_dataset(catalog: Catalog, name: str) -> None:
    """Unregister a dataset and delete its shards (its runs stay in the audit trail)."""
    info = dataset_info(catalog, name)
    with catalog.write() as con:
        con.execute("DELETE FROM datasets WHERE name = ?", [name])
        con.execute("DELETE FROM curated WHERE name = ?", [name])
        supersede_run(con, info["run_id"])
        catalog.mark_views_dirty()
    delete_run_files(catalog, info["run_id"])
