"""Fine-tuning methods that push the forget set's loss up: gradient ascent, gradient difference, NPO.

All three take ``steps`` Adam steps on a copy of the model, each on a shuffled batch of the forget
set (and, with a retain term, one of the retain set):

- ``gradient_ascent``: maximise the forget set's loss (minimise ``-L_f``); the common baseline,
  unbounded, so the number of steps is what keeps it from destroying the model;
- ``grad_diff``: ``-L_f + w L_r``, ascent on the forget set and descent on the retain set;
- ``npo`` (Zhang et al. 2024, negative preference optimisation): minimise
  ``(2/beta) mean log(1 + (p_theta(y|x) / p_ref(y|x))^beta)`` over the forget set, with
  ``p_ref`` the model before unlearning, plus ``w L_r``. The loss saturates once the forget
  samples are less likely than under the reference, which is why it degrades more slowly than
  gradient ascent. ``log p(y|x)`` is the sample's summed log-likelihood (all completion tokens).

Losses are the task's per-sample losses (per completion token for language models, see
:meth:`~curation.actions.unlearning.base.UnlearningProblem.losses`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import UnlearningMethod, UnlearningProblem, setting


@dataclass
class AscentSettings:
    """Settings shared by the gradient methods."""

    steps: int = setting(30, "Optimizer steps")
    lr: float = setting(1e-3, "Adam learning rate")
    batch_size: int = setting(32, "Forget (and retain) samples per step")
    retain_weight: float = setting(1.0, "Weight of the retain-set loss (grad_diff, npo; 0 turns it off)")
    max_grad_norm: float | None = setting(1.0, "Clip the gradient norm at this value (None: no clipping)")
    seed: int | None = setting(None, "Seed of the batch order (None: the problem's seed)")


class _FineTune(UnlearningMethod):
    """Adam steps on ``objective(forget batch, retain batch)``; subclasses define the objective."""

    uses_retain: bool = True

    def objective(self, model: nn.Module, problem: UnlearningProblem, forget, retain) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, problem: UnlearningProblem) -> None:
        """Hook run once before the steps (NPO copies the reference model)."""

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        s = self.settings
        seed = problem.seed if s.seed is None else s.seed
        torch.manual_seed(seed)
        model = problem.copy_model()
        self.prepare(problem)
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        forget = problem.endless(problem.forget, s.batch_size, seed)
        retain = problem.endless(problem.retain, s.batch_size, seed + 1) if self.uses_retain else None
        for _ in range(s.steps):
            loss = self.objective(model, problem, next(forget), next(retain) if retain is not None else None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if s.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm)
            opt.step()
        return model.eval()


class GradientAscent(_FineTune):
    """Gradient ascent on the forget set's loss (no retain term)."""

    name = "gradient_ascent"
    summary = "ascend the forget set's loss"
    uses_retain = False
    Settings = AscentSettings

    def objective(self, model, problem, forget, retain):
        return -problem.losses(model, forget).mean()


class GradientDifference(_FineTune):
    """Ascent on the forget set plus descent on the retain set."""

    name = "grad_diff"
    summary = "ascend the forget loss, descend the retain loss"
    Settings = AscentSettings

    def objective(self, model, problem, forget, retain):
        loss = -problem.losses(model, forget).mean()
        if self.settings.retain_weight:
            loss = loss + self.settings.retain_weight * problem.losses(model, retain).mean()
        return loss


@dataclass
class NPOSettings(AscentSettings):
    """Settings of :class:`NPO`."""

    beta: float = setting(0.1, "Inverse temperature of the NPO loss (small: close to gradient ascent)")


class NPO(_FineTune):
    """Negative preference optimisation against the original model, plus a retain term."""

    name = "npo"
    summary = "negative preference optimisation (+ retain loss)"
    Settings = NPOSettings

    def prepare(self, problem: UnlearningProblem) -> None:
        self._reference = copy.deepcopy(problem.model).eval()
        for p in self._reference.parameters():
            p.requires_grad_(False)

    def objective(self, model, problem, forget, retain):
        beta = self.settings.beta
        nll = problem.task.per_sample_loss(forget, model)
        with torch.no_grad():
            ref_nll = problem.task.per_sample_loss(forget, self._reference)
        loss = (2.0 / beta) * F.softplus(beta * (ref_nll - nll)).mean()
        if self.settings.retain_weight:
            loss = loss + self.settings.retain_weight * problem.losses(model, retain).mean()
        return loss
