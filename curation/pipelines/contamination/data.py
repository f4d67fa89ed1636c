"""The contamination pipeline's data: the planted example corpus (generated, cached), or store datasets.

Generated: :func:`curation.datasets.contamination_corpus.build_planted_corpus` writes a training
corpus with benchmark items planted in known forms and the three benchmarks (HumanEval, GSM-style,
MMLU chain-of-thought), ingested as ``<name>_train`` and ``<name>_<benchmark>``; they are
regenerated only when the generator settings change. The truth stays with the generator (it is
rebuilt from the seed when metrics are computed), and also sits in the ``forms``/``items``
columns of the training set.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import stores
from attribution.keys import short_digest

from ...steps.records import generated_key
from .config import ContaminationConfig

BENCHMARKS = ("humaneval", "gsm", "mmlu")


@dataclass
class Inputs:
    """The datasets one run checks, and the generator's corpus when they were generated."""

    train: str
    benchmarks: list[str]
    corpus: object | None = None   # PlantedCorpus when generated (its truth scores the run)


def planted_corpus(cfg: ContaminationConfig):
    """The planted corpus of this config (deterministic by seed)."""
    from curation.datasets.contamination_corpus import build_planted_corpus

    p = cfg.data.planted
    return build_planted_corpus(cfg.seed, n_docs=p.n_docs, planted_fraction=p.planted_fraction, n_gsm=p.n_gsm,
                                n_hard_negatives=p.n_hard_negatives)


def prepare_inputs(store: stores.Store, cfg: ContaminationConfig) -> Inputs:
    """The training and benchmark datasets: the configured store datasets, or the generated corpus."""
    d = cfg.data
    if d.train is not None:
        return Inputs(d.train, list(d.benchmarks))
    names = {"train": f"{cfg.name}_train", **{b: f"{cfg.name}_{b}" for b in BENCHMARKS}}
    key = short_digest("planted_contamination", cfg.seed, cfg.data.planted.model_dump())
    corpus = planted_corpus(cfg)
    if all(generated_key(store, n) == key for n in names.values()):
        return Inputs(names["train"], [names[b] for b in BENCHMARKS], corpus)
    from stores.ingest import ingest

    with tempfile.TemporaryDirectory(prefix="curation-planted-") as tmp:
        paths = corpus.write(Path(tmp))
        ingest(store, paths["train"], names["train"], text_field="text", replace=True)
        for b in BENCHMARKS:
            ingest(store, paths[b], names[b], prompt_field="question", completion_field="answer", replace=True)
    config = {"generator": "planted_contamination", "key": key, "seed": cfg.seed, **cfg.data.planted.model_dump()}
    for n in names.values():  # one generate record per dataset: ``generated_key`` finds each on the next run
        with store.run("generate", config=config, seed=cfg.seed, dataset=n):
            pass
    return Inputs(names["train"], [names[b] for b in BENCHMARKS], corpus)
