"""Check a training dataset against benchmarks: one evidence run per method, then the combined verdict.

Methods (each writes its own ``contamination`` run of ``contamination_matches`` rows, found
again by a digest of its inputs and settings, so a second check reuses it):

* ``ngram`` - janitor n-gram rule (13 words, fewer for short items) or absolute hits;
* ``coverage`` - Llama 2 token coverage (>= 80% of the item inside long matches);
* ``code`` - for code benchmarks: code tokens with local identifiers masked (renamed copies);
* ``near_dup`` - MinHash LSH over word 5-gram shingles of document windows, exact Jaccard;
* ``paraphrase`` - the same over *sets of content words* (stopwords dropped, b=30 x r=3 bands,
  Jaccard >= 0.5): survives synonym substitution and reordering, which break every word n-gram.
  Its settings were chosen on the planted corpus's selection seed (bench/contamination.py).

The text of every document is read once per index (``ngram``/``coverage`` share the words
index; ``code`` has its own) and once for ``near_dup``; memory is bounded by a batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

import stores
from attribution.keys import digest
from stores.datasets import SampleFile, iter_file_batches
from stores.progress import StepProgress

from ..base import FilterRun
from .items import (
    BenchmarkItem,
    ContaminationInputError,
    document_text,
    is_code_benchmark,
    read_items,
    train_fields,
)
from .ngrams import IndexRun, NgramSettings, build_index, ngram_evidence

METHODS = ("ngram", "coverage", "code", "near_dup", "paraphrase")
DEFAULT_METHODS = METHODS
#: bump when a method's matching code changes what it finds, so stored evidence is recomputed
EVIDENCE_VERSION = 2


@dataclass
class EvidenceRun:
    """One method's evidence run: id, rows, hits, and the cost of computing it (0 when reused)."""

    method: str
    run_id: str
    n_rows: int
    n_hits: int
    seconds: float
    reused: bool


@dataclass
class ContaminationCheck:
    """What a check found and wrote: evidence runs, indexes, the combined flags run, skipped items."""

    train: str
    benchmarks: list[str]
    items: list[BenchmarkItem]
    evidence: list[EvidenceRun] = field(default_factory=list)
    indexes: list[IndexRun] = field(default_factory=list)
    verdict: FilterRun | None = None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    text_fields: list[str] = field(default_factory=list)

    @property
    def flags_run(self) -> str:
        """Run id of the combined verdict (document flags and the item table)."""
        assert self.verdict is not None
        return self.verdict.run_id


def check_contamination(
    store: stores.Store, train: str, benchmarks: Sequence[str], *, methods: Sequence[str] = DEFAULT_METHODS,
    text_fields: Sequence[str] | None = None, question_field: str | None = None, answer_field: str | None = None,
    ngram: NgramSettings | None = None, near_dup: Any = None, paraphrase: Any = None,
    verdict_methods: Sequence[str] | None = None, extra_evidence: Sequence[tuple[str, str]] = (),
    progress: bool = False, executor: Any = None,
) -> ContaminationCheck:
    """Run the chosen evidence ``methods`` of ``train`` against ``benchmarks`` and combine them.

    ``verdict_methods`` chooses whose hits flag documents (default: all run methods);
    ``extra_evidence`` adds finished ``contamination_matches`` runs computed elsewhere (e.g. the
    influence of a model trained on the corpus) as (method, run id) pairs.
    Returns the evidence runs and the verdict run (``flags`` + ``contamination_items``).
    ``executor`` (:mod:`stores.executors`): with Ray, the corpus indexes and the MinHash passes
    run one task per sample shard; the evidence is the one a local check writes.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ContaminationInputError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
                                      f"expected some of {', '.join(METHODS)}")
    if not benchmarks:
        raise ContaminationInputError("no benchmark given: name at least one benchmark dataset")
    ngram = ngram or NgramSettings()
    fields = train_fields(store, train, text_fields)
    items = [it for b in benchmarks for it in read_items(store, b, question_field, answer_field)]
    out = ContaminationCheck(train, list(benchmarks), items, text_fields=fields)
    unique = list({it.key: it for it in items}.values())  # identical items share a content id: match once
    identity = {"train": train, "train_fingerprint": store.dataset_info(train)["fingerprint"], "fields": fields,
                "benchmarks": {b: store.dataset_info(b)["fingerprint"] for b in benchmarks},
                "question_field": question_field, "answer_field": answer_field, "version": EVIDENCE_VERSION}

    words = [m for m in ("ngram", "coverage") if m in methods]
    if words:
        config = {**identity, "settings": asdict(ngram)}
        ids = {m: _run_id(m, config) for m in words}
        if not all(store.run_finished(r) for r in ids.values()):
            index = build_index(store, train, fields=fields, normaliser="words", k=ngram.min_n,
                                batch_rows=ngram.batch_rows, progress=progress, executor=executor)
            out.indexes.append(index)
            with StepProgress("n-gram check", total=None, unit="pairs", enabled=progress) as bar:
                ev = ngram_evidence(store, train, fields, unique, index, ngram, methods=words, progress=bar.advance)
            out.skipped["ngram"] = ev.skipped
            for m in words:
                rows = [r for r in ev.rows if r["method"] == m]
                out.evidence.append(_write(store, m, ids[m], {**config, "index": index.run_id}, train, rows,
                                           ev.seconds + index.seconds))
        else:
            out.evidence += [_reused(store, m, ids[m]) for m in words]

    code_items = _code_items(unique, ngram.code) if "code" in methods else []
    if code_items:
        config = {**identity, "settings": asdict(ngram), "code_benchmarks": sorted({i.benchmark for i in code_items})}
        run_id = _run_id("code", config)
        if store.run_finished(run_id):
            out.evidence.append(_reused(store, "code", run_id))
        else:
            index = build_index(store, train, fields=fields, normaliser="code", k=ngram.code_k,
                                batch_rows=ngram.batch_rows, progress=progress, executor=executor)
            out.indexes.append(index)
            ev = ngram_evidence(store, train, fields, code_items, index, ngram)
            out.skipped["code"] = ev.skipped
            out.evidence.append(_write(store, "code", run_id, {**config, "index": index.run_id}, train, ev.rows,
                                       ev.seconds + index.seconds))

    for method in ("near_dup", "paraphrase"):
        if method not in methods:
            continue
        settings = (near_dup if method == "near_dup" else paraphrase) or default_settings(method)
        config = {**identity, "settings": asdict(settings)}
        run_id = _run_id(method, config)
        if store.run_finished(run_id):
            out.evidence.append(_reused(store, method, run_id))
            continue
        out.evidence.append(_minhash_run(store, method, run_id, config, train, fields, unique, settings, out,
                                         progress, executor))

    out.evidence += [_reused(store, method, run_id) for method, run_id in extra_evidence]
    from .verdict import ContaminationFilter

    verdict = ContaminationFilter([e.run_id for e in out.evidence], items, methods=verdict_methods,
                                  text_fields=fields)
    out.verdict = verdict.run(store, train)
    return out


def default_settings(method: str) -> Any:
    """The default MinHash settings of ``near_dup`` (the spec's) or ``paraphrase`` (content-word sets)."""
    from .near_dup import NearDupSettings

    if method == "paraphrase":
        return NearDupSettings(shingle_words=1, stopwords=True, bands=30, rows=3, threshold=0.5)
    return NearDupSettings()


def _minhash_run(store: stores.Store, method: str, run_id: str, config: dict, train: str, fields: list[str],
                 items: list[BenchmarkItem], settings: Any, out: ContaminationCheck, progress: bool,
                 executor: Any = None) -> EvidenceRun:
    """One MinHash method over the corpus, written as its run (one task per sample shard on Ray)."""
    from .near_dup import NearDupIndex, near_duplicate_table

    t0 = time.perf_counter()
    by_key = {it.key: it for it in items}
    index = NearDupIndex([(it.key, it.text) for it in items], settings)
    out.skipped[method] = list(index.skipped)
    label = "near-duplicate" if method == "near_dup" else "paraphrase"
    with StepProgress(f"{label} check", total=store.dataset_info(train)["n_samples"], unit="documents",
                      enabled=progress) as bar:
        if executor is None or executor.name == "local":
            table = near_duplicate_table(index, _documents(store, train, fields, bar.advance))
        else:  # documents match one at a time: per-shard tables, in shard order, are the local table
            work = MinHashFile(store.dataset_sample_files(train), fields, [(it.key, it.text) for it in items],
                               settings)
            parts: dict[int, pa.Table] = {}

            def finished(f: int, part: pa.Table) -> None:
                parts[f] = part
                bar.advance(work.files[f].n_rows)

            executor.run(work, range(len(work.files)), finished)
            table = pa.concat_tables([parts[f] for f in sorted(parts)]) if parts else near_duplicate_table(index, [])
    rows = [{**r, "hit": True, "benchmark": by_key[r["item_id"]].benchmark, "item_id": by_key[r["item_id"]].item_id}
            for r in table.to_pylist()]
    config = {**config, **(executor.describe() if executor is not None else {})}
    return _write(store, method, run_id, config, train, rows, time.perf_counter() - t0)


@dataclass
class MinHashFile:
    """A MinHash pass over one sample file (a worker task): the items' index is built once per process."""

    files: list[SampleFile]
    fields: list[str]
    items: list[tuple[str, str]]
    settings: Any

    def __call__(self, f: int) -> pa.Table:
        """The near-duplicate table of file ``f``'s documents."""
        from .near_dup import NearDupIndex, near_duplicate_table

        key = digest(self.items, asdict(self.settings))
        if key not in _MINHASH_INDEXES:
            _MINHASH_INDEXES.clear()
            _MINHASH_INDEXES[key] = NearDupIndex(self.items, self.settings)
        docs = ((sid, text) for batch in iter_file_batches(self.files[f].path, ["sample_id", *self.fields])
                for sid, text in zip(batch["sample_id"].to_list(), document_text(batch, self.fields), strict=True))
        return near_duplicate_table(_MINHASH_INDEXES[key], docs)


_MINHASH_INDEXES: dict[str, Any] = {}  # one per worker process


def _documents(store: stores.Store, train: str, fields: list[str], advance) -> Any:
    """(sample id, text) of every training document, streamed."""
    for batch in store.iter_samples(train, ["sample_id", *fields], batch_rows=10_000):
        yield from zip(batch["sample_id"].to_list(), document_text(batch, fields), strict=True)
        advance(batch.height)


def _code_items(items: list[BenchmarkItem], mode: str) -> list[BenchmarkItem]:
    """Items of the benchmarks matched on code tokens (``auto``: those that look like code)."""
    if mode == "never":
        return []
    by_bench: dict[str, list[BenchmarkItem]] = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append(it)
    return [it for b, its in by_bench.items() if mode == "always" or is_code_benchmark(its) for it in its]


def _run_id(method: str, config: dict) -> str:
    return f"contamination_{method}-{digest(method, config)}"


def _reused(store: stores.Store, method: str, run_id: str) -> EvidenceRun:
    df = store.sql("SELECT count(*) AS n, count(*) FILTER (WHERE hit) AS h FROM contamination_matches WHERE run_id = ?",
                   [run_id])
    return EvidenceRun(method, run_id, int(df["n"][0]), int(df["h"][0]), 0.0, True)


def _write(store: stores.Store, method: str, run_id: str, config: dict, train: str, rows: list[dict],
           seconds: float) -> EvidenceRun:
    """One method's rows as a finished ``contamination`` run (all or nothing)."""
    schema = stores.schema.SHARD_SCHEMAS["contamination_matches"]
    cols = {f.name: pa.array([r.get(f.name) if f.name != "method" else method for r in rows], f.type)
            for f in schema if f.name != "run_id"}
    with store.run("contamination", config={"method": method, **config, "seconds": seconds}, dataset=train,
                   run_id=run_id, all_or_nothing=True) as run:
        run.write("contamination_matches", pa.table(cols), shard=0)
    return EvidenceRun(method, run_id, len(rows), sum(bool(r.get("hit")) for r in rows), seconds, False)
