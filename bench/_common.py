"""Shared helpers for the benchmark scripts: machine info, child-process RSS, tables, JSON.

Peak RSS of a child is read from the child's own ``/proc/self/status`` (``VmHWM``), not from
``getrusage``: on Linux a child's ``ru_maxrss`` (RUSAGE_SELF in the child, RUSAGE_CHILDREN or
``wait4`` in the parent) starts at the parent's peak RSS, because ``execve`` folds the RSS high-water
mark of the replaced address space into the process's ``maxrss``. A parent that has generated
data would therefore inflate every child's number. ``VmHWM`` belongs to the new address space
only. The parent also polls the child's RSS with psutil as a cross-check.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_DIR = BENCH_DIR / "work"


# ---------------------------------------------------------------------- machine info
def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


RESULT_PATHS = ("bench/results/",)  # benchmarks write here: their own output does not dirty the tree


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout


def _git_commit() -> dict[str, Any]:
    """HEAD and whether the tree differs from it (tracked or untracked files, results excepted)."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=all").splitlines()
                   if line.strip() and not line[3:].startswith(RESULT_PATHS)]
        return {"commit": commit, "dirty": bool(changed), "changed": changed[:20]}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "changed": []}


def add_provenance_args(parser: Any) -> None:
    """``--allow-dirty``: write results from a tree with uncommitted changes (recorded in the JSON)."""
    parser.add_argument("--allow-dirty", action="store_true",
                        help="write results even if the git tree has uncommitted changes (recorded)")


def require_clean_tree(allow_dirty: bool) -> dict[str, Any]:
    """Refuse to start a benchmark from a dirty tree unless ``allow_dirty``; returns the git state.

    Results must be reproducible from a commit: a figure from uncommitted code cannot be checked.
    """
    git = _git_commit()
    if git["dirty"] and not allow_dirty:
        raise SystemExit(
            "refusing to benchmark a dirty tree (uncommitted changes: " + ", ".join(git["changed"][:5])
            + "); commit first, or pass --allow-dirty (recorded in the result)")
    if git["commit"] is None and not allow_dirty:
        raise SystemExit("refusing to benchmark outside a git checkout; pass --allow-dirty (recorded)")
    return git


def machine_info() -> dict[str, Any]:
    """CPU, memory, OS, Python and package versions, git commit: recorded in every result file."""
    import psutil

    versions = {}
    for name in ("duckdb", "polars", "pyarrow", "numpy", "psutil", "curation"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_total_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "versions": versions,
        "git": _git_commit(),
        "hostname": platform.node(),
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------- memory
def proc_status_kb() -> dict[str, int]:
    """``VmHWM`` (peak RSS of this address space) and ``VmRSS`` of this process, in KiB."""
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def ru_maxrss_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _RssPoller(threading.Thread):
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int, interval: float = 0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_event.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
                self.samples += 1
            except psutil.Error:
                break
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def run_child(args: list[str], log_path: Path) -> dict[str, Any]:
    """Run ``python <args>`` as a child; it must print one JSON object as its last stdout line.

    Returns that object plus ``parent``: wall seconds, psutil-polled peak RSS (bytes) and the
    ``wait4`` ru_maxrss (KiB; inflated by this process's own peak, see the module docstring).
    """
    cmd = [sys.executable, *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        poller = _RssPoller(proc.pid)
        poller.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            poller.stop()
            raise
        wall = time.perf_counter() - t0
        poller.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = log_path.read_text()
    if proc.returncode != 0:
        raise RuntimeError(
            f"child failed (exit {proc.returncode}): {' '.join(cmd)}\n--- output ---\n{text[-4000:]}"
        )
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RuntimeError(
            f"child printed no JSON result: {' '.join(cmd)}\n{text[-4000:]}"
        ) from exc
    result["parent"] = {
        "wall_s": wall,
        "polled_peak_rss_bytes": poller.peak,
        "polled_samples": poller.samples,
        "wait4_ru_maxrss_kb": usage.ru_maxrss,
    }
    return result


# ---------------------------------------------------------------------- files
def dir_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (or of the file itself)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fresh_dir(path: Path) -> Path:
    """Empty folder at ``path`` (removed first if it exists)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def remove_work(path: Path, keep: bool) -> None:
    """Delete a script's work folder (and ``bench/work`` if it is then empty) unless ``keep``."""
    if keep:
        print(f"work data kept in {path}")
        return
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


def write_result(path: Path, result: dict[str, Any], allow_dirty: bool | None = None) -> None:
    """Write the result JSON atomically (temp file, fsync, rename), with its provenance checked.

    The tree must be clean and on the commit the run started from (``result["machine"]["git"]``),
    unless ``allow_dirty`` (default: ``result["args"]["allow_dirty"]``); the final state is
    recorded under ``provenance``.
    """
    from stores.atomic import atomic_write_text

    if allow_dirty is None:
        allow_dirty = bool(result.get("args", {}).get("allow_dirty", False))
    started = result.get("machine", {}).get("git", {})
    now = _git_commit()
    problems = []
    if started.get("dirty") or now["dirty"]:
        problems.append("the tree had uncommitted changes: " + ", ".join((started.get("changed") or now["changed"])[:5]))
    if started.get("commit") != now["commit"]:
        problems.append(f"HEAD moved during the run ({started.get('commit')} -> {now['commit']})")
    if problems and not allow_dirty:
        raise SystemExit(f"not writing {path}: " + "; ".join(problems) + " (rerun from a clean tree, or --allow-dirty)")
    result["provenance"] = {"commit": started.get("commit"), "clean": not problems, "allow_dirty": allow_dirty,
                            "problems": problems, "finished_at": now_iso()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")


def rel(path: Path) -> str:
    """Path relative to the repository root when possible (for readable JSON)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------- output
def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    """Print a table with rich (plain text layout, right-aligned numbers)."""
    from rich.console import Console
    from rich.table import Table

    print(title)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[fmt(v) for v in row])
    Console(width=max(100, shutil.get_terminal_size((120, 20)).columns)).print(table)
    print()


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        if abs(v) >= 0.001:
            return f"{v:.3f}"
        return f"{v:.2g}"
    return str(v)


def mb(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else n_bytes / 1e6


def mib_from_kb(kb: float | None) -> float | None:
    return None if kb is None else kb / 1024


def mean_sd(values) -> dict[str, float]:
    """Mean, sample sd (``sd``), min, max and count of a figure over seeds (curation.evaluation.mean_spread)."""
    from curation.evaluation import mean_spread

    d = mean_spread(values)
    return {"mean": d["mean"], "sd": d["std"], "min": d["min"], "max": d["max"], "n": d["n"]}


def merge_part(path: Path, key: str, part: dict[str, Any], benchmark: str) -> None:
    """Put one benchmark's part (with its own machine and provenance) under ``key`` of a shared result
    file, atomically, keeping the file's other parts (a fresh file is named ``benchmark``)."""
    from stores.atomic import atomic_write_text

    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        result = {"benchmark": benchmark}
    result[key] = part
    atomic_write_text(path, json.dumps(result, indent=2, default=str) + "\n")


def add_seed_args(parser: Any, out: Path, select_help: str = "seed the settings are chosen on") -> None:
    """``--seeds`` (reported, default 0,1,2), ``--select-seed`` (default 100), ``--out`` and the provenance flags."""
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--select-seed", type=int, default=100, help=select_help)
    parser.add_argument("--out", type=Path, default=out)
    add_provenance_args(parser)


def reported_seeds(args: Any) -> list[int]:
    """The reported seeds of :func:`add_seed_args`; refuses a selection seed among them."""
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.select_seed in seeds:
        raise SystemExit("--select-seed must not be a reported seed")
    return seeds
