"""Data pruning by value on digits, clean and with 20% flipped labels: every score against random.

Per seed: scikit-learn's digits split into 1,200 training, 297 validation and 300 test images; for
``digits_noisy20`` 20% of the training labels are replaced by another class (the validation and
test labels stay clean). Value scores (:mod:`curation.steps.value`: EL2N, GraNd, forgetting
events, self-influence, influence on the validation loss, random) are computed on the training
set with the built-in MLP recipe; :class:`filters.prune.PruneFilter` drops 10/30/50/70% of it;
the model is retrained from the same seed with the same number of SGD steps (more epochs over
fewer samples) and its test accuracy is reported, with the full-data model's beside it.

Which end of each score to prune (``low`` or ``high``) is chosen per dataset on the selection seed
(``--select-seed``) by validation accuracy averaged over the fractions; the reported seeds choose
nothing. Writes the ``pruning`` part of bench/results/junk.json (keeping the file's other parts).
"""

from __future__ import annotations

import argparse
import dataclasses
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
from attribution.data import tabular_samples  # noqa: E402
from curation.actions.recipes import MLPRecipe  # noqa: E402
from curation.steps.records import ingest_records  # noqa: E402
from curation.steps.value import VALUE_SCORES, value_score_runs  # noqa: E402
from filters.prune import PRUNE_ENDS, PruneFilter  # noqa: E402

DATASETS = {"digits_clean": 0.0, "digits_noisy20": 0.2}
FRACTIONS = (0.1, 0.3, 0.5, 0.7)
RECIPE = dict(n_in=64, hidden=(128, 64), n_out=10, epochs=40, lr=0.05)
FEATURES = [f"f{j}" for j in range(64)]


class DigitsSetting:
    """One seed and dataset: the (noisy) training set in a store, validation and test arrays."""

    def __init__(self, seed: int, dataset: str, root: Path):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        perm = np.random.default_rng(seed).permutation(len(x))
        x, y = x[perm], y[perm]
        noise = np.random.default_rng([seed, 7919])  # its own stream: not the random baseline's
        flip = noise.random(1200) < DATASETS[dataset]
        labels = np.where(flip, (y[:1200] + noise.integers(1, 10, 1200)) % 10, y[:1200])
        self.store = stores.open(root / f"{dataset}-{seed}", create=True)
        rows = [{"row": i, **dict(zip(FEATURES, map(float, x[i]), strict=True)), "label": int(labels[i])}
                for i in range(1200)]
        val = [{"row": 1200 + i, **dict(zip(FEATURES, map(float, x[1200 + i]), strict=True)), "label": int(y[1200 + i])}
               for i in range(297)]
        ingest_records(self.store, {"train": rows, "val": val}, config={"generator": "digits", "seed": seed,
                                                                        "flip": DATASETS[dataset]}, roles={})
        self.train, _ = tabular_samples(self.store, "train", FEATURES, "label")
        self.val, _ = tabular_samples(self.store, "val", FEATURES, "label")
        self.splits = {"val": (x[1200:1497], y[1200:1497]), "test": (x[1497:], y[1497:])}
        self.seed = seed
        self.recipe = MLPRecipe(**RECIPE)
        t0 = time.perf_counter()
        self.values = value_score_runs(self.store, self.train, self.recipe, validation=self.val, seed=seed)
        self.value_seconds = time.perf_counter() - t0

    def accuracy(self, model, split: str) -> float:
        x, y = self.splits[split]
        with torch.no_grad():
            return float((model(torch.tensor(x)).argmax(1).numpy() == y).mean())

    def pruned_model(self, score: str, fraction: float, end: str):
        """Retrain on what :class:`PruneFilter` keeps: same seed, same number of SGD steps."""
        flags = PruneFilter(self.values.runs[score], fraction, prune=end).run(self.store, "train", seed=self.seed).flags
        drop = set(np.asarray(flags.sample_ids)[np.asarray(flags.flagged)])
        keep = [i for i, s in enumerate(self.train.ids) if s not in drop]
        epochs = max(1, round(self.recipe.epochs * len(self.train) / len(keep)))
        recipe = dataclasses.replace(self.recipe, epochs=epochs)
        sub = self.train.subset(keep)
        return recipe.fit(recipe.fresh(self.seed), sub.data, self.seed)


def select(seed: int, root: Path) -> dict[str, Any]:
    """The end of each score to prune, per dataset, on ``seed``'s validation split."""
    chosen: dict[str, dict[str, str]] = {}
    scores: dict[str, Any] = {}
    for dataset in DATASETS:
        s = DigitsSetting(seed, dataset, root)
        chosen[dataset], scores[dataset] = {}, {}
        for score in VALUE_SCORES:
            if score == "random":
                chosen[dataset][score] = "low"
                continue
            by_end = {end: float(np.mean([s.accuracy(s.pruned_model(score, f, end), "val") for f in FRACTIONS]))
                      for end in PRUNE_ENDS}
            scores[dataset][score] = by_end
            chosen[dataset][score] = max(by_end, key=lambda e: (by_end[e], e == "low"))
        print(f"  selected ends for {dataset}: {chosen[dataset]}", flush=True)
    return {"seed": seed, "split": "val", "criterion": "validation accuracy averaged over the fractions",
            "ends": chosen, "scores": scores}


def run_seed(seed: int, root: Path, selection: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed}
    for dataset in DATASETS:
        s = DigitsSetting(seed, dataset, root)
        cell: dict[str, Any] = {"full_accuracy": s.accuracy(s.values.model, "test"), "value_seconds": s.value_seconds}
        for f in FRACTIONS:
            cell[str(f)] = {score: {"accuracy": s.accuracy(s.pruned_model(score, f, selection["ends"][dataset][score]),
                                                           "test")} for score in VALUE_SCORES}
        out[dataset] = cell
        best = {str(f): max(VALUE_SCORES, key=lambda k, f=f: cell[str(f)][k]["accuracy"]) for f in FRACTIONS}
        print(f"  seed {seed} {dataset}: full {cell['full_accuracy']:.3f}; best per fraction {best}", flush=True)
    return out


def aggregate(per_seed: list[dict[str, Any]], selection: dict[str, Any]) -> dict[str, Any]:
    pruning: dict[str, Any] = {}
    for dataset in DATASETS:
        runs = [r[dataset] for r in per_seed]
        cell: dict[str, Any] = {"full_accuracy": mean_sd([r["full_accuracy"] for r in runs]),
                                "ends": selection["ends"][dataset]}
        for f in FRACTIONS:
            cell[str(f)] = {score: {"accuracy": mean_sd([r[str(f)][score]["accuracy"] for r in runs]),
                                    "minus_random": mean_sd([r[str(f)][score]["accuracy"] - r[str(f)]["random"]["accuracy"]
                                                             for r in runs])}
                            for score in VALUE_SCORES}
        pruning[dataset] = cell
    noisy = pruning["digits_noisy20"]
    best50 = max((k for k in VALUE_SCORES if k != "random"), key=lambda k: noisy["0.5"][k]["accuracy"]["mean"])
    best70 = max((k for k in VALUE_SCORES if k != "random"), key=lambda k: noisy["0.7"][k]["accuracy"]["mean"])
    goals = {"noisy20_prune50_best_score": best50,
             "noisy20_prune50_at_least_full": noisy["0.5"][best50]["accuracy"]["mean"] >= noisy["full_accuracy"]["mean"],
             "noisy20_prune70_best_score": best70,
             "noisy20_prune70_beats_random": noisy["0.7"][best70]["accuracy"]["mean"] > noisy["0.7"]["random"]["accuracy"]["mean"]}
    return {"pruning": pruning, "pruning_goals": goals}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(p, RESULTS_DIR / "junk.json")
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    started = now_iso()
    torch.set_num_threads(1)
    seeds = reported_seeds(args)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        selection = select(args.select_seed, root / "select")
        print(f"selection on seed {args.select_seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        per_seed = [run_seed(seed, root / f"seed-{seed}", selection) for seed in seeds]
    agg = aggregate(per_seed, selection)
    own = {"benchmark": "junk_pruning", "started_at": started, "args": vars(args) | {"out": str(args.out)},
           "machine": machine_info() | {"git": git}, "seeds": seeds, "selection": selection,
           "setup": {"recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in RECIPE.items()},
                     "split": {"train": 1200, "val": 297, "test": 300}, "fractions": list(FRACTIONS)},
           **agg, "per_seed": per_seed, "seconds_total": time.perf_counter() - t_all}
    for dataset in DATASETS:
        c = agg["pruning"][dataset]
        print_table(f"{dataset}: test accuracy after pruning (full data {c['full_accuracy']['mean']:.3f}; seeds {seeds})",
                    ["score", "end", *[f"{f:.0%}" for f in FRACTIONS]],
                    [[k, c["ends"][k], *[f"{c[str(f)][k]['accuracy']['mean']:.3f} ± {c[str(f)][k]['accuracy']['sd']:.3f}"
                                         for f in FRACTIONS]] for k in VALUE_SCORES])
    print(agg["pruning_goals"])
    own_path = args.out.with_name("junk_pruning.json")
    write_result(own_path, own)
    merge_part(args.out, "pruning", own["pruning"] | {"goals": own["pruning_goals"], "machine": own["machine"],
                                               "provenance": own["provenance"]}, "junk")
    print(f"wrote {own_path} and the pruning part of {args.out}")
    return own


if __name__ == "__main__":
    main()
