"""Value scores of a classifier's training samples, written as ``self_scores`` runs for pruning.

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
from attribution.dynamics import ForgettingTracker, el2n_scores, grand_scores
from attribution.keys import data_fingerprint, digest, ids_fingerprint, model_fingerprint
from attribution.tasks import ClassifierTask, LossMeasurementTask

from ..actions.recipes import MLPRecipe

VALUE_SCORES = ("el2n", "grand", "forgetting", "self_influence", "val_influence", "random")


@dataclass
class ValueRuns:
    """The run of each value score, the fully trained model, and seconds per score."""

    runs: dict[str, str]
    model: nn.Module
    seconds: dict[str, float] = field(default_factory=dict)


def value_score_runs(
    store: stores.Store, train: Samples, recipe: MLPRecipe, *, scores: Sequence[str] = VALUE_SCORES,
    seed: int = 0, n_models: int = 3, early_epochs: int = 5, validation: Samples | None = None,
    engine: EngineConfig | None = None,
) -> ValueRuns:
    """Compute (or reuse) the runs of ``scores`` for ``train`` (see the module doc)."""
    unknown = sorted(set(scores) - set(VALUE_SCORES))
    if unknown:
        raise ValueError(f"unknown value score(s) {', '.join(unknown)}; expected some of {', '.join(VALUE_SCORES)}")
    if "val_influence" in scores and validation is None:
        raise ValueError("val_influence needs a validation set")
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
    if "self_influence" in scores or "val_influence" in scores:
        from attribution.engine import InfluenceEngine

        cfg = engine or EngineConfig(seed=seed)
        if "self_influence" in scores:
            t0 = time.perf_counter()
            eng = InfluenceEngine(store, copy.deepcopy(model), ClassifierTask(), cfg)
            out.runs["self_influence"] = eng.self_scores(train).run_id
            out.seconds["self_influence"] = time.perf_counter() - t0
        if "val_influence" in scores:
            t0 = time.perf_counter()
            eng = InfluenceEngine(store, copy.deepcopy(model), LossMeasurementTask(ClassifierTask()), cfg)
            behaviour = f"validation-{digest(ids_fingerprint(validation.ids))[:12]}"
            res = eng.pairwise_scores(behaviour, train, validation)
            df = store.sql("SELECT sample_id, sum(score) AS total FROM scores WHERE run_id = ? GROUP BY 1", [res.run_id])
            where = dict(zip(df["sample_id"].to_list(), df["total"].to_list(), strict=True))
            values = np.array([where[s] for s in train.ids], dtype=np.float64)
            out.runs["val_influence"] = _write(store, "val_influence", [*key, res.run_id], train, values,
                                               {"pairwise_run": res.run_id, "n_validation": len(validation)}, seed, fp)
            out.seconds["val_influence"] = time.perf_counter() - t0
    if "random" in scores:
        out.runs["random"] = random_scores(store, train, seed=seed).run_id
    return out


def _write(store: stores.Store, method: str, key: list[Any], train: Samples, values: np.ndarray,
           config: dict[str, Any], seed: int, model_fp: str | None) -> str:
    run_id = f"value-{method}-{digest(method, *key)}"
    return write_self_run(store, method, run_id, train.ids, np.asarray(values, dtype=np.float64), config, seed,
                          train.dataset, model_fp).run_id


__all__ = ["VALUE_SCORES", "ValueRuns", "value_score_runs"]
