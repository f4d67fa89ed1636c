"""The influence (Newton) step: remove the forget set through the engine's fitted factors.

Influence functions estimate the model retrained without a set S of the n training samples as
``theta + (1/n) H^-1 sum_{z in S} grad L(z)``, with H the Hessian of the mean training loss. The
engine's factors (EK-FAC by default, fitted on the whole training set and cached in the store, so
the factors that attributed a behaviour also remove its causes) stand in for H, damped as when
scoring (:mod:`attribution.preconditioning`). Only the engine's tracked layers move (all Linear
layers of an MLP; the MLP blocks of a transformer). ``scale`` multiplies the step: a single
Newton step from a non-convex optimum undershoots or overshoots, and ``scale`` is how a user
tunes it on a validation split.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from attribution.config import EngineConfig
from attribution.preconditioning import inverse_hessian_products, layer_gradient
from attribution.strategies import STRATEGIES

from .base import UnlearningInputError, UnlearningMethod, UnlearningProblem, setting


class NewtonStep(UnlearningMethod):
    """theta + scale/n H^-1 (sum of the forget set's gradients), H from the engine's factors."""

    name = "newton"
    summary = "influence removal: one Newton step through the fitted factors"

    @dataclass
    class Settings:
        """Settings of :class:`NewtonStep`."""

        strategy: str = setting("ekfac", f"Hessian approximation: one of {', '.join(STRATEGIES)}")
        damping: float | None = setting(None, "Damping (None: kronfluence's heuristic, as the engine scores)")
        scale: float = setting(1.0, "Multiplier of the step (1: the influence-function estimate)")
        batch_size: int = setting(32, "Samples per batch (factors and gradients)")

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        from attribution.engine import InfluenceEngine

        s = self.settings
        if problem.store is None:
            raise UnlearningInputError("newton needs a store to fit (or reuse) the factors in; none was given")
        engine = InfluenceEngine(problem.store, copy.deepcopy(problem.model), problem.task,
                                 EngineConfig(strategy=s.strategy, damping=s.damping, batch_size=s.batch_size,
                                              seed=problem.seed))
        factors = engine.load_factors(problem.train)
        prepared = engine.model  # a private copy: tracked layers wrapped, forward unchanged
        for p in prepared.parameters():  # kronfluence's prepare_model turns gradients off
            p.requires_grad_(True)
        tracked = {m.name: m.original_module for m in prepared.modules() if hasattr(m, "original_module")}
        prepared.zero_grad(set_to_none=True)
        with torch.enable_grad():
            for batch in problem.batches(problem.forget, batch_size=s.batch_size):
                problem.task.per_sample_loss(batch, prepared).sum().backward()
        grads = {name: layer_gradient(layer) for name, layer in tracked.items()}
        steps = inverse_hessian_products(prepared, factors, s.strategy, s.damping, grads)
        model = problem.copy_model()
        layers = dict(model.named_modules())
        n = len(problem.train)
        with torch.no_grad():
            for name, step in steps.items():
                layer = layers.get(name)
                if not isinstance(layer, nn.Linear):
                    raise UnlearningInputError(f"the factors track layer {name!r}, which the model does not have "
                                               "as a Linear layer: the model's architecture does not match")
                step = step * (s.scale / n)
                layer.weight.add_(step[:, : layer.in_features].to(layer.weight.dtype))
                if layer.bias is not None:
                    layer.bias.add_(step[:, layer.in_features].to(layer.bias.dtype))
        return model.eval()
