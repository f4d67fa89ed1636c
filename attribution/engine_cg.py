"""The engine's ``ekfac_cg`` strategy: EK-FAC refined by conjugate gradient, scored through the engine.

For ``EngineConfig(strategy="ekfac_cg")`` the engine fits EK-FAC's factors (shared with
``ekfac`` runs), solves ``(G + lambda I) x_q = grad f_q`` for every query with
:func:`attribution.conjugate_gradient.solve_queries` (``cg_iterations`` steps from the EK-FAC
solution, the Gauss-Newton matrix averaged over ``cg_max_examples`` training samples drawn with
the engine's seed) and scores each training sample as ``<x_q, grad L(z_n)>``. The residuals
before and after CG go into the run's config, so a user sees how far EK-FAC alone was from the
damped system and how much CG closed.

Pairwise and candidate scores are available; per-module, per-token and self-influence scores are
not (self-influence would need one solve per training sample).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch.utils import data

from .candidates import Factors
from .conjugate_gradient import CGSolution, solution_scores, solve_queries
from .damping import damping_scale


@dataclass
class CGRun:
    """The solved queries of one scoring call and what to record about the solve."""

    solution: CGSolution
    iterations: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """Residuals (relative, per query: median and max) before and after CG, iterations, samples, time."""
        before, after = self.solution.residual_before, self.solution.residual_after
        stats = (lambda r: {"median": float(np.median(r)), "max": float(np.max(r))} if len(r) else {})  # noqa: E731
        return {"iterations": self.iterations, "fit_examples": self.solution.fit_examples,
                "residual_before": stats(before), "residual_after": stats(after), "seconds": self.seconds,
                "residual": "||g - (G + damping) x|| / ||g||, G the Gauss-Newton matrix of the training loss"}


class EngineCG:
    """What :class:`~attribution.engine.InfluenceEngine` adds for ``ekfac_cg`` (a mixin of the engine).

    Uses the engine's ``config``, ``model``, ``task`` and ``analyzer``.
    """

    config: Any
    model: Any
    task: Any
    analyzer: Any

    def _cg_solution(self, factors: str, train: Any, queries: data.Dataset, per_module: bool = False) -> CGRun | None:
        """The queries solved by CG when the strategy is ``ekfac_cg`` (None for any other strategy)."""
        if self.config.strategy != "ekfac_cg":
            return None
        if per_module or self.config.low_rank is not None:
            raise ValueError("ekfac_cg gives total scores only: per-module scores and low_rank need ekfac")
        return self._solve(self.analyzer.load_all_factors(factors), train.data, queries)

    def _solve(self, factors: Factors, train: data.Dataset, queries: data.Dataset) -> CGRun:
        cfg = self.config
        t0 = time.perf_counter()
        with damping_scale(cfg.damping_scale):
            solution = solve_queries(self.model, self.task, factors, cfg.damping, queries, train, cfg.cg_iterations,
                                     strategy="ekfac", batch_size=cfg.batch_size,
                                     query_batch_size=min(cfg.query_batch_size, 16),
                                     max_examples=cfg.cg_max_examples, seed=cfg.seed, device=cfg.device)
        return CGRun(solution, cfg.cg_iterations, time.perf_counter() - t0)

    def _cg_scores(self, cg: CGRun, train: data.Dataset, indices: Sequence[int]) -> np.ndarray:
        """(queries x len(indices)) scores of the training samples at ``indices`` against the solved queries."""
        return solution_scores(self.model, self.task, cg.solution.solutions, train, list(indices),
                               batch_size=self.config.batch_size, device=self.config.device)

    def _cg_candidate_values(self, factors: Factors, train: data.Dataset, queries: data.Dataset,
                             candidates: Any, clip: np.ndarray | None) -> np.ndarray:
        """(queries x K) scores of each query's candidates: one solve, the union of candidates scored once."""
        cand = np.asarray(candidates, dtype=np.int64)
        cg = self._solve(factors, train, queries)
        union = np.unique(cand)
        scores = self._cg_scores(cg, train, union.tolist())  # (Q, |union|)
        values = np.take_along_axis(scores, np.searchsorted(union, cand), axis=1)
        return values * clip[cand] if clip is not None else values


__all__ = ["CGRun", "EngineCG"]
