"""A gradient index: projected preconditioned training gradients in the store, searched by inner product.

Interactive attribution: :func:`build_index` writes, for every training sample, a random projection
of its preconditioned gradient (:mod:`attribution.gradient_projection`) as a shard of a
``gradient-index`` run (``gradient_vectors`` table, :mod:`stores.vectors`), then a FAISS index over
them as the run's artifact (:mod:`attribution.vector_search`). :class:`GradientIndex` answers a
query (a query dataset, or one text for a language model) with its top-k training samples: the
query's vector meets every training vector in one inner-product search (approximate scores), and
the best ``candidates`` of them are re-scored exactly with the engine's candidate scoring
(:meth:`~attribution.engine.InfluenceEngine.candidate_scores`, equal to full EK-FAC scoring at
those pairs), which fixes their order.

Scores keep the engine's sign: positive means training on the sample lowered the query's loss.
A build is a sharded run with a deterministic id: interrupted, it resumes without recomputing
finished shards, and a finished one is returned as it is. The run records the model fingerprint,
factors, projection (kind, dim, seed, per module or global) and damping; an index refuses a
query made with another model (:class:`IndexMismatchError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils import data

import stores
from stores import vectors as store_vectors
from stores.progress import StepProgress

from . import vector_search
from .candidates import _preconditioner, _tracked_linears, measurement_factors
from .data import Samples
from .gradient_projection import PROJECTION_VERSION, ProjectionSpec, Projector
from .gradients import token_factors
from .keys import data_fingerprint, ids_fingerprint
from .lengths import length_sorted, sample_lengths, trim_padding_collate

KIND = "gradient-index"


class IndexMismatchError(ValueError):
    """An index cannot answer this request: another model, strategy or damping, or not a finished index."""


@dataclass
class IndexBuild:
    """What :func:`build_index` did: the run, its size and how many shards it computed versus reused."""

    run_id: str
    n_samples: int
    dim: int
    shards_total: int
    shards_computed: int
    seconds: float


@dataclass
class QueryResult:
    """Each query's top-k training samples (``table``) and the seconds each stage took.

    ``table`` has one row per (query, rank): ``query_id``, ``rank`` (1 = most influential),
    ``sample_id``, ``position`` (index in the training samples), ``score`` (exact when
    ``rescored``, else the approximate one) and ``approx_score`` (the projections' inner product).
    """

    table: pl.DataFrame
    n_candidates: int
    rescored: bool
    seconds: dict[str, float] = field(default_factory=dict)


def build_index(
    engine: Any,
    train: Samples,
    projection: ProjectionSpec,
    *,
    search: str = "flat",
    nlist: int | None = None,
    nprobe: int | None = None,
    shard_size: int = 4096,
    extra_config: dict[str, Any] | None = None,
    max_cache_bytes: int = 2**30,
    max_factor_bytes: int = 2**29,
    progress: bool = False,
    on_shard: Callable[[int], None] | None = None,
) -> IndexBuild:
    """Write the gradient index of ``train`` for ``engine`` (an :class:`~attribution.engine.InfluenceEngine`).

    Fits (or reuses) the engine's factors on ``train``, writes every sample's projected
    preconditioned gradient (``shard_size`` samples a shard; ``on_shard(k)`` after each, used by
    tests to interrupt), then the ``search`` index (``flat`` or ``ivf``; see
    :mod:`attribution.vector_search`). ``extra_config`` is recorded with the run (the command
    line records how to load the model and data again). ``max_cache_bytes`` bounds the dense
    projection matrix kept on the device; ``max_factor_bytes`` the gradients projected at once.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    if len(train) == 0:
        raise ValueError("no training samples to index")
    t0 = time.perf_counter()
    store: stores.Store = engine.store
    factors_name, _ = engine.fit_factors(train)
    settings = vector_search.search_settings(search, len(train), nlist, nprobe)
    ids_fp, data_fp = ids_fingerprint(train.ids), data_fingerprint(train.data)
    run_id = engine.run_id_for(KIND, ids_fp, data_fp, asdict(projection), shard_size, settings, PROJECTION_VERSION)
    n_shards = -(-len(train) // shard_size)
    if store.run_finished(run_id):
        if not store_vectors.index_file(store, run_id).is_file():  # the artifact was deleted: rebuild it
            _write_search_index(store, run_id, settings, finished=True)
        dim = int(store.get_run(run_id)["config"]["dim"])
        return IndexBuild(run_id, len(train), dim, n_shards, 0, time.perf_counter() - t0)
    projector = _projector(engine, engine.analyzer.load_all_factors(factors_name), projection, max_cache_bytes)
    cfg = engine.config
    config = {
        "engine": asdict(cfg), "tracked_modules": engine.task.get_influence_tracked_modules(),
        "factors": factors_name, "model_fingerprint": engine.model_fingerprint, "projection": asdict(projection),
        "projection_version": PROJECTION_VERSION, "dim": projector.dim, "modules": projector.layout, "n_train": len(train), "train_fingerprint": ids_fp,
        "train_data_fingerprint": data_fp, "shard_size": shard_size, "search": settings,
        "sign": "positive = training on the sample lowered the query loss",
        "note": "inner products of the vectors approximate influence scores; queries re-score the top candidates",
        **(extra_config or {}),
    }
    loss = lambda batch, m: engine.task.compute_train_loss(batch=batch, model=m, sample=False)  # noqa: E731
    with store.run(KIND, config=config, seed=projection.seed, dataset=train.dataset,
                   model_fingerprint=engine.model_fingerprint, run_id=run_id):
        done = store_vectors.completed_vector_shards(store, run_id)
        todo = [k for k in range(n_shards) if k not in done]
        with StepProgress("gradient index", len(train), unit="samples", done=len(done) * shard_size,
                          enabled=progress) as bar:
            for k in todo:
                lo, hi = k * shard_size, min((k + 1) * shard_size, len(train))
                vectors = sample_vectors(engine, projector, train.data, range(lo, hi), loss, cfg.batch_size,
                                         max_factor_bytes)
                store_vectors.write_vectors(store, run_id, train.ids[lo:hi], vectors, shard=k)
                bar.advance(hi - lo)
                if on_shard:
                    on_shard(k)
        _write_search_index(store, run_id, settings, finished=False)
    return IndexBuild(run_id, len(train), projector.dim, n_shards, len(todo), time.perf_counter() - t0)


def sample_vectors(
    engine: Any, projector: Projector, dataset: data.Dataset, indices: Sequence[int],
    loss: Callable[[Any, torch.nn.Module], torch.Tensor], batch_size: int, max_factor_bytes: int = 2**29,
) -> np.ndarray:
    """Projected preconditioned gradients of ``loss`` for ``dataset[indices]``, (len(indices) x dim) float32.

    Sequences are batched by length and their shared trailing padding cut (as the engine does
    when ``pad_per_batch``), which changes no gradient; the rows come back in ``indices`` order.
    Gradients are kept in compact per-token form until ``max_factor_bytes``, then projected.
    """
    indices = [int(i) for i in indices]
    trim = getattr(engine.config, "pad_per_batch", False)
    if trim:  # lengths of the subset are by position in ``indices``
        order = [indices[j] for j in length_sorted(range(len(indices)), sample_lengths(data.Subset(dataset, indices)))]
    else:
        order = indices
    where = {i: j for j, i in enumerate(indices)}
    collate = trim_padding_collate if trim else data.default_collate
    out = np.zeros((len(indices), projector.dim), dtype=np.float32)
    group: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []
    rows: list[int] = []
    held = 0

    def flush() -> None:
        nonlocal group, rows, held
        if group:
            out[rows] = projector.project(group).cpu().numpy()
        group, rows, held = [], [], 0

    for lo in range(0, len(order), batch_size):
        chunk = order[lo: lo + batch_size]
        batch = collate([dataset[i] for i in chunk])
        factors = token_factors(engine.model, loss, batch, projector.preconditioners, projector.device)
        group.append(factors)
        rows += [where[i] for i in chunk]
        held += sum(a.numel() * 4 + x.numel() * 4 for a, x in factors.values())
        if held >= max_factor_bytes:
            flush()
    flush()
    return out


class GradientIndex:
    """A finished gradient index opened for queries with an engine on the same model (see :meth:`open`)."""

    def __init__(self, engine: Any, run_id: str, config: dict[str, Any], projector: Projector,
                 sample_ids: list[str], index: Any):
        self.engine = engine
        self.run_id = run_id
        self.config = config
        self.projector = projector
        self.sample_ids = sample_ids
        self.index = index

    @classmethod
    def open(cls, engine: Any, run_id: str, train: Samples | None = None, max_cache_bytes: int = 2**30) -> GradientIndex:
        """Open the index of run ``run_id`` for ``engine``; refuses another model, strategy or damping.

        The factors are the cached ones the build used; when they were deleted, pass ``train``
        (the indexed samples) to fit them again.
        """
        store: stores.Store = engine.store
        rec = store.get_run(run_id)
        if rec["kind"] != KIND:
            raise IndexMismatchError(f"run {run_id} is a {rec['kind']} run, not a gradient index")
        if rec["status"] != "finished":
            raise IndexMismatchError(f"gradient index {run_id} is {rec['status']}, not finished: run the same "
                                     "build again to resume it")
        cfg = rec["config"]
        if rec["model_fingerprint"] != engine.model_fingerprint:
            raise IndexMismatchError(
                f"gradient index {run_id} was built for model {rec['model_fingerprint'][:12]}, not this model "
                f"({engine.model_fingerprint[:12]}): query it with the model it was built with, or build an index "
                "for this model")
        mine = asdict(engine.config)
        for key in ("strategy", "damping"):
            if cfg["engine"][key] != mine[key]:
                raise IndexMismatchError(f"gradient index {run_id} was built with {key} {cfg['engine'][key]!r}, "
                                         f"the engine has {mine[key]!r}")
        if cfg["tracked_modules"] != engine.task.get_influence_tracked_modules():
            raise IndexMismatchError(f"gradient index {run_id} tracks other modules than this task")
        factors_name = cfg["factors"]
        if engine.analyzer.factors_output_dir(factors_name).is_dir():
            factors = engine.analyzer.load_all_factors(factors_name)
        elif train is not None and engine.factors_key(train) == factors_name:
            factors = engine.load_factors(train)
        else:
            raise IndexMismatchError(f"the factors of gradient index {run_id} ({factors_name}) are no longer "
                                     "cached; pass the indexed training samples to fit them again")
        projector = _projector(engine, factors, ProjectionSpec(**cfg["projection"]), max_cache_bytes)
        if projector.layout != cfg["modules"] or projector.dim != cfg["dim"]:
            raise IndexMismatchError(f"gradient index {run_id}: the model's tracked modules do not match the index")
        path = store_vectors.index_file(store, run_id)
        if not path.is_file():
            path = _write_search_index(store, run_id, cfg["search"], finished=True)
        ids = store_vectors.read_vector_ids(store, run_id)
        return cls(engine, run_id, cfg, projector, ids, vector_search.load(path, cfg["search"]))

    def __len__(self) -> int:
        return len(self.sample_ids)

    def query_vectors(self, queries: Samples) -> np.ndarray:
        """The queries' projected preconditioned measurement gradients, (queries x dim) float32."""
        return self._project(self._query_factors(queries), len(queries))

    def _query_factors(self, queries: Samples) -> list:
        """The queries' measurement gradients in compact eigenbasis form, in the engine's query batches."""
        cfg = self.engine.config
        return measurement_factors(self.engine.model, self.engine.task, self.projector.preconditioners, queries.data,
                                   cfg.query_batch_size, self.projector.device, cfg.pad_per_batch)

    def _project(self, factors: list, n: int, max_factor_bytes: int = 2**29) -> np.ndarray:
        """(n x dim) projections of the batches of ``factors`` (in order), a group of at most ``max_factor_bytes``."""
        out, at, group, held = np.zeros((n, self.projector.dim), dtype=np.float32), 0, [], 0
        for i, f in enumerate(factors):
            group.append(f)
            held += sum(a.numel() * 4 + x.numel() * 4 for a, x in f.values())
            if held >= max_factor_bytes or i == len(factors) - 1:
                rows = self.projector.project(group).cpu().numpy()
                out[at: at + len(rows)], at, group, held = rows, at + len(rows), [], 0
        return out

    def search(
        self, queries: Samples, k: int = 10, *, rescore: bool = True, candidates: int | None = None,
        train: Samples | None = None, most: str = "positive",
    ) -> QueryResult:
        """Each query's ``k`` most influential training samples.

        The search returns ``candidates`` per query (default ``max(10 k, 100)``, at most the
        index size) by approximate score; with ``rescore`` (needs ``train``, the indexed samples)
        they are scored exactly and the best ``k`` kept, else the approximate top ``k`` is
        returned as it is. ``most="negative"`` looks for the samples that raised the query's loss.
        """
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        if most not in ("positive", "negative"):
            raise ValueError(f"most must be 'positive' or 'negative', got {most!r}")
        if rescore and train is None:
            raise ValueError("exact re-scoring needs the indexed training samples (train=...)")
        if rescore and ids_fingerprint(train.ids) != self.config["train_fingerprint"]:
            raise IndexMismatchError(f"the training samples given are not the ones gradient index {self.run_id} holds")
        n = len(self)
        k = min(k, n)
        fetch = min(n, max(k, candidates if candidates is not None else max(10 * k, 100))) if rescore else k
        sign = 1.0 if most == "positive" else -1.0
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        factors = self._query_factors(queries)  # computed once: projected here, re-used by the re-scoring
        qv = self._project(factors, len(queries))
        seconds["project"] = time.perf_counter() - t
        t = time.perf_counter()
        values, positions = vector_search.search(self.index, sign * qv, fetch)
        approx = sign * values
        seconds["search"] = time.perf_counter() - t
        exact = None
        if rescore:
            t = time.perf_counter()
            exact = self.engine.candidate_scores(train, queries, positions, query_factors=factors)
            best = np.argsort(-sign * exact, axis=1, kind="stable")[:, :k]
            positions, approx, exact = (np.take_along_axis(a, best, axis=1) for a in (positions, approx, exact))
            seconds["rescore"] = time.perf_counter() - t
        else:
            positions, approx = positions[:, :k], approx[:, :k]
        ids = np.asarray(self.sample_ids, dtype=object)
        n_q = len(queries)
        table = pl.DataFrame({
            "query_id": np.repeat(np.asarray(queries.ids, dtype=object), k).tolist(),
            "rank": np.tile(np.arange(1, k + 1), n_q).astype(np.int32),
            "sample_id": ids[positions.reshape(-1)].tolist(),
            "position": positions.reshape(-1),
            "score": (exact if exact is not None else approx).reshape(-1).astype(np.float32),
            "approx_score": approx.reshape(-1).astype(np.float32),
        })
        return QueryResult(table, fetch, rescore, seconds)


def find_index(store: stores.Store, name: str) -> str:
    """The run id of a gradient index named by its run id, or the newest finished one of a dataset."""
    runs = store.runs(KIND)
    if name in runs["run_id"].to_list():
        return name
    of_dataset = runs.filter((pl.col("dataset") == name) & (pl.col("status") == "finished"))
    if of_dataset.height:
        return of_dataset["run_id"][0]  # newest first
    datasets = store.datasets()
    known = datasets["name"].to_list() if datasets.height else []
    hint = (f"dataset {name!r} has no finished gradient index: build one with `curation index build --dataset {name}`"
            if name in known else f"no gradient index run or dataset named {name!r}")
    raise stores.StoreError(hint)


def _projector(engine: Any, factors: Any, spec: ProjectionSpec, max_cache_bytes: int) -> Projector:
    """The engine's preconditioners (strategy, damping, device) on ``factors``, with ``spec``'s projection."""
    cfg = engine.config
    pre = {m.name: _preconditioner(m, factors, cfg.strategy, cfg.damping, torch.device(cfg.device))
           for m in _tracked_linears(engine.model)}
    return Projector(pre, spec, cfg.device, max_cache_bytes)


def _write_search_index(store: stores.Store, run_id: str, settings: dict[str, Any], *, finished: bool):
    """Build the FAISS index over a run's vectors and write it atomically as the run's artifact."""
    _, vectors = store_vectors.read_vectors(store, run_id, finished=finished)
    index = vector_search.build(vectors, settings)
    return store_vectors.write_index_file(store, run_id, lambda path: vector_search.save(index, path))


__all__ = ["KIND", "GradientIndex", "IndexBuild", "IndexMismatchError", "ProjectionSpec", "QueryResult",
           "build_index", "find_index", "sample_vectors"]
