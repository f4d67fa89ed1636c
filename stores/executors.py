"""Where the heavy steps run: in this process (``local``) or as tasks on a Ray cluster (``ray``).

Every heavy step of the toolkit (scoring, ingest, filter evidence) is already a list of shards
with deterministic boundaries, each written atomically by :func:`stores.shards.write_shard`.
An executor runs a function ``work(k)`` for each shard index ``k`` that is not yet done and hands
each result back to the coordinator (this process), which alone writes the catalog. The store's
rules for many processes follow from that:

* a task computes its shard from the shard index alone, so a retried task writes the same rows;
* workers write shards with ``exclusive=True``: a file on disk is never replaced, so no shard is
  written twice, and a killed task leaves at most a hidden temp file;
* only the coordinator registers shards and finishes runs (the catalog stays single-writer);
* a killed run resumes by skipping the shards on disk; a killed worker's task is retried by Ray
  (``max_retries``).

This module is no scheduler: :class:`RayExecutor` submits one Ray task per shard and waits, and
Ray does the placement, retries and worker restarts. Ray is an optional extra
(``pip install 'curation[distributed]'``) imported only when a Ray executor is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import StoreError

EXECUTORS = ("local", "ray")


class ExecutorError(StoreError):
    """An executor could not run (Ray missing or unreachable) or a shard task failed for good.

    ``cause`` is the exception the task raised (when Ray could return it), for callers that
    turn a worker's error into their own message.
    """

    def __init__(self, message: str, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause


@dataclass
class LocalExecutor:
    """Run every shard in this process, one after the other (the default)."""

    name: str = field(default="local", init=False)

    def run(self, work: Callable[[int], Any], shards: Sequence[int], on_done: Callable[[int, Any], None]) -> None:
        """Call ``work(k)`` for each shard index and ``on_done(k, result)`` after each."""
        for k in shards:
            on_done(k, work(k))

    def describe(self) -> dict[str, Any]:
        """What a run records about where it ran."""
        return {"executor": "local"}


@dataclass
class RayExecutor:
    """Run each shard as a Ray task (``num_cpus=cpus_per_task``), at most ``workers`` at a time.

    ``address`` is an existing cluster (``auto``, ``ray://host:10001``, ``host:6379``); without
    one a local cluster of ``num_cpus`` (default: this machine's) is started in this process and
    kept for later calls. ``max_retries``: how often Ray re-runs a task whose worker died.
    Exceptions raised by a task are not retried (the same input fails the same way); they stop
    the step with an :class:`ExecutorError` naming the shard, and the shards already written
    stay for a resume.
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_task: float = 1.0
    max_retries: int = 3
    num_cpus: int | None = None
    name: str = field(default="ray", init=False)

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ExecutorError(f"--workers must be at least 1, got {self.workers}")
        if not self.cpus_per_task > 0:
            raise ExecutorError(f"cpus_per_task must be positive, got {self.cpus_per_task}")

    def ray(self) -> Any:
        """The ``ray`` module, connected to the cluster (started locally when no address is given)."""
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError("--executor ray needs Ray: pip install 'curation[distributed]'") from exc
        if not ray.is_initialized():
            # workers compute with this process's MKL reproducibility mode (see attribution/__init__.py)
            env = {"env_vars": {"MKL_CBWR": os.environ.get("MKL_CBWR", "AUTO,STRICT")}}
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False, runtime_env=env)
                else:
                    ray.init(num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False,
                             log_to_driver=False, object_store_memory=_object_store_bytes(), runtime_env=env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {self.address}" if self.address else "locally"
                raise ExecutorError(f"cannot start or reach a Ray cluster {where}: {exc}") from exc
        return ray

    def concurrency(self) -> int:
        """Tasks in flight at once: ``workers``, else as many as the cluster's CPUs hold."""
        if self.workers is not None:
            return self.workers
        cpus = self.ray().cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.cpus_per_task))

    def run(self, work: Callable[[int], Any], shards: Sequence[int], on_done: Callable[[int, Any], None]) -> None:
        """Run ``work(k)`` for each shard as a Ray task; ``on_done(k, result)`` in this process as each ends.

        ``work`` is shipped once through Ray's object store (it must pickle); results come back
        in completion order. A task that failed for good cancels the ones not yet finished.
        """
        ray = self.ray()
        remote = ray.remote(_call_shard).options(num_cpus=self.cpus_per_task, max_retries=self.max_retries,
                                                 retry_exceptions=False)
        work_ref = ray.put(work)
        queue, pending, limit = list(shards), {}, self.concurrency()
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    k = queue.pop(0)
                    pending[remote.remote(work_ref, k)] = k
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    k = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - a task's error, re-raised with its shard
                        raise ExecutorError(f"shard {k} failed on Ray: {_task_error(exc)}",
                                            cause=getattr(exc, "cause", None)) from exc
                    on_done(k, result)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def describe(self) -> dict[str, Any]:
        """What a run records about where it ran (the shards and results do not depend on it)."""
        return {"executor": "ray", "ray_address": self.address or "local", "workers": self.workers,
                "cpus_per_task": self.cpus_per_task}


def make_executor(name: str = "local", *, address: str | None = None, workers: int | None = None) -> Any:
    """The executor a CLI option or a pipeline config names: ``local`` or ``ray``."""
    if name == "local":
        if address or workers:
            raise ExecutorError("--ray-address and --workers apply to --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    raise ExecutorError(f"--executor {name!r}: expected one of {', '.join(EXECUTORS)}")


def _call_shard(work: Callable[[int], Any], k: int) -> Any:
    """The Ray task: one shard."""
    return work(k)


def _task_error(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    return f"{type(cause).__name__}: {cause}" if cause is not None else f"{type(exc).__name__}: {exc}"


def _object_store_bytes() -> int:
    """A local cluster's object store: a tenth of memory, 256 MiB to 2 GiB (shards pass through files)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 2**30
    return int(min(max(total // 10, 256 * 2**20), 2 * 2**30))


__all__ = ["EXECUTORS", "ExecutorError", "LocalExecutor", "RayExecutor", "make_executor"]
