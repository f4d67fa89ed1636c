"""The unlearning interface: a problem (model, forget and retain data, losses), methods with settings.

An :class:`UnlearningProblem` holds everything a method may use: the trained model (never changed
in place), the task that gives per-sample losses (the engine's :class:`~attribution.tasks.InfluenceTask`,
so the losses unlearned are the losses attributed), the forget and retain sets, the whole training
set (for factors), the training recipe (for retraining) and the store (where factors are cached).

A method is a subclass of :class:`UnlearningMethod` with a ``name`` and a ``Settings`` dataclass
whose fields carry their help (``setting(default, help)``), so the CLI and run configs describe
every knob from one definition. :meth:`UnlearningMethod.unlearn` returns a new model.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils import data

from attribution.data import Samples
from attribution.gradients import collate
from attribution.tasks import InfluenceTask

from ..recipes import TrainingRecipe


def setting(default: Any, help: str) -> Any:  # noqa: A002 - the word the CLI shows
    """A dataclass field with its help text in the metadata (read by :func:`settings_help`)."""
    return field(default=default, metadata={"help": help})


def settings_help(settings_class: type) -> dict[str, str]:
    """Each field of a settings dataclass and its help, in field order."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(settings_class)}


class UnlearningInputError(ValueError):
    """An unlearning request that cannot run (empty forget set, unknown ids, missing recipe...)."""


@dataclass
class UnlearningProblem:
    """What an unlearning method works on.

    ``train`` is the whole training set the model was trained on; ``forget`` are indices into it
    (the flagged samples) and the retain set is the rest. ``recipe`` (how the model was trained)
    is needed by the retraining methods only; ``store`` by methods that fit factors (Newton).
    """

    model: nn.Module
    task: InfluenceTask
    train: Samples
    forget: list[int]
    recipe: TrainingRecipe | None = None
    store: Any = None
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        self.forget = sorted({int(i) for i in self.forget})
        if not self.forget:
            raise UnlearningInputError("the forget set is empty: nothing to unlearn")
        bad = [i for i in self.forget if not 0 <= i < len(self.train)]
        if bad:
            raise UnlearningInputError(f"forget indices out of range [0, {len(self.train)}): {bad[:5]}")
        if len(self.forget) == len(self.train):
            raise UnlearningInputError("the forget set is the whole training set: nothing would be retained")

    @property
    def retain(self) -> list[int]:
        """Indices of the training samples that are kept."""
        gone = set(self.forget)
        return [i for i in range(len(self.train)) if i not in gone]

    @property
    def forget_data(self) -> data.Dataset:
        """The forget set as a dataset."""
        return data.Subset(self.train.data, self.forget)

    @property
    def retain_data(self) -> data.Dataset:
        """The retain set as a dataset."""
        return data.Subset(self.train.data, self.retain)

    def copy_model(self) -> nn.Module:
        """A trainable deep copy of the model (methods change copies, never the original)."""
        return copy.deepcopy(self.model).train()

    def losses(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Per-sample training losses of a batch, per supervised token for language models.

        Causal LM losses are summed over completion tokens by the task; dividing by the number
        of tokens makes learning rates comparable across sample lengths (as training does).
        """
        loss = self.task.per_sample_loss(batch, model)
        if isinstance(batch, dict) and "labels" in batch:
            loss = loss / (batch["labels"][:, 1:] != -100).sum(1).clamp(min=1)
        return loss

    def batches(self, indices: list[int], *, shuffle: bool = False, seed: int = 0,
                batch_size: int | None = None) -> Iterator[Any]:
        """Batches of the training samples at ``indices`` (shuffled by ``seed`` when asked)."""
        order = np.asarray(indices)
        if shuffle:
            order = order[np.random.default_rng(seed).permutation(len(order))]
        size = batch_size or self.batch_size
        for lo in range(0, len(order), size):
            yield _trim(collate(self.train.data, order[lo : lo + size]))

    def endless(self, indices: list[int], batch_size: int, seed: int) -> Iterator[Any]:
        """Shuffled batches of ``indices`` forever (a new order each pass), for step-based loops."""
        epoch = 0
        while True:
            yield from self.batches(indices, shuffle=True, seed=seed * 1_000_003 + epoch, batch_size=batch_size)
            epoch += 1


def accumulate_gradients(model: nn.Module, problem: UnlearningProblem, indices: list[int], batch_size: int, *,
                         squared: bool) -> tuple[dict[str, torch.Tensor], int]:
    """Sum over batches of each parameter's gradient (``squared``: of the batch-mean loss's squared
    gradient; else of the summed loss's gradient), and the number of batches; gradients are cleared."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    n_batches = 0
    for batch in problem.batches(indices, batch_size=batch_size):
        model.zero_grad(set_to_none=True)
        losses = problem.losses(model, batch)
        (losses.mean() if squared else losses.sum()).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                total[n] += p.grad.detach() ** 2 if squared else p.grad.detach()
        n_batches += 1
    model.zero_grad(set_to_none=True)
    return total, n_batches


def _trim(batch: Any) -> Any:
    """A causal-LM batch cut to its longest sequence (padding past it changes nothing but costs time)."""
    if isinstance(batch, dict) and "attention_mask" in batch:
        width = max(1, int(batch["attention_mask"].sum(1).max()))
        return {k: v[:, :width] if v.dim() == 2 else v for k, v in batch.items()}
    return batch


class UnlearningMethod(abc.ABC):
    """Base class of unlearning methods: ``name``, a ``Settings`` dataclass, :meth:`unlearn`."""

    name: ClassVar[str] = "method"
    summary: ClassVar[str] = ""

    @dataclass
    class Settings:
        """No settings."""

    def __init__(self, settings: Any = None, **overrides: Any):
        base = settings if settings is not None else self.Settings()
        if not isinstance(base, self.Settings):
            raise TypeError(f"{self.name}: settings must be {self.Settings.__qualname__}, got {type(base).__name__}")
        known = {f.name for f in dataclasses.fields(self.Settings)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UnlearningInputError(f"{self.name}: unknown setting(s) {', '.join(unknown)}; "
                                       f"expected {', '.join(sorted(known)) or 'none'}")
        self.settings = dataclasses.replace(base, **overrides)

    @abc.abstractmethod
    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        """A new model without the forget set's effect (the problem's model is left as it is)."""

    def config(self) -> dict[str, Any]:
        """The method and its settings, for run configs."""
        return {"method": self.name, "settings": dataclasses.asdict(self.settings)}


__all__ = ["UnlearningInputError", "UnlearningMethod", "UnlearningProblem", "setting", "settings_help"]
