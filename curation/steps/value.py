"""Value scores of a classifier's or a causal LM's training samples, written as ``self_scores`` runs for pruning.

Each score is its own run (method name = score name), so :class:`filters.prune.PruneFilter` reads
any of them and a user can compare them in SQL:

=================== =============================================================================
``el2n``            mean EL2N over ``n_models`` models trained ``early_epochs`` epochs (seeds
                    ``seed``, ``seed + 1``...) with the recipe (:mod:`attribution.dynamics`)
``grand``           mean gradient norm over the same early models
``forgetting``      forgetting events over one full training run with the recipe (seed ``seed``)
``self_influence``  the engine's self-influence on the fully trained model
``val_influence``   the summed influence of each sample on a validation set's loss (positive: it
                    helps validation), the engine's pairwise scores against the validation samples
``random``          a seeded draw (the baseline DeepCore finds hard to beat)
=================== =============================================================================

With an :class:`~curation.actions.recipes.MLPRecipe` (a classifier) ``early_epochs`` and epochs
count passes over the data. With an :class:`~curation.actions.recipes.LMRecipe` (GPT-2 on
prompt/completion traces, loss on the completion tokens only) training is counted in steps:

=================== =============================================================================
``el2n``            mean over completion tokens of ``||softmax - onehot(next token)||_2``, averaged
                    over ``n_models`` models at step ``early_steps`` of the recipe's schedule
                    (seeds ``seed``, ``seed + 1``...; the first is the full run's snapshot)
``grand``           the norm of the gradient of the sample's mean completion NLL, same models
``forgetting``      forgetting events of the full run, checked every ``forget_every`` steps: a
                    sample is learned when every completion token's argmax is right under teacher
                    forcing; never-learned samples get ``inf`` (the most forgettable)
``self_influence``, ``val_influence``, ``random``: as above, with the engine's ``CausalLMTask``
=================== =============================================================================

The full LM run is :func:`curation.steps.train.train_lm` itself (so the same weights as
``recipe.fit``) with its ``on_step`` hook reading the training dynamics; early models are the same
schedule stopped at ``early_steps``. A repeated LM request retrains the full model (it is returned) but recomputes no finished
score run.

Run ids are deterministic in the data, the recipe, the seeds and the code's settings, so a repeated
request reuses finished runs.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

import stores
from attribution.baselines import random_scores, write_self_run
from attribution.config import EngineConfig
from attribution.data import Samples
from attribution.dynamics import (
    ForgettingTracker,
    el2n_scores,
    grand_scores,
    lm_el2n_scores,
    lm_grand_scores,
    sequences_learned,
)
from attribution.engine import run_finished
from attribution.keys import data_fingerprint, digest, ids_fingerprint, model_fingerprint
from attribution.tasks import CausalLMTask, ClassifierTask, InfluenceTask, LossMeasurementTask

from ..actions.recipes import LMRecipe, MLPRecipe, completion_tensors
from .train import train_lm

VALUE_SCORES = ("el2n", "grand", "forgetting", "self_influence", "val_influence", "random")


@dataclass
class ValueRuns:
    """The run of each value score, the fully trained model, and seconds per score."""

    runs: dict[str, str]
    model: nn.Module
    seconds: dict[str, float] = field(default_factory=dict)


def value_score_runs(
    store: stores.Store, train: Samples, recipe: MLPRecipe | LMRecipe, *, scores: Sequence[str] = VALUE_SCORES,
    seed: int = 0, n_models: int = 3, early_epochs: int = 5, validation: Samples | None = None,
    engine: EngineConfig | None = None, early_steps: int | None = None, forget_every: int | None = None,
) -> ValueRuns:
    """Compute (or reuse) the runs of ``scores`` for ``train`` (see the module doc).

    ``early_epochs`` applies to an :class:`MLPRecipe`; ``early_steps`` (default a tenth of the
    steps) and ``forget_every`` (default a tenth of the steps) to an :class:`LMRecipe`.
    """
    unknown = sorted(set(scores) - set(VALUE_SCORES))
    if unknown:
        raise ValueError(f"unknown value score(s) {', '.join(unknown)}; expected some of {', '.join(VALUE_SCORES)}")
    if "val_influence" in scores and validation is None:
        raise ValueError("val_influence needs a validation set")
    if isinstance(recipe, LMRecipe):
        return _lm_value_runs(store, train, recipe, scores, seed, n_models, early_steps, forget_every, validation,
                              engine)
    if not 1 <= early_epochs <= recipe.epochs:
        raise ValueError(f"early_epochs must be in [1, {recipe.epochs}] (the recipe's epochs), got {early_epochs}")
    key = [ids_fingerprint(train.ids), data_fingerprint(train.data), dataclasses.asdict(recipe), seed]
    out = ValueRuns({}, None)  # type: ignore[arg-type]
    tracker = ForgettingTracker(len(train))
    t0 = time.perf_counter()
    model = recipe.fit(recipe.fresh(seed), train.data, seed, on_epoch=lambda e, m: tracker(m, train.data))
    out.model = model
    fp = model_fingerprint(model)
    if "forgetting" in scores:
        out.runs["forgetting"] = _write(store, "forgetting", key, train, tracker.scores(), {"epochs": recipe.epochs},
                                        seed, fp)
        out.seconds["forgetting"] = time.perf_counter() - t0
    if "el2n" in scores or "grand" in scores:
        t0 = time.perf_counter()
        early = dataclasses.replace(recipe, epochs=early_epochs)
        models = [early.fit(early.fresh(seed + k), train.data, seed + k) for k in range(n_models)]
        settings = {"early_epochs": early_epochs, "n_models": n_models}
        for name, fn in (("el2n", el2n_scores), ("grand", grand_scores)):
            if name in scores:
                out.runs[name] = _write(store, name, [*key, settings], train, fn(models, train.data), settings, seed, None)
        out.seconds["el2n+grand"] = time.perf_counter() - t0
    _influence_runs(store, train, model, ClassifierTask(), scores, key, seed, validation, engine, fp, out)
    if "random" in scores:
        out.runs["random"] = random_scores(store, train, seed=seed).run_id
    return out


def _influence_runs(store: stores.Store, train: Samples, model: nn.Module, task: InfluenceTask, scores: Sequence[str],
                    key: list[Any], seed: int, validation: Samples | None, engine: EngineConfig | None, fp: str,
                    out: ValueRuns) -> None:
    """The self-influence and validation-influence runs of ``model`` under ``task`` (into ``out``)."""
    if "self_influence" not in scores and "val_influence" not in scores:
        return
    from attribution.engine import InfluenceEngine

    cfg = engine or EngineConfig(seed=seed)
    if "self_influence" in scores:
        t0 = time.perf_counter()
        eng = InfluenceEngine(store, copy.deepcopy(model), task, cfg)
        out.runs["self_influence"] = eng.self_scores(train).run_id
        out.seconds["self_influence"] = time.perf_counter() - t0
    if "val_influence" in scores:
        t0 = time.perf_counter()
        eng = InfluenceEngine(store, copy.deepcopy(model), LossMeasurementTask(task), cfg)
        behaviour = f"validation-{digest(ids_fingerprint(validation.ids))[:12]}"
        res = eng.pairwise_scores(behaviour, train, validation)
        run_id = _run_id("val_influence", [*key, res.run_id])
        if not run_finished(store, run_id):
            df = store.sql("SELECT sample_id, sum(score) AS total FROM scores WHERE run_id = ? GROUP BY 1", [res.run_id])
            where = dict(zip(df["sample_id"].to_list(), df["total"].to_list(), strict=True))
            values = np.array([where[s] for s in train.ids], dtype=np.float64)
            _write(store, "val_influence", [*key, res.run_id], train, values,
                   {"pairwise_run": res.run_id, "n_validation": len(validation)}, seed, fp)
        out.runs["val_influence"] = run_id
        out.seconds["val_influence"] = time.perf_counter() - t0


def _lm_value_runs(store: stores.Store, train: Samples, recipe: LMRecipe, scores: Sequence[str], seed: int,
                   n_models: int, early_steps: int | None, forget_every: int | None, validation: Samples | None,
                   engine: EngineConfig | None) -> ValueRuns:
    """The LM path of :func:`value_score_runs` (see the module doc)."""
    from curation.steps.train import tokenizer_key

    if n_models < 1:
        raise ValueError(f"n_models must be at least 1, got {n_models}")
    steps = recipe.lm.steps
    early_steps = max(1, steps // 10) if early_steps is None else early_steps
    forget_every = max(1, steps // 10) if forget_every is None else forget_every
    if not 1 <= early_steps <= steps:
        raise ValueError(f"early_steps must be in [1, {steps}] (the recipe's steps), got {early_steps}")
    if not 1 <= forget_every <= steps:
        raise ValueError(f"forget_every must be in [1, {steps}] (the recipe's steps), got {forget_every}")
    data = completion_tensors(train.data)
    key = [ids_fingerprint(train.ids), data_fingerprint(data), recipe.config(), tokenizer_key(recipe.tokenizer), seed]
    early_settings = {"early_steps": early_steps, "n_models": n_models, "loss": "mean completion-token NLL"}
    forget_settings = {"steps": steps, "forget_every": forget_every, "learned": "every completion token's argmax"}
    ids = {"forgetting": _run_id("forgetting", [*key, forget_settings]),
           **{name: _run_id(name, [*key, early_settings]) for name in ("el2n", "grand")}}
    todo = {name for name in ("forgetting", "el2n", "grand") if name in scores and not run_finished(store, ids[name])}
    out = ValueRuns({}, None)  # type: ignore[arg-type]
    tracker = ForgettingTracker(len(train)) if "forgetting" in todo else None
    early: list[nn.Module] = []

    def on_step(step: int, model: nn.Module) -> None:
        if tracker is not None and (step % forget_every == 0 or step == steps):
            tracker.record(sequences_learned(model, data))
        if step == early_steps and todo & {"el2n", "grand"}:
            early.append(copy.deepcopy(model).eval())

    t0 = time.perf_counter()
    model = recipe.fresh(seed)
    train_lm(model, data, recipe.lm, seed, on_step=on_step)
    out.model = model
    fp = model_fingerprint(model)
    if "forgetting" in scores:
        if tracker is not None:
            _write(store, "forgetting", [*key, forget_settings], train, tracker.scores(),
                   forget_settings | {"checks": tracker.checks}, seed, fp)
        out.runs["forgetting"] = ids["forgetting"]
        out.seconds["forgetting"] = time.perf_counter() - t0
    if "el2n" in scores or "grand" in scores:
        t0 = time.perf_counter()
        if todo & {"el2n", "grand"}:
            for k in range(1, n_models):
                early.append(recipe.fresh(seed + k))
                train_lm(early[-1], data, recipe.lm, seed + k, stop=early_steps)
        for name, fn in (("el2n", lm_el2n_scores), ("grand", lm_grand_scores)):
            if name in scores:
                if name in todo:
                    _write(store, name, [*key, early_settings], train, fn(early, data), early_settings, seed, None)
                out.runs[name] = ids[name]
        out.seconds["el2n+grand"] = time.perf_counter() - t0
    _influence_runs(store, train, model, CausalLMTask(model), scores, key, seed, validation, engine, fp, out)
    if "random" in scores:
        out.runs["random"] = random_scores(store, train, seed=seed).run_id
    return out


def _run_id(method: str, key: list[Any]) -> str:
    return f"value-{method}-{digest(method, *key)}"


def _write(store: stores.Store, method: str, key: list[Any], train: Samples, values: np.ndarray,
           config: dict[str, Any], seed: int, model_fp: str | None) -> str:
    run_id = _run_id(method, key)
    return write_self_run(store, method, run_id, train.ids, np.asarray(values, dtype=np.float64), config, seed,
                          train.dataset, model_fp).run_id


__all__ = ["VALUE_SCORES", "ValueRuns", "value_score_runs"]
