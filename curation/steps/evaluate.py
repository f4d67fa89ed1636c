"""Evaluate a trained model on a held-out split: greedy answers, checked by an answer pattern.

The model's greedy completions are cached next to the model (keyed by the split's content, the
context length and the decoder's code), so re-running a pipeline does not decode again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import stores
from attribution.models import load_causal_lm
from stores.atomic import atomic_write_text

from ..errors import PipelineError
from .train import decoding_code_key, greedy_complete

#: The answer line of TInt traces: ``ans = <answer>``.
TINT_ANSWER_PATTERN = r"^ans = (.*)$"


def extract_answer(completion: str, pattern: str = TINT_ANSWER_PATTERN) -> str | None:
    """The answer a completion gives: ``pattern`` searched in its last non-blank line (stripped).

    The pattern's first group is the answer (the whole match when it has no group); None when
    the completion is empty or its last line does not match.
    """
    lines = [ln for ln in completion.strip().split("\n") if ln.strip()]
    if not lines:
        return None
    m = re.search(pattern, lines[-1].strip())
    if not m:
        return None
    return m.group(1) if m.re.groups else m.group(0)


def answers_correct(completions: list[str], true_answers: list[str], pattern: str = TINT_ANSWER_PATTERN) -> np.ndarray:
    """Whether each completion's answer (:func:`extract_answer`) equals the true answer (stripped)."""
    if len(completions) != len(true_answers):
        raise ValueError(f"{len(completions)} completions but {len(true_answers)} true answers")
    return np.array([extract_answer(c, pattern) == str(a).strip() for c, a in zip(completions, true_answers, strict=True)],
                    dtype=bool)


@dataclass
class SplitAccuracy:
    """A model's greedy accuracy on a split, with its completions and which were right."""

    accuracy: float
    completions: list[str]
    correct: np.ndarray


def greedy_accuracy(store: stores.Store, folder: Path, tokenizer, split: str, *, max_length: int,
                    answer_field: str = "true_answer", pattern: str = TINT_ANSWER_PATTERN) -> SplitAccuracy:
    """Greedy accuracy of the model in ``folder`` on the store dataset ``split`` (completions cached)."""
    info = store.dataset_info(split)
    fields = {f["name"] for f in info["fields"]}
    if answer_field not in fields:
        raise PipelineError(f"dataset {split!r} has no answer field {answer_field!r} (fields: {', '.join(sorted(fields))}); "
                            "set data.answer_field")
    data = store.read_samples(split, columns=["prompt", answer_field])
    fp = info["fingerprint"][:12]
    cache = folder / f"outputs-{split}-{fp}-{max_length}-{decoding_code_key()}.json"
    if cache.is_file():
        outs = json.loads(cache.read_text())
    else:
        outs = greedy_complete(load_causal_lm(folder), tokenizer, data["prompt"].to_list(), max_length)
        atomic_write_text(cache, json.dumps(outs))
    correct = answers_correct(outs, [str(a) for a in data[answer_field].to_list()], pattern)
    return SplitAccuracy(float(correct.mean()) if len(correct) else float("nan"), outs, correct)
