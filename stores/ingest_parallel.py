"""Ingest on an executor (Ray): parts of the input read by workers, the dataset a local ingest writes.

The coordinator plans the ingest exactly as a local one (:func:`stores.ingest.plan_ingest`: the
columns, their types and the roles, from the whole input), then:

1. **read** - each part of the input (line ranges of about ``part_bytes`` of an uncompressed
   jsonl file, cut at line starts; each file of a Parquet folder; any other input is one part)
   is read by a task running the local ingest's query, with the same column types, into a stage
   file under ``.tmp/``;
2. **ids** - the coordinator reads the stage files' ``sample_id`` columns in input order:
   duplicates (the first occurrence is kept), the dataset fingerprint, rows with a missing
   required value (named by their record number in the whole input), and each part's first
   ordinal and first shard number;
3. **write** - each part is written by a task as ``samples`` shards (the local writer's columns,
   encodings and statistics), with ``exclusive=True``.

The rows (ids, ordinals, columns) equal a local ingest's; only the shard boundaries differ (per
part instead of every ``batch_rows`` of the whole input). The run stays all-or-nothing: a failed
ingest deletes its shards, and stage files are removed whatever happens.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .atomic import atomic_path
from .catalog import Catalog
from .dataset_writer import LONG_TEXT, _DuplicateTracker, dictionary_columns, id_keys
from .errors import IngestError, IngestPartError
from .executors import ExecutorError
from .ingest_files import compression_codec
from .ingest_sources import InputSource
from .progress import StepProgress
from .shards import completed_shards, write_shard

PART_BYTES = 64 * 2**20


@dataclass(frozen=True)
class InputPart:
    """One part of the input: a file, or the byte range ``start:end`` (whole lines) of a jsonl file."""

    path: str
    start: int | None = None
    end: int | None = None


def split_input(path: Path, fmt: str, part_bytes: int | None = None) -> list[InputPart]:
    """The input's parts, in input order (deterministic: they do not depend on the workers).

    ``part_bytes`` (default :data:`PART_BYTES`) is the size of a jsonl file's line ranges.
    """
    part_bytes = part_bytes or PART_BYTES
    if fmt == "jsonl" and path.is_file() and not compression_codec(path):
        size = path.stat().st_size
        bounds = [0]
        with open(path, "rb") as fh:
            for i in range(1, math.ceil(size / part_bytes)):
                fh.seek(i * part_bytes)
                fh.readline()  # to the start of the next line
                pos = fh.tell()
                if pos >= size:
                    break
                if pos > bounds[-1]:
                    bounds.append(pos)
        bounds.append(size)
        return [InputPart(str(path), a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    if fmt == "parquet" and path.is_dir():  # the files DuckDB's glob reads, in its (sorted) order
        return [InputPart(str(f)) for f in sorted(path.rglob("*.parquet"), key=str)]
    return [InputPart(str(path))]


@dataclass
class _PartJob:
    """What both phases' tasks share: where the store and the stage files are."""

    store_root: str
    run_id: str

    @property
    def stage_dir(self) -> Path:
        return Path(self.store_root) / ".tmp" / f"ingest-{self.run_id}"

    def stage(self, p: int) -> Path:
        return self.stage_dir / f"stage-{p:05d}.parquet"


@dataclass
class ReadPart(_PartJob):
    """Phase 1 task: read part ``p`` with the ingest's query into its stage file (skipped if there)."""

    parts: list[InputPart] | None = None
    plan: Any = None  # stores.ingest.IngestPlan
    fmt: str = "jsonl"
    split: str | None = None
    full_sample: bool = False
    memory_limit: str = "512MB"
    threads: int = 1
    batch_rows: int = 250_000

    def __call__(self, p: int) -> dict[str, Any]:
        stage = self.stage(p)
        if not stage.exists():
            self._read(p, stage)
        return _summary(stage, self.plan.required)

    def _read(self, p: int, stage: Path) -> None:
        part = self.parts[p]
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        copy = None
        if part.start is not None:  # the part's lines as a file of their own
            copy = self.stage_dir / f".input-{p:05d}-{os.getpid()}.jsonl"
            _copy_range(Path(part.path), copy, part.start, part.end)
        source = InputSource(copy or Path(part.path), self.fmt, self.split, self.stage_dir, self.memory_limit)
        try:
            source.con.execute(f"SET threads = {int(self.threads)}")
            reader = source.con.sql(self.plan.query(source, self.full_sample)).to_arrow_reader(self.batch_rows)
            with atomic_path(stage, exclusive=True) as tmp, pq.ParquetWriter(tmp, reader.schema,
                                                                             compression="lz4") as out:
                for batch in reader:
                    out.write_batch(batch)
        except (duckdb.Error, OSError, pa.ArrowException) as exc:
            raise IngestPartError(str(exc)) from None
        finally:
            source.close()
            if copy is not None:
                copy.unlink(missing_ok=True)


@dataclass
class WritePart(_PartJob):
    """Phase 2 task: part ``p``'s kept rows as ``samples`` shards, with their ordinals and shard numbers."""

    dataset: str = ""
    first_ordinal: list[int] | None = None
    first_shard: list[int] | None = None
    keep: dict[int, np.ndarray] | None = None  # rows to keep per part (only parts with duplicates dropped)
    batch_rows: int = 250_000

    def __call__(self, p: int) -> int:
        table = pq.read_table(self.stage(p))
        if self.keep and p in self.keep:
            table = table.filter(pa.array(self.keep[p]))
        store = Catalog(Path(self.store_root))
        done = completed_shards(store, "samples", self.run_id)
        for j, lo in enumerate(range(0, table.num_rows, self.batch_rows)):
            shard = self.first_shard[p] + j
            if shard in done:
                continue
            chunk = table.slice(lo, self.batch_rows)
            n, first = chunk.num_rows, self.first_ordinal[p] + lo
            chunk = chunk.add_column(1, "ordinal", pa.array(np.arange(first, first + n, dtype=np.int64)))
            chunk = chunk.add_column(0, "dataset", pa.array([self.dataset] * n, pa.string()))
            write_shard(store, "samples", self.run_id, chunk, shard, exclusive=True, compression="snappy",
                        use_dictionary=dictionary_columns(chunk),
                        write_statistics=[c for c in chunk.column_names if c not in LONG_TEXT])
        return table.num_rows


def ingest_parts(
    store: Catalog, executor: Any, plan: Any, run_id: str, dataset: str, path: Path, fmt: str, full_sample: bool,
    *, split: str | None = None, batch_rows: int, drop_duplicates: bool, memory_limit: str, progress: bool,
    part_bytes: int | None = None,
) -> tuple[int, int, int, str]:
    """Ingest ``path`` with ``executor``'s workers; returns (rows read, rows written, duplicates, fingerprint)."""
    parts = split_input(path, fmt, part_bytes)
    reader = ReadPart(str(store.root), run_id, parts=parts, plan=plan, fmt=fmt, split=split,
                      full_sample=full_sample, memory_limit=memory_limit,
                      threads=max(1, int(getattr(executor, "cpus_per_task", 1))), batch_rows=batch_rows)
    summaries: list[dict[str, Any]] = [{} for _ in parts]
    try:
        with StepProgress(f"ingest {dataset} ({len(parts)} parts)", len(parts), unit="parts",
                          enabled=progress) as bar:
            def read_done(p: int, summary: dict[str, Any]) -> None:
                summaries[p] = summary
                bar.advance(1)

            _run(executor, reader, range(len(parts)), read_done)
        _check_required(summaries, plan.required, path)
        n_read, n_dup, fingerprint, keep, kept = _ids(reader, len(parts), drop_duplicates)
        first_ordinal = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(int).tolist()
        shards = [math.ceil(k / batch_rows) for k in kept]
        first_shard = np.concatenate([[0], np.cumsum(shards)[:-1]]).astype(int).tolist()
        writer = WritePart(str(store.root), run_id, dataset=dataset, first_ordinal=first_ordinal,
                           first_shard=first_shard, keep=keep, batch_rows=batch_rows)
        _run(executor, writer, [p for p in range(len(parts)) if kept[p]], lambda _p, _n: None)
    finally:
        shutil.rmtree(reader.stage_dir, ignore_errors=True)
    return n_read, int(sum(kept)), n_dup, fingerprint


def _run(executor: Any, work: Any, items: Any, on_done: Any) -> None:
    """Run a phase; a worker's read error comes back as the :class:`IngestPartError` it raised."""
    try:
        executor.run(work, list(items), on_done)
    except ExecutorError as exc:
        if isinstance(exc.cause, IngestPartError | IngestError):
            raise exc.cause from exc
        raise


def _check_required(summaries: list[dict[str, Any]], required: tuple[str, ...], path: Path) -> None:
    before = 0
    for summary in summaries:
        for col in required:
            first = summary["first_null"].get(col)
            if first is not None:
                raise IngestError(f"{path}: record {before + first + 1} has no value for {col!r}; "
                                  "every sample needs one")
        before += summary["rows"]


def _ids(reader: ReadPart, n_parts: int, drop_duplicates: bool):
    """Duplicates, fingerprint and kept rows over every part's ids, in input order (the local ingest's rules)."""
    tracker, fingerprint = _DuplicateTracker(), hashlib.sha256()
    n_read = n_dup = 0
    keep: dict[int, np.ndarray] = {}
    kept: list[int] = []
    for p in range(n_parts):
        ids = pq.read_table(reader.stage(p), columns=["sample_id"]).column(0).combine_chunks()
        if len(ids) == 0:
            kept.append(0)
            continue
        keys, raw = id_keys(ids)
        dup = tracker.mark(keys)
        n_read, n_dup = n_read + len(ids), n_dup + int(dup.sum())
        if drop_duplicates and dup.any():
            keep[p] = ~dup
            raw = id_keys(ids.filter(pa.array(~dup)))[1]
        fingerprint.update(raw)
        kept.append(len(ids) - (int(dup.sum()) if drop_duplicates else 0))
    return n_read, n_dup, fingerprint.hexdigest(), keep, kept


def _summary(stage: Path, required: tuple[str, ...]) -> dict[str, Any]:
    """A stage file's row count and, per required column, its first missing value's row (or None)."""
    meta = pq.read_metadata(stage)
    first_null: dict[str, int | None] = {}
    if required and meta.num_rows:
        table = pq.read_table(stage, columns=list(required))
        for col in required:
            nulls = pc.is_null(table.column(col)).to_numpy(zero_copy_only=False)
            first_null[col] = int(np.flatnonzero(nulls)[0]) if nulls.any() else None
    return {"rows": meta.num_rows, "first_null": first_null}


def _copy_range(src: Path, dst: Path, start: int, end: int, block: int = 8 * 2**20) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fin.seek(start)
        left = end - start
        while left > 0:
            chunk = fin.read(min(block, left))
            if not chunk:
                break
            fout.write(chunk)
            left -= len(chunk)


__all__ = ["PART_BYTES", "InputPart", "ReadPart", "WritePart", "ingest_parts", "split_input"]
