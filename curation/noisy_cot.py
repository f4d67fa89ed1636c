"""The noisy chain-of-thought pipeline: reproduce the noise effect, detect the noisy traces, recover.

Steps (each reuses its result when re-run with the same inputs, so a killed run resumes):
1. generate TInt traces with planted dynamic/static noise, and two noise-free splits of problems
   that no training trace shares: *dev* (failing queries, the budget choice) and *test* (only
   ever used to report accuracy);
2. train a small GPT-2 from scratch on the noisy traces; greedy accuracy on dev and test;
3. evidence on that model: self-influence (EK-FAC), completion loss, random, and influence on
   the model's own *wrong* answers to failing **dev** problems;
4. the noisy-CoT filter flags traces. With ``filter.budget: dev`` the flag budget is chosen the
   way a user can: retrain on the data curated at each fraction of ``budget_grid`` and keep the
   most accurate model on dev (or nothing, when no curation beats the uncurated model);
5. detection against the planted truth, from real flags runs at that budget: one per evidence
   alone and one for the combined filter, so every precision and recall is what a user's run
   would flag;
6. the chosen curated dataset and its model, compared on test with a model trained on the clean
   traces only (the gap recovered).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

import stores
from attribution.baselines import loss_scores, random_scores
from attribution.data import completion_dataset_from_store, completion_samples
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.models import load_causal_lm, load_tokenizer, quiet_transformers
from attribution.tasks import CausalLMTask
from filters import Budget, Filter, NoisyCoTFilter, SelfScoreFilter
from filters.evidence import self_score_evidence
from stores.atomic import atomic_write_text
from stores.curate import curate
from stores.ingest import ingest

from .errors import PipelineError
from .evaluation import answer_accuracy, detection_metrics, flag_metrics, gap_recovered
from .lm import (
    LMConfig,
    build_gpt2,
    greedy_complete,
    save_lm,
    trace_tokenizer,
    train_lm,
)
from .pipelines.noisy_cot.config import NoisyCoTConfig

EVIDENCE_METHODS = ("random", "loss", "self_influence", "query_push")


@dataclass
class NoisyCoTResult:
    """Everything the pipeline measured, plus where its outputs are in the store.

    ``accuracy`` is on the test split; ``budgets`` lists, per candidate budget, the dev and test
    accuracy of the model retrained on the data curated at it (test is recorded, never used to
    choose); ``detection[kind][method]`` holds AUROC and the precision/recall of that method's
    flags run at the chosen budget, for kinds ``dynamic``, ``static`` and ``overall``.
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


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def training_code_key() -> str:
    """A hash of the code that turns a dataset into a trained model (model cache key).

    A cached model is only reused if the tokenizer, the dataset encoding, the model builder and
    the training loop are the code that made it.
    """
    from attribution import data as attribution_data
    from curation import lm

    parts = [inspect.getsource(obj) for obj in (
        lm.LMConfig, lm.build_gpt2, lm.train_lm, lm.trace_tokenizer, attribution_data.char_tokenizer,
        attribution_data.CompletionDataset, attribution_data.completion_dataset_from_store)]
    return _key(parts)


def decoding_code_key() -> str:
    """A hash of the greedy decoder (cache key of a model's outputs)."""
    return _key(inspect.getsource(greedy_complete))


class NoisyCoTPipeline:
    """Runs the steps of the noisy-CoT experiment on one store (see the module docstring)."""

    def __init__(self, store: stores.Store, config: NoisyCoTConfig, console: Console | None = None,
                 progress: bool = False):
        self.store = store
        self.cfg = config
        self.console = console or Console(quiet=True)
        self.progress = progress
        self.tokenizer = trace_tokenizer(_charset())
        self.lm_cfg = LMConfig(**config.model.model_dump())
        self.result = NoisyCoTResult(store=str(store.root))
        quiet_transformers()

    def say(self, text: str) -> None:
        """Print a step line."""
        self.console.print(text, soft_wrap=True)

    @property
    def test_name(self) -> str:
        """The noise-free split accuracy is reported on."""
        return f"{self.cfg.name}_test"

    @property
    def dev_name(self) -> str:
        """The noise-free split failing queries and the budget come from."""
        return f"{self.cfg.name}_dev"

    # ---------------------------------------------------------------- data
    def ensure_eval_sets(self) -> tuple[str, str]:
        """The noise-free test and dev splits (disjoint problems; generated once per config)."""
        from curation.datasets import generate_tint_test, write_parquet

        d = self.cfg.data
        key = _key("tint-eval", d.n_test, d.n_dev, d.functions, d.max_digits, d.min_digits, self.cfg.seed)
        names = (self.test_name, self.dev_name) if d.n_dev else (self.test_name,)
        if all(self._generated(n) == key for n in names):
            return self.test_name, self.dev_name
        import tempfile

        rows = generate_tint_test(d.n_test + d.n_dev, seed=self.cfg.seed, functions=tuple(d.functions),
                                  max_digits=d.max_digits, min_digits=d.min_digits)
        splits = {self.test_name: rows[: d.n_test], self.dev_name: rows[d.n_test :]}
        for name in names:
            with self.store.run("generate", config={"generator": "tint-test", "key": key, "n": len(splits[name]),
                                                    "split": name}, seed=self.cfg.seed, dataset=name), \
                    tempfile.TemporaryDirectory() as tmp:
                ingest(self.store, write_parquet(splits[name], Path(tmp) / "eval.parquet"), name,
                       prompt_field="prompt", completion_field="completion", replace=True)
        return self.test_name, self.dev_name

    def ensure_data(self, name: str, dynamic_rate: float, static_rate: float) -> str:
        """Generate training traces (no problem shared with test or dev) unless the same ones exist."""
        from curation.datasets import generate_tint, write_parquet

        d = self.cfg.data
        self.ensure_eval_sets()
        evals = [self.test_name] + ([self.dev_name] if d.n_dev else [])
        settings = dict(functions=tuple(d.functions), max_digits=d.max_digits, min_digits=d.min_digits,
                        dynamic_rate=dynamic_rate, p_dyn=d.p_dyn, static_rate=static_rate, p_c=d.p_c, p_l=d.p_l,
                        require_change=d.require_change)
        key = _key("tint", d.n_train, settings, self.cfg.seed, [self._generated(n) for n in evals])
        if self._generated(name) == key:
            return name
        import tempfile

        held_out = [p for n in evals for p in self.store.read_samples(n, columns=["prompt"])["prompt"].to_list()]
        train = generate_tint(d.n_train, seed=self.cfg.seed, exclude_prompts=held_out, **settings)
        with self.store.run("generate", config={"generator": "tint", "key": key, "n": d.n_train, **settings},
                            seed=self.cfg.seed, dataset=name), tempfile.TemporaryDirectory() as tmp:
            ingest(self.store, write_parquet(train, Path(tmp) / "train.parquet"), name,
                   prompt_field="prompt", completion_field="completion", replace=True)
        return name

    def _generated(self, dataset: str) -> str | None:
        df = self.store.sql(
            """SELECT json_extract_string(config, '$.key') AS key FROM runs WHERE kind = 'generate'
               AND status = 'finished' AND dataset = ? ORDER BY created_at DESC LIMIT 1""", [dataset])
        exists = self.store.sql("SELECT 1 FROM datasets WHERE name = ?", [dataset]).height > 0
        return df["key"][0] if df.height and exists else None

    # ---------------------------------------------------------------- models
    def ensure_model(self, dataset: str) -> Path:
        """Train (or reuse) a GPT-2 on ``dataset``; returns its folder under the store's artifacts.

        The cache key is the data's content fingerprint, the model config, the seed and the
        training code (:func:`training_code_key`), not the dataset's name: the same samples under
        another name reuse the model, changed code retrains.
        """
        fp = self.store.dataset_info(dataset)["fingerprint"]
        key = _key(fp, self.lm_cfg.__dict__, self.cfg.seed, training_code_key())
        models = self.store.artifact_dir("models")
        found = sorted(p for p in models.glob(f"*-{key}") if (p / "config.json").is_file())
        if found:
            return found[0]
        folder = models / f"{dataset}-{key}"
        data, _ = completion_dataset_from_store(self.store, dataset, self.tokenizer, self.lm_cfg.max_length)
        t0 = time.perf_counter()
        model = build_gpt2(self.tokenizer, self.lm_cfg, self.cfg.seed)
        with self.store.run("train", config={"model": self.lm_cfg.__dict__, "folder": folder.name,
                                             "n_truncated": data.n_truncated, "code": training_code_key()},
                            seed=self.cfg.seed, dataset=dataset):
            losses = train_lm(model, data, self.lm_cfg, self.cfg.seed, progress=self.progress,
                              label=f"train on {dataset}")
            save_lm(model, self.tokenizer, folder)
        self.result.seconds[f"train_{dataset}"] = time.perf_counter() - t0
        self.say(f"  trained on {dataset}: final loss {np.mean(losses[-50:]):.3f}/token, "
                 f"{time.perf_counter() - t0:.0f} s")
        return folder

    def evaluate(self, folder: Path, split: str | None = None) -> tuple[float, list[str], np.ndarray]:
        """Greedy accuracy of a model on a split (default test; outputs cached next to the model).

        Returns (accuracy, outputs, correct per problem).
        """
        split = split or self.test_name
        data = self.store.read_samples(split, columns=["prompt", "true_answer"])
        fp = self.store.dataset_info(split)["fingerprint"][:12]
        cache = folder / f"outputs-{split}-{fp}-{self.lm_cfg.max_length}-{decoding_code_key()}.json"
        if cache.is_file():
            outs = json.loads(cache.read_text())
        else:
            model = load_causal_lm(folder)
            outs = greedy_complete(model, self.tokenizer, data["prompt"].to_list(), self.lm_cfg.max_length)
            atomic_write_text(cache, json.dumps(outs))
        correct = answer_accuracy(outs, data["true_answer"].to_list())
        return float(correct.mean()), outs, correct

    # ---------------------------------------------------------------- evidence
    def evidence(self, train_name: str, folder: Path, outs: list[str], correct: np.ndarray) -> dict[str, str]:
        """Self-influence, loss, random and failing-query influence runs on the noisy model.

        ``outs``/``correct`` are the model's greedy answers on the **dev** split: its wrong ones
        become the failing queries (the test split stays unseen).
        """
        a = self.cfg.attribution
        tok = load_tokenizer(folder)
        model = load_causal_lm(folder)
        task = CausalLMTask(model)
        train = completion_samples(self.store, train_name, tok, self.lm_cfg.max_length)
        engine = InfluenceEngine(self.store, model, task, EngineConfig(
            strategy=a.strategy, damping=a.damping, batch_size=a.batch_size, shard_size=1024, seed=self.cfg.seed))
        runs = {}
        t0 = time.perf_counter()
        runs["self_influence"] = engine.self_scores(train, progress=self.progress).run_id
        self.result.seconds["self_influence"] = time.perf_counter() - t0
        runs["loss"] = loss_scores(self.store, model, task, train).run_id
        runs["random"] = random_scores(self.store, train, seed=self.cfg.seed).run_id
        failing = [i for i in np.flatnonzero(~correct)][: a.max_failing_queries]
        if failing and self.cfg.data.n_dev:
            dev = self.store.read_samples(self.dev_name, columns=["prompt"])
            rows = [{"prompt": dev["prompt"][int(i)], "completion": outs[int(i)]} for i in failing]
            fail_name = f"{train_name}_failures"
            key = _key([r["prompt"] + r["completion"] for r in rows])
            if self._generated(fail_name) != key:
                import tempfile

                from curation.datasets import write_jsonl

                with self.store.run("generate", config={"generator": "failing-answers", "key": key,
                                                        "split": self.dev_name, "model": folder.name},
                                    dataset=fail_name), tempfile.TemporaryDirectory() as tmp:
                    ingest(self.store, write_jsonl(rows, Path(tmp) / "f.jsonl"), fail_name, replace=True)
            behaviour = f"{train_name}-wrong-answers"
            self.store.add_behaviour(behaviour, fail_name, "completion_nll",
                                     description="the model's own wrong answers to failing dev problems",
                                     replace=True)
            queries = completion_samples(self.store, fail_name, tok, self.lm_cfg.max_length)
            t0 = time.perf_counter()
            runs["query_push"] = engine.pairwise_scores(behaviour, train, queries, progress=self.progress).run_id
            # per-token scores of each wrong answer's top 3 pushers: which tokens did the pushing (reports)
            top = self.store.sql(
                """SELECT DISTINCT sample_id FROM scores WHERE run_id = ?
                   QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 3""",
                [runs["query_push"]])["sample_id"].to_list()
            chosen = [sid for sid in train.ids if sid in set(top)][:60]
            runs["token_scores"] = engine.token_scores(behaviour, train, queries, chosen, tokenizer=tok).run_id
            self.result.seconds["query_influence"] = time.perf_counter() - t0
        return runs

    # ---------------------------------------------------------------- filters
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
        """The training set minus one flags run's flagged traces, as a dataset named after that run.

        Named ``<name>_curated_<flags run id>``, so runs with other budgets or weights never
        overwrite each other's curated data; the same flags run reuses its dataset. Refuses a
        curation that keeps nothing (there would be nothing to retrain on).
        """
        name = f"{self.cfg.name}_curated_{flags_run}"
        if self.store.sql("SELECT 1 FROM datasets WHERE name = ?", [name]).height:
            return name
        n_total = self.store.dataset_info(train_name)["n_samples"]
        n_flagged = int(self.store.read_flags(flags_run)["flagged"].sum())
        if n_flagged >= n_total:
            raise PipelineError(f"flags run {flags_run} flags all {n_total} traces of {train_name}: the curated set "
                                "would be empty, with nothing to retrain on; lower filter.budget")
        curate(self.store, name, train_name, flag_runs=[flags_run])
        return name

    def choose_budget(self, train_name: str, runs: dict[str, str], noisy_dev: float, noisy_test: float) -> float:
        """Pick the flag budget by dev accuracy of the retrained model (see the module docstring).

        Every candidate's dev and test accuracy goes to ``result.budgets``; the choice looks at
        dev only. Ties go to the smaller budget; 0 (keep everything) wins unless a curated model
        is strictly more accurate on dev than the uncurated one.
        """
        f = self.cfg.filter
        r = self.result
        r.budgets = [{"budget": 0.0, "dev_acc": noisy_dev, "test_acc": noisy_test, "flags_run": None}]
        if f.budget != "dev":
            return float(f.budget)
        self.say(f"  choosing the budget on {self.dev_name}: retrain at each of "
                 + ", ".join(f"{b:.0%}" for b in f.budget_grid))
        for b in f.budget_grid:
            frun = self.combined_filter(runs, b).run(self.store, train_name, seed=self.cfg.seed)
            name = self.curate_flagged(train_name, frun.run_id)
            folder = self.ensure_model(name)
            dev_acc, test_acc = self.evaluate(folder, self.dev_name)[0], self.evaluate(folder)[0]
            r.budgets.append({"budget": b, "dev_acc": dev_acc, "test_acc": test_acc, "flags_run": frun.run_id,
                              "curated": name})
            self.say(f"    budget {b:.0%}: dev accuracy {dev_acc:.1%}")
        best = max(r.budgets, key=lambda row: (row["dev_acc"], -row["budget"]))
        return float(best["budget"])

    # ---------------------------------------------------------------- detection
    def detection(self, train_name: str, runs: dict[str, str], flag_runs: dict[str, str]) -> dict[str, dict[str, dict[str, float]]]:
        """AUROC and the precision/recall of each method's actual flags, per noise kind and overall.

        ``overall``: positives are all traces the noise changed; precision is the share of all
        flagged traces that are noisy. Per kind: positives are that kind's changed traces, and the
        other kind's traces are left out of both counts (they are neither hits nor false alarms
        for this kind), so precision is the share of this kind among flagged traces that are of
        this kind or unaffected.
        """
        from filters.evidence import query_push_evidence

        truth = self.store.sql(
            "SELECT sample_id, noise, trace_changed FROM samples WHERE dataset = ? ORDER BY ordinal", [train_name])
        ids = truth["sample_id"].to_list()
        scores: dict[str, np.ndarray] = {}
        for name in ("random", "loss", "self_influence"):
            scores[name] = self_score_evidence(self.store, runs[name]).aligned(ids)
        if "query_push" in runs:
            scores["query_push"] = query_push_evidence(self.store, runs["query_push"])[0].aligned(ids)
        flagged: dict[str, np.ndarray] = {}
        for method, run_id in flag_runs.items():
            flags = self.store.read_flags(run_id)
            order = {s: i for i, s in enumerate(flags["sample_id"].to_list())}
            idx = [order[s] for s in ids]
            flagged[method] = flags["flagged"].to_numpy()[idx].astype(bool)
            if method == "combined":
                scores[method] = flags["score"].to_numpy()[idx]
        noise = truth["noise"].to_numpy()
        changed = truth["trace_changed"].to_numpy().astype(bool)
        unaffected = (noise == "clean") | ~changed
        out: dict[str, dict[str, dict[str, float]]] = {}
        for kind in ("dynamic", "static", "overall"):
            positive = (noise != "clean") & changed if kind == "overall" else (noise == kind) & changed
            if not positive.any():
                continue
            keep = positive | unaffected
            out[kind] = {}
            for m in flagged:
                auroc = detection_metrics(scores[m][keep], positive[keep], 0.0)["auroc"] if m in scores else float("nan")
                out[kind][m] = {"auroc": auroc, **flag_metrics(flagged[m][keep], positive[keep])}
                out[kind][m]["precision_at_budget"] = out[kind][m]["precision"]
                out[kind][m]["recall_at_budget"] = out[kind][m]["recall"]
        return out

    # ---------------------------------------------------------------- the whole thing
    def run(self) -> NoisyCoTResult:
        """All steps; returns the measured figures (also recorded as a finished ``pipeline`` run)."""
        c, name = self.cfg, self.cfg.name
        r = self.result
        t_start = time.perf_counter()
        train_name = self.ensure_data(f"{name}_train", c.data.dynamic_rate, c.data.static_rate)
        r.datasets |= {"train": train_name, "test": self.test_name}
        if c.data.n_dev:
            r.datasets["dev"] = self.dev_name
        counts = self.store.sql("SELECT noise, trace_changed, count(*) AS n FROM samples WHERE dataset = ? "
                                "GROUP BY ALL ORDER BY ALL", [train_name])
        self.say(f"[bold]1. data[/] {train_name}: " + ", ".join(
            f"{n} {k}{'' if ch or k == 'clean' else ' (unchanged by noise)'}" for k, ch, n in counts.iter_rows())
            + f"; noise-free dev {c.data.n_dev} and test {c.data.n_test} problems")

        self.say("[bold]2. train on the noisy traces[/]")
        noisy_dir = self.ensure_model(train_name)
        acc, _, correct = self.evaluate(noisy_dir)
        r.accuracy["noisy"] = acc
        if c.data.n_dev:
            dev_acc, dev_outs, dev_correct = self.evaluate(noisy_dir, self.dev_name)
        else:
            dev_acc, dev_outs, dev_correct = float("nan"), [], np.zeros(0, dtype=bool)
        r.dev_accuracy["noisy"] = dev_acc
        self.say(f"  test accuracy (greedy, {len(correct)} noise-free problems): {acc:.1%}; dev {dev_acc:.1%}")

        self.say("[bold]3. evidence[/]: self-influence, loss, random, influence on failing dev answers")
        runs = self.evidence(train_name, noisy_dir, dev_outs, dev_correct)
        r.runs |= runs

        self.say("[bold]4. filter[/]")
        r.budget = self.choose_budget(train_name, runs, dev_acc, acc)
        self.say(f"  budget {r.budget:.0%}" + (" (chosen on dev)" if c.filter.budget == "dev" else " (fixed)"))
        # the combined filter's run at the chosen budget already exists when the budget came from the grid
        chosen = {row["budget"]: row["flags_run"] for row in r.budgets if row["flags_run"]}.get(r.budget)
        for method, f in self.method_filters(runs, r.budget).items():
            if method == "combined" and chosen:
                r.flag_runs[method] = chosen
                continue
            r.flag_runs[method] = f.run(self.store, train_name, seed=c.seed).run_id
        r.runs["flags"] = r.flag_runs["combined"]
        r.detection = self.detection(train_name, runs, r.flag_runs)
        r.n_flagged = int(self.store.read_flags(r.runs["flags"])["flagged"].sum())
        curated = self.curate_flagged(train_name, r.runs["flags"])
        info = self.store.dataset_info(curated)
        r.datasets["curated"] = curated
        self.say(f"  flagged {r.n_flagged} of {info['n_samples'] + r.n_flagged}; curated dataset {curated}: "
                 f"kept {info['n_samples']}, dropped {r.n_flagged}")

        self.say("[bold]5. retrain[/] on the curated traces (same seed and steps)")
        curated_dir = self.ensure_model(curated)
        r.accuracy["curated"] = self.evaluate(curated_dir)[0]
        if c.data.n_dev:
            r.dev_accuracy["curated"] = self.evaluate(curated_dir, self.dev_name)[0]
        if c.clean_reference:
            clean = f"{name}_clean_only"
            curate(self.store, clean, train_name, flag_runs=[], where="noise = 'clean' OR NOT trace_changed",
                   replace=True)
            r.datasets["clean_only"] = clean
            r.accuracy["clean_only"] = self.evaluate(self.ensure_model(clean))[0]
            r.recovery = {"noisy_acc": r.accuracy["noisy"], "curated_acc": r.accuracy["curated"],
                          "clean_acc": r.accuracy["clean_only"], "budget": r.budget,
                          "gap_recovered": gap_recovered(r.accuracy["noisy"], r.accuracy["curated"],
                                                         r.accuracy["clean_only"])}
        r.seconds["total"] = time.perf_counter() - t_start
        with self.store.run("pipeline", config={"pipeline": "noisy_cot", "config": c.model_dump(),
                                                "accuracy": r.accuracy, "dev_accuracy": r.dev_accuracy,
                                                "budget": r.budget, "budgets": r.budgets, "recovery": r.recovery,
                                                "detection": r.detection, "n_flagged": r.n_flagged,
                                                "runs": r.runs, "flag_runs": r.flag_runs,
                                                "datasets": r.datasets},
                            seed=c.seed, dataset=train_name) as handle:
            r.runs["pipeline"] = handle.id
        return r


def _charset() -> str:
    from curation.datasets import CHARSET

    return CHARSET
