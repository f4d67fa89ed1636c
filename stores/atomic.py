"""Atomic file and folder writes: write to a hidden temp beside the target, fsync, then rename.

A killed writer leaves at most a temp file or folder named ``.<name>.tmp-<pid>-<rand>``, which
readers never match (they only read registered or final paths) and :func:`remove_stale_temp_files`
cleans up. So a file or folder exists at its final path only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
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
def atomic_path(target: Path | str, *, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsynced and renamed onto ``target``.

    On any exception the temp file is removed and ``target`` is left untouched. With
    ``exclusive`` the file is placed by a hard link, which fails when ``target`` exists: a file
    is then never replaced, and a second writer of the same target (a retried task) leaves the
    first one's file as it is.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if exclusive:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, target)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(target: Path | str, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to the file ``target`` atomically (temp file, fsync, rename); returns the path.

    For small text or JSON files (caches, manifests) that a later run trusts if they exist: a killed
    writer never leaves a truncated file at ``target``.
    """
    target = Path(target)
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding=encoding)
    return target


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every folder (deepest first), so the tree is durable."""
    folders = []
    for dirpath, _dirs, files in os.walk(root):
        folders.append(dirpath)
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for folder in reversed(folders):
        _fsync_dir(Path(folder))


def _replace_folder(src: Path, target: Path) -> None:
    """Rename the complete folder ``src`` onto ``target``; an existing ``target`` is moved aside
    first (to a hidden temp name) and deleted only after ``src`` is in place."""
    aside = None
    if target.is_symlink() or target.exists():
        if not target.is_dir() or target.is_symlink():
            raise FileExistsError(f"{target}: exists and is not a folder; refusing to replace it with a folder")
        aside = temp_path_for(target)
        os.rename(target, aside)
    try:
        os.rename(src, target)
    except BaseException:
        if aside is not None:
            with contextlib.suppress(OSError):
                os.rename(aside, target)  # put the old folder back
        raise
    _fsync_dir(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: Path | str) -> Iterator[Path]:
    """Yield an empty temp folder to fill; on success it replaces the folder ``target`` atomically.

    The temp folder is a hidden sibling of ``target`` (same filesystem). When the block ends
    without an exception, every file and folder in it is fsynced and it is renamed to ``target``;
    an existing ``target`` (with all its contents) is renamed aside first and deleted afterwards,
    never deleted before the new one is in place. On an exception the temp folder is deleted and
    ``target`` is untouched. So ``target`` exists only when complete: a killed save never leaves a
    half-written folder that a resumed run would trust (e.g. by checking for its config file).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        _replace_folder(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_parquet_atomic(table: pa.Table, target: Path | str, *, exclusive: bool = False, **kwargs) -> int:
    """Write an Arrow table as Parquet at ``target`` atomically; returns the file size in bytes.

    ``exclusive``: never replace an existing ``target`` (see :func:`atomic_path`).
    """
    kwargs.setdefault("compression", "zstd")
    with atomic_path(target, exclusive=exclusive) as tmp:
        pq.write_table(table, tmp, **kwargs)
    return Path(target).stat().st_size


def write_parquet_atomic_duckdb(
    table: pa.Table, target: Path | str, compression: str = "snappy", *, exclusive: bool = False
) -> int:
    """Like :func:`write_parquet_atomic`, but with DuckDB's Parquet writer.

    Used for the fixed-schema tables queried in bulk (snappy by default). bench/sql_scores.py
    compares it with zstd and with pyarrow's writer on the same score rows (``comparisons`` in
    bench/results/sql.json); only figures in that file are claimed.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.register("shard", table)
        with atomic_path(target, exclusive=exclusive) as tmp:
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
    """Delete temp files and temp folders (of :func:`atomic_folder`) under ``root`` whose writing
    process is gone; returns how many."""
    removed = 0
    for dirpath, dirs, files in os.walk(root):
        for name in list(dirs):
            m = _TEMP_RE.match(name)
            if m and not _pid_alive(int(m.group(1))):
                dirs.remove(name)  # do not walk into it
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                else:
                    shutil.rmtree(path, ignore_errors=True)
                removed += 1
        for name in files:
            m = _TEMP_RE.match(name)
            if m and not _pid_alive(int(m.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed
