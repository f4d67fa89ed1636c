"""Brain-rot dose-response: continual training on junk mixtures, the lesion, and what the junk filter saves.

Protocol (Xing et al. 2025 at toy scale; ``../shared/specs/filters.md`` section 2):

1. Per seed, a small GPT-2 (:class:`~curation.steps.train.LMConfig`, trained from scratch here) is
   trained on *clean text* (real prose: gensim's Wikipedia, Lee news, review and essay texts) plus
   TInt reasoning traces (2-digit add/sub, prompt-masked rows): the **base** model.
2. It is then continually trained, at a matched token budget (same steps of packed rows), on a web
   mixture with junk ratio 0/20/50/80/100% (by tokens), as the paper's continual pre-training is on
   the mixture alone (``--replay-share`` adds a fixed share of replayed traces to every arm; the
   committed results hold a 30% replay run beside the headline under ``dose_variants``).
   Junk is :mod:`curation.datasets.junk_text`: **simulated** posts (templated) in six categories,
   with simulated engagement counts; the clean part is real prose. Measured on noise-free test
   problems the model never saw: reasoning accuracy, the **thought-skipping** rate (completions
   whose trace misses required steps, by :func:`~curation.datasets.tint_verify.verify_trace`), and
   held-out clean-text perplexity. Hedges' g of each ratio against 0% over the seeds.
3. Detection on each seed's 50% mixture: AUROC of every evidence against the truth, per junk
   category (rules = datatrove's Gopher/C4/FineWeb rule sets; engagement = M1; perplexity under
   the base model, which was trained on clean text; a local TF-IDF classifier trained on a labelled
   junk set generated with another seed; influence = each document's push on thought-skipping,
   i.e. pairwise EK-FAC influence on the log-likelihood of *truncated* reasoning (prompt -> ``ans``
   directly) of dev problems; the combined filter), and the classifier on each category left out of
   its training.
4. Recovery: the 50% mixture is filtered by each evidence alone and by the combined junk filter,
   and the base model is continually trained on what is kept (same steps and replay share). Damage
   avoided = (acc(filtered) - acc(50%)) / (acc(0%) - acc(50%)), and the same on held-out perplexity
   (``damage_avoided_perplexity``, with perplexity's damage an increase).

Every threshold (rule sets failed, perplexity and influence robust-z cuts, classifier probability)
is chosen on the selection seed (``--select-seed``) by F1 against its junk labels; the reported
seeds choose nothing. What is simulated: every junk post, all engagement counts and the link between
junk and the reasoning task (the ``quiz`` category: answer-only puzzle posts in the trace notation).
Writes the ``dose_response``, ``hedges_g``, ``filter_recovery``, ``detection``,
``detection_left_out`` and ``dose_setting`` parts of bench/results/junk.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sys
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
)

import stores  # noqa: E402
from attribution.models import load_causal_lm  # noqa: E402
from curation.actions.recipes import CompletionTensors  # noqa: E402
from curation.datasets.contamination_sources import carrier_document, load_carriers  # noqa: E402
from curation.datasets.junk_text import JUNK_CATEGORIES, JunkTextConfig, generate_junk_text  # noqa: E402
from curation.datasets.tint import generate_tint  # noqa: E402
from curation.datasets.tint_verify import verify_trace  # noqa: E402
from curation.evaluation import hedges_g  # noqa: E402
from curation.steps.junk import query_push_run, reference_perplexity_run  # noqa: E402
from curation.steps.packing import pack_documents  # noqa: E402
from curation.steps.records import ingest_records  # noqa: E402
from curation.steps.tokenizer import train_bpe_tokenizer  # noqa: E402
from curation.steps.train import LMConfig, build_gpt2, greedy_complete, save_lm, train_lm  # noqa: E402
from filters.evidence import self_score_evidence  # noqa: E402
from filters.junk.classifier import JunkClassifier, leave_one_category_out  # noqa: E402
from filters.junk.engagement import EngagementFilter  # noqa: E402
from filters.junk.filter import JunkFilter, Threshold  # noqa: E402
from filters.junk.rules import RULE_SETS, rule_verdicts  # noqa: E402

RATIOS = (0.0, 0.2, 0.5, 0.8, 1.0)
EVIDENCES = ("rules", "engagement", "perplexity", "classifier", "influence")
RECOVERY = ("rules", "engagement", "perplexity", "classifier", "influence", "combined")
COMBINED = ("rules", "perplexity", "classifier", "influence")  # engagement needs popularity fields a user may lack
GRIDS = {"rules": [1, 2, 3], "perplexity": [0.5, 1.0, 1.5, 2.0, 3.0], "influence": [0.5, 1.0, 2.0, 3.0, 5.0],
         "classifier": [0.3, 0.5, 0.7, 0.9]}
FUNCTIONS = ("add", "sub")


@dataclasses.dataclass
class Settings:
    """Sizes and schedules (the defaults are the reported run's)."""

    n_base_text: int = 300
    n_traces: int = 6000
    n_test: int = 300
    n_dev: int = 64
    n_heldout: int = 100
    n_web_clean: int = 500
    n_web_junk: int = 2400
    n_labelled: int = 1200
    text_tokens: int = 40_000
    replay_share: float = 0.0
    exclude_categories: str = ""  # comma-separated junk categories left out of the mixtures (an ablation)
    vocab: int = 1024
    length: int = 64
    n_layer: int = 2
    n_embd: int = 128
    base_steps: int = 2400
    steps: int = 300
    lr: float = 3e-3
    cont_lr: float = 1e-3
    batch: int = 32


def lm_config(s: Settings, steps: int, lr: float) -> LMConfig:
    """The GPT-2 shape and a schedule of ``steps`` at ``lr``."""
    return LMConfig(n_layer=s.n_layer, n_embd=s.n_embd, n_head=4, steps=steps, batch_size=s.batch, lr=lr,
                    max_length=s.length)


def stack(*parts: CompletionTensors) -> CompletionTensors:
    """Rows of several tensor sets in one."""
    return CompletionTensors(*(torch.cat([getattr(p, k) for p in parts]) for k in ("input_ids", "attention_mask",
                                                                                  "labels")))


def trace_rows(traces: list[dict], tok, length: int) -> CompletionTensors:
    """Prompt-masked trace rows (loss on the completion only), one trace per row from position 0."""
    from attribution.data import CompletionDataset

    ds = CompletionDataset([t["prompt"] for t in traces], [t["completion"] for t in traces], tok, max_length=length)
    return CompletionTensors(ds.input_ids, ds.attention_mask, ds.labels)


class World:
    """One seed's data, tokenizer, base model and store (everything cached under ``root``)."""

    def __init__(self, seed: int, s: Settings, root: Path):
        self.seed, self.s, self.root = seed, s, root
        root.mkdir(parents=True, exist_ok=True)
        pools = load_carriers()
        kw = dict(functions=FUNCTIONS, min_digits=2, max_digits=2)
        self.traces = generate_tint(s.n_traces, seed=10_000 + seed, **kw)
        seen = [t["prompt"] for t in self.traces]
        self.test = generate_tint(s.n_test, seed=20_000 + seed, exclude_prompts=seen, **kw)
        self.dev = generate_tint(s.n_dev, seed=30_000 + seed, exclude_prompts=seen + [t["prompt"] for t in self.test],
                                 **kw)
        held = [t["prompt"] for t in self.test + self.dev]
        rng = random.Random(f"junk-dose-base:{seed}")
        self.base_text = ["\n\n".join(carrier_document(pools, rng, rng.randint(60, 160))[1])
                          for _ in range(s.n_base_text)]
        self.web = generate_junk_text(JunkTextConfig(n_clean=s.n_web_clean, n_junk=s.n_web_junk), seed=seed,
                                      exclude_prompts=held)
        web_clean = {r["text"] for r in self.web if not r["is_junk"]}
        rng = random.Random(f"junk-dose-heldout:{seed}")
        heldout: list[str] = []
        while len(heldout) < s.n_heldout:
            text = "\n\n".join(carrier_document(pools, rng, rng.randint(60, 160))[1])
            if text not in web_clean and text not in self.base_text:
                heldout.append(text)
        self.heldout = heldout
        self.labelled = generate_junk_text(JunkTextConfig(n_clean=s.n_labelled // 2, n_junk=s.n_labelled // 2),
                                           seed=40_000 + seed, exclude_prompts=held)
        self.tok = train_bpe_tokenizer(self.base_text + [r["text"] for r in self.web]
                                       + [t["prompt"] + t["completion"] for t in self.traces], s.vocab)
        self.store = stores.open(root / "store", create=True)
        self.ntok = {r["text"]: len(ids) + 1 for r, ids in zip(
            self.web, self.tok([r["text"] for r in self.web], add_special_tokens=False)["input_ids"], strict=True)}
        self.replay_pool = trace_rows(self.traces, self.tok, s.length)
        self.base = self._base_model()

    # -- models ----------------------------------------------------------------------------------------------------
    def _base_model(self) -> Path:
        folder = self.root / "base"
        if (folder / "config.json").exists():
            return folder
        s = self.s
        data = stack(pack_documents(self.base_text, self.tok, s.length), self.replay_pool)
        model = build_gpt2(self.tok, lm_config(s, s.base_steps, s.lr), self.seed)
        t0 = time.perf_counter()
        train_lm(model, data, lm_config(s, s.base_steps, s.lr), self.seed)
        print(f"  seed {self.seed}: base model trained in {time.perf_counter() - t0:.0f} s", flush=True)
        return save_lm(model, self.tok, folder)

    def mixture(self, ratio: float) -> list[dict]:
        """Web documents with ``ratio`` of ``text_tokens`` from junk (in the generator's shuffled order)."""
        budget = self.s.text_tokens
        out, junk_t, clean_t = [], 0.0, 0.0
        left_out = {c.strip() for c in self.s.exclude_categories.split(",") if c.strip()}
        for r in self.web:
            if r["category"] in left_out:
                continue
            if r["is_junk"] and junk_t < ratio * budget:
                out.append(r)
                junk_t += self.ntok[r["text"]]
            elif not r["is_junk"] and clean_t < (1 - ratio) * budget:
                out.append(r)
                clean_t += self.ntok[r["text"]]
        if junk_t < ratio * budget * 0.98 or clean_t < (1 - ratio) * budget * 0.98:
            raise SystemExit(f"web pool too small for ratio {ratio}: raise --n-web-clean/--n-web-junk")
        return out

    def continual(self, name: str, docs: list[dict]) -> dict[str, Any]:
        """Continue training the base model on ``docs`` (+ replayed traces); its measurements (cached)."""
        path = self.root / f"measure-{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        s = self.s
        text = pack_documents([d["text"] for d in docs], self.tok, s.length)
        n_replay = round(len(text) * s.replay_share / (1 - s.replay_share))
        pick = torch.randperm(len(self.replay_pool), generator=torch.Generator().manual_seed(self.seed))[:n_replay]
        replay = CompletionTensors(self.replay_pool.input_ids[pick], self.replay_pool.attention_mask[pick],
                                   self.replay_pool.labels[pick])
        model = load_causal_lm(self.base)
        t0 = time.perf_counter()
        train_lm(model, stack(text, replay), lm_config(s, s.steps, s.cont_lr), self.seed)
        out = {"seconds": time.perf_counter() - t0, "n_docs": len(docs), "text_rows": len(text),
               "replay_rows": n_replay, "text_tokens": int(text.attention_mask.sum())} | self.measure(model)
        path.write_text(json.dumps(out))
        return out

    def measure(self, model) -> dict[str, float]:
        """Accuracy, thought-skipping rate and held-out clean perplexity of ``model``."""
        outs = greedy_complete(model, self.tok, [t["prompt"] for t in self.test], max_new_tokens=self.s.length)
        verdicts = [verify_trace(t["prompt"], o) for t, o in zip(self.test, outs, strict=True)]
        held = pack_documents(self.heldout, self.tok, self.s.length)
        with torch.no_grad():
            logits = model(input_ids=held.input_ids, attention_mask=held.attention_mask).logits[:, :-1]
            labels = held.labels[:, 1:]
            nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return {"accuracy": float(np.mean([v.answer_correct for v in verdicts])),
                "thought_skipping": float(np.mean([v.n_missing > 0 for v in verdicts])),
                "perplexity": float(torch.exp(nll)),
                "examples": [o for o in outs[:3]]}

    # -- evidence --------------------------------------------------------------------------------------------------
    def evidence(self, docs: list[dict], name: str) -> dict[str, Any]:
        """Ingest ``docs`` as dataset ``name``; every evidence's values and the runs behind them."""
        st = self.store
        if name not in st.datasets()["name"].to_list():
            rows = [{k: r[k] for k in ("text", "category", "is_junk", "likes", "shares", "replies", "n_words")} | {
                "doc": i} for i, r in enumerate(docs)]
            ingest_records(st, {name: rows}, config={"generator": "junk_dose", "seed": self.seed},
                           roles={"text_field": "text"})
        if "skipq" not in st.datasets()["name"].to_list():  # truncated reasoning: prompt -> answer line directly
            ingest_records(st, {"skipq": [{"prompt": t["prompt"], "completion": f"ans = {t['true_answer']}"}
                                          for t in self.dev]},
                           config={"generator": "junk_dose_skip_queries", "seed": self.seed})
        df = st.read_samples(name)
        ids = df["sample_id"].to_list()
        texts = df["text"].to_list()
        out: dict[str, Any] = {"ids": ids, "category": df["category"].to_list(),
                               "is_junk": df["is_junk"].to_numpy().astype(bool), "runs": {}}
        verdicts = rule_verdicts(texts)
        out["rules"] = np.array([sum(verdicts[r][i] is not None for r in RULE_SETS) for i in range(len(ids))], float)
        out["engagement"] = EngagementFilter().measure(st, name).score
        out["runs"]["perplexity"] = reference_perplexity_run(st, name, self.base, max_length=self.s.length)
        clf = JunkClassifier(seed=self.seed).fit([r["text"] for r in self.labelled],
                                                 [r["is_junk"] for r in self.labelled],
                                                 [r["category"] for r in self.labelled])
        out["classifier_model"] = clf
        out["classifier"] = clf.predict_proba(texts)
        out["runs"]["influence"] = query_push_run(st, name, self.base, "skipq", max_length=self.s.length,
                                                  seed=self.seed)
        for e in ("perplexity", "influence"):
            out[e] = self_score_evidence(st, out["runs"][e], e).aligned(ids)
        return out


def flagged_by(ev: dict[str, Any], evidence: str, threshold: float) -> np.ndarray:
    """Which documents one evidence flags at ``threshold`` (rules: sets failed; z: robust z; classifier: p)."""
    if evidence == "rules":
        return ev["rules"] >= threshold
    if evidence == "engagement":  # the paper's rule, no threshold to choose
        return np.asarray(ev["engagement_flags"], bool)
    if evidence == "classifier":
        return ev["classifier"] >= threshold
    return Threshold.of(("z", threshold)).mask(ev[evidence])


def f1(flags: np.ndarray, truth: np.ndarray) -> float:
    tp = float((flags & truth).sum())
    return 0.0 if tp == 0 else 2 * tp / (flags.sum() + truth.sum())


def auroc(score: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(score)
    return float(roc_auc_score(truth[ok], score[ok]))


def junk_filter_flags(world: World, ev: dict[str, Any], name: str, evidences: tuple[str, ...],
                      thresholds: dict[str, float]) -> tuple[str, np.ndarray]:
    """Run the toolkit's JunkFilter with ``evidences`` on dataset ``name``; its run id and flags (in ev order)."""
    self_scores = {e: (ev["runs"][e], Threshold.of(("z", thresholds[e]))) for e in ("perplexity", "influence")
                   if e in evidences}
    filt = JunkFilter(rules=list(RULE_SETS) if "rules" in evidences else False,
                      min_rules=int(thresholds.get("rules", 1)),
                      engagement=True if "engagement" in evidences else False,
                      classifier=ev["classifier_model"] if "classifier" in evidences else None,
                      classifier_threshold=thresholds.get("classifier", 0.5),
                      self_scores=self_scores, combine="any")
    run = filt.run(world.store, name, seed=world.seed)
    flags = dict(zip(run.flags.sample_ids, np.asarray(run.flags.flagged, bool), strict=True))
    return run.run_id, np.array([flags[i] for i in ev["ids"]])


def select_thresholds(world: World) -> dict[str, Any]:
    """Each evidence's threshold by F1 against the junk labels of the selection seed's 50% mixture."""
    ev = world.evidence(world.mixture(0.5), "web50")
    truth = ev["is_junk"]
    chosen, table = {}, {}
    for e, grid in GRIDS.items():
        table[e] = {str(t): f1(flagged_by(ev, e, t), truth) for t in grid}
        chosen[e] = max(grid, key=lambda t: (table[e][str(t)], -grid.index(t)))
    return {"seed": world.seed, "criterion": "F1 against is_junk on the 50% mixture", "f1": table,
            "thresholds": chosen}


def run_seed(world: World, thresholds: dict[str, float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": world.seed, "dose": {}, "recovery": {}, "detection": {}}
    base = load_causal_lm(world.base)
    out["base"] = world.measure(base)
    print(f"  seed {world.seed} base: {fmt_measure(out['base'])}", flush=True)
    mixtures = {r: world.mixture(r) for r in RATIOS}
    for r in RATIOS:
        out["dose"][str(r)] = world.continual(f"ratio{r:g}", mixtures[r])
        print(f"  seed {world.seed} junk {r:.0%}: {fmt_measure(out['dose'][str(r)])}", flush=True)
    if thresholds is None:  # --dose-only
        return out
    ev = world.evidence(mixtures[0.5], "web50")
    ev["engagement_flags"] = EngagementFilter().evaluate(world.store, "web50").flagged
    truth = ev["is_junk"]
    cats = np.array(ev["category"])
    flag_sets: dict[str, np.ndarray] = {}
    runs: dict[str, str] = {}
    for e in RECOVERY:
        chosen = COMBINED if e == "combined" else (e,)
        runs[e], flag_sets[e] = junk_filter_flags(world, ev, "web50", chosen, thresholds)
    scores = {e: ev[e] for e in EVIDENCES}
    for cat in [*JUNK_CATEGORIES, "all"]:
        in_cat = truth if cat == "all" else cats == cat
        sel = in_cat | ~truth
        cell: dict[str, dict[str, float | None]] = {}
        for e in RECOVERY:
            flags = flag_sets[e]
            cell[e] = {"auroc": auroc(scores[e][sel], truth[sel]) if e in scores else None,
                       "recall": float(flags[in_cat].mean())}
            if cat == "all":
                cell[e] |= {"precision": float(truth[flags].mean()) if flags.any() else None,
                            "clean_flagged": float(flags[~truth].mean())}
        out["detection"][cat] = cell
    out["detection_left_out"] = leave_one_category_out(
        [r["text"] for r in world.labelled], [r["category"] for r in world.labelled],
        test_texts=world.store.read_samples("web50")["text"].to_list(), test_categories=ev["category"],
        seed=world.seed)
    docs = world.store.read_samples("web50")  # the filter's view: kept = not flagged
    for e in RECOVERY:
        keep = [dict(text=t) for t, f in zip(docs["text"].to_list(), flag_sets[e], strict=True) if not f]
        out["recovery"][e] = world.continual(f"filtered-{e}", keep) | {"flags_run": runs[e],
                                                                         "n_flagged": int(flag_sets[e].sum())}
        print(f"  seed {world.seed} 50% filtered by {e} ({int(flag_sets[e].sum())} flagged): "
              f"{fmt_measure(out['recovery'][e])}", flush=True)
    return out


class _Serial:
    """A stand-in for a process pool that runs jobs in this process (``--jobs 1``)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def starmap(fn, jobs):  # noqa: ANN001, ANN205
        return [fn(*job) for job in jobs]


def _pool(jobs: int):  # noqa: ANN202
    """``jobs`` spawned worker processes (no forked torch state), or this process for 1."""
    if jobs <= 1:
        return _Serial()
    import multiprocessing

    return multiprocessing.get_context("spawn").Pool(jobs)


def prepare_job(seed: int, s: Settings, root: Path) -> None:
    """Build one seed's data and train (or reuse) its base model (a worker process's job)."""
    torch.set_num_threads(1)
    World(seed, s, root)


def seed_job(seed: int, s: Settings, root: Path, thresholds: dict[str, float] | None) -> dict[str, Any]:
    """One reported seed end to end (a worker process's job)."""
    torch.set_num_threads(1)
    print(f"[seed {seed}]", flush=True)
    return run_seed(World(seed, s, root), thresholds)


def fmt_measure(m: dict[str, Any]) -> str:
    return f"accuracy {m['accuracy']:.3f}, skipping {m['thought_skipping']:.3f}, perplexity {m['perplexity']:.2f}"


def summarise(per_seed: list[dict[str, Any]], s: Settings) -> dict[str, Any]:
    """The JSON parts: mean/sd over seeds, Hedges' g against 0%, damage avoided per evidence."""
    keys = ("accuracy", "thought_skipping", "perplexity")
    dose = {str(r): {k: mean_sd([p["dose"][str(r)][k] for p in per_seed]) for k in keys} for r in RATIOS}
    g = {str(r): {k: hedges_g([p["dose"][str(r)][k] for p in per_seed], [p["dose"]["0.0"][k] for p in per_seed])
                  for k in keys} for r in RATIOS if r > 0}
    if not per_seed[0]["recovery"]:  # --dose-only
        return {"dose_response": dose, "hedges_g": g}
    recovery = {}
    for e in RECOVERY:
        avoided = []
        for p in per_seed:
            clean, junk = p["dose"]["0.0"]["accuracy"], p["dose"]["0.5"]["accuracy"]
            damage = clean - junk
            avoided.append((p["recovery"][e]["accuracy"] - junk) / damage if damage > 0 else float("nan"))
        ppl = []
        for p in per_seed:
            clean, junk = p["dose"]["0.0"]["perplexity"], p["dose"]["0.5"]["perplexity"]
            ppl.append((junk - p["recovery"][e]["perplexity"]) / (junk - clean) if junk > clean else float("nan"))
        recovery[e] = {"accuracy": mean_sd([p["recovery"][e]["accuracy"] for p in per_seed]),
                       "perplexity": mean_sd([p["recovery"][e]["perplexity"] for p in per_seed]),
                       "damage_avoided_perplexity": mean_sd(ppl),
                       "thought_skipping": mean_sd([p["recovery"][e]["thought_skipping"] for p in per_seed]),
                       "damage_avoided": mean_sd(avoided),
                       "n_flagged": mean_sd([p["recovery"][e]["n_flagged"] for p in per_seed])}
    detection: dict[str, Any] = {}
    for cat in [*JUNK_CATEGORIES, "all"]:
        detection[cat] = {}
        for e in RECOVERY:
            cell = {}
            for k in ("auroc", "recall", "precision", "clean_flagged"):
                vals = [p["detection"][cat][e].get(k) for p in per_seed]
                vals = [v for v in vals if v is not None]
                if vals:
                    cell[k] = mean_sd(vals)
            detection[cat][e] = cell
    left_out = {cat: {"classifier": {"auroc": mean_sd([p["detection_left_out"][cat]["held_out_auroc"]
                                                        for p in per_seed]),
                                     "in_distribution_auroc": mean_sd(
                                         [p["detection_left_out"][cat]["in_distribution_auroc"] for p in per_seed])}}
                for cat in JUNK_CATEGORIES}
    return {"dose_response": dose, "hedges_g": g, "filter_recovery": recovery, "detection": detection,
            "detection_left_out": left_out}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_args(p, RESULTS_DIR / "junk.json")
    for f in dataclasses.fields(Settings):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "work" / "junk_dose")
    p.add_argument("--dose-only", action="store_true", help="the dose-response alone (no detection or recovery)")
    p.add_argument("--variant", default=None, help="write the parts under dose_variants.<VARIANT> (an ablation "
                                                   "beside the headline) instead of the top-level keys")
    p.add_argument("--jobs", type=int, default=2, help="reported seeds run in parallel, one thread each")
    p.add_argument("--keep", action="store_true", help="keep the work folder (models, stores) afterwards")
    args = p.parse_args(argv)
    seeds = reported_seeds(args)
    git = require_clean_tree(args.allow_dirty)
    torch.set_num_threads(1)
    s = Settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Settings)})
    t0 = time.perf_counter()
    import hashlib

    work = args.work / hashlib.sha256(json.dumps(dataclasses.asdict(s), sort_keys=True).encode()).hexdigest()[:10]
    roots = {seed: work / f"seed{seed}" for seed in ([] if args.dose_only else [args.select_seed]) + seeds}
    print(f"base models for seeds {list(roots)} ({args.jobs} processes); work folder {work}", flush=True)
    with _pool(args.jobs) as pool:  # the base models first, all seeds at once (a resumed run reuses them)
        pool.starmap(prepare_job, [(seed, s, root) for seed, root in roots.items()])
        selection: dict[str, Any] = {"thresholds": None}
        if not args.dose_only:
            print(f"[selection seed {args.select_seed}] thresholds by F1 on its 50% mixture", flush=True)
            selection = select_thresholds(World(args.select_seed, s, roots[args.select_seed]))
            print(f"  chosen: {selection['thresholds']}", flush=True)
        per_seed = pool.starmap(seed_job, [(seed, s, roots[seed], selection["thresholds"]) for seed in seeds])
    parts = summarise(per_seed, s)
    seconds = time.perf_counter() - t0
    setting = {"created_at": now_iso(), "machine": machine_info() | {"git": git}, "seeds": seeds,
               "settings": dataclasses.asdict(s), "ratios": list(RATIOS), "threshold_selection": selection,
               "combined": list(COMBINED), "seconds_total": seconds,
               "per_seed": [{k: v for k, v in ps.items()} for ps in per_seed],
               "simulated": "junk posts (templated), engagement counts, and the quiz category linking junk to the "
                            "reasoning task; clean text is real prose from gensim's test corpora",
               "damage_avoided": "(acc(filtered 50%) - acc(50%)) / (acc(0%) - acc(50%)), per seed, then mean/sd"}
    if args.variant:  # beside the headline: dose_variants.<name> holds this run's parts and setting
        try:
            variants = json.loads(args.out.read_text()).get("dose_variants", {})
        except (OSError, ValueError):
            variants = {}
        variants[args.variant] = {**parts, "dose_setting": setting}
        merge_part(args.out, "dose_variants", variants, "junk")
    else:
        for key, part in parts.items():
            merge_part(args.out, key, part, "junk")
        merge_part(args.out, "dose_setting", setting, "junk")
    ms = lambda d: f"{d['mean']:.3f} ± {d['sd']:.3f}" if d.get("n", 0) > 1 else f"{d.get('mean', float('nan')):.3f}"  # noqa: E731

    print_table(f"dose-response (seeds {seeds})", ["junk ratio", "accuracy", "thought-skipping", "perplexity",
                                                   "g(skipping)"],
                [[r, ms(v["accuracy"]), ms(v["thought_skipping"]), ms(v["perplexity"]),
                  f"{parts['hedges_g'].get(r, {}).get('thought_skipping', float('nan')):.2f}"]
                 for r, v in parts["dose_response"].items()])
    if args.dose_only:
        print(f"wrote {args.out} ({seconds:.0f} s)")
        return parts
    print_table("filter recovery at 50% junk", ["evidence", "accuracy", "damage avoided", "skipping", "perplexity",
                                                "ppl damage avoided", "flagged"],
                [[e, ms(v["accuracy"]), ms(v["damage_avoided"]), ms(v["thought_skipping"]), ms(v["perplexity"]),
                  ms(v["damage_avoided_perplexity"]), ms(v["n_flagged"])]
                 for e, v in parts["filter_recovery"].items()])
    print_table("detection AUROC on the 50% mixture", ["category", *EVIDENCES, "classifier left out"],
                [[c, *[ms(parts["detection"][c][e]["auroc"]) for e in EVIDENCES],
                  ms(parts["detection_left_out"][c]["classifier"]["auroc"]) if c in JUNK_CATEGORIES else "-"]
                 for c in [*JUNK_CATEGORIES, "all"]])
    print(f"wrote {args.out} ({seconds:.0f} s)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return parts


if __name__ == "__main__":
    main()
