"""Score contamination evidence against a planted corpus's truth: item recall, document precision, AUROC.

Computed from what a user's run wrote (the hit rows of each evidence run, the flags of the
verdict run), never recomputed per subset. Definitions:

* **item recall** of a form: planted items of that form the method marks (any hit row for the
  item, in any document) / planted items of that form;
* **document precision** (overall): flagged documents that truly hold a planted copy / flagged
  documents; per form, true positives of the form / (true positives of the form + every false
  positive), i.e. the precision the method would have on a corpus holding only that form;
* **document recall** of a form: documents holding a copy of that form that are flagged;
* **AUROC** (documents): the method's best score per document against "holds a planted copy",
  documents without a row scoring 0 (scikit-learn's ``roc_auc_score``);
* false positives on **hard negatives** and **items never planted** marked dirty, counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import polars as pl

import stores


def store_keys(store: stores.Store, train: str, benchmarks: Mapping[str, str]
               ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Maps from store ids to generator ids: training sample id -> doc ids; ``dataset:sample_id`` -> ``bench:item`` ids.

    Lists, because identical samples share a content id: a benchmark holding the same item twice
    (MMLU does) has two generator ids behind one store id, and marking one marks both.
    """
    docs = store.read_samples(train, columns=["sample_id", "id"])
    doc_map: dict[str, list[str]] = defaultdict(list)
    for s, i in zip(docs["sample_id"].to_list(), docs["id"].to_list(), strict=True):
        doc_map[s].append(i)
    item_map: dict[str, list[str]] = defaultdict(list)
    for bench, dataset in benchmarks.items():
        df = store.read_samples(dataset, columns=["sample_id", "id"])
        for s, i in zip(df["sample_id"], df["id"], strict=True):
            item_map[f"{dataset}:{s}"].append(f"{bench}:{i}")
    return doc_map, item_map


def score_method(hit_docs: Iterable[str], hit_items: Iterable[str], doc_scores: Mapping[str, float],
                 corpus, doc_ids: list[str]) -> dict:
    """Metrics of one method from generator-id sets: flagged docs, marked items, per-doc scores."""
    from sklearn.metrics import roc_auc_score

    truth_docs = corpus.document_truth()
    forms = corpus.item_forms()
    doc_forms: dict[str, set[str]] = defaultdict(set)
    for doc in corpus.train:
        for item in doc["items"]:
            if forms.get(item):
                doc_forms[doc["id"]].add(forms[item])
    hard = {d["id"] for d in corpus.train if "hard_negative" in d.get("forms", [])}
    flagged, marked = set(hit_docs), set(hit_items)
    dirty_docs = {d for d, items in truth_docs.items() if items}
    tp = flagged & dirty_docs
    fp = flagged - dirty_docs
    out: dict = {"n_flagged_docs": len(flagged), "doc_precision": _ratio(len(tp), len(flagged)),
                 "doc_recall": _ratio(len(tp), len(dirty_docs)), "false_positive_docs": len(fp),
                 "hard_negatives_flagged": len(flagged & hard),
                 "never_planted_items_marked": sum(1 for i in marked if forms.get(i) is None and i in forms)}
    y = np.array([d in dirty_docs for d in doc_ids])
    s = np.array([doc_scores.get(d, 0.0) for d in doc_ids])
    out["doc_auroc"] = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) and np.ptp(s) > 0 else None
    out["forms"] = {}
    for form in sorted({f for f in forms.values() if f}):
        items = {i for i, f in forms.items() if f == form}
        docs_f = {d for d, fs in doc_forms.items() if form in fs}
        tp_f = flagged & docs_f
        out["forms"][form] = {"n_items": len(items), "item_recall": _ratio(len(items & marked), len(items)),
                              "doc_recall": _ratio(len(tp_f), len(docs_f)),
                              "doc_precision": _ratio(len(tp_f), len(tp_f) + len(fp))}
    return out


def score_store_runs(store: stores.Store, evidence: Mapping[str, str], verdict_run: str, train: str,
                     benchmarks: Mapping[str, str], corpus) -> dict:
    """Per-method metrics (each evidence run, and ``combined`` = the verdict's flags) against the truth."""
    doc_map, item_map = store_keys(store, train, benchmarks)
    doc_ids = [d["id"] for d in corpus.train]
    out: dict = {}
    for method, run_id in evidence.items():
        rows = store.sql("SELECT benchmark, item_id, sample_id, score, hit FROM contamination_matches WHERE run_id = ?",
                         [run_id])
        hits = rows.filter(pl.col("hit"))
        scores = rows.group_by("sample_id").agg(pl.col("score").max())
        out[method] = score_method(
            (d for s in hits["sample_id"] for d in doc_map[s]),
            (k for b, i in zip(hits["benchmark"], hits["item_id"], strict=True) for k in item_map[f"{b}:{i}"]),
            {d: float(v) for s, v in zip(scores["sample_id"], scores["score"], strict=True) for d in doc_map[s]},
            corpus, doc_ids)
    flags = store.sql("SELECT sample_id, score, flagged FROM flags WHERE run_id = ?", [verdict_run])
    items = store.sql("SELECT benchmark, item_id FROM contamination_items WHERE run_id = ? AND dirty", [verdict_run])
    out["combined"] = score_method(
        (d for s, f in zip(flags["sample_id"], flags["flagged"], strict=True) if f for d in doc_map[s]),
        (k for b, i in zip(items["benchmark"], items["item_id"], strict=True) for k in item_map[f"{b}:{i}"]),
        {d: float(v) for s, v in zip(flags["sample_id"], flags["score"], strict=True) for d in doc_map[s]},
        corpus, doc_ids)
    return out


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None
