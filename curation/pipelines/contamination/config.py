"""The contamination pipeline's settings: a pydantic model, every field with its help text.

Loaded from YAML by :func:`curation.config.load_config` (``pipeline: contamination``); unknown
keys and bad values are errors naming the key and file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curation.config import ExecutorSection, Section

METHOD_NAMES = ("ngram", "coverage", "code", "near_dup", "paraphrase")
Method = Literal["ngram", "coverage", "code", "near_dup", "paraphrase"]


class PlantedSection(Section):
    """The generated example corpus (used when ``data.train`` is not given)."""

    n_docs: int = Field(2000, gt=0, description="carrier documents (offline text from gensim's test data)")
    planted_fraction: float = Field(0.5, ge=0, le=1, description="share of each benchmark's items planted in the corpus")
    n_gsm: int = Field(200, gt=0, description="GSM-style items (reasoning-gym templates, one item per template)")
    n_hard_negatives: int = Field(100, ge=0, description="documents on a benchmark item's topic sharing only short phrases")


class DataSection(Section):
    """The training corpus and the benchmarks: store datasets, or the planted example corpus."""

    train: str | None = Field(None, description="store dataset of training documents to check (default: generate "
                                                "the planted example corpus and its three benchmarks)")
    benchmarks: list[str] = Field([], description="store datasets of benchmark items (with `train`)")
    text_fields: list[str] | None = Field(None, description="fields of `train` holding a document's text (default: "
                                                            "text, else prompt + completion)")
    question_field: str | None = Field(None, description="benchmark field of the question (default: question, "
                                                         "prompt, text or input)")
    answer_field: str | None = Field(None, description="benchmark field of the answer (default: answer, completion, "
                                                       "canonical_solution, target or output; may be absent)")
    planted: PlantedSection = Field(default_factory=PlantedSection, description="the generated example corpus")

    @model_validator(mode="after")
    def _benchmarks_with_train(self) -> DataSection:
        if self.train is not None and not self.benchmarks:
            raise ValueError("data.train needs data.benchmarks (the store datasets to look for)")
        if self.train is None and self.benchmarks:
            raise ValueError("data.benchmarks needs data.train (the corpus to check)")
        return self


class NgramSection(Section):
    """N-gram, coverage and code matching (defaults: lm-eval's janitor and Llama 2's coverage)."""

    n: int = Field(13, ge=2, description="an item is in a document if a run of n of its words is (janitor: 13)")
    min_n: int = Field(8, ge=2, description="shorter items need all their words, but at least min_n; the index's n-gram size")
    absolute_hits: int = Field(8, ge=1, description="distinct item min_n-grams in one document that flag it even "
                                                    "without an n-word run (fragmented or re-wrapped copies)")
    renumbered_n: int = Field(13, ge=1, description="digit-free words in one aligned run that make a re-numbered "
                                                    "match (numbers masked); chosen on the bench's selection seed")
    coverage_min_run: int = Field(10, ge=2, description="coverage: only matches at least this many words long count")
    coverage_skip: int = Field(4, ge=0, description="coverage: mismatched words bridged inside one match")
    coverage_dirty: float = Field(0.8, gt=0, le=1, description="coverage at or above this flags the pair (Llama 2)")
    code: Literal["auto", "always", "never"] = Field("auto", description="match code benchmarks on code tokens with "
                                                                         "local names masked (auto: benchmarks that parse as Python)")
    code_k: int = Field(12, ge=2, description="code-token n-gram size of the code index")
    code_n: int = Field(30, ge=2, description="code tokens in one run that make a code match")

    @model_validator(mode="after")
    def _sizes(self) -> NgramSection:
        if self.min_n > self.n:
            raise ValueError(f"min_n ({self.min_n}) must not exceed n ({self.n})")
        if self.code_k > self.code_n:
            raise ValueError(f"code_k ({self.code_k}) must not exceed code_n ({self.code_n})")
        return self


class NearDupSection(Section):
    """MinHash LSH near-duplicate matching of items against document windows (unset: the method's defaults)."""

    shingle_words: int | None = Field(None, ge=1, description="words per shingle (near_dup 5; paraphrase 1)")
    stopwords: bool | None = Field(None, description="drop English stopwords first (near_dup no; paraphrase yes)")
    bands: int | None = Field(None, ge=1, description="LSH bands b (near_dup 14; paraphrase 30)")
    rows: int | None = Field(None, ge=1, description="rows per band r (near_dup 8; paraphrase 3); candidate "
                                                     "threshold ~ (1/b)^(1/r)")
    threshold: float | None = Field(None, gt=0, le=1, description="exact Jaccard that confirms a candidate (0.5)")
    window_words: int | None = Field(None, ge=1, description="document window length in words (default: from the items)")


class CurateSection(Section):
    """What to make of the verdict: curated training sets."""

    drop: bool = Field(True, description="write <name>_decontaminated: the training set without flagged documents")
    cut: bool = Field(True, description="write <name>_cut: matched spans cut out janitor-style (one text field only)")
    window: int = Field(200, ge=0, description="cut: characters removed on each side of a match")
    min_piece: int = Field(200, ge=0, description="cut: pieces shorter than this between cuts are removed too")
    too_dirty: int = Field(10, ge=1, description="cut: a document cut into more regions than this is dropped")


class ModelSection(Section):
    """Evidence from a model trained on the corpus (off by default: it trains a GPT-2 from scratch).

    ``train: true`` trains a small GPT-2 on the corpus (BPE tokenizer learned from it; documents
    cut into context windows), then adds ``influence`` rows (documents that push an item's answer
    most, robust z >= z_min) to the verdict and writes a ``membership`` run (loss, zlib, Min-K%,
    Min-K%++ per item; item-level only, calibrated on ``non_members`` when given).
    """

    train: bool = Field(False, description="train the corpus model and add its evidence")
    influence: bool = Field(True, description="with train: influence of documents on each item's answer")
    membership: bool = Field(True, description="with train: membership scores of each item")
    non_members: list[str] = Field([], description="item_id values (sample ids) of benchmark items known not to be "
                                                  "in the corpus, to calibrate membership at 5% FPR")
    z_min: float | None = Field(None, gt=0, description="influence: robust z a top document needs to be a hit "
                                                        "(default: the module's, chosen on the bench's selection seed)")
    top_k: int = Field(5, ge=1, description="influence rows kept per item")
    vocab: int = Field(4096, ge=256, description="BPE vocabulary size")
    n_layer: int = Field(2, ge=1, description="transformer layers")
    n_embd: int = Field(128, ge=8, description="embedding width")
    n_head: int = Field(4, ge=1, description="attention heads")
    steps: int = Field(1000, ge=100, description="training steps (at least 100: the one-cycle schedule needs room to warm up)")
    batch_size: int = Field(16, gt=0, description="windows per training step")
    lr: float = Field(3e-3, gt=0, description="peak learning rate")
    max_length: int = Field(128, ge=16, description="tokens per window")


class ContaminationConfig(Section):
    """Settings of one contamination pipeline run."""

    pipeline: Literal["contamination"] = Field("contamination", description="which pipeline this file configures")
    name: str = Field("planted", description="prefix of the datasets the pipeline writes")
    seed: int = Field(0, description="seed of the generated corpus")
    data: DataSection = Field(default_factory=DataSection, description="corpus and benchmarks")
    methods: list[Method] = Field(list(METHOD_NAMES), min_length=1, description="evidence methods to run")
    verdict_methods: list[Method] | None = Field(
        None, description="methods whose hits flag documents (default: every method run)")
    ngram: NgramSection = Field(default_factory=NgramSection, description="n-gram, coverage and code matching")
    near_dup: NearDupSection = Field(default_factory=NearDupSection, description="MinHash near duplicates "
                                                                                 "(word 5-gram shingles)")
    paraphrase: NearDupSection = Field(default_factory=NearDupSection, description="MinHash over content-word "
                                                                                   "sets (paraphrased copies)")
    curate: CurateSection = Field(default_factory=CurateSection, description="curated outputs")
    model: ModelSection = Field(default_factory=ModelSection, description="evidence from a model trained on the corpus")
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where the corpus indexes and "
                                                                                    "MinHash passes run")
