"""Errors raised by the store. Each names the file, line or holder involved so a user can act on it."""


class StoreError(Exception):
    """Base class for every error the store raises on purpose."""


class StoreNotFoundError(StoreError):
    """The folder holds no store (no catalog.duckdb) and creation was not requested."""


class SchemaVersionError(StoreError):
    """The store was written by a different catalog schema version than this code reads."""


class StoreLockedError(StoreError):
    """Another process holds the store's writer lock (or DuckDB's file lock) past the timeout."""


class DatasetExistsError(StoreError):
    """A dataset with this name exists and replacement was not requested."""


class UnknownDatasetError(StoreError):
    """No dataset with this name is registered."""


class IngestError(StoreError):
    """Input could not be ingested: malformed line, bad encoding, missing field, empty input."""


class QueryError(StoreError):
    """A SQL query or predicate failed; the message carries DuckDB's explanation."""


class ReadOnlyQueryError(QueryError):
    """Read-only SQL (``Store.sql``, ``curation sql`` without ``--write``) got a statement that
    could modify the store or reach outside it (COPY, CREATE, ATTACH, SET, INSTALL, ...)."""


class ShardDamagedError(StoreError):
    """A Parquet shard of the store is missing, truncated or unreadable; the message names the file
    and points to ``curation check``."""


class CatalogCorruptError(StoreError):
    """``catalog.duckdb`` is damaged (DuckDB checksum or format error); the Parquet shards under
    ``data/`` are separate files and stay readable with plain DuckDB."""


class IngestPartError(Exception):
    """A worker could not read its part of an ingest input; carries the reader's message for diagnosis."""
