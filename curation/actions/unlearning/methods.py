"""Every unlearning method by name, and how to build one with settings.

=================== ==========================================================================
``retrain``          train from scratch on the retain set (the gold standard; needs the recipe)
``retrain_last``     re-initialise and retrain the last k layers on the retain set
``gradient_ascent``  ascend the forget set's loss
``grad_diff``        ascend the forget loss and descend the retain loss
``npo``              negative preference optimisation against the original model (+ retain)
``ssd``              selective synaptic dampening (no training)
``newton``           influence removal: one Newton step through the engine's factors
``iau``              one step along the retain minus forget gradient
=================== ==========================================================================
"""

from __future__ import annotations

from typing import Any

from .base import UnlearningInputError, UnlearningMethod
from .gradient import NPO, GradientAscent, GradientDifference
from .iau import IAU
from .newton import NewtonStep
from .retrain import Retrain, RetrainLast
from .ssd import SSD

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (Retrain, RetrainLast, GradientAscent, GradientDifference, NPO, SSD, NewtonStep, IAU)
}


def make_method(name: str, **settings: Any) -> UnlearningMethod:
    """The method called ``name`` with its settings overridden by ``settings`` (clear errors for unknowns)."""
    if name not in METHODS:
        raise UnlearningInputError(f"unknown unlearning method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name](**settings)


__all__ = ["METHODS", "make_method"]
