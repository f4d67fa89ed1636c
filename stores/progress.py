"""Progress of long work on stderr: a live bar on a terminal, plain periodic lines otherwise.

One implementation for every long step (ingest, curate, scoring, training...). On a terminal it
draws a rich bar; when stderr is a file or a pipe (CI logs, ``nohup``, ``| tee``) a bar would be
invisible until the end, so it prints a plain line every ``interval`` seconds instead (and one at
the end). ``CURATION_PROGRESS`` overrides the choice: ``bar``, ``lines`` or ``off``;
``CURATION_PROGRESS_INTERVAL`` sets the seconds between plain lines (default 30).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

MODES = ("bar", "lines", "off")
DEFAULT_INTERVAL = 30.0


def progress_mode(enabled: bool = True, stream: TextIO | None = None) -> str:
    """The display to use: ``off`` when not ``enabled``, else ``CURATION_PROGRESS`` or by the stream.

    A terminal gets ``bar``; anything else ``lines``.
    """
    if not enabled:
        return "off"
    forced = os.environ.get("CURATION_PROGRESS", "").strip().lower()
    if forced:
        if forced not in MODES:
            raise ValueError(f"CURATION_PROGRESS={forced!r}: expected one of {', '.join(MODES)}")
        return forced
    stream = stream or sys.stderr
    return "bar" if getattr(stream, "isatty", lambda: False)() else "lines"


def _interval() -> float:
    raw = os.environ.get("CURATION_PROGRESS_INTERVAL", "")
    try:
        return float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        raise ValueError(f"CURATION_PROGRESS_INTERVAL={raw!r}: expected seconds, e.g. 30") from None


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class StepProgress:
    """Progress of one step counted in ``unit`` (rows, samples, steps...), optionally out of ``total``.

    Use as a context manager and call :meth:`advance`. ``done`` counts work finished before this
    display started (a resumed run); rates count only what this process does.
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "rows", done: int = 0,
                 enabled: bool = True, stream: TextIO | None = None, interval: float | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.count = done
        self._resumed = done
        self.mode = progress_mode(enabled, stream)
        self.stream = stream or sys.stderr
        self.interval = _interval() if interval is None else interval
        self.start = time.perf_counter()
        self._last_line = self.start
        self._bar: Progress | None = None
        if self.mode == "bar":
            columns = [TextColumn(f"[bold]{label}")]
            if total is not None:
                columns += [BarColumn(), TextColumn(f"{{task.completed:,}}/{{task.total:,}} {unit}")]
            else:
                columns += [TextColumn(f"{{task.completed:,}} {unit}")]
            columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
            if total is not None:
                columns.append(TimeRemainingColumn())
            self._bar = Progress(*columns, console=Console(file=self.stream), transient=False)
            self._task = self._bar.add_task(label, total=total, completed=done, rate="")
            self._bar.start()

    @property
    def elapsed(self) -> float:
        """Seconds since the display started."""
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        """Units per second done by this process so far."""
        return (self.count - self._resumed) / max(self.elapsed, 1e-9)

    def _rate_text(self) -> str:
        return f"{self.rate:,.0f} {self.unit}/s" if self.rate >= 10 else f"{self.rate:,.2f} {self.unit}/s"

    def line(self) -> str:
        """The plain progress line: label, count (of total, percent), rate, elapsed, time left."""
        done = f"{self.count:,}" + (f"/{self.total:,}" if self.total is not None else "") + f" {self.unit}"
        parts = [f"{self.label}: {done}"]
        if self.total:
            parts[0] += f" ({100 * self.count / self.total:.0f}%)"
        parts += [self._rate_text(), f"elapsed {_duration(self.elapsed)}"]
        if self.total is not None and self.rate > 0 and self.count < self.total:
            parts.append(f"left ~{_duration((self.total - self.count) / self.rate)}")
        return ", ".join(parts)

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units done."""
        self.count += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n, rate=self._rate_text())
        elif self.mode == "lines":
            now = time.perf_counter()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._print(self.line())

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """Stop the display; in line mode print the final line."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.mode == "lines":
            self._print(self.line() + " (done)" if self.total is None or self.count >= self.total else self.line())
            self.mode = "off"

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
