"""Retraining for the LDS benchmark: one pool of worker processes, every retraining through the toolkit's
:class:`~curation.steps.validation_retrain.Retrainer` (helpers of ``bench/lds.py``).

A *draw* is what one LDS figure needs: ``subsets`` random halves of the training set (fraction 0.5)
each retrained with ``seeds`` seeds, drawn exactly as validation draws them for a plan with that
seed (:func:`curation.steps.validation_retrain.draw_masks`, retraining seeds
``retrain_seed(seed, 1, subset, repeat)``). Each retraining runs in a worker as
``Retrainer(store, ..., workers=0).measure([(members, seed)])`` on the benchmark's store folder, so
it lands in the store's retraining cache: :func:`curation.steps.validation.validate` run afterwards
with a plan of the same seed finds every retraining there and trains nothing (the benchmark's
pool, started once, replaces validation's own pool, which would be spawned anew for every call).
Results do not depend on the number of workers (one torch thread each). Jobs are handed to the
pool at once (:class:`Pending`), so the workers retrain while the main process scores.
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from _lds_data import load, recipe, train_full


@dataclass(frozen=True)
class Draw:
    """One draw of subsets: its seed (a validation plan's seed), size, and the retraining jobs."""

    seed: int
    subsets: int
    seeds: int
    n_train: int

    @property
    def masks(self) -> np.ndarray:
        from curation.steps.validation_retrain import draw_masks

        return draw_masks(self.n_train, self.subsets, 0.5, self.seed)

    def jobs(self) -> list[tuple[np.ndarray, int]]:
        """``(training indices, retraining seed)`` in the order validation lists them (subset-major)."""
        from curation.steps.validation_retrain import retrain_seed

        return [(np.flatnonzero(m), retrain_seed(self.seed, 1, i, r)) for i, m in enumerate(self.masks)
                for r in range(self.seeds)]


def derived_seed(*parts: int) -> int:
    """A seed derived from the run's seed and indices, so runs with other seeds share none."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def retraining_pool(workers: int) -> ProcessPoolExecutor | None:
    """Worker processes for retraining (spawned: no forked OpenMP state), or None for in-process."""
    if workers < 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init)


def _worker_init() -> None:
    import warnings

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)


class Pending:
    """Jobs handed to the pool at once (they run while this process does other work); :meth:`result` waits.

    Without a pool the jobs run in this process when :meth:`result` is called. ``result`` returns
    each job's value and the workers' CPU seconds (0 without a pool: they count as this process's).
    """

    def __init__(self, pool: ProcessPoolExecutor | None, fn, jobs: list):
        self.fn, self.jobs, self.pooled = fn, jobs, pool is not None
        workers = getattr(pool, "_max_workers", 1) or 1
        self._it = None if pool is None else pool.map(fn, jobs, chunksize=max(1, len(jobs) // (8 * workers)))

    def result(self) -> tuple[list, float]:
        done = list(self._it) if self.pooled else [self.fn(job) for job in self.jobs]
        return [v for v, _ in done], (sum(c for _, c in done) if self.pooled else 0.0)


def start_draws(store_root: str, kind: str, data_seed: int, epochs: int, lr: float | None, draws: list[Draw],
                pool: ProcessPoolExecutor | None) -> Pending:
    """Start every retraining of ``draws`` (``recipe(kind, epochs)`` on each subset of ``load(kind, data_seed)``,
    measured with the task's measurement, cached in the store at ``store_root``); see :func:`draw_results`."""
    return Pending(pool, _retrain_one, [(store_root, kind, data_seed, epochs, lr, members, seed)
                                        for d in draws for members, seed in d.jobs()])


def draw_results(pending: Pending, draws: list[Draw]) -> tuple[list[np.ndarray], float]:
    """Each draw's (subsets, queries) measurements, averaged over its seeds, and the workers' CPU seconds."""
    done, cpu = pending.result()
    values = np.stack(done) if done else np.zeros((0, 0))
    out, at = [], 0
    for d in draws:
        n = d.subsets * d.seeds
        out.append(values[at : at + n].reshape(d.subsets, d.seeds, -1).mean(axis=1))
        at += n
    return out, cpu


def measure_draws(store_root: str, kind: str, data_seed: int, epochs: int, lr: float | None, draws: list[Draw],
                  pool: ProcessPoolExecutor | None) -> tuple[list[np.ndarray], float]:
    """:func:`start_draws` then :func:`draw_results`: each draw's measurements and the workers' CPU seconds."""
    return draw_results(start_draws(store_root, kind, data_seed, epochs, lr, draws, pool), draws)


@functools.lru_cache(maxsize=16)
def _retrainer(store_root: str, kind: str, data_seed: int, epochs: int, lr: float | None):
    """The toolkit's Retrainer for this dataset, seed and recipe, in-process (one per worker and recipe)."""
    from _lds_methods import sample_ids

    import stores
    from attribution.data import Samples
    from curation.steps.validation_retrain import Retrainer

    split = load(kind, data_seed)
    ids, qids = sample_ids(kind, split)
    task = _measurement_task(kind)
    return Retrainer(stores.open(store_root), Samples(split.train, ids), Samples(split.queries, qids), task,
                     recipe=recipe(kind, epochs, split, lr), workers=0)


def _measurement_task(kind: str):
    """The task validation measures with (the LM's tracked modules play no part in a measurement)."""
    from _lds_data import task_for

    from attribution.tasks import CausalLMTask

    return CausalLMTask(tracked_modules=[]) if kind == "lm" else task_for(kind)


def _retrain_one(job: tuple) -> tuple[np.ndarray, float]:
    """(store, kind, data seed, epochs, lr, member indices, seed) -> (query measurements, CPU seconds)."""
    store_root, kind, data_seed, epochs, lr, members, seed = job
    cpu = time.process_time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # in-process (no pool): train on one thread, as the workers do
    try:
        record = _retrainer(store_root, kind, data_seed, epochs, lr).measure([(members, seed)])[0]
    finally:
        torch.set_num_threads(threads)
    return record.values, time.process_time() - cpu


def start_models(kind: str, data_seed: int, seeds: list[int], epochs: int, lr: float | None,
                 pool: ProcessPoolExecutor | None) -> Pending:
    """Start training models on the whole training split, one per seed; see :func:`model_results`."""
    return Pending(pool, _train_one, [(kind, data_seed, seed, epochs, lr) for seed in seeds])


def model_results(pending: Pending, kind: str, data_seed: int, epochs: int, lr: float | None
                  ) -> tuple[list[torch.nn.Module], float]:
    """The models of :func:`start_models` (eval mode) and the workers' CPU seconds."""
    done, cpu = pending.result()
    models = []
    split = load(kind, data_seed)
    for state in done:
        r = recipe(kind, epochs, split, lr)
        model = r.fresh(0)
        model.load_state_dict(state)
        models.append(model.eval())
    return models, cpu


def _train_one(job: tuple) -> tuple[dict, float]:
    kind, data_seed, seed, epochs, lr = job
    cpu = time.process_time()
    return train_full(kind, load(kind, data_seed), seed, epochs, lr).state_dict(), time.process_time() - cpu


__all__ = ["Draw", "Pending", "derived_seed", "draw_results", "measure_draws", "model_results", "retraining_pool",
           "start_draws", "start_models"]
