"""Retraining for validation: random subsets, the user's training recipe or command, and a cache in the store.

Validation (:mod:`curation.steps.validation`) measures how each query's loss moves when the model
is retrained on other data. This module does the retraining:

- :func:`draw_masks` draws the random subsets (fraction ``alpha`` of the training set); subset
  ``i`` depends only on ``(seed, i)``, so a plan with more subsets keeps the first ones;
- :class:`Retrainer` trains a fresh model on given training indices with a seed, by a
  :class:`~curation.actions.recipes.TrainingRecipe` (``fresh`` + ``fit``) or a
  :class:`TrainingCommand` (the user's own training script), and measures every query with the
  task's ``compute_measurement`` (a loss: negative margin, squared error, completion NLL);
- every retraining is cached in the store's artifacts (``artifacts/validation/retrains``) under a
  key of the recipe's (or command's) config, the training and query data (ids and contents), the
  task, the subset (its training indices) and the seed. Scoring more settings reuses them, and a
  killed validation resumes without redoing finished retrainings, with identical results (the
  cached measurements are exact: JSON floats round-trip).

The training-command contract (:class:`TrainingCommand`): a shell command template with the
placeholders ``{subset}`` (a text file with one training sample id per line, in training order),
``{out}`` (an empty folder that does not exist yet: write the model there) and ``{seed}``; the same
values are in the environment as ``CURATION_SUBSET``, ``CURATION_OUT`` and ``CURATION_SEED``. It must
exit with status 0 and leave in ``{out}`` a model the toolkit loads: ``MLP.save`` (config.json +
model.safetensors) for classifier/regression tasks, ``save_pretrained`` (safetensors) for causal
LMs. Each call should be deterministic for its subset and seed (else a resumed validation mixes
two draws of the training noise).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import data

import stores
from attribution.data import Samples
from attribution.gradients import collate
from attribution.keys import array_fingerprint, data_fingerprint, digest, ids_fingerprint
from stores.atomic import atomic_path, atomic_write_text

from ..errors import RequestError
from .validation_settings import ValidationRequestError

#: Bump when retraining or measuring changes meaning: old cache entries are then not reused.
CACHE_VERSION = 1


class RetrainError(RequestError):
    """A retraining failed (a training command exited with an error or wrote no loadable model)."""


def draw_mask(n_train: int, alpha: float, seed: int, index: int) -> np.ndarray:
    """Subset ``index``: ``round(alpha * n_train)`` training samples drawn without replacement (booleans).

    Depends only on ``(seed, index)``, so every plan with the same seed shares its first subsets.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be a fraction in (0, 1), got {alpha}")
    size = min(n_train - 1, max(1, round(alpha * n_train)))
    rng = np.random.default_rng([seed, 11, index])
    mask = np.zeros(n_train, dtype=bool)
    mask[rng.choice(n_train, size=size, replace=False)] = True
    return mask


def draw_masks(n_train: int, subsets: int, alpha: float, seed: int) -> np.ndarray:
    """``subsets`` random subsets of fraction ``alpha``, (subsets, n_train) booleans (:func:`draw_mask`)."""
    return np.stack([draw_mask(n_train, alpha, seed, i) for i in range(subsets)]) if subsets else \
        np.zeros((0, n_train), dtype=bool)


def retrain_seed(seed: int, *parts: int) -> int:
    """A training seed derived from the validation seed and indices (subset, repeat...): none shared by chance."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1)[0])


@torch.no_grad()
def query_measurements(model: nn.Module, task: Any, queries: data.Dataset) -> np.ndarray:
    """Each query's measurement under ``model``: ``task.compute_measurement`` on a batch of one, (queries,).

    The measurement is what the scores attribute (a loss), so a positive score predicts that
    removing the sample raises this number.
    """
    model.eval()
    return np.array([float(task.compute_measurement(collate(queries, [i]), model)) for i in range(len(queries))])


@dataclass
class TrainingCommand:
    """The user's own training, as a shell command (the contract is in the module doc).

    ``template`` holds ``{subset}``, ``{out}`` and ``{seed}``; ``kind`` says how to load what it
    writes: ``"mlp"`` (:func:`attribution.models.load_mlp`) or ``"causal-lm"``
    (:func:`attribution.models.load_causal_lm`). ``timeout_s`` bounds one call (None: no limit).
    """

    template: str
    kind: str = "mlp"
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if "{out}" not in self.template or "{subset}" not in self.template:
            raise ValidationRequestError(f"--train-command {self.template!r}: the command must name {{subset}} (the ids "
                               "file) and {out} (the folder to write the model to); {seed} is optional")
        if self.kind not in ("mlp", "causal-lm"):
            raise ValidationRequestError(f"training command model kind {self.kind!r}: expected mlp or causal-lm")

    def config(self) -> dict[str, Any]:
        """What identifies the command's models (part of the retraining cache key)."""
        return {"command": self.template, "loads": self.kind}

    def train(self, ids: Sequence[str], seed: int, workdir: Path) -> nn.Module:
        """Run the command on ``ids`` with ``seed`` in ``workdir`` and load the model it wrote."""
        from attribution.models import load_causal_lm, load_mlp

        subset, out = workdir / "subset.txt", workdir / "model"
        subset.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        values = {"subset": shlex.quote(str(subset)), "out": shlex.quote(str(out)), "seed": str(seed)}
        try:
            command = self.template.format(**values)
        except (KeyError, IndexError) as exc:
            raise ValidationRequestError(f"--train-command {self.template!r}: unknown placeholder {exc}; use {{subset}}, "
                               "{out} and {seed} (double other braces: {{ }})") from exc
        env = {**os.environ, "CURATION_SUBSET": str(subset), "CURATION_OUT": str(out), "CURATION_SEED": str(seed)}
        try:
            proc = subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RetrainError(f"training command timed out after {self.timeout_s} s: {command}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            raise RetrainError(f"training command exited with status {proc.returncode}: {command}"
                               + (f"\n  {chr(10).join(tail)}" if tail else ""))
        if not out.is_dir():
            raise RetrainError(f"training command wrote no model folder at {{out}} ({out}): {command}")
        try:
            return load_mlp(out) if self.kind == "mlp" else load_causal_lm(out)
        except (OSError, ValueError) as exc:
            raise RetrainError(f"training command's model at {out} does not load as {self.kind}: {exc}") from exc


@dataclass
class RetrainRecord:
    """One finished retraining: each query's measurement and the seconds it took (training + measuring)."""

    values: np.ndarray
    seconds: float
    reused: bool


def _train_and_measure(trainer: Any, task: Any, train: Samples, queries: data.Dataset, members: np.ndarray,
                       seed: int) -> tuple[list[float], float]:
    """Train a fresh model on ``train[members]`` with ``seed`` (recipe or command) and measure the queries."""
    t0 = time.perf_counter()
    if isinstance(trainer, TrainingCommand):
        with tempfile.TemporaryDirectory(prefix="curation-retrain-") as tmp:
            model = trainer.train([train.ids[i] for i in members], seed, Path(tmp))
    else:
        model = trainer.fit(trainer.fresh(seed), data.Subset(train.data, [int(i) for i in members]), seed)
    values = query_measurements(model, task, queries)
    return values.tolist(), time.perf_counter() - t0


_WORKER: dict[str, Any] = {}


def _worker_init(trainer: Any, task: Any, train: Samples, queries: data.Dataset) -> None:
    torch.set_num_threads(1)
    _WORKER.update(trainer=trainer, task=task, train=train, queries=queries)


def _worker_job(members: np.ndarray, seed: int) -> tuple[list[float], float]:
    w = _WORKER
    return _train_and_measure(w["trainer"], w["task"], w["train"], w["queries"], members, seed)


def cached_model_path(store: stores.Store, name: str) -> Path:
    """Where :meth:`Retrainer.full_models` keeps the weights file ``name`` (as a validation run records it)."""
    return store.artifact_dir("validation") / "retrains" / Path(name).name


class Retrainer:
    """Retrains on subsets of the training samples and measures the queries; every retraining is cached.

    Give exactly one of ``recipe`` (a :class:`~curation.actions.recipes.TrainingRecipe`) and
    ``command`` (a :class:`TrainingCommand`). ``workers`` > 0 retrains in that many processes
    (spawned, one torch thread each; commands run in threads); results do not depend on it.
    ``computed`` and ``reused`` count this object's retrainings (fresh and from the cache).
    """

    def __init__(self, store: stores.Store, train: Samples, queries: Samples, task: Any, *, recipe: Any = None,
                 command: TrainingCommand | None = None, workers: int = 0):
        if (recipe is None) == (command is None):
            raise ValidationRequestError("give a training recipe or a training command (exactly one) to retrain with")
        self.store, self.train, self.queries, self.task = store, train, queries, task
        self.trainer = command if command is not None else recipe
        self.workers = max(0, int(workers))
        self.cache_dir = store.artifact_dir("validation") / "retrains"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.base_key = digest(CACHE_VERSION, self.trainer.config(), type(task).__name__,
                               ids_fingerprint(train.ids), data_fingerprint(train.data),
                               ids_fingerprint(queries.ids), data_fingerprint(queries.data))
        self.computed = 0
        self.reused = 0

    def config(self) -> dict[str, Any]:
        """The recipe's or command's config, as recorded in the validation run."""
        return self.trainer.config()

    def key(self, members: np.ndarray, seed: int) -> str:
        """Cache key of one retraining: the recipe, data, queries, task, the subset's indices and the seed."""
        return digest(self.base_key, array_fingerprint(np.sort(np.asarray(members, dtype=np.int64))), int(seed))

    def cached(self, members: np.ndarray, seed: int) -> RetrainRecord | None:
        """The cached retraining on ``members`` with ``seed``, or None."""
        path = self.cache_dir / f"{self.key(members, seed)}.json"
        if not path.is_file():
            return None
        rec = json.loads(path.read_text())
        return RetrainRecord(np.asarray(rec["values"], dtype=np.float64), float(rec["seconds"]), True)

    def _save(self, members: np.ndarray, seed: int, values: list[float], seconds: float) -> None:
        rec = {"version": CACHE_VERSION, "seed": int(seed), "n_members": len(members), "values": values,
               "seconds": seconds, "trainer": self.trainer.config()}
        atomic_write_text(self.cache_dir / f"{self.key(members, seed)}.json", json.dumps(rec))

    def measure(self, jobs: Sequence[tuple[np.ndarray, int]], *, on_done: Callable[[int], None] | None = None,
                progress: Any = None) -> list[RetrainRecord]:
        """One record per job ``(training indices, seed)``, in job order: cached ones read, the others trained.

        Each fresh retraining is written to the cache as soon as it is done, then ``on_done(count)``
        is called with the number of fresh retrainings so far (tests interrupt there) and
        ``progress.advance()`` (a :class:`~stores.progress.StepProgress`) once per job.
        """
        records: dict[str, RetrainRecord] = {}
        todo: dict[str, tuple[np.ndarray, int]] = {}
        for members, seed in jobs:
            members = np.sort(np.asarray(members, dtype=np.int64))
            key = self.key(members, seed)
            if key in records or key in todo:
                continue
            rec = self.cached(members, seed)
            if rec is None:
                todo[key] = (members, int(seed))
            else:
                records[key] = rec
                self.reused += 1
                if progress is not None:
                    progress.advance()

        def finished(key: str, values: list[float], seconds: float) -> None:
            members, seed = todo[key]
            self._save(members, seed, values, seconds)
            records[key] = RetrainRecord(np.asarray(values, dtype=np.float64), seconds, False)
            self.computed += 1
            if progress is not None:
                progress.advance()
            if on_done is not None:
                on_done(self.computed)

        if todo and self.workers and len(todo) > 1:
            with self._pool() as pool:
                futures = {pool.submit(*self._job(m, s)): k for k, (m, s) in todo.items()}
                try:
                    for fut in as_completed(futures):
                        finished(futures[fut], *fut.result())
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        else:
            for key, (members, seed) in todo.items():
                finished(key, *_train_and_measure(self.trainer, self.task, self.train, self.queries.data,
                                                  members, seed))
        return [records[self.key(np.sort(np.asarray(m, dtype=np.int64)), s)] for m, s in jobs]

    def full_models(self, count: int, seed: int,
                    skeleton: Callable[[int], nn.Module] | None = None) -> list[tuple[nn.Module, Path]]:
        """``count`` models trained on every training sample, with seeds of their own (an ensemble's members).

        Seeds derive from ``seed`` (``retrain_seed(seed, 4, j)``), never the scored model's. Each
        model's weights are cached in the store as safetensors (returned with the model: whoever
        scores the ensemble later loads them into a model of the same architecture) and a rerun
        loads them into ``skeleton(seed)`` (default: the recipe's fresh model; a training command
        needs ``skeleton``, else it trains again). Returned in eval mode.
        """
        from safetensors.torch import load_model, save_model

        everyone = np.arange(len(self.train))
        make = skeleton if skeleton is not None else (
            None if isinstance(self.trainer, TrainingCommand) else self.trainer.fresh)
        out = []
        for j in range(count):
            s = retrain_seed(seed, 4, j)
            path = self.cache_dir / f"model-{self.key(everyone, s)}.safetensors"
            if path.is_file() and make is not None:
                model = make(s)
                load_model(model, str(path))
            else:
                if isinstance(self.trainer, TrainingCommand):
                    with tempfile.TemporaryDirectory(prefix="curation-ensemble-") as tmp:
                        model = self.trainer.train(list(self.train.ids), s, Path(tmp))
                else:
                    model = self.trainer.fit(self.trainer.fresh(s), self.train.data, s)
                with atomic_path(path) as tmp_path:
                    save_model(model, str(tmp_path))
            out.append((model.eval(), path))
        return out

    def _job(self, members: np.ndarray, seed: int) -> tuple:
        if isinstance(self.trainer, TrainingCommand):
            return (_train_and_measure, self.trainer, self.task, self.train, self.queries.data, members, seed)
        return (_worker_job, members, seed)

    @contextlib.contextmanager
    def _pool(self):
        pool: Executor
        if isinstance(self.trainer, TrainingCommand):
            pool = ThreadPoolExecutor(max_workers=self.workers)
        else:
            import multiprocessing

            pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_worker_init,
                                       initargs=(self.trainer, self.task, self.train, self.queries.data))
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["Retrainer", "cached_model_path", "RetrainError", "RetrainRecord", "TrainingCommand", "draw_mask", "draw_masks",
           "query_measurements", "retrain_seed"]
