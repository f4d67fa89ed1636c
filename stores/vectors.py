"""Vectors of a run (a gradient index's projected gradients) and the search-index file built over them.

A vector run writes shards of the ``gradient_vectors`` table (``run_id``, ``sample_id``,
``vector`` as a list of float32, the same length in every row of a run) through the ordinary
shard machinery: each shard is an atomic Parquet file, a killed run resumed with the same run id
computes only the missing shards, and the rows become visible (the ``gradient_vectors`` view)
when the run is finished. Rows keep the order they were written in, shard by shard, so a run's
vectors read back in the order of its training samples.

The search index over the vectors (a FAISS file, written by the caller's function, so this
package needs no FAISS) is an artifact of the run: ``artifacts/gradient-index/<run_id>.index``,
written by temp file, fsync and rename like every other file of the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .catalog import Catalog
from .errors import StoreError
from .shards import ShardInfo, completed_shards, shard_path, shard_paths, write_shard

TABLE = "gradient_vectors"
ARTIFACT_KIND = "gradient-index"


def write_vectors(
    catalog: Catalog, run_id: str, sample_ids: Sequence[str], vectors: np.ndarray, shard: int
) -> ShardInfo:
    """Write one shard of ``vectors`` (samples x dim float32), row ``i`` belonging to ``sample_ids[i]``.

    Atomic (see :func:`stores.shards.write_shard`); uncompressed, as random projections do not
    compress and reading them back is what a query waits for.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(sample_ids):
        raise StoreError(f"vectors must be (samples x dim) with {len(sample_ids)} rows; got shape {vectors.shape}")
    dim = vectors.shape[1]
    offsets = pa.array(np.arange(len(sample_ids) + 1, dtype=np.int32) * np.int32(dim))
    table = pa.table({
        "sample_id": pa.array(list(sample_ids), pa.string()),
        "vector": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1))),
    })
    return write_shard(catalog, TABLE, run_id, table, shard=shard, compression="none", use_dictionary=["run_id"])


def completed_vector_shards(catalog: Catalog, run_id: str) -> set[int]:
    """Indices of the vector shards ``run_id`` has written so far (for resuming a build)."""
    return completed_shards(catalog, TABLE, run_id)


def read_vectors(catalog: Catalog, run_id: str, *, finished: bool = True) -> tuple[list[str], np.ndarray]:
    """A run's sample ids and vectors (samples x dim float32), in the order they were written.

    ``finished`` reads the registered shards of the finished run (what readers see); without it,
    every complete shard file on disk (a run being built, before it is finished). Raises
    :class:`StoreError` when there are none, or when shards are missing or disagree on the length.
    """
    if finished:
        paths = [Path(p) for p in shard_paths(catalog, TABLE, run_id)]
    else:
        done = sorted(completed_shards(catalog, TABLE, run_id))
        if done and done != list(range(len(done))):
            missing = sorted(set(range(done[-1] + 1)) - set(done))
            raise StoreError(f"run {run_id} lacks vector shard(s) {missing[:5]}; resume the build")
        paths = [shard_path(catalog, TABLE, run_id, k) for k in done]
    if not paths:
        raise StoreError(f"run {run_id} has no {'finished ' if finished else ''}vectors in {catalog.root}")
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for path in paths:
        table = pq.read_table(path, columns=["sample_id", "vector"])
        col = table.column("vector").combine_chunks()
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        n = table.num_rows
        if n and values.size % n:
            raise StoreError(f"shard {path}: vectors of different lengths")
        block = values.reshape(n, -1) if n else np.zeros((0, blocks[0].shape[1] if blocks else 0), np.float32)
        if blocks and n and block.shape[1] != blocks[0].shape[1]:
            raise StoreError(f"shard {path}: vectors of length {block.shape[1]}, earlier shards {blocks[0].shape[1]}")
        ids += table.column("sample_id").to_pylist()
        blocks.append(block)
    return ids, np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def read_vector_ids(catalog: Catalog, run_id: str) -> list[str]:
    """The sample ids of a finished run's vectors, in order, without reading the vectors."""
    paths = shard_paths(catalog, TABLE, run_id)
    if not paths:
        raise StoreError(f"run {run_id} has no finished vectors in {catalog.root}")
    return [sid for p in paths for sid in pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist()]


def index_file(catalog: Catalog, run_id: str) -> Path:
    """Where the search index over a run's vectors lives (it may not exist yet)."""
    return catalog.root / "artifacts" / ARTIFACT_KIND / f"{run_id}.index"


def write_index_file(catalog: Catalog, run_id: str, write: Callable[[Path], None]) -> Path:
    """Write a run's search index atomically: ``write(path)`` fills a temp file, renamed on success.

    A killed writer never leaves a truncated index where a reader would trust it.
    """
    target = index_file(catalog, run_id)
    with atomic_path(target) as tmp:
        write(tmp)
        if not tmp.is_file():
            raise StoreError(f"writing the index of run {run_id} produced no file")
    return target


__all__ = ["ARTIFACT_KIND", "TABLE", "completed_vector_shards", "index_file", "read_vector_ids", "read_vectors",
           "write_index_file", "write_vectors"]
