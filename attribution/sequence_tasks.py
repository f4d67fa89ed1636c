"""A sequence classifier task (BERT-style encoders, or any ``*ForSequenceClassification`` model).

Batches are dicts of ``input_ids``, ``attention_mask`` and ``labels`` (one class per sequence;
``token_type_ids`` is passed on when present). The sign convention is the toolkit's (see
:mod:`attribution.tasks`): the measurement is the query's negative margin, so a positive score
means training on the sample raised the query's margin for its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import select_modules
from .tasks import InfluenceTask


class SequenceClassificationTask(InfluenceTask):
    """A sequence classifier on dict batches: cross-entropy loss, negative-margin measurement.

    The training loss is the summed cross-entropy of the labels (with ``sample=True`` labels are
    drawn from the model's predictive distribution: the true Fisher when fitting factors). The
    measurement is ``logsumexp(other logits) - true logit`` per query, as :class:`ClassifierTask`.
    Tracked modules default to the encoder's feed-forward layers (a LoRA model: its adapters);
    ``include_head=True`` adds the pooler and classifier (see
    :func:`attribution.architectures.select_modules`).
    """

    def __init__(self, model: nn.Module | None = None, tracked_modules: Sequence[str] | None = None,
                 scope: str | None = None, include_head: bool = False):
        if tracked_modules is None and model is not None:
            tracked_modules = select_modules(model, scope, include_head).modules
        super().__init__(tracked_modules)

    @staticmethod
    def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The model's class logits for a batch, (batch, classes)."""
        kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        out = model(**kwargs)
        return (out.logits if hasattr(out, "logits") else out).float()

    def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> torch.Tensor:
        logits = self.logits(model, batch)
        labels = batch["labels"]
        if sample:
            with torch.no_grad():
                labels = torch.multinomial(logits.detach().softmax(-1), 1).squeeze(-1)
        return F.cross_entropy(logits, labels, reduction="sum")

    def compute_measurement(self, batch: Any, model: nn.Module) -> torch.Tensor:
        logits = self.logits(model, batch)
        labels = batch["labels"].unsqueeze(1)
        true = logits.gather(1, labels).squeeze(1)
        others = logits.scatter(1, labels, float("-inf"))
        return (others.logsumexp(-1) - true).sum()

    def per_sample_loss(self, batch: Any, model: nn.Module) -> torch.Tensor:
        return F.cross_entropy(self.logits(model, batch), batch["labels"], reduction="none")

    def get_attention_mask(self, batch: Any) -> torch.Tensor | None:
        """Padding mask: kronfluence applies it to the encoder's per-token layers (not the head)."""
        return batch.get("attention_mask")


__all__ = ["SequenceClassificationTask"]
