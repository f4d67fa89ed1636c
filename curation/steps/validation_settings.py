"""The settings validation compares (strategy x damping), their scores, and the figures that judge them.

- :class:`Damping`: the engine's damping heuristic (kronfluence's ``damping_factor=None``: 0.1 x
  the mean eigenvalue of *each layer*), a multiple of it (``x10``: 1.0 x the layer's mean) or a
  fixed value (``1e-3``, the same for every layer). A multiple cannot be written as one number:
  the heuristic is per layer, so it goes to the engine as ``EngineConfig.damping_scale``.
- :func:`settings_grid`: strategies x dampings; ``identity`` ignores damping, so it appears once.
- :func:`setting_scores`: a (queries x training samples) score matrix from the engine for one
  setting, computed without writing a scores run (the engine's exact candidate scoring with every
  training sample as a candidate, which equals its pairwise scores); factors are fitted once per
  strategy and cached in the store, so more dampings cost only the scoring.
- :func:`lds_with_ci`: LDS (:mod:`attribution.lds`) and a percentile bootstrap confidence
  interval; :func:`removal_effects`: the top-k removal effect and the sign check.
- :func:`select_setting`: the setting to use, by LDS (or by the top-k proxy when there is no LDS).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attribution.lds import per_query_lds

from ..errors import RequestError

#: Relative cost of the strategies (scoring time; ties in validation go to the cheaper).
STRATEGY_COST = {"identity": 0, "diagonal": 1, "kfac": 2, "ekfac": 3, "ekfac_cg": 4}
#: What ``auto`` means in a damping list: the heuristic and a multiple either side.
DEFAULT_DAMPINGS = ("heuristic", "x0.1", "x10")
#: Strategies the engine's candidate scoring computes exactly (others are scored as a pairwise run).
CANDIDATE_STRATEGIES = ("ekfac", "kfac", "diagonal", "identity", "ekfac_cg")


class ValidationRequestError(RequestError):
    """A validation request that cannot run: names the option at fault and what was expected."""


@dataclass(frozen=True)
class Damping:
    """One damping of the grid: ``label`` as the user wrote it (normalised), ``value`` or ``scale``.

    ``value`` None is the heuristic times ``scale`` (per layer); a number is a fixed damping.
    """

    label: str
    value: float | None = None
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Damping:
        """``heuristic`` (or ``none``), ``xK`` / ``Kx`` (K times the heuristic), or a positive number."""
        t = str(text).strip().lower()
        if t in ("heuristic", "none", "x1", "1x"):
            return cls("heuristic")
        m = re.fullmatch(r"x([0-9.e+-]+)|([0-9.e+-]+)x", t)
        try:
            if m:
                scale = float(m.group(1) or m.group(2))
                if not scale > 0 or not math.isfinite(scale):
                    raise ValueError
                return cls(f"x{scale:g}", None, scale)
            value = float(t)
            if not value > 0 or not math.isfinite(value):
                raise ValueError
            return cls(f"{value:g}", value)
        except ValueError:
            raise ValidationRequestError(
                f"--dampings: {text!r} is not a damping; expected 'heuristic', a multiple of it like 'x10' or "
                "'x0.1', a positive number like 1e-3, or 'auto' (heuristic, x0.1, x10)") from None

    def engine_kwargs(self) -> dict[str, Any]:
        """The :class:`~attribution.config.EngineConfig` fields for this damping (``damping_scale`` only if not 1)."""
        return {"damping": self.value} | ({"damping_scale": self.scale} if self.scale != 1.0 else {})


def parse_dampings(texts: Sequence[str]) -> list[Damping]:
    """The dampings of a comma list's items, ``auto`` expanded to :data:`DEFAULT_DAMPINGS`, duplicates dropped."""
    out: list[Damping] = []
    for t in texts:
        items = DEFAULT_DAMPINGS if str(t).strip().lower() == "auto" else (t,)
        for d in map(Damping.parse, items):
            if d not in out:
                out.append(d)
    if not out:
        raise ValidationRequestError("--dampings: give at least one damping (or 'auto')")
    return out


@dataclass(frozen=True)
class Setting:
    """One point of the grid: a strategy and a damping."""

    strategy: str
    damping: Damping

    @property
    def label(self) -> str:
        """``strategy@damping`` (identity: ``identity``): the setting's name in results and reports."""
        return self.strategy if self.strategy == "identity" else f"{self.strategy}@{self.damping.label}"


def settings_grid(strategies: Sequence[str], dampings: Sequence[Damping]) -> list[Setting]:
    """Every strategy with every damping; ``identity`` (which ignores damping) once, with the heuristic.

    Unknown strategies fail here with the choices (the engine's :data:`~attribution.strategies.STRATEGIES`).
    """
    from attribution.strategies import STRATEGIES

    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValidationRequestError(f"--strategies: unknown {', '.join(map(repr, unknown))}; expected some of "
                                     f"{', '.join(STRATEGIES)}")
    if not strategies:
        raise ValidationRequestError("--strategies: give at least one strategy")
    grid: list[Setting] = []
    for s in dict.fromkeys(strategies):
        for d in ([Damping("heuristic")] if s == "identity" else dampings):
            grid.append(Setting(s, d))
    return grid


def setting_scores(store: Any, model: Any, task: Any, train: Any, queries: Any, setting: Setting, *,
                   batch_size: int = 32, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """The engine's scores of every training sample for every query under ``setting``, (queries x train).

    Positive = training on the sample lowered the query's loss. Strategies the engine's candidate
    scoring supports are scored with every training sample as a candidate (exactly the pairwise
    scores, no run written); any other strategy goes through
    :meth:`~attribution.engine.InfluenceEngine.pairwise_scores` as an ``attribute`` run whose
    behaviour name carries the setting (so two dampings never share a run).
    """
    from attribution.engine import EngineConfig, InfluenceEngine, score_matrix

    cfg = EngineConfig(strategy=setting.strategy, batch_size=batch_size, query_batch_size=max(1, len(queries)),
                       shard_size=max(1, len(train)), seed=seed, device=device, **setting.damping.engine_kwargs())
    engine = InfluenceEngine(store, model, task, cfg)
    if setting.strategy in CANDIDATE_STRATEGIES:
        everyone = np.tile(np.arange(len(train), dtype=np.int64), (len(queries), 1))
        return engine.candidate_scores(train, queries, everyone).astype(np.float64)
    behaviour = f"validation-{setting.strategy}-{setting.damping.label}".replace("@", "-")
    run = engine.pairwise_scores(behaviour, train, queries)
    return score_matrix(store, run.run_id, queries.ids, train.ids)


# ---------------------------------------------------------------------------------------- figures
def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaN left out): resample them with replacement.

    ``rng = np.random.default_rng(seed)``; ``idx = rng.integers(0, n, size=(n_boot, n))``; the
    means of ``values[idx]`` row by row; the interval is their ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles (numpy's default linear interpolation). NaN when no value is defined.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def lds_with_ci(scores: np.ndarray, masks: np.ndarray, measured: np.ndarray, *, n_boot: int = 1000,
                level: float = 0.95, seed: int = 0, resample: str = "queries") -> dict[str, Any]:
    """LDS of ``scores`` on the retrainings, with a bootstrap CI; also the per-query correlations.

    ``resample="queries"`` (the default) resamples queries, the per-query Spearman correlations
    being fixed (:func:`bootstrap_ci` on them): it covers the spread over queries, not the noise
    of the particular subsets drawn (which every query shares). ``"queries+subsets"`` also
    resamples the subsets (rows of ``masks``/``measured``) in each replicate and recomputes the
    correlations: wider, and more honest with few subsets. Returns ``lds`` (mean over queries with
    a defined correlation), ``ci_low``, ``ci_high``, ``n_defined`` and ``per_query``.
    """
    per_query = per_query_lds(scores, masks, measured)
    defined = per_query[~np.isnan(per_query)]
    lds = float(defined.mean()) if defined.size else float("nan")
    if resample == "queries":
        lo, hi = bootstrap_ci(per_query, n_boot=n_boot, level=level, seed=seed)
    elif resample == "queries+subsets":
        rng = np.random.default_rng(seed)
        n_s, n_q = measured.shape
        means = np.full(n_boot, np.nan)
        for b in range(n_boot):
            rows, cols = rng.integers(0, n_s, n_s), rng.integers(0, n_q, n_q)
            rho = per_query_lds(scores[cols], masks[rows], measured[rows][:, cols])
            if (~np.isnan(rho)).any():
                means[b] = np.nanmean(rho)
        means = means[~np.isnan(means)]
        lo, hi = (np.quantile(means, [(1 - level) / 2, (1 + level) / 2]) if means.size else (np.nan, np.nan))
    else:
        raise ValidationRequestError(f"resample {resample!r}: expected 'queries' or 'queries+subsets'")
    return {"lds": lds, "ci_low": float(lo), "ci_high": float(hi), "n_defined": int(defined.size),
            "per_query": per_query}


def top_k_union(scores: np.ndarray, queries: Sequence[int], k: int) -> np.ndarray:
    """The training indices among the ``k`` highest-scored (most helpful) of any of ``queries`` (sorted)."""
    top = np.argsort(-scores[list(queries)], axis=1, kind="stable")[:, :k]
    return np.unique(top)


def removal_effects(scores: np.ndarray, removed: np.ndarray, queries: Sequence[int], full: np.ndarray,
                    without_top: np.ndarray, without_random: np.ndarray) -> dict[str, float]:
    """The top-k removal check and the sign check of one setting, on the checked ``queries``.

    ``removed`` are the training indices the setting's top-k removal left out; ``full`` is each
    query's measurement after retraining on everything, ``without_top`` after retraining without
    ``removed``, ``without_random`` (repeats x queries) without as many random samples (same seed).

    - ``topk_effect``: mean over the checked queries of (loss without the top-k) - (loss without
      random samples, averaged over repeats). Positive: the samples the scores call most helpful
      matter more than random ones, as claimed. In the measurement's units (nats, squared error).
    - ``sign_agreement``: the fraction of checked queries whose measured change (``without_top -
      full``) has the sign the scores predict, the sum of the removed samples' scores (removing a
      sample with a positive score should raise the loss). About 0.5 for uninformative scores.
    """
    q = list(queries)
    delta_top = without_top[q] - full[q]
    delta_rand = np.asarray(without_random)[:, q].mean(axis=0) - full[q]
    predicted = scores[q][:, removed].sum(axis=1)
    agree = np.sign(delta_top) == np.sign(predicted)
    return {"topk_effect": float((delta_top - delta_rand).mean()), "sign_agreement": float(agree.mean()),
            "topk_removed": int(len(removed))}


# ---------------------------------------------------------------------------------------- results
@dataclass
class SettingResult:
    """How one setting did: LDS and its CI (None without retrainings on subsets), the top-k removal
    effect and sign agreement (None when not checked), and the seconds its scores took."""

    strategy: str
    damping: str
    lds: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    topk_effect: float | None = None
    sign_agreement: float | None = None
    seconds: float = 0.0
    n_defined: int | None = None
    topk_removed: int | None = None
    ensemble: int = 1  # models whose scores are averaged (1: the scored model alone)

    @property
    def label(self) -> str:
        """The setting's name (as :attr:`Setting.label`), ``+ensK`` for an ensemble of K models."""
        base = self.strategy if self.strategy == "identity" else f"{self.strategy}@{self.damping}"
        return base if self.ensemble == 1 else f"{base}+ens{self.ensemble}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None), as recorded in the validation run's config."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(self).items()}


def _cost(r: SettingResult) -> tuple[int, int]:
    return STRATEGY_COST.get(r.strategy, len(STRATEGY_COST)), 0 if r.damping == "heuristic" else 1


#: How much LDS an ensemble must add over its single model to be chosen (it costs K times the scoring).
ENSEMBLE_MARGIN = 0.01


def select_setting(results: Sequence[SettingResult], *, tolerance: float = 0.01) -> tuple[str, str]:
    """The (strategy, damping label) to use: the highest LDS, ties going to the cheaper setting.

    Settings within ``tolerance`` of the best LDS count as tied (differences that small are below
    the noise of any validation that fits a time budget: one seed moves LDS by about 0.03); among
    them the cheapest strategy wins (identity < diagonal < kfac < ekfac < ekfac_cg), then the
    heuristic damping (the default, nothing to remember), then the higher LDS.

    Without any LDS (the budget did not fit enough retrainings on subsets) the cheap proxy decides:
    the top-k removal effect, with the same tie rule scaled to the largest effect. Why this proxy:
    LDS asks whether scores predict what retraining does; removing each checked query's top-k
    samples and retraining asks the same question at the one point that matters most for acting
    on scores (are the samples ranked first really the ones that matter?), with one retraining
    per setting instead of dozens of subsets, and against random removals of the same size on
    the same seed, so training noise is measured, not assumed. Raises ``ValueError`` when no
    result has either figure.
    """
    def finite(x: float | None) -> bool:
        return x is not None and not math.isnan(x)

    results = [r for r in results if r.ensemble == 1]  # an ensemble is judged against its single-model setting
    by_lds = [r for r in results if finite(r.lds)]
    if by_lds:
        pool, key, tol = by_lds, (lambda r: r.lds), tolerance
    else:
        pool = [r for r in results if finite(r.topk_effect)]
        if not pool:
            raise ValueError("no setting has an LDS or a top-k removal effect to select by")
        key = lambda r: r.topk_effect  # noqa: E731
        tol = tolerance * max(abs(key(r)) for r in pool)
    best = max(key(r) for r in pool)
    tied = [r for r in pool if key(r) >= best - tol]
    chosen = min(tied, key=lambda r: (*_cost(r), -key(r)))
    return chosen.strategy, chosen.damping


__all__ = [
    "CANDIDATE_STRATEGIES", "DEFAULT_DAMPINGS", "ENSEMBLE_MARGIN", "STRATEGY_COST", "Damping", "Setting", "SettingResult",
    "ValidationRequestError", "bootstrap_ci", "lds_with_ci", "parse_dampings",
    "removal_effects", "select_setting", "setting_scores", "settings_grid", "top_k_union",
]
