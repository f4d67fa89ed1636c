"""Model evidence of contamination: what a model trained on the corpus says about benchmark items.

The n-gram and MinHash methods read the text; these read a model trained on it, so they can
see copies the text methods miss (paraphrases, re-wrapped or renamed copies), at the price of
training a model. Two kinds, both for a GPT-2 made here (:func:`train_corpus_model`):

* **membership** (:func:`membership_evidence`): loss, zlib, Min-K% and Min-K%++ scores of each
  item's text (question, newline, answer) under the model, written as a ``membership`` run; with
  known non-member items, a threshold per method at 5% false positives on them, and the items
  above it. It says *whether* an item was seen, not where.
* **influence** (:func:`influence_evidence`): EK-FAC influence of every training document on the
  log-probability of each item's answer given its question, through the engine; per item its
  ``top_k`` pushing documents become ``contamination_matches`` rows of method ``influence``
  (which the verdict combines like any other method). It says *which document* taught it.

Documents are cut into consecutive windows of the model's context (:func:`corpus_chunks`, a
store dataset), so the model trains on every token, as LMs do, rather than on the start of each
document only; an item planted deep in a long document is then seen in training. A document
scores as its most influential window (exactly the document's influence when it fits in one);
its row's ``doc_start``/``doc_end`` are that window's characters.

**The score: pull-normalised, then a robust z.** Raw influence is dominated by windows with
large gradients: unusual or high-loss text, and documents holding *other* benchmark items,
which teach the benchmark's format and push every item of it. So each window's score on an item
is first divided by the root mean square of its scores on the *other* items (its general pull;
:func:`pull_normalised`, used when at least :data:`MIN_ITEMS_TO_NORMALISE` items are scored, as
the pull is estimated from them): a copy of the item pushes that item far more than the rest.
Then, per item, every window is compared with the bulk of the corpus for that item:
``z = (s - median) / (1.4826 * MAD)`` (median absolute deviation; 1.4826 makes it the standard
deviation for normal data). Median and MAD because the bulk is unrelated text and the few
outliers are what is sought: a mean and standard deviation would be inflated by them. Raw
magnitudes have no common scale across items or models (they grow with the answer's length
and loss), and a rank alone names a "top pusher" even for a clean item; z does neither.
A row is a hit when ``z >= z_min``.

**Where z_min comes from.** Not from a normal table: the top z among thousands of windows is
large even for clean items (heavy tails, many comparisons: 20-30 for the top window of a
clean item is common). It is calibrated on items known not to be in the corpus: the smallest
z none of them reaches (:func:`z_threshold`). :data:`DEFAULT_Z_MIN` is the value the planted
benchmark (``bench/contamination_model.py``) chose that way on its selection seed; it moves
with the corpus size and the model, so calibrate your own for another model or corpus. The
rank needs no threshold: the top pusher of an item is worth reading even below z_min.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset

import stores
from attribution.data import Samples, completion_samples
from attribution.keys import digest, model_fingerprint, short_digest
from attribution.membership import MEMBERSHIP_METHODS, Calibration, calibrate, membership_scores
from attribution.membership import write_membership_run as _write_membership
from filters.contamination.items import BenchmarkItem, document_text, read_items, train_fields

from ...steps.records import generated_key, ingest_records
from ...steps.train import LMConfig, tokenizer_key, train_or_reuse

#: bump when what the influence rows mean changes, so stored runs are recomputed
INFLUENCE_VERSION = 1
#: robust z a training document must reach on an item to be a hit (see the module docstring):
#: bench/contamination_model.py's choice on its selection seed 100 at its default size (2-layer
#: GPT-2, 1,000 steps: 93.35, bench/results/contamination_model.json), rounded up. It depends on
#: corpus and model: calibrate your own on items known not to be in the corpus.
DEFAULT_Z_MIN = 94.0
#: fewest items scored together for the pull normalisation (a window's pull is estimated on them)
MIN_ITEMS_TO_NORMALISE = 20
MAD_SCALE = 1.4826


# ---------------------------------------------------------------------- the corpus and the model
def _chunk_spans(tokenizer, text: str, width: int) -> list[tuple[int, int]]:
    """``[start, end)`` of consecutive windows of at most ``width`` tokens that cover ``text``.

    Windows are cut at token starts; a window whose text re-tokenises to more than ``width``
    tokens (a merge across the cut) is shortened a token at a time. Empty windows are left out.
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts = [s for s, _ in enc["offset_mapping"]]
    n, spans, i = len(starts), [], 0
    while i < n:
        begin = 0 if i == 0 else starts[i]
        j = min(i + width, n)
        while True:
            end = starts[j] if j < n else len(text)
            piece = tokenizer(text[begin:end], add_special_tokens=False)["input_ids"]
            if j == i + 1 or len(piece) <= width:
                break
            j -= 1
        if end > begin:
            spans.append((begin, end))
        i = j
    return spans


def corpus_chunks(store: stores.Store, train: str, tokenizer, max_length: int,
                  text_fields: Sequence[str] | None = None) -> str:
    """The store dataset of ``train`` cut into windows of ``max_length - 1`` tokens; its name.

    One sample per window (training appends an eos): ``text`` (the window), ``doc`` (the
    document's sample id), ``chunk`` (its index in the document), ``start``/``end`` (its
    characters in the document). Made once per training data, fields, tokenizer and length
    (found again by that key), so a model and its influence scores see the same windows.
    """
    fields = train_fields(store, train, text_fields)
    tok_key = tokenizer_key(tokenizer)
    key = short_digest("corpus_chunks", store.dataset_info(train)["fingerprint"], fields, tok_key,
                       max_length, inspect.getsource(_chunk_spans))
    name = f"{train}.chunks-{key}" if len(train) <= 100 else f"chunks-{key}"
    if generated_key(store, name) == key:
        return name
    records = []
    for batch in store.iter_samples(train, ["sample_id", *fields], batch_rows=10_000):
        texts = document_text(batch, fields)
        for sid, text in zip(batch["sample_id"].to_list(), texts, strict=True):
            for k, (s, e) in enumerate(_chunk_spans(tokenizer, text, max_length - 1)):
                records.append({"text": text[s:e], "doc": sid, "chunk": k, "start": s, "end": e})
    if not records:
        raise stores.StoreError(f"dataset {train!r}: every document is empty, nothing to train on")
    config = {"generator": "corpus_chunks", "key": key, "train": train, "fields": fields,
              "max_length": max_length, "tokenizer": tok_key}
    ingest_records(store, {name: records}, config=config, dataset=name,
                   roles={"text_field": "text"}, replace=True)
    return name


def train_corpus_model(store: stores.Store, train: str, tokenizer, lm: LMConfig, seed: int,
                       progress: bool = False, *, text_fields: Sequence[str] | None = None,
                       say: Callable[[str], None] = lambda text: None) -> Path:
    """Train (or reuse) a GPT-2 on every token of ``train``; returns its folder (with tokenizer).

    The documents are cut into context-sized windows (:func:`corpus_chunks`) and the model is
    trained on those by :func:`curation.steps.train.train_or_reuse`, cached by their content,
    ``lm``, ``seed`` and the tokenizer.
    """
    chunks = corpus_chunks(store, train, tokenizer, lm.max_length, text_fields)
    return train_or_reuse(store, chunks, tokenizer, lm, seed, extra_key=(tokenizer_key(tokenizer),),
                          progress=progress, say=say)


def _load(model_folder: Path | str):
    from attribution.models import load_causal_lm, load_tokenizer

    model = load_causal_lm(model_folder)
    return model, load_tokenizer(model_folder), int(model.config.n_positions)


def _unique(items: Sequence[BenchmarkItem]) -> list[BenchmarkItem]:
    """The items, each key once (a benchmark may hold the same content twice: one sample id)."""
    seen: dict[str, BenchmarkItem] = {}
    for it in items:
        seen.setdefault(it.key, it)
    return list(seen.values())


# ---------------------------------------------------------------------- membership
@dataclass
class MembershipEvidence:
    """A ``membership`` run: scores per method (aligned with ``keys``), thresholds, flags."""

    run_id: str
    keys: list[str]
    scores: dict[str, np.ndarray]
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    flagged: dict[str, list[str]] = field(default_factory=dict)
    reused: bool = False


def membership_evidence(store: stores.Store, model_folder: Path | str,
                        items: Sequence[BenchmarkItem], *, reference: Sequence[str] | None = None,
                        k: float = 0.2, fpr: float = 0.05,
                        methods: Sequence[str] = MEMBERSHIP_METHODS, batch_size: int = 16,
                        progress: bool = False) -> MembershipEvidence:
    """Membership scores of each item's text under the model, written as a ``membership`` run.

    One ``self_scores`` row per (item, method), ``sample_id`` = the item key
    ``benchmark:item_id`` (larger = more likely seen in training; :mod:`attribution.membership`).
    ``reference``: keys of items known NOT to be in the training data (a subset of ``items``);
    each method's threshold is then calibrated on them at ``fpr`` (no universal threshold
    exists) and the items above it are listed in ``flagged``. The same model, items and
    settings reuse the run. Items with the same key (identical content) are scored once.
    """
    items = _unique(items)
    keys = [it.key for it in items]
    if not items:
        raise ValueError("no items to score")
    ref = sorted(set(reference or []))
    unknown = sorted(set(ref) - set(keys))
    if unknown:
        raise ValueError(f"{len(unknown)} reference keys are not among the items, "
                         f"e.g. {unknown[0]}")
    model, tok, context = _load(model_folder)
    fp = model_fingerprint(model)
    texts = [it.text for it in items]
    key = digest("membership", fp, keys, short_digest(texts), k, list(methods), context, ref, fpr)
    found = store.sql("SELECT run_id FROM runs WHERE kind = 'membership' AND status = 'finished' "
                      "AND json_extract_string(config, '$.key') = ? "
                      "ORDER BY created_at DESC LIMIT 1", [key])
    if found.height:
        run_id = found["run_id"][0]
        df = store.read_self_scores(run_id)
        scores = {}
        for m in methods:
            sub = df.filter(df["method"] == m)
            by_key = dict(zip(sub["sample_id"].to_list(), sub["score"].to_list(), strict=True))
            scores[m] = np.array([by_key[x] for x in keys], dtype=np.float64)
    else:
        scores = membership_scores(model, tok, texts, methods=methods, k=k, max_length=context,
                                   batch_size=batch_size, progress=progress)
        run_id = ""
    out = MembershipEvidence(run_id, keys, scores, reused=bool(run_id))
    if ref:
        where = {x: i for i, x in enumerate(keys)}
        ref_idx = [where[x] for x in ref]
        for m in methods:
            cal = calibrate(scores[m][ref_idx], fpr, method=m)
            out.calibrations[m] = cal
            flags = cal.is_member(scores[m])
            out.flagged[m] = [x for x, hit in zip(keys, flags, strict=True) if hit]
    if not out.reused:
        benchmarks = sorted({it.benchmark for it in items})
        config = {"key": key, "model_folder": str(model_folder), "benchmarks": benchmarks,
                  "n_items": len(items), "k": k, "max_length": context, "fpr": fpr,
                  "sample_id": "benchmark:item_id",
                  "reference": {"n": len(ref), "fingerprint": short_digest(ref)} if ref else None,
                  "thresholds": {m: c.threshold for m, c in out.calibrations.items()},
                  "n_flagged": {m: len(v) for m, v in out.flagged.items()}}
        dataset = benchmarks[0] if len(benchmarks) == 1 else None
        out.run_id = _write_membership(store, fp, keys, scores, config=config,
                                       dataset=dataset)  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------------- influence
class AnswerQueries(Dataset):
    """Benchmark items as causal-LM measurements: ``-log p(answer | question)``.

    Input = question tokens, newline, answer tokens; labels on the answer only (no eos:
    training windows have no bos either). Too long for the context: the answer keeps at most
    ``max_length - max_length // 4`` tokens and the question its *last* tokens, next to it.
    """

    def __init__(self, items: Sequence[BenchmarkItem], tokenizer, max_length: int):
        q_ids = tokenizer([it.question + "\n" for it in items], add_special_tokens=False)
        a_ids = tokenizer([it.answer for it in items], add_special_tokens=False)
        pad = tokenizer.pad_token_id
        pad = tokenizer.eos_token_id if pad is None else pad
        n = len(items)
        self.input_ids = torch.full((n, max_length), pad, dtype=torch.long)
        self.attention_mask = torch.zeros((n, max_length), dtype=torch.long)
        self.labels = torch.full((n, max_length), -100, dtype=torch.long)
        for i, (q, a) in enumerate(zip(q_ids["input_ids"], a_ids["input_ids"], strict=True)):
            a = a[: max_length - min(len(q), max(1, max_length // 4))]
            q = q[len(q) - (max_length - len(a)):] if len(q) + len(a) > max_length else q
            seq = q + a
            self.input_ids[i, : len(seq)] = torch.tensor(seq)
            self.attention_mask[i, : len(seq)] = 1
            self.labels[i, len(q): len(seq)] = torch.tensor(a)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "attention_mask": self.attention_mask[i],
                "labels": self.labels[i]}


def robust_z(scores: np.ndarray) -> np.ndarray:
    """``(s - median) / (1.4826 * MAD)`` along the last axis (the module docstring says why).

    A row whose MAD is 0 (over half its values equal) falls back to 1.2533 x the mean absolute
    deviation (Iglewicz and Hoaglin); a constant row gets z = 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    med = np.median(s, axis=-1, keepdims=True)
    dev = np.abs(s - med)
    scale = MAD_SCALE * np.median(dev, axis=-1, keepdims=True)
    scale = np.where(scale > 0, scale, 1.2533 * dev.mean(axis=-1, keepdims=True))
    return np.divide(s - med, scale, out=np.zeros_like(s), where=scale > 0)


def pull_normalised(scores: np.ndarray) -> np.ndarray:
    """Each window's (column's) scores over the root mean square of its scores on the OTHER items.

    ``scores`` is items x windows. Leaving the item itself out keeps a copy's own large score
    from shrinking it; a window with no pull on the other items scores 0.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[0] < 2:
        return s
    sq = s * s
    pull = (sq.sum(axis=0, keepdims=True) - sq) / (s.shape[0] - 1)
    return np.divide(s, np.sqrt(pull), out=np.zeros_like(s), where=pull > 0)


def z_threshold(nonmember_z: Sequence[float] | np.ndarray) -> float:
    """The smallest ``z_min`` at which none of ``nonmember_z`` is a hit (hit = z >= z_min).

    Give it the z of the rows of items known never to be in the corpus (their top rows are
    enough): the rule the benchmark uses to choose :data:`DEFAULT_Z_MIN` on its selection seed.
    """
    z = np.asarray(nonmember_z, dtype=np.float64)
    z = z[np.isfinite(z)]
    return float(np.nextafter(z.max(), np.inf)) if z.size else -np.inf


@dataclass
class InfluenceEvidence:
    """The ``influence`` evidence run, the engine's scores run behind it and the windows dataset."""

    run_id: str
    scores_run: str
    chunks: str
    n_rows: int
    n_hits: int
    seconds: float
    reused: bool
    skipped: list[str] = field(default_factory=list)
    method: str = "influence"


def influence_evidence(store: stores.Store, model_folder: Path | str, train: str,
                       benchmarks: Sequence[str], *, top_k: int = 5, z_min: float = DEFAULT_Z_MIN,
                       normalise: bool | None = None, strategy: str = "ekfac", engine=None,
                       text_fields: Sequence[str] | None = None, question_field: str | None = None,
                       answer_field: str | None = None,
                       progress: bool = False) -> InfluenceEvidence:
    """Influence of every training document on each item's answer; top pushers as evidence rows.

    The engine (``strategy``, or a whole :class:`attribution.engine.EngineConfig` as ``engine``)
    scores every training window against ``-log p(answer | question)`` of every item of
    ``benchmarks`` (positive: training on it made the answer more likely). Scores are
    pull-normalised (``normalise``; default: with at least :data:`MIN_ITEMS_TO_NORMALISE`
    items) and turned into a robust z per item (module docstring). Per item, the ``top_k``
    documents with the highest z become ``contamination_matches`` rows of method ``influence``:
    ``score`` = z, ``hit`` = ``z >= z_min``, the item span = the answer, the document span = its
    best window, ``detail`` = rank, raw score and z. Items without an answer are skipped
    (listed). The run id is a digest of the inputs (data, model weights) and settings: a
    finished run is reused; the engine caches factors and scores (another ``z_min`` or
    ``top_k`` costs only the rows).
    """
    from attribution.engine import EngineConfig, InfluenceEngine
    from attribution.tasks import CausalLMTask

    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    t0 = time.perf_counter()
    cfg = engine or EngineConfig(strategy=strategy, query_batch_size=256)
    fields = train_fields(store, train, text_fields)
    items = _unique([it for b in benchmarks
                     for it in read_items(store, b, question_field, answer_field)])
    skipped = [it.key for it in items if not it.answer.strip()]
    items = [it for it in items if it.answer.strip()]
    if not items:
        raise ValueError("no benchmark item has an answer: influence measures "
                         "log p(answer | question)")
    normalise = len(items) >= MIN_ITEMS_TO_NORMALISE if normalise is None else bool(normalise)
    model, tok, context = _load(model_folder)
    chunks = corpus_chunks(store, train, tok, context, fields)
    settings = {"top_k": top_k, "z_min": z_min, "normalise": normalise, "engine": cfg.identity()}
    config = {"train": train, "train_fingerprint": store.dataset_info(train)["fingerprint"],
              "fields": fields,
              "benchmarks": {b: store.dataset_info(b)["fingerprint"] for b in benchmarks},
              "question_field": question_field, "answer_field": answer_field,
              "model": model_fingerprint(model), "chunks": chunks, "version": INFLUENCE_VERSION,
              "settings": settings}
    run_id = f"contamination_influence-{digest('influence', config)}"
    if store.run_finished(run_id):
        df = store.sql("SELECT count(*) AS n, count(*) FILTER (WHERE hit) AS h "
                       "FROM contamination_matches WHERE run_id = ?", [run_id])
        scores_run = store.sql("SELECT json_extract_string(config, '$.scores_run') AS r FROM runs "
                               "WHERE run_id = ?", [run_id])["r"][0]
        return InfluenceEvidence(run_id, scores_run, chunks, int(df["n"][0]), int(df["h"][0]), 0.0,
                                 True, skipped)

    windows = completion_samples(store, chunks, tok, context)
    queries = Samples(AnswerQueries(items, tok, context), [it.key for it in items])
    eng = InfluenceEngine(store, model, CausalLMTask(model), cfg)
    res = eng.pairwise_scores(f"{chunks}-answers", windows, queries, progress=progress)
    table = store.read_scores(res.run_id).select("query_id", "sample_id", "score")
    unique = {s: i for i, s in enumerate(dict.fromkeys(windows.ids))}  # identical windows: one id
    q_of = {k: i for i, k in enumerate(queries.ids)}
    matrix = np.full((len(items), len(unique)), np.nan)
    matrix[[q_of[q] for q in table["query_id"]], [unique[s] for s in table["sample_id"]]] = \
        table["score"].to_numpy()
    if np.isnan(matrix).any():
        raise stores.StoreError(f"scores run {res.run_id} lacks {int(np.isnan(matrix).sum())} "
                                "(item, window) pairs")
    meta = store.read_samples(chunks, ["sample_id", "doc", "chunk", "start", "end"])
    per_window = matrix[:, [unique[s] for s in meta["sample_id"]]]  # every window, in corpus order
    rows = _top_rows(items, per_window, meta, top_k, z_min, normalise)
    rule = (f"hit: robust z of the {'pull-normalised ' if normalise else ''}influence of the "
            "document's best window >= z_min")
    _write(store, run_id, {**config, "scores_run": res.run_id, "skipped": skipped, "rule": rule},
           train, rows, time.perf_counter() - t0)
    return InfluenceEvidence(run_id, res.run_id, chunks, len(rows), sum(r["hit"] for r in rows),
                             time.perf_counter() - t0, False, skipped)


def _top_rows(items: list[BenchmarkItem], scores: np.ndarray, meta, top_k: int, z_min: float,
              normalise: bool) -> list[dict]:
    """Each item's ``top_k`` documents by their best window's z, as evidence rows."""
    docs = meta["doc"].to_list()
    chunk, start, end = (meta[c].to_list() for c in ("chunk", "start", "end"))
    n_chunks: dict[str, int] = {}
    for d in docs:
        n_chunks[d] = n_chunks.get(d, 0) + 1
    used = pull_normalised(scores) if normalise else scores
    z = robust_z(used)
    what = "pull-normalised influence" if normalise else "influence"
    rows: list[dict] = []
    for i, it in enumerate(items):
        med = float(np.median(used[i]))
        mad = float(np.median(np.abs(used[i] - med)))
        seen: set[str] = set()
        for p in np.argsort(-z[i], kind="stable"):
            if docs[p] in seen:
                continue
            seen.add(docs[p])
            normalised = f", normalised {used[i, p]:.4g}" if normalise else ""
            detail = (f"rank {len(seen)} of {len(n_chunks)} documents by {what} on the answer; "
                      f"influence {scores[i, p]:.4g}{normalised} (z {z[i, p]:.2f}: "
                      f"median {med:.3g}, MAD {mad:.3g} over {scores.shape[1]} windows); "
                      f"window {chunk[p] + 1} of {n_chunks[docs[p]]}")
            rows.append({"benchmark": it.benchmark, "item_id": it.item_id, "sample_id": docs[p],
                         "score": float(z[i, p]), "hit": bool(z[i, p] >= z_min),
                         "item_start": len(it.question) + 1, "item_end": len(it.text),
                         "doc_start": int(start[p]), "doc_end": int(end[p]), "detail": detail})
            if len(seen) >= top_k:
                break
    return rows


def _write(store: stores.Store, run_id: str, config: dict, train: str, rows: list[dict],
           seconds: float) -> None:
    """The rows as one finished ``contamination`` run of method ``influence`` (all or nothing)."""
    schema = stores.schema.SHARD_SCHEMAS["contamination_matches"]
    cols = {f.name: pa.array([r.get(f.name) if f.name != "method" else "influence" for r in rows],
                             f.type) for f in schema if f.name != "run_id"}
    with store.run("contamination", config={"method": "influence", **config, "seconds": seconds},
                   dataset=train, run_id=run_id, all_or_nothing=True) as run:
        run.write("contamination_matches", pa.table(cols), shard=0)


__all__ = [
    "DEFAULT_Z_MIN", "MIN_ITEMS_TO_NORMALISE", "AnswerQueries", "InfluenceEvidence",
    "MembershipEvidence", "corpus_chunks", "influence_evidence", "membership_evidence",
    "pull_normalised", "robust_z", "train_corpus_model", "z_threshold",
]
