"""The influence strategies the toolkit offers: their names, in one place.

``ekfac`` and ``kfac`` precondition gradients in the Kronecker eigenbasis (EK-FAC with its fitted
eigenvalue corrections, K-FAC with the outer product of the two factors' eigenvalues); ``diagonal``
divides each gradient entry by its own (damped) second moment; ``identity`` uses gradients as
they are (gradient dot products, TracIn at the final checkpoint). ``ekfac_cg`` refines EK-FAC
by a few conjugate-gradient steps on the damped Gauss-Newton system of the training loss, with
EK-FAC as the preconditioner (:mod:`attribution.conjugate_gradient`): it uses EK-FAC's factors.
"""

from __future__ import annotations

STRATEGIES = ("ekfac", "kfac", "diagonal", "identity", "ekfac_cg")
#: the strategies kronfluence itself computes (ekfac_cg is ours, on top of EK-FAC)
KRONFLUENCE_STRATEGIES = ("ekfac", "kfac", "diagonal", "identity")

#: strategies whose factors are another strategy's (the factors kronfluence fits for them)
FACTORS_OF = {"ekfac_cg": "ekfac"}


def check_strategy(strategy: str) -> None:
    """Raise ``ValueError`` naming the choices unless ``strategy`` is one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def factor_strategy(strategy: str) -> str:
    """The kronfluence strategy whose factors ``strategy`` uses (itself, except ``ekfac_cg`` -> ``ekfac``)."""
    check_strategy(strategy)
    return FACTORS_OF.get(strategy, strategy)


__all__ = ["FACTORS_OF", "KRONFLUENCE_STRATEGIES", "STRATEGIES", "check_strategy", "factor_strategy"]
