"""Writing a dataset (ingest, curate): sample shards, the dataset record, and the leftovers of dead writers.

:func:`write_dataset_shards` streams Arrow batches into ``samples`` shards with the ``dataset``
and ``ordinal`` columns, counting (optionally dropping) exact duplicates; :func:`register_dataset`
records the dataset in the same transaction that finishes its run, so a dataset is visible
exactly when all of its shards are. Both run inside an all-or-nothing run (``Store.run(...,
all_or_nothing=True)``) that deletes the shards when anything fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .atomic import remove_stale_temp_files
from .catalog import Catalog
from .errors import DatasetExistsError, IngestError, StoreError
from .progress import StepProgress
from .records import first_row, utcnow
from .runs import RunHandle, supersede_run
from .shards import delete_run_files, write_shard
from .sql import sql

DEFAULT_BATCH_ROWS = 250_000
LONG_TEXT = ("text", "prompt", "completion")  # min/max statistics of these cost time and help no query
DATASET_RUN_KINDS = ("ingest", "curate")  # kinds of the all-or-nothing runs that write datasets


# ---------------------------------------------------------------------- duplicates
def id_keys(ids: pa.Array) -> tuple[np.ndarray, bytes]:
    """64-bit integer prefixes of 32-hex-digit sample ids, and the ids' concatenated bytes."""
    ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset : ids.offset + n + 1]
    raw = np.frombuffer(ids.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if raw.size != 32 * n:
        raise StoreError("sample ids must be 32 hex digits")
    prefix = raw.reshape(n, 32)[:, :16].tobytes().decode("ascii")
    return np.frombuffer(bytes.fromhex(prefix), dtype=">u8").astype(np.uint64), raw.tobytes()


def dictionary_columns(table: pa.Table, max_ratio: float = 0.2) -> list[str]:
    """Columns worth dictionary-encoding: few distinct values (trying it on unique text is slow).

    Only flat columns are considered: lists and structs (nested metadata) and all-null columns
    (which have no kernel for counting) are written plainly.
    """
    sample = table.slice(0, 10_000)
    out = []
    for name, col in zip(sample.column_names, sample.columns, strict=True):
        if name in ("sample_id", "ordinal") or pa.types.is_nested(col.type) or pa.types.is_null(col.type):
            continue
        if name == "dataset" or pc.count_distinct(col).as_py() <= max_ratio * max(len(col), 1):
            out.append(name)
    return out


class _DuplicateTracker:
    """Finds exact duplicates by the first 64 bits of their id.

    Memory is 8 bytes per unique row (16 while a batch is merged in): the one part of ingest
    that grows with the input, about 80 MB per 10 million rows.
    """

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)

    def mark(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask of rows in ``keys`` already seen (earlier or earlier in this batch)."""
        order = np.argsort(keys, kind="stable")  # stable: the first of equal keys stays first
        ordered = keys[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        if len(self.seen):
            pos = np.searchsorted(self.seen, ordered).clip(max=len(self.seen) - 1)
            fresh = first & (self.seen[pos] != ordered)
        else:
            fresh = first
        dup = np.empty(len(keys), dtype=bool)
        dup[order] = ~fresh
        new = ordered[fresh]
        # insert in place of a concatenate+sort: peak memory is old + new array, not three copies
        self.seen = np.insert(self.seen, np.searchsorted(self.seen, new), new) if len(self.seen) else new
        return dup


# ---------------------------------------------------------------------- shard writing
def write_dataset_shards(
    store: Catalog,
    run_id: str,
    dataset: str,
    batches: Iterator[pa.RecordBatch],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    drop_duplicates: bool = False,
    required: tuple[str, ...] = (),
    progress: StepProgress | None = None,
    source_label: str = "input",
) -> tuple[int, int, int, str]:
    """Write ``samples`` shards for a dataset from batches that start with a ``sample_id`` column.

    Adds the ``dataset`` and contiguous ``ordinal`` columns, counts (and optionally drops) exact
    duplicates, and checks ``required`` columns have no nulls. Shards are written by two
    background threads while the next batches are read. Returns (rows read, rows written,
    duplicates, fingerprint of the ordered ids).
    """
    tracker = _DuplicateTracker()
    fingerprint = hashlib.sha256()
    n_read = n_written = n_dup = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    in_flight: list[Future] = []
    n_shards = 0

    def flush(pool: ThreadPoolExecutor) -> None:
        nonlocal pending, pending_rows, n_written, n_shards
        if not pending:
            return
        table = pa.Table.from_batches(pending)
        n = table.num_rows
        table = table.add_column(1, "ordinal", pa.array(np.arange(n_written, n_written + n, dtype=np.int64)))
        table = table.add_column(0, "dataset", pa.array([dataset] * n, pa.string()))
        while len(in_flight) >= 2:  # bound memory: at most two shards being written at once
            in_flight.pop(0).result()
        in_flight.append(
            pool.submit(
                write_shard, store, "samples", run_id, table, n_shards,
                compression="snappy", use_dictionary=dictionary_columns(table),
                write_statistics=[c for c in table.column_names if c not in LONG_TEXT],
            )
        )
        n_written += n
        n_shards += 1
        pending, pending_rows = [], 0

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="shard-writer") as pool:
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                for col in required:
                    if batch.column(col).null_count:
                        first = int(np.flatnonzero(pc.is_null(batch.column(col)).to_numpy(zero_copy_only=False))[0])
                        raise IngestError(
                            f"{source_label}: record {n_read + first + 1} has no value for {col!r}; "
                            "every sample needs one"
                        )
                keys, raw_ids = id_keys(batch.column("sample_id"))
                dup = tracker.mark(keys)
                n_dup += int(dup.sum())
                n_read += batch.num_rows
                if drop_duplicates and dup.any():
                    batch = batch.filter(pa.array(~dup))
                    raw_ids = id_keys(batch.column("sample_id"))[1]
                fingerprint.update(raw_ids)
                pending.append(batch)
                pending_rows += batch.num_rows
                if progress:
                    progress.advance(len(dup))
                if pending_rows >= batch_rows:
                    flush(pool)
            flush(pool)
            for fut in in_flight:
                fut.result()  # surface a failed write
        finally:
            wait(in_flight)  # never leave a writer running past an error
    return n_read, n_written, n_dup, fingerprint.hexdigest()


def register_dataset(
    store: Catalog,
    run: RunHandle,
    dataset: str,
    *,
    source: str,
    n_samples: int,
    n_duplicates: int,
    fields: list[dict[str, Any]],
    fingerprint: str,
    replace: bool,
) -> str | None:
    """Finish the dataset's ``run`` and register the dataset in one transaction; returns a superseded run id."""
    with store.write() as con:
        old = first_row(con.execute("SELECT run_id FROM datasets WHERE name = ?", [dataset]).fetchall())
        if old and not replace:
            raise DatasetExistsError(f"dataset {dataset!r} already exists; pass --replace to overwrite it")
        if old:
            con.execute("DELETE FROM datasets WHERE name = ?", [dataset])
            supersede_run(con, old[0])
        con.execute(
            "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [dataset, utcnow(), source, n_samples, n_duplicates, json.dumps(fields), fingerprint, run.id],
        )
        run.finish()
    return old[0] if old else None


def discard_dead_runs(store: Catalog, kinds: tuple[str, ...] = DATASET_RUN_KINDS) -> None:
    """Delete shard files of interrupted/failed runs of these kinds (they can never be resumed)."""
    placeholders = ", ".join("?" for _ in kinds)
    dead = sql(
        store,
        f"SELECT run_id FROM runs WHERE kind IN ({placeholders}) AND status IN ('interrupted', 'failed')",
        list(kinds),
    )["run_id"].to_list()
    for run_id in dead:
        delete_run_files(store, run_id)
    for table in ("samples", "curated_drops"):
        if (store.data_dir / table).is_dir():
            remove_stale_temp_files(store.data_dir / table)
