"""Evidence for flag expansion: how much each training sample resembles a few known-bad samples.

A team that has identified some bad training samples (a set K, part of a larger manipulated set)
wants the rest. Every signal here is written to the store as an ordinary run, so the expansion
filter (:mod:`filters.expansion`) reads them like any other evidence and a user can query them:

- ``influence``: pairwise influence of every training sample on the *loss* of each known-bad
  sample (the engine's ``attribute`` run under :class:`~attribution.tasks.LossMeasurementTask`;
  K registered as a behaviour of the training dataset).
  A sample that lowers the known-bad samples' loss teaches what they teach.
- ``self_influence``: every sample's self-influence (the engine's ``self-influence`` run), which
  normalises the pairwise scores into a similarity: ``score(k, t) / sqrt(self(k) self(t))`` is
  the cosine of the two preconditioned gradients (the filter computes it).
- ``representation``: cosine similarity of the model's representations (the input of its output
  layer, :mod:`attribution.representations`) to each known-bad sample, as a ``similarity`` run of
  ``scores`` rows (query = the known-bad sample), the nearest-neighbour baseline. For a classifier
  only samples with the known-bad sample's (given) label count as its neighbours (others get -1):
  a mislabelled or poisoned sample is an input that looks like one class and carries another's
  label, so the label is half of what makes it bad.
- ``input``: the same at the input of the model's *first* Linear layer (the features as the model
  receives them; for a transformer, the first block's input): a trigger patch or the look of a
  mislabelled image is plainest there, before training has folded it into the target class.
- ``loss``: every sample's training loss (the ``loss`` baseline).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from torch import nn

import stores

from .baselines import loss_scores
from .config import EngineConfig
from .data import Samples
from .engine import InfluenceEngine, run_finished
from .keys import digest, ids_fingerprint, model_fingerprint, short_digest
from .representations import cosine_similarities, representations
from .tasks import InfluenceTask, LossMeasurementTask

#: The evidence runs :func:`expansion_evidence` writes, by name.
EVIDENCE = ("influence", "self_influence", "representation", "input", "loss")


@dataclass
class ExpansionEvidence:
    """The runs holding the evidence of one expansion request, and the known-bad set they are about."""

    behaviour: str
    known_ids: list[str]
    runs: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def known_bad_behaviour(known_ids: list[str]) -> str:
    """The behaviour name of a known-bad set (stable for the same ids in any order)."""
    return f"known-bad-{short_digest(sorted(known_ids))}"


def check_known(train: Samples, known_ids: list[str]) -> list[int]:
    """Indices of the known-bad ids in the training samples; a clear error for empty or unknown ids."""
    if not known_ids:
        raise ValueError("the known-bad set is empty: give at least one sample id to expand from")
    where = {s: i for i, s in enumerate(train.ids)}
    missing = [s for s in known_ids if s not in where]
    if missing:
        name = f" {train.dataset!r}" if train.dataset else ""
        raise ValueError(f"{len(missing)} known-bad id(s) are not in the training dataset{name}, e.g. {missing[0]!r}")
    return [where[s] for s in known_ids]


def expansion_evidence(
    store: stores.Store, model: nn.Module, task: InfluenceTask, train: Samples, known_ids: list[str], *,
    config: EngineConfig | None = None, evidence: tuple[str, ...] = EVIDENCE, progress: bool = False,
) -> ExpansionEvidence:
    """Compute (or reuse) the evidence runs of :data:`EVIDENCE` for ``known_ids`` among ``train``.

    ``train.dataset`` must be a store dataset (the known-bad set is registered as a behaviour of
    it). The model is not changed (the engine works on a copy). Every run is resumable and a
    repeated request reuses finished runs.
    """
    if train.dataset is None:
        raise ValueError("flag expansion needs the training samples of a store dataset (Samples.dataset)")
    unknown = sorted(set(evidence) - set(EVIDENCE))
    if unknown:
        raise ValueError(f"unknown evidence {', '.join(unknown)}; expected some of {', '.join(EVIDENCE)}")
    idx = sorted(set(check_known(train, list(known_ids))))  # training order: the same set gives the same runs
    known_ids = [train.ids[i] for i in idx]
    behaviour = known_bad_behaviour(known_ids)
    out = ExpansionEvidence(behaviour, known_ids)
    store.add_behaviour(behaviour, train.dataset, "loss", query_ids=known_ids,
                        description=f"loss of {len(known_ids)} known-bad samples (flag expansion)", replace=True)
    model = model.eval()
    for name, layer in (("representation", "output"), ("input", "input")):
        if name in evidence:
            t0 = time.perf_counter()
            out.runs[name] = _representation_run(store, model, task, train, idx, behaviour, layer)
            out.seconds[name] = time.perf_counter() - t0
    if "loss" in evidence:
        t0 = time.perf_counter()
        out.runs["loss"] = loss_scores(store, model, task, train).run_id
        out.seconds["loss"] = time.perf_counter() - t0
    if "influence" in evidence or "self_influence" in evidence:
        engine = InfluenceEngine(store, copy.deepcopy(model), LossMeasurementTask(task), config or EngineConfig())
        if "influence" in evidence:
            t0 = time.perf_counter()
            out.runs["influence"] = engine.pairwise_scores(behaviour, train, train.subset(idx),
                                                           progress=progress).run_id
            out.seconds["influence"] = time.perf_counter() - t0
        if "self_influence" in evidence:
            t0 = time.perf_counter()
            out.runs["self_influence"] = engine.self_scores(train, progress=progress).run_id
            out.seconds["self_influence"] = time.perf_counter() - t0
    return out


def _representation_run(store: stores.Store, model: nn.Module, task: InfluenceTask, train: Samples,
                        idx: list[int], behaviour: str, layer: str = "output") -> str:
    """Cosine similarities of every training sample's representation to each known-bad one (a ``similarity`` run)."""
    fp = model_fingerprint(model)
    known = [train.ids[i] for i in idx]
    parts = [] if layer == "output" else [layer]  # output-layer run ids as before
    run_id = f"similarity-{digest(fp, ids_fingerprint(train.ids), ids_fingerprint(known), *parts)}"
    if run_finished(store, run_id):
        return run_id
    reps = representations(model, train.data, _forward(task), layer=layer)
    sims = cosine_similarities(reps, reps[idx])  # (N, K)
    labels = _class_labels(train)
    if labels is not None:  # a classifier: a neighbour counts only with the known-bad sample's (given) label
        sims = np.where(labels[:, None] == labels[idx][None, :], sims, -1.0)
    n, k = sims.shape
    table = pa.table({
        "behaviour": pa.array([behaviour] * (n * k), pa.string()),
        "query_id": pa.array(np.tile(np.asarray(known, dtype=object), n), pa.string()),
        "sample_id": pa.array(np.repeat(np.asarray(train.ids, dtype=object), k), pa.string()),
        "score": pa.array(sims.reshape(-1).astype(np.float32)),
    })
    where = "output layer" if layer == "output" else "first Linear layer"
    config: dict[str, Any] = {"evidence": "representation" if layer == "output" else "input", "behaviour": behaviour,
                              "measure": "cosine", "layer": f"input of the {where}, mean over tokens", "n_known": k,
                              "same_label_only": labels is not None}
    with store.run("similarity", config=config, dataset=train.dataset, model_fingerprint=fp, run_id=run_id) as run:
        run.write("scores", table, shard=0)
    return run_id


def _class_labels(train: Samples) -> np.ndarray | None:
    """The integer class labels of (inputs, label) samples (a classifier's data), else None."""
    import torch

    tensors = getattr(train.data, "tensors", None)
    if tensors is not None and len(tensors) == 2 and not torch.is_floating_point(tensors[1]) and tensors[1].dim() == 1:
        return tensors[1].numpy()
    return None


def _forward(task: InfluenceTask):
    def forward(batch: Any, model: nn.Module) -> None:
        task.per_sample_loss(batch, model)
    return forward


__all__ = ["EVIDENCE", "ExpansionEvidence", "check_known", "expansion_evidence", "known_bad_behaviour"]
