"""Per-sample filters that turn evidence into flags with reasons (see :mod:`filters.base`)."""

from .base import Budget, Evidence, Filter, FilterRun, Flags, rank_percentile
from .noisy_cot import NoisyCoTFilter
from .self_score import SelfScoreFilter

__all__ = ["Budget", "Evidence", "Filter", "FilterRun", "Flags", "NoisyCoTFilter", "SelfScoreFilter",
           "rank_percentile"]
