"""The influence engine: fit factors once, then score training samples shard by shard into the store.

Scores follow the toolkit's sign convention (see :mod:`attribution.tasks`): positive means
training on the sample lowered the query's loss, i.e. made the behaviour more likely.

Training samples and queries come as :class:`~attribution.data.Samples` (a dataset, its sample
ids and its store dataset name). Factors are cached in the store under a key made of the model's
weights, the training data's ids and the factor arguments (:mod:`attribution.keys`), so a second
call with the same inputs reuses them and a changed model never reuses stale ones. Every scoring
call is a sharded run (:meth:`InfluenceEngine._sharded_run`): each shard is written as a Parquet
shard of the run as soon as it exists, and a killed run resumed with the same inputs computes
only the missing shards and gives identical scores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from kronfluence.analyzer import Analyzer, prepare_model
from kronfluence.module.tracked_module import TrackedModule
from kronfluence.utils.dataset import DataLoaderKwargs
from torch import nn
from torch.utils import data

import stores
from stores.executors import LocalExecutor
from stores.progress import StepProgress

from .candidates import Factors
from .candidates import candidate_scores as candidate_pair_scores
from .config import EngineConfig, field_help
from .damping import damping_scale
from .data import Samples
from .engine_cg import EngineCG
from .factor_partitions import fit_partitioned
from .keys import array_fingerprint, data_fingerprint, digest, ids_fingerprint, model_fingerprint
from .lengths import inverse_permutation, length_sorted, sample_lengths, trim_padding_collate
from .outliers import (
    DEFAULT_OUTLIER_RATIO,
    GradientOutliers,
    find_gradient_outliers,
    gradient_norms,
)
from .score_tables import score_matrix, token_parts_table
from .shard_jobs import ClosureShards, PairwiseShards, SelfShards, ShardJob, quiet
from .strategies import STRATEGIES, factor_strategy
from .tasks import InfluenceTask
from .worker import EngineSpec, ShardWork, save_model_artifact

logging.getLogger("kronfluence").setLevel(logging.WARNING)


@dataclass
class ScoreRun:
    """What a scoring call did: its run id and how many shards it computed versus reused."""

    run_id: str
    shards_total: int
    shards_computed: int
    seconds: float


class InfluenceEngine(EngineCG):
    """Influence scores of training samples against behaviours, written to a store.

    ``model`` is prepared for kronfluence in place (its tracked modules are wrapped by modules
    whose forward is unchanged; preparing twice is avoided); ``task`` says how to compute losses
    and measurements; ``record`` is added to every run's config (not to run ids). ``executor``
    (:mod:`stores.executors`) runs the shards of pairwise and self-influence runs: in this
    process by default, or as Ray tasks (same shards, same rows; the run id does not depend on it).
    """

    def __init__(
        self, store: stores.Store, model: nn.Module, task: InfluenceTask, config: EngineConfig | None = None,
        record: dict[str, Any] | None = None, executor: Any = None,
    ):
        self.store = store
        self.executor = executor or LocalExecutor()
        self._spec: EngineSpec | None = None
        self.record = dict(record or {})  # added to every run's config (e.g. how ``auto`` chose the strategy)
        self.task = task
        self.config = config or EngineConfig()
        self.model = model.to(self.config.device).eval()
        self.model_fingerprint = model_fingerprint(self.model)
        if not any(isinstance(m, TrackedModule) for m in self.model.modules()):
            self.model = prepare_model(self.model, task)  # wraps tracked modules in place
        self.output_dir = store.artifact_dir("kronfluence")
        self.analyzer = Analyzer(
            analysis_name=f"model-{self.model_fingerprint}",
            model=self.model,
            task=task,
            cpu=self.config.device == "cpu",
            disable_tqdm=True,
            output_dir=str(self.output_dir),
        )
        self._loader = DataLoaderKwargs(collate_fn=trim_padding_collate if self.config.pad_per_batch else None)
        self.analyzer.set_dataloader_kwargs(self._loader)
        self._norms: dict[tuple[str, str], np.ndarray] = {}

    # ------------------------------------------------------------------ factors
    def factors_key(self, train: Samples) -> str:
        """Cache key of the factors: model weights, task and tracked modules, data, arguments."""
        args = asdict(self.config)
        relevant = {k: args[k] for k in ("use_empirical_fisher", "covariance_max_examples", "seed", "pad_per_batch")}
        if self.config.factor_partitions > 1:  # partitions draw their own labels: other factors
            relevant["factor_partitions"] = self.config.factor_partitions
        relevant["strategy"] = factor_strategy(self.config.strategy)  # EK-FAC+CG shares EK-FAC's factors
        task = [type(self.task).__name__, self.task.get_influence_tracked_modules()]
        data_key = [ids_fingerprint(train.ids), data_fingerprint(train.data)]
        return f"{relevant['strategy']}-{digest(self.model_fingerprint, task, data_key, relevant)}"

    def fit_factors(self, train: Samples) -> tuple[str, bool]:
        """Fit (or reuse) the factors on the training samples; returns (factors name, reused?)."""
        name = self.factors_key(train)
        final = self.analyzer.factors_output_dir(name)
        if final.is_dir():
            return name, True
        tmp_name = f"{name}.tmp"
        n_fit = len(train) if self.config.covariance_max_examples is None else min(len(train), self.config.covariance_max_examples)
        order = self._by_length(train.data, range(n_fit)) + list(range(n_fit, len(train)))  # same samples fitted
        fitted = train.data if order == list(range(len(train))) else data.Subset(train.data, order)
        if self.config.factor_partitions > 1:  # partitions as tasks; a killed fit resumes the missing ones
            fit_partitioned(self, tmp_name, fitted)
            self.analyzer.factors_output_dir(tmp_name).rename(final)
            return name, False
        shutil.rmtree(self.analyzer.factors_output_dir(tmp_name), ignore_errors=True)
        torch.manual_seed(self.config.seed)
        with quiet():
            self.analyzer.fit_all_factors(
                factors_name=tmp_name,
                dataset=fitted,
                per_device_batch_size=self.config.batch_size,
                factor_args=self.config.factor_arguments(),
                overwrite_output_dir=True,
            )
        self.analyzer.factors_output_dir(tmp_name).rename(final)  # the cache entry appears whole
        return name, False

    def load_factors(self, train: Samples) -> Factors:
        """The factors fitted (or reused) on the training samples, loaded (for candidate scoring)."""
        name, _ = self.fit_factors(train)
        return self.analyzer.load_all_factors(name)

    def gradient_outliers(self, train: Samples, ratio: float | None = None) -> GradientOutliers:
        """Training samples whose gradient norm is above ``ratio`` x the median (see :mod:`attribution.outliers`).

        ``ratio`` defaults to the config's ``clip_gradient_ratio``, else 10. The norms are computed
        once per training set and engine (one forward/backward pass) and kept.
        """
        ratio = ratio if ratio is not None else (self.config.clip_gradient_ratio or DEFAULT_OUTLIER_RATIO)
        key = (ids_fingerprint(train.ids), data_fingerprint(train.data))
        if key not in self._norms:
            self._norms[key] = gradient_norms(self.model, self.task, train.data, batch_size=self.config.batch_size,
                                              device=self.config.device)
        return find_gradient_outliers(self._norms[key], train.ids, ratio)

    def _clip_scale(self, train: Samples) -> tuple[np.ndarray | None, dict[str, Any]]:
        """Each training sample's gradient clipping factor (None without clipping) and what to record."""
        if self.config.clip_gradient_ratio is None:
            return None, {}
        found = self.gradient_outliers(train)
        return found.scale, {"gradient_outliers": found.summary()}

    # ------------------------------------------------------------------ pairwise
    def run_id_for(self, kind: str, *parts: Any) -> str:
        """A deterministic run id, so re-running the same request resumes the same run."""
        task = [type(self.task).__name__, self.task.get_influence_tracked_modules()]
        return f"{kind}-{digest(self.model_fingerprint, task, self.config.identity(), *parts)}"

    def pairwise_scores(
        self,
        behaviour: str,
        train: Samples,
        queries: Samples,
        *,
        per_module: bool = False,
        candidates: np.ndarray | None = None,
        prefilter: dict[str, Any] | None = None,
        progress: bool = False,
        on_shard: Callable[[int], None] | None = None,
    ) -> ScoreRun:
        """Score every training sample against every query of ``behaviour`` into ``scores``.

        The run's dataset is ``train.dataset``. With ``per_module`` each score's split over the
        tracked modules also goes to ``score_parts`` (one row per module; the parts sum to the
        score). Resumes an interrupted run with the same inputs, computing only missing shards.
        ``on_shard`` is called after each shard is written (used by tests to interrupt).

        ``candidates`` (queries x K training indices, e.g. from :mod:`attribution.prefilter`)
        restricts scoring to each query's candidates: only those pairs are computed and written
        (exactly the values full scoring gives them, at a cost of queries x K instead of queries
        x N); ``prefilter`` describes how they were picked and is recorded in the run's config.
        """
        if candidates is not None:
            return self._candidate_pairwise(behaviour, train, queries, candidates, prefilter or {},
                                            progress=progress, on_shard=on_shard)
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train)
        run_id = self.run_id_for("attribute", behaviour, *_pair_identity(train, queries),
                                 *(["per_module"] if per_module else []))
        clip, clipped = self._clip_scale(train)
        cg = None if run_finished(self.store, run_id) else self._cg_solution(factors, train, queries.data, per_module)
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train),
                                  n_queries=len(queries), train_fingerprint=ids_fingerprint(train.ids),
                                  query_fingerprint=ids_fingerprint(queries.ids), per_module=per_module, **clipped,
                                  **({"conjugate_gradient": cg.summary()} if cg is not None else {}))
        job = PairwiseShards(len(train), self.config.shard_size, behaviour=behaviour, factors=factors, train=train,
                             queries=queries, clip=clip, per_module=per_module, cg=cg)
        return self._sharded_run("attribute", run_id, config, job, "pairwise scores", dataset=train.dataset,
                                 progress=progress, on_shard=on_shard, started=t0)

    def candidate_scores(
        self, train: Samples, queries: Samples, candidates: np.ndarray | Sequence[Sequence[int]], *,
        max_query_bytes: int = 2**31, max_cache_bytes: int = 2**31, progress: bool = False,
        query_factors: list | None = None,
    ) -> np.ndarray:
        """Scores of each query's candidate training samples, (queries x K), not written to the store.

        :func:`attribution.candidates.candidate_scores` with this engine's model, task, factors,
        damping, batch sizes and device: the values equal :meth:`pairwise_scores` at the
        candidate pairs (the caller decides what to keep). ``query_factors``: the queries'
        :func:`~attribution.candidates.measurement_factors` if the caller has them.
        """
        with damping_scale(self.config.damping_scale):
            return self._candidate_values(self.load_factors(train), train.data, queries.data, candidates,
                                          clip=self._clip_scale(train)[0], max_query_bytes=max_query_bytes,
                                          max_cache_bytes=max_cache_bytes, progress=progress,
                                          query_factors=query_factors)

    def _candidate_values(
        self, factors: Factors, train: data.Dataset, queries: data.Dataset,
        candidates: np.ndarray | Sequence[Sequence[int]], *, clip: np.ndarray | None = None,
        max_query_bytes: int = 2**31, max_cache_bytes: int = 2**31, progress: bool = False,
        query_factors: list | None = None,
    ) -> np.ndarray:
        cfg = self.config
        if cfg.strategy == "ekfac_cg":
            return self._cg_candidate_values(factors, train, queries, candidates, clip)
        values = candidate_pair_scores(
            self.model, self.task, factors, cfg.strategy, cfg.damping, queries, train, candidates,
            batch_size=cfg.batch_size, query_batch_size=cfg.query_batch_size, max_query_bytes=max_query_bytes,
            max_cache_bytes=max_cache_bytes, device=cfg.device, progress=progress, pad_per_batch=cfg.pad_per_batch,
            query_factors=query_factors,
        )
        if clip is not None:
            values = values * clip[np.asarray(candidates, dtype=np.int64)]
        return values

    def _candidate_pairwise(
        self, behaviour: str, train: Samples, queries: Samples, candidates: np.ndarray,
        prefilter: dict[str, Any], *, progress: bool, on_shard: Callable[[int], None] | None,
    ) -> ScoreRun:
        """Pairwise scores of each query against its candidates only; a shard per block of queries."""
        if self.config.low_rank is not None:
            raise ValueError("low_rank does not apply to candidate scoring, which is exact for each pair; unset one")
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(queries):
            raise ValueError(f"candidates must be (queries x K) = ({len(queries)} x K), got shape {cand.shape}")
        if cand.size and (cand.min() < 0 or cand.max() >= len(train)):
            raise ValueError(f"candidate indices must be in [0, {len(train)}), got [{cand.min()}, {cand.max()}]")
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train)
        cand_fp = array_fingerprint(cand)
        run_id = self.run_id_for("attribute", behaviour, *_pair_identity(train, queries), "candidates", cand_fp)
        clip, clipped = self._clip_scale(train)
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train),
                                  n_queries=len(queries), train_fingerprint=ids_fingerprint(train.ids),
                                  query_fingerprint=ids_fingerprint(queries.ids),
                                  prefilter={"k": int(cand.shape[1]), "candidates_fingerprint": cand_fp, **prefilter},
                                  note="scores exist only for each query's candidates", **clipped)
        tids, qids = np.asarray(train.ids, dtype=object), np.asarray(queries.ids, dtype=object)
        loaded: list[Factors] = []  # loaded at the first shard computed, not for a finished run

        def shard(k: int, lo: int, hi: int) -> pa.Table:
            if not loaded:
                loaded.append(self.analyzer.load_all_factors(factors))
            values = self._candidate_values(loaded[0], train.data, data.Subset(queries.data, range(lo, hi)),
                                            cand[lo:hi], clip=clip, progress=progress)
            q_idx = np.repeat(np.arange(lo, hi), cand.shape[1])
            t_idx = cand[lo:hi].reshape(-1)
            order = np.lexsort((q_idx, t_idx))  # sample-major, like full runs
            return pa.table({
                "behaviour": pa.array([behaviour] * len(order), pa.string()),
                "query_id": pa.array(qids[q_idx[order]], pa.string()),
                "sample_id": pa.array(tids[t_idx[order]], pa.string()),
                "score": pa.array(values.reshape(-1)[order].astype(np.float32)),
            })

        # a shard is a block of queries; progress is shown per shard by candidate scoring itself
        return self._sharded_run("attribute", run_id, config, ClosureShards(len(queries), self.config.shard_size,
                                 fn=shard), dataset=train.dataset, on_shard=on_shard, started=t0)

    def _pairwise_block(
        self, factors: str, queries: data.Dataset, train: data.Dataset, indices: list[int],
        per_module: bool = False, per_token: bool = False,
    ) -> dict[str, np.ndarray]:
        """kronfluence pairwise scores of the queries against ``indices``: module name -> array."""
        name = f"tmp-{digest(factors, indices[0], indices[-1], time.time_ns())}"
        # per-token scores keep every position: their shape must agree across batches
        t_order = indices if per_token else self._by_length(train, indices)
        q_order = list(range(len(queries))) if per_token else self._by_length(queries, range(len(queries)))
        try:
            with quiet():
                self.analyzer.compute_pairwise_scores(
                    scores_name=name,
                    factors_name=factors,
                    query_dataset=queries,
                    train_dataset=train,
                    query_indices=q_order,
                    train_indices=t_order,
                    dataloader_kwargs=DataLoaderKwargs() if per_token else self._loader,
                    per_device_query_batch_size=self.config.query_batch_size,
                    per_device_train_batch_size=self.config.batch_size,
                    score_args=self.config.score_arguments(per_module=per_module, per_token=per_token),
                    overwrite_output_dir=True,
                )
            back_t, back_q = inverse_permutation(t_order, indices), inverse_permutation(q_order, range(len(queries)))
            return {k: v.float().cpu().numpy()[back_q][:, back_t]
                    for k, v in self.analyzer.load_pairwise_scores(name).items()}
        finally:
            shutil.rmtree(self.analyzer.scores_output_dir(name), ignore_errors=True)

    # ------------------------------------------------------------------ per-token
    def token_scores(
        self, behaviour: str, train: Samples, queries: Samples, sample_ids: Sequence[str], *, tokenizer: Any = None,
    ) -> ScoreRun:
        """Per-token decomposition of the scores of ``sample_ids`` (a few training samples) into ``score_parts``.

        One row per (query, sample, non-padding token of the sample): ``position`` and, with a
        tokenizer, the ``token`` text. A sample's token scores sum to its pairwise score, so they
        show *which tokens* made a sample influential (for reports). It costs a sequence length
        times more output than pairwise scores: meant for the top samples of a behaviour, not all.
        """
        where = {sid: i for i, sid in enumerate(train.ids)}
        missing = [s for s in sample_ids if s not in where]
        if missing:
            raise ValueError(f"{len(missing)} sample ids are not in the training ids, e.g. {missing[0]}")
        indices = [where[s] for s in sample_ids]
        self._no_cg("per-token scores")
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train)
        run_id = self.run_id_for("token-scores", behaviour, *_pair_identity(train, queries), ids_fingerprint(sample_ids))
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train),
                                  n_queries=len(queries), sample_ids=list(sample_ids), per_token=True)

        def shard(k: int, lo: int, hi: int) -> pa.Table:  # one shard: every chosen sample
            per_token = self._pairwise_block(factors, queries.data, train.data, indices, per_token=True)["all_modules"]
            return token_parts_table(behaviour, per_token, train.data, indices, sample_ids, queries.ids, tokenizer)

        return self._sharded_run("token-scores", run_id, config,
                                 ClosureShards(1, 1, ("score_parts",), fn=shard), dataset=train.dataset, started=t0)

    # ------------------------------------------------------------------ self-influence
    def self_scores(self, train: Samples, *, progress: bool = False) -> ScoreRun:
        """Self-influence of every training sample into ``self_scores`` (method ``self_<strategy>``)."""
        self._no_cg("self-influence (one conjugate-gradient solve per training sample)")
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train)
        run_id = self.run_id_for("self-influence", ids_fingerprint(train.ids), data_fingerprint(train.data))
        clip, clipped = self._clip_scale(train)
        config = self._run_config(factors=factors, n_train=len(train), train_fingerprint=ids_fingerprint(train.ids),
                                  **clipped)
        job = SelfShards(len(train), self.config.shard_size, factors=factors, train=train, clip=clip,
                         method=f"self_{self.config.strategy}")
        return self._sharded_run("self-influence", run_id, config, job, "self-influence", dataset=train.dataset,
                                 progress=progress, started=t0)

    def _no_cg(self, what: str) -> None:
        if self.config.strategy == "ekfac_cg":
            raise ValueError(f"{what} are not available with strategy ekfac_cg: use ekfac for them")

    def _by_length(self, dataset: data.Dataset, indices: Sequence[int] | range) -> list[int]:
        """``indices`` ordered by sample length when batches are trimmed per batch, else as given."""
        indices = list(indices)
        if not self.config.pad_per_batch or len(indices) < 2:
            return indices
        return length_sorted(indices, sample_lengths(dataset))

    # ------------------------------------------------------------------ the sharded run
    def _sharded_run(
        self,
        kind: str,
        run_id: str,
        config: dict[str, Any],
        job: ShardJob,
        progress_label: str | None = None,
        *,
        dataset: str | None = None,
        progress: bool = False,
        on_shard: Callable[[int], None] | None = None,
        started: float | None = None,
    ) -> ScoreRun:
        """The skeleton of every scoring call: a resumable run of ``job.n_shards`` shards.

        A finished run with ``run_id`` is returned as is. Otherwise the run (``kind``, ``config``,
        ``dataset``) is opened or resumed in the store, and each shard ``k`` not yet written (its
        last table not on disk) is computed by ``job.compute`` and written at once, here or by
        the executor's workers (which write their own shards; this process registers each as it
        ends). ``on_shard(k)`` follows each shard. ``progress_label`` names a progress display
        over the items (none without one).
        """
        started = time.perf_counter() if started is None else started
        if run_finished(self.store, run_id):
            return ScoreRun(run_id, job.n_shards, 0, time.perf_counter() - started)
        executor = self.executor if job.distributable else LocalExecutor()
        config = {**config, **executor.describe()}
        with self.store.run(kind, config=config, seed=self.config.seed, dataset=dataset,
                            model_fingerprint=self.model_fingerprint, run_id=run_id):
            done = self.store.completed_shards(job.tables[-1], run_id)
            todo = [k for k in range(job.n_shards) if k not in done]
            with _shard_progress(progress and progress_label is not None, progress_label or kind, job.n_items,
                                 sum(job.size(k) for k in done)) as advance, \
                    damping_scale(self.config.damping_scale):

                def finished(k: int, _result: Any) -> None:
                    if executor.name != "local":  # the coordinator registers what workers wrote
                        self.store.register_shards(run_id)
                    advance(job.size(k))
                    if on_shard:
                        on_shard(k)

                work = (ShardWork(self._worker_spec(), job, run_id) if executor.name != "local"
                        else lambda k: self._write_shard(job, run_id, k))
                executor.run(work, todo, finished)
        return ScoreRun(run_id, job.n_shards, len(todo), time.perf_counter() - started)

    def _write_shard(self, job: ShardJob, run_id: str, k: int) -> None:
        """Compute shard ``k`` in this process and write its tables (the last one marks it done)."""
        tables = job.compute(self, k)
        for table in job.tables:
            self.store.write_shard(table, run_id, tables[table], shard=k)

    def _worker_spec(self) -> EngineSpec:
        """What workers need to rebuild this engine: the weights go to the store's artifacts (once)."""
        if self._spec is None:
            self._spec = EngineSpec(type(self), str(self.store.root), save_model_artifact(self.store, self.model,
                                    self.model_fingerprint), self.task, self.config)
        return self._spec

    def _run_config(self, **extra: Any) -> dict[str, Any]:
        return {"engine": asdict(self.config), "tracked_modules": self.task.get_influence_tracked_modules(),
                "mkl_cbwr": os.environ.get("MKL_CBWR"),
                "sign": "positive = training on the sample lowered the query loss", **self.record, **extra}


def run_finished(store: stores.Store, run_id: str) -> bool:
    """Whether the store holds run ``run_id`` as finished (a repeated request then does nothing)."""
    return store.run_finished(run_id)


def _pair_identity(train: Samples, queries: Samples) -> list[str]:
    """The training and query samples' part of a run id: their ids' and their data's fingerprints."""
    return [ids_fingerprint(train.ids), ids_fingerprint(queries.ids), data_fingerprint(train.data),
            data_fingerprint(queries.data)]


@contextlib.contextmanager
def _shard_progress(enabled: bool, label: str, total: int, done: int):
    """Progress over items (samples) with items/s and time left; yields an ``advance(n)`` function."""
    with StepProgress(label, total, unit="samples", done=done, enabled=enabled) as bar:
        yield bar.advance


# re-exported: callers import these from the engine
__all__ = [
    "STRATEGIES", "EngineConfig", "InfluenceEngine", "Samples", "ScoreRun", "field_help", "model_fingerprint",
    "run_finished", "score_matrix",
]
