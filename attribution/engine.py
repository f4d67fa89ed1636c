"""The influence engine: fit factors once, then score training samples shard by shard into the store.

Scores follow the toolkit's sign convention (see :mod:`attribution.tasks`): positive means
training on the sample lowered the query's loss, i.e. made the behaviour more likely.

Factors are cached in the store under a key made of the model's weights, the training data's
ids and the factor arguments, so a second call with the same inputs reuses them and a changed
model never reuses stale ones. Pairwise scores are computed one training shard at a time and
written as a Parquet shard of the run as soon as they exist; a killed run resumed with the same
inputs computes only the missing shards and gives identical scores.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from kronfluence.analyzer import Analyzer, prepare_model
from kronfluence.arguments import FactorArguments, ScoreArguments
from kronfluence.module.tracked_module import TrackedModule
from torch import nn
from torch.utils import data

import stores
from stores.progress import StepProgress

from .tasks import InfluenceTask

STRATEGIES = ("ekfac", "kfac", "diagonal", "identity")
logging.getLogger("kronfluence").setLevel(logging.WARNING)


@dataclass
class EngineConfig:
    """How influence is computed; every field is recorded in the run's config.

    ``damping`` None uses kronfluence's heuristic (0.1 x mean eigenvalue per layer), which ranked
    far better than its 1e-8 default on this machine's probes. ``low_rank`` compresses query
    gradients to that rank per layer (query batching); ``shard_size`` is the number of training
    samples per written shard.
    """

    strategy: str = "ekfac"
    damping: float | None = None
    batch_size: int = 32
    query_batch_size: int = 64
    shard_size: int = 1024
    low_rank: int | None = None
    use_empirical_fisher: bool = False
    covariance_max_examples: int | None = None
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if self.shard_size < 1 or self.batch_size < 1 or self.query_batch_size < 1:
            raise ValueError("shard_size, batch_size and query_batch_size must be positive")

    def factor_arguments(self) -> FactorArguments:
        """kronfluence arguments for fitting factors."""
        return FactorArguments(
            strategy=self.strategy,
            use_empirical_fisher=self.use_empirical_fisher,
            covariance_max_examples=self.covariance_max_examples,
            lambda_max_examples=self.covariance_max_examples,
        )

    def score_arguments(self, per_module: bool = False, per_token: bool = False) -> ScoreArguments:
        """kronfluence arguments for computing scores (optionally decomposed per module / token)."""
        return ScoreArguments(damping_factor=self.damping, query_gradient_low_rank=self.low_rank,
                              compute_per_module_scores=per_module, compute_per_token_scores=per_token)


def model_fingerprint(model: nn.Module) -> str:
    """Hash of a model's parameter and buffer names, shapes, dtypes and values.

    kronfluence's wrappers are ignored, so a model hashes the same before and after preparation.
    """
    h = hashlib.sha256()
    state = {
        name.replace("original_module.", ""): tensor
        for name, tensor in model.state_dict().items()
        if not name.endswith("_constant")
    }
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:32]


def data_fingerprint(dataset: data.Dataset) -> str:
    """Hash of what the model actually sees: a dataset's tensors (token ids, masks, labels...).

    Two datasets with the same sample ids but another tokenizer or ``max_length`` differ here,
    so cached factors and finished runs are never reused for them.
    """
    h = hashlib.sha256()

    def add(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"{tuple(t.shape)}:{t.dtype};".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            for k in sorted(value):
                h.update(str(k).encode())
                add(value[k])
        elif isinstance(value, list | tuple):
            for v in value:
                add(v)
        else:
            h.update(repr(value).encode())

    tensors = getattr(dataset, "tensors", None)  # TensorDataset: hash the storage at once
    if tensors is not None:
        add(list(tensors))
    elif all(hasattr(dataset, a) for a in ("input_ids", "attention_mask", "labels")):
        add([dataset.input_ids, dataset.attention_mask, dataset.labels])  # CompletionDataset
    else:
        for i in range(len(dataset)):  # type: ignore[arg-type]
            add(dataset[i])
    return h.hexdigest()[:32]


def ids_fingerprint(ids: Sequence[str]) -> str:
    """Hash of an ordered list of sample ids (a dataset's identity for caching)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


@dataclass
class ScoreRun:
    """What a scoring call did: its run id and how many shards it computed versus reused."""

    run_id: str
    shards_total: int
    shards_computed: int
    seconds: float


class InfluenceEngine:
    """Influence scores of training samples against behaviours, written to a store.

    ``model`` is prepared for kronfluence in place (its tracked modules are wrapped by modules
    whose forward is unchanged; preparing twice is avoided); ``task`` says how to compute losses
    and measurements.
    """

    def __init__(
        self, store: stores.Store, model: nn.Module, task: InfluenceTask, config: EngineConfig | None = None
    ):
        self.store = store
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

    # ------------------------------------------------------------------ factors
    def factors_key(self, train: data.Dataset, train_ids: Sequence[str]) -> str:
        """Cache key of the factors: model weights, task and tracked modules, data, arguments."""
        args = asdict(self.config)
        relevant = {k: args[k] for k in ("strategy", "use_empirical_fisher", "covariance_max_examples", "seed")}
        task = [type(self.task).__name__, self.task.get_influence_tracked_modules()]
        data_key = [ids_fingerprint(train_ids), data_fingerprint(train)]
        return f"{self.config.strategy}-{_key(self.model_fingerprint, task, data_key, relevant)}"

    def fit_factors(self, train: data.Dataset, train_ids: Sequence[str]) -> tuple[str, bool]:
        """Fit (or reuse) the factors on the training data; returns (factors name, reused?)."""
        _check_ids(train, train_ids, "train")
        name = self.factors_key(train, train_ids)
        final = self.analyzer.factors_output_dir(name)
        if final.is_dir():
            return name, True
        tmp_name = f"{name}.tmp"
        shutil.rmtree(self.analyzer.factors_output_dir(tmp_name), ignore_errors=True)
        torch.manual_seed(self.config.seed)
        with _quiet():
            self.analyzer.fit_all_factors(
                factors_name=tmp_name,
                dataset=train,
                per_device_batch_size=self.config.batch_size,
                factor_args=self.config.factor_arguments(),
                overwrite_output_dir=True,
            )
        self.analyzer.factors_output_dir(tmp_name).rename(final)  # the cache entry appears whole
        return name, False

    # ------------------------------------------------------------------ pairwise
    def run_id_for(self, kind: str, *parts: Any) -> str:
        """A deterministic run id, so re-running the same request resumes the same run."""
        task = [type(self.task).__name__, self.task.get_influence_tracked_modules()]
        return f"{kind}-{_key(self.model_fingerprint, task, asdict(self.config), *parts)}"

    def pairwise_scores(
        self,
        behaviour: str,
        train: data.Dataset,
        train_ids: Sequence[str],
        queries: data.Dataset,
        query_ids: Sequence[str],
        *,
        dataset: str | None = None,
        per_module: bool = False,
        candidates: np.ndarray | None = None,
        prefilter: dict[str, Any] | None = None,
        progress: bool = False,
        on_shard: Callable[[int], None] | None = None,
    ) -> ScoreRun:
        """Score every training sample against every query of ``behaviour`` into ``scores``.

        With ``per_module`` each score's split over the tracked modules also goes to
        ``score_parts`` (one row per module; the parts sum to the score). Resumes an interrupted
        run with the same inputs, computing only missing shards. ``on_shard`` is called after
        each shard is written (used by tests to interrupt).

        ``candidates`` (queries x K training indices, e.g. from :mod:`attribution.prefilter`)
        restricts scoring to each query's candidates: only those pairs are computed and written
        (exactly the values full scoring gives them, at a cost of queries x K instead of queries
        x N); ``prefilter`` describes how they were picked and is recorded in the run's config.
        """
        _check_ids(train, train_ids, "train")
        _check_ids(queries, query_ids, "query")
        if candidates is not None:
            return self._candidate_pairwise(behaviour, train, train_ids, queries, query_ids, candidates,
                                            prefilter or {}, dataset=dataset, progress=progress, on_shard=on_shard)
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train, train_ids)
        run_id = self.run_id_for("attribute", behaviour, ids_fingerprint(train_ids), ids_fingerprint(query_ids),
                                 data_fingerprint(train), data_fingerprint(queries), *(["per_module"] if per_module else []))
        n_shards = -(-len(train_ids) // self.config.shard_size)
        if self._already_finished(run_id):
            return ScoreRun(run_id, n_shards, 0, time.perf_counter() - t0)
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train_ids),
                                  n_queries=len(query_ids), train_fingerprint=ids_fingerprint(train_ids),
                                  query_fingerprint=ids_fingerprint(query_ids), per_module=per_module)
        with self.store.run("attribute", config=config, seed=self.config.seed, dataset=dataset,
                            model_fingerprint=self.model_fingerprint, run_id=run_id):
            done = self.store.completed_shards("scores", run_id)
            todo = [k for k in range(n_shards) if k not in done]
            qids = np.asarray(query_ids, dtype=object)
            with _shard_progress(progress, "pairwise scores", len(train_ids), len(done) * self.config.shard_size) as bar:
                for k in todo:
                    lo, hi = k * self.config.shard_size, min((k + 1) * self.config.shard_size, len(train_ids))
                    parts = self._pairwise_block(factors, queries, train, list(range(lo, hi)), per_module)
                    scores = sum(parts.values())  # (Q, n); the only part is "all_modules" unless per_module
                    n = hi - lo
                    sids = np.repeat(np.asarray(train_ids[lo:hi], dtype=object), len(query_ids))
                    table = pa.table({
                        "behaviour": pa.array([behaviour] * (n * len(query_ids)), pa.string()),
                        "query_id": pa.array(np.tile(qids, n), pa.string()),
                        "sample_id": pa.array(sids, pa.string()),
                        "score": pa.array(scores.T.reshape(-1).astype(np.float32)),
                    })
                    if per_module:  # parts first: the scores shard marks the training shard as done
                        self.store.write_score_parts(run_id, _module_parts_table(behaviour, qids, sids, n, parts), shard=k)
                    self.store.write_scores(run_id, table, shard=k)
                    bar(n)
                    if on_shard:
                        on_shard(k)
        return ScoreRun(run_id, n_shards, len(todo), time.perf_counter() - t0)

    def _candidate_pairwise(
        self, behaviour: str, train: data.Dataset, train_ids: Sequence[str], queries: data.Dataset,
        query_ids: Sequence[str], candidates: np.ndarray, prefilter: dict[str, Any], *,
        dataset: str | None, progress: bool, on_shard: Callable[[int], None] | None,
    ) -> ScoreRun:
        """Pairwise scores of each query against its candidates only; a shard per block of queries."""
        from .candidates import engine_candidate_scores

        if self.config.low_rank is not None:
            raise ValueError("low_rank does not apply to candidate scoring, which is exact for each pair; unset one")
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(query_ids):
            raise ValueError(f"candidates must be (queries x K) = ({len(query_ids)} x K), got shape {cand.shape}")
        if cand.size and (cand.min() < 0 or cand.max() >= len(train_ids)):
            raise ValueError(f"candidate indices must be in [0, {len(train_ids)}), got [{cand.min()}, {cand.max()}]")
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train, train_ids)
        cand_fp = hashlib.sha256(cand.tobytes() + str(cand.shape).encode()).hexdigest()[:24]
        run_id = self.run_id_for("attribute", behaviour, ids_fingerprint(train_ids), ids_fingerprint(query_ids),
                                 data_fingerprint(train), data_fingerprint(queries), "candidates", cand_fp)
        block = self.config.shard_size  # queries per shard
        n_shards = -(-len(query_ids) // block)
        if self._already_finished(run_id):
            return ScoreRun(run_id, n_shards, 0, time.perf_counter() - t0)
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train_ids),
                                  n_queries=len(query_ids), train_fingerprint=ids_fingerprint(train_ids),
                                  query_fingerprint=ids_fingerprint(query_ids),
                                  prefilter={"k": int(cand.shape[1]), "candidates_fingerprint": cand_fp, **prefilter},
                                  note="scores exist only for each query's candidates")
        tids = np.asarray(train_ids, dtype=object)
        with self.store.run("attribute", config=config, seed=self.config.seed, dataset=dataset,
                            model_fingerprint=self.model_fingerprint, run_id=run_id):
            done = self.store.completed_shards("scores", run_id)
            todo = [k for k in range(n_shards) if k not in done]
            for k in todo:
                lo, hi = k * block, min((k + 1) * block, len(query_ids))
                values = engine_candidate_scores(self, train, train_ids, data.Subset(queries, range(lo, hi)),
                                                 cand[lo:hi], progress=progress)
                q_idx = np.repeat(np.arange(lo, hi), cand.shape[1])
                t_idx = cand[lo:hi].reshape(-1)
                order = np.lexsort((q_idx, t_idx))  # sample-major, like full runs
                self.store.write_scores(run_id, pa.table({
                    "behaviour": pa.array([behaviour] * len(order), pa.string()),
                    "query_id": pa.array(np.asarray(query_ids, dtype=object)[q_idx[order]], pa.string()),
                    "sample_id": pa.array(tids[t_idx[order]], pa.string()),
                    "score": pa.array(values.reshape(-1)[order].astype(np.float32)),
                }), shard=k)
                if on_shard:
                    on_shard(k)
        return ScoreRun(run_id, n_shards, len(todo), time.perf_counter() - t0)

    def _pairwise_block(
        self, factors: str, queries: data.Dataset, train: data.Dataset, indices: list[int],
        per_module: bool = False, per_token: bool = False,
    ) -> dict[str, np.ndarray]:
        """kronfluence pairwise scores of the queries against ``indices``: module name -> array."""
        name = f"tmp-{_key(factors, indices[0], indices[-1], time.time_ns())}"
        try:
            with _quiet():
                self.analyzer.compute_pairwise_scores(
                    scores_name=name,
                    factors_name=factors,
                    query_dataset=queries,
                    train_dataset=train,
                    train_indices=indices,
                    per_device_query_batch_size=self.config.query_batch_size,
                    per_device_train_batch_size=self.config.batch_size,
                    score_args=self.config.score_arguments(per_module=per_module, per_token=per_token),
                    overwrite_output_dir=True,
                )
            return {k: v.float().cpu().numpy() for k, v in self.analyzer.load_pairwise_scores(name).items()}
        finally:
            shutil.rmtree(self.analyzer.scores_output_dir(name), ignore_errors=True)

    # ------------------------------------------------------------------ per-token
    def token_scores(
        self,
        behaviour: str,
        train: data.Dataset,
        train_ids: Sequence[str],
        queries: data.Dataset,
        query_ids: Sequence[str],
        sample_ids: Sequence[str],
        *,
        tokenizer: Any = None,
        dataset: str | None = None,
    ) -> ScoreRun:
        """Per-token decomposition of the scores of ``sample_ids`` (a few training samples) into ``score_parts``.

        One row per (query, sample, non-padding token of the sample): ``position`` and, with a
        tokenizer, the ``token`` text. A sample's token scores sum to its pairwise score, so they
        show *which tokens* made a sample influential (for reports). It costs a sequence length
        times more output than pairwise scores: meant for the top samples of a behaviour, not all.
        """
        _check_ids(train, train_ids, "train")
        _check_ids(queries, query_ids, "query")
        where = {sid: i for i, sid in enumerate(train_ids)}
        missing = [s for s in sample_ids if s not in where]
        if missing:
            raise ValueError(f"{len(missing)} sample ids are not in the training ids, e.g. {missing[0]}")
        indices = [where[s] for s in sample_ids]
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train, train_ids)
        run_id = self.run_id_for("token-scores", behaviour, ids_fingerprint(train_ids), ids_fingerprint(query_ids),
                                 data_fingerprint(train), data_fingerprint(queries), ids_fingerprint(sample_ids))
        if self._already_finished(run_id):
            return ScoreRun(run_id, 1, 0, time.perf_counter() - t0)
        config = self._run_config(behaviour=behaviour, factors=factors, n_train=len(train_ids),
                                  n_queries=len(query_ids), sample_ids=list(sample_ids), per_token=True)
        with self.store.run("token-scores", config=config, seed=self.config.seed, dataset=dataset,
                            model_fingerprint=self.model_fingerprint, run_id=run_id):
            per_token = self._pairwise_block(factors, queries, train, indices, per_token=True)["all_modules"]  # (Q, n, T)
            cols: dict[str, list] = {k: [] for k in ("query_id", "sample_id", "position", "token", "score")}
            for j, i in enumerate(indices):
                item = train[i]
                mask = item["attention_mask"].bool() if "attention_mask" in item else torch.ones_like(item["input_ids"]).bool()
                positions = torch.nonzero(mask).flatten().tolist()
                tokens = (tokenizer.convert_ids_to_tokens(item["input_ids"][positions].tolist())
                          if tokenizer is not None else [None] * len(positions))
                for q, qid in enumerate(query_ids):
                    cols["query_id"] += [qid] * len(positions)
                    cols["sample_id"] += [sample_ids[j]] * len(positions)
                    cols["position"] += positions
                    cols["token"] += tokens
                    cols["score"] += per_token[q, j, positions].tolist()
            n = len(cols["score"])
            self.store.write_score_parts(run_id, pa.table({
                "behaviour": pa.array([behaviour] * n, pa.string()),
                "query_id": pa.array(cols["query_id"], pa.string()),
                "sample_id": pa.array(cols["sample_id"], pa.string()),
                "module": pa.array([None] * n, pa.string()),
                "position": pa.array(cols["position"], pa.int32()),
                "token": pa.array(cols["token"], pa.string()),
                "score": pa.array(cols["score"], pa.float32()),
            }), shard=0)
        return ScoreRun(run_id, 1, 1, time.perf_counter() - t0)

    # ------------------------------------------------------------------ self-influence
    def self_scores(
        self, train: data.Dataset, train_ids: Sequence[str], *, dataset: str | None = None, progress: bool = False
    ) -> ScoreRun:
        """Self-influence of every training sample into ``self_scores`` (method ``self_<strategy>``)."""
        _check_ids(train, train_ids, "train")
        t0 = time.perf_counter()
        factors, _ = self.fit_factors(train, train_ids)
        run_id = self.run_id_for("self-influence", ids_fingerprint(train_ids), data_fingerprint(train))
        n_shards = -(-len(train_ids) // self.config.shard_size)
        if self._already_finished(run_id):
            return ScoreRun(run_id, n_shards, 0, time.perf_counter() - t0)
        config = self._run_config(factors=factors, n_train=len(train_ids), train_fingerprint=ids_fingerprint(train_ids))
        method = f"self_{self.config.strategy}"
        with self.store.run("self-influence", config=config, seed=self.config.seed, dataset=dataset,
                            model_fingerprint=self.model_fingerprint, run_id=run_id):
            done = self.store.completed_shards("self_scores", run_id)
            todo = [k for k in range(n_shards) if k not in done]
            with _shard_progress(progress, "self-influence", len(train_ids), len(done) * self.config.shard_size) as bar:
                for k in todo:
                    lo, hi = k * self.config.shard_size, min((k + 1) * self.config.shard_size, len(train_ids))
                    name = f"tmp-self-{_key(factors, lo, hi, time.time_ns())}"
                    try:
                        with _quiet():
                            self.analyzer.compute_self_scores(
                                scores_name=name, factors_name=factors, train_dataset=train,
                                train_indices=list(range(lo, hi)),
                                per_device_train_batch_size=self.config.batch_size,
                                score_args=self.config.score_arguments(), overwrite_output_dir=True,
                            )
                        values = self.analyzer.load_self_scores(name)["all_modules"].float().cpu().numpy()
                    finally:
                        shutil.rmtree(self.analyzer.scores_output_dir(name), ignore_errors=True)
                    self.store.write_self_scores(run_id, {
                        "sample_id": list(train_ids[lo:hi]), "method": [method] * (hi - lo),
                        "score": values.astype(np.float32),
                    }, shard=k)
                    bar(hi - lo)
        return ScoreRun(run_id, n_shards, len(todo), time.perf_counter() - t0)

    # ------------------------------------------------------------------ helpers
    def _already_finished(self, run_id: str) -> bool:
        df = self.store.sql("SELECT status FROM runs WHERE run_id = ?", [run_id])
        return df.height > 0 and df["status"][0] == "finished"

    def _run_config(self, **extra: Any) -> dict[str, Any]:
        return {"engine": asdict(self.config), "tracked_modules": self.task.get_influence_tracked_modules(),
                "sign": "positive = training on the sample lowered the query loss", **extra}


def score_matrix(store: stores.Store, run_id: str, query_ids: Sequence[str], train_ids: Sequence[str]) -> np.ndarray:
    """A run's pairwise scores as a dense (queries x training samples) array, in the given orders.

    For analysis at small scale (it holds Q x N floats); large runs are meant for SQL.
    """
    df = store.read_scores(run_id)
    qi = {q: i for i, q in enumerate(query_ids)}
    ti = {t: i for i, t in enumerate(train_ids)}
    out = np.full((len(query_ids), len(train_ids)), np.nan)
    out[[qi[q] for q in df["query_id"]], [ti[t] for t in df["sample_id"]]] = df["score"].to_numpy()
    if np.isnan(out).any():
        raise stores.StoreError(f"run {run_id} lacks scores for {int(np.isnan(out).sum())} (query, sample) pairs")
    return out


def _module_parts_table(behaviour: str, qids: np.ndarray, sids: np.ndarray, n: int,
                        parts: dict[str, np.ndarray]) -> pa.Table:
    """Per-module scores of a shard, sample-major like ``scores``, one row block per module."""
    rows = n * len(qids)
    blocks = []
    for module, values in sorted(parts.items()):
        blocks.append(pa.table({
            "behaviour": pa.array([behaviour] * rows, pa.string()),
            "query_id": pa.array(np.tile(qids, n), pa.string()),
            "sample_id": pa.array(sids, pa.string()),
            "module": pa.array([module] * rows, pa.string()),
            "position": pa.nulls(rows, pa.int32()),
            "token": pa.nulls(rows, pa.string()),
            "score": pa.array(values.T.reshape(-1).astype(np.float32)),
        }))
    return pa.concat_tables(blocks)


def _check_ids(dataset: data.Dataset, ids: Sequence[str], what: str) -> None:
    if len(dataset) != len(ids):  # type: ignore[arg-type]
        raise ValueError(f"{what} dataset has {len(dataset)} samples but {len(ids)} ids were given")  # type: ignore[arg-type]


@contextlib.contextmanager
def _quiet():
    """Silence kronfluence's per-call warnings (GradScaler FutureWarning) without hiding ours."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*GradScaler.*")
        yield


@contextlib.contextmanager
def _shard_progress(enabled: bool, label: str, total: int, done: int):
    """Progress over training samples with samples/s and time left; yields an ``advance(n)`` function."""
    with StepProgress(label, total, unit="samples", done=done, enabled=enabled) as bar:
        yield bar.advance
