"""The store's writer lock: one writing process at a time, with the holder named on conflict.

The lock is an ``fcntl.flock`` on ``<store>/.writer.lock``; the holder writes its pid, command line
and start time into the file so a blocked writer can say who holds it. The kernel drops the lock
when the holder dies, so a killed writer never leaves the store locked. Re-entrant within a process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import StoreLockedError

DEFAULT_TIMEOUT_S = float(os.environ.get("CURATION_LOCK_TIMEOUT", "60"))

_state_guard = threading.Lock()
_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth)
_thread_locks: dict[str, threading.RLock] = {}


def describe_holder(lock_path: Path) -> str:
    """Human description of whoever wrote the lock file last (pid, command, since)."""
    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not info:
        return "another process"
    return f"pid {info.get('pid')} ({info.get('cmd', '?')}) on {info.get('host', '?')} since {info.get('since', '?')}"


@contextlib.contextmanager
def writer_lock(store_root: Path, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block, waiting up to ``timeout_s``."""
    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    lock_path = Path(store_root) / ".writer.lock"
    key = str(lock_path)
    with _state_guard:
        tlock = _thread_locks.setdefault(key, threading.RLock())
    if not tlock.acquire(timeout=timeout_s if timeout_s >= 0 else -1):
        raise StoreLockedError(f"store {store_root} is in use by another thread of this process")
    try:
        with _state_guard:
            held = _held.get(key)
            if held:
                _held[key] = (held[0], held[1] + 1)
        if held:
            try:
                yield
            finally:
                with _state_guard:
                    fd, depth = _held[key]
                    _held[key] = (fd, depth - 1)
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = describe_holder(lock_path)
                    os.close(fd)
                    raise StoreLockedError(
                        f"store {store_root} is in use by {holder}; waited {timeout_s:g}s. "
                        "Wait for it to finish or raise CURATION_LOCK_TIMEOUT."
                    ) from None
                time.sleep(0.05)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cmd": " ".join(sys.argv)[:200],
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        with _state_guard:
            _held[key] = (fd, 1)
        try:
            yield
        finally:
            with _state_guard:
                del _held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
    finally:
        tlock.release()
