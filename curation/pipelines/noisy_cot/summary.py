"""The noisy-CoT pipeline's console summary: budget curve, detection tables, accuracy, SQL to try."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from .config import NoisyCoTConfig
from .pipeline import NoisyCoTResult

METHOD_LABELS = {
    "random": "random",
    "loss": "completion loss",
    "self_influence": "self-influence (EK-FAC)",
    "query_push": "influence on failing answers",
    "combined": "noisy_cot filter (combined)",
}


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def print_summary(r: NoisyCoTResult, config: NoisyCoTConfig, console: Console, seconds: float) -> None:
    """Detection, accuracy, where things are, and three SQL queries to try."""
    if len(r.budgets) > 1:
        t = Table(title="choosing the flag budget: accuracy of the model retrained on the curated data")
        for col in ("budget", "dev accuracy (chooses)", "test accuracy (reported only)"):
            t.add_column(col, justify="right")
        for row in r.budgets:
            mark = " <- chosen" if row["budget"] == r.budget else ""
            t.add_row(f"{row['budget']:.0%}{mark}", f"{row['dev_acc']:.1%}", f"{row['test_acc']:.1%}")
        console.print(t)
    for kind, methods in r.detection.items():
        n_pos = next(iter(methods.values()))["n_positive"]
        what = "all noisy" if kind == "overall" else f"{kind}-noise"
        t = Table(title=f"detecting {what} traces ({n_pos} planted; budget {r.budget:.0%}, "
                        f"{r.n_flagged} flagged; one flags run per evidence)")
        for col in ("evidence", "AUROC", "precision", "recall"):
            t.add_column(col, justify="left" if col == "evidence" else "right")
        for m, v in methods.items():
            t.add_row(METHOD_LABELS.get(m, m), _fmt(v["auroc"]), _fmt(v["precision"]), _fmt(v["recall"]))
        console.print(t)
    t = Table(title="test accuracy (greedy decoding, noise-free problems)")
    t.add_column("model trained on")
    t.add_column("accuracy", justify="right")
    labels = {"noisy": "noisy traces", "curated": "curated (flagged dropped)", "clean_only": "clean traces only"}
    for k, v in r.accuracy.items():
        t.add_row(labels.get(k, k), f"{v:.1%}")
    console.print(t)
    if r.recovery:
        console.print(f"gap recovered by curation: {_fmt(r.recovery['gap_recovered'])} "
                      "((curated - noisy) / (clean - noisy))")
    console.print(f"store: {r.store}  ({seconds:.0f} s; re-running reuses every finished step)")
    train, flags = r.datasets.get("train"), r.runs.get("flags")
    queries = [
        f"SELECT noise, count(*) AS n, avg(f.score) AS mean_score, sum(f.flagged::INT) AS flagged FROM flags f "
        f"JOIN samples s USING (sample_id) WHERE f.run_id = '{flags}' AND s.dataset = '{train}' GROUP BY ALL",
        f"SELECT s.prompt, s.completion, f.reason FROM flags f JOIN samples s USING (sample_id) "
        f"WHERE f.run_id = '{flags}' AND f.flagged ORDER BY f.score DESC LIMIT 5",
        f"SELECT c.sample_id, c.reason FROM curated_drops c WHERE c.curated = '{r.datasets.get('curated')}' LIMIT 5",
    ]
    pipe = r.runs.get("pipeline")
    if pipe:
        console.print(f"report (with the attribution run's page: queries, helping and hurting traces, tokens): "
                      f"curation report {pipe} --store {r.store} --out {r.store}/report.html", soft_wrap=True,
                      markup=False)
    console.print("try:")
    for q in queries:
        console.print(f'  curation sql --store {r.store} "{q}"', soft_wrap=True, markup=False)
