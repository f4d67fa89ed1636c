"""Detection against a planted truth: which samples are bad, each evidence's scores, ROC and flags metrics.

A pipeline that plants problems (noise in chain-of-thought traces, contamination, junk) knows
which samples are bad; these functions score evidence and flags runs against that truth. The
truth is optional: a user's own dataset has no such columns, and then there is nothing to score.

Truth comes in *kinds* (e.g. dynamic and static noise). For one kind, positives are that kind's
affected samples and the comparison keeps them plus the unaffected samples, leaving the other
kinds out (neither hits nor false alarms for this kind); ``overall`` counts every affected sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

import stores

from ..evaluation import detection_metrics, flag_metrics

#: Evidence runs that hold one score per training sample (``self_scores``), by pipeline name.
SELF_SCORE_EVIDENCE = ("random", "loss", "self_influence")


@dataclass
class PlantedTruth:
    """Which samples of a dataset are bad, by kind, aligned with ``sample_ids`` (ingest order)."""

    sample_ids: list[str]
    positives: dict[str, np.ndarray] = field(default_factory=dict)
    unaffected: np.ndarray | None = None

    def kinds(self) -> list[str]:
        """The kinds with at least one positive (``overall`` last)."""
        return [k for k, pos in self.positives.items() if pos.any()]

    def compared(self, kind: str) -> np.ndarray:
        """The samples a kind's metrics look at: its positives and the unaffected samples."""
        return self.positives[kind] | self.unaffected


def noise_truth(store: stores.Store, dataset: str | None, kinds: Sequence[str] = ("dynamic", "static"),
                kind_column: str = "noise", changed_column: str = "trace_changed", clean: str = "clean"
                ) -> PlantedTruth | None:
    """The planted-noise truth of ``dataset``, or None when it lacks the truth columns (or is None).

    A sample is positive for its kind when the noise changed it (``changed_column``); samples
    whose kind is ``clean`` or that the noise left unchanged are unaffected.
    """
    cols = {f["name"] for f in store.dataset_info(dataset)["fields"]} if dataset else set()
    if not {kind_column, changed_column} <= cols:
        return None
    df = store.read_samples(dataset, columns=["sample_id", kind_column, changed_column])
    kind = df[kind_column].to_numpy()
    changed = df[changed_column].to_numpy().astype(bool)
    truth = PlantedTruth(df["sample_id"].to_list(), unaffected=(kind == clean) | ~changed)
    for k in kinds:
        truth.positives[k] = (kind == k) & changed
    truth.positives["overall"] = (kind != clean) & changed
    return truth


def evidence_scores(store: stores.Store, runs: Mapping[str, str], ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Each evidence run's score per sample of ``ids`` (NaN where it has none).

    ``runs`` maps evidence names to run ids: the per-sample ones (:data:`SELF_SCORE_EVIDENCE`),
    ``query_push`` (influence on failing queries, reduced per sample) and ``flags`` (the combined
    filter's score, under the name ``combined``).
    """
    from filters.evidence import query_push_evidence, self_score_evidence

    scores: dict[str, np.ndarray] = {}
    for name in SELF_SCORE_EVIDENCE:
        if name in runs:
            scores[name] = self_score_evidence(store, runs[name]).aligned(ids)
    if "query_push" in runs:
        scores["query_push"] = query_push_evidence(store, runs["query_push"])[0].aligned(ids)
    if "flags" in runs:
        scores["combined"] = flags_scores(store, runs["flags"], ids)[1]
    return scores


def flags_scores(store: stores.Store, run_id: str, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A flags run's ``flagged`` and ``score`` columns aligned with ``ids`` (unflagged / NaN if absent)."""
    flags = store.read_flags(run_id)
    row = {s: i for i, s in enumerate(flags["sample_id"].to_list())}
    idx = np.array([row.get(s, -1) for s in ids], dtype=np.int64)  # int even when ``ids`` is empty
    have = idx >= 0
    flagged = np.zeros(len(ids), dtype=bool)
    score = np.full(len(ids), np.nan)
    flagged[have] = flags["flagged"].to_numpy()[idx[have]].astype(bool)
    score[have] = flags["score"].to_numpy()[idx[have]].astype(float)
    return flagged, score


def detection_table(truth: PlantedTruth, scores: Mapping[str, np.ndarray],
                    flagged: Mapping[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
    """AUROC of each method's scores and precision/recall of its actual flags, per kind.

    ``flagged`` maps methods to their flags run's boolean column; a method without scores gets
    AUROC NaN. Returns ``{kind: {method: {auroc, precision, recall, hits, n_flagged, n_positive,
    precision_at_budget, recall_at_budget}}}``.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in truth.kinds():
        positive, keep = truth.positives[kind], truth.compared(kind)
        out[kind] = {}
        for m, is_flagged in flagged.items():
            auroc = detection_metrics(scores[m][keep], positive[keep], 0.0)["auroc"] if m in scores else float("nan")
            row = {"auroc": auroc, **flag_metrics(is_flagged[keep], positive[keep])}
            row["precision_at_budget"], row["recall_at_budget"] = row["precision"], row["recall"]
            out[kind][m] = row
    return out


def roc_points(truth: PlantedTruth, kind: str, scores: np.ndarray, max_points: int = 200
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve (false and true positive rates, at most about ``max_points``) and its area, for one kind.

    Samples whose score is not finite (NaN: no evidence for them; infinite) are left out. The area
    is that of the whole curve before thinning, so it equals ``sklearn.metrics.roc_auc_score`` on
    the samples kept (ties count half). When they hold one class only (or none), the curve is
    empty and the area NaN.
    """
    from sklearn.metrics import roc_curve

    keep = truth.compared(kind) & np.isfinite(scores)
    positive = truth.positives[kind][keep]
    if positive.all() or not positive.any():  # one class (or none): no curve
        return np.empty(0), np.empty(0), float("nan")
    fpr, tpr, _ = roc_curve(positive, scores[keep])
    auc = float(np.trapezoid(tpr, fpr))
    step = max(1, len(fpr) // max_points)
    idx = np.unique(np.r_[np.arange(0, len(fpr), step), len(fpr) - 1])  # keep the (1, 1) end
    return fpr[idx], tpr[idx], auc
