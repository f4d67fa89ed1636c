"""Tasks: how the engine computes a model's training loss and a behaviour's measurement.

A task is kronfluence's ``Task`` plus ``per_sample_loss`` (for the loss baseline). The sign
convention of the whole toolkit follows from it: ``compute_measurement`` returns the query's
*loss* (negative log-probability, negative margin, squared error), so a positive influence score
means training on the sample lowered that loss, i.e. made the behaviour more likely.

Write your own task in a few lines::

    class MyTask(InfluenceTask):
        def compute_train_loss(self, batch, model, sample=False):
            x, y = batch
            logits = model(x)
            if sample:  # labels drawn from the model: the true Fisher
                y = torch.multinomial(logits.detach().softmax(-1), 1).squeeze(-1)
            return F.cross_entropy(logits, y, reduction="sum")

        def compute_measurement(self, batch, model):
            return self.compute_train_loss(batch, model)

        def per_sample_loss(self, batch, model):
            x, y = batch
            return F.cross_entropy(model(x), y, reduction="none")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from kronfluence.task import Task
from torch import nn

from .architectures import select_modules


class InfluenceTask(Task):
    """Base class of our tasks: kronfluence's Task with a per-sample loss and tracked modules."""

    def __init__(self, tracked_modules: Sequence[str] | None = None):
        self._tracked = list(tracked_modules) if tracked_modules is not None else None

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        """Training loss of each sample in the batch, shape (batch,)."""
        raise NotImplementedError

    def get_influence_tracked_modules(self) -> list[str] | None:
        """Module names whose weights influence is computed over (None: every Linear/Conv2d)."""
        return self._tracked

    def get_attention_mask(self, batch: Any) -> torch.Tensor | None:
        """Padding mask for sequence batches (None for fixed-size inputs)."""
        return None


class ClassifierTask(InfluenceTask):
    """A classifier on ``(inputs, labels)`` batches: cross-entropy loss, margin measurement.

    The measurement is the negative margin (log-sum-exp of the other logits minus the true
    logit), so a positive score means the sample raised the query's margin.
    """

    def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> torch.Tensor:
        inputs, labels = batch
        logits = model(inputs)
        if sample:
            with torch.no_grad():
                labels = torch.multinomial(logits.detach().softmax(-1), 1).squeeze(-1)
        return F.cross_entropy(logits, labels, reduction="sum")

    def compute_measurement(self, batch: Any, model: nn.Module) -> torch.Tensor:
        inputs, labels = batch
        logits = model(inputs)
        true = logits.gather(1, labels.unsqueeze(1)).squeeze(1)
        others = logits.scatter(1, labels.unsqueeze(1), float("-inf"))
        return (others.logsumexp(-1) - true).sum()

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        inputs, labels = batch
        return F.cross_entropy(model(inputs), labels, reduction="none")


class RegressionTask(InfluenceTask):
    """A regressor on ``(inputs, targets)`` batches: squared error for training and measurement.

    ``sample=True`` draws targets from a unit-variance Gaussian around the prediction (the
    Fisher of the Gaussian likelihood).
    """

    def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> torch.Tensor:
        inputs, targets = batch
        preds = model(inputs).reshape(targets.shape)
        if sample:
            with torch.no_grad():
                targets = preds.detach() + torch.randn_like(preds)
        return 0.5 * ((preds - targets) ** 2).sum()

    def compute_measurement(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return self.compute_train_loss(batch, model)

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        inputs, targets = batch
        return 0.5 * (model(inputs).reshape(targets.shape) - targets) ** 2


class CausalLMTask(InfluenceTask):
    """A causal LM on batches of ``input_ids``, ``attention_mask`` and ``labels``.

    ``labels`` hold -100 on prompt and padding tokens, so the training loss is the summed NLL of
    the completion tokens only, and the measurement is -log p(completion | prompt).
    ``model`` is any module returning logits (or an object with ``.logits``). Tracked modules
    default to the Linear layers inside MLP blocks, or a LoRA model's adapters (see
    :func:`attribution.architectures.tracked_modules`).
    """

    def __init__(self, model: nn.Module | None = None, tracked_modules: Sequence[str] | None = None):
        if tracked_modules is None and model is not None:
            tracked_modules = select_modules(model).modules
        super().__init__(tracked_modules)

    @staticmethod
    def _logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.logits if hasattr(out, "logits") else out

    def _token_nll(self, batch: dict[str, torch.Tensor], model: nn.Module, sample: bool = False) -> torch.Tensor:
        logits = self._logits(model, batch)[:, :-1].float()
        labels = batch["labels"][:, 1:]
        mask = labels != -100
        if sample:
            with torch.no_grad():
                drawn = torch.multinomial(logits.detach().softmax(-1).flatten(0, 1), 1).view(labels.shape)
                labels = torch.where(mask, drawn, labels)
        nll = F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none")
        return nll.view(labels.shape) * mask

    def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> torch.Tensor:
        return self._token_nll(batch, model, sample).sum()

    def compute_measurement(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return self._token_nll(batch, model).sum()

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return self._token_nll(batch, model).sum(dim=1)

    def get_attention_mask(self, batch: Any) -> torch.Tensor | None:
        return batch["attention_mask"]


class LossMeasurementTask(InfluenceTask):
    """``base`` with its training loss as the measurement (the queries' own loss, not e.g. a margin).

    Pairwise scores under it are ``grad L(query)^T H^-1 grad L(sample)``, the same form as
    self-influence, so ``score(q, t) / sqrt(self(q) self(t))`` is a cosine in [-1, 1]: what flag
    expansion needs to compare training samples with known-bad ones. Factors are those of ``base``.
    """

    def __init__(self, base: InfluenceTask):
        super().__init__(base.get_influence_tracked_modules())
        self.base = base

    def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> torch.Tensor:
        return self.base.compute_train_loss(batch, model, sample)

    def compute_measurement(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return self.base.compute_train_loss(batch, model, sample=False)

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return self.base.per_sample_loss(batch, model)

    def get_attention_mask(self, batch: Any) -> torch.Tensor | None:
        return self.base.get_attention_mask(batch)


def mlp_linear_modules(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` modules inside MLP/feed-forward blocks of a transformer.

    :func:`attribution.architectures.tracked_modules` with ``scope="mlp"`` (by the model's family,
    name hints for unknown ones). Raises if there are none, naming any transformers ``Conv1D``
    layers found (GPT-2): convert them first with :func:`linearize_conv1d`.
    """
    return select_modules(model, scope="mlp").modules


@torch.no_grad()
def linearize_conv1d(model: nn.Module) -> nn.Module:
    """Replace every transformers ``Conv1D`` (GPT-2) by an equivalent ``nn.Linear``, in place.

    Conv1D computes ``x @ W + b`` with W of shape (in, out); Linear holds W transposed. The
    logits are unchanged; kronfluence can then track the layers. Save a model with
    ``save_pretrained`` *before* linearising (the GPT-2 class expects Conv1D shapes);
    :func:`attribution.models.load_causal_lm` linearises on load.
    """
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if type(child).__name__ != "Conv1D":
                continue
            weight = child.weight
            linear = nn.Linear(weight.shape[0], weight.shape[1], bias=child.bias is not None)
            linear = linear.to(device=weight.device, dtype=weight.dtype)
            linear.weight.copy_(weight.t())
            if child.bias is not None:
                linear.bias.copy_(child.bias)
            setattr(parent, child_name, linear)
    return model
