"""Ingest input files: telling their format, their size, and opening them (decompressing .gz/.zst)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from .errors import IngestError

FORMATS = ("jsonl", "parquet", "csv", "hf")


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


def input_bytes(path: Path) -> int:
    """Size of an input file, or of every file under an input folder, in bytes."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


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


def compression_codec(path: Path) -> str | None:
    """``gzip`` or ``zstd`` for a compressed input (by its suffix), else None."""
    name = path.name.lower()
    return "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None


def open_input(path: Path, text: bool = False) -> IO[Any]:
    """Open an input file for a Python-side scan, decompressing .gz and .zst (as DuckDB does).

    Text mode decodes UTF-8 with replacement and keeps line endings (for the csv module).
    """
    codec = compression_codec(path)
    if codec == "gzip":
        raw: IO[bytes] = gzip.open(path, "rb")
    elif codec == "zstd":
        raw = io.BufferedReader(_ArrowRaw(pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")))
    else:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") if text else raw
