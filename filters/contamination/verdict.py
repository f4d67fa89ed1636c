"""The combined contamination verdict: document flags and an item-level table from evidence runs.

A document is flagged when any chosen method's row for it is a ``hit`` (the method's own rule at
its settings); its reason names each benchmark item it contains, the methods that found it and
the matched text. Each benchmark item gets one ``contamination_items`` row: dirty or not, which
methods and forms, how many documents, an example document and span. Both are written as one
``filter`` run, so ``curation curate --flags RUN`` removes the dirty documents and
``SELECT * FROM contamination_items WHERE run_id = RUN`` lists the dirty items.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

import stores

from ..base import Filter, FilterRun, Flags
from ..evidence import dataset_ids
from .items import BenchmarkItem


def guess_form(row: dict, item: BenchmarkItem | None, doc_len: int) -> str:
    """The form a matched copy seems to take, from one hit row (a label for people, not a metric).

    ``code`` matches are ``renamed_code`` unless the tokens are equal; MinHash-only matches are
    ``near_duplicate``; n-gram matches whose numbers differ are ``renumbered``; matches ending
    inside the question are ``question_only``; a match that is under a third of its document is
    ``embedded``; text equal to the item's but for case, punctuation or spacing is ``reformatted``.
    """
    method, detail = row["method"], row.get("detail") or ""
    if method == "code":
        return "renamed_code"
    if method == "near_dup":
        return "near_duplicate"
    if method not in ("ngram", "coverage"):
        return method
    if "numbers differ" in detail:
        return "renumbered"
    if item is not None and item.answer and row["item_end"] <= len(item.question) + 1:
        return "question_only"
    if doc_len and (row["doc_end"] - row["doc_start"]) * 3 < doc_len:
        return "embedded"
    return "verbatim" if "reformatted" not in detail else "reformatted"


class ContaminationFilter(Filter):
    """Flags training documents that contain benchmark items, from ``contamination_matches`` runs.

    ``evidence_runs``: the evidence runs to combine; ``methods``: which methods' hits count
    (default: all present). ``items`` (benchmark items, for the item table and forms).
    """

    name = "contamination"

    def __init__(self, evidence_runs: Sequence[str], items: Sequence[BenchmarkItem], *,
                 methods: Sequence[str] | None = None, text_fields: Sequence[str] = ("text",)):
        super().__init__()
        self.evidence_runs = list(evidence_runs)
        self.methods = list(methods) if methods else None
        self.text_fields = list(text_fields)
        self._items = list(items)

    def config(self) -> dict[str, Any]:
        return {"evidence_runs": self.evidence_runs, "methods": self.methods, "text_fields": self.text_fields,
                "rule": "a document is flagged when any chosen method's row for it is a hit",
                "benchmarks": sorted({it.benchmark for it in self._items})}

    def matches(self, store: stores.Store) -> pl.DataFrame:
        """The evidence rows of the chosen runs and methods, in a fixed order (ties in reasons break alike)."""
        df = store.sql("SELECT * FROM contamination_matches WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
                       "ORDER BY method, benchmark, item_id, sample_id, score DESC, doc_start",
                       [self.evidence_runs])
        if self.methods:
            df = df.filter(pl.col("method").is_in(self.methods))
        return df

    def evaluate(self, store: stores.Store, dataset: str) -> Flags:
        ids = dataset_ids(store, dataset)
        hits = self.matches(store).filter(pl.col("hit"))
        labels = {it.key: it.label for it in self._items}
        by_doc: dict[str, list[dict]] = defaultdict(list)
        for row in hits.sort(["score"], descending=True, maintain_order=True).iter_rows(named=True):
            by_doc[row["sample_id"]].append(row)
        score = np.zeros(len(ids))
        flagged = np.zeros(len(ids), dtype=bool)
        reasons = []
        for i, sid in enumerate(ids):
            rows = by_doc.get(sid)
            if not rows:
                reasons.append("no benchmark item found by " + ", ".join(self.methods or ["any method"]) + "; kept")
                continue
            flagged[i] = True
            score[i] = max(r["score"] for r in rows)
            reasons.append(_doc_reason(rows, labels))
        return Flags(self.name, ids, score, flagged, reasons)

    def item_table(self, store: stores.Store, dataset: str, doc_lengths: dict[str, int]) -> pa.Table:
        """One verdict row per benchmark item (see the module docstring)."""
        hits = self.matches(store).filter(pl.col("hit"))
        by_item: dict[str, list[dict]] = defaultdict(list)
        for row in hits.sort(["score"], descending=True, maintain_order=True).iter_rows(named=True):
            by_item[f"{row['benchmark']}:{row['item_id']}"].append(row)
        cols: dict[str, list] = defaultdict(list)
        for it in self._items:
            rows = by_item.get(it.key, [])
            forms = sorted({guess_form(r, it, doc_lengths.get(r["sample_id"], 0)) for r in rows})
            methods = sorted({r["method"] for r in rows})
            best = rows[0] if rows else None
            cols["benchmark"].append(it.benchmark)
            cols["item_id"].append(it.item_id)
            cols["item_name"].append(it.name or it.item_id)
            cols["dirty"].append(bool(rows))
            cols["score"].append(float(best["score"]) if best else 0.0)
            cols["methods"].append(",".join(methods))
            cols["forms"].append(",".join(forms))
            cols["n_documents"].append(len({r["sample_id"] for r in rows}))
            cols["example_document"].append(best["sample_id"] if best else None)
            cols["example_span"].append(f"{best['doc_start']}:{best['doc_end']}" if best else None)
            cols["reason"].append(
                f"found in {len({r['sample_id'] for r in rows})} document(s) of {dataset} by {', '.join(methods)} "
                f"({', '.join(forms)}); best: {best['detail']}" if best else f"not found in {dataset}")
        schema = stores.schema.SHARD_SCHEMAS["contamination_items"]
        return pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema if f.name != "run_id"})

    def run(self, store: stores.Store, dataset: str, *, seed: int | None = None) -> FilterRun:
        """Write the document flags and the item table as one finished ``filter`` run."""
        flags = self.evaluate(store, dataset)
        flagged_ids = [s for s, f in zip(flags.sample_ids, flags.flagged, strict=True) if f]
        lengths = _doc_lengths(store, dataset, flagged_ids, self.text_fields)
        config = {"filter": self.name, "settings": self.config(), "evidence": self.evidence_runs,
                  "n_flagged": flags.n_flagged, "n_samples": len(flags.sample_ids)}
        items = self.item_table(store, dataset, lengths)
        config["n_items"], config["n_dirty_items"] = items.num_rows, int(pa.compute.sum(items["dirty"]).as_py() or 0)
        with store.run("filter", config=config, seed=seed, dataset=dataset) as handle:
            handle.write("flags", flags.table(), shard=0)
            handle.write("contamination_items", items, shard=0)
        return FilterRun(handle.id, flags)


def _doc_reason(rows: list[dict], names: dict[str, str], most: int = 3) -> str:
    """"contains gsm:gsm/3 (ngram, coverage): '...'; humaneval:HumanEval/7 (code): '...'"."""
    per_item: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        per_item[names.get(f"{r['benchmark']}:{r['item_id']}", f"{r['benchmark']}:{r['item_id']}")].append(r)
    parts = []
    for key, rs in list(per_item.items())[:most]:
        methods = ", ".join(sorted({r["method"] for r in rs}))
        parts.append(f"{key} ({methods}): {rs[0]['detail']}")
    more = f"; and {len(per_item) - most} more item(s)" if len(per_item) > most else ""
    return "contains benchmark " + "; ".join(parts) + more


def _doc_lengths(store: stores.Store, dataset: str, sample_ids: list[str], fields: list[str]) -> dict[str, int]:
    """Characters of each given document's text fields (for form guesses)."""
    if not sample_ids:
        return {}
    wanted = set(sample_ids)
    out: dict[str, int] = {}
    for batch in store.iter_samples(dataset, ["sample_id", *fields], batch_rows=50_000):
        sel = batch.filter(pl.col("sample_id").is_in(list(wanted)))
        for row in sel.iter_rows(named=True):
            out[row["sample_id"]] = sum(len(row[f] or "") for f in fields)
    return out
