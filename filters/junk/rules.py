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
from typing import Any

import numpy as np

import stores

from ..base import Evidence, Filter, Flags

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


class JunkRulesFilter(Filter):
    """Flags texts rejected by at least ``min_failed`` rule sets; the score is how many reject them.

    Reads the samples' text (``text``, or ``prompt`` + ``completion``); each reason lists the
    rule sets that rejected the text, datatrove's reason and its junk category.
    """

    name = "junk_rules"

    def __init__(self, rule_sets: Sequence[str] = RULE_SETS, *, min_failed: int = 1):
        from ..base import Budget

        if not 1 <= min_failed <= len(rule_sets):
            raise ValueError(f"min_failed must be in [1, {len(rule_sets)}], got {min_failed}")
        super().__init__(Budget(fraction=None, threshold=float(min_failed)))
        self.rule_sets = list(rule_sets)
        self.min_failed = min_failed

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        df = store.read_samples(dataset)
        if "text" in df.columns:
            texts = df["text"].fill_null("").to_list()
        elif "completion" in df.columns:
            texts = [(p or "") + (c or "") for p, c in zip(df["prompt"].to_list(), df["completion"].to_list(), strict=True)]
        else:
            raise ValueError(f"dataset {dataset!r} has neither a text nor a prompt/completion field")
        ids = df["sample_id"].to_list()
        verdicts = rule_verdicts(texts, self.rule_sets)
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


__all__ = ["CATEGORIES", "RULE_SETS", "JunkRulesFilter", "category", "rule_verdicts"]
