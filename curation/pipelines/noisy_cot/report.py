"""The noisy-CoT pipeline's report sections: test accuracy and the gap curation recovered, the
flag-budget choice, detection tables and ROC curves against the planted noise, and the
evidence and filter-score histograms. Registered as the ``noisy_cot`` pipeline's sections of
:mod:`curation.report` (which imports this module when it builds such a page)."""

from __future__ import annotations

from typing import Any

import stores
from curation.report.html import (
    EVIDENCE_LABELS,
    count,
    esc,
    label,
    missing,
    num,
    ordered,
    pct,
    sql_block,
)
from curation.report.pages import Section, register_sections
from curation.report.plots import roc_svg
from curation.report.sections import flags_section, self_plots, self_sql
from curation.steps.detection import evidence_scores, noise_truth, roc_points

MODEL_LABELS = {"noisy": "noisy traces", "curated": "curated (flagged dropped)", "clean_only": "clean traces only"}
KIND_LABELS = {"dynamic": "dynamic-noise traces", "static": "static-noise traces", "overall": "all noisy traces"}
#: The noise kinds drawn as ROC curves (``overall`` is in the tables only).
ROC_KINDS = ("dynamic", "static")


@register_sections("noisy_cot")
def sections(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> list[Section]:
    """The pipeline run's sections: results, detection (when any) and evidence (when any)."""
    out = [("pipeline", "pipeline results", _results_section(run, config))]
    detection = _detection_section(store, run, config)
    if detection:
        out.append(("detection", "detecting the planted noise", detection))
    evidence = _pipeline_evidence(store, config)
    if evidence:
        out.append(("evidence", "evidence and filter scores", evidence))
    return out


def _pipeline_rocs(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> str:
    """ROC curves of every evidence against the planted truth of the pipeline's training set."""
    try:
        truth = noise_truth(store, run.get("dataset"))
    except stores.UnknownDatasetError:  # the training set was dropped since
        return ""
    if truth is None:
        return ""
    scores = evidence_scores(store, config.get("runs") or {}, truth.sample_ids)
    out = [roc_svg({label(name): roc_points(truth, kind, sc) for name, sc in scores.items()},
                   f"ROC: {kind}-noise traces vs unaffected ones")
           for kind in ROC_KINDS if kind in truth.kinds()]
    if not out:
        return ""
    return ("<h3>ROC curves (planted truth)</h3><p class='muted'>Each evidence ranks the training traces; "
            "positives are the traces the noise changed, negatives the unaffected ones.</p>"
            f"<div class='plots'>{''.join(out)}</div>")


def _pipeline_evidence(store: stores.Store, config: dict[str, Any]) -> str:
    """Histograms of each per-sample evidence and of the filter's scores, with flagged counts."""
    runs = config.get("runs") or {}
    names = [n for n in ("loss", "self_influence", "random") if n in runs]
    parts = []
    if names:
        plots = [p for n in names for p in self_plots(store, runs[n], label(n))]
        parts.append("<h3>per-trace evidence</h3><p class='muted'>larger = more suspicious</p>"
                     f"<div class='plots'>{''.join(plots)}</div>"
                     + "".join(self_sql(runs[n]) for n in names))
    if "flags" in runs:
        parts.append("<h3>the filter's flags (the curated dataset drops these)</h3>" + flags_section(store, runs["flags"]))
    return "".join(parts)


def _results_section(run: dict[str, Any], config: dict[str, Any]) -> str:
    """Test accuracy per training set, the gap curation recovered, and the budget choice, in words."""
    parts = []
    acc = config.get("accuracy") or {}
    if acc:
        rows = "".join(f"<tr><td>{esc(label(k, MODEL_LABELS))}</td><td class='num'>{pct(v)}</td></tr>"
                       for k, v in ordered(acc, list(MODEL_LABELS)))
        parts.append("<h3>test accuracy</h3><p class='muted'>greedy decoding on noise-free test problems</p>"
                     f"<table><tr><th>model trained on</th><th>accuracy</th></tr>{rows}</table>")
    rec = config.get("recovery") or {}
    if rec:
        gap = rec.get("gap_recovered")
        budget = f" at flag budget {pct(rec['budget'], 0)}" if not missing(rec.get("budget")) else ""
        if missing(gap):
            said = ("Nothing to recover: the model trained on clean traces only was not more accurate than the one "
                    "trained on the noisy traces.")
        else:
            said = (f"Curation recovered <b>{pct(gap)}</b> of the accuracy gap between training on the noisy traces "
                    f"({pct(rec.get('noisy_acc'))}) and on clean traces only ({pct(rec.get('clean_acc'))}): "
                    f"the model trained on the curated traces{budget} reached {pct(rec.get('curated_acc'))}.")
        parts.append(f"<p>{said} <span class='muted'>(gap recovered = (curated - noisy) / (clean - noisy))</span></p>")
    budgets = config.get("budgets") or []
    if len(budgets) > 1:
        def mark(b: float) -> str:
            return (" (keep all)" if b == 0 else "") + (" <b>chosen</b>" if b == config.get("budget") else "")

        rows = "".join(f"<tr><td>{pct(b['budget'], 0)}{mark(b['budget'])}</td><td class='num'>{pct(b['dev_acc'])}</td>"
                       f"<td class='num'>{pct(b['test_acc'])}</td></tr>" for b in budgets)
        parts.append("<h3>flag budget chosen on dev accuracy</h3><p class='muted'>the model retrained on the traces "
                     "left at each budget (share of the training set flagged)</p><table><tr><th>budget</th>"
                     f"<th>dev accuracy (chooses)</th><th>test accuracy (reported only)</th></tr>{rows}</table>")
    run_id = run["run_id"]
    parts.append(sql_block(f"SELECT config->'accuracy' AS accuracy, config->'recovery' AS recovery, "
                           f"config->'budgets' AS budgets FROM runs WHERE run_id = '{run_id}'"))
    return "".join(parts)


def _detection_section(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> str:
    """Per noise kind, each evidence's AUROC and its flags' precision and recall; then the ROC curves."""
    parts = []
    budget = config.get("budget")
    for kind, methods in ordered(config.get("detection") or {}, list(KIND_LABELS)):
        rows = "".join(
            f"<tr><td>{esc(label(m))}</td><td class='num'>{num(v.get('auroc'))}</td>"
            f"<td class='num'>{pct(v.get('precision', v.get('precision_at_budget')))}</td>"
            f"<td class='num'>{pct(v.get('recall', v.get('recall_at_budget')))}</td>"
            f"<td class='num'>{count(v.get('hits'))}</td><td class='num'>{count(v.get('n_flagged'))}</td></tr>"
            for m, v in ordered(methods, list(EVIDENCE_LABELS)))
        n_pos = next((v["n_positive"] for v in methods.values() if "n_positive" in v), None)
        planted = f"{n_pos:,} planted" if n_pos is not None else ""
        at = f"flag budget {pct(budget, 0)}" if isinstance(budget, float | int) else ""
        about = "; ".join(x for x in (planted, at) if x)
        parts.append(f"<h3>detecting {esc(label(kind, KIND_LABELS))}" + (f" ({esc(about)})" if about else "") + "</h3>"
                     "<table><tr><th>evidence (one flags run each)</th><th>AUROC</th><th>precision</th><th>recall</th>"
                     f"<th>noisy flagged</th><th>flagged</th></tr>{rows}</table>")
    if parts:
        parts.append(sql_block(f"SELECT config->'detection' AS detection FROM runs WHERE run_id = '{run['run_id']}'"))
    parts.append(_pipeline_rocs(store, run, config))
    return "".join(parts)
