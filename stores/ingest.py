"""Ingest jsonl(.gz), Parquet, CSV/TSV or a ``datasets`` folder into a store as a named dataset.

DuckDB reads and hashes the input in a private in-memory database (multi-threaded, bounded
memory); Arrow batches stream out into Parquet shards, so memory stays flat for files larger than
RAM. Nothing is visible until the last shard is written and the dataset is registered in one
catalog transaction; on any error the run's shards are deleted and the error names the file, line
or field at fault.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .atomic import remove_stale_temp_files
from .errors import DatasetExistsError, IngestError, StoreError
from .ids import ROLES, quote_ident, sql_sample_id
from .progress import RowProgress
from .schema import sql_literal
from .store import Store, first_row, utcnow, validate_name

FORMATS = ("jsonl", "parquet", "csv", "hf")
RESERVED = ("dataset", "sample_id", "ordinal")
DEFAULT_BATCH_ROWS = 250_000
LONG_TEXT = ("text", "prompt", "completion")  # min/max statistics of these cost time and help no query


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


# ---------------------------------------------------------------------- format detection
def detect_format(path: Path) -> str:
    """Guess the input format from the path: a suffix, or a ``datasets`` / Parquet folder."""
    if path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if any(path.rglob("*.parquet")):
            return "parquet"
        raise IngestError(
            f"{path}: folder is neither a `datasets` save_to_disk folder (state.json) nor holds .parquet files"
        )
    name = path.name.lower()
    for suffix in (".gz", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise IngestError(
        f"{path}: cannot tell the format from the name; pass --format with one of {', '.join(FORMATS)}"
    )


def _input_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# ---------------------------------------------------------------------- sources
class _Source:
    """A DuckDB relation over the input in a private connection, re-creatable for a retry."""

    def __init__(self, path: Path, fmt: str, split: str | None, tmp_dir: Path, memory_limit: str):
        self.path, self.fmt, self.split = path, fmt, split
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
        self.con.execute(f"SET temp_directory = {sql_literal(str(tmp_dir))}")
        self.con.execute("SET preserve_insertion_order = true")
        self._hf_files = self._hf_arrow_files() if fmt == "hf" else []

    def relation_sql(self, full_sample: bool, columns: list[tuple[str, str]] | None = None) -> str:
        """FROM-clause expression reading the whole input.

        For jsonl, passing the ``columns`` found by :meth:`describe` skips a second type detection.
        """
        p = sql_literal(str(self.path))
        sample = ", sample_size = -1" if full_sample else ""
        if self.fmt == "jsonl":
            if columns:
                spec = ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in columns)
                sample = f", columns = {{{spec}}}"
            return (
                f"read_json({p}, format = 'newline_delimited', records = true, "
                f"maximum_object_size = 33554432{sample})"
            )
        if self.fmt == "csv":
            return f"read_csv({p}, header = true, delim = {sql_literal(self.csv_delimiter)}{sample})"
        if self.fmt == "parquet":
            target = str(self.path / "**" / "*.parquet") if self.path.is_dir() else str(self.path)
            return f"read_parquet({sql_literal(target)})"
        self.con.register("hf_source", self._hf_reader())
        return "hf_source"

    def _hf_arrow_files(self) -> list[Path]:
        folder = self.path
        if (folder / "dataset_dict.json").exists():
            splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
            split = self.split or ("train" if "train" in splits else None)
            if split not in splits:
                raise IngestError(
                    f"{folder}: a DatasetDict with splits {', '.join(splits)}; choose one with --split"
                )
            folder = folder / split
        state_file = folder / "state.json"
        if not state_file.exists():
            raise IngestError(f"{folder}: no state.json; expected a folder written by Dataset.save_to_disk")
        state = json.loads(state_file.read_text())
        files = [folder / f["filename"] for f in state.get("_data_files", [])]
        missing = [str(f) for f in files if not f.exists()]
        if missing or not files:
            raise IngestError(f"{folder}: state.json lists missing Arrow files: {', '.join(missing) or '(none listed)'}")
        return files

    def _hf_reader(self) -> pa.RecordBatchReader:
        first = pa.ipc.open_stream(pa.memory_map(str(self._hf_files[0])))
        schema = first.schema.remove_metadata()

        def batches() -> Iterator[pa.RecordBatch]:
            for i, f in enumerate(self._hf_files):
                reader = first if i == 0 else pa.ipc.open_stream(pa.memory_map(str(f)))
                for b in reader:
                    yield b.replace_schema_metadata(None)

        return pa.RecordBatchReader.from_batches(schema, batches())

    @property
    def csv_delimiter(self) -> str:
        """Field separator of a CSV/TSV input, from its suffix."""
        return "\t" if ".tsv" in self.path.name.lower() else ","

    def describe(self, full_sample: bool) -> list[tuple[str, str]]:
        """Column names and DuckDB types of the input."""
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {self.relation_sql(full_sample)}").fetchall()
        described = [(r[0], r[1]) for r in rows]
        if self.fmt == "jsonl" and not full_sample:
            # DuckDB's JSON reader calls integers HUGEINT when negatives mix with positives, which
            # lands in Parquet as DECIMAL(38,0); BIGINT is what the data is. A value that does not
            # fit fails the cast and triggers the full-sample re-read, which keeps HUGEINT.
            described = [(c, "BIGINT" if t in ("HUGEINT", "UHUGEINT") else t) for c, t in described]
        if self.fmt == "csv":
            self._check_csv_header(len(described))
        return described

    def _check_csv_header(self, n_detected: int) -> None:
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        with opener(self.path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
            header = next(csv.reader(fh, delimiter=self.csv_delimiter), [])
        if header and len(header) != n_detected:
            raise IngestError(
                f"{self.path}:1: header has {len(header)} fields but the rows parse as {n_detected}; "
                "the file is not consistent CSV (check quoting and field counts)"
            )

    def close(self) -> None:
        self.con.close()


# ---------------------------------------------------------------------- diagnostics
def find_jsonl_problem(path: Path) -> str | None:
    """First malformed line of a jsonl file as 'file:line: problem', or None if all parse."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    offset = 0
    n_objects = 0
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return (
                    f"{path}:{lineno}: invalid UTF-8 at byte {offset + exc.start} of the file "
                    f"(byte {exc.start} of the line): {exc.reason}"
                )
            offset += len(raw)
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                return f"{path}:{lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            if not isinstance(obj, dict):
                return f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}"
            n_objects += 1
    return None if n_objects else f"{path}: empty input (no JSON objects, only blank lines)"


def _explain(path: Path, fmt: str, exc: Exception) -> str:
    if fmt == "jsonl":
        problem = find_jsonl_problem(path)
        if problem:
            return problem
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    msg = " ".join(lines[:2]) if lines else type(exc).__name__
    return f"{path}: could not read as {fmt}: {msg}"


def _is_type_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    keys = ("could not convert", "conversion error", "type mismatch", "sniff", "schema", "transform error", "failed to cast")
    return any(k in msg for k in keys)


# ---------------------------------------------------------------------- role mapping
def resolve_roles(
    columns: list[str],
    path: Path,
    text_field: str | None,
    prompt_field: str | None,
    completion_field: str | None,
    label_field: str | None,
) -> dict[str, str]:
    """Map roles (text, prompt, completion, label) to input columns; errors list what exists."""
    explicit = {"text": text_field, "prompt": prompt_field, "completion": completion_field, "label": label_field}
    available = ", ".join(columns)
    for role, col in explicit.items():
        if col is not None and col not in columns:
            raise IngestError(f"{path}: field {col!r} (--{role}-field) not found; available fields: {available}")
    if (prompt_field is None) != (completion_field is None):
        raise IngestError("--prompt-field and --completion-field must be given together")
    roles = {r: c for r, c in explicit.items() if c is not None}
    if not any(r in roles for r in ("text", "prompt", "completion")):
        if "prompt" in columns and "completion" in columns:
            roles.update(prompt="prompt", completion="completion")
        elif "text" in columns:
            roles["text"] = "text"
    if "label" not in roles and "label" in columns:
        roles["label"] = "label"
    return roles


# ---------------------------------------------------------------------- dedup
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
    """Columns worth dictionary-encoding: few distinct values (trying it on unique text is slow)."""
    sample = table.slice(0, 10_000)
    out = []
    for name, col in zip(sample.column_names, sample.columns, strict=True):
        if name in ("sample_id", "ordinal"):
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
    store: Store,
    run_id: str,
    dataset: str,
    batches: Iterator[pa.RecordBatch],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    drop_duplicates: bool = False,
    required: tuple[str, ...] = (),
    progress: RowProgress | None = None,
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
                store.write_shard, "samples", run_id, table, n_shards,
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
    store: Store,
    run_id: str,
    dataset: str,
    *,
    source: str,
    n_samples: int,
    n_duplicates: int,
    fields: list[dict[str, Any]],
    fingerprint: str,
    replace: bool,
) -> str | None:
    """Finish the run and register the dataset in one transaction; returns a superseded run id."""
    with store.write() as con:
        old = first_row(con.execute("SELECT run_id FROM datasets WHERE name = ?", [dataset]).fetchall())
        if old and not replace:
            raise DatasetExistsError(f"dataset {dataset!r} already exists; pass --replace to overwrite it")
        if old:
            con.execute("DELETE FROM datasets WHERE name = ?", [dataset])
            con.execute("UPDATE runs SET status = 'superseded' WHERE run_id = ?", [old[0]])
        con.execute(
            "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [dataset, utcnow(), source, n_samples, n_duplicates, json.dumps(fields), fingerprint, run_id],
        )
        store.finish_run(run_id)
    return old[0] if old else None


def discard_dead_runs(store: Store, kinds: tuple[str, ...]) -> None:
    """Delete shard files of interrupted/failed runs of these kinds (they can never be resumed)."""
    placeholders = ", ".join("?" for _ in kinds)
    dead = store.sql(
        f"SELECT run_id FROM runs WHERE kind IN ({placeholders}) AND status IN ('interrupted', 'failed')",
        list(kinds),
    )["run_id"].to_list()
    for run_id in dead:
        store.delete_run_files(run_id)
    for table in ("samples", "curated_drops"):
        if (store.data_dir / table).is_dir():
            remove_stale_temp_files(store.data_dir / table)


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
) -> IngestResult:
    """Ingest a file or folder as dataset ``dataset``; see the module docstring for guarantees."""
    path = Path(path)
    validate_name(dataset)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    n_bytes = _input_bytes(path)
    if n_bytes == 0:
        raise IngestError(f"{path}: empty input (0 bytes)")
    if not replace:
        exists = store.sql("SELECT 1 FROM datasets WHERE name = ?", [dataset]).height
        if exists:
            raise DatasetExistsError(f"dataset {dataset!r} already exists; pass --replace to overwrite it")

    config = {
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
    run_id = store.start_run("ingest", config=config, dataset=dataset)
    discard_dead_runs(store, ("ingest", "curate"))
    tmp_dir = store.root / ".tmp"
    tmp_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    source: _Source | None = None
    try:
        source = _Source(path, fmt, split, tmp_dir, memory_limit)
        result = None
        for full_sample in (False, True):
            try:
                result = _ingest_once(
                    store, source, run_id, dataset, path, full_sample, progress,
                    text_field=text_field, prompt_field=prompt_field, completion_field=completion_field,
                    label_field=label_field, drop_duplicates=drop_duplicates, batch_rows=batch_rows,
                )
                break
            except (duckdb.Error, OSError, pa.ArrowException) as exc:  # DuckDB errors surface via Arrow too
                store.delete_run_files(run_id)
                if fmt in ("jsonl", "csv") and not full_sample and _is_type_error(exc):
                    if fmt != "jsonl" or find_jsonl_problem(path) is None:
                        continue  # a type guessed from the first rows broke later: detect on all rows
                raise IngestError(_explain(path, fmt, exc)) from exc
        assert result is not None
        n_read, n_written, n_dup, fingerprint, fields, roles = result
        superseded = register_dataset(
            store, run_id, dataset, source=str(path.resolve()), n_samples=n_written,
            n_duplicates=n_dup, fields=fields, fingerprint=fingerprint, replace=replace,
        )
    except BaseException as exc:
        store.discard_run(run_id, exc)
        raise
    finally:
        if source is not None:
            source.close()
    if superseded:
        store.delete_run_files(superseded)
    return IngestResult(
        dataset=dataset, run_id=run_id, n_samples=n_written, n_rows_read=n_read, n_duplicates=n_dup,
        duplicates_dropped=drop_duplicates, fields=fields, source=str(path.resolve()), format=fmt,
        seconds=time.perf_counter() - t0, bytes_read=n_bytes, fingerprint=fingerprint, roles=roles,
    )


def _ingest_once(
    store: Store,
    source: _Source,
    run_id: str,
    dataset: str,
    path: Path,
    full_sample: bool,
    progress: bool,
    *,
    text_field: str | None,
    prompt_field: str | None,
    completion_field: str | None,
    label_field: str | None,
    drop_duplicates: bool,
    batch_rows: int,
) -> tuple[int, int, int, str, list[dict[str, Any]], dict[str, str]]:
    described = source.describe(full_sample)
    columns = [c for c, _ in described]
    types = dict(described)
    roles = resolve_roles(columns, path, text_field, prompt_field, completion_field, label_field)
    content = [(role, col) for role, col in roles.items()]
    if not set(roles) - {"label"}:  # no text roles (tabular data): every field is content
        content = [(c, c) for c in columns if c not in roles.values()] + content

    used_names = set(roles)
    select = [f"{sql_sample_id(content)} AS sample_id"]
    fields: list[dict[str, Any]] = []
    for role in ROLES:
        if role in roles:
            col = roles[role]
            expr = quote_ident(col) if role == "label" else f"CAST({quote_ident(col)} AS VARCHAR)"
            select.append(f"{expr} AS {quote_ident(role)}")
            fields.append({"name": role, "role": role, "source": col,
                           "type": types[col] if role == "label" else "VARCHAR"})
    role_sources = set(roles.values())
    for col in columns:
        if col in role_sources:
            continue
        out = f"source_{col}" if col in RESERVED or col in used_names else col
        used_names.add(out)
        select.append(f"{quote_ident(col)} AS {quote_ident(out)}")
        fields.append({"name": out, "role": None, "source": col, "type": types[col]})

    inner = f"SELECT {', '.join(select)} FROM {source.relation_sql(full_sample, described)}"
    reader = source.con.sql(inner).to_arrow_reader(batch_rows)
    required = tuple(r for r in ("text", "prompt", "completion") if r in roles)
    with RowProgress(f"ingest {dataset}", enabled=progress) as bar:
        n_read, n_written, n_dup, fingerprint = write_dataset_shards(
            store, run_id, dataset, iter(reader), batch_rows=batch_rows,
            drop_duplicates=drop_duplicates, required=required, progress=bar, source_label=str(path),
        )
    if n_read == 0:
        raise IngestError(f"{path}: empty input (no rows)")
    return n_read, n_written, n_dup, fingerprint, fields, roles
