"""Retraining without the forget set: from scratch (the gold standard) or only the last layers.

``retrain`` trains a freshly initialised model on the retain set with the original recipe and
seed: what the model would have been had the forget set never existed, and the target every
other method is measured against. It costs a whole training run. ``retrain_last`` keeps the
original model, re-initialises its last ``k`` layers and trains only them on the retain set
(Goel et al.'s "EU-k"): cheaper, exact for what the retrained layers learn, but the frozen
layers keep whatever the forget set taught them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..recipes import last_layers
from .base import UnlearningInputError, UnlearningMethod, UnlearningProblem, setting


def _recipe(problem: UnlearningProblem, name: str):
    if problem.recipe is None:
        raise UnlearningInputError(f"{name} needs the training recipe (how the model was trained); none was given")
    return problem.recipe


class Retrain(UnlearningMethod):
    """Train from scratch on the retain set with the original recipe (the gold standard)."""

    name = "retrain"
    summary = "train from scratch on the retain set (gold standard)"

    @dataclass
    class Settings:
        """Settings of :class:`Retrain`."""

        seed: int | None = setting(None, "Seed of the initialisation and batch order (None: the problem's seed, "
                                         "i.e. the original model's)")

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        recipe = _recipe(problem, self.name)
        seed = problem.seed if self.settings.seed is None else self.settings.seed
        return recipe.fit(recipe.fresh(seed), problem.retain_data, seed)


class RetrainLast(UnlearningMethod):
    """Re-initialise the last ``k`` layers and train only them on the retain set."""

    name = "retrain_last"
    summary = "re-initialise and retrain the last k layers on the retain set"

    @dataclass
    class Settings:
        """Settings of :class:`RetrainLast`."""

        k: int = setting(1, "Layers to retrain: the last k Linear layers (MLP) or transformer blocks (+ final norm)")
        seed: int | None = setting(None, "Seed of the re-initialisation and batch order (None: the problem's seed)")

    def unlearn(self, problem: UnlearningProblem) -> nn.Module:
        recipe = _recipe(problem, self.name)
        seed = problem.seed if self.settings.seed is None else self.settings.seed
        model = problem.copy_model()
        chosen = last_layers(model, self.settings.k)
        for p in model.parameters():
            p.requires_grad_(False)
        torch.manual_seed(seed)
        for layer in chosen:
            for sub in layer.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
            for p in layer.parameters():
                p.requires_grad_(True)
        model = recipe.fit(model, problem.retain_data, seed)
        for p in model.parameters():
            p.requires_grad_(True)
        return model
