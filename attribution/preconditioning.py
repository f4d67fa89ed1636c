"""Apply the fitted (damped) inverse Hessian to parameter-space gradients: influence-based removal.

Influence functions say that removing a set S of the n training samples moves the optimum by
about ``+(1/n) H^-1 sum_{z in S} grad L(z)`` (Koh & Liang 2017), with H the Hessian of the mean
training loss. The engine's factors approximate H per tracked Linear layer (EK-FAC, K-FAC,
diagonal; identity means H = I), so this module computes ``H^-1 G`` for a gradient ``G`` of
each tracked layer, in kronfluence's (out, in [+ bias column]) layout:

- EK-FAC / K-FAC: rotate into the eigenbasis, ``R = Q_out^T G Q_in``, divide by the damped
  eigenvalues ``Lambda + damping`` and rotate back, ``Q_out R Q_in^T``;
- diagonal: ``G / (Lambda + damping)``; identity: ``G`` as is;
- ekfac_cg: EK-FAC's inverse (the conjugate-gradient refinement is for query gradients only).

The damping is the engine's (None: kronfluence's heuristic, 0.1 x the layer's mean Lambda), so
the same factors and damping that score training samples also remove them
(:mod:`curation.actions.unlearning.newton`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from kronfluence.module.tracked_module import TrackedModule
from torch import nn

from .candidates import Factors, _preconditioner, _tracked_linears


def layer_gradient(linear: nn.Linear) -> torch.Tensor:
    """A Linear layer's accumulated ``.grad`` in kronfluence's layout: (out, in), bias as a last column."""
    if linear.weight.grad is None:
        return torch.zeros(linear.out_features, linear.in_features + int(linear.bias is not None))
    parts = [linear.weight.grad.detach()]
    if linear.bias is not None:
        bias = linear.bias.grad
        parts.append((torch.zeros_like(linear.bias) if bias is None else bias.detach()).unsqueeze(1))
    return torch.cat(parts, dim=1).float()


def inverse_hessian_products(
    model: nn.Module, factors: Factors, strategy: str, damping: float | None,
    gradients: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """``H^-1 G`` per tracked layer for ``gradients`` (module name -> (out, in + bias) tensor).

    ``model`` is prepared for kronfluence (its tracked layers are :class:`TrackedModule`); every
    tracked layer must have a gradient and every gradient a tracked layer, so a model whose
    architecture does not match the factors fails here with the names at fault.
    """
    tracked: dict[str, TrackedModule] = {m.name: m for m in _tracked_linears(model)}
    unknown = sorted(set(gradients) - set(tracked))
    if unknown:
        raise ValueError(f"gradients for layers that are not tracked: {', '.join(unknown[:5])}")
    lacking = sorted(set(tracked) - set(gradients))
    if lacking:
        raise ValueError(f"no gradient for tracked layer(s) {', '.join(lacking[:5])}: give one per tracked layer")
    out: dict[str, torch.Tensor] = {}
    for name, grad in gradients.items():
        pre = _preconditioner(tracked[name], factors, strategy, damping, grad.device)
        if tuple(grad.shape) != (pre.out_features, pre.in_features):
            raise ValueError(f"layer {name!r}: gradient of shape {tuple(grad.shape)}, the factors expect "
                             f"({pre.out_features}, {pre.in_features})")
        g = grad.to(torch.float32)
        inverse = None if pre.inverse is None else pre.inverse.reshape(-1, pre.in_features)[: pre.out_features]
        if pre.q_out is not None:
            rotated = pre.q_out.T @ g @ pre.q_in
            out[name] = pre.q_out @ (rotated * inverse) @ pre.q_in.T
        elif inverse is not None:
            out[name] = g * inverse
        else:
            out[name] = g.clone()
    return out


__all__ = ["inverse_hessian_products", "layer_gradient"]
