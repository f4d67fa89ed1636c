"""The store: a folder holding ``catalog.duckdb`` and immutable Parquet shards under ``data/``.

Readers open the catalog read-only for the length of one query, so many processes can read at
once. Writers take the store's writer lock (see :mod:`stores.lock`) and change the catalog in one
DuckDB transaction; bulk data is written as Parquet shards by atomic rename *before* the catalog
points at it, so a killed process never leaves a partial table visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import (
    _pid_alive,
    atomic_path,
    remove_stale_temp_files,
    write_parquet_atomic,
    write_parquet_atomic_duckdb,
)
from .errors import (
    CatalogCorruptError,
    QueryError,
    ReadOnlyQueryError,
    SchemaVersionError,
    ShardDamagedError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    UnknownDatasetError,
)
from .ids import quote_ident
from .lock import DEFAULT_TIMEOUT_S, describe_holder, writer_lock
from .schema import (
    _DUCK_TYPES,
    CATALOG_DDL,
    OPEN_SCHEMA_TABLES,
    SCHEMA_VERSION,
    SHARD_SCHEMAS,
    SHARD_TABLES,
    sql_literal,
    view_sql,
)

DEFAULT_STORE = "curation-store"
CATALOG_NAME = "catalog.duckdb"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_PART_RE = re.compile(r"^part-(\d+)\.parquet$")
# FROM alias of the guard a view gets for shards it could not read (see Store._create_view); finding it
# in a stored view's SQL tells readers to rebuild that view, in case the shard has been restored.
_GUARD_ALIAS = "_curation_unreadable_shards"
_GUARD_RE = re.compile(r"(shard \S+ was unreadable when the \w+ view was built.*)")
_DUCK_PREFIX_RE = re.compile(r"^[A-Za-z ]*Error: ")
_QUOTED_RE = re.compile(r"'([^'\n]+)'" + r'|"([^"\n]+)"')
_CATALOG_DAMAGE = (
    "corrupt database file",
    "not a valid duckdb database file",
    "could not read enough bytes from file",
    "failure while replaying wal",
)
_VERSIONED_PACKAGES = (
    "curation",
    "duckdb",
    "polars",
    "pyarrow",
    "torch",
    "transformers",
    "kronfluence",
)


def first_row(rows: list[tuple]) -> tuple | None:
    """First row of a fully fetched result, or None (DuckDB wants results fetched to the end)."""
    return rows[0] if rows else None


def utcnow() -> datetime:
    """Current UTC time without tzinfo (the catalog stores naive UTC timestamps)."""
    return datetime.now(UTC).replace(tzinfo=None)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run's results depend on, for the run record."""
    import platform

    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def default_store_path() -> Path:
    """The store used when none is given: ``$CURATION_STORE`` or ``./curation-store``."""
    return Path(os.environ.get("CURATION_STORE") or DEFAULT_STORE)


def validate_name(name: str, what: str = "dataset") -> str:
    """Check a dataset/behaviour/curated name is safe in paths and SQL; return it."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StoreError(
            f"invalid {what} name {name!r}: use 1-128 characters from letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return name


def new_run_id(kind: str) -> str:
    """A readable, unique run id such as ``ingest-20261128-091502-3fa2c1``."""
    return f"{kind}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


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


@dataclass(frozen=True)
class ShardInfo:
    """One Parquet shard on disk: its table, run, index, path (relative to the store) and size."""

    table: str
    run_id: str
    shard: int
    path: str
    n_rows: int
    bytes: int


class RunHandle:
    """A run in progress: write its shards, then it is finished (or failed) by the store."""

    def __init__(self, store: Store, run_id: str):
        self.store = store
        self.id = run_id

    def write(self, table: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Write one shard of ``table`` for this run (atomic); see :meth:`Store.write_shard`."""
        return self.store.write_shard(table, self.id, data, shard=shard)

    def completed_shards(self, table: str) -> set[int]:
        """Indices of this run's shards of ``table`` already on disk (for resuming)."""
        return self.store.completed_shards(table, self.id)

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"


class Store:
    """A curation store. Open one with :func:`stores.open`.

    ``sql`` answers read-only SQL as a polars DataFrame; typed helpers write and read runs,
    datasets, shards, behaviours and flags. Not meant to be shared between threads for writing.
    """

    def __init__(self, root: Path, lock_timeout: float | None = None):
        self.root = Path(root).resolve()
        self.catalog_path = self.root / CATALOG_NAME
        self.data_dir = self.root / "data"
        self.lock_timeout = DEFAULT_TIMEOUT_S if lock_timeout is None else lock_timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls, path: str | os.PathLike | None = None, *, create: bool = True, lock_timeout: float | None = None
    ) -> Store:
        """Open (and, when ``create``, initialise) the store at ``path``; checks its schema version."""
        root = Path(path) if path is not None else default_store_path()
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a store folder")
        store = cls(root, lock_timeout=lock_timeout)
        if not store.catalog_path.exists():
            if not create:
                raise StoreNotFoundError(
                    f"no store at {store.root} (no {CATALOG_NAME}); create one with "
                    "`curation ingest ...` or stores.open(path, create=True)"
                )
            store._initialise()
        else:
            store._check_version()
        return store

    def _initialise(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        with self.write() as con:
            con.execute(CATALOG_DDL)
            rows = [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", utcnow().isoformat(timespec="seconds")),
                ("created_with", package_versions().get("curation", "?")),
                ("root", str(self.root)),
            ]
            con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)
            self._rebuild_views(con, temporary=False)

    def _check_version(self) -> None:
        with self.connect() as con:
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            if "meta" not in tables:
                if not tables:
                    needs_init = True
                else:
                    raise SchemaVersionError(
                        f"{self.catalog_path} is a DuckDB file but not a curation store (no meta table)"
                    )
            else:
                needs_init = False
                row = first_row(con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall())
                found = int(row[0]) if row else None
                if found != SCHEMA_VERSION:
                    newer = found is not None and found > SCHEMA_VERSION
                    raise SchemaVersionError(
                        f"store {self.root} has catalog schema version {found}; this curation "
                        f"({package_versions().get('curation', '?')}) reads version {SCHEMA_VERSION}. "
                        + (
                            "Upgrade curation to open it."
                            if newer
                            else "Re-create the store with this version (ingest again) or use the curation release that wrote it."
                        )
                    )
        if needs_init:  # an initialisation killed before its commit left an empty catalog
            self._initialise()
            return
        with self.connect() as con:
            views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        if not set(SHARD_TABLES) <= views:  # a store written before a shard table was added
            with self.write():
                self._mark_views_dirty()

    # ------------------------------------------------------------------ connections
    def _open_duckdb(self, read_only: bool, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the catalog, waiting up to ``lock_timeout`` for other holders; never changes mode.

        ``sandboxed`` opens the catalog with the read-only SQL settings (see :meth:`_sandbox`).
        DuckDB shares one database instance per file and process, so a catalog this process
        holds open with other settings (a writer, or a reader of the other kind) cannot be
        opened until it is closed: we wait for it, as for another process's lock, and fail with
        a clear error rather than borrow a connection that could write.
        """
        deadline = time.monotonic() + self.lock_timeout
        config = dict(_SANDBOX_CONFIG) if sandboxed else {}
        want = "sandbox" if sandboxed else ("read" if read_only else "write")
        while True:
            try:
                return duckdb.connect(str(self.catalog_path), read_only=read_only, config=config)
            except duckdb.ConnectionException as exc:
                if "different configuration" not in str(exc):
                    raise StoreError(f"cannot open {self.catalog_path}: {exc}") from exc
                mine = _held_kinds(self.catalog_path) - {want}
                if mine:  # this very thread holds it: waiting would never end
                    raise StoreError(
                        f"cannot open {self.catalog_path} for {_KIND_WORDS[want]}: this thread already holds it "
                        f"open for {' and '.join(_KIND_WORDS[k] for k in sorted(mine))} (a write()/connect() "
                        "block of this store, or a sql_reader() still being read). Use the connection that "
                        "block yields, or call this after the block."
                    ) from exc
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"store {self.root}: its catalog is open in this process with other settings "
                        "(a writer or a reader of another kind in another thread, or a direct "
                        f"duckdb.connect()); waited {self.lock_timeout:g}s for it to close. "
                        "Close that connection or raise CURATION_LOCK_TIMEOUT."
                    ) from exc
                time.sleep(0.05)
            except duckdb.IOException as exc:
                msg = str(exc)
                if "lock" not in msg.lower():
                    raise self.translate_error(exc) or StoreError(
                        f"cannot open {self.catalog_path}: {_first_line(msg)}"
                    ) from exc
                if time.monotonic() >= deadline:
                    m = re.search(r"held in (.*?) \(PID (\d+)\)", msg)
                    who = f"pid {m.group(2)} ({m.group(1)})" if m else "another process"
                    ours = describe_holder(self.root / ".writer.lock")
                    raise StoreLockedError(
                        f"store {self.root} is in use by {who}"
                        + (f"; writer lock: {ours}" if ours != "another process" else "")
                        + f"; waited {self.lock_timeout:g}s. Close that program or raise CURATION_LOCK_TIMEOUT."
                    ) from exc
                time.sleep(0.05)
            except duckdb.Error as exc:  # e.g. a checksum error in the catalog's first blocks
                raise self.translate_error(exc) or StoreError(
                    f"cannot open {self.catalog_path}: {_first_line(str(exc))}"
                ) from exc

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection to the catalog for the length of the block.

        Read-only by default, so other processes can read at the same time. Inside a
        :meth:`write` block the writer's connection is returned instead. This is the internal,
        trusted reader (exports stream files out through it); SQL from users goes through
        :meth:`sql`, which runs on a sandboxed connection.
        """
        con = getattr(self._local, "con", None)
        if con is not None:
            yield con
            return
        if not read_only:
            with self.write() as con:
                yield con
            return
        con = self._open_duckdb(read_only=True)
        try:
            with _holding(self.catalog_path, "read"), self._translating():
                self._fix_moved_root(con)
                yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the writer lock and one catalog transaction for the block (re-entrant).

        Commits when the block ends normally, rolls back on an exception.
        """
        con = getattr(self._local, "con", None)
        if con is not None:
            yield con
            return
        with writer_lock(self.root, self.lock_timeout):
            con = self._open_duckdb(read_only=False)
            self._local.con = con
            self._local.views_dirty = False
            try:
                with _holding(self.catalog_path, "write"), self._translating():
                    con.begin()
                    if self._guarded_views(con):  # built around unreadable shards: retry them
                        self._mark_views_dirty()
                    yield con
                    if self._local.views_dirty:
                        self._rebuild_views(con, temporary=False)
                    con.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                raise
            finally:
                self._local.con = None
                con.close()

    @contextlib.contextmanager
    def _sandbox(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only catalog connection whose file access DuckDB confines to the store folder.

        Opened read-only (DuckDB refuses any write to the catalog), then locked down with
        DuckDB's own settings: ``allowed_directories`` = the store root (the views' Parquet
        shards live under it, wherever the store was moved), ``enable_external_access = false``
        (every other file, URL, ATTACH, INSTALL and LOAD is refused) and
        ``lock_configuration = true`` (no SET can undo it). Extension auto-install/auto-load are
        off. Never shares a writable database: see :meth:`_open_duckdb`.
        """
        if _held_kinds(self.catalog_path) - {"sandbox"}:
            raise StoreError(
                f"store.sql() cannot run inside a write() or connect() block of store {self.root} in the "
                "same thread: read-only SQL runs on its own sandboxed connection, which DuckDB cannot open "
                "while this thread holds the catalog open. Run the query on the connection the block "
                "yields, or after the block."
            )
        con = self._open_duckdb(read_only=True, sandboxed=True)
        try:
            with _holding(self.catalog_path, "sandbox"), self._translating():
                self._lock_down(con)
                self._fix_moved_root(con)
                yield con
        finally:
            con.close()

    def _lock_down(self, con: duckdb.DuckDBPyConnection) -> None:
        """Confine ``con``'s database instance to the store folder (once per instance)."""
        with _sandbox_guard:  # threads of this process may share the instance: set it up once
            locked, external, allowed = con.execute(
                "SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
                "current_setting('allowed_directories')"
            ).fetchone()
            if not locked:
                con.execute(f"SET allowed_directories = [{sql_literal(str(self.root))}]")
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
                return
        roots = {str(d).rstrip("/") for d in allowed or []}
        if external or str(self.root) not in roots:
            raise StoreError(
                f"the catalog {self.catalog_path} is open in this process with a locked configuration that is "
                f"not the store's read-only sandboxed one (external access {external}, allowed {sorted(roots)}); "
                "close that connection first"
            )

    def _fix_moved_root(self, con: duckdb.DuckDBPyConnection) -> None:
        """Shadow stored views that do not fit this store with temp views on ``con``.

        The views hold absolute paths: if the store folder moved, every view is rebuilt. A view
        that was built around unreadable shards (see :meth:`_create_view`) is rebuilt too, so a
        shard restored from a backup is read again at once.
        """
        try:
            row = first_row(con.execute("SELECT value FROM meta WHERE key = 'root'").fetchall())
        except duckdb.CatalogException:
            return
        if row and row[0] != str(self.root):
            self._rebuild_views(con, temporary=True)
            return
        guarded = self._guarded_views(con)
        if guarded:
            self._rebuild_views(con, temporary=True, tables=guarded)

    def _guarded_views(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Shard tables whose stored view was built around unreadable shards."""
        rows = con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary AND contains(sql, ?)",
            [_GUARD_ALIAS],
        ).fetchall()
        return [t for t in SHARD_TABLES if (t,) in rows]

    def _visible_paths(self, con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
        rows = con.execute(
            """SELECT s.table_name, s.path FROM shards s JOIN runs r USING (run_id)
               WHERE r.status = 'finished' ORDER BY s.table_name, s.run_id, s.shard"""
        ).fetchall()
        out: dict[str, list[str]] = {t: [] for t in SHARD_TABLES}
        for table, path in rows:
            out.setdefault(table, []).append(str(self.root / path))
        return out

    def _rebuild_views(
        self, con: duckdb.DuckDBPyConnection, temporary: bool, tables: Sequence[str] = SHARD_TABLES
    ) -> None:
        paths = self._visible_paths(con)
        scratch: list[duckdb.DuckDBPyConnection] = []  # an in-memory DuckDB to probe files, made on demand
        try:
            for table in tables:
                self._create_view(con, table, paths[table], temporary, scratch)
        finally:
            for c in scratch:
                c.close()
        if not temporary:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", [str(self.root)])

    def _create_view(
        self,
        con: duckdb.DuckDBPyConnection,
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
        bad = {f: reason for f in files if (reason := _unreadable(probe(), f))}
        if not bad:
            raise StoreError(
                f"cannot build the {table} view over its {len(files)} shards: {_first_line(str(failure))}; "
                "run `curation check` to check the store"
            ) from failure
        good = [f for f in files if f not in bad]
        guards = [self._guard_sql(con, table, bad, dataset_columns=True), self._guard_sql(con, table, bad)]
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
            f"cannot build the {table} view without its unreadable shards: {_first_line(str(failure))}; "
            "run `curation check` to check the store"
        ) from failure

    def _guard_sql(
        self, con: duckdb.DuckDBPyConnection, table: str, bad: dict[str, str], dataset_columns: bool = False
    ) -> str:
        """A one-row SELECT with the table's columns that raises a one-line error when evaluated.

        Every column and the WHERE clause call ``error()``, so neither column pruning (count(*))
        nor filter pushdown can skip it. ``dataset_columns`` adds the columns of the datasets the
        unreadable ``samples`` shards belong to, so queries naming them still reach the error.
        """
        rels = [os.path.relpath(f, self.root) for f in bad]
        reason = bad[next(iter(bad))]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        owner = "dataset" if table == "samples" else "run"
        message = (
            f"shard {rels[0]} was unreadable when the {table} view was built ({reason}){more}; "
            f"run `curation check` to list damaged files, then restore them from a backup or drop their {owner}"
        )
        err = f"error({sql_literal(message)})"
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
        return f"SELECT {select} FROM (SELECT 1) AS {_GUARD_ALIAS} WHERE {err} IS NULL"

    # ------------------------------------------------------------------ errors
    def translate_error(self, exc: BaseException) -> StoreError | None:
        """The store's one-line error for a DuckDB error caused by a damaged store, else None.

        A damaged catalog (checksum or format errors) gives :class:`CatalogCorruptError`; a
        shard that is missing or unreadable (a file under the store folder named in the error,
        or a view's guard, see :meth:`_create_view`) gives :class:`ShardDamagedError`. Code that
        catches ``duckdb.Error`` itself (exports, curation) can use this to report the same line.
        """
        if isinstance(exc, StoreError):
            return exc
        if not isinstance(exc, duckdb.Error):
            return None
        msg = str(exc)
        low = msg.lower()
        if any(p in low for p in _CATALOG_DAMAGE) and (
            "corrupt database file" in low or str(self.catalog_path) in msg  # not a shard's read error
        ):
            return CatalogCorruptError(self._corrupt_message(msg))
        guard = _GUARD_RE.search(msg)
        if guard:
            return ShardDamagedError(_first_line(guard.group(1)))
        if isinstance(exc, duckdb.PermissionException):  # the sandbox refused a path: not damage
            return None
        for m in _QUOTED_RE.finditer(msg):
            path = m.group(1) or m.group(2)
            if os.path.normpath(path).startswith(str(self.data_dir) + os.sep):  # a shard, not ../elsewhere
                rel = os.path.relpath(os.path.normpath(path), self.root)
                reason = "file is missing" if not Path(path).exists() else _reason(msg, path)
                return ShardDamagedError(
                    f"cannot read {rel} ({reason}); run `curation check` to list damaged files, "
                    "then restore them from a backup or drop their dataset/run"
                )
        return None

    def _corrupt_message(self, msg: str) -> str:
        samples = sql_literal(str(self.data_dir / "samples" / "**" / "*.parquet"))
        return (
            f"the catalog {self.catalog_path} is damaged ({_reason(msg)}): restore catalog.duckdb from a "
            f"backup. The Parquet shards under {self.data_dir} are separate files and stay readable with "
            f"plain DuckDB, e.g. SELECT * FROM read_parquet({samples}, union_by_name = true); "
            "`curation check` lists which are intact"
        )

    @contextlib.contextmanager
    def _translating(self) -> Iterator[None]:
        """Turn DuckDB errors that leave the block and come from a damaged store into one-line errors."""
        try:
            yield
        except duckdb.Error as exc:
            translated = self.translate_error(exc)
            if translated is None:
                raise
            raise translated from exc

    def _mark_views_dirty(self) -> None:
        self._local.views_dirty = True

    def refresh_views(self) -> None:
        """Rebuild the catalog's views (after moving the store folder, for plain DuckDB users)."""
        with self.write():
            self._mark_views_dirty()

    # ------------------------------------------------------------------ SQL
    def sql(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run read-only SQL against the catalog; returns a polars DataFrame.

        Read-only means: every statement must be one that only reads (see :func:`classify_sql`;
        anything else raises :class:`ReadOnlyQueryError` before anything runs), it runs on a
        catalog connection DuckDB opened read-only, and DuckDB lets it touch no file outside the
        store folder. Use :meth:`execute` (CLI: ``--write``) to modify the store or write files.
        """
        check_read_only(query)
        with self._sandbox() as con:
            return _run_query(con, query, params, self)

    @contextlib.contextmanager
    def sql_reader(
        self, query: str, params: Sequence[Any] | None = None, batch_rows: int = 100_000
    ) -> Iterator[pa.RecordBatchReader]:
        """Like :meth:`sql` (same checks, same sandbox) but streams the result as Arrow batches.

        For results too large to hold in memory, e.g. ``curation sql ... --out FILE``; the
        reader is valid inside the block only.
        """
        check_read_only(query)
        with self._sandbox() as con:
            try:
                rel = con.sql(query, params=list(params) if params else None)
                if rel is None:
                    raise QueryError("the query returned no result set")
                yield rel.to_arrow_reader(batch_rows)
            except duckdb.Error as exc:
                raise self.translate_error(exc) or QueryError(str(exc)) from exc

    def execute(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run SQL that may modify the catalog, under the writer lock, in one transaction.

        Runs with DuckDB's full privileges (COPY TO, ATTACH, files anywhere): for trusted SQL only.
        """
        with self.write() as con:
            return _run_query(con, query, params, self)

    def tables(self) -> pl.DataFrame:
        """Tables and views of the catalog with their kind and row count."""
        with self.connect() as con:
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

    # ------------------------------------------------------------------ runs
    def start_run(
        self,
        kind: str,
        *,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        dataset: str | None = None,
        model_fingerprint: str | None = None,
        parent_run: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record a new run (status ``running``) with its config, versions and seed; returns its id.

        Passing the ``run_id`` of an interrupted or failed run resumes it: its shards on disk
        are kept and its status returns to ``running``.
        """
        run_id = run_id or new_run_id(kind)
        with self.write() as con:
            self._mark_dead_runs(con)
            existing = first_row(con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall())
            if existing:
                if existing[0] == "finished":
                    raise StoreError(f"run {run_id} is already finished")
                if existing[0] == "running":
                    raise StoreError(f"run {run_id} is running in another live process")
                con.execute(
                    "UPDATE runs SET status = 'running', error = NULL, pid = ?, host = ? WHERE run_id = ?",
                    [os.getpid(), socket.gethostname(), run_id],
                )
                return run_id
            con.execute(
                """INSERT INTO runs VALUES (?, ?, ?, NULL, 'running', ?, ?, ?, ?, ?, ?, NULL, ?, ?)""",
                [
                    run_id,
                    kind,
                    utcnow(),
                    json.dumps(dict(config or {}), default=str, sort_keys=True),
                    json.dumps(package_versions(), sort_keys=True),
                    seed,
                    model_fingerprint,
                    dataset,
                    parent_run,
                    os.getpid(),
                    socket.gethostname(),
                ],
            )
        return run_id

    def _mark_dead_runs(self, con: duckdb.DuckDBPyConnection) -> None:
        host = socket.gethostname()
        rows = con.execute(
            "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
        ).fetchall()
        for run_id, pid in rows:
            if _process_gone(pid):
                con.execute(
                    "UPDATE runs SET status = 'interrupted', error = 'process died' WHERE run_id = ?",
                    [run_id],
                )

    def finish_run(self, run_id: str) -> list[ShardInfo]:
        """Register the run's shards found on disk and mark it finished, in one transaction."""
        with self.write() as con:
            shards = self._register_shards(con, run_id)
            con.execute(
                "UPDATE runs SET status = 'finished', finished_at = ? WHERE run_id = ?",
                [utcnow(), run_id],
            )
            self._mark_views_dirty()
        return shards

    def fail_run(self, run_id: str, error: str) -> None:
        """Mark a run failed with its error; its shards stay on disk for a resume."""
        with self.write() as con:
            con.execute(
                "UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE run_id = ?",
                [utcnow(), error[:2000], run_id],
            )

    def discard_run(self, run_id: str, exc: BaseException) -> None:
        """Delete a failed all-or-nothing run's shards and mark it failed with ``exc`` (best effort)."""
        self.delete_run_files(run_id)
        with contextlib.suppress(StoreError):
            self.fail_run(run_id, f"{type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def run(self, kind: str, **kwargs: Any) -> Iterator[RunHandle]:
        """Context manager around :meth:`start_run`: finished on success, failed on error."""
        run_id = self.start_run(kind, **kwargs)
        handle = RunHandle(self, run_id)
        try:
            yield handle
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.fail_run(run_id, f"{type(exc).__name__}: {exc}")
            raise
        self.finish_run(run_id)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run's record as a dict (config and versions parsed from JSON).

        A ``running`` run whose process is gone is reported ``interrupted``, as in :meth:`runs`.
        """
        df = _with_live_status(self.sql("SELECT * FROM runs WHERE run_id = ?", [run_id]))
        if df.height == 0:
            raise StoreError(f"no run {run_id!r} in {self.root}")
        rec = df.row(0, named=True)
        for key in ("config", "versions"):
            if isinstance(rec[key], str):
                rec[key] = json.loads(rec[key])
        return rec

    def runs(self, kind: str | None = None) -> pl.DataFrame:
        """All runs, newest first, optionally of one kind.

        A run recorded as ``running`` on this host whose process is gone (killed, crashed) is
        reported ``interrupted`` with error ``process died``, without writing: the catalog keeps
        ``running`` until the next writer records it (see :meth:`start_run`). Runs of other
        hosts keep their recorded status, as their process cannot be checked from here.
        """
        if kind:
            df = self.sql("SELECT * FROM runs WHERE kind = ? ORDER BY created_at DESC", [kind])
        else:
            df = self.sql("SELECT * FROM runs ORDER BY created_at DESC")
        return _with_live_status(df)

    def delete_run_files(self, run_id: str) -> None:
        """Remove every shard file a run wrote (used for failed ingests and superseded datasets)."""
        for table in SHARD_TABLES:
            shutil.rmtree(self.shard_dir(table, run_id), ignore_errors=True)

    # ------------------------------------------------------------------ shards
    def shard_dir(self, table: str, run_id: str) -> Path:
        """Folder holding one run's shards of one table."""
        _check_table(table)
        return self.data_dir / table / f"run={run_id}"

    def shard_path(self, table: str, run_id: str, shard: int) -> Path:
        """Path of one shard file."""
        return self.shard_dir(table, run_id) / f"part-{shard:05d}.parquet"

    def completed_shards(self, table: str, run_id: str) -> set[int]:
        """Indices of the shards of ``table`` that ``run_id`` has written (complete files only)."""
        folder = self.shard_dir(table, run_id)
        if not folder.is_dir():
            return set()
        return {int(m.group(1)) for p in folder.iterdir() if (m := _PART_RE.match(p.name))}

    def write_shard(
        self, table: str, run_id: str, data: Any, shard: int | None = None, **parquet_options: Any
    ) -> ShardInfo:
        """Write one immutable Parquet shard of ``table`` for ``run_id`` by atomic rename.

        Works from any process without the catalog (workers); the shard becomes visible when the
        run is finished (:meth:`finish_run` registers every shard found). Missing ``run_id``
        columns are filled in; columns are checked and cast to the table's schema.
        ``parquet_options`` go to ``pyarrow.parquet.write_table``; without them, fixed-schema
        tables (scores, flags, ...) are written by DuckDB's Parquet writer (snappy).
        """
        arrow = conform(table, to_arrow(data), run_id)
        if shard is None:
            done = self.completed_shards(table, run_id)
            shard = max(done) + 1 if done else 0
        path = self.shard_path(table, run_id, shard)
        if table in OPEN_SCHEMA_TABLES or parquet_options:
            size = write_parquet_atomic(arrow, path, **parquet_options)
        else:  # fixed-schema tables are queried in bulk: DuckDB's own files read fastest
            size = write_parquet_atomic_duckdb(arrow, path)
        return ShardInfo(table, run_id, shard, str(path.relative_to(self.root)), arrow.num_rows, size)

    @contextlib.contextmanager
    def shard_target(self, table: str, run_id: str, shard: int) -> Iterator[Path]:
        """Yield a temp path for a worker to write one shard with any tool (DuckDB COPY, Spark...).

        On success the file is renamed into place atomically; it is validated when the run is
        registered or finished. On error nothing appears.
        """
        with atomic_path(self.shard_path(table, run_id, shard)) as tmp:
            yield tmp

    def _register_shards(self, con: duckdb.DuckDBPyConnection, run_id: str) -> list[ShardInfo]:
        known = {
            (t, s) for t, s in con.execute(
                "SELECT table_name, shard FROM shards WHERE run_id = ?", [run_id]
            ).fetchall()
        }
        found = []
        for table in SHARD_TABLES:
            for shard in sorted(self.completed_shards(table, run_id)):
                if (table, shard) in known:
                    continue
                path = self.shard_path(table, run_id, shard)
                meta = _validated_metadata(table, path)
                info = ShardInfo(
                    table, run_id, shard, str(path.relative_to(self.root)),
                    meta.num_rows, path.stat().st_size,
                )
                con.execute(
                    "INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [table, run_id, shard, info.path, info.n_rows, info.bytes, utcnow()],
                )
                found.append(info)
        return found

    def register_shards(self, run_id: str) -> list[ShardInfo]:
        """Register shards that other processes wrote for ``run_id`` (validated), without finishing it."""
        with self.write() as con:
            return self._register_shards(con, run_id)

    def scan(self, table: str, run_id: str | None = None) -> pl.LazyFrame:
        """A polars LazyFrame over the visible shards of ``table`` (optionally of one run)."""
        _check_table(table)
        query = """SELECT s.path FROM shards s JOIN runs r USING (run_id)
                   WHERE r.status = 'finished' AND s.table_name = ?"""
        params: list[Any] = [table]
        if run_id:
            query += " AND s.run_id = ?"
            params.append(run_id)
        with self.connect() as con:
            paths = [str(self.root / p) for (p,) in con.execute(query + " ORDER BY s.run_id, s.shard", params).fetchall()]
        if not paths:
            return pl.from_arrow(SHARD_SCHEMAS[table].empty_table()).lazy()
        if table in OPEN_SCHEMA_TABLES:  # datasets differ in columns: align on the first one's
            return pl.scan_parquet(paths, missing_columns="insert", extra_columns="ignore")
        return pl.scan_parquet(paths)

    # ------------------------------------------------------------------ typed tables
    def write_scores(self, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Pairwise scores shard: columns behaviour, query_id, sample_id, score.

        Write rows sample-major (a training sample's scores for every query adjacent), as a shard
        of training samples x queries flattens naturally: a row group then holds ~1,200 distinct
        sample ids, which Parquet stores once in a dictionary. Query-major rows put ~10^5 in each
        row group, stored as plain strings (bench/sql_scores.py, variant ``query_major``).
        """
        return self.write_shard("scores", run_id, data, shard)

    def write_score_parts(self, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Score decomposition shard: behaviour, query_id, sample_id, module, position, token, score."""
        return self.write_shard("score_parts", run_id, data, shard)

    def read_score_parts(self, run_id: str | None = None, behaviour: str | None = None) -> pl.DataFrame:
        """Per-module / per-token score decompositions of finished runs."""
        return self._read_table("score_parts", run_id=run_id, behaviour=behaviour)

    def write_self_scores(self, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Self-influence / per-sample statistic shard: columns sample_id, method, score."""
        return self.write_shard("self_scores", run_id, data, shard)

    def write_flags(self, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Filter output shard: columns filter, sample_id, score, flagged, reason."""
        return self.write_shard("flags", run_id, data, shard)

    def read_scores(self, run_id: str | None = None, behaviour: str | None = None) -> pl.DataFrame:
        """Pairwise scores of finished runs, optionally of one run and/or behaviour."""
        return self._read_table("scores", run_id=run_id, behaviour=behaviour)

    def read_self_scores(self, run_id: str | None = None, method: str | None = None) -> pl.DataFrame:
        """Self scores of finished runs, optionally of one run and/or method."""
        return self._read_table("self_scores", run_id=run_id, method=method)

    def read_flags(self, run_id: str | None = None, filter: str | None = None) -> pl.DataFrame:
        """Flags of finished runs, optionally of one run and/or filter."""
        return self._read_table("flags", run_id=run_id, filter=filter)

    def _read_table(self, table: str, **equals: Any) -> pl.DataFrame:
        conds, params = [], []
        for col, val in equals.items():
            if val is not None:
                conds.append(f'"{col}" = ?')
                params.append(val)
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        return self.sql(f"SELECT * FROM {table}{where}", params)

    # ------------------------------------------------------------------ behaviours
    def add_behaviour(
        self,
        name: str,
        dataset: str,
        measurement: str,
        query_ids: Iterable[str] | None = None,
        description: str = "",
        replace: bool = False,
    ) -> None:
        """Register a behaviour: a named query set (sample ids of ``dataset``) and its measurement.

        ``query_ids`` defaults to every sample of the dataset; unknown ids are an error.
        """
        validate_name(name, "behaviour")
        self.dataset_info(dataset)
        with self.write() as con:
            files = self._dataset_files(con, dataset)
            src = f"read_parquet([{', '.join(sql_literal(f) for f in files)}])"
            if query_ids is None:
                ids = [r[0] for r in con.execute(f"SELECT sample_id FROM {src} ORDER BY ordinal").fetchall()]
            else:
                ids = list(query_ids)
                con.execute("CREATE OR REPLACE TEMP TABLE _wanted AS SELECT unnest(?::VARCHAR[]) AS sample_id", [ids])
                missing = con.execute(
                    f"SELECT sample_id FROM _wanted WHERE sample_id NOT IN (SELECT sample_id FROM {src}) LIMIT 5"
                ).fetchall()
                con.execute("DROP TABLE _wanted")
                if missing:
                    raise StoreError(
                        f"behaviour {name!r}: query ids not in dataset {dataset!r}: "
                        + ", ".join(m[0] for m in missing)
                    )
            exists = first_row(con.execute("SELECT 1 FROM behaviours WHERE name = ?", [name]).fetchall())
            if exists and not replace:
                raise StoreError(f"behaviour {name!r} exists; pass replace=True to overwrite it")
            con.execute("DELETE FROM behaviours WHERE name = ?", [name])
            con.execute(
                "INSERT INTO behaviours VALUES (?, ?, ?, ?, ?, ?)",
                [name, dataset, ids, measurement, description, utcnow()],
            )

    def behaviour(self, name: str) -> dict[str, Any]:
        """One behaviour's record (name, dataset, query_ids, measurement, description)."""
        df = self.sql("SELECT * FROM behaviours WHERE name = ?", [name])
        if df.height == 0:
            known = self.sql("SELECT name FROM behaviours ORDER BY name")["name"].to_list()
            raise StoreError(f"no behaviour {name!r}; known: {', '.join(known) or '(none)'}")
        return df.row(0, named=True)

    # ------------------------------------------------------------------ datasets
    def datasets(self) -> pl.DataFrame:
        """Registered datasets (curated ones included), oldest first."""
        return self.sql("SELECT * FROM datasets ORDER BY created_at")

    def dataset_info(self, name: str) -> dict[str, Any]:
        """One dataset's record; raises :class:`UnknownDatasetError` listing known names."""
        df = self.sql("SELECT * FROM datasets WHERE name = ?", [name])
        if df.height == 0:
            known = self.sql("SELECT name FROM datasets ORDER BY name")["name"].to_list()
            raise UnknownDatasetError(
                f"no dataset {name!r} in {self.root}; known: {', '.join(known) or '(none)'}"
            )
        rec = df.row(0, named=True)
        rec["fields"] = json.loads(rec["fields"]) if isinstance(rec["fields"], str) else rec["fields"]
        return rec

    def _dataset_files(self, con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
        rows = con.execute(
            """SELECT s.path FROM datasets d JOIN shards s ON s.run_id = d.run_id AND s.table_name = 'samples'
               WHERE d.name = ? ORDER BY s.shard""",
            [name],
        ).fetchall()
        return [str(self.root / p) for (p,) in rows]

    def dataset_files(self, name: str) -> list[str]:
        """Absolute paths of a dataset's Parquet shards, in sample order."""
        self.dataset_info(name)
        with self.connect() as con:
            return self._dataset_files(con, name)

    def read_samples(self, name: str, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """A dataset's samples (only its own columns), in ingest order."""
        files = self.dataset_files(name)
        if not files:  # a dataset with no rows (e.g. curated with a strict predicate) has no shards
            empty = _empty_samples_frame(self.dataset_info(name)["fields"])
            return empty.select(list(columns)) if columns else empty
        lf = pl.scan_parquet(files)
        if columns:
            lf = lf.select(list(columns))
        try:
            return lf.collect()
        except (pl.exceptions.PolarsError, OSError) as exc:
            for f in files:
                reason = _unreadable_arrow(f)
                if reason:
                    raise ShardDamagedError(
                        f"cannot read {Path(f).relative_to(self.root)} of dataset {name!r} ({reason}); "
                        "run `curation check` to list damaged files, then restore them from a backup "
                        "or drop the dataset"
                    ) from exc
            raise

    def drop_dataset(self, name: str) -> None:
        """Unregister a dataset and delete its shards (its runs stay in the audit trail)."""
        info = self.dataset_info(name)
        with self.write() as con:
            con.execute("DELETE FROM datasets WHERE name = ?", [name])
            con.execute("DELETE FROM curated WHERE name = ?", [name])
            con.execute("UPDATE runs SET status = 'superseded' WHERE run_id = ?", [info["run_id"]])
            self._mark_views_dirty()
        self.delete_run_files(info["run_id"])

    def artifact_dir(self, kind: str) -> Path:
        """Folder for cached computation artifacts of one kind (e.g. fitted influence factors)."""
        validate_name(kind, "artifact kind")
        path = self.root / "artifacts" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup(self) -> int:
        """Remove temp files and folders left by killed writers (shards, saved models); returns how many."""
        return sum(remove_stale_temp_files(d) for d in (self.data_dir, self.root / "artifacts") if d.exists())


# ---------------------------------------------------------------------- helpers
def _first_line(msg: str) -> str:
    """The first non-empty line of a (DuckDB) error message."""
    return next((line.strip() for line in msg.splitlines() if line.strip()), msg.strip())


def _reason(msg: str, path: str | None = None) -> str:
    """A DuckDB error as a short reason: first line, without the error kind and the quoted ``path``."""
    line = _DUCK_PREFIX_RE.sub("", _first_line(msg), count=1)
    if path:
        line = line.replace(f"'{path}'", "").replace(f'"{path}"', "")
    line = re.sub(r"\s+([:;,])", r"\1", " ".join(line.split()))
    return line.rstrip(" :;,") or "unreadable"


def _unreadable(con: duckdb.DuckDBPyConnection, path: str) -> str | None:
    """Why DuckDB cannot bind ``path`` as a Parquet file (missing, truncated footer, ...), or None."""
    if not os.path.exists(path):
        return "file is missing"
    try:
        con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(path)})").fetchall()
    except duckdb.Error as exc:
        return _reason(str(exc), path)
    return None


def _unreadable_arrow(path: str) -> str | None:
    """Why pyarrow cannot read ``path`` fully as Parquet (missing, truncated, corrupt), or None."""
    if not os.path.exists(path):
        return "file is missing"
    try:
        pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the answer
        return _first_line(str(exc)) or type(exc).__name__
    return None


def _process_gone(pid: int | None) -> bool:
    """Whether the process of a run recorded on this host (``pid``) is gone."""
    return pid is None or (pid != os.getpid() and not _pid_alive(pid))


def _with_live_status(df: pl.DataFrame) -> pl.DataFrame:
    """Runs frame with ``running`` runs of this host whose process is gone shown as ``interrupted``."""
    if df.height == 0 or not {"status", "host", "pid", "error"} <= set(df.columns):
        return df
    host = socket.gethostname()
    dead = [
        status == "running" and h == host and _process_gone(pid)
        for status, h, pid in zip(df["status"], df["host"], df["pid"], strict=True)
    ]
    if not any(dead):
        return df
    mask = pl.Series("dead", dead)
    return df.with_columns(
        status=pl.when(mask).then(pl.lit("interrupted")).otherwise(pl.col("status")),
        error=pl.when(mask & pl.col("error").is_null()).then(pl.lit("process died")).otherwise(pl.col("error")),
    )


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


def _check_table(table: str) -> None:
    if table not in SHARD_SCHEMAS:
        raise StoreError(f"unknown shard table {table!r}; expected one of {', '.join(SHARD_TABLES)}")


def conform(table: str, data: pa.Table, run_id: str) -> pa.Table:
    """Fill ``run_id``, check required columns and cast to the table's schema."""
    _check_table(table)
    schema = SHARD_SCHEMAS[table]
    if "run_id" in schema.names and "run_id" not in data.column_names:
        data = data.append_column("run_id", pa.array([run_id] * data.num_rows, pa.string()))
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


def _validated_metadata(table: str, path: Path) -> pq.FileMetaData:
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


def _run_query(
    con: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any] | None, store: Store | None = None
) -> pl.DataFrame:
    try:
        rel = con.sql(query, params=list(params) if params else None)
        return pl.DataFrame() if rel is None else rel.pl()
    except duckdb.Error as exc:
        translated = store.translate_error(exc) if store is not None else None
        if translated is not None:
            raise translated from exc
        msg = str(exc)
        if "read-only" in msg.lower():
            msg += " (queries are read-only by default; use --write / Store.execute to modify)"
        elif "disabled by configuration" in msg:
            msg += " (read-only SQL may read only files inside the store folder; use --write / Store.execute)"
        raise QueryError(msg) from exc


# ---------------------------------------------------------------------- read-only SQL
_SANDBOX_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_sandbox_guard = threading.Lock()
_held = threading.local()  # per thread: {catalog path: {kind: count}} of catalog connections open
_KIND_WORDS = {"read": "reading", "write": "writing", "sandbox": "read-only SQL"}
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


def _held_kinds(catalog: Path) -> set[str]:
    """Kinds of catalog connection ("read", "write", "sandbox") this thread holds open now."""
    return {k for k, n in getattr(_held, "counts", {}).get(str(catalog), {}).items() if n}


@contextlib.contextmanager
def _holding(catalog: Path, kind: str) -> Iterator[None]:
    """Record that this thread holds a ``kind`` connection to ``catalog`` for the block."""
    counts = _held.__dict__.setdefault("counts", {}).setdefault(str(catalog), {})
    counts[kind] = counts.get(kind, 0) + 1
    try:
        yield
    finally:
        counts[kind] -= 1
