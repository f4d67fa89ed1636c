"""Helpers shared by tests: writing input files and generating rows."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as one JSON object per line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def arith_rows(n: int, offset: int = 0) -> list[dict]:
    """Deterministic prompt/completion rows with metadata columns."""
    return [
        {"prompt": f"{i} + {i % 7} =", "completion": f" {i + i % 7}", "op": "+", "idx": i}
        for i in range(offset, offset + n)
    ]
