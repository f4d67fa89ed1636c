"""Ensembles: influence averaged over several models trained on the same data with other seeds.

One trained model's influence scores carry that model's randomness (initialisation, batch order):
a retraining on a subset ends somewhere else, so part of what a single-model score predicts is
noise. TRAK averages its scores over models trained with other seeds for that reason; the same
averaging works for any strategy of the engine (bench/lds.py's ``ekfac_ensemble`` row: EK-FAC
over the same models as TRAK's ensemble).

- :func:`ensemble_matrix`: the mean of the members' (queries x train) score matrices.
- :func:`ensemble_pairwise_scores`: the engine's pairwise scores for each member (each its own
  ``attribute`` run, resumable and cached as usual), then one ``attribute`` run holding their mean
  whose config lists the member runs and models.

Scores keep the engine's sign (positive: training on the sample lowered the query's loss); the
members must share the architecture, the tracked modules and the engine settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
from torch import nn

import stores

from .config import EngineConfig
from .data import Samples
from .engine import InfluenceEngine, ScoreRun
from .keys import digest
from .score_tables import score_matrix


def ensemble_matrix(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of the members' score matrices (all the same shape), float64."""
    if not matrices:
        raise ValueError("an ensemble needs at least one member's scores")
    shapes = {np.shape(m) for m in matrices}
    if len(shapes) != 1:
        raise ValueError(f"the members' score matrices differ in shape: {sorted(shapes)}")
    return np.mean(np.stack([np.asarray(m, dtype=np.float64) for m in matrices]), axis=0)


def ensemble_pairwise_scores(
    store: stores.Store,
    models: Sequence[nn.Module],
    task_for: Callable[[nn.Module], Any],
    config: EngineConfig,
    behaviour: str,
    train: Samples,
    queries: Samples,
    *,
    progress: bool = False,
    record: dict[str, Any] | None = None,
    executor: Any = None,
) -> ScoreRun:
    """Pairwise scores averaged over ``models``, written as one ``attribute`` run.

    Each member is scored by its own :class:`~attribution.engine.InfluenceEngine` with
    ``config`` and ``task_for(model)`` (an ``attribute`` run per member, reused when finished).
    The ensemble run's id derives from the member runs, so the same members give the same run.
    One member gives that member's scores in a run of their own (the same numbers). ``record``
    goes into every run's config (as the engine's ``record``).
    """
    t0 = time.perf_counter()
    if not models:
        raise ValueError("an ensemble needs at least one model")
    member_runs, fingerprints, matrices = [], [], []
    for model in models:
        engine = InfluenceEngine(store, model, task_for(model), config, record=record, executor=executor)
        run = engine.pairwise_scores(behaviour, train, queries, progress=progress)
        member_runs.append(run.run_id)
        fingerprints.append(engine.model_fingerprint)
        matrices.append(score_matrix(store, run.run_id, queries.ids, train.ids))
    run_id = f"attribute-ensemble-{digest(member_runs)[:16]}"
    if store.run_finished(run_id):
        return ScoreRun(run_id, 1, 0, time.perf_counter() - t0)
    mean = ensemble_matrix(matrices)
    n, qids = len(train), np.asarray(queries.ids, dtype=object)
    table = pa.table({
        "behaviour": pa.array([behaviour] * (n * len(qids)), pa.string()),
        "query_id": pa.array(np.tile(qids, n), pa.string()),
        "sample_id": pa.array(np.repeat(np.asarray(train.ids, dtype=object), len(qids)), pa.string()),
        "score": pa.array(mean.T.reshape(-1).astype(np.float32)),
    })
    run_config = {"behaviour": behaviour, "engine": asdict(config),
                  "ensemble": {"size": len(models), "member_runs": member_runs, "member_models": fingerprints,
                               "combine": "mean of the members' pairwise scores"},
                  "sign": "positive = training on the sample lowered the query loss", **(record or {})}
    with store.run("attribute", config=run_config, seed=config.seed, dataset=train.dataset,
                   model_fingerprint=fingerprints[0], run_id=run_id) as handle:
        handle.write("scores", table, shard=0)
    return ScoreRun(run_id, 1, 1, time.perf_counter() - t0)


__all__ = ["ensemble_matrix", "ensemble_pairwise_scores"]
