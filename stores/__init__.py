"""The curation store: a DuckDB catalog over Parquet shards, queried in SQL.

>>> import stores
>>> store = stores.open("curation-store")
>>> store.sql("SELECT dataset, count(*) FROM samples GROUP BY 1")

Layout and guarantees are described in :mod:`stores.catalog`, :mod:`stores.store` and docs/store.md.
"""

from __future__ import annotations

import os

from .check import CheckReport, check_store
from .errors import (
    CatalogCorruptError,
    DatasetExistsError,
    IngestError,
    QueryError,
    ReadOnlyQueryError,
    SchemaVersionError,
    ShardDamagedError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    UnknownDatasetError,
)
from .ids import sample_id
from .schema import SCHEMA_VERSION, SHARD_TABLES
from .store import RunHandle, ShardInfo, Store, default_store_path


def open(  # noqa: A001 - mirrors the builtin on purpose: stores.open(path)
    path: str | os.PathLike | None = None, *, create: bool = True, lock_timeout: float | None = None
) -> Store:
    """Open the store at ``path`` (default ``$CURATION_STORE`` or ``./curation-store``).

    Creates it when missing unless ``create=False``; raises :class:`SchemaVersionError` for a
    store written by another catalog schema version.
    """
    return Store.open(path, create=create, lock_timeout=lock_timeout)


__all__ = [
    "SCHEMA_VERSION",
    "SHARD_TABLES",
    "CatalogCorruptError",
    "CheckReport",
    "DatasetExistsError",
    "IngestError",
    "QueryError",
    "ReadOnlyQueryError",
    "RunHandle",
    "SchemaVersionError",
    "ShardDamagedError",
    "ShardInfo",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "UnknownDatasetError",
    "check_store",
    "default_store_path",
    "open",
    "sample_id",
]
