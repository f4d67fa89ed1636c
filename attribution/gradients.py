"""Per-sample gradients of kronfluence-tracked Linear layers, kept in compact per-token form.

A Linear layer's gradient for one sample is ``G^T X`` summed over its tokens (output gradients G,
inputs X): storing the T x (out + in) factors instead of the out x in product is what lets
:mod:`attribution.candidates` score only the candidate pairs. The factors come rotated into each
layer's eigenbasis when the preconditioner has one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from kronfluence.module.tracked_module import TrackedModule
from torch import nn
from torch.utils import data


@contextlib.contextmanager
def capture(model: nn.Module, names: set[str]) -> Iterator[dict[str, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """Record (input, output) of every call of the tracked modules during one forward pass."""
    seen: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {n: [] for n in names}
    handles = []
    for m in model.modules():
        if isinstance(m, TrackedModule) and m.name in names:
            handles.append(m.register_forward_hook(
                lambda mod, inputs, output, n=m.name: seen[n].append((inputs[0].detach(), output))))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def token_factors(
    model: nn.Module,
    loss_fn: Callable[[Any, nn.Module], torch.Tensor],
    batch: Any,
    pre: Mapping[str, Any],
    device: torch.device,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-sample gradients of a batch in compact per-token form, rotated into the eigenbasis.

    Returns per module ``(A, X)`` of shapes (B, T', out) and (B, T', in) such that the sample's
    (eigenbasis) gradient is ``A[b]^T X[b]`` (X with the bias column); T' drops trailing token
    positions whose output gradient is zero in the whole batch (padding). The loss is summed over
    the batch, so each sample's gradient is its own. ``pre`` maps each tracked module's name to
    its preconditioner (``out_features``, ``has_bias`` and the eigenvectors ``q_out`` / ``q_in``,
    None when the strategy has no eigenbasis; see :mod:`attribution.candidates`).
    """
    batch = to_device(batch, device)
    with torch.enable_grad(), capture(model, set(pre)) as seen:
        loss = loss_fn(batch, model)
        outputs, where = [], []
        for name, calls in seen.items():
            if not calls:
                raise RuntimeError(f"tracked module {name!r} was not called in the forward pass")
            for i, (_, y) in enumerate(calls):
                outputs.append(y)
                where.append((name, i))
        grads = torch.autograd.grad(loss, outputs, allow_unused=True)
    per_module: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {n: [] for n in pre}
    for (name, i), g in zip(where, grads, strict=True):
        x = seen[name][i][0]
        if g is None:
            g = torch.zeros(x.shape[:-1] + (pre[name].out_features,), dtype=torch.float32, device=x.device)
        per_module[name].append((x, g))
    result = {}
    for name, calls in per_module.items():
        p = pre[name]
        # a layer called several times: its calls are extra token rows
        xs = [x.reshape(x.shape[0], -1, x.shape[-1]) for x, _ in calls]
        gs = [g.reshape(g.shape[0], -1, g.shape[-1]) for _, g in calls]
        x = (xs[0] if len(xs) == 1 else torch.cat(xs, dim=1)).to(torch.float32)
        g = (gs[0] if len(gs) == 1 else torch.cat(gs, dim=1)).to(torch.float32)
        # trailing token positions with a zero output gradient in every sample (padding) add nothing
        used = g.ne(0).any(dim=-1).any(dim=0).nonzero()
        t_keep = int(used[-1]) + 1 if len(used) else 1
        g, x = g[:, :t_keep], x[:, :t_keep]
        if p.q_out is None:
            a = g.contiguous()
            if p.has_bias:
                x = torch.cat([x, x.new_ones(x.shape[:-1] + (1,))], dim=-1)
        else:  # rotate into the eigenbasis (2-D GEMMs); [x, 1] @ Q_A = x @ Q_A[:-1] + Q_A[-1]
            b = g.shape[0]
            a = torch.mm(g.reshape(-1, g.shape[-1]), p.q_out).view(b, t_keep, -1)
            x2 = x.reshape(-1, x.shape[-1])
            x = (torch.addmm(p.q_in[-1], x2, p.q_in[:-1]) if p.has_bias else torch.mm(x2, p.q_in)).view(b, t_keep, -1)
        result[name] = (a, x.contiguous())
    return result


def collate(dataset: data.Dataset, indices: Sequence[int] | np.ndarray) -> Any:
    """The items of ``dataset`` at ``indices`` as one batch (torch's default collation)."""
    return data.default_collate([dataset[int(i)] for i in indices])


def in_batches(dataset: data.Dataset, batch_size: int) -> Iterator[Any]:
    """The dataset's items in order, ``batch_size`` at a time, each collated into one batch."""
    for lo in range(0, len(dataset), batch_size):  # type: ignore[arg-type]
        yield collate(dataset, range(lo, min(lo + batch_size, len(dataset))))  # type: ignore[arg-type]


def to_device(batch: Any, device: torch.device) -> Any:
    """A batch (tensor, or dict / list / tuple of them) moved to ``device``; other values as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


__all__ = ["capture", "collate", "to_device", "token_factors"]
