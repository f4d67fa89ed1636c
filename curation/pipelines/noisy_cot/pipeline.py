"""The noisy chain-of-thought pipeline: train on noisy traces, find them, curate, retrain, measure.

Steps (each reuses its result when re-run with the same inputs, so a killed run resumes):
1. data: generated TInt traces with planted dynamic/static noise and two noise-free splits that
   no training trace shares, *dev* (failing queries, the budget choice) and *test* (only ever
   used to report), or the user's own store datasets (see :mod:`.data`);
2. train a small GPT-2 from scratch on the training traces; greedy accuracy on dev and test;
3. evidence on that model: self-influence (EK-FAC), completion loss, random, and influence on
   the model's own *wrong* answers to dev problems;
4. the noisy-CoT filter flags traces; with ``filter.budget: dev`` the budget is the fraction of
   ``budget_grid`` whose retrained model is most accurate on dev (0, keep everything, unless
   curation helps), which needs no knowledge of how much of the data is bad;
5. detection against the planted truth (when the data has it), from real flags runs at that
   budget: one per evidence alone and one for the combined filter;
6. the curated dataset and its model on test, against a model trained on the clean traces only
   (when the truth says which those are): the gap recovered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

import stores
from attribution.baselines import loss_scores, random_scores
from attribution.data import completion_samples
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.keys import short_digest
from attribution.models import load_causal_lm, load_tokenizer, quiet_transformers
from attribution.tasks import CausalLMTask
from filters import Budget, Filter, NoisyCoTFilter, SelfScoreFilter
from stores.curate import curate

from ...evaluation import gap_recovered
from ...steps.attribute import top_pusher_token_scores
from ...steps.curate import curate_flagged
from ...steps.detection import detection_table, evidence_scores, flags_scores, noise_truth
from ...steps.evaluate import SplitAccuracy, greedy_accuracy
from ...steps.records import generated_key, ingest_records
from ...steps.train import LMConfig, train_or_reuse
from .config import NoisyCoTConfig
from .data import Splits, pipeline_tokenizer, prepare_splits


@dataclass
class NoisyCoTResult:
    """Everything the pipeline measured, plus where its outputs are in the store.

    ``accuracy`` is on the test split; ``budgets`` lists, per candidate budget, the dev and test
    accuracy of the model retrained on the data curated at it (test is recorded, never used to
    choose); ``detection[kind][method]`` holds AUROC and the precision/recall of that method's
    flags run at the chosen budget, for kinds ``dynamic``, ``static`` and ``overall`` (empty
    when the data carries no planted truth).
    """

    accuracy: dict[str, float] = field(default_factory=dict)
    dev_accuracy: dict[str, float] = field(default_factory=dict)
    budget: float = 0.0
    budgets: list[dict[str, Any]] = field(default_factory=list)
    detection: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    n_flagged: int = 0
    recovery: dict[str, float] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    flag_runs: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    store: str = ""


class NoisyCoTPipeline:
    """Runs the steps of the noisy-CoT experiment on one store (see the module docstring)."""

    def __init__(self, store: stores.Store, config: NoisyCoTConfig, console: Console | None = None,
                 progress: bool = False):
        self.store = store
        self.cfg = config
        self.console = console or Console(quiet=True)
        self.progress = progress
        self.lm_cfg = LMConfig(**config.model.model_dump())
        self.result = NoisyCoTResult(store=str(store.root))
        self.splits: Splits | None = None
        self._tokenizer: tuple[Any, tuple[str, ...]] | None = None
        quiet_transformers()

    def say(self, text: str) -> None:
        """Print a step line."""
        self.console.print(text, soft_wrap=True)

    # ---------------------------------------------------------------- data, models, accuracy
    @property
    def tokenizer(self):
        """The tokenizer every model of this run is trained with (see :func:`.data.pipeline_tokenizer`)."""
        if self._tokenizer is None:
            self._tokenizer = pipeline_tokenizer(self.store, self.cfg, self.splits)
        return self._tokenizer[0]

    def ensure_model(self, dataset: str) -> Path:
        """Train (or reuse) a GPT-2 on ``dataset`` (see :func:`curation.steps.train.train_or_reuse`)."""
        t0 = time.perf_counter()
        tok = self.tokenizer
        folder = train_or_reuse(self.store, dataset, tok, self.lm_cfg, self.cfg.seed, extra_key=self._tokenizer[1],
                                progress=self.progress, say=self.say)
        self.result.seconds.setdefault(f"train_{dataset}", time.perf_counter() - t0)
        return folder

    def split_accuracy(self, folder: Path, split: str | None = None) -> SplitAccuracy:
        """Greedy accuracy of a model on a split (default: test), answers found by the config's pattern."""
        return greedy_accuracy(self.store, folder, self.tokenizer, split or self.splits.test,
                               max_length=self.lm_cfg.max_length, answer_field=self.cfg.data.answer_field,
                               pattern=self.cfg.data.answer_pattern)

    # ---------------------------------------------------------------- evidence
    def evidence(self, train_name: str, folder: Path, dev: SplitAccuracy | None) -> dict[str, str]:
        """Self-influence, loss, random and failing-query influence runs on the noisy model.

        The failing queries are the model's wrong greedy answers on the **dev** split (the test
        split stays unseen); without a dev split there is no failing-query evidence.
        """
        a = self.cfg.attribution
        tok = load_tokenizer(folder)
        model = load_causal_lm(folder)
        task = CausalLMTask(model)
        train = completion_samples(self.store, train_name, tok, self.lm_cfg.max_length)
        engine = InfluenceEngine(self.store, model, task, EngineConfig(
            strategy=a.strategy, damping=a.damping, batch_size=a.batch_size, shard_size=1024, seed=self.cfg.seed),
            executor=self.cfg.executor.make())
        runs = {}
        t0 = time.perf_counter()
        runs["self_influence"] = engine.self_scores(train, progress=self.progress).run_id
        self.result.seconds["self_influence"] = time.perf_counter() - t0
        runs["loss"] = loss_scores(self.store, model, task, train).run_id
        runs["random"] = random_scores(self.store, train, seed=self.cfg.seed).run_id
        failing = [] if dev is None else list(np.flatnonzero(~dev.correct))[: a.max_failing_queries]
        if not failing:
            return runs
        fail_name = self.failing_answers(train_name, folder, dev, failing)
        behaviour = f"{train_name}-wrong-answers"
        self.store.add_behaviour(behaviour, fail_name, "completion_nll",
                                 description="the model's own wrong answers to failing dev problems", replace=True)
        queries = completion_samples(self.store, fail_name, tok, self.lm_cfg.max_length)
        t0 = time.perf_counter()
        runs["query_push"] = engine.pairwise_scores(behaviour, train, queries, progress=self.progress).run_id
        # per-token scores of each wrong answer's top 3 pushers: which tokens did the pushing (reports)
        runs["token_scores"] = top_pusher_token_scores(engine, behaviour, train, queries, runs["query_push"], 3, tok,
                                                       max_samples=60).run_id
        self.result.seconds["query_influence"] = time.perf_counter() - t0
        return runs

    def failing_answers(self, train_name: str, folder: Path, dev: SplitAccuracy, failing: list[int]) -> str:
        """The dataset of the model's wrong dev answers (prompt + its own completion), written once."""
        prompts = self.store.read_samples(self.splits.dev, columns=["prompt"])["prompt"]
        rows = [{"prompt": prompts[int(i)], "completion": dev.completions[int(i)]} for i in failing]
        name = f"{train_name}_failures"
        key = short_digest([r["prompt"] + r["completion"] for r in rows])
        if generated_key(self.store, name) != key:
            ingest_records(self.store, {name: rows}, config={"generator": "failing-answers", "key": key,
                                                             "split": self.splits.dev, "model": folder.name},
                           replace=True)
        return name

    # ---------------------------------------------------------------- filters and curation
    def combined_filter(self, runs: dict[str, str], budget: float) -> NoisyCoTFilter:
        """The noisy-CoT filter on this run's evidence with the config's weights."""
        return NoisyCoTFilter(self_influence_run=runs["self_influence"], loss_run=runs["loss"],
                              query_run=runs.get("query_push"), weights=self.cfg.filter.weights or None,
                              budget=Budget(fraction=budget))

    def method_filters(self, runs: dict[str, str], budget: float) -> dict[str, Filter]:
        """One filter per evidence alone, and the combined filter, all at the same budget."""
        b = Budget(fraction=budget)
        out: dict[str, Filter] = {
            "random": SelfScoreFilter(runs["random"], evidence="random", budget=b),
            "loss": SelfScoreFilter(runs["loss"], evidence="loss", unit="nats", budget=b),
            "self_influence": SelfScoreFilter(runs["self_influence"], evidence="self_influence", budget=b),
        }
        if "query_push" in runs:
            out["query_push"] = NoisyCoTFilter(query_run=runs["query_push"], weights={"query_push": 1.0}, budget=b)
        out["combined"] = self.combined_filter(runs, budget)
        return out

    def curate_flagged(self, train_name: str, flags_run: str) -> str:
        """The training set minus a flags run's flagged traces (see :func:`curation.steps.curate.curate_flagged`)."""
        return curate_flagged(self.store, self.cfg.name, train_name, flags_run)

    def choose_budget(self, train_name: str, runs: dict[str, str], noisy_dev: float, noisy_test: float) -> float:
        """Pick the flag budget by dev accuracy of the retrained model (see the module docstring).

        Every candidate's dev and test accuracy goes to ``result.budgets``; the choice looks at
        dev only. Ties go to the smaller budget; 0 (keep everything) wins unless a curated model
        is strictly more accurate on dev than the uncurated one.
        """
        f, r = self.cfg.filter, self.result
        r.budgets = [{"budget": 0.0, "dev_acc": noisy_dev, "test_acc": noisy_test, "flags_run": None}]
        if f.budget != "dev":
            return float(f.budget)
        self.say(f"  choosing the budget on {self.splits.dev}: retrain at each of "
                 + ", ".join(f"{b:.0%}" for b in f.budget_grid))
        for b in f.budget_grid:
            frun = self.combined_filter(runs, b).run(self.store, train_name, seed=self.cfg.seed)
            name = self.curate_flagged(train_name, frun.run_id)
            folder = self.ensure_model(name)
            dev_acc, test_acc = self.split_accuracy(folder, self.splits.dev).accuracy, self.split_accuracy(folder).accuracy
            r.budgets.append({"budget": b, "dev_acc": dev_acc, "test_acc": test_acc, "flags_run": frun.run_id,
                              "curated": name})
            self.say(f"    budget {b:.0%}: dev accuracy {dev_acc:.1%}")
        best = max(r.budgets, key=lambda row: (row["dev_acc"], -row["budget"]))
        return float(best["budget"])

    def detection(self, train_name: str, runs: dict[str, str], flag_runs: dict[str, str]) -> dict:
        """AUROC and the precision/recall of each method's actual flags, per noise kind and overall.

        See :mod:`curation.steps.detection` for which traces count per kind. Empty when the
        training set has no planted truth.
        """
        truth = noise_truth(self.store, train_name)
        if truth is None:
            return {}
        scores = evidence_scores(self.store, {**runs, "flags": flag_runs["combined"]}, truth.sample_ids)
        flagged = {m: flags_scores(self.store, rid, truth.sample_ids)[0] for m, rid in flag_runs.items()}
        return detection_table(truth, scores, flagged)

    # ---------------------------------------------------------------- the whole thing
    def execute(self) -> NoisyCoTResult:
        """All steps; returns the measured figures (also recorded as a finished ``pipeline`` run)."""
        c, r = self.cfg, self.result
        t_start = time.perf_counter()
        self.splits = s = prepare_splits(self.store, c)
        r.datasets |= {"train": s.train, "test": s.test} | ({"dev": s.dev} if s.dev else {})
        self.say(f"[bold]1. data[/] {self.describe_data()}")

        self.say("[bold]2. train on the noisy traces[/]")
        noisy_dir = self.ensure_model(s.train)
        test = self.split_accuracy(noisy_dir)
        dev = self.split_accuracy(noisy_dir, s.dev) if s.dev else None
        r.accuracy["noisy"] = test.accuracy
        r.dev_accuracy["noisy"] = dev.accuracy if dev else float("nan")
        self.say(f"  test accuracy (greedy, {len(test.correct)} held-out problems): {test.accuracy:.1%}; "
                 f"dev {r.dev_accuracy['noisy']:.1%}")

        self.say("[bold]3. evidence[/]: self-influence, loss, random, influence on failing dev answers")
        runs = self.evidence(s.train, noisy_dir, dev)
        r.runs |= runs

        self.say("[bold]4. filter[/]")
        r.budget = self.choose_budget(s.train, runs, r.dev_accuracy["noisy"], test.accuracy)
        self.say(f"  budget {r.budget:.0%}" + (" (chosen on dev)" if c.filter.budget == "dev" else " (fixed)"))
        # the combined filter's run at the chosen budget already exists when the budget came from the grid
        chosen = {row["budget"]: row["flags_run"] for row in r.budgets if row["flags_run"]}.get(r.budget)
        for method, f in self.method_filters(runs, r.budget).items():
            reuse = method == "combined" and chosen
            r.flag_runs[method] = chosen if reuse else f.run(self.store, s.train, seed=c.seed).run_id
        r.runs["flags"] = r.flag_runs["combined"]
        r.detection = self.detection(s.train, runs, r.flag_runs)
        r.n_flagged = int(self.store.read_flags(r.runs["flags"])["flagged"].sum())
        curated = r.datasets["curated"] = self.curate_flagged(s.train, r.runs["flags"])
        kept = self.store.dataset_info(curated)["n_samples"]
        self.say(f"  flagged {r.n_flagged} of {kept + r.n_flagged}; curated dataset {curated}: "
                 f"kept {kept}, dropped {r.n_flagged}")

        self.say("[bold]5. retrain[/] on the curated traces (same seed and steps)")
        curated_dir = self.ensure_model(curated)
        r.accuracy["curated"] = self.split_accuracy(curated_dir).accuracy
        if s.dev:
            r.dev_accuracy["curated"] = self.split_accuracy(curated_dir, s.dev).accuracy
        if c.clean_reference and s.has_truth:
            self.clean_reference(s.train)
        r.seconds["total"] = time.perf_counter() - t_start
        with self.store.run("pipeline", config={"pipeline": "noisy_cot", "config": c.model_dump(),
                                                "accuracy": r.accuracy, "dev_accuracy": r.dev_accuracy,
                                                "budget": r.budget, "budgets": r.budgets, "recovery": r.recovery,
                                                "detection": r.detection, "n_flagged": r.n_flagged,
                                                "runs": r.runs, "flag_runs": r.flag_runs,
                                                "datasets": r.datasets},
                            seed=c.seed, dataset=s.train) as handle:
            r.runs["pipeline"] = handle.id
        return r

    def describe_data(self) -> str:
        """One line on the training set (noise counts when it has the truth) and the held-out splits."""
        s = self.splits
        held = f"dev {self.store.dataset_info(s.dev)['n_samples']} and " if s.dev else ""
        held += f"test {self.store.dataset_info(s.test)['n_samples']} held-out problems"
        if not s.has_truth:
            return f"{s.train}: {self.store.dataset_info(s.train)['n_samples']} traces (no planted truth); {held}"
        counts = self.store.sql("SELECT noise, trace_changed, count(*) AS n FROM samples WHERE dataset = ? "
                                "GROUP BY ALL ORDER BY ALL", [s.train])
        return f"{s.train}: " + ", ".join(
            f"{n} {k}{'' if ch or k == 'clean' else ' (unchanged by noise)'}" for k, ch, n in counts.iter_rows()
        ) + f"; {held}"

    def clean_reference(self, train_name: str) -> None:
        """Train on the clean traces only (by the planted truth) and record the gap curation recovers."""
        r = self.result
        clean = f"{self.cfg.name}_clean_only"
        curate(self.store, clean, train_name, flag_runs=[], where="noise = 'clean' OR NOT trace_changed", replace=True)
        r.datasets["clean_only"] = clean
        r.accuracy["clean_only"] = self.split_accuracy(self.ensure_model(clean)).accuracy
        r.recovery = {"noisy_acc": r.accuracy["noisy"], "curated_acc": r.accuracy["curated"],
                      "clean_acc": r.accuracy["clean_only"], "budget": r.budget,
                      "gap_recovered": gap_recovered(r.accuracy["noisy"], r.accuracy["curated"],
                                                     r.accuracy["clean_only"])}


def execute(store: stores.Store, config: NoisyCoTConfig, console: Console | None = None,
            progress: bool = False) -> NoisyCoTResult:
    """Run the noisy-CoT pipeline on ``store`` (the entry point ``curation run`` dispatches to)."""
    return NoisyCoTPipeline(store, config, console, progress=progress).execute()
