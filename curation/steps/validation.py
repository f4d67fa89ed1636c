"""Validation: how far to trust influence scores on the user's own task (the library behind ``curation validate``).

The check is the Linear Datamodeling Score (LDS, :mod:`attribution.lds`): retrain on random
subsets of the training set with the user's recipe (or training command), measure each query's
loss after each retraining, and ask whether each setting's scores rank the subsets as retraining
does. Two cheaper checks run beside it, for each setting: *top-k removal* (retrain without the
top-k samples of a handful of queries and compare the loss increase with removing as many random
samples) and a *sign check* (does each checked query's loss move in the direction the scores
predict).

:func:`validate` runs it all within a time budget:

1. score every setting of the grid (strategies x dampings, :mod:`.validation_settings`);
2. time one retraining and plan subsets x seeds to fit what is left (:func:`plan_for_budget`);
   the plan is recorded in the store's artifacts, so a resumed validation keeps it;
3. retrain (cached one by one, :mod:`.validation_retrain`: a killed validation resumes where it
   stopped and gives identical results), compute LDS with a bootstrap CI and the removal checks;
4. select a setting (:func:`~.validation_settings.select_setting`) and write a ``validation`` run
   whose config holds the plan, every setting's figures and the choice (``config["results"]``,
   ``config["chosen"]``); :func:`auto_setting` reads it back for ``strategy='auto'``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import stores
from attribution.ensemble import ensemble_matrix
from stores.atomic import atomic_write_text
from stores.progress import StepProgress

from .validation_retrain import Retrainer, TrainingCommand, draw_masks, retrain_seed
from .validation_settings import (
    ENSEMBLE_MARGIN,
    SettingResult,
    ValidationRequestError,
    lds_with_ci,
    parse_dampings,
    removal_effects,
    select_setting,
    setting_scores,
    settings_grid,
    top_k_union,
)


class ValidationBudgetError(ValidationRequestError):
    """The time budget does not fit even the cheapest check; says how much it would take."""


@dataclass
class ValidationPlan:
    """How many retrainings validation does, and of what.

    ``subsets`` random subsets of fraction ``alpha`` (0: no LDS, the top-k proxy only), each
    retrained with ``seeds`` seeds (the measurements are averaged over seeds); ``topk_queries``
    queries get the top-k removal check (0: none), each removing its ``topk_fraction`` most helpful
    samples, against ``random_removals`` random removals; ``topk_scope`` says which settings get
    it (``all``, or ``heuristic``: each strategy at the heuristic damping only). ``mode`` is
    ``lds`` or ``proxy``; ``reason`` says why the plan is what it is.
    """

    subsets: int
    seeds: int = 1
    alpha: float = 0.5
    seed: int = 0
    topk_queries: int = 8
    topk_fraction: float = 0.02
    random_removals: int = 2
    topk_scope: str = "all"
    mode: str = "lds"
    time_per_retrain: float | None = None
    budget_s: float | None = None
    reason: str = "given"

    def __post_init__(self) -> None:
        if self.subsets == 1 or self.subsets < 0:
            raise ValidationRequestError(f"--subsets {self.subsets}: LDS needs at least 2 subsets (0: top-k check only)")
        if self.seeds < 1 or self.topk_queries < 0 or self.random_removals < 1 and self.topk_queries:
            raise ValidationRequestError("--seeds must be at least 1, --topk-queries at least 0, random removals at least 1")
        if not 0 < self.alpha < 1 or not 0 < self.topk_fraction < 1:
            raise ValidationRequestError("--alpha and --topk-fraction must be fractions in (0, 1)")
        if self.subsets == 0 and not self.topk_queries:
            raise ValidationRequestError("a plan with no subsets and no top-k check validates nothing")
        self.mode = "lds" if self.subsets else "proxy"

    def removal_retrains(self, n_settings: int) -> int:
        """Retrainings of the top-k check over ``n_settings`` settings: one each, the full set, the random removals."""
        return n_settings + 1 + self.random_removals if self.topk_queries else 0


def plan_for_budget(budget_s: float, time_per_retrain: float, *, n_settings: int, n_proxy_settings: int | None = None,
                    elapsed_s: float = 0.0, workers: int = 0, alpha: float = 0.5, seed: int = 0,
                    min_subsets: int = 20, max_subsets: int = 100, max_seeds: int = 5, topk_queries: int = 8,
                    topk_fraction: float = 0.02, random_removals: int = 2, margin: float = 0.9) -> ValidationPlan:
    """The plan that fits ``budget_s`` seconds, given one retraining on a subset takes ``time_per_retrain``.

    ``elapsed_s`` were already spent (scoring the grid, the timing retraining). Retrainings run
    ``max(1, workers)`` at a time and ``margin`` of the time left is planned. A removal retraining
    (nearly the whole training set) is assumed to cost ``1 / alpha`` subset retrainings. In order:

    - LDS on as many subsets as fit, at least ``min_subsets``, at most ``max_subsets``; seeds per
      subset (up to ``max_seeds``) only once ``2 x max_subsets`` retrainings fit (more subsets
      narrow the CI more than more seeds), plus the top-k check on every setting when it fits too;
    - else LDS without the top-k check, if ``min_subsets`` fit;
    - else the top-k proxy alone (``mode="proxy"``): on every setting, or on each strategy at
      the heuristic damping (``n_proxy_settings`` of them) if only that fits;
    - else :class:`ValidationBudgetError`, saying how long the cheapest check would take.
    """
    min_subsets = min(min_subsets, max_subsets)  # a cap below the floor is the user's explicit choice
    if time_per_retrain <= 0 or not math.isfinite(time_per_retrain):
        raise ValueError(f"time_per_retrain must be positive, got {time_per_retrain}")
    t = float(time_per_retrain)
    removal_t = t / alpha
    capacity = max(0.0, budget_s - elapsed_s) * margin * max(1, workers)  # retraining seconds available
    n_proxy = n_proxy_settings or n_settings
    base = dict(alpha=alpha, seed=seed, topk_fraction=topk_fraction, random_removals=random_removals,
                time_per_retrain=t, budget_s=budget_s)
    spent = f"{elapsed_s:.1f} s of the {budget_s:g} s budget went to scoring and timing"

    def topk_cost(n: int) -> float:
        return (n + 1 + random_removals) * removal_t

    if capacity >= min_subsets * t:
        with_topk = topk_queries > 0 and capacity >= min_subsets * t + topk_cost(n_settings)
        n = int((capacity - (topk_cost(n_settings) if with_topk else 0)) // t)
        seeds = min(max_seeds, n // max_subsets) if n >= 2 * max_subsets else 1
        subsets = min(max_subsets, n // seeds)
        why = (f"{spent}; one retraining takes {t:.2f} s, so {subsets} subsets x {seeds} seed(s) fit"
               + ("" if with_topk else " (no time left for the top-k removal check)"))
        return ValidationPlan(subsets, seeds, topk_queries=topk_queries if with_topk else 0, reason=why, **base)
    for n, scope in ((n_settings, "all"), (n_proxy, "heuristic")):
        if topk_queries > 0 and capacity >= topk_cost(n):
            why = (f"{spent}; one retraining takes {t:.2f} s: LDS needs {min_subsets} retrainings "
                   f"({min_subsets * t / margin / max(1, workers):.0f} s), so only the top-k removal check runs "
                   f"(on {'every setting' if scope == 'all' else 'each strategy at the heuristic damping'})")
            return ValidationPlan(0, 1, topk_queries=topk_queries, topk_scope=scope, reason=why, **base)
    cheapest = min(min_subsets * t, topk_cost(n_proxy) if topk_queries else math.inf)
    need = elapsed_s + cheapest / margin / max(1, workers)
    raise ValidationBudgetError(
        f"--budget-s {budget_s:g}: too small. {spent}, and one retraining takes {t:.2f} s; LDS needs at least "
        f"{min_subsets} retrainings and the top-k check {n_proxy + 1 + random_removals}. Give --budget-s {math.ceil(need * 1.1)} "
        f"or more, fewer settings (--strategies/--dampings), or a faster recipe.")


@dataclass
class ValidationResult:
    """What a validation did: the run, the plan, every setting's figures, the choice, and its inputs.

    ``masks`` (subsets x train) and ``measured`` (subsets x queries, averaged over seeds) are the
    retrainings LDS used; ``scores`` maps each setting's label to its (queries x train) scores.
    They are None for a finished run read back from the store.
    """

    run_id: str
    plan: ValidationPlan
    results: list[SettingResult]
    chosen: tuple[str, str]
    selected_by: str
    retrains_computed: int = 0
    retrains_reused: int = 0
    seconds: float = 0.0
    masks: np.ndarray | None = None
    measured: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    per_query: dict[str, np.ndarray] = field(default_factory=dict)
    chosen_ensemble: int = 1  # models the chosen setting averages (1: the scored model alone)


def validate(store: stores.Store, model: Any, task: Any, train: Any, queries: Any, *, recipe: Any = None,
             command: TrainingCommand | None = None, strategies: Sequence[str] = ("identity", "diagonal", "kfac", "ekfac", "ekfac_cg"),
             dampings: Sequence[str] = ("auto",), budget_s: float = 600.0, plan: ValidationPlan | None = None,
             alpha: float = 0.5, seed: int = 0, workers: int = 0, topk_queries: int = 8, topk_fraction: float = 0.02,
             min_subsets: int = 20, max_subsets: int = 100, max_seeds: int = 5, n_boot: int = 1000, resample: str = "queries",
             batch_size: int = 32, device: str = "cpu", progress: bool = False, ensemble: int = 1,
             on_retrain: Callable[[int], None] | None = None) -> ValidationResult:
    """Validate every setting of the grid on ``train``/``queries`` (module doc) and write a ``validation`` run.

    ``model`` is the trained model whose scores are judged (it is prepared for kronfluence in
    place); ``task`` its :class:`~attribution.tasks.InfluenceTask`; ``train``/``queries``
    :class:`~attribution.data.Samples`. Retraining uses ``recipe`` or ``command`` (one of them).
    ``plan`` fixes the retrainings; without it they are planned to fit ``budget_s`` seconds of
    wall time (:func:`plan_for_budget`). ``on_retrain(n)`` is called after each fresh retraining.
    A finished validation with the same inputs is returned from the store as it is.

    ``ensemble`` K > 1 (needs LDS): the chosen setting is also scored as an ensemble, its scores
    averaged over the model and K - 1 models the recipe or command trains on the whole training
    set with other seeds (:meth:`Retrainer.full_models`, :mod:`attribution.ensemble`); the
    ensemble is chosen (``chosen["ensemble"]``) when its LDS beats the single model's by more
    than :data:`ENSEMBLE_MARGIN`.
    """
    if ensemble < 1:
        raise ValidationRequestError(f"--ensemble {ensemble}: give the number of models to average (1: none)")
    from attribution.keys import data_fingerprint, digest, ids_fingerprint, model_fingerprint

    t0 = time.perf_counter()
    grid = settings_grid(list(strategies), parse_dampings(dampings))
    if len(train) < 4 or len(queries) < 1:
        raise ValidationRequestError(f"validation needs at least 4 training samples and 1 query; got {len(train)} "
                                     f"and {len(queries)}")
    retrainer = Retrainer(store, train, queries, task, recipe=recipe, command=command, workers=workers)
    fingerprint = model_fingerprint(model)
    identity = {"model": fingerprint, "train": ids_fingerprint(train.ids), "train_data": data_fingerprint(train.data),
                "queries": ids_fingerprint(queries.ids), "query_data": data_fingerprint(queries.data),
                "task": type(task).__name__, "trainer": retrainer.config()}
    request = {"grid": [s.label for s in grid], "plan": asdict(plan) if plan else None, "budget_s": budget_s,
               "alpha": alpha, "seed": seed, "topk_queries": topk_queries, "topk_fraction": topk_fraction, "min_subsets": min_subsets,
               "max_subsets": max_subsets, "n_boot": n_boot, "resample": resample,
               **({"ensemble": ensemble} if ensemble > 1 else {})}
    key = digest(identity, request)
    run_id = f"validation-{key}"
    if store.run_finished(run_id):
        return _read_back(store, run_id)

    # an ensemble's members load their cached weights into copies of the model as it came (unprepared)
    skeleton = None
    if ensemble > 1 and command is not None:
        pristine = copy.deepcopy(model)
        skeleton = lambda _seed: copy.deepcopy(pristine)  # noqa: E731
    scores, seconds = {}, {}
    for s in grid:  # 1. scores of every setting (factors fitted once per strategy, cached in the store)
        ts = time.perf_counter()
        scores[s.label] = setting_scores(store, model, task, train, queries, s, batch_size=batch_size, seed=seed,
                                         device=device)
        seconds[s.label] = time.perf_counter() - ts
    # 2. the plan: given, recorded by an earlier (interrupted) attempt, or timed and fitted to the budget
    plan_file = store.artifact_dir("validation") / "plans" / f"{key}.json"
    if plan is None and plan_file.is_file():
        plan = ValidationPlan(**json.loads(plan_file.read_text()))
    if plan is None:
        first = retrainer.measure([(np.flatnonzero(draw_masks(len(train), 1, alpha, seed)[0]), retrain_seed(seed, 1, 0, 0))],
                                  on_done=on_retrain)[0]
        n_proxy = len({s.strategy for s in grid})
        plan = plan_for_budget(budget_s, first.seconds, n_settings=len(grid), n_proxy_settings=n_proxy,
                               elapsed_s=time.perf_counter() - t0, workers=workers, alpha=alpha, seed=seed,
                               min_subsets=min_subsets, max_subsets=max_subsets, max_seeds=max_seeds,
                               topk_queries=topk_queries,
                               topk_fraction=topk_fraction)
        plan_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(plan_file, json.dumps(asdict(plan)))
    # 3. the retrainings: subsets x seeds for LDS, then the removal checks
    n, nq = len(train), len(queries)
    masks = draw_masks(n, plan.subsets, plan.alpha, plan.seed)
    lds_jobs = [(np.flatnonzero(m), retrain_seed(plan.seed, 1, i, r)) for i, m in enumerate(masks)
                for r in range(plan.seeds)]
    checked = [s for s in grid if plan.topk_scope == "all" or s.damping.label == "heuristic"] if plan.topk_queries else []
    group = np.sort(np.random.default_rng([plan.seed, 7]).choice(nq, size=min(plan.topk_queries, nq), replace=False))
    k = max(1, math.ceil(plan.topk_fraction * n))
    removed = {s.label: top_k_union(scores[s.label], group, k) for s in checked}
    removal_seed = retrain_seed(plan.seed, 2)
    everyone = np.arange(n)
    size = round(float(np.mean([len(r) for r in removed.values()]))) if removed else 0
    random_sets = [np.random.default_rng([plan.seed, 3, j]).choice(n, size=size, replace=False)
                   for j in range(plan.random_removals)] if checked else []
    removal_jobs = ([(everyone, removal_seed)] + [(np.setdiff1d(everyone, r), removal_seed) for r in random_sets]
                    + [(np.setdiff1d(everyone, removed[s.label]), removal_seed) for s in checked]) if checked else []
    jobs = lds_jobs + removal_jobs
    unique = len({retrainer.key(m, s) for m, s in jobs})  # settings with the same top-k share a retraining
    with StepProgress("retraining", unique, unit="models", enabled=progress) as bar:
        records = retrainer.measure(jobs, on_done=on_retrain, progress=bar)
    values = np.stack([r.values for r in records]) if records else np.zeros((0, nq))
    measured = values[: len(lds_jobs)].reshape(plan.subsets, plan.seeds, nq).mean(axis=1) if plan.subsets else None
    # 4. the figures per setting, the choice, the run
    results, per_query = [], {}
    rem = values[len(lds_jobs):]
    for s in grid:
        r = SettingResult(s.strategy, s.damping.label, seconds=seconds[s.label])
        if measured is not None:
            fig = lds_with_ci(scores[s.label], masks, measured, n_boot=n_boot, seed=plan.seed, resample=resample)
            r.lds, r.ci_low, r.ci_high, r.n_defined = fig["lds"], fig["ci_low"], fig["ci_high"], fig["n_defined"]
            per_query[s.label] = fig["per_query"]
        if s in checked:
            j = 1 + len(random_sets) + checked.index(s)
            eff = removal_effects(scores[s.label], removed[s.label], group, rem[0], rem[j], rem[1 : 1 + len(random_sets)])
            r.topk_effect, r.sign_agreement, r.topk_removed = eff["topk_effect"], eff["sign_agreement"], eff["topk_removed"]
        results.append(r)
    chosen = select_setting(results)
    chosen_ensemble, member_files = 1, []
    if ensemble > 1 and measured is not None:  # the chosen setting as an ensemble (module doc)
        single = next(r for r in results if (r.strategy, r.damping) == chosen)
        setting = next(s for s in grid if (s.strategy, s.damping.label) == chosen)
        ts = time.perf_counter()
        members = retrainer.full_models(ensemble - 1, seed, skeleton)
        combined = ensemble_matrix([scores[setting.label]] + [
            setting_scores(store, m, task, train, queries, setting, batch_size=batch_size, seed=seed, device=device)
            for m, _ in members])
        fig = lds_with_ci(combined, masks, measured, n_boot=n_boot, seed=plan.seed, resample=resample)
        r = SettingResult(setting.strategy, setting.damping.label, fig["lds"], fig["ci_low"], fig["ci_high"],
                          seconds=single.seconds + time.perf_counter() - ts, n_defined=fig["n_defined"], ensemble=ensemble)
        results.append(r)
        scores[r.label], per_query[r.label] = combined, fig["per_query"]
        if r.lds is not None and single.lds is not None and r.lds > single.lds + ENSEMBLE_MARGIN:
            chosen_ensemble, member_files = ensemble, [p.name for _, p in members]
    selected_by = "lds" if plan.subsets else "topk_proxy"
    damping = next(s.damping for s in grid if s.strategy == chosen[0] and s.damping.label == chosen[1])
    config = {
        **identity, "request": request, "plan": asdict(plan), "n_train": n, "n_queries": nq,
        "topk": {"k": k, "queries": [queries.ids[i] for i in group], "random_removal_size": size,
                 "seed": removal_seed} if checked else None,
        "results": [r.as_dict() for r in results],
        "chosen": {"strategy": chosen[0], "damping": chosen[1], "engine": damping.engine_kwargs(),
                   "ensemble": chosen_ensemble, "ensemble_models": member_files},
        "selected_by": selected_by,
        "ci": f"{int(100 * 0.95)}% percentile bootstrap over {resample} ({n_boot} replicates)",
        "sign": "positive score = training on the sample lowered the query loss",
        "retrains": {"total": unique, "computed": retrainer.computed, "reused": unique - retrainer.computed},
        "seconds": time.perf_counter() - t0,
    }
    with store.run("validation", config=config, seed=seed, dataset=getattr(train, "dataset", None),
                   model_fingerprint=fingerprint, run_id=run_id):
        pass
    return ValidationResult(run_id, plan, results, chosen, selected_by, retrainer.computed, unique - retrainer.computed,
                            time.perf_counter() - t0, masks, measured, scores, per_query, chosen_ensemble)


def _read_back(store: stores.Store, run_id: str) -> ValidationResult:
    """A finished validation run as a :class:`ValidationResult` (without the matrices)."""
    cfg = store.get_run(run_id)["config"]
    results = [SettingResult(**r) for r in cfg["results"]]
    return ValidationResult(run_id, ValidationPlan(**cfg["plan"]), results,
                            (cfg["chosen"]["strategy"], cfg["chosen"]["damping"]), cfg["selected_by"],
                            seconds=cfg["seconds"], chosen_ensemble=cfg["chosen"].get("ensemble", 1))


def finished_validations(store: stores.Store, model_fingerprint: str,
                         train_fingerprint: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(run id, config) of every finished validation of this model (and training ids), newest first.

    ``train_fingerprint`` is :func:`attribution.keys.ids_fingerprint` of the training ids (None: any).
    """
    if not store.runs("validation").height:
        return []
    df = store.sql("SELECT run_id, config FROM runs WHERE kind = 'validation' AND status = 'finished' "
                   "AND model_fingerprint = ? ORDER BY created_at DESC", [model_fingerprint])
    runs = [(rid, json.loads(raw) if isinstance(raw, str) else raw) for rid, raw in df.iter_rows()]
    return [(rid, cfg) for rid, cfg in runs if train_fingerprint is None or cfg.get("train") == train_fingerprint]


def auto_setting(store: stores.Store, model_fingerprint: str, train_fingerprint: str | None = None) -> dict[str, Any] | None:
    """The setting the newest finished validation of this model (and training ids) chose, or None.

    ``{"strategy", "damping" (label), "engine" (EngineConfig fields), "run_id"}``; see
    :func:`finished_validations` for the arguments.
    """
    found = finished_validations(store, model_fingerprint, train_fingerprint)
    return {**found[0][1]["chosen"], "run_id": found[0][0]} if found else None


# ---------------------------------------------------------------------------------------- from the store
@dataclass
class ValidateRequest:
    """One ``curation validate`` request: the data, the model, the grid, the budget and how to retrain."""

    train: str
    queries: str
    model: Path
    task: str = "classifier"
    tokenizer: Path | None = None
    features: list[str] | None = None
    label_field: str = "label"
    max_length: int | None = None
    strategies: list[str] = field(default_factory=lambda: ["identity", "diagonal", "kfac", "ekfac", "ekfac_cg"])
    dampings: list[str] = field(default_factory=lambda: ["auto"])
    budget_s: float = 600.0
    recipe: str | None = None  # "mlp" | "lm"; None: the built-in one for the model
    recipe_settings: dict[str, str] = field(default_factory=dict)
    train_command: str | None = None
    subsets: int | None = None
    seeds: int = 1
    max_subsets: int = 100  # budget planning: at most this many subsets
    max_seeds: int = 5  # budget planning: at most this many seeds per subset
    alpha: float = 0.5
    topk_queries: int = 8
    topk_fraction: float = 0.02
    workers: int = 0
    seed: int = 0
    batch_size: int = 32
    ensemble: int = 1  # > 1: also judge the chosen setting averaged over this many models


TASK_NAMES = {"classifier": "classifier", "regression": "regression", "lm": "causal-lm", "causal-lm": "causal-lm"}


def run_validate(store: stores.Store, req: ValidateRequest, *, progress: bool = False) -> ValidationResult:
    """Load the model and datasets of ``req`` from the store, check the request, and :func:`validate`.

    Every option is checked before any work: the task, the grid, the datasets (unknown or empty),
    the model folder, the recipe or command; errors name the option at fault.
    """
    from .unlearning import load_model_and_train, load_more_samples

    task = TASK_NAMES.get(req.task)
    if task is None:
        raise ValidationRequestError(f"--task {req.task}: expected classifier, regression or lm")
    settings_grid(req.strategies, parse_dampings(req.dampings))  # fails now on an unknown strategy or damping
    if req.recipe is not None and req.train_command is not None:
        raise ValidationRequestError("give --recipe or --train-command, not both")
    if req.recipe not in (None, "mlp", "lm"):
        raise ValidationRequestError(f"--recipe {req.recipe}: expected mlp or lm (or --train-command)")
    if req.recipe is not None and (req.recipe == "lm") != (task == "causal-lm"):
        raise ValidationRequestError(f"--recipe {req.recipe} does not train a {task} model")
    plan = None if req.subsets is None else ValidationPlan(req.subsets, req.seeds, req.alpha, req.seed,
                                                           topk_queries=req.topk_queries, topk_fraction=req.topk_fraction)
    for name, what in ((req.train, "--train"), (req.queries, "--queries")):
        if store.dataset_info(name)["n_samples"] == 0:
            raise ValidationRequestError(f"{what} {name}: the dataset has no samples")
    loaded = load_model_and_train(store, req.train, req.model, task, tokenizer=req.tokenizer, features=req.features,
                                  label_field=req.label_field, max_length=req.max_length)
    queries = load_more_samples(store, req.queries, loaded, req.label_field)
    command = recipe = None
    if req.train_command is not None:
        command = TrainingCommand(req.train_command, "causal-lm" if task == "causal-lm" else "mlp")
    else:
        recipe = builtin_recipe(loaded, req.recipe_settings)
        if recipe is None:
            raise ValidationRequestError(f"--model {req.model}: no built-in recipe retrains this architecture; "
                                         "give --train-command")
    return validate(store, loaded.net, loaded.task, loaded.train, queries, recipe=recipe, command=command,
                    strategies=req.strategies, dampings=req.dampings, budget_s=req.budget_s, plan=plan,
                    alpha=req.alpha, seed=req.seed, workers=req.workers, topk_queries=req.topk_queries,
                    topk_fraction=req.topk_fraction, max_subsets=req.max_subsets, max_seeds=req.max_seeds,
                    batch_size=req.batch_size, progress=progress, ensemble=req.ensemble)


def builtin_recipe(loaded: Any, settings: dict[str, str]) -> Any:
    """The built-in recipe for a loaded model (MLP, or GPT-2), ``settings`` (``--set KEY=VALUE``) overriding
    its defaults; None for an architecture without one. Set what the original training used (e.g.
    ``epochs``, ``lr``, or ``steps`` for a GPT-2): validation retrains with exactly this recipe."""
    from .unlearning import make_recipe

    return make_recipe(loaded, settings, option="--set")


__all__ = ["ValidateRequest", "ValidationBudgetError", "builtin_recipe", "ValidationPlan", "ValidationResult", "auto_setting", "finished_validations",
           "plan_for_budget", "run_validate", "validate"]
