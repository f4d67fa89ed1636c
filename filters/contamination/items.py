"""Benchmark items and training documents as text: which fields hold them, with clear errors.

A benchmark is an ordinary dataset. Its items' question and answer fields default to
``question``/``answer``, else the ``prompt``/``completion`` roles, else ``text`` (a question
alone). A training document's text is the named fields joined by a newline (default ``text``,
else ``prompt`` + ``completion``).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

import stores

QUESTION_DEFAULTS = ("question", "prompt", "text", "input")
ANSWER_DEFAULTS = ("answer", "completion", "canonical_solution", "target", "output")
NAME_DEFAULTS = ("id", "task_id", "item_id", "question_id", "source_id")


class ContaminationInputError(stores.StoreError):
    """A dataset lacks the fields contamination needs, or they hold no text."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark item: its dataset (benchmark), id, question, answer, and the text matched."""

    benchmark: str
    item_id: str
    question: str
    answer: str
    name: str = ""      # the benchmark's own id of the item (its ``id``/``task_id`` field), for people

    @property
    def text(self) -> str:
        """Question and answer as one text (n-grams may span both, as in datatrove's decontamination)."""
        return f"{self.question}\n{self.answer}" if self.answer else self.question

    @property
    def key(self) -> str:
        """``benchmark:item_id``, unique across benchmarks."""
        return f"{self.benchmark}:{self.item_id}"

    @property
    def label(self) -> str:
        """``benchmark:name`` for reasons (the benchmark's own id when it has one)."""
        return f"{self.benchmark}:{self.name or self.item_id}"


def _string_columns(store: stores.Store, dataset: str) -> dict[str, str]:
    info = store.dataset_info(dataset)
    return {f["name"]: str(f.get("type") or "VARCHAR").upper() for f in info["fields"]}


def _pick(columns: dict[str, str], dataset: str, given: str | None, defaults: Sequence[str], what: str,
          required: bool) -> str | None:
    available = ", ".join(columns) or "(none)"
    if given is not None:
        if given not in columns:
            raise ContaminationInputError(f"dataset {dataset!r} has no field {given!r} ({what}); available fields: {available}")
        chosen = given
    else:
        chosen = next((d for d in defaults if d in columns), None)
        if chosen is None:
            if required:
                raise ContaminationInputError(
                    f"dataset {dataset!r}: no {what} field found (looked for {', '.join(defaults)}); "
                    f"name it with --{what.replace(' ', '-')}-field; available fields: {available}")
            return None
    if columns[chosen] not in ("VARCHAR", "STRING", "TEXT"):
        raise ContaminationInputError(
            f"dataset {dataset!r}: field {chosen!r} ({what}) is {columns[chosen]}, expected text (VARCHAR)")
    return chosen


def benchmark_fields(store: stores.Store, dataset: str, question_field: str | None = None,
                     answer_field: str | None = None) -> tuple[str, str | None]:
    """The question and answer fields of a benchmark dataset (answer may be absent)."""
    cols = _string_columns(store, dataset)
    q = _pick(cols, dataset, question_field, QUESTION_DEFAULTS, "question", True)
    a = _pick(cols, dataset, answer_field, [d for d in ANSWER_DEFAULTS if d != q], "answer", False)
    return q, a


def read_items(store: stores.Store, dataset: str, question_field: str | None = None,
               answer_field: str | None = None) -> list[BenchmarkItem]:
    """A benchmark's items; an empty benchmark or one without questions is an error."""
    q, a = benchmark_fields(store, dataset, question_field, answer_field)
    cols = _string_columns(store, dataset)
    name_field = next((n for n in NAME_DEFAULTS if n in cols), None)
    df = store.read_samples(dataset, columns=["sample_id", q] + ([a] if a else []) + ([name_field] if name_field else []))
    if df.height == 0:
        raise ContaminationInputError(f"benchmark {dataset!r} is empty: no items to look for")
    questions = df[q].fill_null("").to_list()
    answers = df[a].fill_null("").to_list() if a else [""] * df.height
    names = [str(v) for v in df[name_field].to_list()] if name_field else df["sample_id"].to_list()
    items = [BenchmarkItem(dataset, sid, qq, aa, nn)
             for sid, qq, aa, nn in zip(df["sample_id"], questions, answers, names, strict=True)]
    if not any(it.text.strip() for it in items):
        raise ContaminationInputError(f"benchmark {dataset!r}: every item's {q!r}{' and ' + repr(a) if a else ''} is empty")
    return items


def train_fields(store: stores.Store, dataset: str, text_fields: Sequence[str] | None = None) -> list[str]:
    """The fields whose text makes a training document (checked to exist and hold text)."""
    cols = _string_columns(store, dataset)
    if text_fields:
        return [str(_pick(cols, dataset, f, (), "text", True)) for f in text_fields]
    if "text" in cols:
        return [str(_pick(cols, dataset, "text", (), "text", True))]
    if "prompt" in cols and "completion" in cols:
        return [str(_pick(cols, dataset, f, (), "text", True)) for f in ("prompt", "completion")]
    raise ContaminationInputError(
        f"dataset {dataset!r}: no text field (looked for text, or prompt + completion); name them with "
        f"--text-field; available fields: {', '.join(cols) or '(none)'}")


def document_text(batch: pl.DataFrame, fields: Sequence[str]) -> list[str]:
    """The document text of each row of ``batch``: the ``fields`` joined by newlines (nulls as empty)."""
    if len(fields) == 1:
        return batch[fields[0]].fill_null("").to_list()
    cols = [batch[f].fill_null("").to_list() for f in fields]
    return ["\n".join(parts) for parts in zip(*cols, strict=True)]


def is_code_benchmark(items: Sequence[BenchmarkItem], share: float = 0.8) -> bool:
    """Whether at least ``share`` of the items' question + answer parse as Python with a def or return."""
    def parses(text: str) -> bool:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return False
        return any(isinstance(n, ast.FunctionDef | ast.Return) for n in ast.walk(tree))

    sample = list(items)[:200]
    return bool(sample) and sum(parses(it.text) for it in sample) >= share * len(sample)
