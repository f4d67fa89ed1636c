"""Scoring shards in other processes: the model and factors travel through the store.

The coordinator saves the model's weights (every parameter and buffer) to the store's
artifacts as safetensors, once per model fingerprint, and sends each worker a
:class:`ShardWork`: the store's path, the model's architecture with no weights (meta tensors),
the task, the engine config and the shard job. A worker rebuilds the model from the weights
file, checks that its fingerprint is the coordinator's, builds an
:class:`~attribution.engine.InfluenceEngine` once per process (the fitted factors are read from
the store's kronfluence artifacts) and writes its shard with ``exclusive=True``: a shard already
on disk is skipped or kept, never replaced. Workers never open the catalog.

Multi-node: the store folder must be the same path on every node (a shared filesystem).
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import stores
from stores.atomic import atomic_path
from stores.shards import completed_shards, write_shard

from .config import EngineConfig
from .damping import damping_scale
from .keys import digest, model_fingerprint
from .shard_jobs import ShardJob
from .tasks import InfluenceTask


class WorkerModelError(RuntimeError):
    """A worker rebuilt a model that is not the coordinator's (weights file changed or incomplete)."""


@dataclass
class ModelArtifact:
    """A model another process can rebuild: its architecture (meta tensors) and its weights file."""

    skeleton: nn.Module
    weights: str
    fingerprint: str

    def load(self, device: str = "cpu") -> nn.Module:
        """The model with its weights, checked against the fingerprint it was saved with."""
        model = copy.deepcopy(self.skeleton).to_empty(device=device)
        with safe_open(self.weights, framework="pt", device=device) as fh:
            aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
            with torch.no_grad():
                for name, tensor in _named_tensors(model):
                    tensor.copy_(fh.get_tensor(aliases.get(name, name)))
        found = model_fingerprint(model)
        if found != self.fingerprint:
            raise WorkerModelError(f"the model rebuilt from {self.weights} has fingerprint {found}, expected "
                                   f"{self.fingerprint}: the weights file was changed or is from another model")
        return model.eval()


def save_model_artifact(store: stores.Store, model: nn.Module, fingerprint: str) -> ModelArtifact:
    """Save ``model``'s parameters and buffers to ``artifacts/models/<fingerprint>.safetensors`` (once).

    Buffers that are not in the state dict (rotary frequencies, causal masks) are saved too, so
    the rebuilt model computes exactly what this one does. Tied weights are saved once.
    """
    path = store.artifact_dir("models") / f"{fingerprint}.safetensors"
    if not path.is_file():
        tensors, aliases, first = {}, {}, {}
        for name, tensor in _named_tensors(model):
            if id(tensor) in first:
                aliases[name] = first[id(tensor)]
                continue
            first[id(tensor)] = name
            tensors[name] = tensor.detach().cpu().contiguous().clone()
        with atomic_path(path, exclusive=True) as tmp:
            save_file(tensors, str(tmp), metadata={"aliases": json.dumps(aliases), "fingerprint": fingerprint})
    return ModelArtifact(_skeleton(model), str(Path(path).resolve()), fingerprint)


def _named_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter and buffer with every name it has (tied ones under each)."""
    return [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]


def _skeleton(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with meta tensors (no memory, no weights): its architecture only."""
    memo: dict[int, Any] = {}
    for _, t in _named_tensors(model):
        if id(t) in memo:
            continue
        empty = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(empty, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else empty
    return copy.deepcopy(model, memo)


@dataclass
class EngineSpec:
    """What a worker needs to build the coordinator's engine: its class, store, model, task and config."""

    engine_class: type
    store_root: str
    model: ModelArtifact
    task: InfluenceTask
    config: EngineConfig

    def key(self) -> str:
        """Identifies the engine a worker may reuse across tasks."""
        return digest(self.store_root, self.model.fingerprint, type(self.task).__name__,
                      self.task.get_influence_tracked_modules(), repr(self.config))


_ENGINES: dict[str, Any] = {}  # one engine per worker process and spec


def worker_engine(spec: EngineSpec) -> Any:
    """This process's engine for ``spec`` (built on first use: model from the store, factors on demand)."""
    engine = _ENGINES.get(spec.key())
    if engine is None:
        store = stores.Store(spec.store_root)  # the folder only: workers never open the catalog
        engine = spec.engine_class(store, spec.model.load(spec.config.device), spec.task, spec.config)
        _ENGINES.clear()  # a worker serves one job at a time: keep one model in memory
        _ENGINES[spec.key()] = engine
    return engine


@dataclass
class ShardWork:
    """One run's shards for an executor: ``work(k)`` computes and writes shard ``k`` if it is not on disk."""

    spec: EngineSpec
    job: ShardJob
    run_id: str

    def __call__(self, k: int) -> dict[str, Any]:
        store = stores.Store(self.spec.store_root)
        started = time.perf_counter()
        if k in completed_shards(store, self.job.tables[-1], self.run_id):
            return {"shard": k, "skipped": True, "pid": os.getpid(), "seconds": 0.0}
        engine = worker_engine(self.spec)
        with damping_scale(engine.config.damping_scale):
            tables = self.job.compute(engine, k)
        for table in self.job.tables:  # the last table marks the shard as done
            write_shard(store, table, self.run_id, tables[table], shard=k, exclusive=True)
        return {"shard": k, "skipped": False, "pid": os.getpid(), "seconds": time.perf_counter() - started}


__all__ = ["EngineSpec", "ModelArtifact", "ShardWork", "WorkerModelError", "save_model_artifact", "worker_engine"]
