"""Diagnosing bad ingest input: the first bad line, field or compressed stream, as one line.

When DuckDB rejects an input, these scans read it in Python to name the file and line at fault
(invalid UTF-8 or JSON, a row with the wrong field count, a role value of the wrong type, a
truncated gzip/zstd stream).
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Mapping
from pathlib import Path

from .ingest_files import compression_codec, csv_delimiter, open_input

# DuckDB raises this (via ``error()``) when a role field holds a value of the wrong type; the
# Python scans below then find the line. The text is also the fallback message.
TYPE_CHECK_MARK = "ingest type check"
TEXT_ROLES = ("text", "prompt", "completion")
_STREAM_ERRORS = (EOFError, zlib.error, OSError)  # gzip, and pyarrow's zstd (which raises OSError)


def compression_problem(path: Path, detail: str) -> str:
    """One-line message for a .gz/.zst input that is cut short or not compressed that way."""
    codec = compression_codec(path) or "compressed"
    return (
        f"{path}: truncated or corrupt {codec} stream ({detail}); the file is incomplete or not {codec}: "
        f"download or compress it again (`{codec} -t {path.name}` checks a file)"
    )


def _stream_problem(path: Path, exc: BaseException) -> str:
    """Message for an error met while decompressing ``path``; re-raises anything else."""
    if compression_codec(path) is None:
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
        if "gzip" in line.lower() or (compression_codec(path) == "zstd" and "frame descriptor" in line.lower()):
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


def field_label(column: str, role: str) -> str:
    """How messages name an input column that plays ``role`` (with its --ROLE-field option if renamed)."""
    return repr(column) if column == role else f"{column!r} (--{role}-field)"


def _value_problem(value: object, column: str, role: str, lineno: int, first_label: dict[str, tuple[str, int]]) -> str | None:
    """What is wrong with one role field's value on one line, or None."""
    if value is None:
        return None
    kind = _json_kind(value)
    name = field_label(column, role)
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
    if compression_codec(path):
        detail = _duckdb_stream_detail(path, exc)
        if detail:
            return compression_problem(path, detail)
    if fmt == "jsonl":
        return find_jsonl_problem(path, fields)
    if fmt == "csv":
        return find_csv_problem(path, csv_delimiter(path))
    return None


def explain(path: Path, fmt: str, exc: Exception) -> str:
    """One line for a read that failed without a diagnosis: DuckDB's first two lines of the error."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    msg = " ".join(lines[:2]) if lines else type(exc).__name__
    return f"{path}: could not read as {fmt}: {msg}"


def is_type_error(exc: Exception) -> bool:
    """Whether a failed read came from a column type guessed (or checked) wrongly, worth one re-read."""
    msg = str(exc).lower()
    keys = (
        "could not convert", "conversion error", "type mismatch", "sniff", "schema", "transform error",
        "failed to cast", TYPE_CHECK_MARK,
    )
    return any(k in msg for k in keys)
