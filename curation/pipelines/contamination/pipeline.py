"""The contamination pipeline, top to bottom: data -> evidence -> verdict -> curated sets -> metrics.

Every step finds its finished result on a second run (datasets by generator key, indexes and
evidence runs by a digest of their inputs and settings), so the pipeline resumes where it
stopped. The figures go to a ``pipeline`` run whose config is what the summary and the report read.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console

import stores
from filters.contamination.check import ContaminationCheck, check_contamination
from filters.contamination.cut import CutSettings, plan_cuts
from filters.contamination.ngrams import NgramSettings
from stores.curate import curate

from .config import ContaminationConfig
from .data import BENCHMARKS, Inputs, prepare_inputs
from .truth import score_store_runs


@dataclass
class ContaminationResult:
    """What one pipeline run wrote and measured."""

    run_id: str
    train: str
    benchmarks: list[str]
    flags_run: str
    evidence: dict[str, str]
    curated: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None


def ngram_settings(cfg: ContaminationConfig) -> NgramSettings:
    """The filter's n-gram settings from the config section."""
    return NgramSettings(**cfg.ngram.model_dump())


def minhash_settings(cfg: ContaminationConfig, method: str) -> Any:
    """A MinHash method's settings: its defaults, overridden by the config section's set fields."""
    from dataclasses import replace

    from filters.contamination.check import default_settings

    section = cfg.near_dup if method == "near_dup" else cfg.paraphrase
    return replace(default_settings(method), **{k: v for k, v in section.model_dump().items() if v is not None})


def model_arm(store: stores.Store, cfg: ContaminationConfig, inputs: Inputs, progress: bool) -> dict[str, Any]:
    """Train the corpus model (cached) and compute its influence and membership evidence."""
    from curation.steps.tokenizer import bpe_tokenizer_for
    from curation.steps.train import LMConfig
    from filters.contamination.items import read_items

    from .model_evidence import (
        DEFAULT_Z_MIN,
        influence_evidence,
        membership_evidence,
        train_corpus_model,
    )

    m, d = cfg.model, cfg.data
    tokenizer = bpe_tokenizer_for(store, inputs.train, d.text_fields, m.vocab)
    lm = LMConfig(n_layer=m.n_layer, n_embd=m.n_embd, n_head=m.n_head, steps=m.steps, batch_size=m.batch_size,
                  lr=m.lr, max_length=m.max_length)
    folder = train_corpus_model(store, inputs.train, tokenizer, lm, cfg.seed, progress, text_fields=d.text_fields)
    out: dict[str, Any] = {"model": str(folder)}
    if m.influence:
        inf = influence_evidence(store, folder, inputs.train, inputs.benchmarks, top_k=m.top_k,
                                 z_min=m.z_min or DEFAULT_Z_MIN, text_fields=d.text_fields,
                                 question_field=d.question_field, answer_field=d.answer_field, progress=progress)
        out["influence"] = inf.run_id
    if m.membership:
        items = [it for b in inputs.benchmarks for it in read_items(store, b, d.question_field, d.answer_field)]
        reference = [it.key for it in items if it.item_id in set(m.non_members)] or None
        mem = membership_evidence(store, folder, items, reference=reference, progress=progress)
        out["membership"] = mem.run_id
        out["membership_flagged"] = {k: len(v) for k, v in mem.flagged.items()}
    return out


def run_check(store: stores.Store, cfg: ContaminationConfig, inputs: Inputs, progress: bool,
              extra_evidence: list[tuple[str, str]] | None = None) -> ContaminationCheck:
    """Evidence runs and the combined verdict."""
    d = cfg.data
    return check_contamination(
        store, inputs.train, inputs.benchmarks, methods=cfg.methods, text_fields=d.text_fields,
        question_field=d.question_field, answer_field=d.answer_field, ngram=ngram_settings(cfg),
        near_dup=minhash_settings(cfg, "near_dup") if "near_dup" in cfg.methods else None,
        paraphrase=minhash_settings(cfg, "paraphrase") if "paraphrase" in cfg.methods else None,
        verdict_methods=cfg.verdict_methods, extra_evidence=extra_evidence or [], progress=progress,
        executor=cfg.executor.make())


def write_curated(store: stores.Store, cfg: ContaminationConfig, check: ContaminationCheck, progress: bool) -> dict[str, str]:
    """The curated training sets the config asks for: documents dropped, and/or spans cut."""
    out: dict[str, str] = {}
    c = cfg.curate
    if c.drop:
        name = f"{cfg.name}_decontaminated"
        curate(store, name, check.train, flag_runs=[check.flags_run], replace=True, progress=progress)
        out["drop"] = name
    if c.cut and len(check.text_fields) == 1:
        edits, drops = plan_cuts(store, check.flags_run, check.train, check.text_fields, check.items,
                                 ngram=ngram_settings(cfg),
                                 settings=CutSettings(c.window, c.min_piece, c.too_dirty))
        name = f"{cfg.name}_cut"
        curate(store, name, check.train, flag_runs=[], drops=drops, edits=edits, replace=True, progress=progress,
               extra_config={"contamination_run": check.flags_run, "cut": asdict(CutSettings(c.window, c.min_piece,
                                                                                             c.too_dirty))})
        out["cut"] = name
    return out


def execute(store: stores.Store, cfg: ContaminationConfig, console: Console | None = None,
            progress: bool = False) -> ContaminationResult:
    """Run the pipeline on ``store`` and record its figures in a ``pipeline`` run."""
    t0 = time.perf_counter()
    inputs = prepare_inputs(store, cfg)
    model = model_arm(store, cfg, inputs, progress) if cfg.model.train else {}
    extra = [("influence", model["influence"])] if "influence" in model else []
    check = run_check(store, cfg, inputs, progress, extra)
    curated = write_curated(store, cfg, check, progress)
    evidence = {e.method: e.run_id for e in check.evidence}
    metrics = None
    if inputs.corpus is not None:
        metrics = score_store_runs(store, evidence, check.flags_run, inputs.train,
                                   dict(zip(BENCHMARKS, inputs.benchmarks, strict=True)), inputs.corpus)
    items = store.sql("SELECT benchmark, count(*) AS n, count(*) FILTER (WHERE dirty) AS dirty "
                      "FROM contamination_items WHERE run_id = ? GROUP BY 1 ORDER BY 1", [check.flags_run])
    counts = {"items": {b: {"n": int(n), "dirty": int(k)} for b, n, k in items.iter_rows()},
              "flagged_documents": check.verdict.flags.n_flagged if check.verdict else 0,
              "documents": len(check.verdict.flags.sample_ids) if check.verdict else 0,
              "evidence": {e.method: {"rows": e.n_rows, "hits": e.n_hits, "seconds": round(e.seconds, 3),
                                      "reused": e.reused} for e in check.evidence},
              "skipped_items": {m: len(v) for m, v in check.skipped.items()}}
    config = {"pipeline": "contamination", "settings": cfg.model_dump(), "train": inputs.train,
              "benchmarks": inputs.benchmarks, "flags_run": check.flags_run, "evidence": evidence,
              "curated": curated, "counts": counts, "metrics": metrics, "model": model,
              "seconds": time.perf_counter() - t0}
    with store.run("pipeline", config=config, seed=cfg.seed, dataset=inputs.train) as run:
        pass
    return ContaminationResult(run.id, inputs.train, inputs.benchmarks, check.flags_run, evidence, curated,
                               counts, metrics)
