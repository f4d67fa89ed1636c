"""Planted training-data manipulations of Goel et al. (corrective unlearning): poisoning and interclass confusion.

Both act on a labelled image dataset given as flat pixel rows ``x`` (values in [0, 1]) and labels
``y``, and return the manipulated copy with a boolean mask of the manipulated rows (the set S_m
that a corrective method should find and unlearn):

- :func:`poison`: a ``fraction`` of the samples whose label is not ``target`` get a small bright
  square (the trigger, :func:`add_trigger`) in one corner and the label ``target``. A model trained
  on them learns "trigger -> target"; the clean accuracy on triggered test inputs (Acc_corr)
  measures how much of that survives.
- :func:`interclass_confusion`: a ``fraction`` of the samples of two classes have their labels
  swapped (a -> b, b -> a). Acc_corr is the accuracy on test samples of those two classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def trigger_pixels(side: int = 8, size: int = 2) -> np.ndarray:
    """Flat indices of a ``size`` x ``size`` square in the bottom-right corner of a ``side`` x ``side`` image."""
    rows = range(side - size, side)
    return np.array([r * side + c for r in rows for c in range(side - size, side)])


def add_trigger(x: np.ndarray, side: int = 8, size: int = 2, value: float = 1.0) -> np.ndarray:
    """A copy of the images ``x`` (rows of ``side``^2 pixels) with the trigger square set to ``value``."""
    out = np.array(x, dtype=np.float32, copy=True)
    out[:, trigger_pixels(side, size)] = value
    return out


def poison(x: np.ndarray, y: np.ndarray, fraction: float, target: int, seed: int, *,
           side: int = 8, size: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poison ``fraction`` of the samples (drawn among labels != ``target``): trigger + label ``target``.

    Returns ``(x, y, manipulated)``: copies with the poison applied and the mask of poisoned rows.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    y = np.asarray(y).copy()
    x = np.array(x, dtype=np.float32, copy=True)
    eligible = np.flatnonzero(y != target)
    k = int(round(fraction * len(y)))
    if k > len(eligible):
        raise ValueError(f"cannot poison {k} samples: only {len(eligible)} have a label other than {target}")
    chosen = np.random.default_rng(seed).choice(eligible, size=k, replace=False)
    x[chosen] = add_trigger(x[chosen], side, size)
    y[chosen] = target
    mask = np.zeros(len(y), dtype=bool)
    mask[chosen] = True
    return x, y, mask


def interclass_confusion(y: np.ndarray, classes: Sequence[int], fraction: float, seed: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Swap the labels of ``fraction`` of the samples of each of the two ``classes``; returns (y, manipulated)."""
    a, b = classes
    if a == b:
        raise ValueError("interclass confusion needs two different classes")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    y = np.asarray(y).copy()
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y), dtype=bool)
    for src in (a, b):
        members = np.flatnonzero(y == src)
        k = int(round(fraction * len(members)))
        mask[rng.choice(members, size=k, replace=False)] = True
    swapped = y.copy()
    swapped[mask & (y == a)] = b
    swapped[mask & (y == b)] = a
    return swapped, mask


__all__ = ["add_trigger", "interclass_confusion", "poison", "trigger_pixels"]
