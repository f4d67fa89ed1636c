"""Stable content ids for samples.

A sample's id is a hash of its *content fields* (the fields mapped to the roles text, prompt,
completion and label; or every field when only a label or no role is mapped, as in tabular data), keyed by role name rather than by
the source column name. So the same text gets the same id in any store, whatever the file's
column was called. The hash is computed in DuckDB during ingest and can be reproduced in Python
with :func:`sample_id`.

Canonical form: for each content field in sorted name order, ``name + US + value + RS`` where US
is chr(31), RS is chr(30) and value is the field rendered as text (strings as-is; integers in
decimal; floats in shortest round-trip form; booleans as ``true``/``false``; null as chr(0)).
The id is the first 32 hex digits (128 bits) of SHA-256 over the UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

ROLES = ("text", "prompt", "completion", "label")
_US, _RS, _NULL = chr(31), chr(30), chr(0)


def _render(value: object) -> str:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return value
    return str(value)


def canonical_content(fields: Mapping[str, object]) -> str:
    """The canonical string whose hash is the sample id (see module docstring)."""
    return "".join(f"{name}{_US}{_render(fields[name])}{_RS}" for name in sorted(fields))


def sample_id(fields: Mapping[str, object]) -> str:
    """Content id of one sample, e.g. ``sample_id({"prompt": "1+1=", "completion": "2"})``.

    Pass the sample's content fields under their role names (text, prompt, completion, label),
    or every field (label under its role name) for data without text roles. Same content gives the same id in any store.
    """
    return hashlib.sha256(canonical_content(fields).encode("utf-8")).hexdigest()[:32]


def quote_ident(name: str) -> str:
    """Quote a column or table name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def sql_sample_id(columns: Sequence[tuple[str, str]]) -> str:
    """DuckDB expression computing :func:`sample_id` from ``(name_in_hash, source_column)`` pairs."""
    parts = []
    for name, column in sorted(columns):
        lit = "'" + name.replace("'", "''") + "'"
        parts.append(
            f"{lit}, chr(31), coalesce(CAST({quote_ident(column)} AS VARCHAR), chr(0)), chr(30)"
        )
    return f"sha256(concat({', '.join(parts)}))[:32]"


def sql_dedup_key(sample_id_column: str = "sample_id") -> str:
    """DuckDB expression for a 64-bit integer prefix of a sample id, used to find duplicates."""
    return f"('0x' || {quote_ident(sample_id_column)}[:16])::UBIGINT"
