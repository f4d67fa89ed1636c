"""`curation contamination`: check a training dataset against benchmark datasets (filters.contamination)."""

from __future__ import annotations

from typing import Annotated

import typer

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

METHODS_HELP = ("comma-separated evidence methods: ngram (janitor 13-grams + absolute hits), coverage (Llama 2 "
                "token coverage), code (code tokens, local names masked), near_dup (MinHash LSH + exact Jaccard), paraphrase (MinHash over content-word sets)")


@app.command()
def contamination(
    train: Annotated[str, typer.Option("--train", help="Training dataset to check")],
    benchmark: Annotated[list[str], typer.Option("--benchmark", help="Benchmark dataset to look for (repeatable)")],
    methods: Annotated[str, typer.Option(help=METHODS_HELP)] = "ngram,coverage,code,near_dup,paraphrase",
    text_field: Annotated[list[str] | None, typer.Option("--text-field", help="Field(s) of --train holding the text (default: text, else prompt + completion)")] = None,
    question_field: Annotated[str | None, typer.Option(help="Benchmark question field (default: question, prompt, text or input)")] = None,
    answer_field: Annotated[str | None, typer.Option(help="Benchmark answer field (default: answer, completion, canonical_solution, target or output)")] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Find benchmark items in a training dataset: evidence runs, document flags and an item table in SQL.

    Each method writes its own run (reused when nothing changed); the verdict run holds the
    document flags (`curation curate --flags RUN`) and `contamination_items`. With --executor
    ray, the corpus indexes and MinHash passes run one Ray task per sample shard.
    """
    from filters.contamination.check import check_contamination

    runner = executor_from_options(executor, ray_address, workers)
    s = open_store(store)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    res = check_contamination(s, train, benchmark, methods=chosen, text_fields=text_field,
                              question_field=question_field, answer_field=answer_field, progress=True,
                              executor=runner)
    for e in res.evidence:
        cost = "reused" if e.reused else f"{e.seconds:.1f} s"
        out.print(f"  {e.method:<9} {e.run_id}: {e.n_hits:,} hits in {e.n_rows:,} compared pairs ({cost})")
    for method, ids in res.skipped.items():
        if ids:
            out.print(f"  [yellow]{method}: {len(ids)} item(s) too short to check[/]")
    rows = s.sql("SELECT benchmark, count(*) AS n, count(*) FILTER (WHERE dirty) AS dirty FROM contamination_items "
                 "WHERE run_id = ? GROUP BY 1 ORDER BY 1", [res.flags_run])
    for bench, n, dirty in rows.iter_rows():
        out.print(f"[bold]{bench}[/]: {dirty:,} of {n:,} items found in {train}")
    flags = res.verdict.flags if res.verdict else None
    out.print(f"flagged {flags.n_flagged if flags else 0:,} of {len(flags.sample_ids) if flags else 0:,} documents; "
              f"verdict run {res.flags_run}")
    out.print(f"  items:   curation sql \"SELECT * FROM contamination_items WHERE run_id = '{res.flags_run}' AND dirty\"",
              markup=False)
    out.print(f"  remove:  curation curate {train}_clean --from {train} --flags {res.flags_run}   "
              "(add --cut-spans to cut the matches instead)", markup=False)
