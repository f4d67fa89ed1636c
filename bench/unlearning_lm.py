"""Corrective unlearning on a language model: forget 10% of fictitious people, MUSE/TOFU-style, vs retraining.

Per seed, 200 invented people (:mod:`curation.datasets.facts`) with five attributes each, stated as
biography sentences and as question-answer pairs; 10% of the people are held out (never trained
on: the non-members), 10% are to be forgotten, the rest retained. A GPT-2 (0.47 M parameters,
:data:`~curation.datasets.facts.FACTS_LM`) is trained from scratch on the retain + forget records
until it answers their questions; the target is the same recipe and seed trained on the retain
records only. Each method unlearns all the forget people's records from the trained model.

Metrics (greedy decoding; every figure on the same models and data):

- ``forget_qa`` / ``retain_qa``: exact-match accuracy of the answers to the forget / retain people's
  questions (TOFU-style knowledge); ``holdout_qa`` is the never-trained level;
- ``verbatim_rougeL``: ROUGE-L of the greedy continuation of each forget biography's prefix (the
  sentence up to the name) against the true continuation (MUSE's verbatim memorisation);
- ``privleak``: MUSE's PrivLeak, the Min-40% AUROC of forget vs holdout biographies relative to the
  retrained model's, in percent with MUSE's sign (negative = the forget people still look trained);
- ``seconds``: the method's wall time, against retraining's.

Sustainability: the forget people split into three requests served one after another (each
request's retain set excludes the people already forgotten); forget/retain QA after each.

Settings are chosen on a separate seed (``--select-seed``) from a small grid per method by what a
user can measure without retraining: retain QA minus twice the excess of forget QA over the
held-out people's QA. Writes the ``lm`` part of bench/results/unlearning.json (the classifier part
is ``bench/unlearning.py``'s).
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
from attribution.data import completion_samples  # noqa: E402
from attribution.tasks import CausalLMTask  # noqa: E402
from curation.actions.recipes import LMRecipe  # noqa: E402
from curation.actions.unlearning.base import UnlearningProblem  # noqa: E402
from curation.actions.unlearning.memorisation import (  # noqa: E402
    min_k_auroc,
    privleak,
    qa_accuracy,
    verbatim_rouge_l,
)
from curation.actions.unlearning.methods import make_method  # noqa: E402
from curation.datasets.facts import (  # noqa: E402
    FACTS_LM,
    fact_records,
    ingest_facts,
    make_people,
    split_of,
    split_people,
    train_facts_tokenizer,
)

N_PEOPLE, FORGET, HOLDOUT = 200, 0.1, 0.1
METHODS = ("gradient_ascent", "grad_diff", "npo", "ssd", "newton", "iau", "retrain_last")
SUSTAIN_METHODS = ("gradient_ascent", "grad_diff", "npo", "ssd", "newton", "iau")
GRIDS: dict[str, list[dict[str, Any]]] = {
    "gradient_ascent": [{"lr": lr, "steps": s} for lr in (1e-5, 3e-5, 1e-4) for s in (10, 30)],
    "grad_diff": [{"lr": lr, "steps": s} for lr in (3e-5, 1e-4, 3e-4) for s in (10, 30)],
    "npo": [{"lr": lr, "steps": s} for lr in (3e-5, 1e-4, 3e-4) for s in (10, 30)],
    "ssd": [{"alpha": a, "lam": lam} for a in (1.0, 10.0) for lam in (0.1, 1.0)],
    "newton": [{"scale": s} for s in (0.01, 0.1, 1.0)],
    "iau": [{"lr": lr} for lr in (0.03, 0.3, 3.0)],
    "retrain_last": [{"k": 1}],
}


class FactsSetting:
    """One seed: the corpus in a store, the tokenizer, the original model and the retrained target."""

    def __init__(self, seed: int, root: Path, *, retrain: bool = True):
        torch.manual_seed(seed)
        people = make_people(N_PEOPLE, seed)
        retain, forget, holdout = split_people(people, FORGET, HOLDOUT, seed)
        split = split_of(retain, forget, holdout)
        records = fact_records(people, seed, split=split)
        self.records = {s: [r for r in records if r.split == s] for s in ("retain", "forget", "holdout")}
        self.tokenizer = train_facts_tokenizer(records)
        self.store = stores.open(root / f"facts-{seed}", create=True)
        trained = self.records["retain"] + self.records["forget"]
        ingest_facts(self.store, trained, "facts", config={"generator": "facts", "seed": seed}, seed=seed)
        self.train = completion_samples(self.store, "facts", self.tokenizer, FACTS_LM.max_length)
        meta = self.store.read_samples("facts", columns=["sample_id", "split", "person_id"])
        split_of_id = dict(zip(meta["sample_id"].to_list(), meta["split"].to_list(), strict=True))
        self.person_of = dict(zip(meta["sample_id"].to_list(), meta["person_id"].to_list(), strict=True))
        self.forget_idx = [i for i, s in enumerate(self.train.ids) if split_of_id[s] == "forget"]
        self.seed = seed
        self.recipe = LMRecipe(self.tokenizer, FACTS_LM)
        t0 = time.perf_counter()
        self.model = self.recipe.fit(self.recipe.fresh(seed), self.train.data, seed)
        self.train_seconds = time.perf_counter() - t0
        self.target = None
        if retrain:
            t0 = time.perf_counter()
            self.target = self.unlearn("retrain", {}, self.model, self.forget_idx)
            self.retrain_seconds = time.perf_counter() - t0
            self.target_auc = self.forget_auc(self.target)

    def unlearn(self, name: str, settings: dict[str, Any], model, forget: list[int], exclude: list[int] = ()):
        """``name`` unlearns ``forget`` (training indices) from ``model``; ``exclude`` were forgotten before."""
        train = self.train
        if exclude:
            keep = sorted(set(range(len(self.train))) - set(exclude))
            where = {old: new for new, old in enumerate(keep)}
            train = self.train.subset(keep)
            forget = [where[i] for i in forget]
        problem = UnlearningProblem(model, CausalLMTask(model), train, forget, recipe=self.recipe, store=self.store,
                                    seed=self.seed, batch_size=32)
        return make_method(name, **settings).unlearn(problem)

    def qa(self, model, split: str, people: set[str] | None = None, limit: int | None = None) -> float:
        recs = [r for r in self.records[split] if r.kind == "qa" and (people is None or r.person_id in people)]
        recs = recs[:limit] if limit else recs
        return float(qa_accuracy(model, self.tokenizer, [r.prompt for r in recs], [r.completion for r in recs]).mean())

    def verbatim(self, model) -> float:
        bios = [r for r in self.records["forget"] if r.kind == "bio"]
        return float(verbatim_rouge_l(model, self.tokenizer, [r.prefix for r in bios], [r.continuation for r in bios]).mean())

    def forget_auc(self, model) -> float:
        bio = {s: [r.text for r in self.records[s] if r.kind == "bio"] for s in ("forget", "holdout")}
        return min_k_auroc(model, self.tokenizer, bio["forget"], bio["holdout"], k=0.4)

    def metrics(self, model, seconds: float | None) -> dict[str, float]:
        auc = self.forget_auc(model)
        out = {"forget_qa": self.qa(model, "forget"), "retain_qa": self.qa(model, "retain"),
               "holdout_qa": self.qa(model, "holdout"), "verbatim_rougeL": self.verbatim(model),
               "min_k_auroc": auc}
        if self.target is not None:
            out["privleak"] = privleak(auc, self.target_auc)
        if seconds is not None:
            out["seconds"] = seconds
        return out


def select(seed: int, root: Path) -> dict[str, Any]:
    """Each method's settings on ``seed``: retain QA - 2 x max(0, forget QA - holdout QA) (no retraining needed)."""
    s = FactsSetting(seed, root, retrain=False)
    holdout = s.qa(s.model, "holdout")
    scores: dict[str, dict[str, Any]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    for name, grid in GRIDS.items():
        if len(grid) == 1:
            chosen[name] = grid[0]
            continue
        for cfg in grid:
            m = s.unlearn(name, cfg, s.model, s.forget_idx)
            forget_qa, retain_qa = s.qa(m, "forget"), s.qa(m, "retain", limit=300)
            scores.setdefault(name, {})[json.dumps(cfg)] = {
                "forget_qa": forget_qa, "retain_qa": retain_qa,
                "score": retain_qa - 2 * max(0.0, forget_qa - holdout)}
        best = max(scores[name], key=lambda k: scores[name][k]["score"])
        chosen[name] = json.loads(best)
        print(f"  selected {name}: {chosen[name]} ({scores[name][best]})", flush=True)
    return {"seed": seed, "holdout_qa": holdout, "methods": chosen, "scores": scores,
            "criterion": "retain QA (first 300 questions) - 2 x max(0, forget QA - holdout QA)"}


def run_seed(seed: int, root: Path, selection: dict[str, Any]) -> dict[str, Any]:
    s = FactsSetting(seed, root)
    out: dict[str, Any] = {"seed": seed, "n_train": len(s.train), "n_forget": len(s.forget_idx),
                           "original": s.metrics(s.model, s.train_seconds),
                           "retrain": s.metrics(s.target, s.retrain_seconds), "methods": {}, "sustainability": {}}
    for name in METHODS:
        t0 = time.perf_counter()
        model = s.unlearn(name, selection["methods"][name], s.model, s.forget_idx)
        out["methods"][name] = s.metrics(model, time.perf_counter() - t0)
        print(f"  seed {seed} {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in out["methods"][name].items()), flush=True)
    people = sorted({s.person_of[s.train.ids[i]] for i in s.forget_idx})
    requests = [people[i::3] for i in range(3)]
    for name in SUSTAIN_METHODS:
        model, gone, steps = s.model, [], []
        for r, group in enumerate(requests):
            forget = [i for i in s.forget_idx if s.person_of[s.train.ids[i]] in set(group)]
            model = s.unlearn(name, selection["methods"][name], model, forget, exclude=gone)
            gone += forget
            done = {p for g in requests[: r + 1] for p in g}
            steps.append({"request": r + 1, "forget_qa": s.qa(model, "forget", people=done),
                          "retain_qa": s.qa(model, "retain")})
        out["sustainability"][name] = steps
    return out


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("forget_qa", "retain_qa", "holdout_qa", "verbatim_rougeL", "min_k_auroc", "privleak", "seconds")
    lm: dict[str, Any] = {}
    for name in ("original", "retrain"):
        lm[name] = {k: mean_sd([r[name][k] for r in per_seed]) for k in keys}
    for name in METHODS:
        lm[name] = {k: mean_sd([r["methods"][name][k] for r in per_seed]) for k in keys}
        lm[name]["speedup_vs_retrain"] = mean_sd([r["retrain"]["seconds"] / r["methods"][name]["seconds"] for r in per_seed])
    lm["sustainability"] = {name: [{"request": i + 1,
                                    "forget_qa": mean_sd([r["sustainability"][name][i]["forget_qa"] for r in per_seed]),
                                    "retain_qa": mean_sd([r["sustainability"][name][i]["retain_qa"] for r in per_seed])}
                                   for i in range(3)] for name in SUSTAIN_METHODS}
    goals = {}
    for name in METHODS:
        m, o, t = lm[name], lm["original"], lm["retrain"]
        checks = {"forget_qa_within_5pt": abs(m["forget_qa"]["mean"] - t["forget_qa"]["mean"]) <= 0.05,
                  "retain_qa_ge_95pct_original": m["retain_qa"]["mean"] >= 0.95 * o["retain_qa"]["mean"],
                  "privleak_within_10pct": abs(m["privleak"]["mean"]) <= 10,
                  "20x_faster": m["speedup_vs_retrain"]["mean"] >= 20}
        goals[name] = checks | {"all": all(checks.values())}
    lm["goals"] = goals
    return lm


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(p, RESULTS_DIR / "unlearning.json")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: FACTS_LM's; fewer for a smoke run)")
    args = p.parse_args(argv)
    git = require_clean_tree(args.allow_dirty)
    started = now_iso()
    torch.set_num_threads(1)
    if args.steps is not None:
        global FACTS_LM
        FACTS_LM = dataclasses.replace(FACTS_LM, steps=args.steps)
    seeds = reported_seeds(args)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-unlearning-lm-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        selection = select(args.select_seed, root / "select")
        print(f"selection on seed {args.select_seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            per_seed.append(run_seed(seed, root / f"seed-{seed}", selection))
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    lm = aggregate(per_seed)
    lm.update({"selection": selection, "per_seed": per_seed, "seeds": seeds, "started_at": started,
               "machine": machine_info() | {"git": git}, "seconds_total": time.perf_counter() - t_all,
               "setup": {"people": N_PEOPLE, "forget": FORGET, "holdout": HOLDOUT,
                         "model": {k: getattr(FACTS_LM, k) for k in ("n_layer", "n_embd", "n_head", "steps",
                                                                      "batch_size", "lr", "max_length")}}})
    own = {"benchmark": "unlearning_lm", "args": vars(args) | {"out": str(args.out)}, "machine": lm.pop("machine"),
           "lm": lm}
    def ms(d: dict) -> str:
        return f"{d['mean']:.3f} ± {d['sd']:.3f}" if d["n"] > 1 else f"{d['mean']:.3f}"

    cols = ("forget_qa", "retain_qa", "verbatim_rougeL", "privleak", "seconds")
    print_table(f"language model: forget 10% of the people (seeds {seeds})", ["model", *cols],
                [[n, *[ms(lm[n][c]) for c in cols]] for n in ("original", "retrain", *METHODS)])
    print({n: g["all"] for n, g in lm["goals"].items()})
    lm_path = args.out.with_name(args.out.stem + "_lm.json")
    write_result(lm_path, own)  # the language model's own file, with its provenance
    merge_part(args.out, "lm", own["lm"] | {"machine": own["machine"], "provenance": own["provenance"]}, "unlearning")
    print(f"wrote {lm_path} and the lm part of {args.out}")
    return own


if __name__ == "__main__":
    main()
