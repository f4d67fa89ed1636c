"""The influence strategies the toolkit offers: their names, in one place.

``ekfac`` and ``kfac`` precondition gradients in the Kronecker eigenbasis (EK-FAC with its fitted
eigenvalue corrections, K-FAC with the outer product of the two factors' eigenvalues); ``diagonal``
divides each gradient entry by its own (damped) second moment; ``identity`` uses gradients as
they are (gradient dot products, TracIn at the final checkpoint).
"""

from __future__ import annotations

STRATEGIES = ("ekfac", "kfac", "diagonal", "identity")


def check_strategy(strategy: str) -> None:
    """Raise ``ValueError`` naming the choices unless ``strategy`` is one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


__all__ = ["STRATEGIES", "check_strategy"]
