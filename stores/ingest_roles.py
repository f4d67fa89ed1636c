"""Roles of input columns (text, prompt, completion, label): which column plays which, and the SQL reading it.

Text roles must be strings and labels single strings, numbers or booleans of one type; the
expressions built here check that as DuckDB reads the input.
"""

from __future__ import annotations

from pathlib import Path

from .errors import IngestError
from .ids import quote_ident
from .ingest_diagnosis import TEXT_ROLES, TYPE_CHECK_MARK, field_label, find_jsonl_problem
from .ingest_sources import InputSource
from .schema import sql_literal


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


def role_expr(
    source: InputSource, path: Path, role: str, col: str, duck_type: str,
    read_types: dict[str, str], csv_types: dict[str, str],
) -> tuple[str, str]:
    """SQL expression (and its type) giving role ``role`` from input column ``col``.

    Text roles must be strings and labels single strings, numbers or booleans of one type. jsonl
    columns are read as raw JSON and every value's JSON type is checked in DuckDB (a wrong one
    raises :data:`TYPE_CHECK_MARK`; the caller then finds the line); CSV role columns are read as
    written; Parquet and ``datasets`` columns are checked by their declared type.
    """
    q = quote_ident(col)
    name = field_label(col, role)
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
