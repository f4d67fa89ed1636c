"""The junk ("brain rot") filter: every junk evidence combined into one flags run with reasons.

Evidences (each larger = more junk-like, each with its own flag rule):

============== =========================================================================================
``rules``      how many datatrove rule sets (Gopher quality/repetition, C4, FineWeb) reject the text;
               flagged at ``min_rules`` (default 1); the reason names datatrove's reason and its category
``engagement`` M1 (Xing et al.): :func:`~filters.junk.engagement.engagement_scores`, flagged by the paper's
               rule (short and popular); used when the dataset has popularity fields
``classifier`` M2: P(junk) of the local classifier (a :class:`~filters.junk.classifier.ClassifierFilter`
               trained on a labelled dataset, or a fitted :class:`~filters.junk.classifier.JunkClassifier`);
               flagged at its threshold; the reason names the likely junk category and top n-grams
any run       ``self_scores`` runs in the store (perplexity, influence on thought-skipping...), each with a
               :class:`Threshold`: an absolute value, or a robust z-score rule
============== =========================================================================================

``combine="any"`` flags a sample when any evidence flags it; its score is the largest of the
evidences' rank percentiles. ``combine="mean"`` scores the mean rank percentile and flags by a
:class:`~filters.base.Budget`. A flagged sample's reason starts ``junk [categories]:`` (the junk
categories the evidences name; :func:`reason_categories` reads them back for reports) and lists
every evidence with its value.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import stores

from ..base import Budget, Evidence, Filter, Flags, rank_percentile
from ..evidence import self_score_evidence
from .classifier import ClassifierFilter, ClassifierScores, JunkClassifier
from .engagement import EngagementFilter, popularity_fields_of, sample_texts
from .rules import CATEGORIES, RULE_SETS, category, dataset_rule_verdicts

#: Kinds of :class:`Threshold`.
THRESHOLD_KINDS = ("value", "robust_z")
#: How a sample's evidences are combined.
COMBINE = ("any", "mean")
#: The category the engagement rule stands for.
ENGAGEMENT_CATEGORY = "short and popular"
#: The category of a flagged sample no evidence names a category for.
UNCATEGORISED = "uncategorised"
#: Scale of the median absolute deviation that makes it estimate a normal standard deviation.
MAD_SCALE = 1.4826


@dataclass(frozen=True)
class Threshold:
    """When one evidence flags a sample: ``value`` (x >= value) or ``robust_z`` (robust z > value).

    The robust z-score is ``(x - median) / (1.4826 * MAD)`` over the dataset's finite values, so a
    cut like "3 robust standard deviations above the typical sample" needs no absolute scale
    (perplexities differ by model). With MAD 0, anything above the median counts as past the cut.
    """

    value: float
    kind: str = "value"

    def __post_init__(self) -> None:
        if self.kind not in THRESHOLD_KINDS:
            raise ValueError(f"threshold kind must be one of {', '.join(THRESHOLD_KINDS)}, got {self.kind!r}")

    @classmethod
    def of(cls, spec: Threshold | float | tuple[str, float]) -> Threshold:
        """A threshold from a number (``value``), ``("z", 3.0)``/``("robust_z", 3.0)`` or ``("value", x)``."""
        if isinstance(spec, Threshold):
            return spec
        if isinstance(spec, int | float):
            return cls(float(spec))
        if isinstance(spec, tuple | list) and len(spec) == 2:
            kind = {"z": "robust_z"}.get(str(spec[0]), str(spec[0]))
            return cls(float(spec[1]), kind)
        raise ValueError(f"a threshold is a number, ('z', k) or ('value', x); got {spec!r}")

    def robust_z(self, values: np.ndarray) -> np.ndarray:
        """The robust z-scores of ``values`` (NaN stays NaN)."""
        finite = values[np.isfinite(values)]
        if not finite.size:
            return np.full(len(values), np.nan)
        med = float(np.median(finite))
        scale = MAD_SCALE * float(np.median(np.abs(finite - med)))
        if scale > 0:
            return (values - med) / scale
        z = np.where(values > med, np.inf, np.where(values < med, -np.inf, 0.0))
        z[np.isnan(values)] = np.nan
        return z

    def mask(self, values: np.ndarray) -> np.ndarray:
        """Which values are past the threshold (NaN never is)."""
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if self.kind == "value":
                return ~np.isnan(values) & (values >= self.value)
            z = self.robust_z(values)
            return ~np.isnan(z) & (z > self.value)

    def describe(self) -> str:
        """The threshold in words."""
        return f">= {self.value:g}" if self.kind == "value" else f"robust z > {self.value:g}"


@dataclass
class Signal:
    """One evidence as the junk filter uses it: values, flags, and per sample a detail and categories."""

    name: str
    values: np.ndarray
    flagged: np.ndarray
    source: str
    rule: str
    detail: list[str]
    categories: list[list[str]] = field(default_factory=list)
    unit: str = ""


def reason_categories(reason: str) -> list[str]:
    """The junk categories a flag's reason names.

    Reads the ``junk [a, b]:`` head of :class:`JunkFilter` reasons; for other junk filters' reasons,
    the ``likely category X`` of :class:`~filters.junk.classifier.ClassifierFilter` and the rule
    categories of :class:`~filters.junk.rules.JunkRulesFilter`. Empty when none is found.
    """
    m = re.match(r"junk \[([^\]]*)\]:", reason)
    if m:
        return [c.strip() for c in m.group(1).split(",") if c.strip()]
    m = re.search(r"likely category ([^;]+);", reason)
    if m:
        return [m.group(1).strip()]
    known = dict.fromkeys(name for _, name in CATEGORIES)
    return [c for c in known if f"({c})" in reason]


class JunkFilter(Filter):
    """Flags junk text by any or all of its evidences (see the module doc).

    ``rules``: True (every rule set), a list of rule sets, or False. ``engagement``: None (used
    when the dataset has popularity fields), True (required), an :class:`EngagementFilter`, or
    False. ``classifier``: a :class:`ClassifierFilter`, a fitted :class:`JunkClassifier` (flagged
    at ``classifier_threshold``), or None. ``self_scores`` maps an evidence name to ``(run_id,
    threshold)``; a threshold is anything :meth:`Threshold.of` reads. ``budget`` is used by
    ``combine="mean"`` only (default: the top 10%).
    """

    name = "junk"

    def __init__(self, *, rules: bool | Sequence[str] = True, min_rules: int = 1,
                 engagement: bool | EngagementFilter | None = None,
                 classifier: ClassifierFilter | JunkClassifier | None = None, classifier_threshold: float = 0.5,
                 self_scores: Mapping[str, tuple[str, Threshold | float | tuple[str, float]]] | None = None,
                 combine: str = "any", budget: Budget | None = None, top_k: int = 3, executor: Any = None):
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")
        if combine == "any" and budget is not None:
            raise ValueError("combine='any' flags by each evidence's own threshold; a budget needs combine='mean'")
        super().__init__(budget or Budget(fraction=0.1))
        self.rule_sets = list(RULE_SETS) if rules is True else list(rules) if rules else []
        unknown = sorted(set(self.rule_sets) - set(RULE_SETS))
        if unknown:
            raise ValueError(f"unknown rule set(s) {', '.join(unknown)}; expected some of {', '.join(RULE_SETS)}")
        if self.rule_sets and not 1 <= min_rules <= len(self.rule_sets):
            raise ValueError(f"min_rules must be in [1, {len(self.rule_sets)}], got {min_rules}")
        self.min_rules = min_rules
        self.engagement = EngagementFilter() if engagement is True else engagement
        self.engagement_required = engagement is True or isinstance(engagement, EngagementFilter)
        if classifier is not None and not isinstance(classifier, ClassifierFilter | JunkClassifier):
            raise TypeError(f"classifier must be a ClassifierFilter or a fitted JunkClassifier, got {type(classifier).__name__}")
        if isinstance(classifier, JunkClassifier) and classifier.model is None:
            raise ValueError("the JunkClassifier given is not fitted: call fit(texts, is_junk) first")
        self.classifier = classifier
        self.classifier_threshold = (classifier.threshold if isinstance(classifier, ClassifierFilter)
                                     else classifier_threshold)
        self.self_scores = {name: (run_id, Threshold.of(t)) for name, (run_id, t) in (self_scores or {}).items()}
        clash = sorted(set(self.self_scores) & {"rules", "engagement", "classifier"})
        if clash:
            raise ValueError(f"self_scores name(s) {', '.join(clash)} clash with the built-in evidences")
        self.combine = combine
        self.top_k = top_k
        self.executor = executor  # stores.executors: where the rule sets run (local by default)
        self._used: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ evidences
    def signals(self, store: stores.Store, dataset: str) -> tuple[list[str], list[Signal]]:
        """The dataset's sample ids and every evidence this filter uses on it."""
        df = store.read_samples(dataset)
        ids = df["sample_id"].to_list()
        texts = sample_texts(df, dataset)
        out: list[Signal] = []
        if self.rule_sets:
            out.append(self._rules(store, dataset, ids, texts))
        if self.engagement is not False and (self.engagement_required or popularity_fields_of(df.columns)):
            eng = self.engagement if isinstance(self.engagement, EngagementFilter) else EngagementFilter()
            m = eng.measure(store, dataset, df)
            out.append(Signal("engagement", m.score, m.flagged, "samples", f"words < {eng.max_words:g} and popularity > "
                              f"{eng.min_popularity:g}", [f"engagement {m.score[i]:.2f}: {m.describe(i, eng.max_words, eng.min_popularity)}"
                                                          for i in range(len(ids))],
                              [[ENGAGEMENT_CATEGORY] if f else [] for f in m.flagged], "rank percentile"))
        if self.classifier is not None:
            out.append(self._classifier(store, dataset, df, texts))
        for name, (run_id, threshold) in self.self_scores.items():
            ev = self_score_evidence(store, run_id, name)
            values = ev.aligned(ids)
            flagged = threshold.mask(values)
            z = threshold.robust_z(values) if threshold.kind == "robust_z" else None
            detail = [f"{name}: no score in run {run_id}" if np.isnan(values[i]) else
                      f"{name} {values[i]:.4g}" + (f" (robust z {z[i]:.2f})" if z is not None else "")
                      for i in range(len(ids))]
            out.append(Signal(name, values, flagged, run_id, threshold.describe(), detail,
                              [[] for _ in ids], ev.unit))
        if not out:
            raise ValueError(f"no junk evidence to use on dataset {dataset!r}: enable rules, give a classifier or "
                             "self_scores, or a dataset with popularity fields")
        return ids, out

    def _rules(self, store: stores.Store, dataset: str, ids: list[str], texts: list[str]) -> Signal:
        verdicts = dataset_rule_verdicts(store, dataset, ids, texts, self.rule_sets, self.executor)
        n = len(self.rule_sets)
        count = np.array([sum(verdicts[r][i] is not None for r in self.rule_sets) for i in range(len(texts))], float)
        detail, cats = [], []
        for i in range(len(texts)):
            hits = [(r, verdicts[r][i]) for r in self.rule_sets if verdicts[r][i] is not None]
            detail.append(f"rules: {len(hits)} of {n} rule sets reject it" +
                          (f" ({'; '.join(f'{r}: {why} -> {category(why)}' for r, why in hits)})" if hits else ""))
            cats.append(list(dict.fromkeys(category(why) for _, why in hits)))
        return Signal("rules", count, count >= self.min_rules, "samples (datatrove)",
                      f">= {self.min_rules} rule set(s)", detail, cats, "rule sets")

    def _classifier(self, store: stores.Store, dataset: str, df: Any, texts: list[str]) -> Signal:
        if isinstance(self.classifier, ClassifierFilter):
            s = self.classifier.score(store, dataset, df)
            source = f"classifier trained on {self.classifier.train_dataset}"
        else:
            s = ClassifierScores.of(self.classifier, texts, self.top_k)
            source = "classifier (fitted in memory)"
        p = s.probability
        flagged = ~np.isnan(p) & (p >= self.classifier_threshold)
        detail = []
        for i in range(len(texts)):
            feats = ", ".join(f"{name} ({w:+.2f})" for name, w in s.top[i]) or "no junk n-gram"
            cat = f", likely {s.category[i]}" if s.category[i] else ""
            detail.append(f"classifier: P(junk) {p[i]:.2f}{cat}; top n-grams {feats}")
        cats = [[s.category[i]] if flagged[i] and s.category[i] else [] for i in range(len(texts))]
        return Signal("classifier", p, flagged, source, f"P(junk) >= {self.classifier_threshold:g}", detail, cats, "P(junk)")

    # ------------------------------------------------------------------ flags
    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        """Every evidence on ``dataset``, combined (``any`` or ``mean``) into one score, flag and reason per sample."""
        ids, signals = self.signals(store, dataset)
        pct = np.vstack([rank_percentile(s.values) for s in signals])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a sample no evidence covers stays NaN
            score = np.nanmax(pct, axis=0) if self.combine == "any" else np.nanmean(pct, axis=0)
        if self.combine == "any":
            flagged = np.logical_or.reduce([s.flagged for s in signals])
        else:
            flagged = self.budget.select(score)
        self._used = [{"name": s.name, "source": s.source, "flags_at": s.rule} for s in signals]

        reasons = []
        for i in range(len(ids)):
            firing = [s for s in signals if s.flagged[i]]
            cats = list(dict.fromkeys(c for s in firing for c in s.categories[i])) or [UNCATEGORISED]
            if self.combine == "any":
                if flagged[i]:
                    reasons.append(f"junk [{', '.join(cats)}]: flagged by "
                                   + "; ".join(f"{s.detail[i]} ({s.rule})" for s in firing))
                else:
                    reasons.append("kept: no evidence flags it; " + "; ".join(s.detail[i] for s in signals))
            else:
                parts = "; ".join(f"{s.detail[i]}{' (flags it: ' + s.rule + ')' if s.flagged[i] else ''}"
                                  for s in signals)
                head = f"junk [{', '.join(cats)}]: " if flagged[i] else "kept: "
                reasons.append(f"{head}mean evidence percentile {score[i]:.2f}, "
                               f"{'flagged' if flagged[i] else 'not'} at {self.budget.describe()}; {parts}")
        evidence = [Evidence(s.name, ids, s.values, source=s.source, unit=s.unit) for s in signals]
        return Flags(self.name, ids, score, np.asarray(flagged, dtype=bool), reasons, evidence)

    def config(self) -> dict[str, Any]:
        """The evidences asked for and used, their flag thresholds, and the combination."""
        clf = None
        if isinstance(self.classifier, ClassifierFilter):
            clf = {"train_dataset": self.classifier.train_dataset, "label_field": self.classifier.label_field,
                   "threshold": self.classifier_threshold, "C": self.classifier.C}
        elif self.classifier is not None:
            clf = {"fitted": "in memory", "threshold": self.classifier_threshold, "C": self.classifier.C}
        eng = self.engagement if isinstance(self.engagement, EngagementFilter) else None
        return {
            "combine": self.combine,
            "budget": self.budget.describe() if self.combine == "mean" else "any evidence's own threshold",
            "rules": {"rule_sets": self.rule_sets, "min_rules": self.min_rules} if self.rule_sets else None,
            "engagement": (eng.config() if eng else EngagementFilter().config() | {"auto": True})
            if self.engagement is not False else None,
            "classifier": clf,
            "self_scores": {n: {"run_id": r, "threshold": t.describe()} for n, (r, t) in self.self_scores.items()},
            "evidences_used": self._used,
        }


__all__ = ["COMBINE", "ENGAGEMENT_CATEGORY", "THRESHOLD_KINDS", "UNCATEGORISED", "JunkFilter", "Signal",
           "Threshold", "reason_categories"]
