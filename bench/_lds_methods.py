"""The LDS benchmark's methods: every (queries x training samples) score matrix it judges (helpers of ``bench/lds.py``).

Each function scores the training samples of a :class:`~_lds_data.Split` against its queries with
the toolkit's sign: positive = training on the sample lowered the query's loss.

- :func:`engine_scores`: the toolkit's engine (:class:`attribution.engine.InfluenceEngine`) with a
  strategy and damping fields (``damping`` / ``damping_scale``; default: the heuristic).
- :func:`kronfluence_default_scores`: kronfluence's ``Analyzer`` used directly, with a minimal Task
  written as in kronfluence's own examples (UCI, CIFAR-10, WikiText) and its default
  ``FactorArguments()`` / ``ScoreArguments()`` (EK-FAC, damping 1e-8, every Linear tracked).
- :func:`trak_scores`: TRAK (the ``traker`` package, CPU ``BasicProjector``), an ensemble of models.
- :func:`baseline_scores`: ``loss`` (minus each training sample's loss, the same for every query)
  and ``random``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _lds_data import SPECS, Split, n_params, task_for
from torch import nn


def sample_ids(kind: str, split: Split) -> tuple[list[str], list[str]]:
    """Training and query ids of a split (the same for every seed: caches key on data contents too)."""
    return [f"{kind}-t{i}" for i in range(split.n_train)], [f"{kind}-q{i}" for i in range(split.n_queries)]


def batch_size(kind: str) -> int:
    """Engine batch size: 128 rows for the MLPs, 32 sequences for the LM."""
    return 32 if kind == "lm" else 128


def engine_scores(kind: str, model: nn.Module, split: Split, strategy: str, seed: int, **engine: Any) -> np.ndarray:
    """(queries, train) scores from the engine (kronfluence underneath, our task and settings)."""
    import stores
    from attribution.data import Samples
    from attribution.engine import EngineConfig, InfluenceEngine, score_matrix

    ids, qids = sample_ids(kind, split)
    model = copy.deepcopy(model)
    with tempfile.TemporaryDirectory() as tmp:
        store = stores.open(Path(tmp) / "store")
        cfg = EngineConfig(strategy=strategy, batch_size=batch_size(kind), shard_size=len(ids), seed=seed, **engine)
        eng = InfluenceEngine(store, model, task_for(kind, model), cfg)
        run = eng.pairwise_scores("queries", Samples(split.train, ids), Samples(split.queries, qids))
        return score_matrix(store, run.run_id, qids, ids).astype(np.float64)


# ---------------------------------------------------------------------- kronfluence with its defaults
def _kronfluence_task(kind: str):
    """A minimal kronfluence Task written as in kronfluence's own examples (UCI, CIFAR-10, WikiText)."""
    from kronfluence.task import Task

    class RegressionTask(Task):
        def compute_train_loss(self, batch, model, sample=False):
            inputs, targets = batch
            outputs = model(inputs).squeeze(-1)
            if sample:  # the Gaussian likelihood whose negative log is this sum of squares
                with torch.no_grad():
                    targets = torch.normal(outputs.detach(), std=math.sqrt(0.5))
            return F.mse_loss(outputs, targets, reduction="sum")

        def compute_measurement(self, batch, model):
            return self.compute_train_loss(batch, model, sample=False)

    class ClassifierTask(Task):
        def compute_train_loss(self, batch, model, sample=False):
            inputs, labels = batch
            logits = model(inputs)
            if sample:
                with torch.no_grad():
                    labels = torch.multinomial(logits.detach().softmax(-1), 1).squeeze(-1)
            return F.cross_entropy(logits, labels, reduction="sum")

        def compute_measurement(self, batch, model):
            inputs, labels = batch
            logits = model(inputs)
            true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
            others = logits.scatter(1, labels.unsqueeze(1), float("-inf")).logsumexp(-1)
            return -(true - others).sum()  # minus the margin: a loss, like the LDS target

    class LanguageModelingTask(Task):
        """kronfluence's WikiText example: summed next-token CE (labels -100 ignored); the sampled
        labels are drawn at the completion positions only (padding and prompt carry no loss)."""

        def compute_train_loss(self, batch, model, sample=False):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            logits = logits[..., :-1, :].contiguous().view(-1, logits.size(-1))
            labels = batch["labels"][..., 1:].contiguous().view(-1)
            if sample:
                with torch.no_grad():
                    drawn = torch.multinomial(logits.detach().softmax(-1), 1).flatten()
                    labels = torch.where(labels != -100, drawn, labels)
            return F.cross_entropy(logits, labels, reduction="sum")

        def compute_measurement(self, batch, model):
            return self.compute_train_loss(batch, model)

        def get_attention_mask(self, batch):
            return batch["attention_mask"]

    task = SPECS[kind]["task"]
    return {"regression": RegressionTask, "classifier": ClassifierTask, "causal-lm": LanguageModelingTask}[task]()


def kronfluence_default_scores(kind: str, model: nn.Module, split: Split, seed: int) -> tuple[np.ndarray, dict]:
    """(queries, train) scores from kronfluence's Analyzer with its own default arguments.

    No FactorArguments/ScoreArguments are passed (EK-FAC, damping 1e-8, ...), no tracked-module
    list (every Linear: for the GPT-2 also attention and the tied output layer) and no training
    batch size (kronfluence finds one); queries go in one batch. The seed only fixes the labels
    kronfluence samples from the model when fitting.
    """
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments

    task = _kronfluence_task(kind)
    prepared = prepare_model(copy.deepcopy(model), task)
    with tempfile.TemporaryDirectory() as tmp:
        analyzer = Analyzer(analysis_name="lds", model=prepared, task=task, cpu=True, disable_tqdm=True, output_dir=tmp)
        torch.manual_seed(seed)
        analyzer.fit_all_factors(factors_name="defaults", dataset=split.train)
        analyzer.compute_pairwise_scores(scores_name="defaults", factors_name="defaults", query_dataset=split.queries,
                                         train_dataset=split.train, per_device_query_batch_size=split.n_queries)
        scores = analyzer.load_pairwise_scores("defaults")["all_modules"].numpy()
    settings = {"factor_args": FactorArguments().to_str_dict(), "score_args": ScoreArguments().to_str_dict(),
                "tracked_modules": "kronfluence's default: every nn.Linear",
                "per_device_batch_size": "None (kronfluence searches from 4096 down)",
                "per_device_query_batch_size": split.n_queries}
    return scores.astype(np.float64), settings


# ---------------------------------------------------------------------- TRAK
def trak_scores(kind: str, models: list[nn.Module], split: Split, proj_dim: int) -> dict[int, np.ndarray]:
    """(queries, train) TRAK scores (traker, BasicProjector on CPU) for the query measurements.

    Returns ``{len(models): the ensemble's scores, 1: the first model's alone}``. TRAK attributes a
    model output f and weights training samples by Q (the out-to-loss derivative):

    - classifiers: traker's own ``image_classification`` output, the margin (minus our
      measurement, so TRAK's sign already means "lowers the loss");
    - regression: f = the prediction, Q = y - f; the output scores become loss scores by the chain
      rule, times each query's residual (y_q - f_q) averaged over the models;
    - the LM: f = log p(completion | prompt) (minus the measurement), Q = 1 (the loss is -f). The
      model is called with an all-ones attention mask: right padding cannot reach earlier positions
      of a causal model, and transformers' mask helpers branch on the mask's values, which vmap
      does not allow.
    """
    try:
        from trak import TRAKer
        from trak.modelout_functions import AbstractModelOutput
        from trak.projectors import BasicProjector, ProjectionType
    except ImportError as exc:
        raise SystemExit("TRAK needs the `traker` package: .venv/bin/pip install -e '.[bench]'") from exc

    class RegressionOutput(AbstractModelOutput):
        """f = the prediction; Q = -d(0.5 (f - y)^2)/df = y - f."""

        def __init__(self) -> None:
            super().__init__()

        @staticmethod
        def get_output(model, weights, buffers, x, y):
            return torch.func.functional_call(model, (weights, buffers), x.unsqueeze(0)).sum()

        def get_out_to_loss_grad(self, model, weights, buffers, batch):
            x, y = batch
            pred = torch.func.functional_call(model, (weights, buffers), x).squeeze(-1)
            return (y - pred).detach().unsqueeze(-1)

    class CompletionOutput(AbstractModelOutput):
        """f = log p(completion | prompt) = minus the summed completion NLL; Q = 1."""

        def __init__(self) -> None:
            super().__init__()

        @staticmethod
        def get_output(model, weights, buffers, input_ids, labels):
            ones = torch.ones(1, input_ids.shape[-1], dtype=torch.long)
            out = torch.func.functional_call(model, (weights, buffers), args=(),
                                             kwargs={"input_ids": input_ids.unsqueeze(0), "attention_mask": ones})
            logits = (out.logits if hasattr(out, "logits") else out)[0, :-1]
            target = labels[1:]
            nll = F.cross_entropy(logits, target.clamp(min=0), reduction="none")
            return -(nll * (target != -100).to(nll.dtype)).sum()

        def get_out_to_loss_grad(self, model, weights, buffers, batch):
            return torch.ones(batch[0].shape[0], 1)

    if proj_dim >= split.n_train:
        raise ValueError(f"TRAK's projection dimension {proj_dim} must be below the {split.n_train} training "
                         "samples, or its X^T X (proj_dim x proj_dim) is singular")
    task_kind = SPECS[kind]["task"]
    task = {"regression": RegressionOutput(), "classifier": "image_classification",
            "causal-lm": CompletionOutput()}[task_kind]

    def batches(dataset, lo, hi):
        if task_kind == "causal-lm":
            return (dataset.input_ids[lo:hi], dataset.labels[lo:hi])
        x, y = dataset.tensors
        return (x[lo:hi], y[lo:hi])

    base = copy.deepcopy(models[0])
    projector = BasicProjector(grad_dim=n_params(base), proj_dim=proj_dim, seed=0, proj_type=ProjectionType.normal,
                               device="cpu", dtype=torch.float32)
    out: dict[int, np.ndarray] = {}
    step = 64 if task_kind == "causal-lm" else 256
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):  # traker's tqdm bars
        traker = TRAKer(model=base, task=task, train_set_size=split.n_train, save_dir=tmp, device="cpu",
                        projector=projector, use_half_precision=False, logging_level=logging.WARNING)
        for model_id, m in enumerate(models):
            traker.load_checkpoint(m.state_dict(), model_id=model_id)
            for lo in range(0, split.n_train, step):
                batch = batches(split.train, lo, lo + step)
                traker.featurize(batch=batch, num_samples=len(batch[0]))
        traker.finalize_features()
        for model_id, m in enumerate(models):
            traker.start_scoring_checkpoint(exp_name="queries", checkpoint=m.state_dict(), model_id=model_id,
                                            num_targets=split.n_queries)
            traker.score(batch=batches(split.queries, 0, split.n_queries), num_samples=split.n_queries)
        for ids in (list(range(len(models))), [0]):  # (train, queries) -> (queries, train)
            out[len(ids)] = np.array(traker.finalize_scores(exp_name="queries", model_ids=ids), dtype=np.float64).T
    if task_kind == "regression":
        xq, yq = split.queries.tensors
        with torch.no_grad():
            residuals = [(yq - m(xq).squeeze(-1)).numpy().astype(np.float64) for m in models]
        out = {k: v * np.mean(residuals[:k], axis=0)[:, None] for k, v in out.items()}
    return out


def trak_settings(models: int, proj_dim: int) -> dict[str, Any]:
    """What the JSON records about TRAK."""
    return {"package": "traker", "models": models, "proj_dim": proj_dim,
            "projector": "BasicProjector, normal (CPU; fast_jl needs CUDA)", "half_precision": False,
            "lambda_reg": 0.0, "parameters": "all of the model's",
            "models_trained_on": "the full training set, each for the chosen length; model 0 is the reported model "
                                 "(alone: trak_1), the others differ in init and batch order"}


# ---------------------------------------------------------------------- baselines
def baseline_scores(kind: str, model: nn.Module, split: Split, seed: int) -> dict[str, np.ndarray]:
    """``loss``: minus each training sample's loss for every query (high loss predicted to hurt); ``random``."""
    from attribution.baselines import per_sample_losses

    loss = per_sample_losses(model, task_for(kind, model), split.train)
    return {"loss": np.tile(-loss.astype(np.float64), (split.n_queries, 1)),
            "random": np.random.default_rng(seed).normal(size=(split.n_queries, split.n_train))}


# ---------------------------------------------------------------------- timing
class Clock:
    """Wall and CPU seconds per named part; CPU counts this process's threads and retraining workers."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        extra = {"cpu": 0.0}  # CPU seconds spent in worker processes, added by the caller
        yield extra
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu + extra["cpu"]

    def as_dict(self) -> dict:
        return {"wall": self.wall, "cpu": self.cpu, "wall_total": sum(self.wall.values()),
                "cpu_total": sum(self.cpu.values())}


__all__ = ["Clock", "baseline_scores", "batch_size", "engine_scores", "kronfluence_default_scores", "sample_ids",
           "trak_scores", "trak_settings"]
