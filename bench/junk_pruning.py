"""Data pruning by value on digits (clean and with 20% flipped labels) and on TInt traces: every score against random.

Digits, per seed: scikit-learn's digits split into 1,200 training, 297 validation and 300 test
images; for ``digits_noisy20`` 20% of the training labels are replaced by another class (the
validation and test labels stay clean). Value scores (:mod:`curation.steps.value`: EL2N, GraNd,
forgetting events, self-influence, influence on the validation loss, random) are computed on the
training set with the built-in MLP recipe; :class:`filters.prune.PruneFilter` drops 10/30/50/70%
of it; the model is retrained from the same seed with the same number of SGD steps (more epochs
over fewer samples) and its test accuracy is reported, with the full-data model's beside it.

TInt (``tint``), per seed: ``TINT["n_train"]`` TInt traces of add and sub on 2-digit numbers
(:func:`curation.datasets.tint.generate_tint`) with modest dynamic noise: ``dynamic_rate`` 0.2
(20% of the traces computed with propagating errors at ``p_dyn`` 0.2; at 2 digits only about 4% of
all traces end up different from their clean trace, about 4% with a wrong answer), and a noise-free
validation and test split of distinct problems (:func:`~curation.datasets.tint.generate_tint_test`,
excluding the training prompts; validation and test are disjoint). A small GPT-2
(:class:`~curation.actions.recipes.LMRecipe`, character tokenizer
:func:`~curation.steps.train.trace_tokenizer`, loss on the completion tokens only) is trained on
the traces; the same value scores are computed for the LM (EL2N and GraNd over the completion
tokens of models early in the schedule, forgetting events checked every few steps, self- and
validation influence with the engine's ``CausalLMTask``); pruning keeps the steps of the schedule
the same (``LMConfig.steps``: same seed, same steps, more passes over fewer traces). Accuracy is
the greedy answer accuracy on the test problems (:func:`~curation.steps.train.greedy_complete`,
:func:`~curation.steps.evaluate.answers_correct`). To fit the time budget the ends of the TInt
scores are chosen at ``TINT_SELECT_FRACTIONS`` only (recorded as ``select_fractions``).

The junk score of the issue does not apply here (digits and TInt traces are not web text): the
junk filter's scores are measured by the dose-response benchmark instead.

Which end of each score to prune (``low`` or ``high``) is chosen per dataset on the selection seed
(``--select-seed``) by validation accuracy averaged over the fractions; the reported seeds choose
nothing. ``--datasets`` runs a subset. ``--jobs N`` runs the datasets' selections, then every
reported seed and dataset, in N spawned worker processes of one torch thread each (same numbers as
``--jobs 1``). Writes the ``pruning`` part of bench/results/junk.json,
keeping the file's other parts and the other datasets' cells of the part (each cell records the
provenance of the run that wrote it), and the full record to junk_pruning.json (all datasets) or
junk_pruning_<datasets>.json (a subset).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    add_seed_args,
    machine_info,
    mean_sd,
    merge_part,
    now_iso,
    print_table,
    reported_seeds,
    require_clean_tree,
    write_result,
)

import stores  # noqa: E402
from attribution.data import completion_samples, tabular_samples  # noqa: E402
from curation.actions.recipes import LMRecipe, MLPRecipe  # noqa: E402
from curation.steps.records import ingest_records  # noqa: E402
from curation.steps.value import VALUE_SCORES, value_score_runs  # noqa: E402
from filters.prune import PRUNE_ENDS, PruneFilter  # noqa: E402

DIGITS = {"digits_clean": 0.0, "digits_noisy20": 0.2}
DATASETS = (*DIGITS, "tint")
FRACTIONS = (0.1, 0.3, 0.5, 0.7)
RECIPE = dict(n_in=64, hidden=(128, 64), n_out=10, epochs=40, lr=0.05)
FEATURES = [f"f{j}" for j in range(64)]

# TInt: the noisy-CoT pipeline's model and schedule (examples/noisy_cot.yaml, max_length cut to the
# <= 55-character traces). Measured on 2 shared cores, 1 thread, seed 0: these settings reach 0.86
# full-data test accuracy in 299 s (78-160 ms per step as the load varied). The whole tint part (86
# trainings + 4 value-score runs) has not been run: an estimate, not a measurement, from one
# training's time is several hours, far beyond the 20 minutes first planned; shorter
# schedules stayed near chance (2,000 traces: 300-1,800 steps gave 0.005-0.25; a 20-minute budget
# allows about 200 steps per training).
TINT = dict(n_train=3000, n_val=200, n_test=300, functions=("add", "sub"), min_digits=2, max_digits=2,
            dynamic_rate=0.2, p_dyn=0.2)
TINT_LM = dict(n_layer=2, n_embd=64, n_head=4, steps=2000, batch_size=32, lr=3e-3, max_length=64)
TINT_VALUE = dict(n_models=2, early_steps=200, forget_every=100)
TINT_SELECT_FRACTIONS = (0.5,)
#: --quick: tiny settings that only check the script runs end to end (figures meaningless)
QUICK = {"recipe": dict(RECIPE, epochs=3), "early_epochs": 2,
         "tint": dict(TINT, n_train=48, n_val=12, n_test=16),
         "tint_lm": dict(TINT_LM, n_layer=1, n_embd=16, n_head=2, steps=10, batch_size=8, lr=3e-3),
         "tint_value": dict(n_models=2, early_steps=3, forget_every=5)}
DEFAULT = {"recipe": RECIPE, "early_epochs": 5, "tint": TINT, "tint_lm": TINT_LM, "tint_value": TINT_VALUE}


class DigitsSetting:
    """One seed and dataset: the (noisy) training set in a store, validation and test arrays."""

    select_fractions = FRACTIONS

    def __init__(self, seed: int, dataset: str, root: Path, settings: dict[str, Any] = DEFAULT):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        perm = np.random.default_rng(seed).permutation(len(x))
        x, y = x[perm], y[perm]
        noise = np.random.default_rng([seed, 7919])  # its own stream: not the random baseline's
        flip = noise.random(1200) < DIGITS[dataset]
        labels = np.where(flip, (y[:1200] + noise.integers(1, 10, 1200)) % 10, y[:1200])
        self.store = stores.open(root / f"{dataset}-{seed}", create=True)
        rows = [{"row": i, **dict(zip(FEATURES, map(float, x[i]), strict=True)), "label": int(labels[i])}
                for i in range(1200)]
        val = [{"row": 1200 + i, **dict(zip(FEATURES, map(float, x[1200 + i]), strict=True)), "label": int(y[1200 + i])}
               for i in range(297)]
        ingest_records(self.store, {"train": rows, "val": val}, config={"generator": "digits", "seed": seed,
                                                                        "flip": DIGITS[dataset]}, roles={})
        self.train, _ = tabular_samples(self.store, "train", FEATURES, "label")
        self.val, _ = tabular_samples(self.store, "val", FEATURES, "label")
        self.splits = {"val": (x[1200:1497], y[1200:1497]), "test": (x[1497:], y[1497:])}
        self.seed = seed
        self.recipe = MLPRecipe(**settings["recipe"])
        t0 = time.perf_counter()
        self.values = value_score_runs(self.store, self.train, self.recipe, validation=self.val, seed=seed,
                                       early_epochs=settings["early_epochs"])
        self.value_seconds = time.perf_counter() - t0

    def accuracy(self, model, split: str) -> float:
        x, y = self.splits[split]
        with torch.no_grad():
            return float((model(torch.tensor(x)).argmax(1).numpy() == y).mean())

    def keep(self, score: str, fraction: float, end: str) -> list[int]:
        """Indices of the training samples :class:`PruneFilter` keeps."""
        flags = PruneFilter(self.values.runs[score], fraction, prune=end).run(self.store, "train", seed=self.seed).flags
        drop = set(np.asarray(flags.sample_ids)[np.asarray(flags.flagged)])
        return [i for i, s in enumerate(self.train.ids) if s not in drop]

    def pruned_model(self, score: str, fraction: float, end: str):
        """Retrain on what :class:`PruneFilter` keeps: same seed, same number of SGD steps."""
        keep = self.keep(score, fraction, end)
        epochs = max(1, round(self.recipe.epochs * len(self.train) / len(keep)))
        recipe = dataclasses.replace(self.recipe, epochs=epochs)
        sub = self.train.subset(keep)
        return recipe.fit(recipe.fresh(self.seed), sub.data, self.seed)


class TintSetting(DigitsSetting):
    """One seed of TInt traces: training traces in a store, noise-free validation and test problems."""

    select_fractions = TINT_SELECT_FRACTIONS

    def __init__(self, seed: int, dataset: str, root: Path, settings: dict[str, Any] = DEFAULT):
        from curation.datasets.tint import generate_tint, generate_tint_test, records_table
        from curation.datasets.tint_traces import CHARSET
        from curation.steps.train import LMConfig, trace_tokenizer

        t = dict(settings["tint"])
        n_train, n_val, n_test = t.pop("n_train"), t.pop("n_val"), t.pop("n_test")
        train = generate_tint(n_train, seed=seed, **t)
        held = generate_tint_test(n_val + n_test, seed=seed, functions=t["functions"], min_digits=t["min_digits"],
                                  max_digits=t["max_digits"], exclude_prompts=[r["prompt"] for r in train])
        self.store = stores.open(root / f"{dataset}-{seed}", create=True)
        ingest_records(self.store, {"train": train, "val": held[:n_val]},
                       config={"generator": "tint", "seed": seed, **settings["tint"]}, to_table=records_table)
        self.tokenizer = trace_tokenizer(CHARSET)
        self.recipe = LMRecipe(self.tokenizer, LMConfig(**settings["tint_lm"]))
        length = self.recipe.lm.max_length
        self.train = completion_samples(self.store, "train", self.tokenizer, length)
        self.val = completion_samples(self.store, "val", self.tokenizer, length)
        self.splits = {"val": held[:n_val], "test": held[n_val:]}
        self.seed = seed
        self.noise = {"dynamic": sum(r["noise"] == "dynamic" for r in train) / n_train,
                      "trace_changed": sum(r["trace_changed"] for r in train) / n_train,
                      "answer_wrong": sum(not r["answer_correct"] for r in train) / n_train}
        t0 = time.perf_counter()
        self.values = value_score_runs(self.store, self.train, self.recipe, validation=self.val, seed=seed,
                                       **settings["tint_value"])
        self.value_seconds = time.perf_counter() - t0
        self.train_seconds: list[float] = []

    def accuracy(self, model, split: str) -> float:
        from curation.steps.evaluate import answers_correct
        from curation.steps.train import greedy_complete

        recs = self.splits[split]
        outs = greedy_complete(model, self.tokenizer, [r["prompt"] for r in recs], self.recipe.lm.max_length)
        return float(answers_correct(outs, [r["true_answer"] for r in recs]).mean())

    def pruned_model(self, score: str, fraction: float, end: str):
        """Retrain on what :class:`PruneFilter` keeps: same seed, same steps (``LMConfig.steps``)."""
        sub = self.train.subset(self.keep(score, fraction, end))
        t0 = time.perf_counter()
        model = self.recipe.fit(self.recipe.fresh(self.seed), sub.data, self.seed)
        self.train_seconds.append(time.perf_counter() - t0)
        return model


SETTINGS = {"digits_clean": DigitsSetting, "digits_noisy20": DigitsSetting, "tint": TintSetting}


def n_trainings(dataset: str, n_seeds: int) -> int:
    """Retrainings of one dataset: ends chosen on the selection seed, then every score and fraction per seed."""
    cls = SETTINGS[dataset]
    scored = len(VALUE_SCORES) - 1  # random prunes from one end
    return scored * len(PRUNE_ENDS) * len(cls.select_fractions) + n_seeds * len(VALUE_SCORES) * len(FRACTIONS)


def select_job(seed: int, dataset: str, root: Path, settings: dict[str, Any], n_seeds: int,
               jobs: int = 1) -> dict[str, Any]:
    """The end of each score to prune for ``dataset`` on ``seed``'s validation split (a worker process's job).

    Returns a plain dict: ``ends``, ``scores`` (validation accuracy per end) and ``seconds``.
    """
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    s = SETTINGS[dataset](seed, dataset, root, settings)
    chosen: dict[str, str] = {}
    scores: dict[str, Any] = {}
    for score in VALUE_SCORES:
        if score == "random":
            chosen[score] = "low"
            continue
        by_end = {}
        for end in PRUNE_ENDS:
            by_end[end] = float(np.mean([s.accuracy(s.pruned_model(score, f, end), "val")
                                         for f in s.select_fractions]))
            if isinstance(s, TintSetting) and not scores and end == PRUNE_ENDS[0]:  # the first ones
                one = float(np.mean(s.train_seconds))
                n_select = n_trainings(dataset, 0)
                per_seed = len(VALUE_SCORES) * len(FRACTIONS)
                total = n_trainings(dataset, n_seeds) * one + (1 + n_seeds) * s.value_seconds
                wall = (n_select * one + s.value_seconds
                        + -(-n_seeds // max(1, jobs)) * (per_seed * one + s.value_seconds))
                print(f"  {dataset}: one training {one:.1f} s, value scores {s.value_seconds:.0f} s; estimated "
                      f"{dataset} total {total / 60:.1f} min ({n_trainings(dataset, n_seeds)} trainings + "
                      f"{1 + n_seeds} x value scores, decoding not counted), about {wall / 60:.1f} min of wall "
                      f"time with --jobs {jobs}", flush=True)
        scores[score] = by_end
        chosen[score] = max(by_end, key=lambda e: (by_end[e], e == "low"))
    seconds: dict[str, Any] = {"select": time.perf_counter() - t0, "value_seconds": float(s.value_seconds)}
    if isinstance(s, TintSetting):
        seconds["per_training"] = [float(x) for x in s.train_seconds]
    print(f"  selected ends for {dataset}: {chosen}", flush=True)
    return {"dataset": dataset, "ends": chosen, "scores": scores, "seconds": seconds}


def seed_job(seed: int, dataset: str, root: Path, ends: dict[str, str], settings: dict[str, Any]) -> dict[str, Any]:
    """One reported seed of one dataset end to end (a worker process's job); returns a plain dict."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    s = SETTINGS[dataset](seed, dataset, root, settings)
    cell: dict[str, Any] = {"full_accuracy": s.accuracy(s.values.model, "test"), "value_seconds": float(s.value_seconds)}
    if isinstance(s, TintSetting):
        cell["value_seconds_by_score"] = {k: float(v) for k, v in s.values.seconds.items()}
        cell["noise"] = s.noise
    for f in FRACTIONS:
        cell[str(f)] = {score: {"accuracy": s.accuracy(s.pruned_model(score, f, ends[score]), "test")}
                        for score in VALUE_SCORES}
    seconds: dict[str, Any] = {"seed": time.perf_counter() - t0, "value_seconds": float(s.value_seconds)}
    if isinstance(s, TintSetting):
        seconds["per_training"] = [float(x) for x in s.train_seconds]
    best = {str(f): max(VALUE_SCORES, key=lambda k, f=f: cell[str(f)][k]["accuracy"]) for f in FRACTIONS}
    print(f"  seed {seed} {dataset}: full {cell['full_accuracy']:.3f}; best per fraction {best}", flush=True)
    return {"seed": seed, "dataset": dataset, "cell": cell, "seconds": seconds}


def run_jobs(fn: Any, jobs: list[tuple], n: int) -> list[dict[str, Any]]:
    """``fn(*job)`` for every job, in order: in ``n`` spawned worker processes (one thread each) when ``n`` > 1."""
    if n > 1 and len(jobs) > 1:  # spawned, not forked: no forked torch state
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(n, len(jobs))) as pool:
            out = pool.starmap(fn, jobs)
            pool.close()
            pool.join()
        return out
    return [fn(*job) for job in jobs]


def select(seed: int, root: Path, datasets: list[str], settings: dict[str, Any], n_seeds: int,
           seconds: dict[str, dict[str, Any]], jobs: int = 1) -> dict[str, Any]:
    """The end of each score to prune, per dataset, on ``seed``'s validation split (datasets in parallel)."""
    results = run_jobs(select_job, [(seed, d, root, settings, n_seeds, jobs) for d in datasets], jobs)
    for r in results:
        dataset, sec = r["dataset"], r["seconds"]
        seconds[dataset]["select"] = sec["select"]
        seconds[dataset]["value_scores"][str(seed)] = sec["value_seconds"]
        if "per_training" in sec:
            seconds[dataset]["per_training"] = list(sec["per_training"])
    return {"seed": seed, "split": "val", "criterion": "validation accuracy averaged over the fractions",
            "fractions": {d: list(SETTINGS[d].select_fractions) for d in datasets},
            "ends": {r["dataset"]: r["ends"] for r in results}, "scores": {r["dataset"]: r["scores"] for r in results}}


def run_seeds(seeds: list[int], root: Path, selection: dict[str, Any], datasets: list[str], settings: dict[str, Any],
              seconds: dict[str, dict[str, Any]], jobs: int = 1) -> list[dict[str, Any]]:
    """Every reported seed of every dataset (in parallel with ``jobs`` > 1); one record per seed, in seed order."""
    plan = [(seed, d, root / f"seed-{seed}", selection["ends"][d], settings) for seed in seeds for d in datasets]
    results = run_jobs(seed_job, plan, jobs)
    per_seed: list[dict[str, Any]] = [{"seed": seed} for seed in seeds]
    for r in results:  # in plan order: seed-major, datasets in order, as a serial run
        seed, dataset, sec = r["seed"], r["dataset"], r["seconds"]
        per_seed[seeds.index(seed)][dataset] = r["cell"]
        seconds[dataset]["seeds"][str(seed)] = sec["seed"]
        seconds[dataset]["value_scores"][str(seed)] = sec["value_seconds"]
        if "per_training" in sec:
            seconds[dataset]["per_training"] += sec["per_training"]
    return per_seed


def aggregate(per_seed: list[dict[str, Any]], selection: dict[str, Any], datasets: list[str]) -> dict[str, Any]:
    pruning: dict[str, Any] = {}
    for dataset in datasets:
        runs = [r[dataset] for r in per_seed]
        cell: dict[str, Any] = {"full_accuracy": mean_sd([r["full_accuracy"] for r in runs]),
                                "ends": selection["ends"][dataset]}
        if dataset == "tint":
            cell["select_fractions"] = selection["fractions"][dataset]
        for f in FRACTIONS:
            cell[str(f)] = {score: {"accuracy": mean_sd([r[str(f)][score]["accuracy"] for r in runs]),
                                    "minus_random": mean_sd([r[str(f)][score]["accuracy"] - r[str(f)]["random"]["accuracy"]
                                                             for r in runs])}
                            for score in VALUE_SCORES}
        pruning[dataset] = cell
    out: dict[str, Any] = {"pruning": pruning}
    if "digits_noisy20" in pruning:
        noisy = pruning["digits_noisy20"]
        best50 = max((k for k in VALUE_SCORES if k != "random"), key=lambda k: noisy["0.5"][k]["accuracy"]["mean"])
        best70 = max((k for k in VALUE_SCORES if k != "random"), key=lambda k: noisy["0.7"][k]["accuracy"]["mean"])
        out["pruning_goals"] = {
            "noisy20_prune50_best_score": best50,
            "noisy20_prune50_at_least_full": noisy["0.5"][best50]["accuracy"]["mean"] >= noisy["full_accuracy"]["mean"],
            "noisy20_prune70_best_score": best70,
            "noisy20_prune70_beats_random": noisy["0.7"][best70]["accuracy"]["mean"] > noisy["0.7"]["random"]["accuracy"]["mean"]}
    return out


def merged_part(path: Path, own: dict[str, Any], datasets: list[str]) -> dict[str, Any]:
    """The ``pruning`` part of ``path`` with this run's dataset cells put in, the other cells kept.

    Each cell carries the provenance of the run that wrote it (cells written before cells had their
    own get the part's provenance of then); the part's goals, machine and provenance are this
    run's when it ran the digits (the goals are about them), else the file's stay.
    """
    try:
        part = json.loads(path.read_text()).get("pruning") or {}
    except (OSError, ValueError):
        part = {}
    old = {"provenance": part.get("provenance"), "commit": (part.get("machine") or {}).get("git", {}).get("commit")}
    for key, cell in part.items():
        if key in DATASETS and isinstance(cell, dict) and "provenance" not in cell and old["provenance"] is not None:
            cell["provenance"] = old["provenance"]
    stamp = own["provenance"] | {"started_at": own["started_at"], "datasets": datasets}
    for dataset in datasets:
        part[dataset] = own["pruning"][dataset] | {"provenance": stamp}
    if "pruning_goals" in own:
        part["goals"] = own["pruning_goals"]
    if "pruning_goals" in own or not part.get("machine"):
        part["machine"], part["provenance"] = own["machine"], own["provenance"]
    return part


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(p, RESULTS_DIR / "junk.json")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated subset of {', '.join(DATASETS)} (the other cells of the file are kept)")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (a 3-epoch MLP, 48 traces and 10 steps of a 1-layer GPT-2): a smoke test, "
                        "figures meaningless")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (spawned, one torch thread each): the datasets' selections run in "
                        "parallel, then every reported seed and dataset; results identical to --jobs 1")
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit("--jobs must be at least 1")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown or not datasets:
        raise SystemExit(f"--datasets: unknown {', '.join(unknown) or '(none given)'}; expected some of {', '.join(DATASETS)}")
    datasets = [d for d in DATASETS if d in datasets]
    settings = QUICK if args.quick else DEFAULT
    git = require_clean_tree(args.allow_dirty)
    started = now_iso()
    torch.set_num_threads(1)
    seeds = reported_seeds(args)
    seconds: dict[str, dict[str, Any]] = {d: {"value_scores": {}, "seeds": {}} for d in datasets}
    for dataset in datasets:
        print(f"{dataset}: {n_trainings(dataset, len(seeds))} trainings planned "
              f"({n_trainings(dataset, 0)} on selection seed {args.select_seed} + {len(seeds)} seeds x "
              f"{len(VALUE_SCORES) * len(FRACTIONS)}) and {1 + len(seeds)} value-score runs; --jobs {args.jobs}",
              flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        selection = select(args.select_seed, root / "select", datasets, settings, len(seeds), seconds, args.jobs)
        print(f"selection on seed {args.select_seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        per_seed = run_seeds(seeds, root, selection, datasets, settings, seconds, args.jobs)
    agg = aggregate(per_seed, selection, datasets)
    for dataset in datasets:
        sec = seconds[dataset]
        sec["total"] = sec["select"] + sum(sec["seeds"].values())
        if "per_training" in sec:
            sec["per_training"] = mean_sd(sec["per_training"]) | {"n": len(sec["per_training"])}
        agg["pruning"][dataset]["seconds"] = sec
    setup: dict[str, Any] = {"fractions": list(FRACTIONS), "quick": args.quick}
    if any(d in DIGITS for d in datasets):
        setup["digits"] = {"recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in settings["recipe"].items()},
                           "early_epochs": settings["early_epochs"], "split": {"train": 1200, "val": 297, "test": 300}}
    if "tint" in datasets:
        setup["tint"] = {"data": {k: list(v) if isinstance(v, tuple) else v for k, v in settings["tint"].items()},
                         "model": settings["tint_lm"], "value": settings["tint_value"],
                         "select_fractions": list(TINT_SELECT_FRACTIONS), "accuracy": "greedy answer accuracy on test"}
    own = {"benchmark": "junk_pruning", "started_at": started, "args": vars(args) | {"out": str(args.out)},
           "machine": machine_info() | {"git": git}, "seeds": seeds, "datasets": datasets, "selection": selection,
           "setup": setup, **agg, "per_seed": per_seed, "seconds_total": time.perf_counter() - t_all}
    for dataset in datasets:
        c = agg["pruning"][dataset]
        print_table(f"{dataset}: test accuracy after pruning (full data {c['full_accuracy']['mean']:.3f}; seeds {seeds})",
                    ["score", "end", *[f"{f:.0%}" for f in FRACTIONS]],
                    [[k, c["ends"][k], *[f"{c[str(f)][k]['accuracy']['mean']:.3f} ± {c[str(f)][k]['accuracy']['sd']:.3f}"
                                         for f in FRACTIONS]] for k in VALUE_SCORES])
        print(f"{dataset}: {c['seconds']['total']:.0f} s", flush=True)
    if "pruning_goals" in agg:
        print(agg["pruning_goals"])
    name = "junk_pruning.json" if datasets == list(DATASETS) else f"junk_pruning_{'_'.join(datasets)}.json"
    own_path = args.out.with_name(name)
    write_result(own_path, own)
    merge_part(args.out, "pruning", merged_part(args.out, own, datasets), "junk")
    print(f"wrote {own_path} and the {', '.join(datasets)} cells of the pruning part of {args.out}")
    return own


if __name__ == "__main__":
    main()
