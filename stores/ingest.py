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
import io
import json
import os
import time
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

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


def csv_delimiter(path: Path) -> str:
    """Field separator of a CSV/TSV file, from its suffix."""
    return "\t" if ".tsv" in path.name.lower() else ","


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

    def relation_sql(
        self,
        full_sample: bool,
        columns: list[tuple[str, str]] | None = None,
        csv_types: Mapping[str, str] | None = None,
    ) -> str:
        """FROM-clause expression reading the whole input.

        For jsonl, passing the ``columns`` found by :meth:`describe` skips a second type detection
        (and lets the caller read a column as raw ``JSON``); for CSV, ``csv_types`` overrides the
        sniffed type of some columns (role fields are read as ``VARCHAR``, exactly as written).
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
            if csv_types:
                spec = ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in csv_types.items())
                sample += f", types = {{{spec}}}"
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
        return csv_delimiter(self.path)

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
        with open_input(self.path, text=True) as fh:
            header = next(csv.reader(fh, delimiter=self.csv_delimiter), [])
        if header and len(header) != n_detected:
            problem = find_csv_problem(self.path, self.csv_delimiter)
            if problem:
                raise IngestError(problem)
            raise IngestError(
                f"{self.path}:1: header has {len(header)} fields but the rows parse as {n_detected}; "
                "the file is not consistent CSV (check quoting and field counts)"
            )

    def close(self) -> None:
        self.con.close()


# ---------------------------------------------------------------------- diagnostics
# DuckDB raises this (via ``error()``) when a role field holds a value of the wrong type; the
# Python scans below then find the line. The text is also the fallback message.
TYPE_CHECK_MARK = "ingest type check"
TEXT_ROLES = ("text", "prompt", "completion")
_STREAM_ERRORS = (EOFError, zlib.error, OSError)  # gzip, and pyarrow's zstd (which raises OSError)


class _ArrowRaw(io.RawIOBase):
    """A pyarrow input stream as a Python raw file, so that io can buffer and split it in lines."""

    def __init__(self, stream: pa.NativeFile):
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def _codec(path: Path) -> str | None:
    name = path.name.lower()
    return "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None


def open_input(path: Path, text: bool = False) -> IO[Any]:
    """Open an input file for a Python-side scan, decompressing .gz and .zst (as DuckDB does).

    Text mode decodes UTF-8 with replacement and keeps line endings (for the csv module).
    """
    codec = _codec(path)
    if codec == "gzip":
        raw: IO[bytes] = gzip.open(path, "rb")
    elif codec == "zstd":
        raw = io.BufferedReader(_ArrowRaw(pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")))
    else:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") if text else raw


def compression_problem(path: Path, detail: str) -> str:
    """One-line message for a .gz/.zst input that is cut short or not compressed that way."""
    codec = _codec(path) or "compressed"
    return (
        f"{path}: truncated or corrupt {codec} stream ({detail}); the file is incomplete or not {codec}: "
        f"download or compress it again (`{codec} -t {path.name}` checks a file)"
    )


def _stream_problem(path: Path, exc: BaseException) -> str:
    """Message for an error met while decompressing ``path``; re-raises anything else."""
    if _codec(path) is None:
        raise exc
    if isinstance(exc, EOFError):
        detail = "unexpected end of gzip stream"
    elif isinstance(exc, gzip.BadGzipFile):
        detail = "input is not a gzip stream"
    else:
        detail = str(exc).replace("ZSTD decompress failed: ", "") or type(exc).__name__
    return compression_problem(path, detail[:1].lower() + detail[1:])


def _duckdb_stream_detail(path: Path, exc: Exception) -> str | None:
    """DuckDB's complaint about a compressed stream in its error message, if that is what it is."""
    for line in str(exc).splitlines():
        if "gzip" in line.lower() or (_codec(path) == "zstd" and "frame descriptor" in line.lower()):
            detail = line.split("Error: ", 1)[-1].split(": /", 1)[0].strip()
            return (detail[:1].lower() + detail[1:]).replace("GZIP", "gzip")
    return None


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _field_label(column: str, role: str) -> str:
    return repr(column) if column == role else f"{column!r} (--{role}-field)"


def _value_problem(value: object, column: str, role: str, lineno: int, first_label: dict[str, tuple[str, int]]) -> str | None:
    """What is wrong with one role field's value on one line, or None."""
    if value is None:
        return None
    kind = _json_kind(value)
    name = _field_label(column, role)
    if role in TEXT_ROLES:
        if kind == "a string":
            return None
        shown = json.dumps(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return f"field {name} must be a string, got {kind} ({shown})"
    if kind in ("an array", "an object"):
        return f"field {name} must be a single string, number or boolean, got {kind}"
    seen = first_label.setdefault(column, (kind, lineno))
    if seen[0] != kind:
        return f"field {name} is {kind} here but {seen[0]} on line {seen[1]}; a label must have one type throughout"
    return None


def find_jsonl_problem(path: Path, fields: Mapping[str, str] | None = None) -> str | None:
    """First problem of a jsonl file as 'file:line: problem', or None if every line is fine.

    Finds invalid UTF-8, invalid JSON, lines that are not objects, a truncated or corrupt gzip
    stream and, for ``fields`` (input column -> role), values of the wrong type: a text, prompt or
    completion that is not a string (null is left to the missing-value check), a label that is an
    array or object or changes type (string / number / boolean) from one line to another.
    """
    offset = 0
    n_objects = 0
    first_label: dict[str, tuple[str, int]] = {}
    try:
        with open_input(path) as fh:
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
                    obj = json.loads(text.rstrip("\r\n"))  # so that a line cut short gets its own column
                except json.JSONDecodeError as exc:
                    return f"{path}:{lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                if not isinstance(obj, dict):
                    return f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}"
                n_objects += 1
                for column, role in (fields or {}).items():
                    problem = _value_problem(obj.get(column), column, role, lineno, first_label)
                    if problem:
                        return f"{path}:{lineno}: {problem}"
    except _STREAM_ERRORS as exc:
        return _stream_problem(path, exc)
    return None if n_objects else f"{path}: empty input (no JSON objects, only blank lines)"


def find_csv_problem(path: Path, delimiter: str) -> str | None:
    """First row of a CSV/TSV file whose field count differs from the header's, as
    'file:line: expected N fields (as in the header), found M' (line of the row's start), a
    truncated or corrupt gzip stream, or None."""
    old_limit = csv.field_size_limit(2**31 - 1)  # long texts are fine; only field counts matter here
    try:
        with open_input(path, text=True) as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            n_expected = None
            end = 0  # the physical line the previous row ended on
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row:
                    continue
                if n_expected is None:
                    n_expected = len(row)
                elif len(row) != n_expected:
                    return (
                        f"{path}:{start}: expected {n_expected} fields (as in the header), found {len(row)}; "
                        f"check quoting of fields that contain {delimiter!r} or line breaks"
                    )
    except _STREAM_ERRORS as exc:
        return _stream_problem(path, exc)
    except csv.Error as exc:
        return f"{path}:{reader.line_num}: not valid CSV: {exc}"
    finally:
        csv.field_size_limit(old_limit)
    return None


def diagnose(path: Path, fmt: str, exc: Exception, fields: Mapping[str, str] | None = None) -> str | None:
    """The input's own problem behind a failed read, as one line naming file (and line), or None."""
    if _codec(path):
        detail = _duckdb_stream_detail(path, exc)
        if detail:
            return compression_problem(path, detail)
    if fmt == "jsonl":
        return find_jsonl_problem(path, fields)
    if fmt == "csv":
        return find_csv_problem(path, csv_delimiter(path))
    return None


def _explain(path: Path, fmt: str, exc: Exception) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    msg = " ".join(lines[:2]) if lines else type(exc).__name__
    return f"{path}: could not read as {fmt}: {msg}"


def _is_type_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    keys = (
        "could not convert", "conversion error", "type mismatch", "sniff", "schema", "transform error",
        "failed to cast", TYPE_CHECK_MARK,
    )
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
        checked: dict[str, str] = {}  # input column -> role, filled in once the roles are known
        for full_sample in (False, True):
            try:
                result = _ingest_once(
                    store, source, run_id, dataset, path, full_sample, progress, checked,
                    text_field=text_field, prompt_field=prompt_field, completion_field=completion_field,
                    label_field=label_field, drop_duplicates=drop_duplicates, batch_rows=batch_rows,
                )
                break
            except (duckdb.Error, OSError, pa.ArrowException) as exc:  # DuckDB errors surface via Arrow too
                store.delete_run_files(run_id)
                retry = fmt in ("jsonl", "csv") and not full_sample and _is_type_error(exc)
                if retry and fmt == "csv":
                    continue  # a type guessed from the first rows broke later: detect on all rows
                problem = diagnose(path, fmt, exc, checked)  # jsonl: also finds role values of a wrong type
                if problem:
                    raise IngestError(problem) from exc
                if retry:
                    continue
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
    checked: dict[str, str],
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
    checked.clear()
    checked.update({col: role for role, col in roles.items()})
    read_types = dict(types)  # jsonl: the type each column is read as
    csv_types: dict[str, str] = {}
    outputs: list[tuple[str, str, dict[str, Any]]] = []  # (output name, SQL expression, field)
    for role in ROLES:
        if role in roles:
            col = roles[role]
            expr, out_type = _role_expr(source, path, role, col, types[col], read_types, csv_types)
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

    if source.fmt == "jsonl":
        relation = source.relation_sql(full_sample, list(read_types.items()))
    else:
        relation = source.relation_sql(full_sample, described, csv_types=csv_types)
    converted = ", ".join(f"{expr} AS {quote_ident(out)}" for out, expr, _ in outputs)
    inner = f"SELECT {sql_sample_id(content)} AS sample_id, * FROM (SELECT {converted} FROM {relation})"
    fields = [f for _, _, f in outputs]
    reader = source.con.sql(inner).to_arrow_reader(batch_rows)
    required = tuple(r for r in TEXT_ROLES if r in roles)
    with RowProgress(f"ingest {dataset}", enabled=progress) as bar:
        n_read, n_written, n_dup, fingerprint = write_dataset_shards(
            store, run_id, dataset, iter(reader), batch_rows=batch_rows,
            drop_duplicates=drop_duplicates, required=required, progress=bar, source_label=str(path),
        )
    if n_read == 0:
        raise IngestError(f"{path}: empty input (no rows)")
    return n_read, n_written, n_dup, fingerprint, fields, roles


# DuckDB types guessed from strings (jsonl, CSV): a role field keeps the string as written
_FROM_STRINGS = ("DATE", "TIME", "TIMESTAMP", "UUID", "INTERVAL")
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


def _label_kind(duck_type: str) -> str | None:
    """string / integer / float / boolean / null for a scalar DuckDB type; None for nested or JSON."""
    t = duck_type.strip('"').upper()
    if t == "NULL":
        return "null"
    if t == "BOOLEAN":
        return "boolean"
    if t in _INTEGERS:
        return "integer"
    if t in ("FLOAT", "DOUBLE") or t.startswith("DECIMAL"):
        return "float"
    if t in ("VARCHAR", "BLOB") or t.startswith(_FROM_STRINGS):
        return "string"
    return None  # STRUCT, MAP, UNION, lists and arrays (``[]``), JSON (mixed types)


def _json_role_read(q: str, role: str, kind: str | None, duck_type: str) -> tuple[str, str, str]:
    """For a role column read as raw JSON: (test a value passes, expression reading it, its type)."""
    if role in TEXT_ROLES:  # values come minified: a JSON string, and nothing else, starts with '"'
        return f"starts_with({q}, '\"')", f"{q} ->> '$'", "VARCHAR"
    if kind == "string":
        return f"json_type({q}) = 'VARCHAR'", f"{q} ->> '$'", "VARCHAR"
    if kind == "integer":  # JSON calls integers past 64 bits DOUBLE
        big = ", 'DOUBLE'" if duck_type.upper() in ("HUGEINT", "UHUGEINT") else ""
        return f"json_type({q}) IN ('BIGINT', 'UBIGINT'{big})", f"CAST({q} AS {duck_type})", duck_type
    if kind == "float":
        return f"json_type({q}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')", f"CAST({q} AS DOUBLE)", "DOUBLE"
    if kind == "boolean":
        return f"json_type({q}) = 'BOOLEAN'", f"CAST({q} AS BOOLEAN)", "BOOLEAN"
    return "", "NULL", duck_type  # only nulls in the sample: a value sends the read back for full detection


def _role_expr(
    source: _Source, path: Path, role: str, col: str, duck_type: str,
    read_types: dict[str, str], csv_types: dict[str, str],
) -> tuple[str, str]:
    """SQL expression (and its type) giving role ``role`` from input column ``col``.

    Text roles must be strings and labels single strings, numbers or booleans of one type. jsonl
    columns are read as raw JSON and every value's JSON type is checked in DuckDB (a wrong one
    raises :data:`TYPE_CHECK_MARK`; the caller then finds the line); CSV role columns are read as
    written; Parquet and ``datasets`` columns are checked by their declared type.
    """
    q = quote_ident(col)
    name = _field_label(col, role)
    kind = _label_kind(duck_type) if role == "label" else None
    if role == "label" and kind is None:
        if source.fmt == "jsonl":  # the sample already holds an array/object or mixed types
            raise IngestError(find_jsonl_problem(path, {col: role}) or f"{path}: field {name} has type {duck_type}; "
                              "a label must be a single string, number or boolean")
        raise IngestError(f"{path}: field {name} has type {duck_type}; a label must be a single string, number or boolean")
    if source.fmt == "jsonl":
        read_types[col] = "JSON"  # the raw value, so that its JSON type is checked row by row
        test, out, out_type = _json_role_read(q, role, kind, duck_type)
        expected = "a string" if role in TEXT_ROLES else f"a single {kind}"
        wrong = sql_literal(f"{TYPE_CHECK_MARK}: field {name} holds a value that is not {expected}")
        when = f" WHEN {test} THEN {out}" if test else ""
        return f"CASE{when} WHEN {q} IS NULL OR {q} = 'null' THEN NULL ELSE error({wrong}) END", out_type
    if source.fmt == "csv":
        if role in TEXT_ROLES or kind == "string":
            csv_types[col] = "VARCHAR"
            return q, "VARCHAR"
        return q, duck_type
    if role in TEXT_ROLES and duck_type.strip('"').upper() not in ("VARCHAR", "NULL"):
        raise IngestError(
            f"{path}: field {name} has type {duck_type}; {role} must be a string (cast the column to string)"
        )
    return q, duck_type
