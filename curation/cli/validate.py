"""`curation validate`: how far to trust influence scores on your task (LDS by retraining, top-k removal, sign check)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from .common import DEFAULT_STORE, StoreOpt, app, open_store, out, print_frame


def _pairs(values: list[str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        result[key.strip()] = value.strip()
    return result


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


@app.command()
def validate(
    train: Annotated[str, typer.Option("--train", help="Training dataset the model was trained on")],
    queries: Annotated[str, typer.Option("--queries", help="Dataset of queries whose loss the scores attribute")],
    model: Annotated[Path, typer.Option("--model", help="Local model folder: an MLP (MLP.save) or a causal LM (save_pretrained)")],
    task: Annotated[str, typer.Option(help="classifier, regression (tabular MLP) or lm (causal LM)")] = "classifier",
    tokenizer: Annotated[Path | None, typer.Option(help="Causal LM: local tokenizer folder (default: the model's)")] = None,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label field")] = "label",
    max_length: Annotated[int | None, typer.Option(help="Causal LM: tokens per sample (default: the model's context)")] = None,
    budget_s: Annotated[float, typer.Option("--budget-s", help="Wall-clock budget in seconds: subsets x seeds are "
                                                               "chosen to fit it after timing one retraining")] = 600.0,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies to compare")] = "identity,diagonal,kfac,ekfac,ekfac_cg",
    dampings: Annotated[str, typer.Option(help="Comma-separated dampings: heuristic, multiples of it (x0.1, x10), fixed "
                                               "values (1e-3); auto = heuristic,x0.1,x10")] = "auto",
    recipe: Annotated[str | None, typer.Option(help="Built-in training recipe to retrain with: mlp or lm (default: "
                                                    "the one for the model)")] = None,
    setting: Annotated[list[str] | None, typer.Option("--set", help="A recipe setting, KEY=VALUE (repeatable: --set "
                                                                   "epochs=60 --set lr=0.05); use what trained the model")] = None,
    train_command: Annotated[str | None, typer.Option("--train-command", help="Your own training command instead of a "
                                                      "recipe: a shell template with {subset} (file of sample ids, one "
                                                      "per line), {out} (folder to write the model to) and {seed}")] = None,
    subsets: Annotated[int | None, typer.Option(help="Fix the number of random subsets (skips the budget planning; "
                                                     "0: only the top-k check)")] = None,
    seeds: Annotated[int, typer.Option(help="With --subsets: retraining seeds averaged per subset")] = 1,
    max_subsets: Annotated[int, typer.Option(help="Budget planning: at most this many subsets")] = 100,
    max_seeds: Annotated[int, typer.Option(help="Budget planning: at most this many seeds per subset")] = 5,
    alpha: Annotated[float, typer.Option(help="Fraction of the training set in each subset")] = 0.5,
    topk_queries: Annotated[int, typer.Option(help="Queries whose top-k samples are removed in the top-k check (0: none)")] = 8,
    topk_fraction: Annotated[float, typer.Option(help="k of the top-k check, as a fraction of the training set")] = 0.02,
    workers: Annotated[int, typer.Option(help="Retraining processes (0: in this process); each "
                                                  "takes seconds to start, so they pay off on long budgets")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of subsets, retrainings and factors")] = 0,
    batch_size: Annotated[int, typer.Option(help="Batch size of influence scoring")] = 32,
    ensemble: Annotated[int, typer.Option(help="Also judge the chosen setting averaged over this many models (the "
                                                "scored one + ones retrained on the full set with other seeds); "
                                                "chosen if it adds more than 0.01 LDS")] = 1,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Measure how well each influence setting predicts retraining on your task, and pick one.

    LDS: retrain on random subsets with your recipe, correlate predicted and measured query losses
    (with a 95% bootstrap CI over queries); top-k removal and sign checks beside it. Writes a
    `validation` run; the chosen setting is recorded there.
    """
    import polars as pl

    from curation.steps.validation import ValidateRequest, run_validate

    req = ValidateRequest(
        train=train, queries=queries, model=model, task=task, tokenizer=tokenizer,
        features=_list(features) if features else None, label_field=label_field, max_length=max_length,
        strategies=_list(strategies), dampings=_list(dampings), budget_s=budget_s, recipe=recipe,
        recipe_settings=_pairs(setting), train_command=train_command, subsets=subsets, seeds=seeds, alpha=alpha,
        max_subsets=max_subsets, max_seeds=max_seeds,
        topk_queries=topk_queries, topk_fraction=topk_fraction, workers=workers, seed=seed, batch_size=batch_size,
        ensemble=ensemble)
    res = run_validate(open_store(store), req, progress=True)
    plan = res.plan
    what = (f"{plan.subsets} subsets x {plan.seeds} seed(s) of {plan.alpha:g} of the training set"
            if plan.subsets else "no LDS (budget too small): top-k removal check only")
    out.print(f"[green]validated[/] {len(res.results)} settings: {what}; "
              f"{res.retrains_computed} retrainings ({res.retrains_reused} reused), {res.seconds:.1f} s: run {res.run_id}")
    if plan.reason != "given":
        out.print(f"  plan: {plan.reason}")
    rows = [{"strategy": r.strategy + (f" x{r.ensemble} models" if r.ensemble > 1 else ""),
             "damping": "-" if r.strategy == "identity" else r.damping,
             "LDS": _num(r.lds), "95% CI": f"[{_num(r.ci_low)}, {_num(r.ci_high)}]" if r.lds is not None else "-",
             "top-k effect": _num(r.topk_effect, "+.4f"), "sign agreement": _num(r.sign_agreement, ".0%"),
             "scoring s": f"{r.seconds:.2f}"} for r in res.results]
    print_frame(pl.DataFrame(rows), len(rows))
    by = "highest LDS, ties to the cheaper" if res.selected_by == "lds" else "largest top-k removal effect (no LDS)"
    ens = f", averaged over {res.chosen_ensemble} models" if res.chosen_ensemble > 1 else ""
    out.print(f"[bold]chosen:[/] {res.chosen[0]}, damping {res.chosen[1]}{ens} ({by})")
    out.print("  LDS: rank correlation between the query loss the scores predict for a subset and the loss after "
              "retraining on it, averaged over queries (1 perfect, 0 chance). Top-k effect: extra loss from removing "
              "each checked query's top-k samples over removing as many random ones (positive = as the scores claim).")
    out.print(f"  report: curation report {res.run_id} --out validation.html")
