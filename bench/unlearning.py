"""Corrective unlearning on a classifier (Goel et al.'s setting): flag expansion and every method vs retraining.

scikit-learn's digits (8x8 images, 1,797 samples) per seed: a seeded split into 1,200 training,
297 validation and 300 test images, and an MLP 64-128-64-10 trained with the built-in recipe
(:class:`curation.actions.recipes.MLPRecipe`). Two manipulations of the training set
(S_m, :mod:`curation.datasets.manipulations`):

- ``poisoning``: 5% of the training images (labels other than 0) get a 2x2 bright patch in the
  bottom-right corner and the label 0. Acc_corr = accuracy (true labels) on the triggered test
  images of the other classes; Acc_retain = accuracy on the clean test images.
- ``interclass``: 30% of the training images of classes 3 and 8 have their labels swapped.
  Acc_corr = accuracy on the test images of classes 3 and 8; Acc_retain = on the other classes.

The target is the model retrained from scratch without S_m (same recipe and seed). For each
identified fraction |S_f|/|S_m| in {0.1, 0.25, 0.5, 1.0} (S_f drawn at random from S_m, at least 2
samples), flag expansion (:func:`attribution.expansion.expansion_evidence` +
:class:`filters.expansion.ExpansionFilter`, auto budget) gives the expanded set; every method
(:data:`curation.actions.unlearning.methods.METHODS`) then unlearns S_f (``not_expanded``) and the
expanded flags (``expanded``) from the original model. All figures are measured on the test split.

Settings are chosen on a separate seed (``--select-seed``, default 100) on its validation split:
each method's setting per variant from a small grid (highest Acc_corr + Acc_retain averaged over
both manipulations and identified fractions 0.1 and 0.25), and the expansion's evidence
combination and auto-budget quantile (highest validation Acc_corr + Acc_retain of the model retrained
without the flags, over the same cells: what a user who acts on the flags gets; the F2 of S_m,
recall weighted twice, is recorded beside it). The reported seeds never influence a choice.
Expansion recall and precision are reported per evidence at the auto budget and at fixed budgets
(5/10/20% of the training set), with each evidence's AUROC over the samples not given; the loss and
random baselines run in the same run.

Writes bench/results/unlearning.json (the classifier part; ``bench/unlearning_lm.py`` adds the
language model).
"""

from __future__ import annotations

import argparse
import itertools
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
    now_iso,
    print_table,
    reported_seeds,
    require_clean_tree,
    write_result,
)

import stores  # noqa: E402
from attribution.config import EngineConfig  # noqa: E402
from attribution.data import tabular_samples  # noqa: E402
from attribution.expansion import expansion_evidence  # noqa: E402
from attribution.tasks import ClassifierTask  # noqa: E402
from curation.actions.recipes import MLPRecipe  # noqa: E402
from curation.actions.unlearning.base import UnlearningProblem  # noqa: E402
from curation.actions.unlearning.methods import METHODS, make_method  # noqa: E402
from curation.datasets.manipulations import add_trigger, interclass_confusion, poison  # noqa: E402
from curation.evaluation import detection_metrics  # noqa: E402
from curation.steps.records import ingest_records  # noqa: E402
from filters.base import Budget  # noqa: E402
from filters.expansion import ExpansionFilter  # noqa: E402

MANIPULATIONS = ("poisoning", "interclass")
FRACTIONS = (0.1, 0.25, 0.5, 1.0)
SELECT_FRACTIONS = (0.1, 0.25)
VARIANTS = ("not_expanded", "expanded")
POISON_RATE, POISON_TARGET = 0.05, 0
CONFUSED, CONFUSION_RATE = (3, 8), 0.3
RECIPE = dict(n_in=64, hidden=(128, 64), n_out=10, epochs=40, lr=0.05)
FEATURES = [f"f{j}" for j in range(64)]
EVIDENCES = ("influence", "similarity", "representation", "input", "loss", "random")
FIXED_BUDGETS = (0.05, 0.1, 0.2)  # fractions of the training set (the poisoned share is 0.05, interclass 0.0625)

#: Each method's settings grid (the selection seed picks one per method).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "retrain": [{}],
    "retrain_last": [{"k": 1}, {"k": 2}],
    "gradient_ascent": [{"lr": lr, "steps": s} for lr in (1e-4, 3e-4, 1e-3) for s in (10, 30)],
    "grad_diff": [{"lr": lr, "steps": s} for lr in (3e-4, 1e-3, 3e-3) for s in (30, 100)],
    "npo": [{"lr": lr, "steps": s} for lr in (3e-4, 1e-3, 3e-3) for s in (30, 100)],
    "ssd": [{"alpha": a, "lam": lam} for a in (1.0, 10.0, 50.0) for lam in (0.1, 1.0)],
    "newton": [{"scale": s} for s in (1.0, 3.0, 10.0, 30.0)],
    "iau": [{"lr": lr} for lr in (0.1, 1.0, 10.0)],
}
COMBINES = [("similarity",), ("representation",), ("input",), ("influence",), ("similarity", "representation"),
            ("input", "similarity"), ("input", "representation"), ("input", "similarity", "representation"),
            ("similarity", "representation", "loss")]
QUANTILES = (0.0, 0.25, 0.5)


# ---------------------------------------------------------------------------------------- data
class Setting:
    """One seed and manipulation: data in a store, the original model, the retrained target."""

    def __init__(self, seed: int, manipulation: str, root: Path):
        x, y = _digits()
        perm = np.random.default_rng(seed).permutation(len(x))
        x, y = x[perm], y[perm]
        xt, yt = x[:1200], y[:1200]
        self.splits = {"val": (x[1200:1497], y[1200:1497]), "test": (x[1497:1797], y[1497:1797])}
        self.manipulation = manipulation
        if manipulation == "poisoning":
            xt, ym, mask = poison(xt, yt, POISON_RATE, POISON_TARGET, seed=seed)
        else:
            ym, mask = interclass_confusion(yt, CONFUSED, CONFUSION_RATE, seed=seed)
        self.store = stores.open(root / f"{manipulation}-{seed}", create=True)
        rows = [{"row": i, **dict(zip(FEATURES, map(float, xt[i]), strict=True)), "label": int(ym[i])}
                for i in range(len(xt))]
        ingest_records(self.store, {"train": rows}, config={"generator": "digits", "seed": seed,
                                                            "manipulation": manipulation}, roles={})
        self.train, _ = tabular_samples(self.store, "train", FEATURES, "label")
        row_of = dict(zip(*self.store.read_samples("train", columns=["sample_id", "row"]).to_dict(as_series=False).values(),
                          strict=True))
        self.manipulated = np.array([bool(mask[row_of[s]]) for s in self.train.ids])
        self.seed = seed
        self.recipe = MLPRecipe(**RECIPE)
        t0 = time.perf_counter()
        self.model = self.recipe.fit(self.recipe.fresh(seed), self.train.data, seed)
        self.train_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.target = self.run_method("retrain", {}, np.flatnonzero(self.manipulated))
        self.retrain_seconds = time.perf_counter() - t0

    def run_method(self, name: str, settings: dict[str, Any], forget: np.ndarray):
        problem = UnlearningProblem(self.model, ClassifierTask(), self.train, [int(i) for i in forget],
                                    recipe=self.recipe, store=self.store, seed=self.seed)
        return make_method(name, **settings).unlearn(problem)

    def accuracies(self, model, split: str) -> dict[str, float]:
        """Acc_corr and Acc_retain of ``model`` on ``split`` (see the module doc)."""
        x, y = self.splits[split]
        if self.manipulation == "poisoning":
            other = y != POISON_TARGET
            corr = _accuracy(model, add_trigger(x[other]), y[other])
            retain = _accuracy(model, x, y)
        else:
            confused = np.isin(y, CONFUSED)
            corr = _accuracy(model, x[confused], y[confused])
            retain = _accuracy(model, x[~confused], y[~confused])
        return {"acc_corr": corr, "acc_retain": retain}

    def known_subset(self, fraction: float) -> np.ndarray:
        """S_f: a seeded random ``fraction`` of S_m (at least 2 samples)."""
        sm = np.flatnonzero(self.manipulated)
        k = max(2, int(round(fraction * len(sm))))
        rng = np.random.default_rng([self.seed, int(fraction * 1000)])
        return np.sort(rng.choice(sm, size=k, replace=False))

    def expand(self, known: np.ndarray, combine, quantile: float) -> tuple[np.ndarray, dict[str, str], float]:
        """Flags of the expansion filter (combine, auto budget at quantile): (flagged mask, runs, seconds)."""
        ids = [self.train.ids[i] for i in known]
        t0 = time.perf_counter()
        ev = expansion_evidence(self.store, self.model, ClassifierTask(), self.train, ids, config=EngineConfig(seed=self.seed))
        flags = ExpansionFilter(ids, ev.runs, combine=combine, quantile=quantile, seed=self.seed).run(
            self.store, "train", seed=self.seed).flags
        assert flags.sample_ids == self.train.ids  # both in the dataset's order
        return np.asarray(flags.flagged, dtype=bool), ev.runs, time.perf_counter() - t0

    def ranking(self, known: np.ndarray, combine, runs: dict[str, str]) -> dict[str, Any]:
        """The evidence as a ranking: AUROC over the samples not given, and recall / precision of the
        actual flags at fixed budgets (fractions of the training set, known-bad samples included)."""
        ids = [self.train.ids[i] for i in known]
        given = np.zeros(len(self.train), dtype=bool)
        given[known] = True
        out: dict[str, Any] = {}
        for b in FIXED_BUDGETS:
            flags = ExpansionFilter(ids, runs, combine=combine, budget=Budget(fraction=b), seed=self.seed).evaluate(
                self.store, "train")
            flagged = np.asarray(flags.flagged)
            recall, precision, _ = _f2(flagged, self.manipulated)
            out[str(b)] = {"recall": recall, "precision": precision}
        score = np.asarray(flags.score, dtype=np.float64)
        out["auroc_unknown"] = detection_metrics(score[~given], self.manipulated[~given], 0.1)["auroc"]
        return out


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32), y


@torch.no_grad()
def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float((model(torch.tensor(x)).argmax(1).numpy() == y).mean())


def _f2(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((flagged & truth).sum())
    recall = tp / max(1, truth.sum())
    precision = tp / max(1, flagged.sum())
    f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
    return recall, precision, f2


# ---------------------------------------------------------------------------------------- selection
def select(seed: int, root: Path) -> dict[str, Any]:
    """Choose the expansion (combine, quantile) and each method's settings on ``seed``'s validation split."""
    settings = {m: Setting(seed, m, root) for m in MANIPULATIONS}
    exp_scores: dict[tuple, list[float]] = {}
    exp_f2: dict[tuple, list[float]] = {}
    flagged_at: dict[tuple, np.ndarray] = {}
    retrained: dict[tuple, float] = {}
    for s, f in itertools.product(settings.values(), SELECT_FRACTIONS):
        known = s.known_subset(f)
        for combine, q in itertools.product(COMBINES, QUANTILES):
            flagged, _, _ = s.expand(known, combine, q)
            exp_f2.setdefault((combine, q), []).append(_f2(flagged, s.manipulated)[2])
            key = (s.manipulation, flagged.tobytes())
            if key not in retrained:  # what a user gets: retrain without the flags, on the validation split
                acc = s.accuracies(s.run_method("retrain", {}, np.flatnonzero(flagged)), "val")
                retrained[key] = acc["acc_corr"] + acc["acc_retain"]
            exp_scores.setdefault((combine, q), []).append(retrained[key])
    best_exp = max(exp_scores, key=lambda k: (np.mean(exp_scores[k]), -QUANTILES.index(k[1])))
    for (m, s), f in itertools.product(settings.items(), SELECT_FRACTIONS):
        flagged_at[(m, f)], _, _ = s.expand(s.known_subset(f), best_exp[0], best_exp[1])
    method_scores: dict[str, dict[str, dict[int, list[float]]]] = {v: {} for v in VARIANTS}
    for name, grid in GRIDS.items():
        for gi, cfg in enumerate(grid):
            for (m, s), f in itertools.product(settings.items(), SELECT_FRACTIONS):
                for v, forget in zip(VARIANTS, (s.known_subset(f), np.flatnonzero(flagged_at[(m, f)])), strict=True):
                    acc = s.accuracies(s.run_method(name, cfg, forget), "val")
                    method_scores[v].setdefault(name, {}).setdefault(gi, []).append(acc["acc_corr"] + acc["acc_retain"])
    # per variant: a user knows whether they expanded their flags, not which manipulation hides in them
    chosen = {v: {name: GRIDS[name][max(sc, key=lambda g: np.mean(sc[g]))] for name, sc in by_method.items()}
              for v, by_method in method_scores.items()}
    print(f"  selected methods: {chosen}", flush=True)
    return {"seed": seed, "split": "val",
            "expansion": {"combine": list(best_exp[0]), "quantile": best_exp[1],
                          "criterion": "val Acc_corr + Acc_retain of retraining without the flags",
                          "score": {f"{'+'.join(c)}@{q}": float(np.mean(v)) for (c, q), v in exp_scores.items()},
                          "f2": {f"{'+'.join(c)}@{q}": float(np.mean(v)) for (c, q), v in exp_f2.items()}},
            "methods": chosen,
            "method_scores": {v: {n: {str(GRIDS[n][g]): float(np.mean(x)) for g, x in sc.items()}
                                  for n, sc in by_method.items()} for v, by_method in method_scores.items()}}


# ---------------------------------------------------------------------------------------- one seed
def run_seed(seed: int, root: Path, selection: dict[str, Any]) -> dict[str, Any]:
    """Every cell of one reported seed (test split)."""
    out: dict[str, Any] = {"seed": seed}
    combine, quantile = tuple(selection["expansion"]["combine"]), selection["expansion"]["quantile"]
    for m in MANIPULATIONS:
        s = Setting(seed, m, root)
        cell: dict[str, Any] = {"n_manipulated": int(s.manipulated.sum()), "n_train": len(s.train),
                                "original": s.accuracies(s.model, "test") | {"seconds": s.train_seconds},
                                "retrain": s.accuracies(s.target, "test") | {"seconds": s.retrain_seconds},
                                "expansion": {}, "fractions": {}}
        for f in FRACTIONS:
            known = s.known_subset(f)
            flagged, runs, exp_seconds = s.expand(known, combine, quantile)
            recall, precision, _ = _f2(flagged, s.manipulated)
            per_evidence = {"combined": {"recall": recall, "precision": precision, "n_flagged": int(flagged.sum()),
                                         "seconds": exp_seconds}}
            per_evidence["combined"]["fixed_budgets"] = s.ranking(known, combine, runs)
            for ev in EVIDENCES:
                fl, _, _ = s.expand(known, (ev,), quantile)
                r, p, _ = _f2(fl, s.manipulated)
                per_evidence[ev] = {"recall": r, "precision": p, "n_flagged": int(fl.sum()),
                                    "fixed_budgets": s.ranking(known, (ev,), runs)}
            cell["expansion"][str(f)] = {"n_known": len(known), **per_evidence}
            methods: dict[str, Any] = {}
            for name in METHODS:
                methods[name] = {}
                for variant, forget in (("not_expanded", known), ("expanded", np.flatnonzero(flagged))):
                    t0 = time.perf_counter()
                    model = s.run_method(name, selection["methods"][variant][name], forget)
                    seconds = time.perf_counter() - t0
                    methods[name][variant] = s.accuracies(model, "test") | {"seconds": seconds}
            cell["fractions"][str(f)] = methods
        out[m] = cell
        print(f"  seed {seed} {m}: original corr {cell['original']['acc_corr']:.3f}, retrain corr "
              f"{cell['retrain']['acc_corr']:.3f}, expansion recall@0.1 {cell['expansion']['0.1']['combined']['recall']:.3f}",
              flush=True)
    return out


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's keys: classifier.<manipulation>...., expansion.<manipulation>.<evidence>...., goals."""
    classifier: dict[str, Any] = {}
    expansion: dict[str, Any] = {}
    for m in MANIPULATIONS:
        runs = [r[m] for r in per_seed]
        c: dict[str, Any] = {k: {metric: mean_sd([r[k][metric] for r in runs]) for metric in ("acc_corr", "acc_retain", "seconds")}
                             for k in ("original", "retrain")}
        c["n_manipulated"] = mean_sd([r["n_manipulated"] for r in runs])
        for f in FRACTIONS:
            c[str(f)] = {name: {v: {metric: mean_sd([r["fractions"][str(f)][name][v][metric] for r in runs])
                                    for metric in ("acc_corr", "acc_retain", "seconds")} for v in VARIANTS}
                         for name in METHODS}
        classifier[m] = c
        e: dict[str, Any] = {}
        for ev in ("combined", *EVIDENCES):
            e[ev] = {"recall_at_budget": mean_sd([r["expansion"]["0.1"][ev]["recall"] for r in runs]),
                     "precision_at_budget": mean_sd([r["expansion"]["0.1"][ev]["precision"] for r in runs]),
                     "by_fraction": {str(f): {k: mean_sd([r["expansion"][str(f)][ev][k] for r in runs])
                                              for k in ("recall", "precision", "n_flagged")} for f in FRACTIONS},
                     "auroc_unknown": mean_sd([r["expansion"]["0.1"][ev]["fixed_budgets"]["auroc_unknown"] for r in runs]),
                     "fixed_budgets": {str(b): {k: mean_sd([r["expansion"]["0.1"][ev]["fixed_budgets"][str(b)][k]
                                                            for r in runs]) for k in ("recall", "precision")}
                                       for b in FIXED_BUDGETS}}
        expansion[m] = e
    return {"classifier": classifier, "expansion": expansion, "goals": goals(classifier)}


def goals(classifier: dict[str, Any]) -> dict[str, Any]:
    """The issue's classifier goals at 10% identified plus expansion: the best method vs retraining."""
    out: dict[str, Any] = {}
    for m, tol_corr, tol_retain in (("poisoning", 0.02, 0.01), ("interclass", 0.05, None)):
        c = classifier[m]
        target = c["retrain"]
        gaps = {}
        for name in METHODS:
            cell = c["0.1"][name]["expanded"]
            gaps[name] = {"corr_gap": target["acc_corr"]["mean"] - cell["acc_corr"]["mean"],
                          "retain_gap": target["acc_retain"]["mean"] - cell["acc_retain"]["mean"]}

        def ok(g: dict[str, float], tol_corr: float = tol_corr, tol_retain: float | None = tol_retain) -> bool:
            return g["corr_gap"] <= tol_corr and (tol_retain is None or g["retain_gap"] <= tol_retain)

        best = min(gaps, key=lambda n: (not ok(gaps[n]), max(gaps[n]["corr_gap"], 0) + max(gaps[n]["retain_gap"], 0)))
        best_fast = min((n for n in gaps if n != "retrain"),
                        key=lambda n: (not ok(gaps[n]), max(gaps[n]["corr_gap"], 0) + max(gaps[n]["retain_gap"], 0)))
        out[m] = {"tolerance": {"acc_corr": tol_corr, "acc_retain": tol_retain}, "gaps": gaps,
                  "best": best, "met": ok(gaps[best]), "best_without_full_retrain": best_fast,
                  "met_without_full_retrain": ok(gaps[best_fast])}
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(p, RESULTS_DIR / "unlearning.json", "seed the settings are chosen on (validation split)")
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    started = now_iso()
    torch.set_num_threads(1)
    seeds = reported_seeds(args)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-unlearning-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        selection = select(args.select_seed, root / "select")
        print(f"selection on seed {args.select_seed}: expansion {selection['expansion']['combine']} "
              f"q{selection['expansion']['quantile']}, {time.perf_counter() - t0:.0f} s", flush=True)
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            per_seed.append(run_seed(seed, root / f"seed-{seed}", selection))
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    agg = aggregate(per_seed)
    result: dict[str, Any] = {"benchmark": "unlearning", "started_at": started, "args": vars(args) | {"out": str(args.out)},
                              "machine": machine_info() | {"git": git}, "seeds": seeds, "selection": selection,
                              "setup": {"poison_rate": POISON_RATE, "poison_target": POISON_TARGET,
                                        "confused_classes": list(CONFUSED), "confusion_rate": CONFUSION_RATE,
                                        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPE.items()},
                                        "split": {"train": 1200, "val": 297, "test": 300}},
                              **agg, "per_seed": per_seed, "seconds_total": time.perf_counter() - t_all}
    old = _existing(args.out)
    if "lm" in old:
        result["lm"] = old["lm"]  # the language-model part is written by bench/unlearning_lm.py

    def ms(d: dict) -> str:
        return f"{d['mean']:.3f} ± {d['sd']:.3f}" if d["n"] > 1 else f"{d['mean']:.3f}"

    for m in MANIPULATIONS:
        c = agg["classifier"][m]
        rows = [["original", "-", ms(c["original"]["acc_corr"]), ms(c["original"]["acc_retain"]), "-"],
                ["retrain w/o S_m", "-", ms(c["retrain"]["acc_corr"]), ms(c["retrain"]["acc_retain"]),
                 ms(c["retrain"]["seconds"])]]
        for name in METHODS:
            for v in VARIANTS:
                cell = c["0.1"][name][v]
                rows.append([name, v, ms(cell["acc_corr"]), ms(cell["acc_retain"]), ms(cell["seconds"])])
        print_table(f"{m}: 10% of S_m identified (test split, seeds {seeds})",
                    ["method", "variant", "Acc_corr", "Acc_retain", "seconds"], rows)
        e = agg["expansion"][m]
        print_table(f"{m}: expansion from 10% identified", ["evidence", "auto: recall", "precision", "AUROC",
                                                             *[f"recall@{b:.0%}" for b in FIXED_BUDGETS]],
                    [[ev, ms(v["recall_at_budget"]), ms(v["precision_at_budget"]), ms(v["auroc_unknown"]),
                      *[ms(v["fixed_budgets"][str(b)]["recall"]) for b in FIXED_BUDGETS]] for ev, v in e.items()])
    print(agg["goals"])
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


def _existing(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    main()
