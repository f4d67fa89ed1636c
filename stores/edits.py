"""Cut spans out of a text field of samples while they are copied into a curated dataset.

An *edit* removes the character span [start, end) of one field of one sample; what remains of
the field is joined by ``separator`` (pieces between removed spans, empty pieces dropped). An
edited sample's content changed, so it gets a new id, derived from its old id and its edits
(deterministic); the audit rows name both ids, each removed span and its text and reason.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from .errors import StoreError

EDIT_COLUMNS = ("sample_id", "field", "start", "end", "reason")


@dataclass(frozen=True)
class Edit:
    """Remove ``text[start:end]`` of ``field``; ``reason`` goes to the audit."""

    field: str
    start: int
    end: int
    reason: str


def edits_by_sample(table: pa.Table | None, fields: set[str]) -> dict[str, list[Edit]]:
    """Edits grouped by sample id, checked: known text fields, 0 <= start <= end."""
    if table is None:
        return {}
    missing = [c for c in EDIT_COLUMNS if c not in table.column_names]
    if missing:
        raise StoreError(f"edits lack column(s) {', '.join(missing)}; expected {', '.join(EDIT_COLUMNS)}")
    out: dict[str, list[Edit]] = defaultdict(list)
    for row in table.select(list(EDIT_COLUMNS)).to_pylist():
        if row["field"] not in fields:
            raise StoreError(f"edit of sample {row['sample_id']}: no text field {row['field']!r}; "
                             f"text fields: {', '.join(sorted(fields))}")
        if not 0 <= row["start"] <= row["end"]:
            raise StoreError(f"edit of sample {row['sample_id']}: bad span [{row['start']}, {row['end']})")
        out[row["sample_id"]].append(Edit(row["field"], int(row["start"]), int(row["end"]), row["reason"] or ""))
    return dict(out)


def cut(text: str, spans: list[tuple[int, int]], separator: str) -> str:
    """``text`` without the (possibly overlapping) ``spans``; the pieces left joined by ``separator``."""
    pieces, at = [], 0
    for start, end in sorted(spans):
        if start > at:
            pieces.append(text[at:start])
        at = max(at, end)
    if at < len(text):
        pieces.append(text[at:])
    return separator.join(p for p in pieces if p.strip())


def edited_id(sample_id: str, edits: list[Edit]) -> str:
    """The new id of an edited sample: a digest of its old id and its edits."""
    key = sample_id + "".join(f"|{e.field}:{e.start}:{e.end}" for e in sorted(edits, key=lambda e: (e.field, e.start)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def apply_edits(batch: pa.RecordBatch, edits: dict[str, list[Edit]], separator: str,
                audit: list[dict]) -> pa.RecordBatch:
    """``batch`` with its samples' edits applied (new ids for edited samples); audit rows appended."""
    if not edits:
        return batch
    ids = batch.column("sample_id").to_pylist()
    hit = [i for i, s in enumerate(ids) if s in edits]
    if not hit:
        return batch
    columns = {name: batch.column(name).to_pylist() for name in batch.schema.names}
    for i in hit:
        sid = ids[i]
        by_field: dict[str, list[Edit]] = defaultdict(list)
        for e in edits[sid]:
            by_field[e.field].append(e)
        new_id = edited_id(sid, edits[sid])
        for fld, es in by_field.items():
            text = columns[fld][i] or ""
            for e in es:
                audit.append({"sample_id": sid, "new_sample_id": new_id, "field": fld, "start": e.start,
                              "end": min(e.end, len(text)), "removed": text[e.start:e.end], "reason": e.reason})
            columns[fld][i] = cut(text, [(e.start, e.end) for e in es], separator)
        columns["sample_id"][i] = new_id
    return pa.RecordBatch.from_pydict(columns, schema=batch.schema)
