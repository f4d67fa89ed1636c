"""The noisy chain-of-thought pipeline: reproduce the noise effect, detect the noisy traces, recover.

Steps (each reuses its result when re-run with the same inputs, so a killed run resumes):
1. generate TInt traces with planted dynamic/static noise and a noise-free test set, into the store;
2. train a small GPT-2 from scratch on the noisy traces and measure greedy test accuracy;
3. evidence on that model: self-influence (EK-FAC), completion loss, random, and influence on the
   model's own *wrong* answers to failing test problems;
4. the noisy-CoT filter flags traces; detection is measured against the planted truth for every
   evidence alone and combined, in the same run;
5. curate (drop flagged), retrain with the same seed and steps, and compare with a model trained on
   the clean traces only.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

import stores
from attribution.baselines import loss_scores, random_scores
from attribution.data import completion_dataset_from_store
from attribution.engine import EngineConfig, InfluenceEngine
from attribution.models import load_causal_lm, load_tokenizer
from attribution.tasks import CausalLMTask
from filters import Budget, NoisyCoTFilter
from filters.evidence import self_score_evidence
from stores.curate import curate
from stores.ingest import ingest

from .config import NoisyCoTConfig
from .evaluation import answer_accuracy, detection_metrics
from .lm import (
    LMConfig,
    build_gpt2,
    greedy_complete,
    quiet_transformers,
    save_lm,
    trace_tokenizer,
    train_lm,
)


@dataclass
class NoisyCoTResult:
    """Everything the pipeline measured, plus where its outputs are in the store."""

    accuracy: dict[str, float] = field(default_factory=dict)
    detection: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    recovery: dict[str, float] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    store: str = ""


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


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

    # ---------------------------------------------------------------- data
    def ensure_test(self) -> str:
        """The noise-free test set (generated once per config; training sets avoid its problems)."""
        from curation.datasets import generate_tint_test, write_parquet

        d = self.cfg.data
        test_name = f"{self.cfg.name}_test"
        key = _key("tint-test", d.n_test, d.functions, d.max_digits, d.min_digits, self.cfg.seed)
        if self._generated(test_name) != key:
            import tempfile

            test = generate_tint_test(d.n_test, seed=self.cfg.seed, functions=tuple(d.functions),
                                      max_digits=d.max_digits, min_digits=d.min_digits)
            with self.store.run("generate", config={"generator": "tint-test", "key": key, "n": d.n_test},
                                seed=self.cfg.seed, dataset=test_name), tempfile.TemporaryDirectory() as tmp:
                ingest(self.store, write_parquet(test, Path(tmp) / "test.parquet"), test_name,
                       prompt_field="prompt", completion_field="completion", replace=True)
        return test_name

    def ensure_data(self, name: str, dynamic_rate: float, static_rate: float) -> str:
        """Generate training traces (no problem shared with the test set) unless the same ones exist."""
        from curation.datasets import generate_tint, write_parquet

        d = self.cfg.data
        test_name = self.ensure_test()
        settings = dict(functions=tuple(d.functions), max_digits=d.max_digits, min_digits=d.min_digits,
                        dynamic_rate=dynamic_rate, p_dyn=d.p_dyn, static_rate=static_rate, p_c=d.p_c, p_l=d.p_l,
                        require_change=d.require_change)
        key = _key("tint", d.n_train, settings, self.cfg.seed, self._generated(test_name))
        if self._generated(name) == key:
            return name
        import tempfile

        test_prompts = self.store.read_samples(test_name, columns=["prompt"])["prompt"].to_list()
        train = generate_tint(d.n_train, seed=self.cfg.seed, exclude_prompts=test_prompts, **settings)
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
        """Train (or reuse) a GPT-2 on ``dataset``; returns its folder under the store's artifacts."""
        fp = self.store.dataset_info(dataset)["fingerprint"]
        folder = self.store.artifact_dir("models") / f"{dataset}-{_key(fp, self.lm_cfg.__dict__, self.cfg.seed)}"
        if (folder / "config.json").is_file():
            return folder
        data, _ = completion_dataset_from_store(self.store, dataset, self.tokenizer, self.lm_cfg.max_length)
        t0 = time.perf_counter()
        model = build_gpt2(self.tokenizer, self.lm_cfg, self.cfg.seed)
        with self.store.run("train", config={"model": self.lm_cfg.__dict__, "folder": folder.name,
                                             "n_truncated": data.n_truncated},
                            seed=self.cfg.seed, dataset=dataset):
            losses = train_lm(model, data, self.lm_cfg, self.cfg.seed, progress=self.progress,
                              label=f"train on {dataset}")
            save_lm(model, self.tokenizer, folder)
        self.result.seconds[f"train_{dataset}"] = time.perf_counter() - t0
        self.say(f"  trained on {dataset}: final loss {np.mean(losses[-50:]):.3f}/token, "
                 f"{time.perf_counter() - t0:.0f} s")
        return folder

    def evaluate(self, folder: Path) -> tuple[float, list[str], np.ndarray]:
        """Greedy test accuracy of a model (cached next to it); returns (accuracy, outputs, correct)."""
        test_name = f"{self.cfg.name}_test"
        test = self.store.read_samples(test_name, columns=["prompt", "true_answer"])
        test_fp = self.store.dataset_info(test_name)["fingerprint"][:12]
        cache = folder / f"outputs-{test_name}-{test_fp}-{self.lm_cfg.max_length}.json"  # per test set
        if cache.is_file():
            outs = json.loads(cache.read_text())
        else:
            model = load_causal_lm(folder)
            outs = greedy_complete(model, self.tokenizer, test["prompt"].to_list(), self.lm_cfg.max_length)
            cache.write_text(json.dumps(outs))
        correct = answer_accuracy(outs, test["true_answer"].to_list())
        return float(correct.mean()), outs, correct

    # ---------------------------------------------------------------- evidence
    def evidence(self, train_name: str, folder: Path, outs: list[str], correct: np.ndarray) -> dict[str, str]:
        """Self-influence, loss, random and failing-query influence runs on the noisy model."""
        a = self.cfg.attribution
        tok = load_tokenizer(folder)
        model = load_causal_lm(folder)
        task = CausalLMTask(model)
        train_ds, train_ids = completion_dataset_from_store(self.store, train_name, tok, self.lm_cfg.max_length)
        engine = InfluenceEngine(self.store, model, task, EngineConfig(
            strategy=a.strategy, damping=a.damping, batch_size=a.batch_size, shard_size=1024, seed=self.cfg.seed))
        runs = {}
        t0 = time.perf_counter()
        runs["self_influence"] = engine.self_scores(train_ds, train_ids, dataset=train_name,
                                                    progress=self.progress).run_id
        self.result.seconds["self_influence"] = time.perf_counter() - t0
        runs["loss"] = loss_scores(self.store, model, task, train_ds, train_ids, dataset=train_name).run_id
        runs["random"] = random_scores(self.store, train_ids, seed=self.cfg.seed, dataset=train_name).run_id
        failing = [i for i in np.flatnonzero(~correct)][: a.max_failing_queries]
        if failing:
            test = self.store.read_samples(f"{self.cfg.name}_test", columns=["prompt"])
            rows = [{"prompt": test["prompt"][int(i)], "completion": outs[int(i)]} for i in failing]
            fail_name = f"{train_name}_failures"
            key = _key([r["prompt"] + r["completion"] for r in rows])
            if self._generated(fail_name) != key:
                import tempfile

                from curation.datasets import write_jsonl

                with self.store.run("generate", config={"generator": "failing-answers", "key": key,
                                                        "model": folder.name}, dataset=fail_name), \
                        tempfile.TemporaryDirectory() as tmp:
                    ingest(self.store, write_jsonl(rows, Path(tmp) / "f.jsonl"), fail_name, replace=True)
            behaviour = f"{train_name}-wrong-answers"
            self.store.add_behaviour(behaviour, fail_name, "completion_nll",
                                     description="the model's own wrong answers to failing test problems",
                                     replace=True)
            q_ds, q_ids = completion_dataset_from_store(self.store, fail_name, tok, self.lm_cfg.max_length)
            t0 = time.perf_counter()
            runs["query_push"] = engine.pairwise_scores(behaviour, train_ds, train_ids, q_ds, q_ids,
                                                        dataset=train_name, progress=self.progress).run_id
            # per-token scores of each wrong answer's top 3 pushers: which tokens did the pushing (reports)
            top = self.store.sql(
                """SELECT DISTINCT sample_id FROM scores WHERE run_id = ?
                   QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 3""",
                [runs["query_push"]])["sample_id"].to_list()
            chosen = [sid for sid in train_ids if sid in set(top)][:60]
            runs["token_scores"] = engine.token_scores(behaviour, train_ds, train_ids, q_ds, q_ids, chosen,
                                                       tokenizer=tok, dataset=train_name).run_id
            self.result.seconds["query_influence"] = time.perf_counter() - t0
        return runs

    # ---------------------------------------------------------------- detection
    def detection(self, train_name: str, runs: dict[str, str], flags_run: str) -> dict[str, dict[str, dict[str, float]]]:
        """Detection of dynamic (and static) noise for each evidence alone and for the filter."""
        from filters.evidence import query_push_evidence

        truth = self.store.sql(
            "SELECT sample_id, noise, trace_changed FROM samples WHERE dataset = ? ORDER BY ordinal", [train_name])
        ids = truth["sample_id"].to_list()
        scores: dict[str, np.ndarray] = {}
        for name in ("random", "loss", "self_influence"):
            scores[name] = self_score_evidence(self.store, runs[name]).aligned(ids)
        if "query_push" in runs:
            scores["query_push"] = query_push_evidence(self.store, runs["query_push"])[0].aligned(ids)
        flags = self.store.read_flags(flags_run)
        order = {s: i for i, s in enumerate(flags["sample_id"].to_list())}
        scores["combined"] = flags["score"].to_numpy()[[order[s] for s in ids]]
        noise = truth["noise"].to_numpy()
        changed = truth["trace_changed"].to_numpy().astype(bool)
        out: dict[str, dict[str, dict[str, float]]] = {}
        budget = self.cfg.filter.budget
        for kind in ("dynamic", "static"):
            positive = (noise == kind) & changed
            if not positive.any():
                continue
            keep = positive | (noise == "clean") | ~changed  # judge against unaffected traces only
            out[kind] = {m: detection_metrics(s[keep], positive[keep], budget) for m, s in scores.items()}
        return out

    # ---------------------------------------------------------------- the whole thing
    def run(self) -> NoisyCoTResult:
        """All steps; returns the measured figures (also recorded as a finished ``pipeline`` run)."""
        c, name = self.cfg, self.cfg.name
        r = self.result
        t_start = time.perf_counter()
        train_name = self.ensure_data(f"{name}_train", c.data.dynamic_rate, c.data.static_rate)
        r.datasets |= {"train": train_name, "test": f"{name}_test"}
        counts = self.store.sql("SELECT noise, trace_changed, count(*) AS n FROM samples WHERE dataset = ? "
                                "GROUP BY ALL ORDER BY ALL", [train_name])
        self.say(f"[bold]1. data[/] {train_name}: " + ", ".join(
            f"{n} {k}{'' if ch or k == 'clean' else ' (unchanged by noise)'}" for k, ch, n in counts.iter_rows()))

        self.say("[bold]2. train on the noisy traces[/]")
        noisy_dir = self.ensure_model(train_name)
        acc, outs, correct = self.evaluate(noisy_dir)
        r.accuracy["noisy"] = acc
        self.say(f"  test accuracy (greedy, {len(correct)} noise-free problems): {acc:.1%}")

        self.say("[bold]3. evidence[/]: self-influence, loss, random, influence on failing answers")
        runs = self.evidence(train_name, noisy_dir, outs, correct)
        r.runs |= runs

        self.say("[bold]4. filter[/]")
        f = NoisyCoTFilter(self_influence_run=runs["self_influence"], loss_run=runs["loss"],
                           query_run=runs.get("query_push"), weights=c.filter.weights or None,
                           budget=Budget(fraction=c.filter.budget))
        frun = f.run(self.store, train_name, seed=c.seed)
        r.runs["flags"] = frun.run_id
        r.detection = self.detection(train_name, runs, frun.run_id)
        curated = f"{name}_curated"
        cur = curate(self.store, curated, train_name, flag_runs=[frun.run_id], replace=True)
        r.datasets["curated"] = curated
        self.say(f"  flagged {frun.flags.n_flagged} of {len(frun.flags.sample_ids)}; curated dataset {curated}: "
                 f"kept {cur.n_kept}, dropped {cur.n_dropped}")

        self.say("[bold]5. retrain[/] on the curated traces (same seed and steps)")
        r.accuracy["curated"] = self.evaluate(self.ensure_model(curated))[0]
        if c.clean_reference:
            clean = f"{name}_clean_only"
            curate(self.store, clean, train_name, flag_runs=[], where="noise = 'clean' OR NOT trace_changed",
                   replace=True)
            r.datasets["clean_only"] = clean
            r.accuracy["clean_only"] = self.evaluate(self.ensure_model(clean))[0]
            gap = r.accuracy["clean_only"] - r.accuracy["noisy"]
            r.recovery = {"noisy_acc": r.accuracy["noisy"], "curated_acc": r.accuracy["curated"],
                          "clean_acc": r.accuracy["clean_only"],
                          "gap_recovered": (r.accuracy["curated"] - r.accuracy["noisy"]) / gap if gap > 0 else float("nan")}
        r.seconds["total"] = time.perf_counter() - t_start
        with self.store.run("pipeline", config={"pipeline": "noisy_cot", "config": c.model_dump(),
                                                "accuracy": r.accuracy, "recovery": r.recovery,
                                                "detection": r.detection, "runs": r.runs},
                            seed=c.seed, dataset=train_name) as handle:
            r.runs["pipeline"] = handle.id
        return r


def _charset() -> str:
    from curation.datasets import CHARSET

    return CHARSET
