"""Noisy chain-of-thought: reproduce the noise effect, detect the noisy traces, recover by curation.

Protocol (every setting chosen away from the figures it is reported with):
0. Weights, on a selection seed (``--select-seed``, its own data and model, never reported):
   AUROC of the filter's rank-mean combination for each candidate weighting of the evidence
   (loss alone, self-influence alone, both) against the planted truth. The richer weighting is
   kept only if it beats the simpler one by at least ``--min-gain`` AUROC; the chosen weights
   are then fixed for every reported seed.
1. Accuracy, per reported seed (``--seeds``): the same GPT-2 (from GPT2Config, trained from
   scratch, same seed and steps) on clean traces, on traces with static noise and on traces
   with dynamic noise at each of ``--rates``; greedy accuracy on the noise-free test split.
2. Detection, per reported seed, on a training set with both kinds planted (``--detect-dynamic``
   and ``--detect-static``): the pipeline chooses the flag budget by *dev* accuracy (retraining at
   each fraction of the config's ``budget_grid``; no knowledge of the planted rate), then writes
   one flags run per method at that budget (random, completion loss, self-influence, influence
   on failing dev answers, the combined filter). Precision and recall are read from each run's
   ``flagged`` column: per noise kind (the other kind left out) and overall.
3. Recovery, per reported seed: test accuracy of the model retrained on the chosen curated set,
   against the noisy model and a model trained on the clean traces only (gap recovered).
Headline cells are the mean and spread over the reported seeds.

Writes bench/results/noisy_cot.json; re-running reuses datasets, models and scores in --work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

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
from rich.console import Console  # noqa: E402

import stores  # noqa: E402
from curation.config import default_config_path, load_config  # noqa: E402
from curation.evaluation import detection_metrics, mean_spread  # noqa: E402
from curation.pipelines.noisy_cot.config import NoisyCoTConfig  # noqa: E402
from curation.pipelines.noisy_cot.data import (  # noqa: E402
    Splits,
    generate_eval_splits,
    generate_training_traces,
    prepare_splits,
)
from curation.pipelines.noisy_cot.pipeline import NoisyCoTPipeline  # noqa: E402
from filters.evidence import self_score_evidence  # noqa: E402
from filters.noisy_cot import combine_ranks  # noqa: E402

WEIGHTINGS = {  # candidates, simplest first
    "loss": {"loss": 1.0, "self_influence": 0.0, "query_push": 0.0},
    "self_influence": {"loss": 0.0, "self_influence": 1.0, "query_push": 0.0},
    "loss+self_influence": {"loss": 1.0, "self_influence": 1.0, "query_push": 0.0},
}
METRICS = ("auroc", "precision_at_budget", "recall_at_budget", "n_positive", "n_flagged")


def mixed_config(cfg: NoisyCoTConfig, seed: int, name: str, dynamic: float, static: float) -> NoisyCoTConfig:
    """The config with both noise kinds planted, for one seed."""
    out = cfg.model_copy(deep=True)
    out.seed, out.name = seed, name
    out.data.dynamic_rate, out.data.static_rate = dynamic, static
    return out


def select_weights(store: stores.Store, cfg: NoisyCoTConfig, console: Console, min_gain: float) -> dict:
    """Step 0: AUROC of each candidate weighting on the selection seed; the chosen weights."""
    pipe = NoisyCoTPipeline(store, cfg, console)
    pipe.splits = prepare_splits(store, cfg)
    train = pipe.splits.train
    folder = pipe.ensure_model(train)
    runs = pipe.evidence(train, folder, pipe.split_accuracy(folder, pipe.splits.dev))
    truth = store.sql("SELECT sample_id, noise <> 'clean' AND trace_changed AS bad FROM samples "
                      "WHERE dataset = ? ORDER BY ordinal", [train])
    ids, bad = truth["sample_id"].to_list(), truth["bad"].to_numpy().astype(bool)
    pct = {name: self_score_evidence(store, runs[name], name).percentile(ids) for name in ("loss", "self_influence")}
    auroc = {w: detection_metrics(combine_ranks(pct, weights), bad, 0.0)["auroc"] for w, weights in WEIGHTINGS.items()}
    singles = max(("loss", "self_influence"), key=lambda w: auroc[w])
    chosen = "loss+self_influence" if auroc["loss+self_influence"] >= auroc[singles] + min_gain else singles
    return {"seed": cfg.seed, "auroc": auroc, "chosen": chosen, "weights": WEIGHTINGS[chosen], "min_gain": min_gain,
            "rule": "best single evidence; both only if they beat it by >= min_gain AUROC (planted truth, this seed only)"}


def summarise(per_seed: dict[int, dict], path: tuple[str, ...]) -> dict:
    """mean_spread of the value at ``path`` across seeds (skipping seeds where it is missing)."""
    values = []
    for res in per_seed.values():
        v = res
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            values.append(float(v))
    return mean_spread(values) if values else {}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=default_config_path(), help="pipeline YAML to start from")
    p.add_argument("--seeds", default="1,2,3", help="reported seeds (data, model and filter)")
    p.add_argument("--sweep-seeds", default=None, help="seeds of the accuracy sweep (default: --seeds)")
    p.add_argument("--select-seed", type=int, default=0, help="seed the evidence weights are chosen on")
    p.add_argument("--min-gain", type=float, default=0.005, help="AUROC a second evidence must add to be used")
    p.add_argument("--rates", default="0.1,0.2,0.5", help="contamination rates for the accuracy sweep")
    p.add_argument("--detect-dynamic", type=float, default=0.2)
    p.add_argument("--detect-static", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work" / "noisy_cot")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "noisy_cot.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    import torch

    torch.set_num_threads(2)
    cfg = load_config(args.config)
    if args.steps:
        cfg.model.steps = args.steps
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sweep_seeds = [int(s) for s in (args.sweep_seeds or args.seeds).split(",") if s.strip()]
    if args.select_seed in seeds:
        raise SystemExit(f"--select-seed {args.select_seed} is also a reported seed: choose another")
    console = Console()
    store = stores.open(args.work)
    t0 = time.perf_counter()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    result: dict = {"benchmark": "noisy_cot", "created_at": now_iso(), "machine": machine_info(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "config": cfg.model_dump(), "seeds": seeds, "sweep_seeds": sweep_seeds}
    result["machine"]["git"] = git

    console.print(f"[bold]0. evidence weights[/] on selection seed {args.select_seed}")
    sel_cfg = mixed_config(cfg, args.select_seed, f"sel{args.select_seed}", args.detect_dynamic, args.detect_static)
    selection = select_weights(store, sel_cfg, console, args.min_gain)
    result["weight_selection"] = selection
    console.print(f"  AUROC {', '.join(f'{k} {v:.3f}' for k, v in selection['auroc'].items())}: "
                  f"chosen {selection['chosen']}")

    accuracy: dict[str, dict[str, float]] = {}
    for seed in sweep_seeds:
        sweep_cfg = cfg.model_copy(deep=True)
        sweep_cfg.seed, sweep_cfg.name = seed, f"sweep{seed}"
        sweep = NoisyCoTPipeline(store, sweep_cfg, console)
        test, dev = generate_eval_splits(store, sweep_cfg)
        sweep.splits = Splits(train=f"{sweep_cfg.name}_train", test=test, dev=dev, has_truth=True)
        accuracy[str(seed)] = {}
        for label, dyn, static in [("clean", 0.0, 0.0)] + [(f"static_{r:g}", 0.0, r) for r in rates] \
                + [(f"dynamic_{r:g}", r, 0.0) for r in rates]:
            name = generate_training_traces(store, sweep_cfg, f"{sweep_cfg.name}_{label.replace('.', 'p')}", dyn, static)
            accuracy[str(seed)][label] = sweep.split_accuracy(sweep.ensure_model(name)).accuracy
            console.print(f"seed {seed} accuracy {label}: {accuracy[str(seed)][label]:.1%}")
    labels = list(next(iter(accuracy.values())))
    result["accuracy"] = {label: {**mean_spread([accuracy[s][label] for s in accuracy]),
                                  "per_seed": {s: accuracy[s][label] for s in accuracy}} for label in labels}

    per_seed: dict[int, dict] = {}
    for seed in seeds:
        mixed = mixed_config(cfg, seed, f"mix{seed}", args.detect_dynamic, args.detect_static)
        mixed.filter.weights = dict(selection["weights"])
        console.print(f"[bold]seed {seed}[/]: detection and recovery")
        res = NoisyCoTPipeline(store, mixed, console).execute()
        per_seed[seed] = {"budget": res.budget, "budgets": res.budgets, "n_flagged": res.n_flagged,
                          "accuracy": res.accuracy, "dev_accuracy": res.dev_accuracy, "recovery": res.recovery,
                          "detection": res.detection, "runs": res.runs, "flag_runs": res.flag_runs}

    kinds = list(next(iter(per_seed.values()))["detection"])
    methods = list(next(iter(per_seed.values()))["detection"][kinds[0]])
    detection: dict = {"n_flagged": {str(s): r["n_flagged"] for s, r in per_seed.items()}}
    for kind in kinds:
        detection[kind] = {}
        for m in methods:
            spread = {k: summarise(per_seed, ("detection", kind, m, k)) for k in METRICS}
            detection[kind][m] = {k: spread[k].get("mean") for k in METRICS} | {"spread": spread}
    result["detection"] = detection
    result["detection_setting"] = {"dynamic_rate": args.detect_dynamic, "static_rate": args.detect_static,
                                   "budget": "chosen per seed on dev accuracy",
                                   "budget_grid": cfg.filter.budget_grid,
                                   "budgets_chosen": {str(s): r["budget"] for s, r in per_seed.items()}}
    result["recovery"] = {k: summarise(per_seed, ("recovery", k))
                          for k in ("noisy_acc", "curated_acc", "clean_acc", "gap_recovered", "budget")}
    result["per_seed"] = {str(s): r for s, r in per_seed.items()}
    result["seconds"] = time.perf_counter() - t0

    def ms(d: dict) -> str:
        return "-" if not d else f"{d['mean']:.3f} ± {d['std']:.3f}" if d["n"] > 1 else f"{d['mean']:.3f}"

    print_table(f"test accuracy (greedy, noise-free problems; seeds {sweep_seeds})", ["training data", "mean ± std"],
                [[k, ms(v)] for k, v in result["accuracy"].items()])
    for kind in kinds:
        print_table(f"detecting {kind} noise (flags runs at the dev-chosen budget; seeds {seeds})",
                    ["evidence", "AUROC", "precision", "recall"],
                    [[m, ms(v["spread"]["auroc"]), ms(v["spread"]["precision_at_budget"]),
                      ms(v["spread"]["recall_at_budget"])] for m, v in detection[kind].items()])
    print_table(f"recovery (test accuracy; seeds {seeds})", ["", "mean ± std"],
                [[k, ms(v)] for k, v in result["recovery"].items()])
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
