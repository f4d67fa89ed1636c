"""Junk ratio of a dataset and of its curated output, by category.

The brain-rot paper's dose-response (0/20/50/80/100% junk) makes the junk *ratio* the number a
user needs: how much of a dataset is junk, of which kind, and how much is left once the flagged
samples are dropped. :func:`junk_ratio` reports, as plain JSON-able dicts:

- ``truth``: with a ground-truth category field (``category``: ``clean`` or a junk category, or a
  bool ``is_junk``), the true junk share overall and by category;
- ``flags``: with a flags run, the share flagged overall, by the junk category the reasons name
  (:func:`filters.junk.filter.reason_categories`), and per true category (how much of each is caught);
- ``curated``: the same truth numbers over the samples the flags keep (:func:`curated_ratio`).

:func:`format_junk_ratio` prints it as a table.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

import stores

from .classifier import CLEAN
from .filter import UNCATEGORISED, reason_categories


def _share(n: int, total: int) -> float:
    return n / total if total else 0.0


def _truth(categories: list[str], clean: str, field: str) -> dict[str, Any]:
    counts = Counter(categories)
    n = len(categories)
    n_junk = n - counts.get(clean, 0)
    return {"field": field, "n_samples": n, "n_junk": n_junk, "junk_share": _share(n_junk, n),
            "by_category": {c: {"n": counts[c], "share": _share(counts[c], n)} for c in sorted(counts)}}


def _categories(df: pl.DataFrame, dataset: str, field: str | None, clean: str) -> list[str] | None:
    if field is None or field not in df.columns:
        return None
    col = df[field]
    if col.dtype == pl.Boolean:
        return ["junk" if v else clean if v is not None else "(missing)" for v in col.to_list()]
    return ["(missing)" if v is None else str(v) for v in col.cast(pl.String).to_list()]


def _flags(store: stores.Store, dataset: str, run_id: str, ids: list[str]) -> tuple[list[bool], list[str], str]:
    flags = store.read_flags(run_id)
    if flags.height == 0:
        raise stores.StoreError(f"no finished flags for run {run_id!r}")
    by_id = {s: (bool(f), r or "") for s, f, r in zip(flags["sample_id"].to_list(), flags["flagged"].to_list(),
                                                     flags["reason"].to_list(), strict=True)}
    if not any(s in by_id for s in ids):
        raise ValueError(f"flags run {run_id!r} covers none of dataset {dataset!r}'s samples")
    flagged = [by_id.get(s, (False, ""))[0] for s in ids]  # a sample the run did not see is kept
    reasons = [by_id.get(s, (False, ""))[1] for s in ids]
    return flagged, reasons, str(flags["filter"][0])


def junk_ratio(store: stores.Store, dataset: str, flags_run: str | None = None, category_field: str | None = "category",
               *, clean: str = CLEAN) -> dict[str, Any]:
    """The junk ratio of ``dataset`` by category, and of its curated output when a flags run is given.

    Keys: ``dataset``, ``n_samples``, ``truth`` (None without ``category_field`` in the dataset),
    ``flags`` and ``curated`` (None without ``flags_run``); see the module doc. An error names the
    dataset and field when there is neither a flags run nor the category field.
    """
    df = store.read_samples(dataset)
    ids = df["sample_id"].to_list()
    cats = _categories(df, dataset, category_field, clean)
    if cats is None and flags_run is None:
        raise ValueError(f"dataset {dataset!r} has no category field {category_field!r} and no flags run was given: "
                         "nothing to measure the junk ratio by")
    out: dict[str, Any] = {"dataset": dataset, "n_samples": len(ids),
                           "truth": _truth(cats, clean, str(category_field)) if cats is not None else None,
                           "flags": None, "curated": None}
    if flags_run is None:
        return out
    flagged, reasons, filter_name = _flags(store, dataset, flags_run, ids)
    n_flagged = sum(flagged)
    by_reason: Counter[str] = Counter()
    for f, r in zip(flagged, reasons, strict=True):
        if f:
            by_reason.update(reason_categories(r) or [UNCATEGORISED])
    flags: dict[str, Any] = {
        "run_id": flags_run, "filter": filter_name, "n_flagged": n_flagged, "flagged_share": _share(n_flagged, len(ids)),
        "by_reason_category": {c: {"n": by_reason[c], "share": _share(by_reason[c], len(ids))} for c in sorted(by_reason)},
    }
    if cats is not None:
        per: dict[str, dict[str, Any]] = {}
        for c in sorted(set(cats)):
            n = sum(1 for x in cats if x == c)
            k = sum(1 for x, f in zip(cats, flagged, strict=True) if x == c and f)
            per[c] = {"n": n, "n_flagged": k, "flagged_share": _share(k, n)}
        flags["by_true_category"] = per
        true_junk = [x != clean for x in cats]
        hits = sum(1 for j, f in zip(true_junk, flagged, strict=True) if j and f)
        flags["precision"] = _share(hits, n_flagged)
        flags["recall"] = _share(hits, sum(true_junk))
    out["flags"] = flags
    kept = [not f for f in flagged]
    out["curated"] = {"n_samples": sum(kept), "n_removed": n_flagged,
                      "truth": _truth([c for c, k in zip(cats, kept, strict=True) if k], clean, str(category_field))
                      if cats is not None else None}
    return out


def curated_ratio(store: stores.Store, dataset: str, flags_run: str, category_field: str = "category",
                  *, clean: str = CLEAN) -> dict[str, Any]:
    """The true junk ratio by category of the samples ``flags_run`` keeps (the curated output)."""
    d = junk_ratio(store, dataset, flags_run, category_field, clean=clean)
    if d["truth"] is None:
        raise ValueError(f"dataset {dataset!r} has no category field {category_field!r}: the curated output's "
                         "true junk ratio needs ground truth")
    return d["curated"]["truth"]


def _pct(n: int, share: float) -> str:
    return f"{n:,} ({share:.1%})"


def format_junk_ratio(d: dict[str, Any]) -> str:
    """:func:`junk_ratio`'s dict as a text table: per category, the dataset, the flagged and the curated output."""
    lines = [f"junk ratio of dataset {d['dataset']!r}: {d['n_samples']:,} samples"]
    truth, flags, curated = d.get("truth"), d.get("flags"), d.get("curated")
    if flags:
        lines.append(f"flagged by {flags['filter']} run {flags['run_id']}: {_pct(flags['n_flagged'], flags['flagged_share'])}"
                     + (f"; precision {flags['precision']:.1%}, recall {flags['recall']:.1%}" if "precision" in flags else ""))
    if truth:
        cur = curated["truth"] if curated and curated.get("truth") else None
        head = f"{'true ' + truth['field']:<24}{'dataset':>16}"
        if flags:
            head += f"{'flagged':>18}"
        if cur:
            head += f"{'curated':>16}"
        lines.append(head)
        for c, v in truth["by_category"].items():
            row = f"{c:<24}{_pct(v['n'], v['share']):>16}"
            if flags:
                t = flags["by_true_category"][c]
                caught = f"{t['n_flagged']:,} of {t['n']:,} ({t['flagged_share']:.0%})"
                row += f"{caught:>18}"
            if cur:
                cv = cur["by_category"].get(c, {"n": 0, "share": 0.0})
                row += f"{_pct(cv['n'], cv['share']):>16}"
            lines.append(row)
        row = f"{'junk (all categories)':<24}{_pct(truth['n_junk'], truth['junk_share']):>16}"
        if flags:
            row += f"{'recall ' + format(flags['recall'], '.0%'):>18}"
        if cur:
            row += f"{_pct(cur['n_junk'], cur['junk_share']):>16}"
        lines.append(row)
    if flags and flags["by_reason_category"]:
        lines.append("flagged by reason category (share of the dataset):")
        for c, v in flags["by_reason_category"].items():
            lines.append(f"  {c:<22}{_pct(v['n'], v['share']):>16}")
    return "\n".join(lines)


__all__ = ["curated_ratio", "format_junk_ratio", "junk_ratio"]
