"""What the model "sees" in a sample: its representation at the input of the output layer.

The input of a model's last ``nn.Linear`` (an MLP's last hidden layer; a language model's final
hidden states, before the LM head) is the space in which the model separates its outputs, so
samples close there are samples the model treats alike. For sequences the hidden states are
averaged over the non-padding tokens. Used to find training samples that resemble known-bad ones
(nearest neighbours, the cheap baseline of flag expansion).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import data

from .gradients import in_batches

#: Where a representation is read: the input of the model's first or last ``nn.Linear``.
LAYERS = ("output", "input")


def output_layer(model: nn.Module, where: str = "output") -> nn.Linear:
    """The model's last (``output``) or first (``input``) ``nn.Linear`` in module order."""
    if where not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {where!r}")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer whose input could serve as a representation")
    return linears[-1] if where == "output" else linears[0]


@torch.no_grad()
def representations(model: nn.Module, dataset: data.Dataset, forward: Any, *, batch_size: int = 64,
                    layer: str = "output") -> np.ndarray:
    """(samples x width) inputs of the output layer (or, ``layer="input"``, of the first Linear layer:
    the features as the model receives them), mean-pooled over tokens for sequences.

    ``forward(batch, model)`` runs the model on a batch (e.g. a task's ``per_sample_loss``); only
    the hooked activations are kept. Sequence batches must carry an ``attention_mask``.
    """
    layer_module = output_layer(model, layer)
    seen: list[torch.Tensor] = []
    handle = layer_module.register_forward_hook(lambda mod, inputs, output: seen.append(inputs[0].detach()))
    out: list[np.ndarray] = []
    model.eval()
    try:
        for batch in in_batches(dataset, batch_size):
            seen.clear()
            forward(batch, model)
            h = seen[-1].float()
            if h.dim() == 3:
                mask = batch["attention_mask"][:, : h.shape[1]].to(h.dtype).unsqueeze(-1)
                h = (h * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(h.cpu().numpy())
    finally:
        handle.remove()
    return np.concatenate(out) if out else np.zeros((0, layer_module.in_features), dtype=np.float32)


def cosine_similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a) x len(b)) cosine similarities of the rows (a zero row has similarity 0)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na == 0, 1, na)) @ (b / np.where(nb == 0, 1, nb)).T


__all__ = ["LAYERS", "cosine_similarities", "output_layer", "representations"]
