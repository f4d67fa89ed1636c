"""TInt problems and their step-by-step algorithms (Havrilla & Iyer 2024, section 1 of filters.md).

A *value* is a number (a digit string, ``"457"``) or a list of numbers (a tuple of digit
strings). In text, digits are space-separated and list items are separated by ``" , "``:
``4 5 7`` and ``3 1 , 7 , 2 0 4``.

A *problem* is a function name and its arguments; its prompt is ``"<func> <args>\\n"`` with the
arguments in the same notation, e.g. ``"add 4 5 7 , 1 8\\n"`` or ``"sort 3 1 , 7 , 2 0 4\\n"``.

An *algorithm* is a generator that yields ``(variable, value)`` for every variable a step
changes and receives back the value the trace actually holds from then on. The generator (with
or without dynamic noise) sends back what it wrote; the verifier sends back what the trace says.
So one piece of code defines both how traces are made and how each line is checked, and a
wrong value flows into every later step exactly as it would in a trace. The last step is
``("ans", answer)``; variable names are letters only, so digit noise never touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from . import tint_ops as ops

Value = str | tuple[str, ...]
Steps = Generator[tuple[str, Value], Value, None]

ANSWER_VAR = "ans"
#: every character a prompt or completion can contain (for a character-level tokenizer)
CHARSET = "\n ,0123456789=abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------- text form of values
def format_value(value: Value) -> str:
    """Text of a value: ``"457"`` -> ``"4 5 7"``; ``("31", "7")`` -> ``"3 1 , 7"``."""
    if isinstance(value, tuple):
        return " , ".join(" ".join(x) for x in value)
    return " ".join(value)


def parse_number(text: str) -> str | None:
    """Digit string of ``"4 5 7"``, or None if the text is not single digits separated by spaces."""
    tokens = text.split()
    if not tokens or any(len(t) != 1 or not t.isdigit() for t in tokens):
        return None
    return "".join(tokens)


def parse_value(text: str, like: Value) -> Value | None:
    """Parse ``text`` as a value of the same kind (number or list) as ``like``; None if malformed."""
    if isinstance(like, tuple):
        items = [parse_number(part) for part in text.split(",")]
        return None if any(x is None for x in items) else tuple(items)  # type: ignore[arg-type]
    return parse_number(text)


def format_line(var: str, value: Value) -> str:
    """One trace line: ``s = 7 5``."""
    return f"{var} = {format_value(value)}"


def parse_line(line: str) -> tuple[str, str] | None:
    """``(variable, value text)`` of a trace line, or None if it is not ``name = value``."""
    var, sep, text = line.partition(" = ")
    if not sep or not var.isalpha() or not var.islower():
        return None
    return var, text


# ---------------------------------------------------------------------- algorithms
def _set(state: dict[str, Value], name: str, value: Value) -> Steps:
    """Assign ``value`` to ``name`` as one trace step, only if it changes the variable."""
    if state.get(name) != value:
        state[name] = yield (name, value)


def _add(a: str, b: str) -> Steps:
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    v: dict[str, Value] = {"s": "", "c": "0"}  # s: sum digits so far, c: carry
    for i in range(n - 1, -1, -1):
        t = int(a[i]) + int(b[i]) + int(v["c"])
        yield from _set(v, "s", str(t % 10) + v["s"])
        yield from _set(v, "c", str(t // 10))
    if not ops.is_zero(v["c"]):
        yield from _set(v, "s", v["c"] + v["s"])
    yield ANSWER_VAR, ops.normalize(v["s"])


def _sub(a: str, b: str) -> Steps:
    n = max(len(a), len(b))
    a, b = a.zfill(n), b.zfill(n)
    v: dict[str, Value] = {"r": "", "c": "0"}  # r: difference digits so far, c: borrow
    for i in range(n - 1, -1, -1):
        t = int(a[i]) - int(b[i]) - int(v["c"])
        yield from _set(v, "r", str(t % 10) + v["r"])
        yield from _set(v, "c", str(-(t // 10)))
    yield ANSWER_VAR, ops.normalize(v["r"])


def _mul(a: str, b: str) -> Steps:
    digits = b[::-1]
    v: dict[str, Value] = {}  # m: running product, p: a times one digit of b, shifted
    yield from _set(v, "m", ops.mul_digit(a, digits[0]))
    for j in range(1, len(digits)):
        yield from _set(v, "p", ops.shift(ops.mul_digit(a, digits[j]), j))
        yield from _set(v, "m", ops.add(v["m"], v["p"]))
    yield ANSWER_VAR, ops.normalize(v["m"])


def _div(a: str, b: str) -> Steps:
    v: dict[str, Value] = {"r": "0", "q": ""}  # r: running remainder, q: quotient digits so far
    for x in a:
        yield from _set(v, "r", ops.normalize(v["r"] + x))  # bring the next digit down
        qd, rem = ops.divmod_digits(v["r"], b)
        yield from _set(v, "q", v["q"] + qd)
        yield from _set(v, "r", rem)
    yield ANSWER_VAR, (ops.normalize(v["q"]), ops.normalize(v["r"]))


def _gcd(a: str, b: str) -> Steps:
    v: dict[str, Value] = {"a": a, "b": b}  # Euclid: the larger becomes itself mod the smaller
    while not ops.is_zero(v["a"]) and not ops.is_zero(v["b"]):
        if ops.compare(v["a"], v["b"]) >= 0:
            yield from _set(v, "a", ops.mod(v["a"], v["b"]))
        else:
            yield from _set(v, "b", ops.mod(v["b"], v["a"]))
    yield ANSWER_VAR, ops.normalize(v["b"] if ops.is_zero(v["a"]) else v["a"])


def _selection_pass(v: dict[str, Value], i: int) -> Steps:
    """One selection-sort pass: swap the first minimum of ``l[i:]`` into place ``i``."""
    lst = list(v["l"])
    j = i
    for k in range(i + 1, len(lst)):
        if ops.compare(lst[k], lst[j]) < 0:
            j = k
    if j != i:
        lst[i], lst[j] = lst[j], lst[i]
        yield from _set(v, "l", tuple(lst))


def _sort(lst: tuple[str, ...]) -> Steps:
    v: dict[str, Value] = {"l": lst}
    i = 0
    while i < len(v["l"]) - 1:
        yield from _selection_pass(v, i)
        i += 1
    yield ANSWER_VAR, tuple(ops.normalize(x) for x in v["l"])


def _median(lst: tuple[str, ...]) -> Steps:
    v: dict[str, Value] = {"l": lst}
    mid = (len(lst) - 1) // 2  # lower median: selection sort only up to the middle
    i = 0
    while i <= mid and i < len(v["l"]) - 1:
        yield from _selection_pass(v, i)
        i += 1
    yield ANSWER_VAR, ops.normalize(v["l"][min(mid, len(v["l"]) - 1)])


def _len(lst: tuple[str, ...]) -> Steps:
    v: dict[str, Value] = {"n": "0"}
    for _ in lst:
        yield from _set(v, "n", ops.add(v["n"], "1"))
    yield ANSWER_VAR, ops.normalize(v["n"])


def _rshift(x: str, k: str) -> Steps:
    v: dict[str, Value] = {"x": x}  # drop the last digit k times
    for _ in range(int(k)):
        if ops.is_zero(v["x"]):
            break
        yield from _set(v, "x", v["x"][:-1] or "0")
    yield ANSWER_VAR, ops.normalize(v["x"])


def _index(lst: tuple[str, ...], pos: str) -> Steps:
    v: dict[str, Value] = {}  # walk the list to position pos (0-based)
    for j in range(int(pos) + 1):
        yield from _set(v, "e", lst[j])
    yield ANSWER_VAR, ops.normalize(v["e"])


# ---------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """A TInt problem: a function name and its arguments (numbers, or one list first)."""

    func: str
    args: tuple[Value, ...]

    @property
    def prompt(self) -> str:
        """The prompt text, e.g. ``"add 4 5 7 , 1 8\\n"``."""
        parts = [format_value(a) for a in self.args]
        return f"{self.func} {' , '.join(parts)}\n"

    def steps(self) -> Steps:
        """A fresh run of this problem's algorithm."""
        return FUNCTIONS[self.func].algorithm(*self.args)


@dataclass(frozen=True)
class TintFunction:
    """One TInt function: its algorithm, argument layout and how to draw random problems."""

    name: str
    algorithm: Callable[..., Steps]
    layout: str  # "nn": two numbers; "l": one list; "ln": a list then a number
    draw: Callable[[np.random.Generator, int, tuple[int, int]], tuple[Value, ...]]
    check: Callable[[tuple[Value, ...]], str | None]


Digits = tuple[int, int]  # (min, max) digit count of drawn numbers


def draw_number(rng: np.random.Generator, digits: Digits, nonzero: bool = False) -> str:
    """A random number: digit count uniform in digits[0]..digits[1], then uniform with that many digits."""
    n = int(rng.integers(digits[0], digits[1] + 1))
    lead = int(rng.integers(1 if (n > 1 or nonzero) else 0, 10))
    rest = "".join(str(d) for d in rng.integers(0, 10, size=n - 1))
    return str(lead) + rest


def _draw_list(rng: np.random.Generator, digits: Digits, list_len: tuple[int, int]) -> tuple[str, ...]:
    k = int(rng.integers(list_len[0], list_len[1] + 1))
    return tuple(draw_number(rng, digits) for _ in range(k))


def _ordered(a: str, b: str) -> tuple[str, str]:
    return (a, b) if ops.compare(a, b) >= 0 else (b, a)


def _draw_pair(rng, digits, list_len):
    return draw_number(rng, digits), draw_number(rng, digits)


def _draw_ordered(rng, digits, list_len):
    return _ordered(draw_number(rng, digits), draw_number(rng, digits))


def _draw_div(rng, digits, list_len):
    return _ordered(draw_number(rng, digits, nonzero=True), draw_number(rng, digits, nonzero=True))


def _draw_gcd(rng, digits, list_len):
    return draw_number(rng, digits, nonzero=True), draw_number(rng, digits, nonzero=True)


def _draw_one_list(rng, digits, list_len):
    return (_draw_list(rng, digits, list_len),)


def _draw_rshift(rng, digits, list_len):
    return draw_number(rng, digits), str(int(rng.integers(1, digits[1] + 1)))


def _draw_index(rng, digits, list_len):
    lst = _draw_list(rng, digits, list_len)
    return lst, str(int(rng.integers(0, len(lst))))


def _check_any(args):
    return None


def _check_ordered(args):
    return None if ops.compare(args[0], args[1]) >= 0 else "needs a >= b"


def _check_div(args):
    if ops.is_zero(args[1]):
        return "division by zero"
    return _check_ordered(args)


def _check_gcd(args):
    return "needs a, b > 0" if ops.is_zero(args[0]) or ops.is_zero(args[1]) else None


def _check_list(args):
    return None if args[0] else "needs a non-empty list"


def _check_rshift(args):
    return "shift must be at most 99" if ops.compare(args[1], "99") > 0 else None


def _check_index(args):
    if not args[0]:
        return "needs a non-empty list"
    return None if ops.compare(args[1], str(len(args[0]) - 1)) <= 0 else "position past the end of the list"


FUNCTIONS: dict[str, TintFunction] = {
    f.name: f
    for f in (
        TintFunction("add", _add, "nn", _draw_pair, _check_any),
        TintFunction("sub", _sub, "nn", _draw_ordered, _check_ordered),
        TintFunction("mul", _mul, "nn", _draw_pair, _check_any),
        TintFunction("div", _div, "nn", _draw_div, _check_div),
        TintFunction("gcd", _gcd, "nn", _draw_gcd, _check_gcd),
        TintFunction("sort", _sort, "l", _draw_one_list, _check_list),
        TintFunction("median", _median, "l", _draw_one_list, _check_list),
        TintFunction("len", _len, "l", _draw_one_list, _check_list),
        TintFunction("rshift", _rshift, "nn", _draw_rshift, _check_rshift),
        TintFunction("index", _index, "ln", _draw_index, _check_index),
    )
}
DEFAULT_FUNCTIONS = ("add", "sub", "mul", "div", "gcd", "sort", "median")


def draw_problem(func: str, rng: np.random.Generator, max_digits: int, list_len: tuple[int, int],
                 min_digits: int = 1) -> Problem:
    """A random problem of function ``func`` (numbers of ``min_digits``..``max_digits`` digits)."""
    return Problem(func, FUNCTIONS[func].draw(rng, (min_digits, max_digits), list_len))


def parse_prompt(prompt: str) -> Problem:
    """The problem a prompt states; ValueError naming what is wrong if it is not a TInt prompt."""
    head, _, rest = prompt.strip().partition(" ")
    fn = FUNCTIONS.get(head)
    if fn is None:
        raise ValueError(f"prompt {prompt!r}: unknown function {head!r}; expected one of {', '.join(FUNCTIONS)}")
    items = [parse_number(part) for part in rest.split(",")]
    if not rest.strip() or any(x is None for x in items):
        raise ValueError(f"prompt {prompt!r}: arguments must be space-separated digits joined by ' , '")
    nums: list[str] = items  # type: ignore[assignment]
    if fn.layout == "nn":
        if len(nums) != 2:
            raise ValueError(f"prompt {prompt!r}: {head} takes two numbers, got {len(nums)}")
        args: tuple[Value, ...] = (nums[0], nums[1])
    elif fn.layout == "l":
        args = (tuple(nums),)
    else:
        if len(nums) < 2:
            raise ValueError(f"prompt {prompt!r}: {head} takes a list then a position")
        args = (tuple(nums[:-1]), nums[-1])
    problem = fn.check(args)
    if problem:
        raise ValueError(f"prompt {prompt!r}: {head} {problem}")
    return Problem(head, args)


class TraceTooLong(Exception):
    """A trace would exceed the line cap (the generator draws another problem)."""


def run_trace(
    problem: Problem,
    noise: Callable[[Value], Value] | None = None,
    max_lines: int | None = None,
) -> list[tuple[str, Value]]:
    """Run a problem's algorithm and return its steps ``[(var, value), ..., ("ans", answer)]``.

    ``noise`` (dynamic noise) maps each intermediate value to the value written and carried on;
    the answer line is a copy of the final state and is not noised itself. Raises
    :class:`TraceTooLong` past ``max_lines`` lines.
    """
    gen = problem.steps()
    out: list[tuple[str, Value]] = []
    var, value = next(gen)
    while True:
        if max_lines is not None and len(out) >= max_lines:
            raise TraceTooLong(f"{problem.prompt.strip()}: more than {max_lines} lines")
        if var == ANSWER_VAR:
            out.append((var, value))
            return out
        written = noise(value) if noise is not None else value
        out.append((var, written))
        var, value = gen.send(written)


def answer_of(problem: Problem) -> Value:
    """The true answer of a problem (its noise-free trace's last line)."""
    return run_trace(problem)[-1][1]
