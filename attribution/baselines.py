"""Cheap baselines every influence method must beat, written to the same tables as the engine.

Per-sample statistics go to ``self_scores`` with ``method`` = ``loss``, ``grad_norm`` or
``random``; the gradient dot product (TracIn at the final checkpoint) goes to ``scores`` like any
pairwise method. Each is a run with its config, so SQL compares them with influence side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import data

import stores

from .data import Samples
from .engine import EngineConfig, InfluenceEngine, ScoreRun, run_finished
from .keys import digest, ids_fingerprint, model_fingerprint
from .tasks import InfluenceTask


def write_self_run(
    store: stores.Store, method: str, run_id: str, ids: Sequence[str], values: np.ndarray,
    config: dict[str, Any], seed: int | None, dataset: str | None, model_fp: str | None,
) -> ScoreRun:
    """Per-sample ``values`` of ``method`` as a finished ``baseline`` run of ``self_scores`` (idempotent by run id)."""
    if run_finished(store, run_id):
        return ScoreRun(run_id, 1, 0, 0.0)
    with store.run("baseline", config={"method": method, **config}, seed=seed, dataset=dataset,
                   model_fingerprint=model_fp, run_id=run_id) as run:
        run.write("self_scores", {"sample_id": list(ids), "method": [method] * len(ids),
                                  "score": values.astype(np.float32)}, shard=0)
    return ScoreRun(run_id, 1, 1, 0.0)


@torch.no_grad()
def per_sample_losses(model: nn.Module, task: InfluenceTask, train: data.Dataset, batch_size: int = 64) -> np.ndarray:
    """The task's training loss of every sample, in dataset order."""
    model.eval()
    out = [task.per_sample_loss(batch, model).float().cpu() for batch in data.DataLoader(train, batch_size=batch_size)]
    return torch.cat(out).numpy()


def loss_scores(
    store: stores.Store, model: nn.Module, task: InfluenceTask, train: Samples, *, batch_size: int = 64,
) -> ScoreRun:
    """Per-sample training loss into ``self_scores`` (method ``loss``)."""
    fp = model_fingerprint(model)
    run_id = f"baseline-loss-{digest(fp, ids_fingerprint(train.ids))}"
    if run_finished(store, run_id):  # a repeated request reads nothing and runs no forward pass
        return ScoreRun(run_id, 1, 0, 0.0)
    values = per_sample_losses(model, task, train.data, batch_size)
    return write_self_run(store, "loss", run_id, train.ids, values, {"batch_size": batch_size}, None, train.dataset, fp)


@torch.no_grad()
def mean_token_nll(model: nn.Module, train: data.Dataset, batch_size: int = 64) -> np.ndarray:
    """Each sample's mean negative log-likelihood per completion token (log perplexity), in order.

    Unlike the summed ``loss``, it does not grow with length, so a short post and a long article
    are compared on how surprising their tokens are to the model. Samples without completion
    tokens get NaN.
    """
    from .tasks import CausalLMTask

    task = CausalLMTask(tracked_modules=[])
    model.eval()
    out = []
    for batch in data.DataLoader(train, batch_size=batch_size):
        nll = task._token_nll(batch, model)
        count = (batch["labels"][:, 1:] != -100).sum(1)
        out.append(torch.where(count > 0, nll.sum(1) / count.clamp(min=1), torch.full_like(nll[:, 0], float("nan"))))
    return torch.cat(out).numpy()


def perplexity_scores(store: stores.Store, model: nn.Module, train: Samples, *, batch_size: int = 64) -> ScoreRun:
    """Mean NLL per token under ``model`` into ``self_scores`` (method ``perplexity``; exp() is the perplexity).

    With a reference model trained on clean text, higher means less like the clean text: the
    perplexity evidence of the junk filter.
    """
    fp = model_fingerprint(model)
    run_id = f"baseline-perplexity-{digest(fp, ids_fingerprint(train.ids))}"
    if run_finished(store, run_id):
        return ScoreRun(run_id, 1, 0, 0.0)
    values = mean_token_nll(model, train.data, batch_size)
    return write_self_run(store, "perplexity", run_id, train.ids, values, {"batch_size": batch_size,
                          "unit": "mean nll per token (nats)"}, None, train.dataset, fp)


def random_scores(store: stores.Store, train: Samples, *, seed: int = 0) -> ScoreRun:
    """Uniform random scores into ``self_scores`` (method ``random``): the floor of every comparison."""
    run_id = f"baseline-random-{digest(seed, ids_fingerprint(train.ids))}"
    values = np.random.default_rng(seed).random(len(train.ids))
    return write_self_run(store, "random", run_id, train.ids, values, {}, seed, train.dataset, None)


def gradient_norm_scores(
    store: stores.Store, model: nn.Module, task: InfluenceTask, train: Samples, *, batch_size: int = 32,
) -> ScoreRun:
    """Norm of each sample's training-loss gradient over the tracked modules (method ``grad_norm``).

    Computed as the square root of identity-preconditioned self-influence, with kronfluence's
    per-sample gradients.
    """
    engine = InfluenceEngine(store, model, task, EngineConfig(strategy="identity", batch_size=batch_size,
                                                               shard_size=max(len(train), 1)))
    self_run = engine.self_scores(train)
    sq = store.read_self_scores(self_run.run_id)
    order = {sid: i for i, sid in enumerate(sq["sample_id"].to_list())}
    values = np.sqrt(np.maximum(sq["score"].to_numpy()[[order[s] for s in train.ids]], 0.0))
    run_id = f"baseline-grad_norm-{digest(engine.model_fingerprint, ids_fingerprint(train.ids))}"
    return write_self_run(store, "grad_norm", run_id, train.ids, values,
                           {"batch_size": batch_size, "from_run": self_run.run_id}, None, train.dataset,
                           engine.model_fingerprint)


def gradient_dot_scores(
    store: stores.Store, model: nn.Module, task: InfluenceTask, behaviour: str, train: Samples, queries: Samples,
    *, batch_size: int = 32, shard_size: int = 1024,
) -> ScoreRun:
    """Gradient dot products (TracIn at the final checkpoint) into ``scores``: the identity strategy."""
    engine = InfluenceEngine(store, model, task, EngineConfig(strategy="identity", batch_size=batch_size,
                                                               shard_size=shard_size))
    return engine.pairwise_scores(behaviour, train, queries)
