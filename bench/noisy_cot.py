"""Noisy chain-of-thought: reproduce the noise effect, detect the noisy traces, recover by curation.

1. Accuracy: the same GPT-2 (from GPT2Config, trained from scratch, same seed and steps) on clean
   traces, on traces with static noise and on traces with dynamic noise at contamination
   10/20/50%; greedy test accuracy on noise-free problems.
2. Detection, on a training set with both kinds planted (dynamic and static, 20% each by default):
   AUROC, precision and recall at the flag budget for random, completion loss, self-influence,
   influence on the model's own wrong answers, and the combined noisy-CoT filter, in the same run;
   dynamic and static separately (each against the unaffected traces).
3. Recovery: drop the flagged traces, retrain with the same seed and steps, and compare with the
   noisy model and with a model trained on the clean traces only (at each of --budgets).

Writes bench/results/noisy_cot.json; re-running reuses datasets, models and scores in --work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import RESULTS_DIR, machine_info, now_iso, print_table, write_result  # noqa: E402
from rich.console import Console  # noqa: E402

import stores  # noqa: E402
from curation.config import default_config_path, load_config  # noqa: E402
from curation.noisy_cot import NoisyCoTPipeline  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=default_config_path(), help="pipeline YAML to start from")
    p.add_argument("--rates", default="0.1,0.2,0.5", help="contamination rates for the accuracy sweep")
    p.add_argument("--detect-dynamic", type=float, default=0.2)
    p.add_argument("--detect-static", type=float, default=0.2)
    p.add_argument("--budgets", default="0.2,0.4", help="flag budgets for recovery (the first is the headline)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work" / "noisy_cot")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "noisy_cot.json")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    cfg = load_config(args.config)
    if args.steps:
        cfg.model.steps = args.steps
    console = Console()
    store = stores.open(args.work)
    t0 = time.perf_counter()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]

    sweep = NoisyCoTPipeline(store, cfg, console)
    accuracy: dict[str, float] = {}
    for label, dyn, static in [("clean", 0.0, 0.0)] + [(f"static_{r:g}", 0.0, r) for r in rates] \
            + [(f"dynamic_{r:g}", r, 0.0) for r in rates]:
        name = sweep.ensure_data(f"{cfg.name}_{label.replace('.', 'p')}", dyn, static)
        accuracy[label] = sweep.evaluate(sweep.ensure_model(name))[0]
        console.print(f"accuracy {label}: {accuracy[label]:.1%}")

    mixed = cfg.model_copy(deep=True)
    mixed.name = "mix"
    mixed.data.dynamic_rate, mixed.data.static_rate = args.detect_dynamic, args.detect_static
    budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    by_budget = {}
    for b in reversed(budgets):  # the headline budget last, so its curated dataset stays in the store
        mixed.filter.budget = b
        res = NoisyCoTPipeline(store, mixed, console).run()
        by_budget[f"{b:g}"] = res.recovery

    result = {
        "benchmark": "noisy_cot", "created_at": now_iso(), "machine": machine_info(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "config": cfg.model_dump(), "accuracy": accuracy,
        "detection": {kind: {m: {k: v[k] for k in ("auroc", "precision_at_budget", "recall_at_budget", "n_positive")}
                             for m, v in methods.items()} for kind, methods in res.detection.items()},
        "detection_setting": {"dynamic_rate": args.detect_dynamic, "static_rate": args.detect_static,
                              "budget": mixed.filter.budget, "noisy_acc_mixed": res.accuracy.get("noisy")},
        "recovery": res.recovery, "recovery_by_budget": by_budget, "runs": res.runs, "seconds": time.perf_counter() - t0,
    }
    print_table("test accuracy (greedy, noise-free problems)", ["training data", "accuracy"],
                [[k, v] for k, v in accuracy.items()])
    for kind, methods in result["detection"].items():
        print_table(f"detecting {kind} noise (budget {mixed.filter.budget:.0%})",
                    ["evidence", "AUROC", "P@budget", "R@budget"],
                    [[m, v["auroc"], v["precision_at_budget"], v["recall_at_budget"]] for m, v in methods.items()])
    print_table("recovery (accuracy of the model trained on ...)", ["budget", "noisy", "curated", "clean only", "gap recovered"],
                [[b, r["noisy_acc"], r["curated_acc"], r["clean_acc"], r["gap_recovered"]] for b, r in by_budget.items()])
    write_result(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
