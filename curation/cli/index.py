"""`curation index build` and `curation query`: a gradient index of a dataset, and top-k influence queries on it.

Thin layers over :mod:`curation.steps.index`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from attribution.config import field_help

from .attribute import TaskKind
from .common import DEFAULT_STORE, StoreOpt, app, new_app, open_store, out

ENGINE_HELP = field_help()

index_app = new_app(help="Gradient indexes: projected training gradients searched by inner product.")
app.add_typer(index_app, name="index")


class Projection(StrEnum):
    """How training gradients are projected (see attribution.gradient_projection)."""

    rademacher = "rademacher"
    gaussian = "gaussian"
    kronecker = "kronecker"
    identity = "identity"


class Search(StrEnum):
    """The FAISS index over the vectors."""

    flat = "flat"
    ivf = "ivf"


class Most(StrEnum):
    """Which end of the scores a query returns."""

    positive = "positive"
    negative = "negative"


@index_app.command("build")
def index_build(
    dataset: Annotated[str, typer.Option("--dataset", help="Training dataset to index")],
    model: Annotated[Path, typer.Option("--model", help="Local model folder: a causal LM (save_pretrained) or an MLP (MLP.save)")],
    task: Annotated[TaskKind, typer.Option(help="causal-lm (prompt/completion or text) or classifier/regression (tabular)")] = TaskKind.causal_lm,
    tokenizer: Annotated[Path | None, typer.Option(help="Local tokenizer folder (default: the model's)")] = None,
    dim: Annotated[int, typer.Option(help="Projection dimensions (per module, or in all with --global)")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the random projection")] = 0,
    projection: Annotated[Projection, typer.Option(help="rademacher or gaussian (dense JL), kronecker (cheap, for large models), identity (exact, tiny models)")] = Projection.rademacher,
    global_projection: Annotated[bool, typer.Option("--global", help="One projection of all modules into --dim dimensions (default: --dim per module)")] = False,
    search: Annotated[Search, typer.Option(help="FAISS index: flat (exact inner products over the vectors) or ivf (for millions of samples)")] = Search.flat,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label/target field")] = "label",
    strategy: Annotated[str, typer.Option(help=ENGINE_HELP["strategy"])] = "ekfac",
    damping: Annotated[float | None, typer.Option(help=ENGINE_HELP["damping"])] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample, at most the model's context (default: the model's context)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help=ENGINE_HELP["batch_size"])] = 16,
    shard_size: Annotated[int, typer.Option(min=1, help="Training samples per written shard of vectors")] = 4096,
    device: Annotated[str, typer.Option(help=ENGINE_HELP["device"])] = "cpu",
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Index a training dataset: each sample's projected preconditioned gradient, and a FAISS index (resumable)."""
    from curation.steps.index import IndexRequest, build_gradient_index

    if dim <= 0:
        raise typer.BadParameter(f"expected a positive number of dimensions, got {dim}", param_hint="--dim")
    req = IndexRequest(
        dataset=dataset, model=model, task=task.value, tokenizer=tokenizer,
        features=[c.strip() for c in features.split(",")] if features else None, label_field=label_field,
        strategy=strategy, damping=damping, max_length=max_length, batch_size=batch_size, dim=dim, seed=seed,
        projection=projection.value, per_module=not global_projection, search=search.value, shard_size=shard_size,
        device=device,
    )
    res = build_gradient_index(open_store(store), req, progress=True)
    out.print(f"[green]indexed[/] {res.n_samples:,} samples of {dataset} ({res.dim:,} dimensions): run {res.run_id}, "
              f"{res.shards_computed}/{res.shards_total} shards computed, {res.seconds:.1f} s")
    out.print(f"  query it: curation query --index {dataset} --text \"...\"   (or --queries DATASET)")


@app.command()
def query(
    index: Annotated[str, typer.Option("--index", help="Gradient index: its run id, or a dataset (its newest index)")],
    text: Annotated[str | None, typer.Option(help="Causal LM: a text whose loss to attribute (the completion, with --prompt)")] = None,
    prompt: Annotated[str | None, typer.Option(help="Causal LM: the prompt before --text (its tokens are not scored)")] = None,
    queries: Annotated[str | None, typer.Option("--queries", help="Dataset whose samples are the queries")] = None,
    k: Annotated[int, typer.Option("--k", help="Training samples to return per query")] = 10,
    rescore: Annotated[bool, typer.Option("--rescore/--no-rescore", help="Re-score the best candidates exactly (slower, exact scores and order)")] = True,
    candidates: Annotated[int | None, typer.Option(help="Candidates re-scored per query (default: max(10 k, 100))")] = None,
    most: Annotated[Most, typer.Option(help="positive: samples that lowered the query's loss most; negative: raised it most")] = Most.positive,
    model: Annotated[Path | None, typer.Option(help="Model folder (default: the one the index was built with)")] = None,
    write: Annotated[bool, typer.Option("--write", help="Also write the results as a scores run (kind query)")] = False,
    behaviour: Annotated[str, typer.Option(help="Behaviour name of the written scores")] = "query",
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Top-k most influential training samples for a text or a query dataset, from a gradient index."""
    from curation.steps.index import QueryRequest, run_query

    if k <= 0:
        raise typer.BadParameter(f"expected a positive number of samples, got {k}", param_hint="--k")
    if (text is None) == (queries is None):
        raise typer.BadParameter("give one of --text TEXT or --queries DATASET", param_hint="--text")
    req = QueryRequest(index=index, text=text, prompt=prompt, queries=queries, k=k, rescore=rescore,
                       candidates=candidates, most=most.value, model=model, write=write, behaviour=behaviour)
    res = run_query(open_store(store), req)
    table = res.result.table
    import polars as pl

    shown = table.select(
        "query_id", "rank", "sample_id", pl.col("score").round(6),
        pl.col("sample_id").replace_strict(res.snippets, default="").alias("text"),
    )
    if shown["query_id"].n_unique() == 1:
        shown = shown.drop("query_id")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        out.print(str(shown), markup=False, highlight=False, soft_wrap=True)
    how = (f"exact scores of the best {res.result.n_candidates} candidates" if res.result.rescored
           else "approximate scores (projected gradients)")
    stages = ", ".join(f"{name} {s:.2f} s" for name, s in res.result.seconds.items())
    out.print(f"index {res.index_run}: {how}; {res.seconds:.1f} s ({stages})", style="dim")
    if res.written_run:
        out.print(f"[green]written[/] as scores run {res.written_run} (behaviour {behaviour})")
