"""Validation of a 2,000-sample task within a 10-minute budget on 2 cores, with its confidence intervals.

The issue's goal: ``curation validate`` on a 2,000-sample task finishes within 10 minutes on the
2-core machine and reports each setting's LDS with a confidence interval. Here, per seed:

- data: scikit-learn's ``make_classification`` (``--train`` + ``--queries`` samples, 20 features,
  10 informative, 4 classes, 2% label noise, seeded), standardised; the first ``--train`` are
  the training set, the rest the queries;
- model: the built-in :class:`~curation.actions.recipes.MLPRecipe` (20-64-32-4, ``--epochs``),
  trained on the training set; the same recipe retrains on subsets;
- :func:`curation.steps.validation.validate` with ``budget_s=--budget-s`` and ``--workers``
  retraining processes over the default grid: identity, diagonal, kfac, ekfac, ekfac_cg x
  (heuristic, x0.1, x10) damping (identity once): the planner times one retraining and fits
  subsets x seeds into the budget.

Reported: the wall time of the whole validation (``wall_s``, against ``budget_s``), the plan,
each setting's LDS with its 95% bootstrap interval (over queries), top-k effect and sign
agreement, and the chosen setting. ``--seeds`` reruns it on other data and model seeds.

Writes bench/results/validation.json and prints a table. Run alone (``make bench-validate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    add_provenance_args,
    machine_info,
    now_iso,
    print_table,
    require_clean_tree,
    write_result,
)

import stores  # noqa: E402
from attribution.data import Samples  # noqa: E402
from attribution.tasks import ClassifierTask  # noqa: E402
from curation.actions.recipes import MLPRecipe  # noqa: E402
from curation.steps.validation import validate  # noqa: E402

GRID = ["identity", "diagonal", "kfac", "ekfac", "ekfac_cg"]


def task_data(n_train: int, n_queries: int, seed: int) -> tuple[Samples, Samples]:
    """A seeded 4-class synthetic tabular task, standardised, as training and query samples."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n_train + n_queries, n_features=20, n_informative=10, n_redundant=4,
                               n_classes=4, flip_y=0.02, class_sep=1.0, random_state=seed)
    x = (x - x[:n_train].mean(0)) / x[:n_train].std(0)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    train = torch.utils.data.TensorDataset(xt[:n_train], yt[:n_train])
    queries = torch.utils.data.TensorDataset(xt[n_train:], yt[n_train:])
    return (Samples(train, [f"t{i}" for i in range(n_train)], "train"),
            Samples(queries, [f"q{i}" for i in range(n_queries)], "queries"))


def one_seed(seed: int, args: argparse.Namespace, root: Path) -> dict:
    """Train the model, validate it within the budget; the figures and the wall time."""
    train, queries = task_data(args.train, args.queries, seed)
    recipe = MLPRecipe(20, (64, 32), 4, epochs=args.epochs)
    model = recipe.fit(recipe.fresh(seed), train.data, seed)
    store = stores.open(root / f"seed{seed}")
    t0 = time.perf_counter()
    res = validate(store, model, ClassifierTask(), train, queries, recipe=recipe, strategies=GRID,
                   dampings=["auto"], budget_s=args.budget_s, seed=seed, workers=args.workers)
    wall = time.perf_counter() - t0
    return {"seed": seed, "wall_s": wall, "within_budget": wall <= args.budget_s, "plan": dataclasses.asdict(res.plan),
            "chosen": {"strategy": res.chosen[0], "damping": res.chosen[1]}, "selected_by": res.selected_by,
            "retrains": {"computed": res.retrains_computed, "reused": res.retrains_reused},
            "results": [r.as_dict() for r in res.results]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--budget-s", type=float, default=600.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "validation.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        per_seed = [one_seed(s, args, Path(tmp)) for s in seeds]
    result = {"benchmark": "validation", "created_at": now_iso(), "machine": machine_info(), "git": git,
              "args": vars(args), "grid": {"strategies": GRID, "dampings": ["heuristic", "x0.1", "x10"]},
              "per_seed": per_seed,
              "headline": {"n_train": args.train, "budget_s": args.budget_s,
                           "wall_s": [r["wall_s"] for r in per_seed],
                           "within_budget": all(r["within_budget"] for r in per_seed)}}
    write_result(args.out, result, args.allow_dirty)
    for r in per_seed:
        plan = r["plan"]
        print(f"seed {r['seed']}: {r['wall_s']:.0f} s of a {args.budget_s:g} s budget; plan {plan['subsets']} subsets "
              f"x {plan['seeds']} seed(s), top-k check on {plan['topk_queries']} queries; chosen "
              f"{r['chosen']['strategy']}@{r['chosen']['damping']} (by {r['selected_by']})")
        print_table(f"seed {r['seed']}: LDS with 95% CI (bootstrap over queries)",
                    ["setting", "LDS", "CI low", "CI high", "top-k effect", "sign agreement", "scoring s"],
                    [[f"{x['strategy']}@{x['damping']}", x["lds"], x["ci_low"], x["ci_high"], x["topk_effect"],
                      x["sign_agreement"], x["seconds"]] for x in r["results"]])
    return result


if __name__ == "__main__":
    main()
