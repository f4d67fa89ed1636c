"""Junk ("brain rot") and low-value text: rule, engagement (M1), classifier (M2) and score evidence,
combined by :class:`JunkFilter`; :func:`junk_ratio` reports the junk ratio of a dataset and its curated output."""

from .classifier import ClassifierFilter, JunkClassifier, leave_one_category_out
from .engagement import EngagementFilter, engagement_scores
from .filter import JunkFilter, Threshold
from .report import curated_ratio, format_junk_ratio, junk_ratio
from .rules import JunkRulesFilter, rule_verdicts

__all__ = ["ClassifierFilter", "EngagementFilter", "JunkClassifier", "JunkFilter", "JunkRulesFilter", "Threshold",
           "curated_ratio", "engagement_scores", "format_junk_ratio", "junk_ratio", "leave_one_category_out",
           "rule_verdicts"]
