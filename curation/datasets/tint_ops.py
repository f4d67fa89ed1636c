"""Digit-string arithmetic: the primitives TInt traces are computed with, digit by digit.

Numbers are non-negative integers held as strings of decimal digits, most significant first
(``"457"``). Every operation works on single digits (add with carry, subtract with borrow, a
number times one digit, long division by repeated subtraction), never on Python integers of
more than one digit, so that a trace line is something a character-level model can learn to
compute. Inputs may carry leading zeros (a noised trace can write ``0 5 7``); results never do.
"""

from __future__ import annotations

_DIGITS = frozenset("0123456789")


def is_number(x: str) -> bool:
    """True if ``x`` is a non-empty string of decimal digits."""
    return bool(x) and set(x) <= _DIGITS


def normalize(x: str) -> str:
    """``x`` without leading zeros (``"0"`` for zero)."""
    return x.lstrip("0") or "0"


def is_zero(x: str) -> bool:
    """True if the digit string is zero (any number of zeros)."""
    return normalize(x) == "0"


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is less than, equal to or greater than ``b``: length first, then digits."""
    a, b = normalize(a), normalize(b)
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


def add(a: str, b: str) -> str:
    """``a + b``, one column at a time from the right with a carry."""
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    out: list[str] = []
    carry = 0
    for i in range(n - 1, -1, -1):
        t = int(a[i]) + int(b[i]) + carry
        out.append(str(t % 10))
        carry = t // 10
    if carry:
        out.append(str(carry))
    return normalize("".join(reversed(out)))


def sub(a: str, b: str) -> str:
    """``a - b`` for ``a >= b``, one column at a time from the right with a borrow."""
    if compare(a, b) < 0:
        raise ValueError(f"sub needs a >= b, got {normalize(a)} - {normalize(b)}")
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    out: list[str] = []
    borrow = 0
    for i in range(n - 1, -1, -1):
        t = int(a[i]) - int(b[i]) - borrow
        borrow = 1 if t < 0 else 0
        out.append(str(t + 10 * borrow))
    return normalize("".join(reversed(out)))


def mul_digit(a: str, d: str) -> str:
    """``a * d`` for a single digit ``d``: single-digit products with a carry."""
    if len(d) != 1:
        raise ValueError(f"mul_digit needs one digit, got {d!r}")
    k = int(d)
    out: list[str] = []
    carry = 0
    for i in range(len(a) - 1, -1, -1):
        t = int(a[i]) * k + carry
        out.append(str(t % 10))
        carry = t // 10
    if carry:
        out.append(str(carry))
    return normalize("".join(reversed(out)))


def shift(a: str, k: int) -> str:
    """``a * 10**k``: ``k`` zeros appended (zero stays ``"0"``)."""
    a = normalize(a)
    return a if a == "0" else a + "0" * k


def mul(a: str, b: str) -> str:
    """``a * b``: the sum of ``a`` times each digit of ``b``, shifted to that digit's place."""
    total = "0"
    for j, d in enumerate(reversed(b)):
        total = add(total, shift(mul_digit(a, d), j))
    return total


def divmod_digits(a: str, b: str) -> tuple[str, str]:
    """``(a // b, a % b)`` by long division: bring down a digit, subtract ``b`` while it fits."""
    if is_zero(b):
        raise ZeroDivisionError("division by zero")
    q: list[str] = []
    r = "0"
    for x in a:
        r = normalize(r + x)
        qd = "0"
        while compare(r, b) >= 0:
            r = sub(r, b)
            qd = add(qd, "1")
        q.append(qd)
    return normalize("".join(q)), r


def mod(a: str, b: str) -> str:
    """``a % b`` (long division, remainder only)."""
    return divmod_digits(a, b)[1]
