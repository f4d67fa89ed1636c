"""Training-side removal as the lm-eval janitor does it: cut each match plus a window, or drop the document.

For every flagged document, the spans to remove are the matched runs of each benchmark item it
contains (all aligned runs of at least ``k`` tokens, not only the longest; a MinHash match
removes its window). Each span grows by ``window`` characters on both sides; overlapping spans
merge; a piece left between two cuts (or at an end) shorter than ``min_piece`` characters is
removed too; a document cut into more than ``too_dirty`` regions is dropped whole. Defaults are
the janitor's (200, 200, 10). One difference, on purpose: the janitor counts every matching
13-gram towards ``too_dirty`` (so one 40-word copy, 28 overlapping 13-grams, drops any
document), while here the count is of separate cut regions, as the rule is usually described.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

import stores

from .items import BenchmarkItem, ContaminationInputError, document_text
from .matching import match_pair
from .ngrams import NgramSettings
from .normalize import tokens


@dataclass
class CutSettings:
    """Janitor removal settings (its defaults)."""

    window: int = 200       # characters removed on each side of a match
    min_piece: int = 200    # pieces shorter than this between cuts are removed too
    too_dirty: int = 10     # a document cut into more regions than this is dropped


def cut_regions(length: int, spans: Sequence[tuple[int, int]], s: CutSettings) -> tuple[list[tuple[int, int]], bool]:
    """Merged regions to remove from a text of ``length`` characters, and whether to drop it whole."""
    grown = sorted((max(0, a - s.window), min(length, b + s.window)) for a, b in spans)
    regions: list[list[int]] = []
    for a, b in grown:
        if regions and a - regions[-1][1] < s.min_piece:   # the piece between is too short: remove it
            regions[-1][1] = max(regions[-1][1], b)
        else:
            regions.append([a, b])
    if regions and regions[0][0] < s.min_piece:
        regions[0][0] = 0
    if regions and length - regions[-1][1] < s.min_piece:
        regions[-1][1] = length
    out = [(a, b) for a, b in regions]
    drop = len(out) > s.too_dirty or (len(out) == 1 and out[0] == (0, length))
    return out, drop


def plan_cuts(store: stores.Store, verdict_run: str, train: str, fields: Sequence[str],
              items: Sequence[BenchmarkItem], *, ngram: NgramSettings | None = None,
              settings: CutSettings | None = None) -> tuple[pa.Table, pa.Table]:
    """The (edits, drops) tables that cut the matches of a verdict run out of ``train``.

    Edits: sample_id, field, start, end, reason; drops: sample_id, reason. Only datasets whose
    documents are one text field can be cut (spans are offsets in that field).
    """
    if len(fields) != 1:
        raise ContaminationInputError(
            f"cutting spans needs documents in one text field; {train!r} joins {', '.join(fields)}: "
            "remove whole documents instead")
    ngram, settings = ngram or NgramSettings(), settings or CutSettings()
    run = store.get_run(verdict_run)
    evidence = (run.get("config") or {}).get("evidence") or []
    hits = store.sql("SELECT * FROM contamination_matches WHERE hit AND run_id IN (SELECT unnest(?::VARCHAR[]))",
                     [list(evidence)])
    flagged = set(store.sql("SELECT sample_id FROM flags WHERE run_id = ? AND flagged", [verdict_run])["sample_id"])
    hits = hits.filter(pl.col("sample_id").is_in(list(flagged)))
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for row in hits.iter_rows(named=True):
        by_doc[row["sample_id"]].append(row)
    by_key = {it.key: it for it in items}
    edits: dict[str, list] = defaultdict(list)
    drops: dict[str, list] = defaultdict(list)
    field = fields[0]
    for batch in store.iter_samples(train, ["sample_id", field], batch_rows=20_000):
        sel = batch.filter(pl.col("sample_id").is_in(list(by_doc)))
        for sid, text in zip(sel["sample_id"].to_list(), document_text(sel, fields), strict=True):
            spans, labels = _spans(text, by_doc[sid], by_key, ngram)
            regions, drop = cut_regions(len(text), spans, settings)
            why = f"contamination [{verdict_run}]: {', '.join(sorted(labels))}"
            if drop:
                drops["sample_id"].append(sid)
                drops["reason"].append(f"{why}; dropped: cut into {len(regions)} region(s) "
                                       f"(> {settings.too_dirty}) or nothing left")
                continue
            for a, b in regions:
                edits["sample_id"].append(sid)
                edits["field"].append(field)
                edits["start"].append(a)
                edits["end"].append(b)
                edits["reason"].append(f"{why}; match +/- {settings.window} chars")
    edit_table = pa.table({"sample_id": pa.array(edits["sample_id"], pa.string()),
                           "field": pa.array(edits["field"], pa.string()),
                           "start": pa.array(edits["start"], pa.int64()), "end": pa.array(edits["end"], pa.int64()),
                           "reason": pa.array(edits["reason"], pa.string())})
    drop_table = pa.table({"sample_id": pa.array(drops["sample_id"], pa.string()),
                           "reason": pa.array(drops["reason"], pa.string())})
    return edit_table, drop_table


def _spans(text: str, rows: list[dict], by_key: dict[str, BenchmarkItem], ngram: NgramSettings
           ) -> tuple[list[tuple[int, int]], set[str]]:
    """Character spans of every match of the rows' items in ``text``, and the items' labels."""
    spans: list[tuple[int, int]] = []
    labels: set[str] = set()
    cache: dict[str, object] = {}
    for r in rows:
        item = by_key.get(f"{r['benchmark']}:{r['item_id']}")
        labels.add(item.label if item else f"{r['benchmark']}:{r['item_id']}")
        if r["method"] in ("ngram", "coverage", "code") and item is not None:
            normaliser, k = ("code", ngram.code_k) if r["method"] == "code" else ("words", ngram.min_n)
            if normaliser not in cache:
                cache[normaliser] = tokens(text, normaliser)
            doc = cache[normaliser]
            m = match_pair(tokens(item.text, normaliser), doc, k)
            spans += [doc.span(run.d0, run.d1) for run in m.runs]
        else:
            spans.append((int(r["doc_start"]), int(r["doc_end"])))
    return spans, labels
