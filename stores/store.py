"""The store: a folder holding ``catalog.duckdb`` and immutable Parquet shards under ``data/``.

:class:`Store` is the one object users hold. It is a :class:`~stores.catalog.Catalog` (opening,
connections, the writer lock, views, error translation) with thin methods over the modules that
do the work, one job each:

* :mod:`stores.sql` - read-only SQL in a sandbox, trusted SQL, listing tables;
* :mod:`stores.runs` - the run lifecycle (``Store.run`` is its primary API);
* :mod:`stores.shards` - shard paths, atomic writes, validation, registration and scans;
* :mod:`stores.result_tables` - typed writers and readers of scores, score parts, self scores, flags;
* :mod:`stores.datasets` / :mod:`stores.behaviours` - dataset and behaviour records.

Each such method *is* the module's function (its first argument, ``catalog``, is the store), so
signatures and docstrings live in one place.

The names this module defined before it was split (``conform``, ``classify_sql``,
``validate_name``, ``utcnow``, ...) are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from . import behaviours as _behaviours
from . import datasets as _datasets
from . import result_tables as _results
from . import runs as _runs
from . import shards as _shards
from . import sql as _sql
from . import topk as _topk
from .atomic import remove_stale_temp_files
from .catalog import CATALOG_NAME, DEFAULT_STORE, Catalog, default_store_path
from .names import new_run_id, validate_name
from .records import first_row, package_versions, utcnow
from .runs import RunHandle
from .shards import ShardInfo, conform, to_arrow
from .sql import SqlStatement, check_read_only, classify_sql

__all__ = [
    "CATALOG_NAME",
    "DEFAULT_STORE",
    "RunHandle",
    "ShardInfo",
    "SqlStatement",
    "Store",
    "check_read_only",
    "classify_sql",
    "conform",
    "default_store_path",
    "first_row",
    "new_run_id",
    "package_versions",
    "to_arrow",
    "utcnow",
    "validate_name",
]


class Store(Catalog):
    """A curation store. Open one with :func:`stores.open`.

    ``sql`` answers read-only SQL as a polars DataFrame; typed helpers write and read runs,
    datasets, shards, behaviours and flags. Not meant to be shared between threads for writing.
    ``open``, ``connect``, ``write``, ``refresh_views`` and ``translate_error`` come from
    :class:`Catalog`; every other method is a function of the module named beside it.
    """

    # SQL (stores.sql)
    sql = _sql.sql
    sql_reader = _sql.sql_reader
    execute = _sql.execute
    tables = _sql.tables

    # runs (stores.runs): ``run`` is the primary API, the others the steps it is built on
    run = _runs.run
    start_run = _runs.start_run
    finish_run = _runs.finish_run
    fail_run = _runs.fail_run
    discard_run = _runs.discard_run
    get_run = _runs.get_run
    run_finished = _runs.run_finished
    runs = _runs.list_runs

    # shards (stores.shards)
    shard_dir = _shards.shard_dir
    shard_path = _shards.shard_path
    completed_shards = _shards.completed_shards
    write_shard = _shards.write_shard
    shard_target = _shards.shard_target
    register_shards = _shards.register_shards
    delete_run_files = _shards.delete_run_files
    scan = _shards.scan
    shard_paths = _shards.shard_paths

    # results of runs (stores.result_tables)
    write_scores = _results.write_scores
    write_score_parts = _results.write_score_parts
    write_self_scores = _results.write_self_scores
    write_flags = _results.write_flags
    read_scores = _results.read_scores
    read_score_parts = _results.read_score_parts
    read_self_scores = _results.read_self_scores
    read_flags = _results.read_flags

    # behaviours (stores.behaviours)
    add_behaviour = _behaviours.add_behaviour
    behaviour = _behaviours.behaviour

    # datasets (stores.datasets)
    datasets = _datasets.list_datasets
    dataset_info = _datasets.dataset_info
    dataset_files = _datasets.dataset_files
    read_samples = _datasets.read_samples
    iter_samples = _datasets.iter_samples
    dataset_sample_files = _datasets.dataset_sample_files

    # each query's top-k scores of a run (stores.topk)
    top_scores = _topk.top_scores
    drop_dataset = _datasets.drop_dataset

    # artifacts and leftovers
    def artifact_dir(self, kind: str) -> Path:
        """Folder for cached computation artifacts of one kind (e.g. fitted influence factors)."""
        validate_name(kind, "artifact kind")
        path = self.root / "artifacts" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    def cleanup(self) -> int:
        """Remove temp files and folders left by killed writers (shards, saved models); returns how many."""
        return sum(remove_stale_temp_files(d) for d in (self.data_dir, self.root / "artifacts") if d.exists())
