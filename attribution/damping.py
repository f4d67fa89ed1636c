"""The damping heuristic and its scale: ``damping = 0.1 x scale x mean eigenvalue`` of each layer.

kronfluence's heuristic damps each layer by 0.1 x the mean of its (normalised) eigenvalues
(``HEURISTIC_DAMPING_SCALE``); its API takes only one absolute damping for every layer, so a
multiple of the heuristic ("10x the heuristic") cannot be passed as a number. The engine's
``EngineConfig.damping_scale`` is that multiple: :func:`damping_scale` sets it for a block of
work, both in kronfluence's factor configs (the constant they read when they precondition) and
in this package's own preconditioners, which call :func:`heuristic_damping`.

The setting lives in a context variable plus kronfluence's module constant, restored on exit,
so it never leaks out of the engine call that set it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
from kronfluence.utils.constants import HEURISTIC_DAMPING_SCALE

_SCALE: contextvars.ContextVar[float] = contextvars.ContextVar("damping_scale", default=1.0)


def current_scale() -> float:
    """The multiple of the heuristic in force (1 outside :func:`damping_scale`)."""
    return _SCALE.get()


def heuristic_damping(mean_eigenvalue: torch.Tensor | float) -> torch.Tensor | float:
    """kronfluence's heuristic damping of a layer, times the scale in force: ``0.1 x scale x mean``."""
    return HEURISTIC_DAMPING_SCALE * _SCALE.get() * mean_eigenvalue


@contextlib.contextmanager
def damping_scale(scale: float) -> Iterator[None]:
    """Within the block, the heuristic damping is ``scale`` times kronfluence's (ours and kronfluence's).

    ``scale`` 1 changes nothing. The block is not meant to run concurrently with other engine work
    in another thread of the same process (kronfluence reads a module constant).
    """
    if not scale > 0:
        raise ValueError(f"damping_scale must be positive, got {scale}")
    from kronfluence.factor import config as kronfluence_factor_config

    token = _SCALE.set(float(scale))
    before = kronfluence_factor_config.HEURISTIC_DAMPING_SCALE
    kronfluence_factor_config.HEURISTIC_DAMPING_SCALE = HEURISTIC_DAMPING_SCALE * float(scale)
    try:
        yield
    finally:
        kronfluence_factor_config.HEURISTIC_DAMPING_SCALE = before
        _SCALE.reset(token)


__all__ = ["current_scale", "damping_scale", "heuristic_damping"]
