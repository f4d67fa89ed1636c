"""A verifier for TInt traces: re-parses the problem and recomputes every line from the lines
before it (the ground truth of the algorithmic setting; used to label and to test, never as a
filter).

How a trace is read, line by line, against the problem's algorithm
(:mod:`curation.datasets.tint_traces`):

- A line is **correct** when it is the value the algorithm computes from the variable values the
  trace holds at that point (the values *written* in earlier lines, right or wrong). So in a
  dynamic-noise trace the first noised line is wrong and the lines computed from it are correct
  locally, but the answer is wrong; in a static digit-noise trace a noised line is wrong, and so
  may be the next line that uses it (it follows from the true value, not the written one).
- **Missing lines** (static line noise deletes them): when a line does not match the step the
  algorithm expects next, the verifier looks ahead for a later step with the same variable and
  value, treating the steps in between as missing: their values are recomputed and carried on,
  and they count in ``n_missing`` but never as wrong. So a trace with only deleted lines
  verifies completely.
- Otherwise the line is **wrong**: its value is taken as the one of the next step of its
  variable (and carried on from there), or, if no later step has that variable or the line is
  not ``name = value``, it is wrong and skipped.

Per-line labels are exact for clean traces, dynamic-noise traces and deletion-only traces; when
digit noise and deletions combine, the alignment is greedy and labels after the first wrong line
are best effort. The answer check (``answer_correct``) compares the last line with the true
answer of the problem and does not depend on the alignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tint_traces import (
    ANSWER_VAR,
    Problem,
    Value,
    format_value,
    parse_line,
    parse_prompt,
    parse_value,
    run_trace,
)

_MAX_STEPS = 1_000_000  # a guard: no algorithm runs this long from any state


@dataclass
class VerifyResult:
    """Per-line verdicts of one trace, its first wrong line and whether its answer is right."""

    func: str
    line_ok: list[bool]
    n_missing: int
    first_wrong_line: int  # 0-based index into the completion's lines; -1 when every line is correct
    answer: str | None  # text of the final ``ans = ...`` line (None if the trace has none)
    true_answer: str
    answer_correct: bool
    missing_before: list[int] = field(default_factory=list)  # per line: steps skipped just before it

    @property
    def ok(self) -> bool:
        """Every line follows from the ones before it and the answer is right."""
        return self.first_wrong_line == -1 and self.answer_correct

    @property
    def n_wrong(self) -> int:
        """Number of wrong lines."""
        return sum(not ok for ok in self.line_ok)


class _Replay:
    """A run of the algorithm driven by the values the trace holds, rewindable by replaying them."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.sent: list[Value] = []
        self._restart()

    def _restart(self) -> None:
        self.gen = self.problem.steps()
        self.current: tuple[str, Value] | None = next(self.gen)
        for value in self.sent:
            self.current = self._advance(value)

    def _advance(self, value: Value) -> tuple[str, Value] | None:
        try:
            return self.gen.send(value)
        except StopIteration:
            return None

    def take(self, value: Value) -> None:
        """Hold ``value`` for the current step and move to the next one."""
        if len(self.sent) >= _MAX_STEPS:
            raise RuntimeError(f"{self.problem.prompt.strip()}: algorithm did not stop")
        self.sent.append(value)
        self.current = self._advance(value)

    def rewind(self, n_steps: int) -> None:
        """Go back to the state after the first ``n_steps`` steps."""
        if n_steps != len(self.sent):
            del self.sent[n_steps:]
            self._restart()


def verify_trace(prompt: str, completion: str) -> VerifyResult:
    """Check a TInt trace line by line against its prompt's problem (see the module docstring).

    Raises ValueError if the prompt is not a TInt problem; a malformed completion line is
    reported as wrong, never raised.
    """
    problem = parse_prompt(prompt)
    true_value = run_trace(problem)[-1][1]
    lines = completion.rstrip("\n").split("\n") if completion.strip() else []
    replay = _Replay(problem)
    line_ok: list[bool] = []
    missing_before: list[int] = []
    for line in lines:
        parsed = parse_line(line)
        mark = len(replay.sent)
        if parsed is None:
            line_ok.append(False)
            missing_before.append(0)
            continue
        var, text = parsed
        # 1. the next step of this variable with exactly this value: the steps between are missing
        skipped = 0
        while replay.current is not None:
            evar, expected = replay.current
            if evar == var and parse_value(text, expected) == expected:
                replay.take(expected)
                break
            replay.take(expected)
            skipped += 1
        else:
            # 2. no such step: the line is wrong; it holds the value of the next step of its variable
            replay.rewind(mark)
            skipped = 0
            while replay.current is not None:
                evar, expected = replay.current
                if evar == var:
                    written = parse_value(text, expected)
                    replay.take(written if written is not None else expected)
                    break
                replay.take(expected)
                skipped += 1
            else:
                replay.rewind(mark)  # 3. no step of this variable is left: an extra line
                skipped = 0
            line_ok.append(False)
            missing_before.append(skipped)
            continue
        line_ok.append(True)
        missing_before.append(skipped)

    answer = None
    if lines and (last := parse_line(lines[-1])) and last[0] == ANSWER_VAR:
        answer = last[1]
    answer_correct = answer is not None and parse_value(answer, true_value) == true_value
    first_wrong = next((k for k, ok in enumerate(line_ok) if not ok), -1)
    return VerifyResult(
        func=problem.func, line_ok=line_ok, n_missing=sum(missing_before), first_wrong_line=first_wrong,
        answer=answer, true_answer=format_value(true_value), answer_correct=answer_correct, missing_before=missing_before,
    )
