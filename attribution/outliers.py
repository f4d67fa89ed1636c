"""Outlier gradients: training samples whose gradient norm dwarfs the median, found and optionally clipped.

A handful of samples with huge gradients (a broken label, a degenerate sequence, a numerical
blow-up) dominate every influence score they appear in: the top of every query's ranking is
the same few samples, and their scores change a lot with small changes of the model, which
makes results hard to reproduce (the most common complaint in the issues of bergson, the
closest peer, which suggests filtering gradients above about 10x the median).

- :func:`gradient_norms` computes each sample's training-loss gradient norm over the tracked
  Linear layers (the raw gradient, before any preconditioning) in one forward/backward pass per
  batch, from compact per-token factors (``||A^T X||_F^2 = sum((A A^T) * (X X^T))``);
- :func:`find_gradient_outliers` flags norms above ``ratio`` x the median and gives each sample
  a clipping scale ``min(1, threshold / norm)``.

Clipping a training gradient to the threshold norm multiplies every score of that sample by its
scale (pairwise scores are linear in the training gradient) and its self-influence by the scale
squared; the engine does this when ``EngineConfig.clip_gradient_ratio`` is set and records the
clipped samples in the run's config. The fitted factors are not changed by clipping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import data

from .candidates import _preconditioner, _tracked_linears
from .gradients import in_batches, token_factors
from .tasks import InfluenceTask

#: bergson's users' rule of thumb: a gradient above 10x the median norm is an outlier
DEFAULT_OUTLIER_RATIO = 10.0


def gradient_norms(model: nn.Module, task: InfluenceTask, dataset: data.Dataset, *, batch_size: int = 32,
                   device: str = "cpu") -> np.ndarray:
    """Each sample's training-loss gradient norm over the model's tracked Linear layers, in order.

    ``model`` is prepared for kronfluence (as :class:`~attribution.engine.InfluenceEngine`
    leaves it). The norm is that of the concatenated (weight and bias) gradients of every tracked
    layer, i.e. the square root of the identity strategy's self-influence.
    """
    dev = torch.device(device)
    pre = {m.name: _preconditioner(m, {}, "identity", None, dev) for m in _tracked_linears(model)}
    out: list[np.ndarray] = []
    for batch in in_batches(dataset, batch_size):
        factors = token_factors(model, lambda b, m: task.compute_train_loss(b, m), batch, pre, dev)
        sq = None
        for a, x in factors.values():  # (B, T, out), (B, T, in)
            part = (torch.bmm(a, a.transpose(1, 2)) * torch.bmm(x, x.transpose(1, 2))).sum(dim=(1, 2))
            sq = part if sq is None else sq + part
        out.append(sq.clamp(min=0).sqrt().double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


@dataclass
class GradientOutliers:
    """Gradient norms of a training set, the outlier threshold and the clipping scale of each sample.

    ``threshold`` is ``ratio`` x the median norm; a sample is an outlier when its norm is above
    it. ``scale`` is ``min(1, threshold / norm)``: the factor clipping applies to the sample's
    gradient (1 for every non-outlier).
    """

    ids: list[str] = field(repr=False)
    norms: np.ndarray = field(repr=False)
    ratio: float
    median: float
    threshold: float

    @property
    def mask(self) -> np.ndarray:
        """True for each outlier, in the order of ``ids``."""
        return self.norms > self.threshold

    @property
    def outlier_ids(self) -> list[str]:
        """The outliers' sample ids, largest norm first."""
        idx = np.flatnonzero(self.mask)
        return [self.ids[i] for i in idx[np.argsort(-self.norms[idx], kind="stable")]]

    @property
    def scale(self) -> np.ndarray:
        """The clipping factor of each sample's gradient: ``min(1, threshold / norm)``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(self.mask, self.threshold / self.norms, 1.0)
        return s.astype(np.float64)

    def summary(self, top: int = 10) -> dict[str, Any]:
        """What a run records and a report shows: counts, median, threshold and the largest outliers."""
        ids = self.outlier_ids
        where = {sid: i for i, sid in enumerate(self.ids)}
        return {"ratio": self.ratio, "median_norm": self.median, "threshold": self.threshold,
                "max_norm": float(self.norms.max()) if len(self.norms) else 0.0,
                "outliers": len(ids), "share": len(ids) / max(len(self.ids), 1),
                "largest": [{"sample_id": s, "norm": float(self.norms[where[s]]),
                             "times_median": float(self.norms[where[s]] / self.median) if self.median > 0 else None}
                            for s in ids[:top]]}

    def describe(self) -> str:
        """One line for a terminal: how many outliers, the threshold and the largest ones."""
        if not self.mask.any():
            return (f"no gradient outliers: every norm is within {self.ratio:g}x the median "
                    f"({self.median:.3g}); largest {self.norms.max():.3g}")
        s = self.summary(top=3)
        largest = ", ".join(f"{d['sample_id']} ({d['times_median']:.0f}x)" for d in s["largest"])
        return (f"{s['outliers']} training sample(s) have gradient norms above {self.ratio:g}x the median "
                f"({self.median:.3g}): {largest}; they dominate their scores (clip them with "
                f"clip_gradient_ratio / --clip-gradients)")


def find_gradient_outliers(norms: np.ndarray, ids: Sequence[str], ratio: float = DEFAULT_OUTLIER_RATIO) -> GradientOutliers:
    """Flag the samples whose gradient norm exceeds ``ratio`` x the median norm.

    ``ratio`` must be above 1 (a threshold at or below the median would clip most samples).
    """
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1 or len(norms) != len(ids):
        raise ValueError(f"expected one norm per id: {norms.shape} norms for {len(ids)} ids")
    if not ratio > 1:
        raise ValueError(f"the outlier ratio must be above 1 (a multiple of the median norm), got {ratio}")
    if not np.isfinite(norms).all():
        bad = [ids[i] for i in np.flatnonzero(~np.isfinite(norms))[:3]]
        raise ValueError(f"{int((~np.isfinite(norms)).sum())} sample(s) have a non-finite gradient norm "
                         f"(e.g. {', '.join(bad)}): the model or the data produces NaN/inf losses")
    median = float(np.median(norms)) if len(norms) else 0.0
    return GradientOutliers(list(ids), norms, float(ratio), median, float(ratio) * median)


__all__ = ["DEFAULT_OUTLIER_RATIO", "GradientOutliers", "find_gradient_outliers", "gradient_norms"]
