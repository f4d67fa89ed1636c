"""The contamination pipeline's report sections: what was found (per benchmark, per evidence run,
and against the planted truth when there is one), the dirty items side by side with the training
document that holds them (matched spans highlighted), the clean subsets to evaluate on, and the
decontaminated datasets with their audit. Registered as the ``contamination`` pipeline's sections
of :mod:`curation.report` (which imports this module when it builds such a page).

Every section reads what the runs left in the store (``contamination_matches``,
``contamination_items``, ``curated``, ``curated_edits``) and the texts of the datasets they
name; a dataset dropped since is said so and its part skipped, never an error.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

import stores
from curation.report.html import count, esc, label, missing, num, ordered, pct, sql_block
from curation.report.pages import Section, register_sections
from filters.contamination.items import (
    BenchmarkItem,
    ContaminationInputError,
    benchmark_fields,
    document_text,
    train_fields,
)

#: Dirty items shown side by side with their document.
MAX_DIRTY = 20
#: Characters of a document shown on each side of its matched span.
DOC_CONTEXT = 150
#: Characters of an item shown on each side of its matched span (items are short; most show whole).
ITEM_CONTEXT = 600
#: A highlighted span longer than this shows its two ends around an ellipsis.
MAX_MARK = 800
#: Cut edits listed in the curated-outputs section.
MAX_EDITS = 5
#: Words for the evidence methods and the verdict.
METHOD_LABELS = {
    "ngram": "n-gram overlap",
    "coverage": "coverage (Llama 2 style)",
    "code": "code tokens (names masked)",
    "near_dup": "near duplicate (MinHash)",
    "combined": "verdict (combined)",
}
METHOD_ORDER = list(METHOD_LABELS)
CURATED_LABELS = {"drop": "flagged documents dropped", "cut": "matched spans cut out"}


@register_sections("contamination")
def sections(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> list[Section]:
    """The pipeline run's sections: contamination found, dirty items, clean subsets, curated outputs."""
    return [("contamination", "contamination found", _found_section(store, run["run_id"], config)),
            ("dirty-items", "dirty items", _dirty_section(store, config)),
            ("clean-subsets", "clean subsets", _clean_section(store, config)),
            ("curated", "curated outputs", _curated_section(store, config))]


def highlight(text: str, start: int | None, end: int | None, context: int | None = None,
              max_mark: int = MAX_MARK) -> str:
    """``text`` as HTML with ``text[start:end]`` in ``<mark>``; with ``context``, only that many
    characters on each side of the span (cut at a space where one is near, ``…`` where cut). A span
    outside the text is clipped; no span (or an empty one) shows the text's start unmarked."""
    n = len(text)
    if start is None or end is None or min(max(end, 0), n) <= min(max(start, 0), n):
        shown = text if context is None or n <= 2 * context else text[: 2 * context] + "…"
        return esc(shown)
    s, e = min(max(start, 0), n), min(max(end, 0), n)
    before, after = text[:s], text[e:]
    lead = trail = ""
    if context is not None and len(before) > context:
        before, lead = _trim_start(before[-context:]), "…"
    if context is not None and len(after) > context:
        after, trail = _trim_end(after[:context]), "…"
    span = text[s:e]
    if len(span) > max_mark:
        half = max_mark // 2
        marked = f"<mark>{esc(span[:half])}</mark> … <mark>{esc(span[-half:])}</mark>"
    else:
        marked = f"<mark>{esc(span)}</mark>"
    return f"{lead}{esc(before)}{marked}{esc(after)}{trail}"


def _trim_start(piece: str, near: int = 25) -> str:
    """``piece`` from its first space within ``near`` characters (so a window starts at a word)."""
    cut = piece.find(" ", 0, near)
    return piece[cut + 1:] if cut >= 0 else piece


def _trim_end(piece: str, near: int = 25) -> str:
    """``piece`` up to its last space within ``near`` characters of its end."""
    cut = piece.rfind(" ", max(0, len(piece) - near))
    return piece[:cut] if cut >= 0 else piece


def shorten(text: str | None, limit: int = 120) -> str:
    """``text`` on one line, its middle replaced by ``…`` when longer than ``limit`` characters."""
    one = " ".join((text or "").split())
    if len(one) <= limit:
        return one
    head = int(limit * 0.6)
    return f"{one[:head]} … {one[-(limit - head - 3):]}"


def natural_key(name: str) -> list[Any]:
    """Sort key putting ``q2`` before ``q10`` (numbers inside names compared as numbers)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", str(name)) if p]


def _q(value: Any) -> str:
    """``value`` as an SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def _verdict_config(store: stores.Store, config: dict[str, Any]) -> dict[str, Any]:
    """The verdict (filter) run's config, or {} when the run names none or its record is gone."""
    if not config.get("flags_run"):
        return {}
    try:
        return store.get_run(config["flags_run"]).get("config") or {}
    except stores.StoreError:
        return {}


def _names(x: Any) -> str:
    """A comma-joined list (``coverage,ngram``) as words (``coverage, ngram``)."""
    return ", ".join(p for p in str(x or "").split(",") if p) or "-"


# ------------------------------------------------------------------------- contamination found
def _found_section(store: stores.Store, run_id: str, config: dict[str, Any]) -> str:
    """Documents flagged, items dirty per benchmark, the evidence runs, and the planted-truth metrics."""
    counts = config.get("counts") or {}
    flags_run = config.get("flags_run")
    parts = []
    if counts.get("documents") is not None:
        n_doc, n_flag = counts.get("documents") or 0, counts.get("flagged_documents") or 0
        parts.append(f"<p>The verdict (filter run <code>{esc(flags_run)}</code>) flagged <b>{count(n_flag)}</b> of "
                     f"{count(n_doc)} training documents of <b>{esc(config.get('train'))}</b> "
                     f"({pct(n_flag / n_doc if n_doc else None)}).</p>")
    per_bench = _item_counts(store, config)
    rows = "".join(f"<tr><td>{esc(b)}</td><td class='num'>{count(n)}</td><td class='num'>{count(d)}</td>"
                   f"<td class='num'>{count(n - d)}</td><td class='num'>{pct(d / n if n else None)}</td></tr>"
                   for b, (n, d) in per_bench.items())
    parts.append("<h3>benchmark items found in the training set</h3><table><tr><th>benchmark</th><th>items</th>"
                 f"<th>dirty</th><th>clean</th><th>dirty share</th></tr>"
                 f"{rows or '<tr><td colspan=5>no items recorded</td></tr>'}</table>")
    if flags_run:
        parts.append(sql_block("SELECT benchmark, count(*) AS items, count(*) FILTER (WHERE dirty) AS dirty "
                               f"FROM contamination_items WHERE run_id = {_q(flags_run)} GROUP BY 1 ORDER BY 1"))
    parts.append(_evidence_table(store, config))
    if config.get("metrics"):
        parts.append(_metrics_table(config["metrics"], run_id))
    return "".join(parts)


def _item_counts(store: stores.Store, config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """benchmark -> (items, dirty), from the verdict's item table (else the run's recorded counts)."""
    df = None
    if config.get("flags_run"):
        df = store.sql("SELECT benchmark, count(*) AS n, count(*) FILTER (WHERE dirty) AS d FROM contamination_items "
                       "WHERE run_id = ? GROUP BY 1", [config["flags_run"]])
    if df is not None and df.height:
        found = {b: (int(n), int(d)) for b, n, d in df.iter_rows()}
    else:
        found = {b: (int(c.get("n", 0)), int(c.get("dirty", 0)))
                 for b, c in ((config.get("counts") or {}).get("items") or {}).items()}
    order = [b for b in config.get("benchmarks") or [] if b in found]
    return {b: found[b] for b in order + sorted(set(found) - set(order))}


def _evidence_table(store: stores.Store, config: dict[str, Any]) -> str:
    """One row per evidence run: method, run id, pairs scored, hits, items and documents hit, time."""
    evidence = {m: r for m, r in (config.get("evidence") or {}).items() if isinstance(r, str)}
    counts = (config.get("counts") or {}).get("evidence") or {}
    skipped = (config.get("counts") or {}).get("skipped_items") or {}
    stats: dict[str, dict[str, Any]] = {}
    if evidence:
        df = store.sql("SELECT run_id, count(*) AS pairs, count(*) FILTER (WHERE hit) AS hits, "
                       "count(DISTINCT benchmark || ':' || item_id) FILTER (WHERE hit) AS items, "
                       "count(DISTINCT sample_id) FILTER (WHERE hit) AS docs FROM contamination_matches "
                       "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [list(evidence.values())])
        stats = {r["run_id"]: r for r in df.iter_rows(named=True)}
    rows = []
    for method, rid in ordered(evidence, METHOD_ORDER):
        st, c = stats.get(rid, {}), counts.get(method) or {}
        secs = "reused" if c.get("reused") else (f"{c['seconds']:.1f} s" if not missing(c.get("seconds")) else "-")
        rows.append(f"<tr><td>{esc(label(method, METHOD_LABELS))}</td><td><div class='id'>{esc(rid)}</div></td>"
                    f"<td class='num'>{count(st.get('pairs', c.get('rows')))}</td>"
                    f"<td class='num'>{count(st.get('hits', c.get('hits')))}</td>"
                    f"<td class='num'>{count(st.get('items'))}</td><td class='num'>{count(st.get('docs'))}</td>"
                    f"<td class='num'>{count(skipped.get(method))}</td><td class='num'>{esc(secs)}</td></tr>")
    asked = ((config.get("settings") or {}).get("methods")) or []
    not_run = [m for m in asked if m not in evidence]
    note = (f"<p class='muted'>Asked for but no evidence run recorded (no benchmark it applies to): "
            f"{esc(', '.join(label(m, METHOD_LABELS) for m in not_run))}.</p>" if not_run else "")
    verdict = (config.get("settings") or {}).get("verdict_methods")
    rule = ("<p class='muted'>A document is flagged when any " + (f"of {esc(', '.join(verdict))}" if verdict else
            "method") + "'s row for it is a hit; pairs are the (item, document) candidates a method scored.</p>")
    out = ("<h3>evidence runs</h3>" + rule + "<table><tr><th>method</th><th>run</th><th>pairs</th><th>hits</th>"
           "<th>items hit</th><th>documents hit</th><th>items skipped</th><th>time</th></tr>"
           + ("".join(rows) or "<tr><td colspan=8>no evidence runs recorded</td></tr>") + "</table>" + note)
    if evidence:
        ids = ", ".join(_q(r) for r in evidence.values())
        out += sql_block(f"SELECT method, count(*) AS pairs, count(*) FILTER (WHERE hit) AS hits "
                         f"FROM contamination_matches WHERE run_id IN ({ids}) GROUP BY 1")
    return out


def _metrics_table(metrics: dict[str, Any], run_id: str) -> str:
    """Item recall per planted form per method, with document precision, recall, AUROC and hard negatives."""
    forms: dict[str, Any] = {}
    for res in metrics.values():
        for f, v in ((res or {}).get("forms") or {}).items():
            forms.setdefault(f, (v or {}).get("n_items"))
    names = sorted(forms)
    head = "".join(f"<th>{esc(label(f))}" + (f"<div class='muted'>{count(forms[f])} items</div>"
                                               if not missing(forms[f]) else "") + "</th>" for f in names)
    rows = []
    for method, res in sorted(ordered(metrics, METHOD_ORDER), key=lambda kv: kv[0] == "combined"):
        res = res or {}
        cells = "".join(f"<td class='num'>{pct(((res.get('forms') or {}).get(f) or {}).get('item_recall'))}</td>"
                        for f in names)
        rows.append(f"<tr><td>{esc(label(method, METHOD_LABELS))}</td>{cells}"
                    f"<td class='num'>{pct(res.get('doc_precision'))}</td><td class='num'>{pct(res.get('doc_recall'))}</td>"
                    f"<td class='num'>{num(res.get('doc_auroc'))}</td>"
                    f"<td class='num'>{count(res.get('hard_negatives_flagged'))}</td></tr>")
    return ("<h3>against the planted truth</h3><p class='muted'>Item recall per planted form: planted items of "
            "that form the method marks; document precision and recall of the documents it flags; AUROC of its "
            "per-document score; hard negatives: documents on an item's topic sharing only short phrases.</p>"
            f"<table><tr><th>method</th>{head}<th>doc precision</th><th>doc recall</th><th>doc AUROC</th>"
            f"<th>hard negatives flagged</th></tr>{''.join(rows)}</table>"
            + sql_block(f"SELECT config->'metrics' AS metrics FROM runs WHERE run_id = {_q(run_id)}"))


# ------------------------------------------------------------------------- dirty items
def _dirty_section(store: stores.Store, config: dict[str, Any], limit: int = MAX_DIRTY) -> str:
    """Up to ``limit`` dirty items, each beside the excerpt of its best document, both spans marked."""
    flags_run = config.get("flags_run")
    if not flags_run:
        return "<p>The run recorded no verdict run, so there are no items to show.</p>"
    items = store.sql("SELECT * FROM contamination_items WHERE run_id = ? AND dirty "
                      "ORDER BY benchmark, score DESC, item_name", [flags_run])
    if items.height == 0:
        return f"<p>No benchmark item was found in <b>{esc(config.get('train'))}</b>: every item is clean.</p>"
    shown = items.head(limit)
    best = _best_matches(store, config, shown)
    data = (config.get("settings") or {}).get("data") or {}
    item_texts, item_notes = _item_texts(store, shown, data.get("question_field"), data.get("answer_field"))
    doc_texts, doc_note = _doc_texts(store, config, [d for d in shown["example_document"].to_list() if d])
    more = f", the {limit} best shown (by benchmark, then score)" if items.height > limit else ""
    parts = [f"<p>{count(items.height)} dirty item(s){more}. Each: the item (question + answer) with the matched "
             "text marked, and the excerpt of the training document that matches it best with its copy marked.</p>"]
    parts += [f"<p class='muted'>{esc(n)}</p>" for n in [*item_notes, doc_note] if n]
    for r in shown.iter_rows(named=True):
        parts.append(_dirty_item(r, best.get((r["benchmark"], r["item_id"])),
                                 item_texts.get((r["benchmark"], r["item_id"])), doc_texts.get(r["example_document"])))
    ids = ", ".join(_q(r) for r in _evidence_runs(store, config)) or "''"
    parts.append(sql_block(f"SELECT benchmark, item_name, score, methods, forms, n_documents, example_document, "
                           f"example_span, reason FROM contamination_items WHERE run_id = {_q(flags_run)} AND dirty "
                           "ORDER BY benchmark, score DESC"))
    parts.append(sql_block(f"SELECT method, benchmark, item_id, sample_id, score, item_start, item_end, doc_start, "
                           f"doc_end, detail FROM contamination_matches WHERE run_id IN ({ids}) AND hit "
                           "ORDER BY score DESC"))
    return "".join(parts)


def _evidence_runs(store: stores.Store, config: dict[str, Any]) -> list[str]:
    """The evidence runs the verdict combined (its own record, else the pipeline's)."""
    recorded = _verdict_config(store, config).get("evidence")
    return [r for r in (recorded or (config.get("evidence") or {}).values()) if isinstance(r, str)]


def _best_matches(store: stores.Store, config: dict[str, Any], items: pl.DataFrame) -> dict[tuple[str, str], dict]:
    """(benchmark, item id) -> the hit row behind the item's example document and span, with the
    methods that hit that document (``methods_here``)."""
    runs = _evidence_runs(store, config)
    docs = [d for d in items["example_document"].to_list() if d]
    if not runs or not docs:
        return {}
    df = store.sql("SELECT * FROM contamination_matches WHERE run_id IN (SELECT unnest(?::VARCHAR[])) AND hit "
                   "AND item_id IN (SELECT unnest(?::VARCHAR[])) AND sample_id IN (SELECT unnest(?::VARCHAR[]))",
                   [runs, items["item_id"].to_list(), docs])
    rows: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in df.iter_rows(named=True):
        rows[(r["benchmark"], r["item_id"], r["sample_id"])].append(r)
    out = {}
    for it in items.iter_rows(named=True):
        found = rows.get((it["benchmark"], it["item_id"], it["example_document"]))
        if not found:
            continue
        span = str(it.get("example_span") or "")

        def rank(r: dict, span: str = span) -> tuple:
            return (f"{r['doc_start']}:{r['doc_end']}" == span, r["item_start"] is not None, r["score"] or 0.0)

        pick = dict(max(found, key=rank))
        pick["methods_here"] = sorted({r["method"] for r in found})
        out[(it["benchmark"], it["item_id"])] = pick
    return out


def _read_rows(store: stores.Store, dataset: str, ids: Iterable[str], columns: Sequence[str]) -> pl.DataFrame:
    """The rows of ``dataset`` with the given sample ids, only ``columns`` (read from its shards)."""
    files = store.dataset_files(dataset)
    if not files:
        return pl.DataFrame({c: [] for c in ["sample_id", *columns]}, schema={c: pl.String for c in ["sample_id", *columns]})
    return (pl.scan_parquet(files).filter(pl.col("sample_id").is_in(list(ids)))
            .select(["sample_id", *columns]).collect())


def _item_texts(store: stores.Store, items: pl.DataFrame, question_field: str | None,
                answer_field: str | None) -> tuple[dict[tuple[str, str], str], list[str]]:
    """(benchmark, item id) -> the item's text (question + newline + answer), and notes on benchmarks
    whose texts could not be read."""
    out: dict[tuple[str, str], str] = {}
    notes = []
    for bench in items["benchmark"].unique(maintain_order=True).to_list():
        ids = items.filter(pl.col("benchmark") == bench)["item_id"].to_list()
        try:
            q, a = benchmark_fields(store, bench, question_field, answer_field)
            df = _read_rows(store, bench, ids, [q] + ([a] if a else []))
        except stores.UnknownDatasetError:
            notes.append(f"The benchmark {bench} is no longer in the store: its items are shown by name only.")
            continue
        except ContaminationInputError as exc:
            notes.append(f"The items of benchmark {bench} cannot be shown: {exc}")
            continue
        for r in df.iter_rows(named=True):
            out[(bench, r["sample_id"])] = BenchmarkItem(bench, r["sample_id"], r[q] or "",
                                                         (r[a] or "") if a else "").text
    return out, notes


def _doc_texts(store: stores.Store, config: dict[str, Any], ids: list[str]) -> tuple[dict[str, str], str]:
    """sample id -> the training document's text (its text fields joined as the verdict joined them),
    and a note when the training set cannot be read."""
    train = config.get("train")
    if not train or not ids:
        return {}, ""
    verdict = _verdict_config(store, config).get("settings") or {}
    given = verdict.get("text_fields") or ((config.get("settings") or {}).get("data") or {}).get("text_fields")
    try:
        fields = list(given) if given else train_fields(store, train)
        df = _read_rows(store, train, ids, fields)
    except stores.UnknownDatasetError:
        return {}, f"The training set {train} is no longer in the store: documents are shown by id and span only."
    except ContaminationInputError as exc:
        return {}, f"The documents of {train} cannot be shown: {exc}"
    return dict(zip(df["sample_id"].to_list(), document_text(df, fields), strict=True)), ""


def _dirty_item(item: dict, best: dict | None, item_text: str | None, doc_text: str | None) -> str:
    """One dirty item: its name, score, methods, forms and reason, then item and document side by side."""
    i0, i1 = (best["item_start"], best["item_end"]) if best else (None, None)
    d0, d1 = (best["doc_start"], best["doc_end"]) if best else _span(item.get("example_span"))
    left = (f"<div class='text'>{highlight(item_text, i0, i1, ITEM_CONTEXT)}</div>" if item_text is not None
            else "<span class='muted'>(item text not in the store)</span>")
    right = (f"<div class='text'>{highlight(doc_text, d0, d1, DOC_CONTEXT)}</div>" if doc_text is not None
             else "<span class='muted'>(document text not in the store)</span>")
    doc_id = item.get("example_document") or ""
    here = f"; in this document: {esc(', '.join(best['methods_here']))}" if best else ""
    no_span = "" if i0 is not None else " <span class='muted'>(no item span recorded)</span>"
    return (f"<h3>{esc(item['benchmark'])}: {esc(item['item_name'])} <span class='muted'>score "
            f"{num(item['score'])}</span></h3>"
            f"<p>methods: {esc(_names(item['methods']))}{here} &middot; forms: {esc(_names(item['forms']))} "
            f"&middot; found in {count(item['n_documents'])} document(s)</p>"
            "<table style='width:100%;table-layout:fixed'><tr>"
            f"<th>benchmark item" + (f" (chars {i0}:{i1})" if i0 is not None else "") + f"{no_span}</th>"
            f"<th>best document <span class='id'>{esc(doc_id)}</span>"
            + (f" (chars {d0}:{d1})" if d0 is not None else "") + "</th></tr>"
            f"<tr><td>{left}</td><td>{right}</td></tr></table>"
            f"<p class='muted'>{esc(item['reason'])}</p>")


def _span(text: Any) -> tuple[int | None, int | None]:
    """``"start:end"`` as two ints (None, None when absent or malformed)."""
    m = re.fullmatch(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*", str(text or ""))
    return (int(m[1]), int(m[2])) if m else (None, None)


# ------------------------------------------------------------------------- clean subsets
def _clean_section(store: stores.Store, config: dict[str, Any]) -> str:
    """Per benchmark, the clean items' own names to evaluate on (and the dirty ones), with their SQL."""
    flags_run = config.get("flags_run")
    df = store.sql("SELECT benchmark, item_name, dirty FROM contamination_items WHERE run_id = ?",
                   [flags_run]) if flags_run else None
    if df is None or df.height == 0:
        return "<p>No item table was recorded for this run, so there are no subsets to list.</p>"
    parts = ["<p>Evaluate on the clean items to measure the model on text it has not seen in training. "
             "The names are the benchmark's own ids (its <code>id</code>/<code>task_id</code> field, else the "
             "store's sample id), one per line.</p>"]
    benches = [b for b in config.get("benchmarks") or [] if b in set(df["benchmark"])]
    benches += sorted(set(df["benchmark"]) - set(benches))
    for bench in benches:
        sub = df.filter(pl.col("benchmark") == bench)
        clean = sorted(sub.filter(~pl.col("dirty"))["item_name"].to_list(), key=natural_key)
        dirty = sorted(sub.filter(pl.col("dirty"))["item_name"].to_list(), key=natural_key)
        parts.append(f"<h3>{esc(bench)}: {count(len(clean))} clean of {count(sub.height)} items</h3>")
        if clean:
            parts.append(f"<details><summary>the {count(len(clean))} clean item names</summary>"
                         f"<pre class='clean-items'>{esc(chr(10).join(clean))}</pre></details>")
        else:
            parts.append("<p>Every item of this benchmark was found in the training set: no clean subset.</p>")
        if dirty:
            parts.append(f"<details><summary>the {count(len(dirty))} dirty item names (to exclude)</summary>"
                         f"<pre class='dirty-items'>{esc(chr(10).join(dirty))}</pre></details>")
        parts.append(sql_block(f"SELECT item_name FROM contamination_items WHERE run_id = {_q(flags_run)} "
                               f"AND benchmark = {_q(bench)} AND NOT dirty"))
    return "".join(parts)


# ------------------------------------------------------------------------- curated outputs
def _curated_section(store: stores.Store, config: dict[str, Any]) -> str:
    """The decontaminated datasets (kept, dropped, edited), the first cut edits, and the audit SQL."""
    curated = {k: v for k, v in (config.get("curated") or {}).items() if isinstance(v, str)}
    if not curated:
        return ("<p>This run wrote no curated dataset (the config's <code>curate.drop</code> and "
                "<code>curate.cut</code> were off, or the documents have several text fields).</p>")
    df = store.sql("SELECT name, parent_dataset, n_kept, n_dropped, run_id FROM curated "
                   "WHERE name IN (SELECT unnest(?::VARCHAR[]))", [list(curated.values())])
    recs = {r["name"]: r for r in df.iter_rows(named=True)}
    edits = {}
    runs = [r["run_id"] for r in recs.values()]
    if runs:
        e = store.sql("SELECT run_id, count(*) AS n, count(DISTINCT sample_id) AS docs FROM curated_edits "
                      "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1", [runs])
        edits = {r["run_id"]: r for r in e.iter_rows(named=True)}
    rows, parts = [], []
    for mode, name in ordered(curated, list(CURATED_LABELS)):
        rec = recs.get(name)
        if rec is None:
            rows.append(f"<tr><td>{esc(label(mode, CURATED_LABELS))}</td><td>{esc(name)}</td>"
                        "<td colspan=3 class='muted'>since dropped from the store</td></tr>")
            continue
        ed = edits.get(rec["run_id"]) or {}
        edited = f"{count(ed.get('n', 0))} span(s) in {count(ed.get('docs', 0))} document(s)" if mode == "cut" else "-"
        rows.append(f"<tr><td>{esc(label(mode, CURATED_LABELS))}</td><td>{esc(name)}</td>"
                    f"<td class='num'>{count(rec['n_kept'])}</td><td class='num'>{count(rec['n_dropped'])}</td>"
                    f"<td>{esc(edited)}</td></tr>")
    parts.append(f"<p>Decontaminated copies of <b>{esc(config.get('train'))}</b>, ready to train on:</p>"
                 "<table><tr><th>mode</th><th>dataset</th><th>kept</th><th>dropped</th><th>edited</th></tr>"
                 f"{''.join(rows)}</table>")
    names = ", ".join(_q(n) for n in curated.values())
    parts.append(sql_block(f"SELECT name, parent_dataset, n_kept, n_dropped FROM curated WHERE name IN ({names})"))
    cut = curated.get("cut")
    if cut and cut in recs:
        parts.append(_edits_table(store, cut, recs[cut]["run_id"]))
    elif cut:
        parts.append(f"<p class='muted'>The cut dataset {esc(cut)} was dropped since, with its audit rows.</p>")
    for mode, name in ordered(curated, list(CURATED_LABELS)):
        if name not in recs:
            continue
        parts.append(sql_block(f"SELECT sample_id, reason FROM curated_drops WHERE curated = {_q(name)}"))
        if mode == "cut":
            parts.append(sql_block('SELECT sample_id, new_sample_id, field, start, \\"end\\", removed, reason '
                                   f"FROM curated_edits WHERE curated = {_q(name)} ORDER BY sample_id, start"))
    return "".join(parts)


def _edits_table(store: stores.Store, name: str, run_id: str, limit: int = MAX_EDITS) -> str:
    """The first ``limit`` spans the cut removed (the removed text shortened)."""
    df = store.sql('SELECT sample_id, new_sample_id, field, start, "end", removed, reason FROM curated_edits '
                   'WHERE run_id = ? ORDER BY sample_id, start LIMIT ?', [run_id, limit])
    if df.height == 0:
        return f"<p class='muted'>The cut dataset {esc(name)} removed no span (documents were kept or dropped whole).</p>"
    rows = "".join(f"<tr><td><div class='id'>{esc(r['sample_id'][:12])} &rarr; {esc((r['new_sample_id'] or '')[:12])}"
                   f"</div></td><td>{esc(r['field'])}</td><td class='num'>{r['start']}:{r['end']}</td>"
                   f"<td class='text'>{esc(shorten(r['removed']))}</td><td>{esc(shorten(r['reason'], 160))}</td></tr>"
                   for r in df.iter_rows(named=True))
    return (f"<h3>the first spans cut from {esc(name)}</h3><p class='muted'>An edited document gets a new sample id "
            "(its content changed); the audit keeps both.</p><table><tr><th>sample (old &rarr; new)</th><th>field</th>"
            f"<th>chars</th><th>removed</th><th>reason</th></tr>{rows}</table>")
