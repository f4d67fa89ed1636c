"""Corrective unlearning from the store: the library behind ``curation expand`` and ``curation unlearn``.

``expand`` turns a few known-bad training samples (a flags run, or a dataset with an optional
SQL predicate) into a flags run over the whole training set (:mod:`filters.expansion`, on
evidence from :mod:`attribution.expansion`). ``unlearn`` removes a forget set (again a flags run
or a dataset) from a trained model with one of :data:`~curation.actions.unlearning.methods.METHODS`,
saves the new model (safetensors) and writes an ``unlearn`` run: the method, its settings, the
recipe, the forget set's ids (``unlearn_samples``) and the before/after metrics of the original,
unlearned and (on request) retrained models (``unlearn_metrics``).

Every request is checked before any work starts: unknown datasets or runs, an empty forget set,
ids that are not in the training set, an output folder that exists: one-line errors, nothing
written.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch

import stores

from ..errors import RequestError
from .model_folder import check_model_folder, model_context_length, resolve_max_length

TASKS = ("causal-lm", "classifier", "regression")


class UnlearnRequestError(RequestError):
    """A request ``curation expand`` or ``curation unlearn`` cannot run: what is wrong and what was expected."""


# ---------------------------------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    """A model with its task and training samples, as the engine and the methods take them."""

    net: Any
    task: Any
    train: Any  # attribution.data.Samples
    kind: str
    tokenizer: Any = None
    max_length: int | None = None
    features: list[str] | None = None


def load_model_and_train(store: stores.Store, train: str, model: Path, kind: str, *, tokenizer: Path | None = None,
                         features: list[str] | None = None, label_field: str = "label",
                         max_length: int | None = None) -> LoadedModel:
    """Load ``model`` (safetensors only) and the training dataset ``train`` as its inputs."""
    if kind not in TASKS:
        raise UnlearnRequestError(f"--task {kind}: expected one of {', '.join(TASKS)}")
    if store.dataset_info(train)["n_samples"] == 0:
        raise UnlearnRequestError(f"training dataset {train!r} has no samples")
    check_model_folder(model, kind)
    if kind == "causal-lm":
        from attribution.data import completion_samples
        from attribution.models import load_causal_lm, load_tokenizer
        from attribution.tasks import CausalLMTask

        net = load_causal_lm(model)
        length = resolve_max_length(max_length, model_context_length(net), model)
        tok = load_tokenizer(tokenizer or model)
        return LoadedModel(net, CausalLMTask(net), completion_samples(store, train, tok, length), kind, tok, length)
    from attribution.data import tabular_samples
    from attribution.models import load_mlp
    from attribution.tasks import ClassifierTask, RegressionTask

    net = load_mlp(model)
    regression = kind == "regression"
    samples, cols = tabular_samples(store, train, features, label_field, regression=regression)
    if samples.data.tensors[0].shape[1] != net.config["n_in"]:
        raise UnlearnRequestError(f"--features: the model takes {net.config['n_in']} features, the data has "
                                  f"{samples.data.tensors[0].shape[1]} ({', '.join(cols)})")
    return LoadedModel(net, RegressionTask() if regression else ClassifierTask(), samples, kind, features=cols)


def load_more_samples(store: stores.Store, dataset: str, loaded: LoadedModel, label_field: str = "label"):
    """Another dataset (e.g. a test split) encoded like the loaded training samples, without reloading the model."""
    if loaded.kind == "causal-lm":
        from attribution.data import completion_samples

        return completion_samples(store, dataset, loaded.tokenizer, loaded.max_length)
    from attribution.data import tabular_samples

    return tabular_samples(store, dataset, loaded.features, label_field, regression=loaded.kind == "regression")[0]


_SOURCE = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s*(?:\s(?i:where)\s+(?P<where>.+))?$", re.S)


def sample_ids_from(store: stores.Store, source: str, option: str) -> list[str]:
    """Sample ids named by ``source``: a flags run (its flagged samples) or ``DATASET [WHERE predicate]``."""
    run = store.sql("SELECT kind, status FROM runs WHERE run_id = ?", [source.strip()])
    if run.height:
        if run["kind"][0] != "filter":
            raise UnlearnRequestError(f"{option} {source}: run is a {run['kind'][0]!r} run; expected a filter "
                                      "(flags) run or a dataset")
        if run["status"][0] != "finished":
            raise UnlearnRequestError(f"{option} {source}: the flags run is {run['status'][0]}, not finished")
        flags = store.read_flags(source.strip())
        return flags.filter(flags["flagged"])["sample_id"].to_list()
    m = _SOURCE.match(source)
    if not m:
        raise UnlearnRequestError(f"{option} {source!r}: expected a flags run id, a dataset name, or "
                                  "'DATASET WHERE <SQL predicate>'")
    name, where = m.group(1), m.group("where")
    if not store.sql("SELECT 1 FROM datasets WHERE name = ?", [name]).height:
        raise UnlearnRequestError(f"{option} {source!r}: {name!r} is neither a run id nor a dataset in the store")
    query = f"SELECT sample_id FROM samples WHERE dataset = ?{f' AND ({where})' if where else ''} ORDER BY ordinal"
    try:
        return store.sql(query, [name])["sample_id"].to_list()
    except Exception as exc:  # a user's predicate: name it
        first = str(exc).strip().splitlines()[0]
        raise UnlearnRequestError(f"{option} {source!r}: the predicate does not run on dataset {name!r} ({first})") from exc


def indices_in_train(ids: list[str], train: Any, option: str) -> list[int]:
    """Indices of ``ids`` in the training samples; errors for an empty set or ids not in training."""
    if not ids:
        raise UnlearnRequestError(f"{option}: selects no samples; nothing to do")
    where = {s: i for i, s in enumerate(train.ids)}
    missing = [s for s in ids if s not in where]
    if missing:
        raise UnlearnRequestError(f"{option}: {len(missing)} of {len(ids)} sample(s) are not in the training "
                                  f"dataset {train.dataset!r}, e.g. {missing[0]!r}")
    return sorted({where[s] for s in ids})


# ---------------------------------------------------------------------------------------- expand
@dataclass
class ExpandRequest:
    """Expand a known-bad set (``source``) to the rest of the training set ``train``."""

    source: str
    train: str
    model: Path
    task: str = "classifier"
    tokenizer: Path | None = None
    features: list[str] | None = None
    label_field: str = "label"
    max_length: int | None = None
    budget: str = "auto"
    quantile: float | None = None
    combine: list[str] | None = None
    strategy: str = "ekfac"
    damping: float | None = None
    batch_size: int = 32
    seed: int = 0


@dataclass
class ExpandResult:
    """What an expansion wrote: the flags run and its evidence runs."""

    flags_run: str
    n_known: int
    n_flagged: int
    n_train: int
    evidence_runs: dict[str, str]
    seconds: float
    budget: str


def parse_budget(text: str, n: int):
    """``auto`` (None), a fraction in (0, 1] or a count of samples, as a :class:`filters.base.Budget`."""
    from filters.base import Budget

    text = str(text).strip().lower()
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise UnlearnRequestError(f"--budget {text!r}: expected 'auto', a fraction in (0, 1] or a number of samples") from None
    if 0 < value <= 1 and not (value == 1 and "." not in text):
        return Budget(fraction=value)
    if value >= 1 and value == int(value):
        return Budget(fraction=min(1.0, int(value) / n))
    raise UnlearnRequestError(f"--budget {text!r}: expected 'auto', a fraction in (0, 1] or a number of samples")


def run_expand(store: stores.Store, req: ExpandRequest, *, progress: bool = False) -> ExpandResult:
    """Compute the expansion evidence and write the flags run (see the module doc)."""
    from attribution.config import EngineConfig
    from attribution.expansion import expansion_evidence
    from filters.expansion import (
        DEFAULT_COMBINE,
        DEFAULT_QUANTILE,
        EXPANSION_EVIDENCE,
        NEEDS,
        ExpansionFilter,
    )

    combine = list(req.combine or DEFAULT_COMBINE)
    unknown = [c for c in combine if c not in EXPANSION_EVIDENCE]
    if unknown:
        raise UnlearnRequestError(f"--combine: unknown evidence {', '.join(unknown)}; expected some of "
                                  f"{', '.join(EXPANSION_EVIDENCE)}")
    known_ids = sample_ids_from(store, req.source, "--from")
    loaded = load_model_and_train(store, req.train, req.model, req.task, tokenizer=req.tokenizer,
                                  features=req.features, label_field=req.label_field, max_length=req.max_length)
    idx = indices_in_train(known_ids, loaded.train, "--from")
    known = [loaded.train.ids[i] for i in idx]
    budget = parse_budget(req.budget, len(loaded.train))
    if budget is None and len(known) < 2:
        raise UnlearnRequestError("--budget auto calibrates on the known-bad samples' leave-one-out scores and "
                                  "needs at least 2 of them; give a fraction or a number of samples")
    t0 = time.perf_counter()
    needed = tuple(sorted({r for c in combine for r in NEEDS[c]}))
    cfg = EngineConfig(strategy=req.strategy, damping=req.damping, batch_size=req.batch_size, seed=req.seed)
    evidence = expansion_evidence(store, loaded.net, loaded.task, loaded.train, known, config=cfg,
                                  evidence=needed, progress=progress)
    filt = ExpansionFilter(known, evidence.runs, combine=combine, budget=budget,
                           quantile=DEFAULT_QUANTILE if req.quantile is None else req.quantile, seed=req.seed)
    res = filt.run(store, req.train, seed=req.seed)
    return ExpandResult(res.run_id, len(known), res.flags.n_flagged, len(loaded.train), evidence.runs,
                        time.perf_counter() - t0, filt.config()["budget"])


# ---------------------------------------------------------------------------------------- unlearn
@dataclass
class UnlearnRequest:
    """Unlearn ``forget`` from ``model`` (trained on ``train``) with ``method``; save to ``out``."""

    model: Path
    forget: str
    train: str
    out: Path
    method: str = "npo"
    settings: dict[str, str] = field(default_factory=dict)
    task: str = "classifier"
    tokenizer: Path | None = None
    features: list[str] | None = None
    label_field: str = "label"
    max_length: int | None = None
    test: str | None = None
    compare_retrain: bool = False
    recipe: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    replace: bool = False


@dataclass
class UnlearnResult:
    """What an unlearning did: the run, the model folder, sizes, time and the metrics table."""

    run_id: str
    out: Path
    method: str
    n_forget: int
    n_train: int
    seconds: float
    metrics: Any  # polars DataFrame: model, split, metric, value


def parse_settings(settings_class: type, values: dict[str, str], option: str = "--set") -> dict[str, Any]:
    """``key=value`` strings converted to the types of a settings dataclass's fields (clear errors)."""
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    hints = typing.get_type_hints(settings_class)
    out: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            raise UnlearnRequestError(f"{option} {key}={raw}: unknown setting; expected one of {', '.join(fields)}")
        out[key] = _convert(hints[key], raw, f"{option} {key}={raw}")
    return out


def _convert(hint: Any, raw: str, where: str) -> Any:
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else (hint,)
    if type(None) in args and raw.strip().lower() in ("none", "null", ""):
        return None
    for kind in (a for a in args if a is not type(None)):
        try:
            if kind is bool:
                if raw.lower() in ("true", "1", "yes", "false", "0", "no"):
                    return raw.lower() in ("true", "1", "yes")
                continue
            return kind(raw)
        except (TypeError, ValueError):
            continue
    names = " or ".join(getattr(a, "__name__", str(a)) for a in args)
    raise UnlearnRequestError(f"{where}: expected {names}")


def make_recipe(loaded: LoadedModel, options: dict[str, str], progress: bool = False, option: str = "--recipe"):
    """The built-in training recipe for the loaded model kind, with ``options`` overriding its defaults.

    None for a causal LM other than GPT-2 (no built-in recipe). ``option`` names the command-line
    option the settings came from, in errors.
    """
    from curation.actions.recipes import LMRecipe, MLPRecipe

    if loaded.kind == "causal-lm":
        from curation.steps.train import LMConfig

        cfg = loaded.net.config
        if getattr(cfg, "model_type", "") != "gpt2":
            return None  # no built-in recipe: retraining methods will say so
        base = LMConfig(n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, max_length=loaded.max_length)
        lm = dataclasses.replace(base, **parse_settings(LMConfig, options, option))
        return LMRecipe(loaded.tokenizer, lm, progress=progress)
    c = loaded.net.config
    base = MLPRecipe(c["n_in"], tuple(c["hidden"]), c["n_out"], c.get("task", "classifier"))
    return dataclasses.replace(base, **parse_settings(MLPRecipe, options, option))


@torch.no_grad()
def split_metrics(loaded: LoadedModel, model: Any, samples: Any, indices: list[int] | None = None,
                  batch_size: int = 64) -> dict[str, float]:
    """Mean loss (per token for causal LMs) and accuracy (classifiers; next-token accuracy for LMs)."""
    from attribution.gradients import collate

    model.eval()
    idx = list(range(len(samples))) if indices is None else indices
    loss_sum, count, correct, total = 0.0, 0, 0, 0
    for lo in range(0, len(idx), batch_size):
        batch = collate(samples.data, idx[lo : lo + batch_size])
        if loaded.kind == "causal-lm":
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            labels = batch["labels"][:, 1:]
            mask = labels != -100
            nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.clamp(min=0).flatten(),
                                                    reduction="none").view(labels.shape)
            loss_sum += float((nll * mask).sum())
            count += int(mask.sum())
            correct += int(((logits.argmax(-1) == labels) & mask).sum())
            total += int(mask.sum())
        else:
            losses = loaded.task.per_sample_loss(batch, model)
            loss_sum += float(losses.sum())
            count += len(losses)
            if loaded.kind == "classifier":
                x, y = batch
                correct += int((model(x).argmax(-1) == y).sum())
                total += len(y)
    out = {"loss": loss_sum / max(count, 1)}
    if total:
        out["accuracy"] = correct / total
    return out


def run_unlearn(store: stores.Store, req: UnlearnRequest, *, progress: bool = False) -> UnlearnResult:
    """Unlearn, measure, save the model and write the ``unlearn`` run (see the module doc)."""
    from attribution.keys import model_fingerprint
    from curation.actions.unlearning.base import UnlearningInputError, UnlearningProblem
    from curation.actions.unlearning.methods import METHODS, make_method

    if req.method not in METHODS:
        raise UnlearnRequestError(f"--method {req.method}: expected one of {', '.join(METHODS)}")
    settings = parse_settings(METHODS[req.method].Settings, req.settings)
    out = Path(req.out)
    if out.exists() and not req.replace:
        raise UnlearnRequestError(f"--out {out}: exists; pass --replace to overwrite it or choose another folder")
    forget_ids = sample_ids_from(store, req.forget, "--forget")
    loaded = load_model_and_train(store, req.train, req.model, req.task, tokenizer=req.tokenizer,
                                  features=req.features, label_field=req.label_field, max_length=req.max_length)
    forget = indices_in_train(forget_ids, loaded.train, "--forget")
    if len(forget) == len(loaded.train):
        raise UnlearnRequestError("--forget: selects the whole training set; nothing would be retained")
    test = None if req.test is None else load_more_samples(store, req.test, loaded, req.label_field)
    recipe = make_recipe(loaded, req.recipe, progress=progress)
    method = make_method(req.method, **settings)
    problem = UnlearningProblem(loaded.net, loaded.task, loaded.train, forget, recipe=recipe, store=store,
                                seed=req.seed)
    retain = problem.retain
    models = {"original": loaded.net}
    seconds: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        models["unlearned"] = method.unlearn(problem)
        seconds["unlearned"] = time.perf_counter() - t0
        if req.compare_retrain:
            from curation.actions.unlearning.retrain import Retrain

            t0 = time.perf_counter()
            models["retrained"] = Retrain().unlearn(problem)
            seconds["retrained"] = time.perf_counter() - t0
    except UnlearningInputError as exc:
        raise UnlearnRequestError(str(exc)) from exc
    rows: list[tuple[str, str, str, float]] = []
    for name, model in models.items():
        parts = {"forget": (loaded.train, forget), "retain": (loaded.train, retain)}
        if test is not None:
            parts["test"] = (test, None)
        for split, (samples, idx) in parts.items():
            rows += [(name, split, k, v) for k, v in split_metrics(loaded, model, samples, idx).items()]
        if name in seconds:
            rows.append((name, "all", "seconds", seconds[name]))
    config = {"method": method.config(), "model": str(req.model), "out": str(out), "forget_source": req.forget,
              "n_forget": len(forget), "n_train": len(loaded.train), "task": req.task, "test": req.test,
              "recipe": recipe.config() if recipe is not None else None, "compare_retrain": req.compare_retrain,
              "seconds": seconds}
    fp = model_fingerprint(loaded.net)
    saved = False
    try:
        with store.run("unlearn", config=config, seed=req.seed, dataset=req.train, model_fingerprint=fp) as run:
            _save(models["unlearned"], loaded, out)
            saved = True
            run.write("unlearn_samples", pa.table({
                "sample_id": pa.array([loaded.train.ids[i] for i in forget], pa.string()),
                "role": pa.array(["forget"] * len(forget), pa.string())}), shard=0)
            run.write("unlearn_metrics", pa.table({
                "model": pa.array([r[0] for r in rows], pa.string()),
                "split": pa.array([r[1] for r in rows], pa.string()),
                "metric": pa.array([r[2] for r in rows], pa.string()),
                "value": pa.array([float(r[3]) for r in rows], pa.float64())}), shard=0)
    except BaseException:
        if saved:
            shutil.rmtree(out, ignore_errors=True)  # no model without its run
        raise
    import polars as pl

    metrics = pl.DataFrame(rows, schema=["model", "split", "metric", "value"], orient="row")
    return UnlearnResult(run.id, out, req.method, len(forget), len(loaded.train), seconds["unlearned"], metrics)


def _save(model: Any, loaded: LoadedModel, out: Path) -> None:
    if loaded.kind == "causal-lm":
        from attribution.models import save_causal_lm

        save_causal_lm(model, out, loaded.tokenizer)
    else:
        from attribution.models import MLP

        if not isinstance(model, MLP):
            raise TypeError(f"expected the unlearned model to be an MLP, got {type(model).__name__}")
        model.save(out)


__all__ = ["ExpandRequest", "ExpandResult", "UnlearnRequest", "UnlearnRequestError", "UnlearnResult",
           "load_model_and_train", "run_expand", "run_unlearn", "sample_ids_from"]
