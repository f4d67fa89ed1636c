"""What one shard of a scoring run computes, as plain objects a worker process can receive.

A job holds everything a shard needs but the engine (the samples, the factors' name, the
solved CG queries, the clipping factors) and computes shard ``k`` with any
:class:`~attribution.engine.InfluenceEngine` on the same model, task and config: the engine of
this process for a local run, or one rebuilt in a Ray worker (:mod:`attribution.worker`). Both
run the same code on the same shard boundaries, so a distributed run writes the rows a local
one does.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .data import Samples
from .keys import digest
from .lengths import inverse_permutation
from .score_tables import module_parts_table


@dataclass
class ShardJob:
    """A sharded computation over ``n_items`` items, ``shard_size`` per shard, written to ``tables``."""

    n_items: int
    shard_size: int

    # the tables a shard writes, in order; the last one marks the shard as done
    tables: tuple[str, ...] = ("scores",)

    # whether the shard can be computed in another process (the job pickles, workers rebuild the engine)
    distributable: bool = True

    def bounds(self, k: int) -> tuple[int, int]:
        """Items ``lo:hi`` of shard ``k``."""
        return k * self.shard_size, min((k + 1) * self.shard_size, self.n_items)

    def size(self, k: int) -> int:
        """How many items shard ``k`` holds."""
        lo, hi = self.bounds(k)
        return hi - lo

    @property
    def n_shards(self) -> int:
        """How many shards the run has."""
        return -(-self.n_items // self.shard_size)

    def compute(self, engine: Any, k: int) -> dict[str, Any]:
        """Shard ``k``'s rows for each of ``tables`` (computed with ``engine``)."""
        raise NotImplementedError


@dataclass
class PairwiseShards(ShardJob):
    """Pairwise scores of training samples ``lo:hi`` against every query (sample-major rows)."""

    behaviour: str = ""
    factors: str = ""
    train: Samples | None = None
    queries: Samples | None = None
    clip: np.ndarray | None = None
    per_module: bool = False
    cg: Any = None  # the solved queries of ekfac_cg (attribution.engine_cg.CGRun), else None

    def __post_init__(self) -> None:
        self.tables = ("score_parts", "scores") if self.per_module else ("scores",)

    def compute(self, engine: Any, k: int) -> dict[str, Any]:
        lo, hi = self.bounds(k)
        train, queries = self.train, self.queries
        if self.cg is not None:
            parts = {"all_modules": engine._cg_scores(self.cg, train.data, range(lo, hi))}
        else:
            parts = engine._pairwise_block(self.factors, queries.data, train.data, list(range(lo, hi)),
                                           self.per_module)
        if self.clip is not None:  # scores are linear in the training gradient
            parts = {m: v * self.clip[lo:hi][None, :] for m, v in parts.items()}
        scores = sum(parts.values())  # (Q, n); the only part is "all_modules" unless per_module
        n, qids = hi - lo, np.asarray(queries.ids, dtype=object)
        sids = np.repeat(np.asarray(train.ids[lo:hi], dtype=object), len(qids))
        out: dict[str, Any] = {}
        if self.per_module:  # parts first: the scores shard marks the training shard as done
            out["score_parts"] = module_parts_table(self.behaviour, qids, sids, n, parts)
        out["scores"] = pa.table({
            "behaviour": pa.array([self.behaviour] * (n * len(qids)), pa.string()),
            "query_id": pa.array(np.tile(qids, n), pa.string()),
            "sample_id": pa.array(sids, pa.string()),
            "score": pa.array(scores.T.reshape(-1).astype(np.float32)),
        })
        return out


@dataclass
class SelfShards(ShardJob):
    """Self-influence of training samples ``lo:hi`` (method ``self_<strategy>``)."""

    factors: str = ""
    train: Samples | None = None
    clip: np.ndarray | None = None
    method: str = ""

    def __post_init__(self) -> None:
        self.tables = ("self_scores",)

    def compute(self, engine: Any, k: int) -> dict[str, Any]:
        lo, hi = self.bounds(k)
        train, analyzer = self.train, engine.analyzer
        name = f"tmp-self-{digest(self.factors, lo, hi, time.time_ns())}"
        order = engine._by_length(train.data, range(lo, hi))
        try:
            with quiet():
                analyzer.compute_self_scores(
                    scores_name=name, factors_name=self.factors, train_dataset=train.data, train_indices=order,
                    per_device_train_batch_size=engine.config.batch_size,
                    score_args=engine.config.score_arguments(), overwrite_output_dir=True,
                )
            values = analyzer.load_self_scores(name)["all_modules"].float().cpu().numpy()
            values = values[inverse_permutation(order, range(lo, hi))]
            if self.clip is not None:  # self-influence is quadratic in the gradient
                values = values * self.clip[lo:hi] ** 2
        finally:
            shutil.rmtree(analyzer.scores_output_dir(name), ignore_errors=True)
        return {"self_scores": {"sample_id": list(train.ids[lo:hi]), "method": [self.method] * (hi - lo),
                                "score": values.astype(np.float32)}}


@dataclass
class ClosureShards(ShardJob):
    """A job whose shards a function of this process computes (``fn(k, lo, hi)`` -> rows): local only."""

    fn: Callable[[int, int, int], Any] | None = None

    def __post_init__(self) -> None:
        self.distributable = False

    def compute(self, engine: Any, k: int) -> dict[str, Any]:
        return {self.tables[-1]: self.fn(k, *self.bounds(k))}


@contextlib.contextmanager
def quiet():
    """Silence kronfluence's per-call warnings (GradScaler FutureWarning) without hiding ours."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*GradScaler.*")
        yield


__all__ = ["ClosureShards", "PairwiseShards", "SelfShards", "ShardJob", "quiet"]
