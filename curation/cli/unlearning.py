"""`curation expand` and `curation unlearn`: parse options into requests (curation.steps.unlearning)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attribution.config import field_help

from .attribute import TaskKind
from .common import DEFAULT_STORE, StoreOpt, app, open_store, out

ENGINE_HELP = field_help()


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        result[key.strip()] = value.strip()
    return result


@app.command()
def expand(
    source: Annotated[str, typer.Option("--from", help="The known-bad samples: a flags run id (its flagged samples), "
                                                       "a dataset, or 'DATASET WHERE <SQL predicate>'")],
    train: Annotated[str, typer.Option("--train", help="Training dataset the model was trained on")],
    model: Annotated[Path, typer.Option("--model", help="Local model folder: an MLP (MLP.save) or a causal LM (save_pretrained)")],
    budget: Annotated[str, typer.Option(help="How many to flag: 'auto' (as similar as the known-bad samples are to "
                                             "each other), a fraction in (0, 1], or a number of samples")] = "auto",
    quantile: Annotated[float | None, typer.Option(help="auto budget: the quantile of the known-bad samples' "
                                                        "leave-one-out scores a sample must reach")] = None,
    combine: Annotated[str | None, typer.Option(help="Comma-separated evidence to combine: influence, similarity, "
                                                     "representation, input, loss, random (default: chosen on the unlearning benchmark's selection seed)")] = None,
    task: Annotated[TaskKind, typer.Option(help="classifier/regression (tabular MLP) or causal-lm")] = TaskKind.classifier,
    tokenizer: Annotated[Path | None, typer.Option(help="Causal LM: local tokenizer folder (default: the model's)")] = None,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label field")] = "label",
    max_length: Annotated[int | None, typer.Option(help="Causal LM: tokens per sample (default: the model's context)")] = None,
    strategy: Annotated[str, typer.Option(help=ENGINE_HELP["strategy"])] = "ekfac",
    damping: Annotated[float | None, typer.Option(help=ENGINE_HELP["damping"])] = None,
    batch_size: Annotated[int, typer.Option(help=ENGINE_HELP["batch_size"])] = 32,
    seed: Annotated[int, typer.Option(help="Seed (factors, random evidence)")] = 0,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Flag the rest of the bad training data from a few known-bad samples (influence + representation evidence)."""
    from curation.steps.unlearning import ExpandRequest, run_expand

    req = ExpandRequest(source=source, train=train, model=model, task=task.value, tokenizer=tokenizer,
                        features=[c.strip() for c in features.split(",")] if features else None,
                        label_field=label_field, max_length=max_length, budget=budget, quantile=quantile,
                        combine=[c.strip() for c in combine.split(",")] if combine else None, strategy=strategy,
                        damping=damping, batch_size=batch_size, seed=seed)
    res = run_expand(open_store(store), req, progress=True)
    out.print(f"[green]flagged[/] {res.n_flagged:,} of {res.n_train:,} samples of {train} from {res.n_known:,} known-bad "
              f"({res.n_flagged - res.n_known:,} new; budget {res.budget}): flags run {res.flags_run}, {res.seconds:.1f} s")
    out.print("  evidence runs: " + ", ".join(f"{k} {v}" for k, v in res.evidence_runs.items()))
    out.print(f"  why: curation sql \"SELECT sample_id, score, reason FROM flags WHERE run_id = '{res.flags_run}' "
              "AND flagged ORDER BY score DESC LIMIT 20\"")
    out.print(f"  next: curation unlearn --model {model} --forget {res.flags_run} --train {train} --out DIR")


@app.command()
def unlearn(
    model: Annotated[Path, typer.Option("--model", help="Local model folder: an MLP (MLP.save) or a causal LM (save_pretrained)")],
    forget: Annotated[str, typer.Option("--forget", help="Samples to unlearn: a flags run id (its flagged samples), "
                                                         "a dataset, or 'DATASET WHERE <SQL predicate>'")],
    train: Annotated[str, typer.Option("--train", help="Training dataset the model was trained on (the retain set is the rest)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the unlearned model (safetensors)")],
    method: Annotated[str, typer.Option(help="retrain, retrain_last, gradient_ascent, grad_diff, npo, ssd, newton, iau "
                                             "(see `curation unlearn-methods`)")] = "npo",
    setting: Annotated[list[str] | None, typer.Option("--set", help="A method setting, KEY=VALUE (repeatable)")] = None,
    recipe: Annotated[list[str] | None, typer.Option("--recipe", help="A training-recipe setting for retraining, "
                                                                      "KEY=VALUE (repeatable), e.g. epochs=60")] = None,
    task: Annotated[TaskKind, typer.Option(help="classifier/regression (tabular MLP) or causal-lm")] = TaskKind.classifier,
    tokenizer: Annotated[Path | None, typer.Option(help="Causal LM: local tokenizer folder (default: the model's)")] = None,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label field")] = "label",
    max_length: Annotated[int | None, typer.Option(help="Causal LM: tokens per sample (default: the model's context)")] = None,
    test: Annotated[str | None, typer.Option(help="A held-out dataset to measure too (split 'test')")] = None,
    compare_retrain: Annotated[bool, typer.Option("--compare-retrain", help="Also retrain from scratch without the "
                                                                            "forget set and measure it (the target)")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the method (and of the retraining)")] = 0,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite --out if it exists")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Remove the effect of flagged training samples from a model; measure before/after (and against retraining)."""
    from curation.steps.unlearning import UnlearnRequest, run_unlearn

    req = UnlearnRequest(model=model, forget=forget, train=train, out=out_dir, method=method,
                         settings=_pairs(setting, "--set"), recipe=_pairs(recipe, "--recipe"), task=task.value,
                         tokenizer=tokenizer, features=[c.strip() for c in features.split(",")] if features else None,
                         label_field=label_field, max_length=max_length, test=test, compare_retrain=compare_retrain,
                         seed=seed, replace=replace)
    res = run_unlearn(open_store(store), req, progress=True)
    out.print(f"[green]unlearned[/] {res.n_forget:,} of {res.n_train:,} samples with {res.method} in {res.seconds:.2f} s: "
              f"model {res.out}, run {res.run_id}")
    table = res.metrics.filter(res.metrics["metric"] != "seconds").pivot(on="model", index=["split", "metric"],
                                                                        values="value")
    from .common import print_frame

    print_frame(table, 20)
    out.print(f"  report: curation report {res.run_id} --out unlearn.html")


@app.command("unlearn-methods")
def unlearn_methods() -> None:
    """List the unlearning methods and their settings (for `curation unlearn --method M --set KEY=VALUE`)."""
    import dataclasses

    from curation.actions.unlearning.base import settings_help
    from curation.actions.unlearning.methods import METHODS

    for name, cls in METHODS.items():
        out.print(f"[bold]{name}[/]: {cls.summary}")
        defaults = {f.name: f.default for f in dataclasses.fields(cls.Settings)}
        for key, text in settings_help(cls.Settings).items():
            out.print(f"    {key} = {defaults[key]!r}: {text}")
