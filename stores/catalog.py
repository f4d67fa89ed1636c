"""The catalog of a store: opening ``catalog.duckdb``, its schema version, connections and locking.

A store is a folder holding ``catalog.duckdb`` and immutable Parquet shards under ``data/``.
Readers open the catalog read-only for the length of one query, so many processes can read at
once. Writers take the store's writer lock (see :mod:`stores.lock`) and change the catalog in one
DuckDB transaction; bulk data is written as Parquet shards by atomic rename *before* the catalog
points at it, so a killed process never leaves a partial table visible. :class:`Catalog` is the
base of :class:`stores.store.Store`; the other modules of the package work on a ``Catalog``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import duckdb

from .damage import first_line, translate_error
from .errors import SchemaVersionError, StoreError, StoreLockedError, StoreNotFoundError
from .lock import DEFAULT_TIMEOUT_S, describe_holder, writer_lock
from .records import first_row, package_versions, utcnow
from .schema import CATALOG_DDL, SCHEMA_VERSION, SHARD_TABLES
from .views import guarded_views, rebuild_views, shadow_stale_views

DEFAULT_STORE = "curation-store"
CATALOG_NAME = "catalog.duckdb"
# settings of the read-only SQL connection (stores.sql): DuckDB opens one database instance per
# file, settings and process, so the catalog must know them to tell the kinds of connection apart
SANDBOX_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_held = threading.local()  # per thread: {catalog path: {kind: count}} of catalog connections open
_KIND_WORDS = {"read": "reading", "write": "writing", "sandbox": "read-only SQL"}


def default_store_path() -> Path:
    """The store used when none is given: ``$CURATION_STORE`` or ``./curation-store``."""
    return Path(os.environ.get("CURATION_STORE") or DEFAULT_STORE)


def held_kinds(catalog: Path) -> set[str]:
    """Kinds of catalog connection ("read", "write", "sandbox") this thread holds open now."""
    return {k for k, n in getattr(_held, "counts", {}).get(str(catalog), {}).items() if n}


@contextlib.contextmanager
def holding(catalog: Path, kind: str) -> Iterator[None]:
    """Record that this thread holds a ``kind`` connection to ``catalog`` for the block."""
    counts = _held.__dict__.setdefault("counts", {}).setdefault(str(catalog), {})
    counts[kind] = counts.get(kind, 0) + 1
    try:
        yield
    finally:
        counts[kind] -= 1


class Catalog:
    """A store folder's catalog: open it with :meth:`open`, read with :meth:`connect`, change with :meth:`write`."""

    def __init__(self, root: Path, lock_timeout: float | None = None):
        self.root = Path(root).resolve()
        self.catalog_path = self.root / CATALOG_NAME
        self.data_dir = self.root / "data"
        self.lock_timeout = DEFAULT_TIMEOUT_S if lock_timeout is None else lock_timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls, path: str | os.PathLike | None = None, *, create: bool = True, lock_timeout: float | None = None
    ) -> Self:
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
            rebuild_views(con, self.root, temporary=False)

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
                self.mark_views_dirty()

    # ------------------------------------------------------------------ connections
    def open_duckdb(self, read_only: bool, sandboxed: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the catalog, waiting up to ``lock_timeout`` for other holders; never changes mode.

        ``sandboxed`` opens the catalog with the read-only SQL settings (see :mod:`stores.sql`).
        DuckDB shares one database instance per file and process, so a catalog this process
        holds open with other settings (a writer, or a reader of the other kind) cannot be
        opened until it is closed: we wait for it, as for another process's lock, and fail with
        a clear error rather than borrow a connection that could write.
        """
        deadline = time.monotonic() + self.lock_timeout
        config = dict(SANDBOX_CONFIG) if sandboxed else {}
        want = "sandbox" if sandboxed else ("read" if read_only else "write")
        while True:
            try:
                return duckdb.connect(str(self.catalog_path), read_only=read_only, config=config)
            except duckdb.ConnectionException as exc:
                if "different configuration" not in str(exc):
                    raise StoreError(f"cannot open {self.catalog_path}: {exc}") from exc
                mine = held_kinds(self.catalog_path) - {want}
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
                        f"cannot open {self.catalog_path}: {first_line(msg)}"
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
                    f"cannot open {self.catalog_path}: {first_line(str(exc))}"
                ) from exc

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection to the catalog for the length of the block.

        Read-only by default, so other processes can read at the same time. Inside a
        :meth:`write` block the writer's connection is returned instead. This is the internal,
        trusted reader (exports stream files out through it); SQL from users goes through
        ``Store.sql``, which runs on a sandboxed connection.
        """
        con = getattr(self._local, "con", None)
        if con is not None:
            yield con
            return
        if not read_only:
            with self.write() as con:
                yield con
            return
        con = self.open_duckdb(read_only=True)
        try:
            with holding(self.catalog_path, "read"), self.translating():
                shadow_stale_views(con, self.root)
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
            con = self.open_duckdb(read_only=False)
            self._local.con = con
            self._local.views_dirty = False
            try:
                with holding(self.catalog_path, "write"), self.translating():
                    con.begin()
                    if guarded_views(con):  # built around unreadable shards: retry them
                        self.mark_views_dirty()
                    yield con
                    if self._local.views_dirty:
                        rebuild_views(con, self.root, temporary=False)
                    con.commit()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                raise
            finally:
                self._local.con = None
                con.close()

    def mark_views_dirty(self) -> None:
        """Have the current :meth:`write` block rebuild the views before it commits."""
        self._local.views_dirty = True

    def refresh_views(self) -> None:
        """Rebuild the catalog's views (after moving the store folder, for plain DuckDB users)."""
        with self.write():
            self.mark_views_dirty()

    # ------------------------------------------------------------------ errors
    def translate_error(self, exc: BaseException) -> StoreError | None:
        """The store's one-line error for a DuckDB error caused by a damaged store, else None.

        A damaged catalog (checksum or format errors) gives :class:`CatalogCorruptError`; a
        shard that is missing or unreadable (a file under the store folder named in the error,
        or a view's guard, see :mod:`stores.views`) gives :class:`ShardDamagedError`. Code that
        catches ``duckdb.Error`` itself (exports, curation) can use this to report the same line.
        """
        return translate_error(exc, root=self.root, catalog_path=self.catalog_path, data_dir=self.data_dir)

    @contextlib.contextmanager
    def translating(self) -> Iterator[None]:
        """Turn DuckDB errors that leave the block and come from a damaged store into one-line errors."""
        try:
            yield
        except duckdb.Error as exc:
            translated = self.translate_error(exc)
            if translated is None:
                raise
            raise translated from exc
