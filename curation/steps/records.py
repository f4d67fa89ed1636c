"""Records made in memory (generated, decoded, selected) -> datasets in the store, in one run.

Records go through a temporary Parquet file and the regular ingest, so a generated dataset is
stored, hashed and validated exactly like a user's file. All datasets of one call are written
under one ``generate`` run whose config says what made them (and, with ``key``, lets a later
call find them again instead of regenerating).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import stores
from stores.errors import DatasetExistsError
from stores.store import validate_name

#: Ingest options for prompt/completion records (the shape every generator here produces).
PROMPT_COMPLETION = {"prompt_field": "prompt", "completion_field": "completion"}


@dataclass
class WrittenRecords:
    """What :func:`ingest_records` wrote: the generate run and each dataset's ingest run."""

    run_id: str
    ingest_runs: dict[str, str] = field(default_factory=dict)


def ingest_records(
    store: stores.Store,
    datasets: Mapping[str, Sequence[dict[str, Any]]],
    *,
    config: dict[str, Any],
    seed: int | None = None,
    dataset: str | None = None,
    roles: Mapping[str, str] | None = None,
    to_table: Callable[[Sequence[dict[str, Any]]], pa.Table] = pa.Table.from_pylist,
    replace: bool = False,
) -> WrittenRecords:
    """Ingest each list of records as the dataset of that name, under one ``generate`` run.

    ``config`` describes what made the records (recorded with the run); ``roles`` are ingest's
    field options (default: prompt/completion); ``to_table`` turns records into an Arrow table
    (a generator with fixed column types passes its own). Every name is checked before anything is
    written; without ``replace`` an existing dataset is an error naming it.
    """
    names = [validate_name(name) for name in datasets]
    if not replace:
        for name in names:
            if store.sql("SELECT 1 FROM datasets WHERE name = ?", [name]).height:
                raise DatasetExistsError(f"dataset {name!r} already exists; pass --replace to overwrite it")
    from stores.ingest import ingest

    options = dict(PROMPT_COMPLETION if roles is None else roles)
    with store.run("generate", config=config, seed=seed, dataset=dataset or names[0]) as run, \
            tempfile.TemporaryDirectory(prefix="curation-records-") as tmp:
        written = WrittenRecords(run.id)
        for i, (name, records) in enumerate(datasets.items()):
            path = Path(tmp) / f"part-{i}.parquet"
            pq.write_table(to_table(records), path)
            written.ingest_runs[name] = ingest(store, path, name, replace=replace, **options).run_id
    return written


def generated_key(store: stores.Store, dataset: str) -> str | None:
    """The ``key`` recorded by the latest finished generate run of ``dataset``, if it still exists."""
    df = store.sql(
        """SELECT json_extract_string(config, '$.key') AS key FROM runs WHERE kind = 'generate'
           AND status = 'finished' AND dataset = ? ORDER BY created_at DESC LIMIT 1""", [dataset])
    exists = store.sql("SELECT 1 FROM datasets WHERE name = ?", [dataset]).height > 0
    return df["key"][0] if df.height and exists else None
