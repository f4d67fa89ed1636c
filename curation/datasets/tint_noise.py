"""Noise models for TInt traces (Havrilla & Iyer 2024; filters.md section 1).

*Static* noise is applied to a finished trace and stays local: digits are replaced and lines
deleted, but every other line still holds what the noise-free computation wrote. *Dynamic* noise
is applied while the trace is computed: a corrupted intermediate value is carried into every
later step, so the error propagates to the answer. "Uniform digit" means uniform over 0-9, so a
replaced digit keeps its value with probability 1/10, as in the paper's definition.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tint_traces import Value

_DIGIT_CODES = np.frombuffer(b"0123456789", dtype=np.uint8)


def noise_number(x: str, p: float, rng: np.random.Generator) -> str:
    """Dynamic noise on one number: each digit after its first non-zero digit is replaced by a
    uniform digit with probability ``p`` (the leading digit, hence the magnitude, is kept)."""
    first = next((i for i, ch in enumerate(x) if ch != "0"), len(x))
    tail = len(x) - first - 1
    if tail <= 0 or p <= 0:
        return x
    hit = rng.random(tail) < p
    if not hit.any():
        return x
    new = rng.integers(0, 10, size=tail)
    digits = list(x)
    for k in np.flatnonzero(hit):
        digits[first + 1 + k] = str(new[k])
    return "".join(digits)


def noise_value(value: Value, p: float, rng: np.random.Generator) -> Value:
    """Dynamic noise on a value: a number, or each number of a list."""
    if isinstance(value, tuple):
        return tuple(noise_number(x, p, rng) for x in value)
    return noise_number(value, p, rng)


def dynamic_noise(p_dyn: float, rng: np.random.Generator) -> Callable[[Value], Value]:
    """The per-value noise function :func:`~curation.datasets.tint_traces.run_trace` applies."""
    return lambda value: noise_value(value, p_dyn, rng)


def noise_digits(text: str, p_c: float, rng: np.random.Generator) -> str:
    """Static digit noise: every digit of ``text`` replaced by a uniform digit with probability ``p_c``."""
    if p_c <= 0:
        return text
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8).copy()
    where = np.flatnonzero((codes >= ord("0")) & (codes <= ord("9")))
    hit = where[rng.random(len(where)) < p_c]
    codes[hit] = _DIGIT_CODES[rng.integers(0, 10, size=len(hit))]
    return codes.tobytes().decode("ascii")


def static_noise(lines: list[str], p_c: float, p_l: float, rng: np.random.Generator) -> list[str]:
    """Static noise on a finished trace's lines (the last one is the answer).

    Digit noise first (every digit of every line, answer included, with probability ``p_c``),
    then line noise (each line but the answer deleted with probability ``p_l``).
    """
    noised = noise_digits("\n".join(lines), p_c, rng).split("\n")
    if p_l <= 0 or len(noised) < 2:
        return noised
    keep = rng.random(len(noised) - 1) >= p_l
    return [line for line, k in zip(noised[:-1], keep, strict=True) if k] + noised[-1:]
