"""Attribute a behaviour to training samples: the library behind ``curation attribute``.

Everything a request needs is checked before any work starts (the model folder, the context
length, empty datasets, feature counts), so a bad request fails in one line and leaves nothing in
the store. A behaviour given as ``queries`` is registered only once its scores are written: a
failed run leaves no behaviour behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stores

from .model_folder import (
    AttributeRequestError,
    check_model_folder,
    model_context_length,
    resolve_max_length,
)

TASKS = ("causal-lm", "classifier", "regression")
MEASUREMENTS = {"causal-lm": "completion_nll", "classifier": "neg_margin", "regression": "squared_error"}


@dataclass
class AttributeRequest:
    """One attribution request: what to score, against which behaviour, and how."""

    train: str
    model: Path
    task: str = "causal-lm"
    tokenizer: Path | None = None
    behaviour: str | None = None
    queries: str | None = None
    features: list[str] | None = None
    label_field: str = "label"
    strategy: str = "ekfac"  # or "auto": the choice of a stored validation (see curation.steps.auto_setting)
    damping: float | None = None
    damping_scale: float = 1.0
    damping_auto: bool = False
    auto_budget_s: float | None = None  # with auto and no stored validation: validate now, in this time
    clip_gradients: float | None = None  # clip gradients above this multiple of the median norm
    outlier_check: bool = True  # report samples whose gradient norm dwarfs the median
    max_length: int | None = None
    batch_size: int = 16
    shard_size: int = 1024
    low_rank: int | None = None
    per_module: bool = False
    explain_top: int = 0
    self_influence: bool = False
    seed: int = 0
    factor_partitions: int = 1  # kronfluence data partitions of the factor fit, one executor task each
    executor: Any = None  # stores.executors: LocalExecutor (None) or RayExecutor for the scoring shards


@dataclass
class AttributeResult:
    """What an attribution did: the runs written and their sizes."""

    behaviour: str
    run_id: str
    n_train: int
    n_queries: int
    shards_computed: int
    shards_total: int
    seconds: float
    max_length: int | None = None
    token_run_id: str | None = None
    n_explained: int = 0
    self_run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    strategy: str = ""
    auto: dict[str, Any] | None = None
    outliers: str | None = None


def _check_rows(n: int, what: str, name: str) -> None:
    if n == 0:
        raise AttributeRequestError(f"{what} {name!r} has no samples; nothing to attribute")


def _resolve_auto(store: stores.Store, req: AttributeRequest, net: Any, train: Any, query_dataset: str) -> Any:
    """``--strategy auto`` / ``--damping auto``: a stored validation's choice, or one run now within the budget."""
    from attribution.keys import ids_fingerprint, model_fingerprint

    from .auto_setting import resolve_auto
    from .validation import ValidateRequest, run_validate

    task = {"causal-lm": "lm"}.get(req.task, req.task)
    hint = (f"curation validate --train {req.train} --queries {query_dataset} --model {req.model} --task {task}")

    def validate_now(strategies: list[str]) -> None:
        run_validate(store, ValidateRequest(
            train=req.train, queries=query_dataset, model=req.model, task=task, tokenizer=req.tokenizer,
            features=req.features, label_field=req.label_field, max_length=req.max_length, strategies=strategies,
            budget_s=float(req.auto_budget_s or 0), seed=req.seed))

    return resolve_auto(store, model_fingerprint(net), ids_fingerprint(train.ids), strategy=req.strategy,
                        damping_auto=req.damping_auto, validate_now=validate_now if req.auto_budget_s else None,
                        hint=hint)


def _ensemble_members(store: stores.Store, req: AttributeRequest, names: list[str]) -> list[Any]:
    """The validation's ensemble members: its cached weights loaded into fresh copies of ``req.model``."""
    from safetensors.torch import load_model

    from attribution.models import load_causal_lm, load_mlp

    from .validation_retrain import cached_model_path

    members = []
    for name in names:
        path = cached_model_path(store, name)
        if not path.is_file():
            raise AttributeRequestError(f"--strategy auto: the validation chose an ensemble, but its model {name} is "
                                        f"no longer in the store ({path}); run the validation again")
        net = load_causal_lm(req.model) if req.task == "causal-lm" else load_mlp(req.model)
        load_model(net, str(path))
        members.append(net.eval())
    return members


def run_attribution(store: stores.Store, req: AttributeRequest, *, progress: bool = False) -> AttributeResult:
    """Score every training sample of ``req.train`` against the behaviour; resumable.

    Loads the model (safetensors only), checks the request, fits or reuses factors, writes the
    pairwise scores run and, on request, per-token scores of each query's top samples and
    self-influence. Returns the run ids and sizes.
    """
    from attribution.engine import STRATEGIES, EngineConfig, InfluenceEngine
    from attribution.ensemble import ensemble_pairwise_scores

    if req.task not in TASKS:
        raise AttributeRequestError(f"--task {req.task}: expected one of {', '.join(TASKS)}")
    if req.strategy not in (*STRATEGIES, "auto"):
        raise AttributeRequestError(f"--strategy {req.strategy}: expected auto or one of {', '.join(STRATEGIES)}")
    if req.behaviour is None and req.queries is None:
        raise AttributeRequestError("give --behaviour NAME (a registered behaviour) or --queries DATASET")
    if req.explain_top and req.task != "causal-lm":
        raise AttributeRequestError("--explain-top: per-token scores need a causal LM (--task causal-lm)")
    _check_rows(store.dataset_info(req.train)["n_samples"], "training dataset", req.train)
    measurement = MEASUREMENTS[req.task]
    if req.queries is not None:
        _check_rows(store.dataset_info(req.queries)["n_samples"], "query dataset", req.queries)
        behaviour = req.behaviour or f"{req.queries}-{'completions' if req.task == 'causal-lm' else 'labels'}"
        stores.store.validate_name(behaviour, "behaviour")
        query_dataset, wanted = req.queries, None
    else:
        behaviour = req.behaviour
        rec = store.behaviour(behaviour)
        query_dataset, wanted = rec["dataset"], rec["query_ids"]
    check_model_folder(req.model, req.task)

    tok, max_length = None, None
    if req.task == "causal-lm":
        from attribution.data import completion_samples
        from attribution.models import load_causal_lm, load_tokenizer
        from attribution.tasks import CausalLMTask

        net = load_causal_lm(req.model)
        max_length = resolve_max_length(req.max_length, model_context_length(net), req.model)
        tok = load_tokenizer(req.tokenizer or req.model)
        train = completion_samples(store, req.train, tok, max_length)
        queries = completion_samples(store, query_dataset, tok, max_length, wanted)
        influence_task = CausalLMTask(net)
    else:
        from attribution.data import tabular_samples
        from attribution.models import load_mlp
        from attribution.tasks import ClassifierTask, RegressionTask

        net = load_mlp(req.model)
        regression = req.task == "regression"
        train, cols = tabular_samples(store, req.train, req.features, req.label_field, regression=regression)
        queries, _ = tabular_samples(store, query_dataset, cols, req.label_field, wanted, regression=regression)
        if train.data.tensors[0].shape[1] != net.config["n_in"]:
            raise AttributeRequestError(
                f"--features: the model takes {net.config['n_in']} features, the data has "
                f"{train.data.tensors[0].shape[1]} ({', '.join(cols)})")
        influence_task = RegressionTask() if regression else ClassifierTask()
    _check_rows(len(queries), "query set" if req.queries is None else "query dataset", query_dataset)

    strategy, damping, record = req.strategy, {"damping": req.damping, "damping_scale": req.damping_scale}, {}
    choice = None
    if req.strategy == "auto" or req.damping_auto:
        choice = _resolve_auto(store, req, net, train, query_dataset)
        strategy, damping, record = choice.strategy, choice.engine, {"auto": choice.record()}
    try:
        cfg = EngineConfig(strategy=strategy, batch_size=req.batch_size, shard_size=req.shard_size,
                           low_rank=req.low_rank, seed=req.seed, clip_gradient_ratio=req.clip_gradients,
                           factor_partitions=req.factor_partitions, **damping)
    except ValueError as exc:
        raise AttributeRequestError(f"--damping / --clip-gradients / --factor-partitions: {exc}") from exc
    engine = InfluenceEngine(store, net, influence_task, cfg, record=record, executor=req.executor)
    ensemble = choice.ensemble if choice is not None else 1
    if ensemble > 1:  # the validation found the scores averaged over more models better
        if req.per_module:
            raise AttributeRequestError("--per-module: the validation chose an ensemble, whose scores are averaged "
                                        "over models; give a fixed --strategy for per-module scores")
        members = [net] + _ensemble_members(store, req, choice.ensemble_models)
        res = ensemble_pairwise_scores(store, members, lambda _m: influence_task, cfg, behaviour, train, queries,
                                          progress=progress, record=record, executor=req.executor)
    else:
        res = engine.pairwise_scores(behaviour, train, queries, per_module=req.per_module, progress=progress)
    if req.queries is not None:  # registered only now: a failed run leaves no behaviour behind
        store.add_behaviour(behaviour, req.queries, measurement, query_ids=queries.ids,
                            description=f"{measurement} of {req.queries}", replace=True)
    result = AttributeResult(behaviour=behaviour, run_id=res.run_id, n_train=len(train), n_queries=len(queries),
                             shards_computed=res.shards_computed, shards_total=res.shards_total, seconds=res.seconds,
                             max_length=max_length, strategy=strategy, auto=record.get("auto"))
    if req.outlier_check or req.clip_gradients is not None:
        result.outliers = engine.gradient_outliers(train).describe()
    if req.explain_top:
        tres = top_pusher_token_scores(engine, behaviour, train, queries, res.run_id, req.explain_top, tok,
                                       by="abs")
        result.token_run_id, result.n_explained = tres.run_id, tres.n_samples
    if req.self_influence:
        result.self_run_id = engine.self_scores(train, progress=progress).run_id
    return result


@dataclass
class TokenScoresResult:
    """The per-token scores run of the top pushers, and how many training samples it explains."""

    run_id: str
    n_samples: int


def top_pusher_token_scores(engine: Any, behaviour: str, train: Any, queries: Any, scores_run: str, k: int,
                            tokenizer: Any, *, by: str = "score", max_samples: int | None = None) -> TokenScoresResult:
    """Per-token scores of each query's top-``k`` training samples in a pairwise ``scores_run``.

    ``by="score"`` takes the most positive (the samples that pushed the behaviour most),
    ``by="abs"`` the largest in magnitude either way. The chosen samples keep training order;
    ``max_samples`` caps how many are explained (per-token scores cost one pass per sample).
    """
    order = {"score": "score DESC", "abs": "abs(score) DESC"}[by]
    top = set(engine.store.sql(
        f"""SELECT DISTINCT sample_id FROM scores WHERE run_id = ?
            QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY {order}) <= ?""",
        [scores_run, k])["sample_id"].to_list())
    chosen = [sid for sid in train.ids if sid in top][:max_samples]
    run = engine.token_scores(behaviour, train, queries, chosen, tokenizer=tokenizer)
    return TokenScoresResult(run.run_id, len(chosen))
