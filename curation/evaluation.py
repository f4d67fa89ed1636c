"""Detection figures for filters judged on planted problems: AUROC, precision and recall at a budget."""

from __future__ import annotations

import numpy as np


def detection_metrics(score: np.ndarray, truth: np.ndarray, budget: float) -> dict[str, float]:
    """AUROC of ``score`` (larger = more suspicious) for boolean ``truth``; precision and recall
    among the top ``budget`` fraction of samples. NaN scores rank last.
    """
    from sklearn.metrics import roc_auc_score

    score = np.asarray(score, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    filled = np.where(np.isfinite(score), score, -np.inf)
    k = int(round(budget * len(score)))
    top = np.argsort(-filled, kind="stable")[:k]
    hits = int(truth[top].sum())
    positives = int(truth.sum())
    auroc = float(roc_auc_score(truth, np.where(np.isfinite(score), score, np.nanmin(score) - 1))) \
        if 0 < positives < len(truth) else float("nan")
    return {
        "auroc": auroc,
        "precision_at_budget": hits / k if k else float("nan"),
        "recall_at_budget": hits / positives if positives else float("nan"),
        "n_positive": positives,
        "budget": budget,
    }


def answer_accuracy(completions: list[str], true_answers: list[str]) -> np.ndarray:
    """Whether each completion's last line is ``ans = <true answer>`` (TInt traces)."""
    out = []
    for text, answer in zip(completions, true_answers, strict=True):
        lines = [ln for ln in text.strip().split("\n") if ln.strip()]
        out.append(bool(lines) and lines[-1].strip() == f"ans = {answer}")
    return np.array(out, dtype=bool)
