"""Training recipes: how a model was trained, so that it can be retrained (without a forget set, on a pruned set).

Retraining from scratch on the retain set is the gold standard every unlearning method is judged
against, and it is only meaningful with the recipe that made the original model. A recipe builds
a freshly initialised model (:meth:`TrainingRecipe.fresh`) and trains a model on a dataset
(:meth:`TrainingRecipe.fit`), optionally only some of its parameters (retraining the last layers).
Two recipes are built in, for the model kinds the toolkit trains itself:

- :class:`MLPRecipe`: the tabular :class:`~attribution.models.MLP` with mini-batch SGD (momentum,
  weight decay), seeded shuffles;
- :class:`LMRecipe`: the small GPT-2 of :mod:`curation.steps.train` with its own loop
  (:func:`~curation.steps.train.train_lm`, AdamW with a one-cycle schedule).

Any object with ``fresh``, ``fit`` and ``config`` works as a recipe (your own training loop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import data

from attribution.gradients import collate


class TrainingRecipe(Protocol):
    """How a model is trained: a fresh model and a training loop (see the module doc)."""

    def fresh(self, seed: int) -> nn.Module:
        """A freshly initialised model of the original's architecture."""

    def fit(self, model: nn.Module, dataset: data.Dataset, seed: int) -> nn.Module:
        """Train ``model`` (only its parameters with ``requires_grad``) on ``dataset``; returns it in eval mode."""

    def config(self) -> dict[str, Any]:
        """The recipe's settings, for run configs."""


@dataclass
class MLPRecipe:
    """Mini-batch SGD with momentum for the tabular :class:`~attribution.models.MLP` (classifier or regression)."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    task: str = "classifier"
    epochs: int = 60
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 32

    def fresh(self, seed: int) -> nn.Module:
        """A new MLP initialised from ``seed``."""
        from attribution.models import MLP

        torch.manual_seed(seed)
        return MLP(self.n_in, list(self.hidden), self.n_out, self.task)

    def fit(self, model: nn.Module, dataset: data.Dataset, seed: int,
            on_epoch: Callable[[int, nn.Module], None] | None = None) -> nn.Module:
        """``epochs`` passes of shuffled mini-batches (deterministic for ``seed``), one thread.

        ``on_epoch(epoch, model)`` runs after each pass (1-based; training dynamics such as
        forgetting events or early-training EL2N read the model there, in train mode).
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny layers: more threads only add overhead, and results stay identical
        try:
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
            rng = np.random.default_rng(seed)
            model.train()
            n = len(dataset)
            for epoch in range(self.epochs):
                order = rng.permutation(n)
                for lo in range(0, n, self.batch_size):
                    x, y = collate(dataset, order[lo : lo + self.batch_size])
                    out = model(x)
                    loss = F.cross_entropy(out, y) if self.task == "classifier" else 0.5 * ((out - y) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                if on_epoch is not None:
                    on_epoch(epoch + 1, model)
        finally:
            torch.set_num_threads(threads)
        return model.eval()

    def config(self) -> dict[str, Any]:
        """The recipe's settings."""
        return {"recipe": "mlp", **asdict(self)}


@dataclass
class LMRecipe:
    """The pipelines' GPT-2 recipe (:func:`curation.steps.train.build_gpt2` + :func:`~curation.steps.train.train_lm`)."""

    tokenizer: Any
    lm: Any  # curation.steps.train.LMConfig
    progress: bool = False  # a progress bar over the training steps (the CLI turns it on)

    def fresh(self, seed: int) -> nn.Module:
        """A new GPT-2 of the recipe's shape, initialised from ``seed``, linearised like loaded models."""
        from attribution.tasks import linearize_conv1d
        from curation.steps.train import build_gpt2

        return linearize_conv1d(build_gpt2(self.tokenizer, self.lm, seed))

    def fit(self, model: nn.Module, dataset: data.Dataset, seed: int) -> nn.Module:
        """``lm.steps`` AdamW steps on prompt-masked completion loss (frozen parameters stay as they are)."""
        from curation.steps.train import train_lm

        train_lm(model, completion_tensors(dataset), self.lm, seed, progress=self.progress, label="retraining")
        return model.eval()

    def config(self) -> dict[str, Any]:
        """The recipe's settings."""
        return {"recipe": "gpt2", **asdict(self.lm)}


@dataclass
class CompletionTensors:
    """Stacked ``input_ids`` / ``attention_mask`` / ``labels`` of a (subset of a) completion dataset."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i], "labels": self.labels[i]}


def completion_tensors(dataset: data.Dataset) -> CompletionTensors:
    """The dataset's items stacked into tensors (what :func:`~curation.steps.train.train_lm` reads)."""
    if hasattr(dataset, "input_ids") and hasattr(dataset, "labels"):
        return dataset  # type: ignore[return-value]
    batch = collate(dataset, range(len(dataset)))
    return CompletionTensors(batch["input_ids"], batch["attention_mask"], batch["labels"])


def last_layers(model: nn.Module, k: int) -> list[nn.Module]:
    """The last ``k`` layers: transformer blocks (``transformer.h`` and the final norm) or Linear layers."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    if isinstance(blocks, nn.ModuleList):
        chosen: list[nn.Module] = list(blocks)[-k:]
        final_norm = getattr(model.transformer, "ln_f", None)
        return chosen + ([final_norm] if final_norm is not None else [])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has neither transformer blocks nor Linear layers to retrain")
    return linears[-k:]


__all__ = ["CompletionTensors", "LMRecipe", "MLPRecipe", "TrainingRecipe", "completion_tensors", "last_layers"]
