"""IAU (Liu et al. 2025): one step along the difference of the retain and forget gradients.

``theta <- theta - lr * (grad mean_{D_r} L - grad mean_{D_f} L)``: descend the retain loss and
ascend the forget loss in a single full-batch step, with the mean gradients over the *whole*
retain and forget sets (not minibatches). One pass over the training data; no training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import UnlearningMethod, UnlearningProblem, accumulate_gradients, setting


def mean_gradient(model: nn.Module, problem: UnlearningProblem, indices: list[int], batch_size: int) -> list[torch.Tensor]:
    """The gradient of the mean loss over ``indices`` (accumulated batch by batch), per parameter."""
    total, _ = accumulate_gradients(model, problem, indices, batch_size, squared=False)
    return [total[n] / len(indices) for n, _ in model.named_parameters()]


class IAU(UnlearningMethod):
    """One step along ``grad L_retain - grad L_forget`` (full-set means)."""

    name = "iau"
    summary = "one step along the retain minus forget gradient"

    @dataclass
    class Settings:
        """Settings of :class:`IAU`."""

        lr: float = setting(1.0, "Step size")
        steps: int = setting(1, "Steps (the method is one step; more repeat it with fresh gradients)")
        batch_size: int = setting(256, "Samples per batch when accumulating the mean gradients")

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        s = self.settings
        model = problem.copy_model().eval()
        for _ in range(s.steps):
            g_retain = mean_gradient(model, problem, problem.retain, s.batch_size)
            g_forget = mean_gradient(model, problem, problem.forget, s.batch_size)
            with torch.no_grad():
                for p, gr, gf in zip(model.parameters(), g_retain, g_forget, strict=True):
                    p.sub_(s.lr * (gr - gf))
        return model.eval()
