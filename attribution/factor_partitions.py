"""Fitting factors across processes with kronfluence's data partitions, one task per partition.

kronfluence's own multi-process path (DDP under ``torchrun``) needs CUDA and NCCL: on CPU its
state never joins a process group. Its *data partitions* work anywhere: the covariance and
Lambda passes are split into ``P`` contiguous ranges of the training data, each computed
separately and summed. Here each partition is a task of the engine's executor (in this process,
or a Ray task that rebuilds the engine from the store, :mod:`attribution.worker`):

1. covariance: task ``p`` fits partition ``p`` into a folder of its own, then moves its partition
   files into the run's folder (renames; a killed fit keeps the partitions already there);
2. the coordinator sums them (kronfluence's ``aggregate_covariance_matrices``) and runs the
   eigendecomposition;
3. Lambda: the same per partition, loading the eigendecomposition, then summed.

Each partition draws its sampled labels (the true Fisher) from a seed of its own (the engine's
seed, the pass and the partition), so factors are deterministic for a given ``factor_partitions``
whatever runs the tasks, and differ slightly from a single pass (another label draw, another
summation order); the factor cache key holds the partition count.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from kronfluence.factor.config import FactorConfig
from torch.utils import data

from .keys import digest
from .shard_jobs import quiet
from .worker import EngineSpec, worker_engine

STAGES = ("covariance", "lambda")


def partition_seed(seed: int, stage: str, p: int) -> int:
    """The torch seed of partition ``p`` of a pass (``covariance`` or ``lambda``)."""
    return int(digest(seed, stage, p), 16) % (2**63 - 1)


@dataclass
class PartitionFit:
    """One partition of one pass, for an executor: ``work(p)`` fits it unless its files are in place."""

    spec: EngineSpec | None  # None: the coordinator's own engine (local executor)
    stage: str
    factors_name: str  # the run's (temporary) factors folder that collects the partitions
    dataset: data.Dataset
    engine: Any = None

    def __call__(self, p: int) -> str:
        engine = self.engine if self.engine is not None else worker_engine(self.spec)
        analyzer, cfg = engine.analyzer, engine.config
        target = analyzer.factors_output_dir(self.factors_name)
        if _partition_files(target, self.stage, p):
            return "kept"
        private = f"{self.factors_name}.{self.stage}-part{p}-{os.getpid()}"
        args = cfg.factor_arguments()
        torch.manual_seed(partition_seed(cfg.seed, self.stage, p))
        try:
            with quiet():
                if self.stage == "covariance":
                    analyzer.fit_covariance_matrices(
                        factors_name=private, dataset=self.dataset, per_device_batch_size=cfg.batch_size,
                        factor_args=args, target_data_partitions=[p], overwrite_output_dir=True)
                else:
                    analyzer.fit_lambda_matrices(
                        factors_name=private, dataset=self.dataset, per_device_batch_size=cfg.batch_size,
                        factor_args=args, target_data_partitions=[p], overwrite_output_dir=True,
                        load_from_factors_name=self.factors_name)
            source = analyzer.factors_output_dir(private)
            for f in source.glob("*.json"):  # factor arguments and dataset metadata, once
                if not (target / f.name).exists():
                    shutil.copyfile(f, target / f".{f.name}.{os.getpid()}")
                    os.replace(target / f".{f.name}.{os.getpid()}", target / f.name)
            for f in _partition_files(source, self.stage, p):  # the partition's files, each whole
                os.replace(f, target / f.name)
        finally:
            shutil.rmtree(analyzer.factors_output_dir(private), ignore_errors=True)
        return "fitted"


def fit_partitioned(engine: Any, factors_name: str, dataset: data.Dataset) -> None:
    """Fit ``engine``'s factors on ``dataset`` into ``factors_name`` in ``factor_partitions`` tasks per pass."""
    analyzer, n_parts = engine.analyzer, engine.config.factor_partitions
    if len(dataset) < n_parts:
        raise ValueError(f"factor_partitions {n_parts} is more than the {len(dataset)} training samples")
    target = analyzer.factors_output_dir(factors_name)
    target.mkdir(parents=True, exist_ok=True)
    remote = engine.executor.name != "local"
    spec = engine._worker_spec() if remote else None
    args = engine.config.factor_arguments()
    needs = FactorConfig.CONFIGS[args.strategy]
    stages = [s for s, needed in zip(STAGES, (needs.requires_covariance_matrices, needs.requires_lambda_matrices),
                                     strict=True) if needed]
    for stage in stages:
        work = PartitionFit(spec, stage, factors_name, dataset, engine=None if remote else engine)
        engine.executor.run(work, range(n_parts), lambda _p, _r: None)
        with quiet():
            if stage == "covariance":
                analyzer.aggregate_covariance_matrices(factors_name=factors_name)
                analyzer.perform_eigendecomposition(factors_name=factors_name, factor_args=args,
                                                    overwrite_output_dir=True)
            else:
                analyzer.aggregate_lambda_matrices(factors_name=factors_name)


def _partition_files(folder: Path, stage: str, p: int) -> list[Path]:
    """The files of partition ``p`` of a pass in ``folder`` (all of them, or none if any is missing)."""
    if not folder.is_dir():
        return []
    marker = f"_data_partition{p}_"
    names = ("activation_covariance", "gradient_covariance", "num_activation_covariance_processed",
             "num_gradient_covariance_processed") if stage == "covariance" else ("lambda_matrix", "num_lambda_processed")
    found = [f for f in folder.iterdir() if marker in f.name and f.name.startswith(names)]
    return found if len(found) == len(names) else []


__all__ = ["STAGES", "PartitionFit", "fit_partitioned", "partition_seed"]
