"""A small progress display for long store operations: rows done, rows/s, MB/s, elapsed."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class RowProgress:
    """Shows rows processed and throughput on stderr; silent when ``enabled`` is false."""

    def __init__(self, description: str, total_bytes: int | None = None, enabled: bool = True):
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.rows = 0
        self.start = time.perf_counter()
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=None) if total_bytes is None else TextColumn(""),
                TextColumn("{task.fields[rows]:,} rows"),
                TextColumn("{task.fields[rate]:,.0f} rows/s"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=None, rows=0, rate=0.0)
            self._progress.start()

    def advance(self, rows: int) -> None:
        """Record ``rows`` more rows done."""
        self.rows += rows
        if self._progress is not None:
            self._progress.update(self._task, rows=self.rows, rate=self.rate)

    @property
    def elapsed(self) -> float:
        """Seconds since the display started."""
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Rows per second so far."""
        return self.rows / max(self.elapsed, 1e-9)

    def close(self) -> None:
        """Stop the display (leaves the final line on screen)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
