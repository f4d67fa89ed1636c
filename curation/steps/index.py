"""Gradient index and queries: the library behind ``curation index build`` and ``curation query``.

A build loads the model and the training dataset as ``curation attribute`` does and records how
(model folder, task, tokenizer, tokens per sample, features) with the run, so a query needs only
the store and the index's name: it loads the same model and data again, refuses a model whose
weights changed since (the index is for another model), and answers with each query's top-k
training samples, re-scored exactly unless asked not to.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

import stores

from ..errors import RequestError
from .attribute import TASKS
from .model_folder import check_model_folder, model_context_length, resolve_max_length


class IndexRequestError(RequestError):
    """A build or query request that cannot run: names the option at fault and what was expected."""


@dataclass
class IndexRequest:
    """One ``curation index build``: what to index, with which model, and how to project."""

    dataset: str
    model: Path
    task: str = "causal-lm"
    tokenizer: Path | None = None
    features: list[str] | None = None
    label_field: str = "label"
    strategy: str = "ekfac"
    damping: float | None = None
    max_length: int | None = None
    batch_size: int = 16
    dim: int = 1024
    seed: int = 0
    projection: str = "rademacher"
    per_module: bool = True
    search: str = "flat"
    shard_size: int = 4096
    device: str = "cpu"


@dataclass
class QueryRequest:
    """One ``curation query``: an index, the queries (a text or a dataset) and what to return."""

    index: str
    text: str | None = None
    prompt: str | None = None
    queries: str | None = None
    k: int = 10
    rescore: bool = True
    candidates: int | None = None
    most: str = "positive"
    model: Path | None = None
    write: bool = False
    behaviour: str = "query"


@dataclass
class QueryOutcome:
    """What a query found: the index run, the result table, sample texts for display, a written run."""

    index_run: str
    result: Any  # attribution.gradient_index.QueryResult
    snippets: dict[str, str] = field(default_factory=dict)
    written_run: str | None = None
    seconds: float = 0.0


@dataclass
class _Loaded:
    engine: Any
    train: Any
    tokenizer: Any
    max_length: int | None
    features: list[str] | None


def build_gradient_index(store: stores.Store, req: IndexRequest, *, progress: bool = False) -> Any:
    """Build (or resume, or find finished) the gradient index of ``req.dataset``; returns its IndexBuild."""
    from attribution.engine import STRATEGIES
    from attribution.gradient_index import ProjectionSpec, build_index

    if req.task not in TASKS:
        raise IndexRequestError(f"--task {req.task}: expected one of {', '.join(TASKS)}")
    if req.strategy not in STRATEGIES:
        raise IndexRequestError(f"--strategy {req.strategy}: expected one of {', '.join(STRATEGIES)}")
    if req.shard_size < 1:
        raise IndexRequestError(f"--shard-size: expected a positive number of samples, got {req.shard_size}")
    try:
        spec = ProjectionSpec(dim=req.dim, seed=req.seed, kind=req.projection, per_module=req.per_module)
    except ValueError as exc:
        raise IndexRequestError(f"--dim/--projection: {exc}") from None
    if store.dataset_info(req.dataset)["n_samples"] == 0:
        raise IndexRequestError(f"dataset {req.dataset!r} has no samples; nothing to index")
    check_model_folder(req.model, req.task)
    load = {"model": str(req.model.resolve()), "task": req.task,
            "tokenizer": str((req.tokenizer or req.model).resolve()) if req.task == "causal-lm" else None,
            "max_length": req.max_length,
            "features": req.features, "label_field": req.label_field}
    # the engine's own seed stays the default, so the index shares factors with `curation attribute`
    engine_args = {"strategy": req.strategy, "damping": req.damping, "batch_size": req.batch_size,
                   "device": req.device}
    loaded = _load(store, req.dataset, load, engine_args)
    load.update(max_length=loaded.max_length, features=loaded.features)  # as resolved: queries use the same
    try:
        return build_index(loaded.engine, loaded.train, spec, search=req.search, shard_size=req.shard_size,
                           extra_config={"load": load}, progress=progress)
    except ValueError as exc:  # bad search settings (nlist...), reported as one line
        raise IndexRequestError(str(exc)) from None


def run_query(store: stores.Store, req: QueryRequest) -> QueryOutcome:
    """Answer ``req``: each query's top-k training samples of the index, optionally written as a scores run."""
    from attribution.gradient_index import GradientIndex, IndexMismatchError, find_index

    t0 = time.perf_counter()
    if req.k < 1:
        raise IndexRequestError(f"--k: expected a positive number of samples, got {req.k}")
    if (req.text is None) == (req.queries is None):
        raise IndexRequestError("give one of --text TEXT or --queries DATASET")
    if req.prompt is not None and req.text is None:
        raise IndexRequestError("--prompt goes with --text (the completion whose loss is attributed)")
    if req.candidates is not None and req.candidates < req.k:
        raise IndexRequestError(f"--candidates {req.candidates}: expected at least --k ({req.k})")
    run_id = find_index(store, req.index)
    rec = store.get_run(run_id)
    if rec["status"] != "finished":
        raise IndexRequestError(f"--index {req.index}: gradient index {run_id} is {rec['status']}; run the same "
                                "`curation index build` again to finish it")
    cfg = rec["config"]
    load = dict(cfg["load"])
    if req.model is not None:
        load["model"] = str(req.model)
    model = Path(load["model"])
    if not model.is_dir():
        raise IndexRequestError(f"the model of index {run_id} ({model}) is gone; pass --model with the same model")
    loaded = _load(store, rec["dataset"], load, cfg["engine"], need_train=req.rescore)
    queries = _queries(store, req, load, loaded)
    try:
        index = GradientIndex.open(loaded.engine, run_id, loaded.train)
        result = index.search(queries, req.k, rescore=req.rescore, candidates=req.candidates, train=loaded.train,
                              most=req.most)
    except IndexMismatchError as exc:
        raise IndexRequestError(str(exc)) from None
    outcome = QueryOutcome(run_id, result, _snippets(store, rec["dataset"], result.table["sample_id"].to_list()))
    if req.write:
        outcome.written_run = _write_scores(store, req, run_id, rec, result)
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _load(store: stores.Store, dataset: str, load: dict[str, Any], engine_args: dict[str, Any],
          need_train: bool = True) -> _Loaded:
    """The engine (model, task, config) and, when needed, the training samples, as ``load`` describes."""
    from attribution.engine import EngineConfig, InfluenceEngine

    model = Path(load["model"])
    task = load["task"]
    known = {f.name for f in dataclasses.fields(EngineConfig)}
    cfg = EngineConfig(**{k: v for k, v in engine_args.items() if k in known})
    train, tok, max_length, features = None, None, load.get("max_length"), load.get("features")
    if task == "causal-lm":
        from attribution.data import completion_samples
        from attribution.models import load_causal_lm, load_tokenizer
        from attribution.tasks import CausalLMTask

        net = load_causal_lm(model)
        max_length = resolve_max_length(max_length, model_context_length(net), model)
        tok = load_tokenizer(Path(load["tokenizer"]) if load.get("tokenizer") else model)
        if need_train:
            train = completion_samples(store, dataset, tok, max_length)
        influence_task = CausalLMTask(net)
    else:
        from attribution.data import tabular_samples
        from attribution.models import load_mlp
        from attribution.tasks import ClassifierTask, RegressionTask

        net = load_mlp(model)
        regression = task == "regression"
        if need_train or features is None:
            train, features = tabular_samples(store, dataset, features, load.get("label_field", "label"),
                                              regression=regression)
            if train.data.tensors[0].shape[1] != net.config["n_in"]:
                raise IndexRequestError(f"--features: the model takes {net.config['n_in']} features, the data has "
                                        f"{train.data.tensors[0].shape[1]} ({', '.join(features)})")
        influence_task = RegressionTask() if regression else ClassifierTask()
    return _Loaded(InfluenceEngine(store, net, influence_task, cfg), train, tok, max_length, features)


def _queries(store: stores.Store, req: QueryRequest, load: dict[str, Any], loaded: _Loaded) -> Any:
    """The queries as Samples: a query dataset, or the one text given (language models)."""
    from attribution.data import CompletionDataset, Samples, completion_samples, tabular_samples

    causal = load["task"] == "causal-lm"
    if req.queries is not None:
        if store.dataset_info(req.queries)["n_samples"] == 0:
            raise IndexRequestError(f"--queries {req.queries}: the dataset has no samples")
        if causal:
            return completion_samples(store, req.queries, loaded.tokenizer, loaded.max_length)
        samples, _ = tabular_samples(store, req.queries, loaded.features, load.get("label_field", "label"),
                                     regression=load["task"] == "regression")
        return samples
    if not causal:
        raise IndexRequestError(f"--text: the index is of a {load['task']} model; give --queries DATASET instead")
    if not req.text:
        raise IndexRequestError("--text: the text is empty")
    prompt = req.prompt or ""
    fields = {"prompt": prompt, "completion": req.text} if req.prompt is not None else {"text": req.text}
    try:
        data = CompletionDataset([prompt], [req.text], loaded.tokenizer, loaded.max_length)
    except ValueError as exc:
        raise IndexRequestError(f"--prompt: {exc}") from None
    return Samples(data, [stores.sample_id(fields)])


def _snippets(store: stores.Store, dataset: str, sample_ids: list[str], width: int = 80) -> dict[str, str]:
    """A one-line text of each sample (its prompt and completion, text, or first fields), for display."""
    info = store.dataset_info(dataset)
    roles = {f["role"]: f["name"] for f in info["fields"] if f.get("role")}
    df = store.sql("SELECT * FROM samples WHERE dataset = ? AND list_contains(?, sample_id)",
                   [dataset, sorted(set(sample_ids))])
    out = {}
    for row in df.iter_rows(named=True):
        if "text" in roles:
            text = str(row.get("text") or "")
        elif "prompt" in roles or "completion" in roles:
            text = f"{row.get('prompt') or ''}{row.get('completion') or ''}"
        else:
            skip = {"dataset", "sample_id", "ordinal"}
            text = ", ".join(f"{k}={v}" for k, v in row.items() if k not in skip)
        text = " ".join(text.split())
        out[row["sample_id"]] = text if len(text) <= width else text[: width - 1] + "…"
    return out


def _write_scores(store: stores.Store, req: QueryRequest, index_run: str, rec: dict[str, Any], result: Any) -> str:
    """The query's top-k as a scores run (kind ``query``, the index run as its parent); returns its id."""
    stores.store.validate_name(req.behaviour, "behaviour")
    table = result.table
    config = {"index_run": index_run, "k": req.k, "rescore": req.rescore, "candidates": result.n_candidates,
              "most": req.most, "queries": req.queries, "text": req.text, "prompt": req.prompt,
              "note": ("scores exist only for each query's top-k; "
                       + ("exact (re-scored)" if req.rescore else "approximate (projected gradients)"))}
    with store.run("query", config=config, dataset=rec["dataset"], model_fingerprint=rec["model_fingerprint"],
                   parent_run=index_run) as run:
        run.write("scores", table.select(pl.lit(req.behaviour).alias("behaviour"), "query_id", "sample_id", "score"),
                  shard=0)
    return run.id


__all__ = ["IndexRequest", "IndexRequestError", "QueryOutcome", "QueryRequest", "build_gradient_index", "run_query"]
