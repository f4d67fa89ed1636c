"""`curation junk`: flag junk ("brain rot") text with rules, engagement, a local classifier and model evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curation.steps.junk import DEFAULT_THRESHOLDS

from .common import (
    DEFAULT_STORE,
    ExecutorOpt,
    RayAddressOpt,
    StoreOpt,
    WorkersOpt,
    app,
    executor_from_options,
    open_store,
    out,
)
from .unlearning import _pairs


@app.command()
def junk(
    dataset: Annotated[str, typer.Option("--dataset", help="Text dataset to judge (a text field, or prompt + completion)")],
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="datatrove's Gopher/C4/FineWeb rule sets")] = True,
    min_rules: Annotated[int, typer.Option(help="Rule sets that must reject a text to flag it")] = int(DEFAULT_THRESHOLDS["rules"]),
    engagement: Annotated[str, typer.Option(help="M1 (short and popular): auto (when the dataset has likes, shares, "
                                                 "replies...), on, off")] = "auto",
    popularity_fields: Annotated[str | None, typer.Option(help="Comma-separated popularity fields to sum "
                                                               "(default: likes, shares, replies, retweets, upvotes, comments present)")] = None,
    labelled: Annotated[str | None, typer.Option(help="Labelled dataset to train the local junk classifier on")] = None,
    label_field: Annotated[str, typer.Option(help="Its label: a category field ('clean' = not junk) or a bool")] = "category",
    classifier_threshold: Annotated[float, typer.Option(help="P(junk) at which the classifier flags")] = DEFAULT_THRESHOLDS["classifier"],
    reference_model: Annotated[Path | None, typer.Option(help="Causal LM trained on clean text: perplexity evidence "
                                                              "(and the model of --push-queries)")] = None,
    perplexity_z: Annotated[float, typer.Option(help="Robust z of the perplexity that flags")] = DEFAULT_THRESHOLDS["perplexity"],
    push_queries: Annotated[str | None, typer.Option(help="Query dataset (prompt/completion): each sample's influence "
                                                          "on them, e.g. truncated reasoning = push on thought-skipping")] = None,
    push_z: Annotated[float, typer.Option(help="Robust z of the push that flags")] = DEFAULT_THRESHOLDS["push"],
    score: Annotated[list[str] | None, typer.Option("--score", help="Another self_scores run as evidence: "
                                                                    "NAME=RUN or NAME=RUN@Z (robust z, default 2)")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample for model evidence (default: the model's context)")] = None,
    combine: Annotated[str, typer.Option(help="any (flag if any evidence flags) or mean (mean rank percentile + --budget)")] = "any",
    budget: Annotated[float | None, typer.Option(help="With --combine mean: the fraction to flag")] = None,
    category_field: Annotated[str, typer.Option(help="Field with true categories, for the junk-ratio report (if present)")] = "category",
    curate: Annotated[str | None, typer.Option(help="Write the kept samples as a new dataset of this name")] = None,
    seed: Annotated[int, typer.Option(help="Seed (classifier, attribution)")] = 0,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Flag junk text, say why (the junk category), and report the junk ratio of the dataset and the curated output."""
    from curation.steps.junk import JunkRequest, parse_scores, run_junk
    from filters.junk.report import format_junk_ratio

    req = JunkRequest(dataset=dataset, rules=rules, min_rules=min_rules, engagement=engagement,
                      popularity_fields=[f.strip() for f in popularity_fields.split(",")] if popularity_fields else None,
                      labelled=labelled, label_field=label_field, classifier_threshold=classifier_threshold,
                      reference_model=reference_model, perplexity_z=perplexity_z, push_queries=push_queries,
                      push_z=push_z, max_length=max_length, scores=parse_scores(_pairs(score, "--score")),
                      combine=combine, budget=budget, category_field=category_field, curate=curate, seed=seed,
                      executor=executor_from_options(executor, ray_address, workers))
    res = run_junk(open_store(store), req, progress=True)
    out.print(f"[green]flagged[/] {res.n_flagged:,} of {res.n_samples:,} samples of {dataset} as junk: "
              f"flags run {res.flags_run}, {res.seconds:.1f} s")
    if res.evidence_runs:
        out.print("  evidence runs: " + ", ".join(f"{k} {v}" for k, v in res.evidence_runs.items()))
    out.print(format_junk_ratio(res.ratio), markup=False, highlight=False)
    if res.curated:
        out.print(f"  curated dataset: {res.curated}")
    out.print(f"  why: curation sql \"SELECT sample_id, score, reason FROM flags WHERE run_id = '{res.flags_run}' "
              "AND flagged ORDER BY score DESC LIMIT 20\"")
