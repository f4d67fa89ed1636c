"""Selective Synaptic Dampening (Foster et al. 2024): shrink the weights the forget set relies on.

No training: the importance of each parameter to a dataset is the mean over minibatches of the
squared gradient of the loss (the diagonal of the empirical Fisher). With ``I_D`` on the whole
training data and ``I_f`` on the forget set, every parameter with ``I_f > alpha * I_D`` (far more
important to the forget set than to the data at large) is multiplied by
``beta = min(lambda * I_D / I_f, 1)``. The rest are untouched. Goel et al. found it removes
poisoning with about 10% of the poison identified, and fails on interclass confusion.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import UnlearningMethod, UnlearningProblem, accumulate_gradients, setting


def importances(model: nn.Module, problem: UnlearningProblem, indices: list[int], batch_size: int) -> dict[str, torch.Tensor]:
    """Mean over minibatches of the squared gradient of the batch-mean loss, per parameter."""
    total, n_batches = accumulate_gradients(model, problem, indices, batch_size, squared=True)
    return {n: t / max(n_batches, 1) for n, t in total.items()}


class SSD(UnlearningMethod):
    """Dampen parameters much more important to the forget set than to the training data."""

    name = "ssd"
    summary = "selective synaptic dampening (no training)"

    @dataclass
    class Settings:
        """Settings of :class:`SSD` (the paper's defaults)."""

        alpha: float = setting(10.0, "Selection: dampen parameters with I_forget > alpha * I_train")
        lam: float = setting(1.0, "Dampening: multiply by min(lam * I_train / I_forget, 1)")
        batch_size: int = setting(32, "Minibatch size of the importance estimates")

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        s = self.settings
        model = problem.copy_model().eval()  # dropout off: importances of the deployed model
        every = list(range(len(problem.train)))
        i_data = importances(model, problem, every, s.batch_size)
        i_forget = importances(model, problem, problem.forget, s.batch_size)
        with torch.no_grad():
            for n, p in model.named_parameters():
                selected = i_forget[n] > s.alpha * i_data[n]
                beta = torch.clamp(s.lam * i_data[n] / i_forget[n].clamp(min=1e-30), max=1.0)
                p.mul_(torch.where(selected, beta, torch.ones_like(beta)))
        return model.eval()
