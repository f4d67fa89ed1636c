"""The contamination pipeline's console summary: dirty items per benchmark, evidence, metrics, SQL to try."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .config import ContaminationConfig
from .pipeline import ContaminationResult


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_summary(r: ContaminationResult, config: ContaminationConfig, console: Console, seconds: float) -> None:
    """Dirty items per benchmark, each evidence run, metrics against the planted truth, and SQL to try."""
    t = Table(title=f"benchmark items found in {r.train}")
    for col in ("benchmark", "items", "dirty", "clean"):
        t.add_column(col, justify="right" if col != "benchmark" else "left")
    for bench, c in r.counts["items"].items():
        t.add_row(bench, f"{c['n']:,}", f"{c['dirty']:,}", f"{c['n'] - c['dirty']:,}")
    console.print(t)
    e = Table(title="evidence runs")
    for col in ("method", "run", "pairs", "hits", "seconds"):
        e.add_column(col)
    for method, ev in r.counts["evidence"].items():
        e.add_row(method, r.evidence[method], f"{ev['rows']:,}", f"{ev['hits']:,}",
                  "reused" if ev["reused"] else f"{ev['seconds']:.1f}")
    console.print(e)
    if r.metrics:
        forms = sorted({f for m in r.metrics.values() for f in m["forms"]})
        m = Table(title="item recall per planted form (and document precision), against the planted truth")
        m.add_column("method")
        for f in forms:
            m.add_column(f, justify="right")
        m.add_column("doc precision", justify="right")
        m.add_column("hard negatives flagged", justify="right")
        for method, res in r.metrics.items():
            m.add_row(method, *[_pct(res["forms"].get(f, {}).get("item_recall")) for f in forms],
                      _pct(res["doc_precision"]), str(res["hard_negatives_flagged"]))
        console.print(m)
    console.print(f"flagged {r.counts['flagged_documents']:,} of {r.counts['documents']:,} documents "
                  f"(verdict run {r.flags_run}); curated: {', '.join(f'{k}: {v}' for k, v in r.curated.items()) or 'none'}")
    console.print(f"done in {seconds:.0f} s. Try:")
    console.print(f"  curation sql \"SELECT benchmark, item_name, methods, forms, n_documents FROM contamination_items "
                  f"WHERE run_id = '{r.flags_run}' AND dirty\"", markup=False, highlight=False)
    console.print(f"  curation sql \"SELECT benchmark, item_name FROM contamination_items WHERE run_id = "
                  f"'{r.flags_run}' AND NOT dirty\"   # the clean subset", markup=False, highlight=False)
    if "cut" in r.curated:
        console.print(f"  curation sql \"SELECT sample_id, start, \\\"end\\\", removed FROM curated_edits WHERE curated = "
                      f"'{r.curated['cut']}' LIMIT 5\"", markup=False, highlight=False)
