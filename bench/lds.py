"""Linear Datamodeling Score (LDS) of the engine's strategies, ``auto``, kronfluence's defaults, TRAK and baselines.

Protocol (TRAK paper; ../shared/specs/engine.md), per dataset (``--datasets``, default all five:
``concrete``, ``digits``, ``wine``, ``friedman1``, ``lm``; data, models and recipes in
``bench/_lds_data.py``):

1. Selection, on a held-out seed (``--select-seed``: another data split or draw, model init,
   subsets and retraining seeds than the reported run; ``bench/_lds_select.py``):
   the training length (epochs; AdamW steps for the LM) with the highest EK-FAC LDS on the
   dataset's grid (``--epoch-grid DATASET=a,b,c``; ``--epochs DATASET=N`` fixes it), measured on one
   draw of ``select_subsets`` halves x ``select_seeds`` retraining seeds; then ``auto``: the
   toolkit's validation (:func:`curation.steps.validation.validate`) of that model with a fixed
   plan (the same draw, whose retrainings it finds cached) over ``--auto-strategies`` x
   ``--auto-dampings`` (identity, diagonal, kfac, ekfac, ekfac_cg x heuristic, x0.1, x10) with
   ``ensemble`` = :data:`ENSEMBLE` models (10; 3 on the LM), which picks a setting by its own rule
   (and that setting averaged over the ensemble's models when that adds more than 0.01 LDS);
   then TRAK's projection dimension (the dataset's grid, or ``--trak-proj-grid``;
   ``--trak-proj-dim`` fixes it).
2. Report, at ``--seed`` with the chosen settings: train one model on the full training set and
   score every training sample against every query with each method: ``identity``, ``diagonal``,
   ``kfac``, ``ekfac``, ``ekfac_cg`` (the engine, damping heuristic; ekfac_cg with the engine's
   default ``cg_iterations`` and ``cg_max_examples``); ``auto`` (the engine with the setting the
   selection's validation chose: the same scores as that strategy's row when it chose the
   heuristic damping and no ensemble; an ensemble averages the reported model's scores with those
   of TRAK's other models, the first K - 1); ``ekfac_ensemble`` (EK-FAC averaged over the same
   models as TRAK's ensemble, :mod:`attribution.ensemble`); ``kronfluence_defaults`` (kronfluence's Analyzer with its default
   arguments: EK-FAC, damping 1e-8, every Linear tracked); ``trak`` (``traker``, an ensemble of
   ``--trak-models`` models: the reported one plus others trained with other seeds) and
   ``trak_1`` (the reported model alone); baselines ``loss`` and ``random``. Then ``--draws``
   independent draws (default 3), each of ``subsets`` random halves retrained with ``seeds`` seeds
   of its own (``--seeds`` = retraining seeds averaged per subset, as before; ``--draws`` =
   independent draws of halves + retraining seeds), every method scored against the same
   retrainings; each draw gives one LDS per method. Reported: the mean over draws, its sample
   sd and each draw's value.

A method predicts a subset's query loss as minus the sum of its scores over the subset's members
(positive score = lowers the loss); LDS (``attribution.lds``) is the Spearman correlation between
prediction and measurement across subsets, averaged over queries. The measurement is the task's:
squared error (regression), negative margin (classifiers), summed completion NLL (LM). Retraining
runs in ``--workers`` processes of one thread each through the toolkit's ``Retrainer``
(``bench/_lds_retrain.py``); results do not depend on their number.

Sizes (subsets x seeds per draw; selection subsets x seeds), per dataset unless ``--subsets``,
``--seeds``, ``--select-subsets``, ``--select-seeds`` set them for all (see ``SIZES``): the MLPs
50 x 2 per draw (3 draws: 300 retrainings) and 30 x 2 per length at selection; the LM 50 x 1 per
draw (150 retrainings) and 30 x 1 per length at selection. The LM is shrunk to fit: a 1-layer
GPT-2 of width 32 (16k parameters) on 400 TInt traces (add/sub, numbers of 1-2 digits), 48 unseen
problems as queries (three blocks of 16 for EK-FAC+CG's solve). One retraining on a half, one
thread, measured with ``--time-retraining`` on the shared 2-core machine (partly loaded): concrete
0.23/0.39/0.54 s of CPU at 10/20/40 epochs, digits 0.25/0.39/0.69 s at 20/40/80, wine about 0.15 s,
friedman1 0.20/0.23/0.36 s at 10/20/40, the LM 1.1/2.7 s at 100/200 steps. With the main process's
scoring, the run measured 1,290 s wall (2,011 CPU seconds) alone on 2 cores with ``--workers 2``
at dc4be66, ensembles included (``seconds`` / ``cpu_seconds`` in the JSON, per dataset and part).
With fewer halves and one seed per half the LM's figures are noisier than the MLPs'.

Writes bench/results/lds.json: ``<dataset>.<method>`` = mean LDS over the draws (a float), for
every method above; ``<dataset>_spread.<method>`` = ``{mean, sd, min, max, n, per_draw}``;
``auto_choice.<dataset>`` = ``{strategy, damping, engine, ensemble, selection_lds, epochs}`` (selection_lds:
the chosen setting's LDS on the selection seed); ``selection.<dataset>`` = ``{epochs.<n>.ekfac,
chosen_epochs, auto (validation's whole grid), damping.<label> (EK-FAC at the chosen length),
trak_proj_dim.<k>.{trak, trak_1}, chosen_trak_proj_dim, rules, seconds}``; ``goals`` (the issue's
targets checked on these figures); ``<dataset>_details`` (sizes, draw seeds, settings of each
reference, wall and CPU seconds per part, CPU seconds per retraining); ``seconds`` /
``cpu_seconds`` per dataset and stage. TRAK needs ``pip install -e '.[bench]'``.

``--time-retraining`` only times one retraining per dataset and length and prints it. Changed from
the two-dataset version: halves are drawn as validation draws them (``round(n / 2)`` members,
validation's seeds), ``selection.<dataset>.damping`` holds validation's dampings (heuristic, x0.1,
x10) instead of fixed values, ``--weight-decay`` is gone (``_lds_data.WEIGHT_DECAY``), and a fixed
``--epochs`` still runs the selection draw (validation needs it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    RESULTS_DIR,
    add_provenance_args,
    machine_info,
    mean_sd,
    now_iso,
    print_table,
    require_clean_tree,
    write_result,
)
from _lds_data import DATASETS, LM_DATA, LM_MODEL, SPECS, load, n_params, train_full  # noqa: E402
from _lds_methods import (  # noqa: E402
    Clock,
    baseline_scores,
    engine_scores,
    kronfluence_default_scores,
    trak_scores,
    trak_settings,
)
from _lds_retrain import (  # noqa: E402
    Draw,
    derived_seed,
    draw_results,
    model_results,
    retraining_pool,
    start_draws,
    start_models,
)
from _lds_select import select  # noqa: E402

from attribution.ensemble import ensemble_matrix  # noqa: E402
from attribution.lds import linear_datamodeling_score  # noqa: E402
from attribution.strategies import STRATEGIES  # noqa: E402

ENGINE = ("identity", "diagonal", "kfac", "ekfac", "ekfac_cg")
METHODS = (*ENGINE, "auto", "ekfac_ensemble", "kronfluence_defaults", "trak", "trak_1", "loss", "random")
#: models auto's validation may average (``--ensemble``): as many as TRAK's ensemble, fewer on the LM,
#: whose EK-FAC+CG solves (about 45 s a model) would not fit the benchmark's time otherwise
ENSEMBLE = {"concrete": 10, "digits": 10, "wine": 10, "friedman1": 10, "lm": 3}
PEERS = ("kronfluence_defaults", "trak")  # the peer rows `auto` must beat by 0.02
#: per dataset: (subsets, retraining seeds) of each reported draw, and of the selection draw
SIZES = {
    "concrete": {"report": (50, 2), "select": (30, 2)},
    "digits": {"report": (50, 2), "select": (30, 2)},
    "wine": {"report": (50, 2), "select": (30, 2)},
    "friedman1": {"report": (50, 2), "select": (30, 2)},
    "lm": {"report": (50, 1), "select": (30, 1)},
}
assert set(ENGINE) == set(STRATEGIES)


# ---------------------------------------------------------------------- the report stage
def report(kind: str, epochs: int, proj_dim: int, auto: dict, lr: float | None, size: tuple[int, int],
           args: argparse.Namespace, pool) -> dict:
    """Train at ``--seed``, score with every method, retrain ``--draws`` draws, LDS per method and draw."""
    split = load(kind, args.seed)
    clock = Clock()
    draws = [Draw(derived_seed(args.seed, 4, d), size[0], size[1], split.n_train) for d in range(args.draws)]
    with tempfile.TemporaryDirectory(prefix="lds-report-") as tmp:
        # the workers train TRAK's other models, then retrain every draw, while this process scores
        extra_models = start_models(kind, args.seed, [derived_seed(args.seed, 3, k)
                                                      for k in range(1, args.trak_models)], epochs, lr, pool)
        pending = start_draws(str(Path(tmp) / "store"), kind, args.seed, epochs, lr, draws, pool)
        scores, info, model = _score_all(kind, split, epochs, proj_dim, auto, lr, args, clock, extra_models)
        with clock.part("retraining_wait") as extra:
            measured, worker_cpu = draw_results(pending, draws)
            extra["cpu"] = worker_cpu
    per_draw = {m: [linear_datamodeling_score(scores[m], d.masks, y) for d, y in zip(draws, measured, strict=True)]
                for m in METHODS}
    seconds = clock.as_dict()
    n_retrains = sum(d.subsets * d.seeds for d in draws)
    seconds["retraining_per_model"] = {
        "cpu": worker_cpu / n_retrains if args.workers else None, "retrainings": n_retrains,
        "note": "worker CPU seconds per retraining (training + measuring; None without workers). The workers "
                "retrain while this process scores: parts ending in _wait are the time left to wait for them"}
    return {"n_train": split.n_train, "n_queries": split.n_queries, "epochs": epochs, "subsets": size[0],
            "seeds": size[1], "draws": args.draws, "draw_seeds": [d.seed for d in draws],
            "model_parameters": n_params(model), "per_draw": per_draw, "settings": info, "seconds": seconds}


def _score_all(kind: str, split, epochs: int, proj_dim: int, auto: dict, lr: float | None,
               args: argparse.Namespace, clock: Clock, extra_models) -> tuple[dict[str, np.ndarray], dict, Any]:
    """Train the reported model and score it with every method: (scores by method, settings, the model)."""
    with clock.part("train"):
        model = train_full(kind, split, args.seed, epochs, lr)
    scores: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    for strategy in ENGINE:
        with clock.part(strategy):
            scores[strategy] = engine_scores(kind, model, split, strategy, args.seed)
    with clock.part("kronfluence_defaults"):
        scores["kronfluence_defaults"], info["kronfluence_defaults"] = kronfluence_default_scores(
            kind, model, split, args.seed)
    with clock.part("baselines"):
        scores.update(baseline_scores(kind, model, split, args.seed))
    with clock.part("trak_extra_models_wait") as extra:
        others, extra["cpu"] = model_results(extra_models, kind, args.seed, epochs, lr)
    with clock.part("trak"):
        trak = trak_scores(kind, [model, *others], split, proj_dim)
    scores["trak"], scores["trak_1"] = trak[args.trak_models], trak[1]
    info["trak"] = trak_settings(args.trak_models, proj_dim)
    with clock.part("ekfac_ensemble"):  # EK-FAC averaged over the same models as TRAK's ensemble
        ekfac_members = [scores["ekfac"]] + [engine_scores(kind, m, split, "ekfac", args.seed) for m in others]
        scores["ekfac_ensemble"] = ensemble_matrix(ekfac_members)
    info["ekfac_ensemble"] = {"models": len(ekfac_members), "combine": "mean of the models' EK-FAC scores "
                              "(attribution.ensemble); the models are TRAK's"}
    with clock.part("auto"):
        k = auto.get("ensemble", 1)
        if k > len(others) + 1:
            raise SystemExit(f"{kind}: auto chose an ensemble of {k} models, --trak-models trains {len(others) + 1}")
        same = auto["engine"] == {"damping": None}  # the heuristic: that strategy's row
        if k == 1:
            scores["auto"] = (scores[auto["strategy"]] if same else
                              engine_scores(kind, model, split, auto["strategy"], args.seed, **auto["engine"]))
        elif same and auto["strategy"] == "ekfac" and k == len(ekfac_members):
            scores["auto"] = scores["ekfac_ensemble"]
        else:
            first = scores[auto["strategy"]] if same else engine_scores(kind, model, split, auto["strategy"],
                                                                        args.seed, **auto["engine"])
            scores["auto"] = ensemble_matrix([first] + [
                engine_scores(kind, m, split, auto["strategy"], args.seed, **auto["engine"]) for m in others[: k - 1]])
        info["auto"] = {**auto, "scores": "the engine with the chosen setting" + (
            f", averaged over the reported model and {k - 1} of TRAK's other models" if k > 1 else "")}
    return scores, info, model


def spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample sd, min, max and n over draws (NaN draws left out of the figures), and each draw's value."""
    finite = [v for v in values if v == v]
    figs = mean_sd(finite) if finite else {"mean": float("nan"), "sd": None, "min": None, "max": None, "n": 0}
    return {**figs, "per_draw": values}


def goals(result: dict, datasets: list[str]) -> dict:
    """The issue's targets checked on the means: ``auto`` within 0.02 of the best other row and at least
    every peer row + 0.02 on each dataset; EK-FAC+CG at least EK-FAC + 0.05 on the LM."""
    out: dict[str, Any] = {}
    for kind in datasets:
        row = result[kind]
        others = {m: v for m, v in row.items() if m != "auto" and v == v}
        best = max(others, key=others.get)
        out[kind] = {"best_other": best, "best_other_lds": others[best], "auto": row["auto"],
                     "auto_within_0.02_of_best": row["auto"] >= others[best] - 0.02,
                     "auto_beats_peers_by_0.02": all(row["auto"] >= row[p] + 0.02 for p in PEERS)}
    if "lm" in datasets:
        out["lm"]["ekfac_cg_minus_ekfac"] = result["lm"]["ekfac_cg"] - result["lm"]["ekfac"]
        out["lm"]["ekfac_cg_beats_ekfac_by_0.05"] = out["lm"]["ekfac_cg_minus_ekfac"] >= 0.05
    return out


# ---------------------------------------------------------------------- arguments
def _grid(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _per_dataset(convert):
    """``DATASET=VALUE`` -> (dataset, converted value), for the repeatable per-dataset options."""
    def parse(text: str):
        name, sep, value = text.partition("=")
        if not sep or name.strip() not in DATASETS:
            raise argparse.ArgumentTypeError(f"expected DATASET=VALUE with DATASET one of {', '.join(DATASETS)}, "
                                             f"got {text!r}")
        return name.strip(), convert(value)
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma list of {', '.join(DATASETS)}")
    p.add_argument("--draws", "--seeds-draw", type=int, default=3,
                   help="independent draws of subsets (each with its own retraining seeds); one LDS per draw")
    p.add_argument("--subsets", type=int, default=None, help="halves per draw, every dataset (default: SIZES)")
    p.add_argument("--seeds", type=int, default=None,
                   help="retraining seeds averaged per subset, every dataset (default: SIZES)")
    p.add_argument("--seed", type=int, default=0, help="data split, model and draws of the reported run")
    p.add_argument("--select-seed", type=int, default=1, help="the held-out seed the settings are chosen on")
    p.add_argument("--select-subsets", type=int, default=None, help="halves of the selection draw (default: SIZES)")
    p.add_argument("--select-seeds", type=int, default=None, help="seeds per selection subset (default: SIZES)")
    p.add_argument("--epoch-grid", type=_per_dataset(_grid), action="append", default=[], metavar="DATASET=A,B,C",
                   help="training lengths tried on the selection seed (epochs; AdamW steps for lm); default in "
                        "_lds_data.SPECS")
    p.add_argument("--epochs", type=_per_dataset(int), action="append", default=[], metavar="DATASET=N",
                   help="fix a dataset's training length (its selection then only runs validation and TRAK's sweep)")
    p.add_argument("--epoch-grid-concrete", type=_grid, default=None, help="= --epoch-grid concrete=...")
    p.add_argument("--epoch-grid-digits", type=_grid, default=None, help="= --epoch-grid digits=...")
    p.add_argument("--epochs-concrete", type=int, default=None, help="= --epochs concrete=N")
    p.add_argument("--epochs-digits", type=int, default=None, help="= --epochs digits=N")
    p.add_argument("--lr", type=_per_dataset(float), action="append", default=[], metavar="DATASET=LR",
                   help="learning rate of a dataset's training (default in _lds_data.SPECS)")
    p.add_argument("--lr-concrete", type=float, default=None, help="= --lr concrete=LR")
    p.add_argument("--lr-digits", type=float, default=None, help="= --lr digits=LR")
    p.add_argument("--auto-strategies", default=",".join(ENGINE), help="auto's validation grid: strategies")
    p.add_argument("--auto-dampings", default="auto",
                   help="auto's validation grid: dampings ('auto' = heuristic, x0.1, x10)")
    p.add_argument("--trak-models", type=int, default=10,
                   help="models TRAK ensembles: the reported one plus others trained with other seeds (trak_1: it alone)")
    p.add_argument("--trak-proj-grid", type=_grid, default=None,
                   help="TRAK projection dimensions tried on the selection seed, every dataset (default per dataset: "
                        "128,256,512; wine 16,32,64; lm 64,128,256)")
    p.add_argument("--trak-proj-dim", type=int, default=None, help="fix TRAK's projection dimension (no sweep)")
    p.add_argument("--workers", type=int, default=2,
                   help="retraining processes, one thread each (0: in this process); results do not depend on it")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (scoring); 2 is 10x slower when anything else runs")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "lds.json")
    p.add_argument("--time-retraining", action="store_true",
                   help="only time one retraining on a half per dataset and length (one thread), print, write nothing")
    add_provenance_args(p)
    args = p.parse_args(argv)
    if args.select_seed == args.seed:
        p.error("--select-seed must differ from --seed: settings are chosen on a held-out seed")
    if args.trak_models < 1 or args.draws < 1:
        p.error("--trak-models and --draws must be at least 1")
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(args.datasets) - set(DATASETS))
    if unknown:
        p.error(f"unknown datasets {unknown}; expected some of {', '.join(DATASETS)}")
    grids = {k: list(v["epoch_grid"]) for k, v in SPECS.items()}
    grids.update({k: v for k, v in (("concrete", args.epoch_grid_concrete), ("digits", args.epoch_grid_digits)) if v})
    grids.update(dict(args.epoch_grid))
    fixed = {k: v for k, v in (("concrete", args.epochs_concrete), ("digits", args.epochs_digits)) if v}
    fixed.update(dict(args.epochs))
    args.grids = {k: [fixed[k]] if k in fixed else g for k, g in grids.items()}
    args.fixed = fixed
    lrs = {k: v for k, v in (("concrete", args.lr_concrete), ("digits", args.lr_digits)) if v is not None}
    lrs.update(dict(args.lr))
    args.lrs = lrs
    args.auto_strategies = [s.strip() for s in args.auto_strategies.split(",") if s.strip()]
    args.auto_dampings = [s.strip() for s in args.auto_dampings.split(",") if s.strip()]
    return args


def sizes_for(kind: str, args: argparse.Namespace) -> tuple[tuple[int, int], tuple[int, int]]:
    """(subsets, seeds) of each reported draw and of the selection draw, after the command-line overrides."""
    (s, k), (ss, sk) = SIZES[kind]["report"], SIZES[kind]["select"]
    return ((args.subsets or s, args.seeds or k), (args.select_subsets or ss, args.select_seeds or sk))


# ---------------------------------------------------------------------- main
def time_retraining(args: argparse.Namespace) -> dict:
    """Wall and CPU seconds of one retraining (a half of the training set, one thread, training + measuring)
    per dataset and length of its grid: what the run's time follows from."""
    from _lds_retrain import _retrain_one

    rows, out = [], {}
    for kind in args.datasets:
        split = load(kind, args.select_seed)
        draw = Draw(args.select_seed, 1, 1, split.n_train)
        (members, seed), = draw.jobs()
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports and first calls, not timed
            _retrain_one((str(Path(tmp) / "store"), kind, args.select_seed, min(args.grids[kind]), args.lrs.get(kind),
                          members, seed))
        for epochs in args.grids[kind]:
            with tempfile.TemporaryDirectory() as tmp:
                wall = time.perf_counter()
                _, cpu = _retrain_one((str(Path(tmp) / "store"), kind, args.select_seed, epochs, args.lrs.get(kind),
                                       members, seed))
                wall = time.perf_counter() - wall
            out[f"{kind}@{epochs}"] = {"wall": wall, "cpu": cpu}
            rows.append([kind, epochs, wall, cpu])
    print_table("one retraining on a half (one thread, after a warm-up retraining)",
                ["dataset", "length", "wall s", "CPU s"], rows)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.time_retraining:
        torch.set_num_threads(1)
        warnings.filterwarnings("ignore", category=FutureWarning)
        return time_retraining(args)
    require_clean_tree(args.allow_dirty)  # fail now, not when writing after the whole run
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=FutureWarning)  # kronfluence's GradScaler, torch.jit.script
    t_start = time.perf_counter()
    result: dict = {"benchmark": "lds", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "methods": list(METHODS), "lm_problem": {"data": LM_DATA, "model": LM_MODEL},
                    "auto_choice": {}, "selection": {}, "seconds": {}, "cpu_seconds": {}}
    t0 = time.perf_counter()
    pool = retraining_pool(args.workers)
    result["seconds"]["start_workers"] = time.perf_counter() - t0
    try:
        for kind in args.datasets:
            run_dataset(kind, args, pool, result)
    finally:
        if pool is not None:
            pool.shutdown()
    result["goals"] = goals(result, args.datasets)
    print_table("LDS, mean (sd) over draws: datasets x methods", ["method", *args.datasets],
                [[m, *[f"{result[k][m]:.3f} ({_sd(result[f'{k}_spread'][m])})" for k in args.datasets]]
                 for m in METHODS])
    print_table("auto's choice (validation on the selection seed)",
                ["dataset", "strategy", "damping", "models", "selection LDS"],
                [[k, c["strategy"], c["damping"], c["ensemble"], c["selection_lds"]]
                 for k, c in result["auto_choice"].items()])
    print_table("seconds per dataset (wall; CPU incl. workers)", ["dataset", "selection", "report", "CPU"],
                [[k, result["seconds"][f"{k}_selection"], result["seconds"][f"{k}_report"],
                  result["cpu_seconds"][f"{k}_selection"] + result["cpu_seconds"][f"{k}_report"]]
                 for k in args.datasets])
    result["seconds"]["total"] = time.perf_counter() - t_start
    result["finished_at"] = now_iso()
    write_result(args.out, result)
    print(f"wrote {args.out} ({result['seconds']['total']:.0f} s)")
    return result


def _sd(s: dict) -> str:
    return "-" if s.get("sd") is None else f"{s['sd']:.3f}"


def run_dataset(kind: str, args: argparse.Namespace, pool, result: dict) -> None:
    """Selection then report for one dataset; fills its keys of ``result`` and prints its tables."""
    size, select_size = sizes_for(kind, args)
    lr = args.lrs.get(kind)
    grid = args.grids[kind]
    proj_grid = None if args.trak_proj_dim else (args.trak_proj_grid or list(SPECS[kind]["proj_grid"]))
    print(f"{kind}: selection on seed {args.select_seed} (lengths {grid}, {select_size[0]} subsets x "
          f"{select_size[1]} seeds) ...", flush=True)
    sel = select(kind, grid, lr, {"select_seed": args.select_seed, "select_subsets": select_size[0],
                                  "select_seeds": select_size[1], "trak_models": args.trak_models,
                                  "proj_grid": proj_grid, "auto_strategies": args.auto_strategies,
                                  "auto_dampings": args.auto_dampings,
                                  "ensemble": min(ENSEMBLE[kind], args.trak_models)}, pool)
    result["selection"][kind] = sel
    result["seconds"][f"{kind}_selection"] = sel["seconds"]["wall_total"]
    result["cpu_seconds"][f"{kind}_selection"] = sel["seconds"]["cpu_total"]
    epochs = sel["chosen_epochs"]
    auto = sel["auto"]
    result["auto_choice"][kind] = {"strategy": auto["strategy"], "damping": auto["damping"],
                                   "engine": auto["engine"], "ensemble": auto["ensemble"],
                                   "selection_lds": auto["selection_lds"],
                                   "epochs": epochs, "selection_seed": args.select_seed}
    print_table(f"selection on {kind}, seed {args.select_seed}: EK-FAC LDS by length; auto's validation grid at "
                f"{epochs}; TRAK by projection", ["setting", "LDS"],
                [[f"length {e}", v["ekfac"]] for e, v in sel["epochs"].items()]
                + [[f"validation {k}" + (" (chosen)" if k in (auto["strategy"], f"{auto['strategy']}@{auto['damping']}")
                                         else ""), v["lds"]] for k, v in auto["grid"].items()]
                + [[f"TRAK-{args.trak_models} proj {k} (TRAK-1)", f"{v['trak']:.3f} ({v['trak_1']:.3f})"]
                   for k, v in sel.get("trak_proj_dim", {}).items()])
    proj_dim = args.trak_proj_dim or sel.get("chosen_trak_proj_dim")
    print(f"{kind}: reporting at seed {args.seed}, length {epochs}, {args.draws} draws x {size[0]} subsets x "
          f"{size[1]} seeds ...", flush=True)
    res = report(kind, epochs, proj_dim, result["auto_choice"][kind], lr, size, args, pool)
    res["epochs_chosen_by"] = (f"fixed by --epochs (validation and TRAK's sweep still ran on seed {args.select_seed})"
                               if kind in args.fixed else f"selection on seed {args.select_seed} (see selection.{kind})")
    result[f"{kind}_spread"] = {m: spread(v) for m, v in res.pop("per_draw").items()}
    result[kind] = {m: s["mean"] for m, s in result[f"{kind}_spread"].items()}
    result[f"{kind}_details"] = res
    result["seconds"][f"{kind}_report"] = res["seconds"]["wall_total"]
    result["cpu_seconds"][f"{kind}_report"] = res["seconds"]["cpu_total"]
    print_table(f"LDS on {kind} ({res['n_train']} train / {res['n_queries']} queries, length {epochs}, "
                f"{args.draws} draws x {size[0]} x {size[1]})", ["method", "mean", "sd", "per draw", "scoring s"],
                [[m, s["mean"], s["sd"], " ".join(f"{v:.3f}" for v in s["per_draw"]), res["seconds"]["wall"].get(m)]
                 for m, s in result[f"{kind}_spread"].items()])


if __name__ == "__main__":
    main()
