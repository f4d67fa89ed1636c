"""N-gram overlap evidence: a corpus n-gram index in the store, joined with benchmark items in DuckDB.

Indexing streams over a training dataset once per normaliser and writes, for every token
position of every document, its ordinal and the hash of the ``k`` tokens starting there (``ngram_index``
shards, one per batch of documents: bounded memory, resumable, reused by every later check of
any benchmark). Checking hashes the benchmark items' k-grams, joins them with the index in
DuckDB (the items are the small build side, the index streams), keeps the (item, document)
pairs sharing enough k-grams to pass some rule, and compares each such pair token by token
(:func:`~filters.contamination.matching.match_pair`). Each pair becomes one
``contamination_matches`` row of method ``ngram`` (janitor rule or absolute hits) and one of
method ``coverage`` (Llama 2 token coverage), with reasons.

``k`` (the index's n-gram size) is the smallest n any rule uses (8 by default): the janitor's
13-gram rule is a run of 13 tokens, i.e. six consecutive matching 8-grams on one alignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

import stores
from attribution.keys import digest
from stores.datasets import SampleFile, iter_file_batches
from stores.executors import LocalExecutor
from stores.progress import StepProgress
from stores.shards import completed_shards, write_shard

from .items import BenchmarkItem, document_text
from .matching import PairMatch, match_pair
from .normalize import (
    HASH_VERSION,
    NORMALISER_VERSIONS,
    WordHasher,
    batch_ngram_hashes,
    batch_tokens,
    looks_like_code,
    ngram_hashes,
    tokens,
)


@dataclass
class NgramSettings:
    """Settings of the n-gram and coverage evidence (defaults: lm-eval janitor and Llama 2)."""

    n: int = 13                 # janitor: an item is in a document if one of its n-grams is
    min_n: int = 8              # items shorter than n tokens need all of them (but at least min_n); index k-gram size
    absolute_hits: int = 8      # distinct item k-grams in one document that flag it even without an n-token run
    renumbered_n: int = 13      # digit-free words in one aligned run that make a re-numbered match
    coverage_min_run: int = 10  # Llama 2: only matches at least this many tokens long count
    coverage_skip: int = 4      # ... with up to this many mismatched tokens bridged inside a match
    coverage_dirty: float = 0.8  # coverage at or above this flags the pair (Llama 2's "dirty")
    code: str = "auto"          # auto: benchmarks whose items look like code are also matched on code tokens
    code_k: int = 12            # code-token k-gram size of the code index
    code_n: int = 30            # code tokens (identifiers masked) in one run to call a code match
    batch_rows: int = 20_000    # documents per index shard

    def item_n(self, n_tokens: int) -> int:
        """Run length that makes an item of ``n_tokens`` tokens a match (n, or all tokens if fewer)."""
        return max(self.min_n, min(self.n, n_tokens))


@dataclass
class IndexRun:
    """A finished corpus index: its run id, normaliser, k, and what indexing it cost (0 when reused)."""

    run_id: str
    normaliser: str
    k: int
    n_documents: int = 0
    bytes: int = 0
    seconds: float = 0.0
    reused: bool = True


def build_index(store: stores.Store, dataset: str, *, fields: Sequence[str], normaliser: str = "words",
                k: int = 8, batch_rows: int = 20_000, progress: bool = False, executor: Any = None) -> IndexRun:
    """Index ``dataset`` (the text of ``fields``) under ``normaliser``; reuse a finished identical index.

    The run id is a digest of the dataset's fingerprint, fields, normaliser, k and hash
    function, so the same inputs find the same run; a killed indexing run resumes, writing only
    the shards it lacks. The ``code`` normaliser indexes only documents that look like code.
    ``executor`` (:mod:`stores.executors`): each shard (a batch of ``batch_rows`` documents) can be
    a Ray task; the shards are the ones a local run writes.
    """
    info = store.dataset_info(dataset)
    config = {"dataset": dataset, "fingerprint": info["fingerprint"], "fields": list(fields),
              "normaliser": normaliser, "normaliser_version": NORMALISER_VERSIONS[normaliser], "k": k,
              "hash": HASH_VERSION, "batch_rows": batch_rows,
              "layout": 2}
    run_id = f"ngram_index-{digest(config)}"
    if store.run_finished(run_id):
        return IndexRun(run_id, normaliser, k)
    executor = executor or LocalExecutor()
    work = IndexFile(str(store.root), run_id, store.dataset_sample_files(dataset, batch_rows), list(fields),
                     normaliser, k, batch_rows)
    t0, totals = time.perf_counter(), [0, 0]
    with store.run("ngram_index", config={**config, **executor.describe()}, dataset=dataset, run_id=run_id), \
            StepProgress(f"index {dataset} ({normaliser})", total=info["n_samples"],
                                         enabled=progress) as bar:

        def finished(k: int, counts: tuple[int, int]) -> None:
            if executor.name != "local":  # the coordinator registers what workers wrote
                store.register_shards(run_id)
            totals[0], totals[1] = totals[0] + counts[0], totals[1] + counts[1]
            bar.advance(work.files[k].n_rows)

        executor.run(work, range(len(work.files)), finished)
    return IndexRun(run_id, normaliser, k, totals[0], totals[1], time.perf_counter() - t0, reused=False)


@dataclass
class IndexFile:
    """The index shards of one sample file: one per batch of ``batch_rows`` documents (here or on a worker).

    Shard numbers follow the batches of the whole dataset (:class:`~stores.datasets.SampleFile`),
    so every process writes the same shards; shards already on disk are skipped.
    """

    store_root: str
    run_id: str
    files: list[SampleFile]
    fields: list[str]
    normaliser: str
    k: int
    batch_rows: int

    def __call__(self, f: int) -> tuple[int, int]:
        """Write file ``f``'s missing shards; returns (documents, text bytes) indexed."""
        store = stores.Store(self.store_root)  # the folder only: workers never open the catalog
        done = completed_shards(store, "ngram_index", self.run_id)
        n_docs = n_bytes = 0
        for j, batch in enumerate(iter_file_batches(self.files[f].path, self.fields, self.batch_rows)):
            shard = self.files[f].first_batch + j
            if shard in done:
                continue
            texts = document_text(batch, self.fields)
            if self.normaliser == "code":  # only documents that look like code get a code index
                texts = [t if looks_like_code(t) else "" for t in texts]
            doc, _, hashes = batch_ngram_hashes(batch_tokens(texts, self.normaliser), self.k)
            ordinals = batch["ordinal"].to_numpy()[doc]
            # random hashes do not compress and need no dictionary: plain pages, snappy for ordinals
            write_shard(store, "ngram_index", self.run_id, pa.table({"ordinal": pa.array(ordinals, pa.int64()),
                                                                     "hash": pa.array(hashes, pa.uint64())}),
                        shard=shard, exclusive=True, compression="snappy", use_dictionary=False)
            n_docs += len(texts)
            n_bytes += sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        return n_docs, n_bytes


@dataclass
class Candidate:
    """An (item, document) pair the index proposes: the document's ordinal and shared k-grams."""

    item: int
    ordinal: int
    shared: int


def candidate_pairs(store: stores.Store, index: IndexRun, item_hashes: list[np.ndarray],
                    min_shared: Sequence[int]) -> list[Candidate]:
    """Pairs sharing at least ``min_shared[item]`` distinct k-gram positions of the item, via a DuckDB join."""
    lengths = [len(h) for h in item_hashes]
    table = pa.table({
        "item": pa.array(np.repeat(np.arange(len(item_hashes)), lengths), pa.int32()),
        "ipos": pa.array(np.concatenate([np.arange(n) for n in lengths]) if lengths else [], pa.int32()),
        "hash": pa.array(np.concatenate(item_hashes) if item_hashes else [], pa.uint64()),
        "need": pa.array(np.repeat(np.asarray(min_shared, np.int64), lengths), pa.int64()),
    })
    paths = store.shard_paths("ngram_index", index.run_id)
    if not paths or table.num_rows == 0:
        return []
    files = ", ".join(stores.schema.sql_literal(p) for p in paths)
    with store.connect() as con:
        con.register("_items", table)
        try:
            rows = con.execute(
                f"""SELECT i.item, x.ordinal, count(DISTINCT i.ipos) AS shared
                    FROM read_parquet([{files}]) x JOIN _items i ON x.hash = i.hash
                    GROUP BY i.item, x.ordinal, i.need HAVING count(DISTINCT i.ipos) >= i.need
                    ORDER BY i.item, x.ordinal"""
            ).fetchall()
        finally:
            con.unregister("_items")
    return [Candidate(int(a), int(b), int(c)) for a, b, c in rows]


@dataclass
class NgramEvidence:
    """Rows of the ``ngram`` and ``coverage`` methods, and what checking cost."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # items too short to check
    n_candidates: int = 0
    seconds: float = 0.0


def ngram_evidence(store: stores.Store, dataset: str, fields: Sequence[str], items: Sequence[BenchmarkItem],
                   index: IndexRun, settings: NgramSettings, *, methods: Sequence[str] = ("ngram", "coverage"),
                   progress: Callable[[int], None] | None = None) -> NgramEvidence:
    """Compare benchmark ``items`` with the documents of ``dataset`` through a finished ``index``."""
    t0 = time.perf_counter()
    s, k = settings, index.k
    hasher = WordHasher()
    item_toks = [tokens(it.text, index.normaliser) for it in items]
    out = NgramEvidence()
    checkable = [i for i, t in enumerate(item_toks) if len(t) >= (s.min_n if index.normaliser == "words" else s.code_n)]
    out.skipped = [items[i].key for i in range(len(items)) if i not in set(checkable)]
    hashes = [ngram_hashes(hasher(item_toks[i].masked), k) for i in checkable]
    need = [_min_shared(len(item_toks[i]), k, s, index.normaliser) for i in checkable]
    cands = candidate_pairs(store, index, hashes, need)
    out.n_candidates = len(cands)
    texts = _documents(store, dataset, fields, sorted({c.ordinal for c in cands}))
    for c in cands:
        i = checkable[c.item]
        item, doc_text = items[i], texts[c.ordinal]
        doc = tokens(doc_text[1], index.normaliser)
        m = match_pair(item_toks[i], doc, k, min_run=s.coverage_min_run, skip=s.coverage_skip,
                       hasher=hasher, item_hashes=hashes[c.item])
        out.rows.extend(_rows(item, doc_text[0], doc_text[1], item_toks[i], doc, m, s, index.normaliser, methods))
        if progress:
            progress(1)
    out.seconds = time.perf_counter() - t0
    return out


def _min_shared(n_tokens: int, k: int, s: NgramSettings, normaliser: str) -> int:
    """Fewest shared k-grams a pair can have and still pass some rule (the index's pre-filter)."""
    if normaliser == "code":
        return max(1, s.code_n - k + 1)
    run_rule = s.item_n(n_tokens) - k + 1
    coverage_rule = max(1, s.coverage_min_run - k + 1)
    return max(1, min(run_rule, s.absolute_hits, coverage_rule))


def _documents(store: stores.Store, dataset: str, fields: Sequence[str], ordinals: list[int]) -> dict[int, tuple[str, str]]:
    """ordinal -> (sample id, text) of the given documents."""
    if not ordinals:
        return {}
    wanted = set(ordinals)
    out: dict[int, tuple[str, str]] = {}
    for batch in store.iter_samples(dataset, ["sample_id", *fields], batch_rows=50_000):
        sel = batch.filter(batch["ordinal"].is_in(list(wanted)))
        if sel.height:
            for o, sid, text in zip(sel["ordinal"], sel["sample_id"], document_text(sel, fields), strict=True):
                out[int(o)] = (sid, text)
        if len(out) == len(wanted):
            break
    return out


def _rows(item: BenchmarkItem, sample_id: str, doc_text: str, it, doc, m: PairMatch, s: NgramSettings,
          normaliser: str, methods: Sequence[str]) -> list[dict]:
    """The evidence rows of one compared pair (longest run's spans; reasons in words)."""
    if m.best is None:
        return []
    i0, i1 = it.span(m.best.i0, m.best.i1)
    d0, d1 = doc.span(m.best.d0, m.best.d1)
    base = {"benchmark": item.benchmark, "item_id": item.item_id, "sample_id": sample_id,
            "item_start": i0, "item_end": i1, "doc_start": d0, "doc_end": d1}
    snippet = _snippet(doc_text[d0:d1])
    rows = []
    if normaliser == "code":
        hit = m.longest >= s.code_n
        rows.append({**base, "method": "code", "score": m.longest / max(1, m.item_tokens), "hit": hit,
                     "detail": f"{m.longest} code tokens in order with identifiers renamed-insensitive "
                               f"(of {m.item_tokens}; rule >= {s.code_n}): {snippet}"})
        return rows
    need = s.item_n(m.item_tokens)
    if "ngram" in methods:
        exact_hit = m.longest_exact >= need
        renumbered_hit = m.longest_content >= min(need, s.renumbered_n) and m.longest >= need
        run_hit, abs_hit = exact_hit or renumbered_hit, m.hits >= s.absolute_hits
        numbers = "" if exact_hit or not renumbered_hit else (
            f"; numbers differ (exact run {m.longest_exact}, {m.longest_content} digit-free words in one run)")
        why = " and ".join(w for w, ok in ((f"a {max(m.longest_exact, m.longest_content)}-word run >= {need}", run_hit),
                                            (f"{m.hits} item {s.min_n}-grams >= {s.absolute_hits}", abs_hit)) if ok)
        rows.append({**base, "method": "ngram", "score": m.longest / max(1, m.item_tokens),
                     "hit": run_hit or abs_hit,
                     "detail": f"longest shared run {m.longest} of {m.item_tokens} words, {m.hits} shared "
                               f"{s.min_n}-grams{numbers}; {'match: ' + why if why else 'below the rules'}: {snippet}"})
    if "coverage" in methods:
        rows.append({**base, "method": "coverage", "score": m.coverage, "hit": m.coverage >= s.coverage_dirty,
                     "detail": f"{m.coverage:.0%} of the item's {m.item_tokens} words inside matches of "
                               f">= {s.coverage_min_run} words (skip {s.coverage_skip}); dirty at "
                               f">= {s.coverage_dirty:.0%}: {snippet}"})
    return rows


def _snippet(text: str, width: int = 120) -> str:
    """The matched text on one line, shortened in the middle."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= width else flat[: width // 2] + " ... " + flat[-width // 2 :])


def settings_dict(settings: NgramSettings) -> dict:
    """Settings as recorded in run configs."""
    return asdict(settings)
