"""Ingest jsonl(.gz), Parquet, CSV/TSV or a ``datasets`` folder into a store as a named dataset.

DuckDB reads and hashes the input in a private in-memory database (multi-threaded, bounded
memory); Arrow batches stream out into Parquet shards, so memory stays flat for files larger than
RAM. Nothing is visible until the last shard is written and the dataset is registered in one
catalog transaction; on any error the run's shards are deleted and the error names the file, line
or field at fault.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .dataset_writer import (
    DATASET_RUN_KINDS,
    DEFAULT_BATCH_ROWS,
    LONG_TEXT,
    dictionary_columns,
    discard_dead_runs,
    id_keys,
    register_dataset,
    write_dataset_shards,
)
from .errors import DatasetExistsError, IngestError, IngestPartError
from .ids import ROLES, quote_ident, sql_sample_id
from .ingest_diagnosis import (
    TEXT_ROLES,
    TYPE_CHECK_MARK,
    compression_problem,
    diagnose,
    explain,
    find_csv_problem,
    find_jsonl_problem,
    is_type_error,
)
from .ingest_files import FORMATS, csv_delimiter, detect_format, input_bytes, open_input
from .ingest_roles import resolve_roles, role_expr
from .ingest_sources import InputSource
from .names import validate_name
from .progress import StepProgress
from .store import Store

__all__ = [  # the public names of ingest, wherever they live now
    "DEFAULT_BATCH_ROWS",
    "FORMATS",
    "LONG_TEXT",
    "RESERVED",
    "TEXT_ROLES",
    "TYPE_CHECK_MARK",
    "IngestResult",
    "compression_problem",
    "csv_delimiter",
    "detect_format",
    "diagnose",
    "dictionary_columns",
    "discard_dead_runs",
    "find_csv_problem",
    "find_jsonl_problem",
    "id_keys",
    "ingest",
    "open_input",
    "register_dataset",
    "resolve_roles",
    "write_dataset_shards",
]

RESERVED = ("dataset", "sample_id", "ordinal")


@dataclass
class IngestResult:
    """What an ingest did: the dataset, its run, row counts and throughput."""

    dataset: str
    run_id: str
    n_samples: int
    n_rows_read: int
    n_duplicates: int
    duplicates_dropped: bool
    fields: list[dict[str, Any]]
    source: str
    format: str
    seconds: float
    bytes_read: int
    fingerprint: str
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        """Input rows per second."""
        return self.n_rows_read / max(self.seconds, 1e-9)

    @property
    def mb_per_s(self) -> float:
        """Input megabytes (10^6 bytes) per second."""
        return self.bytes_read / 1e6 / max(self.seconds, 1e-9)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, throughput included (for JSON output)."""
        d = asdict(self)
        d.update(rows_per_s=self.rows_per_s, mb_per_s=self.mb_per_s)
        return d


# ---------------------------------------------------------------------- ingest
def ingest(
    store: Store,
    path: str | os.PathLike,
    dataset: str,
    *,
    text_field: str | None = None,
    prompt_field: str | None = None,
    completion_field: str | None = None,
    label_field: str | None = None,
    format: str | None = None,
    split: str | None = None,
    drop_duplicates: bool = False,
    replace: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    memory_limit: str = "512MB",
    progress: bool = False,
    executor: Any = None,
) -> IngestResult:
    """Ingest a file or folder as dataset ``dataset``; see the module docstring for guarantees.

    ``executor`` (:mod:`stores.executors`): with a Ray executor, parts of the input (line ranges
    of a jsonl file, the files of a Parquet folder) are read and written by Ray tasks; the dataset
    (ids, ordinals, columns, duplicates, fingerprint) is the one a local ingest writes.
    """
    path = Path(path)
    validate_name(dataset)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    n_bytes = input_bytes(path)
    if n_bytes == 0:
        raise IngestError(f"{path}: empty input (0 bytes)")
    if not replace:
        exists = store.sql("SELECT 1 FROM datasets WHERE name = ?", [dataset]).height
        if exists:
            raise DatasetExistsError(f"dataset {dataset!r} already exists; pass --replace to overwrite it")

    config = {
        **(executor.describe() if executor is not None else {}),
        "source": str(path.resolve()),
        "format": fmt,
        "split": split,
        "fields": {"text": text_field, "prompt": prompt_field, "completion": completion_field, "label": label_field},
        "drop_duplicates": drop_duplicates,
        "replace": replace,
        "batch_rows": batch_rows,
        "source_bytes": n_bytes,
        "source_mtime": path.stat().st_mtime,
    }
    with store.run("ingest", config=config, dataset=dataset, all_or_nothing=True) as run:
        discard_dead_runs(store, DATASET_RUN_KINDS)
        tmp_dir = store.root / ".tmp"
        tmp_dir.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        source = InputSource(path, fmt, split, tmp_dir, memory_limit)
        try:
            result = None
            checked: dict[str, str] = {}  # input column -> role, filled in once the roles are known
            for full_sample in (False, True):
                try:
                    result = _ingest_once(
                        store, source, run.id, dataset, path, full_sample, progress, checked,
                        text_field=text_field, prompt_field=prompt_field, completion_field=completion_field,
                        label_field=label_field, drop_duplicates=drop_duplicates, batch_rows=batch_rows,
                        executor=executor, memory_limit=memory_limit,
                    )
                    break
                except (duckdb.Error, OSError, pa.ArrowException, IngestPartError) as exc:  # DuckDB errors surface via Arrow too
                    store.delete_run_files(run.id)
                    retry = fmt in ("jsonl", "csv") and not full_sample and is_type_error(exc)
                    if retry and fmt == "csv":
                        continue  # a type guessed from the first rows broke later: detect on all rows
                    problem = diagnose(path, fmt, exc, checked)  # jsonl: also finds role values of a wrong type
                    if problem:
                        raise IngestError(problem) from exc
                    if retry:
                        continue
                    raise IngestError(explain(path, fmt, exc)) from exc
            assert result is not None
            n_read, n_written, n_dup, fingerprint, fields, roles = result
            superseded = register_dataset(  # finishes the run in the same transaction
                store, run, dataset, source=str(path.resolve()), n_samples=n_written,
                n_duplicates=n_dup, fields=fields, fingerprint=fingerprint, replace=replace,
            )
        finally:
            source.close()
    if superseded:
        store.delete_run_files(superseded)
    return IngestResult(
        dataset=dataset, run_id=run.id, n_samples=n_written, n_rows_read=n_read, n_duplicates=n_dup,
        duplicates_dropped=drop_duplicates, fields=fields, source=str(path.resolve()), format=fmt,
        seconds=time.perf_counter() - t0, bytes_read=n_bytes, fingerprint=fingerprint, roles=roles,
    )


@dataclass
class IngestPlan:
    """How the input becomes samples: the SELECT over its relation, the fields, roles and required columns.

    Plain strings and lists, so that workers reading parts of the input (:mod:`stores.ingest_parallel`)
    run exactly the query a local ingest runs over the whole input.
    """

    select_sql: str  # holds {relation}
    read_columns: list[tuple[str, str]]  # jsonl: each column and the type it is read as; CSV: as described
    csv_types: dict[str, str]
    fields: list[dict[str, Any]]
    roles: dict[str, str]
    required: tuple[str, ...]

    def query(self, source: InputSource, full_sample: bool) -> str:
        """The SELECT giving ``sample_id`` and the output columns from ``source`` (the input or a part)."""
        if source.fmt == "jsonl":
            relation = source.relation_sql(full_sample, self.read_columns)
        else:
            relation = source.relation_sql(full_sample, self.read_columns, csv_types=self.csv_types)
        return self.select_sql.format(relation=relation)


def plan_ingest(
    source: InputSource, path: Path, full_sample: bool, checked: dict[str, str], *,
    text_field: str | None, prompt_field: str | None, completion_field: str | None, label_field: str | None,
) -> IngestPlan:
    """Describe the input, resolve its roles and build the query that turns rows into samples."""
    described = source.describe(full_sample)
    columns = [c for c, _ in described]
    types = dict(described)
    roles = resolve_roles(columns, path, text_field, prompt_field, completion_field, label_field)
    checked.clear()
    checked.update({col: role for role, col in roles.items()})
    read_types = dict(types)  # jsonl: the type each column is read as
    csv_types: dict[str, str] = {}
    outputs: list[tuple[str, str, dict[str, Any]]] = []  # (output name, SQL expression, field)
    for role in ROLES:
        if role in roles:
            col = roles[role]
            expr, out_type = role_expr(source, path, role, col, types[col], read_types, csv_types)
            outputs.append((role, expr, {"name": role, "role": role, "source": col, "type": out_type}))
    used_names = set(roles)
    out_name: dict[str, str] = {}
    for col in columns:
        if col in roles.values():
            continue
        out = out_name[col] = f"source_{col}" if col in RESERVED or col in used_names else col
        used_names.add(out)
        outputs.append((out, quote_ident(col), {"name": out, "role": None, "source": col, "type": types[col]}))

    # the id hashes content fields by role name (every field by its own name for tabular data)
    content = [(role, role) for role in roles]
    if not set(roles) - {"label"}:  # no text roles (tabular data): every field is content
        content = [(c, out_name[c]) for c in columns if c not in roles.values()] + content
    converted = ", ".join(f"{expr} AS {quote_ident(out)}" for out, expr, _ in outputs)
    select = f"SELECT {sql_sample_id(content)} AS sample_id, * FROM (SELECT {converted} FROM {{relation}})"
    return IngestPlan(
        select_sql=select.replace("{", "{{").replace("}", "}}").replace("{{relation}}", "{relation}"),
        read_columns=list(read_types.items()) if source.fmt == "jsonl" else described, csv_types=csv_types,
        fields=[f for _, _, f in outputs], roles=roles, required=tuple(r for r in TEXT_ROLES if r in roles),
    )


def _ingest_once(
    store: Store,
    source: InputSource,
    run_id: str,
    dataset: str,
    path: Path,
    full_sample: bool,
    progress: bool,
    checked: dict[str, str],
    *,
    text_field: str | None,
    prompt_field: str | None,
    completion_field: str | None,
    label_field: str | None,
    drop_duplicates: bool,
    batch_rows: int,
    executor: Any = None,
    memory_limit: str = "512MB",
) -> tuple[int, int, int, str, list[dict[str, Any]], dict[str, str]]:
    plan = plan_ingest(source, path, full_sample, checked, text_field=text_field, prompt_field=prompt_field,
                       completion_field=completion_field, label_field=label_field)
    if executor is not None and executor.name != "local":
        from .ingest_parallel import ingest_parts  # that module builds on this one

        n_read, n_written, n_dup, fingerprint = ingest_parts(
            store, executor, plan, run_id, dataset, path, source.fmt, full_sample, split=source.split,
            batch_rows=batch_rows,
            drop_duplicates=drop_duplicates, memory_limit=memory_limit, progress=progress)
    else:
        reader = source.con.sql(plan.query(source, full_sample)).to_arrow_reader(batch_rows)
        with StepProgress(f"ingest {dataset}", enabled=progress) as bar:
            n_read, n_written, n_dup, fingerprint = write_dataset_shards(
                store, run_id, dataset, iter(reader), batch_rows=batch_rows,
                drop_duplicates=drop_duplicates, required=plan.required, progress=bar, source_label=str(path),
            )
    if n_read == 0:
        raise IngestError(f"{path}: empty input (no rows)")
    return n_read, n_written, n_dup, fingerprint, plan.fields, plan.roles
