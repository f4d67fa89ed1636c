"""Check a store's integrity: the catalog, every shard, leftover files and stuck runs.

:func:`check_store` works on a store that cannot be opened normally (a damaged catalog, a
truncated shard): it opens ``catalog.duckdb`` read-only and directly, reads every table of it in
full (so DuckDB verifies the checksum of every data block), checks each registered shard against
its ``shards`` record (present, same size and row count, expected columns) and reads it through
(Parquet footer and, unless ``read_data=False``, every data page), then walks ``data/`` for files
the catalog does not know (temp files of killed writers, shards never registered). Nothing is
written or repaired. ``curation check`` prints :meth:`CheckReport.lines`.

Reading every shard in full costs about as much as one pass over the data (bounded memory: one
batch at a time); ``read_data=False`` checks only footers, sizes and row counts, which finds
truncated, missing and replaced files but not damage inside data pages.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from .atomic import _TEMP_RE, _pid_alive
from .catalog import CATALOG_NAME, Catalog, default_store_path
from .damage import GUARD_ALIAS, first_line, short_reason
from .errors import CatalogCorruptError, StoreError, StoreNotFoundError
from .runs import process_gone
from .schema import SCHEMA_VERSION, SHARD_TABLES
from .shards import PART_RE, validated_metadata

ERROR = "error"
WARNING = "warning"
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Problem:
    """One finding: the file (relative to the store) or run it concerns, its kind and what to do.

    Kinds: ``catalog_missing``, ``catalog_corrupt``, ``catalog_schema``, ``shard_missing``,
    ``shard_unreadable``, ``shard_size``, ``shard_rows``, ``shard_schema``, ``view_guarded``,
    ``leftover_temp``, ``unregistered_file``, ``unexpected_file``, ``stuck_run``. ``severity`` is
    ``error`` (data a reader relies on is damaged) or ``warning`` (harmless or invisible to readers).
    """

    path: str
    kind: str
    message: str
    severity: str = ERROR


@dataclass
class CheckReport:
    """What :func:`check_store` found: problems (errors and warnings) and counts of what it checked."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings do not make a store unhealthy)."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        """Problems of severity ``error``."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        """Problems of severity ``warning``."""
        return [p for p in self.problems if p.severity == WARNING]

    def add(self, path: str, kind: str, message: str, severity: str = ERROR) -> None:
        """Record one problem."""
        self.problems.append(Problem(path, kind, message, severity))

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to one of the counts."""
        self.counts[key] = self.counts.get(key, 0) + n

    def lines(self) -> list[str]:
        """The report for display: a summary line, what was checked, then one line per problem."""
        c = self.counts
        n_err, n_warn = len(self.errors), len(self.warnings)
        if self.ok:
            head = "OK" + (f" ({_plural(n_warn, 'warning')})" if n_warn else "")
        else:
            head = f"DAMAGED: {_plural(n_err, 'error')}" + (f", {_plural(n_warn, 'warning')}" if n_warn else "")
        out = [f"store {self.root}: {head}"]
        if "catalog_tables" in c:
            out.append(
                f"  catalog: {_plural(c.get('catalog_tables', 0), 'table')}, "
                f"{_plural(c.get('catalog_rows', 0), 'row')} read"
                + (f"; {_plural(c['runs'], 'run')}" if "runs" in c else "")
            )
        if c.get("shards", 0) or c.get("files_checked", 0):
            shards = (
                f"{c.get('shards_ok', 0)} of {_plural(c.get('shards', 0), 'registered shard', 'registered shards')} intact"
                if "shards" in c
                else f"{c.get('files_ok', 0)} of {_plural(c.get('files_checked', 0), 'shard file', 'shard files')} readable"
            )
            out.append(
                f"  shards: {shards} ({_plural(c.get('shard_rows', 0), 'row')}, {_size(c.get('shard_bytes', 0))}"
                + (", footers only" if c.get("footers_only") else ", read in full")
                + ")"
            )
        extra = [
            _plural(c[k], one, many)
            for k, one, many in (
                ("in_progress_files", "file of a run in progress", "files of runs in progress"),
                ("resumable_files", "unfinished shard kept for a resume", "unfinished shards kept for a resume"),
            )
            if c.get(k)
        ]
        if extra:
            out.append("  also: " + ", ".join(extra))
        for p in sorted(self.problems, key=lambda p: (p.severity != ERROR, p.path)):
            out.append(f"  {p.severity.upper()} {p.path}: {p.message} [{p.kind}]")
        return out


def check_store(
    root: str | os.PathLike | None = None, *, read_data: bool = True, lock_timeout: float | None = None
) -> CheckReport:
    """Check the store at ``root`` (default ``$CURATION_STORE`` or ``./curation-store``); repairs nothing.

    Verifies that the catalog opens read-only and that every table of it reads in full; that
    every shard registered for a run that is not superseded exists, has its recorded size, row
    count and the table's columns, and reads through (footer and, with ``read_data``, every
    data page, with page checksums where the writer stored them); lists temp files left by
    killed writers and Parquet files the catalog does not know; and finds runs recorded as
    ``running`` on this host whose process is gone. Problems with shards of finished runs (the
    data readers see) are errors, the rest warnings. When the catalog cannot be read, every
    ``part-*.parquet`` file under ``data/`` is read instead. Raises
    :class:`~stores.errors.StoreNotFoundError` when ``root`` is not a folder, and
    :class:`~stores.errors.StoreLockedError` when a writer holds the catalog past the timeout.
    """
    path = Path(root) if root is not None else default_store_path()
    if not path.is_dir():
        raise StoreNotFoundError(f"no store at {path}: not a folder")
    store = Catalog(path, lock_timeout=lock_timeout)
    report = CheckReport(store.root)
    if read_data is False:
        report.counts["footers_only"] = 1
    registry = _check_catalog(store, report)
    if registry is None:
        _check_files_without_catalog(store, report, read_data)
    else:
        _check_registered_shards(store, report, registry, read_data)
        _check_files_on_disk(store, report, registry)
    _check_temp_files(store, report)
    return report


# ---------------------------------------------------------------------- catalog
@dataclass
class _Registry:
    """What the catalog says: registered shards (table, run, shard) -> (path, rows, bytes), run statuses."""

    shards: dict[tuple[str, str, int], tuple[str, int, int]]
    runs: dict[str, str]


def _check_catalog(store: Catalog, report: CheckReport) -> _Registry | None:
    """Open the catalog and read every table in full; the registry, or None when it cannot be trusted."""
    if not store.catalog_path.exists():
        report.add(
            CATALOG_NAME, "catalog_missing",
            f"no {CATALOG_NAME} in this folder: restore it from a backup; the shard files under data/ are checked below",
        )
        return None
    try:
        con = store.open_duckdb(read_only=True)
    except CatalogCorruptError as exc:
        report.add(CATALOG_NAME, "catalog_corrupt", _corrupt(store, "the catalog", exc.__cause__ or exc, "opened"))
        return None
    try:
        return _read_catalog(store, con, report)
    finally:
        con.close()


def _read_catalog(store: Catalog, con: duckdb.DuckDBPyConnection, report: CheckReport) -> _Registry | None:
    damaged = False
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal ORDER BY ALL"
        ).fetchall()
    except duckdb.Error as exc:
        report.add(CATALOG_NAME, "catalog_corrupt", _corrupt(store, "its table list", exc))
        return None
    report.counts["catalog_tables"] = len(tables)
    report.counts["catalog_rows"] = 0
    for schema, table in tables:
        try:  # a full scan loads every data block, and DuckDB verifies each block's checksum
            reader = con.sql(f'SELECT * FROM "{schema}"."{table}"').to_arrow_reader(_BATCH_ROWS)
            report.count("catalog_rows", sum(batch.num_rows for batch in reader))
        except duckdb.Error as exc:
            damaged = True
            report.add(CATALOG_NAME, "catalog_corrupt", _corrupt(store, f"table {table}", exc))
    names = {t for _, t in tables}
    if not {"meta", "runs", "shards"} <= names:
        report.add(
            CATALOG_NAME, "catalog_schema",
            f"{CATALOG_NAME} is a DuckDB file but not a curation store (tables: {', '.join(sorted(names)) or 'none'})",
        )
        return None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        version = int(row[0][0]) if row else None
        if version != SCHEMA_VERSION:
            report.add(
                CATALOG_NAME, "catalog_schema",
                f"catalog schema version {version}, this curation reads version {SCHEMA_VERSION}: "
                "check it with the curation release that wrote it",
            )
            return None
        shards = {
            (t, r, s): (p, n, b)
            for t, r, s, p, n, b in con.execute(
                "SELECT table_name, run_id, shard, path, n_rows, bytes FROM shards"
            ).fetchall()
        }
        runs = {r: st for r, st in con.execute("SELECT run_id, status FROM runs").fetchall()}
        running = con.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'").fetchall()
        guarded = [
            v for (v,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal AND contains(sql, ?) ORDER BY 1",
                [GUARD_ALIAS],
            ).fetchall()
        ]
    except (duckdb.Error, ValueError, TypeError) as exc:
        if not damaged:  # else the table that failed is reported already
            report.add(CATALOG_NAME, "catalog_corrupt", _corrupt(store, "the run and shard records", exc))
        return None
    report.counts["runs"] = len(runs)
    host = socket.gethostname()
    for run_id, pid, run_host in running:
        if run_host == host and process_gone(pid):
            report.add(
                run_id, "stuck_run",
                f"recorded as running, but its process (pid {pid}) is gone: it was killed or crashed. "
                "It is shown as interrupted; resume it with its run id or leave it",
                WARNING,
            )
    for view in guarded:
        report.add(
            f"view {view}", "view_guarded",
            "this view was built while some of its shards were unreadable, so queries of it fail; once they "
            "are restored (see the shard lines), any write or Store.refresh_views() rebuilds it",
            WARNING,
        )
    return None if damaged else _Registry(shards, runs)


def _corrupt(store: Catalog, what: str, exc: BaseException, verb: str = "read") -> str:
    return (
        f"{what} cannot be {verb} ({short_reason(str(exc))}): restore {CATALOG_NAME} from a backup; the shard files "
        f"under {store.data_dir.name}/ are separate and checked below"
    )


# ---------------------------------------------------------------------- shards
def _check_registered_shards(store: Catalog, report: CheckReport, registry: _Registry, read_data: bool) -> None:
    report.counts.setdefault("shards", 0)
    report.counts.setdefault("shards_ok", 0)
    report.counts.setdefault("shard_rows", 0)
    report.counts.setdefault("shard_bytes", 0)
    for (table, run_id, _shard), (rel, n_rows, size) in sorted(registry.shards.items()):
        status = registry.runs.get(run_id)
        if status == "superseded":  # dropped or replaced dataset: its files are deleted on purpose
            continue
        report.count("shards")
        visible = status == "finished"
        severity = ERROR if visible else WARNING
        where = "" if visible else f" (run {run_id} is {status or 'not recorded'}, so readers do not see it)"
        problem = _shard_problem(store, table, rel, n_rows, size, read_data)
        if problem:
            kind, message = problem
            report.add(rel, kind, message + where, severity)
        else:
            report.count("shards_ok")
            report.count("shard_rows", n_rows)
            report.count("shard_bytes", size)


def _shard_problem(
    store: Catalog, table: str, rel: str, n_rows: int | None, size: int | None, read_data: bool
) -> tuple[str, str] | None:
    """The first thing wrong with one shard file, as (kind, message), or None."""
    path = store.root / rel
    owner = "dataset" if table == "samples" else "run"
    restore = f"restore it from a backup or drop its {owner}"
    if not path.is_file():
        return "shard_missing", f"registered {table} shard is missing: {restore}"
    actual = path.stat().st_size
    if size is not None and actual != size:
        return "shard_size", (
            f"{actual} bytes on disk, {size} recorded when it was registered (truncated or replaced): {restore}"
        )
    try:
        meta = validated_metadata(table, path)
    except StoreError as exc:
        cause = exc.__cause__
        if cause is not None:  # not Parquet at all, or a damaged footer
            return "shard_unreadable", f"not a readable Parquet file ({first_line(str(cause))}): {restore}"
        return "shard_schema", f"{first_line(str(exc)).replace(str(path), 'shard')}: {restore}"
    if n_rows is not None and meta.num_rows != n_rows:
        return "shard_rows", f"{meta.num_rows} rows in its footer, {n_rows} recorded: {restore}"
    if read_data:
        reason = _read_through(path)
        if reason:
            return "shard_unreadable", f"footer is fine but its data cannot be read ({reason}): {restore}"
    return None


def _read_through(path: Path) -> str | None:
    """Decode every page of a Parquet file, one batch at a time; the error, or None."""
    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        for _batch in pf.iter_batches(batch_size=_BATCH_ROWS):
            pass
    except Exception as exc:  # noqa: BLE001 - whatever pyarrow raises, the file cannot be read
        return first_line(str(exc)) or type(exc).__name__
    return None


def _count_shard(report: CheckReport, path: Path) -> None:
    try:
        report.count("shard_rows", pq.read_metadata(path).num_rows)
        report.count("shard_bytes", path.stat().st_size)
    except Exception:  # noqa: BLE001 - reported elsewhere
        pass


# ---------------------------------------------------------------------- files on disk
def _part_files(store: Catalog) -> Iterator[tuple[str, str, int, Path]]:
    """(table, run id, shard, path) of every ``part-N.parquet`` file in a ``data/<table>/run=<id>/`` folder."""
    if not store.data_dir.is_dir():
        return
    for table_dir in sorted(store.data_dir.iterdir()):
        if table_dir.name not in SHARD_TABLES or not table_dir.is_dir():
            continue
        for run_dir in sorted(table_dir.iterdir()):
            if not run_dir.is_dir() or not run_dir.name.startswith("run="):
                continue
            for file in sorted(run_dir.iterdir()):
                m = PART_RE.match(file.name)
                if m and file.is_file():
                    yield table_dir.name, run_dir.name.removeprefix("run="), int(m.group(1)), file


def _check_files_without_catalog(store: Catalog, report: CheckReport, read_data: bool) -> None:
    """With no usable catalog: read every shard file on disk and report the unreadable ones."""
    report.counts.setdefault("files_checked", 0)
    report.counts.setdefault("files_ok", 0)
    for table, _run_id, _shard, path in _part_files(store):
        report.count("files_checked")
        rel = str(path.relative_to(store.root))
        problem = _shard_problem(store, table, rel, None, None, read_data)
        if problem:
            kind, message = problem
            report.add(rel, kind, message)
        else:
            report.count("files_ok")
            _count_shard(report, path)


def _check_files_on_disk(store: Catalog, report: CheckReport, registry: _Registry) -> None:
    """Report part files and folders the catalog does not know."""
    for table, run_id, shard, path in _part_files(store):
        rel = str(path.relative_to(store.root))
        status = registry.runs.get(run_id)
        if (table, run_id, shard) in registry.shards:
            continue
        if status == "running":
            report.count("in_progress_files")
        elif status in ("failed", "interrupted"):
            report.count("resumable_files")
        elif status == "finished":
            report.add(
                rel, "unregistered_file",
                f"Parquet file in the folder of finished run {run_id} but not registered, so readers never see it; "
                "delete it unless it is yours",
                WARNING,
            )
        else:
            what = f"run {run_id} is superseded (dataset dropped or replaced)" if status else f"no run {run_id} is recorded"
            report.add(
                rel, "unregistered_file", f"leftover shard: {what}, so readers never see it; safe to delete", WARNING
            )
    if not store.data_dir.is_dir():
        return
    for entry in sorted(store.data_dir.iterdir()):
        if entry.name not in SHARD_TABLES and not _TEMP_RE.match(entry.name):
            report.add(str(entry.relative_to(store.root)), "unexpected_file", "not a shard table of this store", WARNING)
        elif entry.is_dir() and entry.name in SHARD_TABLES:
            for sub in sorted(entry.iterdir()):
                if _TEMP_RE.match(sub.name):
                    continue
                if not (sub.is_dir() and sub.name.startswith("run=")):
                    report.add(
                        str(sub.relative_to(store.root)), "unexpected_file",
                        f"not a run folder (data/{entry.name}/run=<id>/)", WARNING,
                    )
                    continue
                for file in sorted(sub.iterdir()):
                    if not PART_RE.match(file.name) and not _TEMP_RE.match(file.name):
                        report.add(
                            str(file.relative_to(store.root)), "unexpected_file",
                            "not a shard (part-NNNNN.parquet); the store never reads it", WARNING,
                        )


def _check_temp_files(store: Catalog, report: CheckReport) -> None:
    """Temp files and folders of atomic writes: in progress when their writer lives, else leftovers."""
    for top in (store.data_dir, store.root / "artifacts"):
        if not top.is_dir():
            continue
        for dirpath, dirs, files in os.walk(top):
            for name in sorted([*dirs, *files]):
                m = _TEMP_RE.match(name)
                if not m:
                    continue
                if name in dirs:
                    dirs.remove(name)  # do not walk into a temp folder
                pid = int(m.group(1))
                if _pid_alive(pid):
                    report.count("in_progress_files")
                    continue
                path = Path(dirpath) / name
                what = "folder" if path.is_dir() else "file"
                report.add(
                    str(path.relative_to(store.root)), "leftover_temp",
                    f"temp {what} of a writer that was killed (pid {pid}); readers never see it. "
                    "Store.cleanup() deletes such leftovers",
                    WARNING,
                )


# ---------------------------------------------------------------------- display
def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"1 {one}" if n == 1 else f"{n:,} {many or one + 's'}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"
