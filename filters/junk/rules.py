"""Rule evidence for junk text: datatrove's Gopher, C4 and FineWeb quality filters, run offline.

The rule sets web-scale pipelines use (datatrove 0.10.1, its default thresholds; see
``../shared/specs/filters.md`` section 2) decide by surface form: too short, repetitive, list-like,
not prose. Each document gets, per rule set, ``None`` (passed) or datatrove's own reason string,
which :data:`CATEGORIES` maps to a junk category for reasons and junk-ratio reports. English words
and sentences come from spaCy's blank English pipeline (rule-based, no model download); nothing is
fetched at run time. C4's bad-words list is left out: datatrove downloads it on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import stores
from stores.datasets import SampleFile, iter_file_batches

from ..base import Evidence, Filter, Flags
from .engagement import sample_texts

#: The rule sets, in the order reasons list them.
RULE_SETS = ("gopher_quality", "gopher_repetition", "c4", "fineweb")

#: datatrove's reasons by the junk category they stand for (prefix match; first match wins).
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("gopher_short_doc", "extremely brief"), ("too_few_sentences", "extremely brief"), ("empty", "extremely brief"),
    ("dup_", "spam or repetitive"), ("char_dup_ratio", "spam or repetitive"), ("top_", "spam or repetitive"),
    ("duplicated_", "spam or repetitive"), ("gopher_too_many_bullets", "spam or repetitive"),
    ("list_ratio", "spam or repetitive"),
    ("gopher_", "not prose"), ("curly_bracket", "not prose"), ("lorem_ipsum", "not prose"),
    ("line_punct_ratio", "not prose"), ("short_line_ratio", "not prose"),
)


def category(reason: str) -> str:
    """The junk category of a datatrove reason string (``other`` when none matches)."""
    for prefix, name in CATEGORIES:
        if reason.startswith(prefix):
            return name
    return "other"


def _filters() -> dict[str, Any]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {"gopher_quality": GopherQualityFilter(), "gopher_repetition": GopherRepetitionFilter(),
            "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter()}


def rule_verdicts(texts: Sequence[str], rule_sets: Sequence[str] = RULE_SETS) -> dict[str, list[str | None]]:
    """Per rule set, datatrove's reason for each text it rejects (``None`` where the text passes)."""
    from datatrove.data import Document
    from datatrove.pipeline.filters.base_filter import get_filter_result

    unknown = sorted(set(rule_sets) - set(RULE_SETS))
    if unknown:
        raise ValueError(f"unknown rule set(s) {', '.join(unknown)}; expected some of {', '.join(RULE_SETS)}")
    filters = _filters()
    out: dict[str, list[str | None]] = {}
    for name in rule_sets:
        reasons: list[str | None] = []
        for i, text in enumerate(texts):
            passed, reason = get_filter_result(filters[name].filter(Document(text=text, id=str(i))))  # C4 edits text
            reasons.append(None if passed else str(reason))
        out[name] = reasons
    return out


@dataclass
class RuleVerdictsFile:
    """The rule verdicts of one sample file's texts (a worker task): its sample ids and the verdicts."""

    files: list[SampleFile]
    dataset: str
    rule_sets: list[str]

    def __call__(self, f: int) -> tuple[list[str], dict[str, list[str | None]]]:
        ids: list[str] = []
        texts: list[str] = []
        for batch in iter_file_batches(self.files[f].path):
            ids += batch["sample_id"].to_list()
            texts += sample_texts(batch, self.dataset)
        return ids, rule_verdicts(texts, self.rule_sets)


def dataset_rule_verdicts(store: stores.Store, dataset: str, ids: Sequence[str], texts: Sequence[str],
                          rule_sets: Sequence[str] = RULE_SETS, executor: Any = None) -> dict[str, list[str | None]]:
    """:func:`rule_verdicts` of a dataset's texts (``ids``/``texts`` in sample order), here or one task per shard.

    Each text's verdict depends on that text alone, so the verdicts of the shards, in shard
    order, are the local ones; the sample ids each task read are checked against ``ids``.
    """
    if executor is None or executor.name == "local":
        return rule_verdicts(list(texts), rule_sets)
    work = RuleVerdictsFile(store.dataset_sample_files(dataset), dataset, list(rule_sets))
    parts: dict[int, tuple[list[str], dict[str, list[str | None]]]] = {}
    executor.run(work, range(len(work.files)), lambda f, part: parts.__setitem__(f, part))
    got_ids = [sid for f in sorted(parts) for sid in parts[f][0]]
    if got_ids != list(ids):
        raise RuntimeError(f"dataset {dataset!r}: the shards' sample ids differ from the dataset's (changed while "
                           "the rules ran?)")
    return {r: [v for f in sorted(parts) for v in parts[f][1][r]] for r in rule_sets}


class JunkRulesFilter(Filter):
    """Flags texts rejected by at least ``min_failed`` rule sets; the score is how many reject them.

    Reads the samples' text (``text``, or ``prompt`` + ``completion``); each reason lists the
    rule sets that rejected the text, datatrove's reason and its junk category.
    """

    name = "junk_rules"

    def __init__(self, rule_sets: Sequence[str] = RULE_SETS, *, min_failed: int = 1, executor: Any = None):
        from ..base import Budget

        if not 1 <= min_failed <= len(rule_sets):
            raise ValueError(f"min_failed must be in [1, {len(rule_sets)}], got {min_failed}")
        super().__init__(Budget(fraction=None, threshold=float(min_failed)))
        self.rule_sets = list(rule_sets)
        self.min_failed = min_failed
        self.executor = executor  # stores.executors: where the rule sets run (local by default)

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        df = store.read_samples(dataset)
        texts = sample_texts(df, dataset)
        ids = df["sample_id"].to_list()
        verdicts = dataset_rule_verdicts(store, dataset, ids, texts, self.rule_sets, self.executor)
        failed = np.array([sum(verdicts[r][i] is not None for r in self.rule_sets) for i in range(len(ids))], float)
        evidence = [Evidence(f"rules_{r}", ids, np.array([v is not None for v in verdicts[r]], float), source="samples")
                    for r in self.rule_sets]

        def explain(i: int, flagged: bool) -> str:
            hits = [f"{r}: {verdicts[r][i]} ({category(verdicts[r][i])})" for r in self.rule_sets if verdicts[r][i]]
            if not hits:
                return "passes every rule set; kept"
            return f"rejected by {len(hits)} of {len(self.rule_sets)} rule sets: {'; '.join(hits)}; " + (
                "flagged" if flagged else f"kept (fewer than {self.min_failed})")

        return self.flags_from_score(ids, failed, evidence, explain)


__all__ = ["CATEGORIES", "RULE_SETS", "JunkRulesFilter", "RuleVerdictsFile", "category", "dataset_rule_verdicts",
           "rule_verdicts"]
