"""Atomic file writes: write to a hidden temp file beside the target, fsync, then rename.

A killed writer leaves at most a temp file named ``.<name>.tmp-<pid>-<rand>``, which readers never
match (they only read registered paths) and :func:`remove_stale_temp_files` cleans up.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+$")


def temp_path_for(target: Path) -> Path:
    """A unique hidden temp path in the target's folder (same filesystem, so rename is atomic)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsynced and renamed onto ``target``.

    On any exception the temp file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_parquet_atomic(table: pa.Table, target: Path | str, **kwargs) -> int:
    """Write an Arrow table as Parquet at ``target`` atomically; returns the file size in bytes."""
    kwargs.setdefault("compression", "zstd")
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, **kwargs)
    return Path(target).stat().st_size


def write_parquet_atomic_duckdb(table: pa.Table, target: Path | str, compression: str = "snappy") -> int:
    """Like :func:`write_parquet_atomic`, but with DuckDB's Parquet writer.

    DuckDB reads its own files faster (smaller row groups, dictionary pages it can keep as
    dictionary vectors): GROUP BY and top-k over score tables run 15-25% faster than over
    pyarrow-written ones, and snappy scans faster than zstd (Q1 0.40 vs 0.70 s, Q2 1.70 vs
    1.94 s over 100M rows) for 16% more bytes.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.register("shard", table)
        with atomic_path(target) as tmp:
            path = str(tmp).replace("'", "''")
            con.execute(f"COPY shard TO '{path}' (FORMAT parquet, COMPRESSION {compression})")
    finally:
        con.close()
    return Path(target).stat().st_size


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(root: Path | str) -> int:
    """Delete temp files under ``root`` whose writing process is gone; returns how many."""
    removed = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            m = _TEMP_RE.match(name)
            if m and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed
