"""TInt datasets: algorithmic chain-of-thought traces with planted static or dynamic noise.

Reproduces the data of Havrilla & Iyer 2024, "Understanding the Effect of Noise in LLM Training
Data with Algorithmic Chains of Thought" (filters.md section 1), so that noise filters can be
judged on data where the truth is known. Each record is a prompt (the problem), a completion
(the trace, one ``var = value`` line per changed variable, ending with ``ans = ...``) and
metadata columns that say which noise was planted and what it did:

============== ==============================================================================
func           function of the problem (add, sub, mul, div, gcd, sort, median, len, ...)
noise          ``clean``, ``static`` or ``dynamic``
p_c, p_l       static digit / line noise intensities used (0 unless ``static``)
p_dyn          dynamic noise intensity used (0 unless ``dynamic``)
true_answer    the problem's answer, as written in a clean trace (``4 7 5``; div: ``2 5 , 7``)
answer_correct the trace's last line equals the true answer
n_lines        lines in the completion
first_wrong_line 0-based line index of the first line that does not follow from the lines
               before it (:func:`verify_trace`), -1 if none
trace_changed  the completion differs from the problem's noise-free trace
index          position of the record in the generated list
============== ==============================================================================

Knobs that set the trace length: ``max_digits`` (numbers have min_digits..max_digits digits,
uniform; ``min_digits = max_digits`` gives fixed-width numbers, which a small model trained from
scratch learns far faster since every digit sits at a fixed position),
``list_len`` (list sizes for sort/median/len/index) and ``functions`` (mul, div and sort make
the longest traces); ``max_lines`` caps a trace (longer problems are redrawn).
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .tint_noise import dynamic_noise, static_noise
from .tint_traces import (
    DEFAULT_FUNCTIONS,
    FUNCTIONS,
    Problem,
    TraceTooLong,
    draw_problem,
    format_line,
    format_value,
    run_trace,
)
from .tint_verify import verify_trace

NOISE_KINDS = ("clean", "static", "dynamic")
MAX_ATTEMPTS = 1000  # draws per record before giving up on finding a new, short enough problem
NOISE_TRIES = 10  # with require_change: noise draws per problem before drawing another problem


class TintConfigError(ValueError):
    """A generator setting is out of range; ``param`` names the setting (the Python name)."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class TintConfig:
    """What to generate: problem sizes, functions and noise; validated on construction.

    ``dynamic_rate`` and ``static_rate`` are contamination rates: exactly
    ``round(n * rate)`` records, chosen at random, get that noise (so each record is noised
    with probability ``rate``); a record gets at most one kind of noise.

    Noise as specified can leave a short trace unchanged (single-digit values are never hit by
    dynamic noise; a uniform digit may equal the old one): with the defaults about 44% of
    dynamic-noise traces differ from the clean trace. ``require_change`` redraws the noise
    (then the problem) until a noised trace differs; this departs from the paper and shifts
    noised records towards problems with more digits, so it is off by default. The
    ``trace_changed`` column tells which noised records differ either way.
    """

    functions: tuple[str, ...] = DEFAULT_FUNCTIONS
    max_digits: int = 3
    min_digits: int = 1
    list_len: tuple[int, int] = (3, 5)
    max_lines: int = 300
    dynamic_rate: float = 0.0
    p_dyn: float = 0.2
    static_rate: float = 0.0
    p_c: float = 0.3
    p_l: float = 0.3
    require_change: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "functions", tuple(self.functions))
        object.__setattr__(self, "list_len", tuple(self.list_len))
        if not self.functions:
            raise TintConfigError("functions", "give at least one function")
        unknown = [f for f in self.functions if f not in FUNCTIONS]
        if unknown:
            raise TintConfigError(
                "functions", f"unknown function {', '.join(map(repr, unknown))}; expected some of {', '.join(FUNCTIONS)}"
            )
        if len(set(self.functions)) != len(self.functions):
            raise TintConfigError("functions", "a function is listed twice")
        if not (isinstance(self.max_digits, int) and 1 <= self.max_digits <= 30):
            raise TintConfigError("max_digits", f"expected an integer in 1..30, got {self.max_digits!r}")
        if not (isinstance(self.min_digits, int) and 1 <= self.min_digits <= self.max_digits):
            raise TintConfigError("min_digits", f"expected an integer in 1..max_digits, got {self.min_digits!r}")
        lo, hi = self.list_len if len(self.list_len) == 2 else (0, -1)
        if not (1 <= lo <= hi <= 100):
            raise TintConfigError("list_len", f"expected (min, max) with 1 <= min <= max <= 100, got {self.list_len!r}")
        if not (isinstance(self.max_lines, int) and self.max_lines >= 2):
            raise TintConfigError("max_lines", f"expected an integer >= 2, got {self.max_lines!r}")
        for name in ("dynamic_rate", "p_dyn", "static_rate", "p_c", "p_l"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise TintConfigError(name, f"expected a rate in [0, 1], got {value!r}")
        if self.dynamic_rate + self.static_rate > 1.0 + 1e-9:
            raise TintConfigError(
                "static_rate",
                f"the dynamic and static rates add up to more than 1 ({self.dynamic_rate} + "
                f"{self.static_rate}); a record gets one kind of noise",
            )

        if self.require_change and self.dynamic_rate > 0 and self.p_dyn == 0:
            raise TintConfigError("p_dyn", "require_change needs p_dyn > 0 when dynamic_rate > 0")
        if self.require_change and self.static_rate > 0 and self.p_c == 0 and self.p_l == 0:
            raise TintConfigError("p_c", "require_change needs p_c > 0 or p_l > 0 when static_rate > 0")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for run configs)."""
        return asdict(self)


def generate_tint(
    n: int,
    *,
    seed: int = 0,
    functions: Sequence[str] = DEFAULT_FUNCTIONS,
    max_digits: int = 3,
    list_len: tuple[int, int] = (3, 5),
    max_lines: int = 300,
    min_digits: int = 1,
    dynamic_rate: float = 0.0,
    p_dyn: float = 0.2,
    static_rate: float = 0.0,
    p_c: float = 0.3,
    p_l: float = 0.3,
    require_change: bool = False,
    exclude_prompts: Iterable[str] = (),
    unique: bool = True,
) -> list[dict[str, Any]]:
    """Generate ``n`` TInt records (a training set, possibly noised); see the module docstring.

    Deterministic by ``seed`` (one numpy Generator per call). With ``unique`` (default) no two
    records share a prompt, so no two share a sample id in a store; no record has a prompt in
    ``exclude_prompts`` (how a test set avoids the training problems). Raises
    :class:`TintConfigError` for a bad setting.
    """
    cfg = TintConfig(
        functions=tuple(functions), max_digits=max_digits, min_digits=min_digits, list_len=list_len,
        max_lines=max_lines, dynamic_rate=dynamic_rate, p_dyn=p_dyn, static_rate=static_rate, p_c=p_c, p_l=p_l,
        require_change=require_change,
    )
    return generate_from_config(n, cfg, np.random.default_rng(seed), exclude_prompts, unique)


def generate_tint_test(
    n: int,
    *,
    seed: int = 0,
    functions: Sequence[str] = DEFAULT_FUNCTIONS,
    max_digits: int = 3,
    list_len: tuple[int, int] = (3, 5),
    max_lines: int = 300,
    exclude_prompts: Iterable[str] = (),
    min_digits: int = 1,
) -> list[dict[str, Any]]:
    """Generate ``n`` noise-free TInt records for testing (test sets are never noised).

    Uses a random stream of its own (seed ``[seed, 1]``), so the same ``seed`` as the training
    set draws different problems; pass the training prompts as ``exclude_prompts`` to make sure.
    """
    cfg = TintConfig(functions=tuple(functions), max_digits=max_digits, min_digits=min_digits, list_len=list_len,
                     max_lines=max_lines)
    return generate_from_config(n, cfg, np.random.default_rng([seed, 1]), exclude_prompts, True)


def generate_from_config(
    n: int,
    cfg: TintConfig,
    rng: np.random.Generator,
    exclude_prompts: Iterable[str] = (),
    unique: bool = True,
) -> list[dict[str, Any]]:
    """Generate ``n`` records with ``cfg`` from ``rng`` (the engine of :func:`generate_tint`)."""
    if not isinstance(n, int | np.integer) or n <= 0:
        raise TintConfigError("n", f"expected a positive number of records, got {n!r}")
    n_dyn = round(n * cfg.dynamic_rate)
    n_static = min(round(n * cfg.static_rate), n - n_dyn)
    kinds = np.array(["dynamic"] * n_dyn + ["static"] * n_static + ["clean"] * (n - n_dyn - n_static))
    kinds = kinds[rng.permutation(n)]
    seen = set(exclude_prompts)
    funcs = cfg.functions
    records = []
    for index, kind in enumerate(kinds.tolist()):
        for _ in range(MAX_ATTEMPTS):
            func = funcs[int(rng.integers(len(funcs)))]
            problem = draw_problem(func, rng, cfg.max_digits, cfg.list_len, cfg.min_digits)
            if problem.prompt in seen:
                continue
            try:
                clean = run_trace(problem, max_lines=cfg.max_lines)
                clean_lines = [format_line(var, value) for var, value in clean]
                lines = _noised_lines(kind, problem, clean_lines, cfg, rng)
            except TraceTooLong:
                continue
            if lines is not None:
                break
        else:
            raise TintConfigError(
                "n",
                f"found only {index} distinct problems with at most {cfg.max_lines} lines"
                f"{' whose noise changes the trace' if cfg.require_change else ''} after {MAX_ATTEMPTS} "
                "draws; raise max_digits, list_len or max_lines, add functions or lower n",
            )
        if unique:
            seen.add(problem.prompt)
        records.append(_record(index, problem, kind, cfg, lines, clean_lines, format_value(clean[-1][1])))
    return records


def _noised_lines(
    kind: str, problem: Problem, clean_lines: list[str], cfg: TintConfig, rng: np.random.Generator
) -> list[str] | None:
    """The trace lines of a record of this noise kind; None if ``require_change`` could not be met."""
    if kind == "clean":
        return clean_lines
    for _ in range(NOISE_TRIES if cfg.require_change else 1):
        if kind == "dynamic":
            steps = run_trace(problem, dynamic_noise(cfg.p_dyn, rng), max_lines=cfg.max_lines)
            lines = [format_line(var, value) for var, value in steps]
        else:
            lines = static_noise(clean_lines, cfg.p_c, cfg.p_l, rng)
        if not cfg.require_change or lines != clean_lines:
            return lines
    return None  # this problem has (almost) nothing noise can change: draw another


def _record(
    index: int,
    problem: Problem,
    kind: str,
    cfg: TintConfig,
    lines: list[str],
    clean_lines: list[str],
    true_answer: str,
) -> dict[str, Any]:
    completion = "\n".join(lines)
    check = verify_trace(problem.prompt, completion)
    return {
        "prompt": problem.prompt,
        "completion": completion,
        "func": problem.func,
        "noise": kind,
        "p_c": float(cfg.p_c) if kind == "static" else 0.0,
        "p_l": float(cfg.p_l) if kind == "static" else 0.0,
        "p_dyn": float(cfg.p_dyn) if kind == "dynamic" else 0.0,
        "true_answer": true_answer,
        "answer_correct": check.answer_correct,
        "n_lines": len(lines),
        "first_wrong_line": check.first_wrong_line,
        "trace_changed": lines != clean_lines,
        "index": index,
    }


RECORD_SCHEMA = pa.schema([
    ("prompt", pa.string()), ("completion", pa.string()), ("func", pa.string()), ("noise", pa.string()),
    ("p_c", pa.float64()), ("p_l", pa.float64()), ("p_dyn", pa.float64()), ("true_answer", pa.string()),
    ("answer_correct", pa.bool_()), ("n_lines", pa.int64()), ("first_wrong_line", pa.int64()),
    ("trace_changed", pa.bool_()), ("index", pa.int64()),
])


def records_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table with fixed column types (what the store ingests)."""
    return pa.Table.from_pylist(list(records), schema=RECORD_SCHEMA)


def write_parquet(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write records as a Parquet file with fixed column types, atomically; returns the path.

    Preferred over jsonl for ingesting: a jsonl reader infers types from the values (a column
    of -1 and positive integers can come out as a 128-bit integer), Parquet keeps ``int64``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(records_table(records), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_jsonl(records: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write records as one JSON object per line, atomically (temp file + rename); returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=True) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class TintSummary:
    """Counts of a generated dataset, for a one-screen report."""

    n: int
    by_noise: dict[str, int]
    by_func: dict[str, int]
    answer_wrong_by_noise: dict[str, int]
    trace_changed_by_noise: dict[str, int]
    completion_chars: dict[str, float] = field(default_factory=dict)


def summarize(records: Sequence[dict[str, Any]]) -> TintSummary:
    """Counts per noise kind and function, wrong answers per kind and completion lengths."""
    lengths = sorted(len(r["completion"]) for r in records)
    q = (lambda f: lengths[min(len(lengths) - 1, int(f * len(lengths)))]) if lengths else (lambda f: 0)
    return TintSummary(
        n=len(records),
        by_noise={k: c for k in NOISE_KINDS if (c := sum(r["noise"] == k for r in records))},
        by_func=dict(Counter(r["func"] for r in records).most_common()),
        answer_wrong_by_noise=dict(Counter(r["noise"] for r in records if not r["answer_correct"])),
        trace_changed_by_noise=dict(Counter(r["noise"] for r in records if r["trace_changed"])),
        completion_chars={
            "mean": statistics.fmean(lengths) if lengths else 0.0,
            "median": q(0.5), "p90": q(0.9), "max": lengths[-1] if lengths else 0,
        },
    )
