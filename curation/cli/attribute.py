"""`curation attribute`: parse options into an AttributeRequest and run it (curation.steps.attribute)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from attribution.config import field_help

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

ENGINE_HELP = field_help()  # the engine's settings are described once, in attribution.config


class TaskKind(StrEnum):
    """What kind of model ``curation attribute`` scores."""

    causal_lm = "causal-lm"
    classifier = "classifier"
    regression = "regression"


@app.command()
def attribute(
    train: Annotated[str, typer.Option("--train", help="Training dataset to score")],
    model: Annotated[Path, typer.Option("--model", help="Local model folder: a causal LM (save_pretrained) or an MLP (MLP.save)")],
    task: Annotated[TaskKind, typer.Option(help="causal-lm (prompt/completion or text) or classifier/regression (tabular)")] = TaskKind.causal_lm,
    tokenizer: Annotated[Path | None, typer.Option(help="Local tokenizer folder (default: the model's)")] = None,
    behaviour: Annotated[str | None, typer.Option(help="Registered behaviour to attribute (its dataset and query ids); this or --queries is required")] = None,
    queries: Annotated[str | None, typer.Option(help="Dataset whose samples are the queries (registers a behaviour); this or --behaviour is required")] = None,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label/target field")] = "label",
    strategy: Annotated[str, typer.Option(help=ENGINE_HELP["strategy"] + ", or auto: the choice of a stored "
                                               "validation of this model and data (curation validate)")] = "ekfac",
    damping: Annotated[str, typer.Option(help="heuristic (kronfluence's, 0.1 x mean eigenvalue per layer), a "
                                              "multiple of it (x10), an absolute value (1e-3), or auto (the "
                                              "best of a stored validation)")] = "heuristic",
    auto_budget_s: Annotated[float | None, typer.Option(help="With auto and no stored validation: validate now "
                                                             "within this many seconds")] = None,
    clip_gradients: Annotated[float | None, typer.Option(help=ENGINE_HELP["clip_gradient_ratio"])] = None,
    outlier_check: Annotated[bool, typer.Option(help="Report training samples whose gradient norm is above 10x "
                                                     "the median (one more pass over the data)")] = True,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample, at most the model's context (default: the model's context; longer completions are cut)")] = None,
    batch_size: Annotated[int, typer.Option(help=ENGINE_HELP["batch_size"])] = 16,
    shard_size: Annotated[int, typer.Option(help=ENGINE_HELP["shard_size"])] = 1024,
    low_rank: Annotated[int | None, typer.Option(help=ENGINE_HELP["low_rank"])] = None,
    per_module: Annotated[bool, typer.Option("--per-module", help="Also write each score's split over modules (score_parts)")] = False,
    explain_top: Annotated[int, typer.Option(help="Causal LM: per-token scores of each query's top-K samples (score_parts)")] = 0,
    self_influence: Annotated[bool, typer.Option("--self", help="Also write self-influence scores")] = False,
    seed: Annotated[int, typer.Option(help=ENGINE_HELP["seed"])] = 0,
    factor_partitions: Annotated[int, typer.Option(help=ENGINE_HELP["factor_partitions"])] = 1,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Score every training sample against a behaviour with influence functions (resumable).

    One of --behaviour (a registered behaviour) or --queries (a dataset of queries) is required.
    """
    from attribution.engine import STRATEGIES
    from curation.steps.attribute import AttributeRequest, run_attribution

    if strategy not in (*STRATEGIES, "auto"):
        raise typer.BadParameter(f"expected auto or one of {', '.join(STRATEGIES)}", param_hint="--strategy")
    damping_fields = _damping(damping)
    if behaviour is None and queries is None:
        raise typer.BadParameter("give --behaviour NAME (registered) or --queries DATASET", param_hint="--behaviour")
    req = AttributeRequest(
        train=train, model=model, task=task.value, tokenizer=tokenizer, behaviour=behaviour, queries=queries,
        features=[c.strip() for c in features.split(",")] if features else None, label_field=label_field,
        strategy=strategy, **damping_fields, auto_budget_s=auto_budget_s, clip_gradients=clip_gradients,
        outlier_check=outlier_check, max_length=max_length, batch_size=batch_size, shard_size=shard_size,
        low_rank=low_rank, per_module=per_module, explain_top=explain_top, self_influence=self_influence, seed=seed,
        factor_partitions=factor_partitions, executor=executor_from_options(executor, ray_address, workers),
    )
    res = run_attribution(open_store(store), req, progress=True)
    length = f", {res.max_length} tokens per sample" if res.max_length else ""
    out.print(
        f"[green]scored[/] {res.n_train:,} samples of {train} x {res.n_queries:,} queries of {res.behaviour} "
        f"({res.strategy}{length}): run {res.run_id}, {res.shards_computed}/{res.shards_total} shards computed, "
        f"{res.seconds:.1f} s"
    )
    if res.auto:
        source = f"validation run {res.auto['validation_run']}" if res.auto["validation_run"] else "no validation"
        ens = f", averaged over {res.auto['ensemble']} models" if res.auto.get("ensemble", 1) > 1 else ""
        out.print(f"[green]auto[/]: {res.auto['strategy']} with damping {res.auto['damping']}{ens} "
                  f"({res.auto['selected_by']}; {source})")
    if res.outliers:
        out.print(("[yellow]gradient outliers[/]: " if "have gradient norms" in res.outliers else "  ") + res.outliers)
    if res.token_run_id:
        out.print(f"[green]per-token[/] scores of {res.n_explained} samples: run {res.token_run_id} (table score_parts)")
    if res.self_run_id:
        out.print(f"[green]self-influence[/] run {res.self_run_id}")
    out.print(
        "  top helpers of each query: curation sql \"SELECT query_id, sample_id, score FROM scores "
        f"WHERE run_id = '{res.run_id}' QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 5\""
    )
    out.print(f"  report: curation report {res.run_id} --out attribution.html")


def _damping(text: str) -> dict:
    """``--damping`` as AttributeRequest fields: heuristic, xK (a multiple of it), a number, or auto."""
    t = text.strip().lower()
    if t in ("heuristic", "none"):
        return {}
    if t == "auto":
        return {"damping_auto": True}
    try:
        if t.startswith("x") or t.endswith("x"):
            scale = float(t.strip("x"))
            if scale > 0:
                return {"damping_scale": scale}
        else:
            value = float(t)
            if value > 0:
                return {"damping": value}
    except ValueError:
        pass
    raise typer.BadParameter(f"{text!r}: expected heuristic, a multiple like x10, a positive number like 1e-3, "
                             "or auto", param_hint="--damping")
