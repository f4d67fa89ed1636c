"""The run lifecycle: every computation is a run, and this module is the one place its status changes.

The primary API is the context manager :func:`run` (``Store.run``)::

    with store.run("filter", config=..., dataset=...) as run:   # status running
        run.write("flags", table)                                # shards, invisible so far
    # finished: its shards are registered and visible; on an error it is failed instead

Pass ``run_id=`` to resume an interrupted or failed run (its shards on disk are kept), and
``all_or_nothing=True`` for a run that must leave nothing behind when it fails (ingest,
curate): its shards are deleted. A run that must finish inside a larger transaction calls
:meth:`RunHandle.finish` in that transaction's ``write()`` block.

:func:`run` is built on the steps :func:`start_run`, :func:`finish_run`, :func:`fail_run` and
:func:`discard_run`, kept public for jobs that span processes (one starts the run, workers
write shards, another finishes it). Every status change, those steps' and the ``interrupted``
and ``superseded`` ones below, goes through :func:`_set_status`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
import polars as pl

from .atomic import _pid_alive
from .catalog import Catalog
from .errors import StoreError
from .names import new_run_id
from .records import first_row, package_versions, utcnow
from .shards import ShardInfo, completed_shards, delete_run_files, register_shards, write_shard
from .sql import sql


class RunHandle:
    """A run in progress: write its shards, then it is finished (or failed) by the store."""

    def __init__(self, store: Catalog, run_id: str):
        self.store = store
        self.id = run_id
        self._finish_called = False

    def write(self, table: str, data: Any, shard: int | None = None) -> ShardInfo:
        """Write one shard of ``table`` for this run (atomic); see :func:`stores.shards.write_shard`."""
        return write_shard(self.store, table, self.id, data, shard=shard)

    def completed_shards(self, table: str) -> set[int]:
        """Indices of this run's shards of ``table`` already on disk (for resuming)."""
        return completed_shards(self.store, table, self.id)

    def finish(self) -> list[ShardInfo]:
        """Finish the run now, e.g. inside a ``write()`` block that registers what it made.

        In such a block the run is finished if and only if the block commits; the ``with``
        block of :func:`run` then does not finish it again.
        """
        self._finish_called = True
        return finish_run(self.store, self.id)

    def __repr__(self) -> str:
        return f"RunHandle({self.id!r})"


# ---------------------------------------------------------------------- the lifecycle
@contextlib.contextmanager
def run(catalog: Catalog, kind: str, *, all_or_nothing: bool = False, **record: Any) -> Iterator[RunHandle]:
    """A run for the ``with`` block: started (or resumed), finished on success, failed on error.

    ``record`` holds the keywords of :func:`start_run`: ``config``, ``seed``, ``dataset``,
    ``model_fingerprint``, ``parent_run`` and ``run_id`` (to resume an interrupted or failed
    run). On error the run is marked failed with the error and its shards stay on disk for a
    resume, or, with ``all_or_nothing``, are deleted (:func:`discard_run`). A run the block
    finished itself (:meth:`RunHandle.finish`, committed) is left finished whatever happens after.
    """
    run_id = start_run(catalog, kind, **record)
    handle = RunHandle(catalog, run_id)
    try:
        yield handle
    except BaseException as exc:
        if not (handle._finish_called and _is_finished(catalog, run_id)):
            if all_or_nothing:
                discard_run(catalog, run_id, exc)
            else:
                with contextlib.suppress(Exception):
                    fail_run(catalog, run_id, f"{type(exc).__name__}: {exc}")
        raise
    if not handle._finish_called:
        finish_run(catalog, run_id)


def start_run(
    catalog: Catalog,
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
    with catalog.write() as con:
        mark_dead_runs(con)
        existing = first_row(con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall())
        if existing:
            if existing[0] == "finished":
                raise StoreError(f"run {run_id} is already finished")
            if existing[0] == "running":
                raise StoreError(f"run {run_id} is running in another live process")
            _set_status(con, run_id, "running", error=None, pid=os.getpid(), host=socket.gethostname())
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


def finish_run(catalog: Catalog, run_id: str) -> list[ShardInfo]:
    """Register the run's shards found on disk and mark it finished, in one transaction."""
    with catalog.write() as con:  # register_shards joins this transaction
        shards = register_shards(catalog, run_id)
        _set_status(con, run_id, "finished", finished_at=utcnow())
        catalog.mark_views_dirty()
    return shards


def fail_run(catalog: Catalog, run_id: str, error: str) -> None:
    """Mark a run failed with its error; its shards stay on disk for a resume."""
    with catalog.write() as con:
        _set_status(con, run_id, "failed", finished_at=utcnow(), error=error[:2000])


def discard_run(catalog: Catalog, run_id: str, exc: BaseException) -> None:
    """Delete a failed all-or-nothing run's shards and mark it failed with ``exc`` (best effort)."""
    delete_run_files(catalog, run_id)
    with contextlib.suppress(StoreError):
        fail_run(catalog, run_id, f"{type(exc).__name__}: {exc}")


def supersede_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Mark the run of a replaced or dropped dataset ``superseded`` (on the writer's ``con``)."""
    _set_status(con, run_id, "superseded")


def mark_dead_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Record ``running`` runs of this host whose process is gone as ``interrupted`` (writer's ``con``)."""
    host = socket.gethostname()
    rows = con.execute(
        "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
    ).fetchall()
    for run_id, pid in rows:
        if process_gone(pid):
            _set_status(con, run_id, "interrupted", error="process died")


def _set_status(con: duckdb.DuckDBPyConnection, run_id: str, status: str, **columns: Any) -> None:
    """The one place a run's status changes: ``status`` and other ``columns`` of its record."""
    sets = ", ".join(f"{name} = ?" for name in ("status", *columns))
    con.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [status, *columns.values(), run_id])


def run_finished(catalog: Catalog, run_id: str) -> bool:
    """Whether the catalog records run ``run_id`` as finished (a repeated request can then reuse it)."""
    with catalog.connect() as con:
        row = first_row(con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchall())
    return row is not None and row[0] == "finished"


def _is_finished(catalog: Catalog, run_id: str) -> bool:
    """:func:`run_finished`, False when the catalog cannot be read (a finish rolled back with its block is not)."""
    with contextlib.suppress(Exception):
        return run_finished(catalog, run_id)
    return False


# ---------------------------------------------------------------------- reading runs
def process_gone(pid: int | None) -> bool:
    """Whether the process of a run recorded on this host (``pid``) is gone."""
    return pid is None or (pid != os.getpid() and not _pid_alive(pid))


def _with_live_status(df: pl.DataFrame) -> pl.DataFrame:
    """Runs frame with ``running`` runs of this host whose process is gone shown as ``interrupted``."""
    if df.height == 0 or not {"status", "host", "pid", "error"} <= set(df.columns):
        return df
    host = socket.gethostname()
    dead = [
        status == "running" and h == host and process_gone(pid)
        for status, h, pid in zip(df["status"], df["host"], df["pid"], strict=True)
    ]
    if not any(dead):
        return df
    mask = pl.Series("dead", dead)
    return df.with_columns(
        status=pl.when(mask).then(pl.lit("interrupted")).otherwise(pl.col("status")),
        error=pl.when(mask & pl.col("error").is_null()).then(pl.lit("process died")).otherwise(pl.col("error")),
    )


def get_run(catalog: Catalog, run_id: str) -> dict[str, Any]:
    """One run's record as a dict (config and versions parsed from JSON).

    A ``running`` run whose process is gone is reported ``interrupted``, as in :func:`list_runs`.
    """
    df = _with_live_status(sql(catalog, "SELECT * FROM runs WHERE run_id = ?", [run_id]))
    if df.height == 0:
        raise StoreError(f"no run {run_id!r} in {catalog.root}")
    rec = df.row(0, named=True)
    for key in ("config", "versions"):
        if isinstance(rec[key], str):
            rec[key] = json.loads(rec[key])
    return rec


def list_runs(catalog: Catalog, kind: str | None = None) -> pl.DataFrame:
    """All runs, newest first, optionally of one kind.

    A run recorded as ``running`` on this host whose process is gone (killed, crashed) is
    reported ``interrupted`` with error ``process died``, without writing: the catalog keeps
    ``running`` until the next writer records it (see :func:`start_run`). Runs of other
    hosts keep their recorded status, as their process cannot be checked from here.
    """
    if kind:
        df = sql(catalog, "SELECT * FROM runs WHERE kind = ? ORDER BY created_at DESC", [kind])
    else:
        df = sql(catalog, "SELECT * FROM runs ORDER BY created_at DESC")
    return _with_live_status(df)
