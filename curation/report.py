"""Attribution reports: one self-contained HTML file per run (no network needed to open it).

First slice of the reports capability: the run's config and versions; for pairwise runs, each
behaviour's most positive and most negative training samples per query with their text, score
and (when the run or a token-scores run has them) per-token highlighting; score histograms for
pairwise, self-score and filter runs; flags with their trace text, reasons and a count per
reason category; the pipeline's accuracy and detection tables with ROC curves against the
planted truth, and a pointer to its attribution run's page; and the SQL that reproduces each
table. Plots are inline SVG with labelled, ticked axes (a log axis where positive values span
decades and bunch at the low end).

:func:`build_report` renders one run; :func:`write_report` writes a run's page and, for a
pipeline run, its attribution runs' pages beside it, linked relatively.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import stores

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
vertical-align:top;font-size:.9em}th{background:#f4f4f4;text-align:left}td.num{text-align:right;white-space:nowrap}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em;max-width:100%;box-sizing:border-box}
pre.sql{background:#eef5ff;white-space:pre-wrap;overflow-wrap:anywhere}
.tok{white-space:pre}.text{white-space:pre-wrap;font-family:monospace;font-size:.85em}
.muted{color:#777}.nowrap{white-space:nowrap}.id{font-family:monospace;font-size:.72em;color:#888}
details>summary{cursor:pointer}summary.text{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:34em}
.plots{display:flex;flex-wrap:wrap;gap:.5em 1.5em;align-items:flex-start}
.plots figure{margin:0}.plots figcaption{font-size:.8em;color:#555;max-width:540px}
.cmd{font-family:monospace;font-size:.85em;background:#eef5ff;padding:.1em .3em;overflow-wrap:anywhere}
"""

# Words for the pipeline's internal names (evidence, models, noise kinds) wherever the page shows them.
EVIDENCE_LABELS = {
    "random": "random",
    "loss": "completion loss",
    "self_influence": "self-influence",
    "query_push": "push on failing answers",
    "combined": "noisy_cot filter (combined)",
    "token_scores": "per-token scores",
    "flags": "filter flags",
}
MODEL_LABELS = {"noisy": "noisy traces", "curated": "curated (flagged dropped)", "clean_only": "clean traces only"}
KIND_LABELS = {"dynamic": "dynamic-noise traces", "static": "static-noise traces", "overall": "all noisy traces"}
# x-axis words for the self-score methods the pipeline writes
METHOD_AXES = {
    "loss": "completion loss (nats)",
    "self_ekfac": "self-influence (EK-FAC)",
    "self_influence": "self-influence",
    "random": "random score (uniform baseline)",
    "grad_norm": "gradient norm",
}


def _e(x: Any) -> str:
    return html.escape(str(x))


def label(name: str, labels: dict[str, str] = EVIDENCE_LABELS) -> str:
    """The words for an internal name (``query_push`` -> ``push on failing answers``)."""
    return labels.get(name, str(name).replace("_", " "))


def _ordered(d: dict[str, Any], order: Sequence[str]) -> list[tuple[str, Any]]:
    """``d``'s items with the keys in ``order`` first, in that order (the store's JSON sorts keys)."""
    return sorted(d.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals ("-" when missing)."""
    return "-" if _missing(x) else f"{x:.{digits}%}"


def _num(x: Any, digits: int = 3) -> str:
    return "-" if _missing(x) else f"{x:.{digits}f}"


def _count(x: Any) -> str:
    return "-" if _missing(x) else f"{int(x):,}"


def _sql_block(query: str) -> str:
    return f'<pre class="sql">curation sql "{_e(query)}"</pre>'


# ---------------------------------------------------------------------------------------- plots
def _fmt_tick(v: float, sci_from: float = 1e4) -> str:
    """A tick label: plain (``2,500``, ``0.25``) from 0.001 to ``sci_from``, else ``2×10⁴``."""
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < sci_from:
        return f"{v:,.6g}" if a >= 1 else f"{v:.3g}"
    exp = int(math.floor(math.log10(a) + 1e-9))
    mant = a / 10**exp
    sup = str(exp).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return ("-" if v < 0 else "") + (f"10{sup}" if abs(mant - 1) < 1e-9 else f"{mant:.2g}×10{sup}")


def linear_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over [lo, hi] (positive): the powers of ten, with 2 and 5
    times them when the range holds fewer than three powers of ten."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks = [10.0**d for d in decades if lo * (1 - 1e-9) <= 10.0**d <= hi * (1 + 1e-9)]
    if len(ticks) < 3:
        ticks = sorted(m * 10.0**d for d in decades for m in (1, 2, 5) if lo <= m * 10.0**d <= hi)
    return ticks


def use_log_scale(values: np.ndarray) -> bool:
    """Whether a histogram of ``values`` reads better on a log axis.

    Yes when the positive values span more than a factor 100 (max / min > 100), at least 95% of
    the finite values are positive (a log axis cannot show the others), and they bunch at the
    low end of a linear axis (median in the lowest tenth of the range): a heavy right tail, as
    self-influence has. A uniform spread that merely starts near 0 stays linear.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    pos = v[v > 0]
    if pos.size < 2 or pos.size < 0.95 * v.size:
        return False
    lo, hi = float(pos.min()), float(pos.max())
    return hi / lo > 100 and float(np.median(pos)) < lo + 0.1 * (hi - lo)


def histogram_svg(values: np.ndarray, title: str, x_label: str = "value", *, highlight: np.ndarray | None = None,
                  highlight_label: str = "", bins: int = 40, width: int = 520, height: int = 230) -> str:
    """An inline SVG histogram of the finite ``values`` with ticked, labelled axes.

    The x axis is logarithmic when :func:`use_log_scale` says so; values <= 0 are then left
    out and the axis label says how many. On a linear axis, when the middle 99% of at least 200
    values fill less than a quarter of the range (a few huge outliers), the plot shows
    that middle 99% and the axis label says how many values lie beyond. ``highlight`` (a
    boolean mask over ``values``) stacks those samples in red on top of the others (e.g. the
    flagged ones).
    """
    v = np.asarray(values, dtype=np.float64)
    mask = np.zeros(v.shape, dtype=bool) if highlight is None else np.asarray(highlight, dtype=bool)
    ok = np.isfinite(v)
    v, mask = v[ok], mask[ok]
    if v.size == 0:
        return f"<p class='muted'>{_e(title)}: no values</p>"
    log = use_log_scale(v)
    if log:
        n_hidden = int((v <= 0).sum())
        mask = mask[v > 0]
        v = v[v > 0]
        x_label += " (log scale" + (f"; {n_hidden:,} values ≤ 0 not shown)" if n_hidden else ")")
    elif v.size >= 200:
        a, b = np.quantile(v, [0.005, 0.995])
        if b > a and b - a < 0.25 * (v.max() - v.min()):
            inside = (v >= a) & (v <= b)
            x_label += f" (middle 99%; {int((~inside).sum()):,} values beyond not shown)"
            v, mask = v[inside], mask[inside]
    t = np.log10(v) if log else v
    lo, hi = float(t.min()), float(t.max())
    if hi <= lo:  # all equal: a unit-wide range around the value
        pad_ = 0.5 if log or lo == 0 else abs(lo) * 0.1
        lo, hi = lo - pad_, hi + pad_
    edges = np.linspace(lo, hi, bins + 1)
    counts = np.histogram(t, bins=edges)[0]
    marked = np.histogram(t[mask], bins=edges)[0]
    y_ticks = [y for y in linear_ticks(0, max(int(counts.max()), 1), 4) if float(y).is_integer()]
    top = max(max(y_ticks), int(counts.max()), 1)
    ml, mr, mt, mb = max(44, 26 + 6 * len(f"{int(max(y_ticks)):,}")), 18, 30, 48  # room for the y tick labels
    pw, ph = width - ml - mr, height - mt - mb

    def xs(x: float) -> float:
        return ml + (x - lo) / (hi - lo) * pw

    def ys(c: float) -> float:
        return mt + ph - c / top * ph

    def edge(x: float) -> str:
        return _fmt_tick(10**x) if log else _fmt_tick(x, sci_from=1e6)

    bw = pw / bins
    bars = []
    for i, (c, m) in enumerate(zip(counts, marked, strict=True)):
        if not c:
            continue
        tip = f"{edge(edges[i])} to {edge(edges[i + 1])}: {c:,}" + (f" ({m:,} {highlight_label})" if m else "")
        x = ml + i * bw
        bars.append(f'<rect x="{x:.1f}" y="{ys(c - m):.1f}" width="{max(bw - 1, 1):.1f}" height="{ph - (ys(c - m) - mt):.1f}" '
                    f'fill="#4a7ab5"><title>{_e(tip)}</title></rect>')
        if m:
            bars.append(f'<rect x="{x:.1f}" y="{ys(c):.1f}" width="{max(bw - 1, 1):.1f}" height="{ys(c - m) - ys(c):.1f}" '
                        f'fill="#d1495b"><title>{_e(tip)}</title></rect>')
    x_ticks = [math.log10(x) for x in log_ticks(10**lo, 10**hi)] if log else linear_ticks(lo, hi, 5)
    axis = [f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#555"/>',
            f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#555"/>']
    for x in x_ticks:
        px = xs(x)
        axis.append(f'<line x1="{px:.1f}" y1="{mt + ph}" x2="{px:.1f}" y2="{mt + ph + 4}" stroke="#555"/>'
                    f'<text class="tick" x="{px:.1f}" y="{mt + ph + 16}" font-size="10" text-anchor="middle">{_e(edge(x))}</text>')
    for y in y_ticks:
        py = ys(y)
        axis.append(f'<line x1="{ml - 4}" y1="{py:.1f}" x2="{ml}" y2="{py:.1f}" stroke="#555"/>'
                    f'<text class="tick" x="{ml - 7}" y="{py + 3.5:.1f}" font-size="10" text-anchor="end">{int(y):,}</text>')
    n_marked = int(mask.sum())
    sub = f"n={v.size:,}"
    if highlight is not None:
        sub += f"; {n_marked:,} {highlight_label} in red" if n_marked else f"; none {highlight_label}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}" '
        f'font-family="system-ui,sans-serif">'
        f'<text class="title" x="{width / 2}" y="17" text-anchor="middle" font-size="13">{_e(title)} ({_e(sub)})</text>'
        f'{"".join(bars)}{"".join(axis)}'
        f'<text class="xlabel" x="{ml + pw / 2}" y="{height - 8}" text-anchor="middle" font-size="11">{_e(x_label)}</text>'
        f'<text class="ylabel" transform="translate(14,{mt + ph / 2}) rotate(-90)" text-anchor="middle" '
        f'font-size="11">number of samples</text></svg>'
    )


def roc_svg(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str, side: int = 210) -> str:
    """An inline SVG of ROC curves: name -> (false positive rates, true positive rates, AUROC).

    The title sits on its own line above the frame, the axes have ticks at 0, 0.2, ... 1 and
    labels, and the legend (name and AUROC) is to the right of the frame.
    """
    colors = ["#4a7ab5", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#333333"]
    ml, mt, mb, legend_w = 52, 34, 44, 226
    width, height = ml + side + 16 + legend_w, mt + side + mb
    x0, y0 = ml, mt + side  # the origin, bottom left

    def pt(x: float, y: float) -> str:
        return f"{x0 + x * side:.1f},{y0 - y * side:.1f}"

    parts = [f'<rect class="frame" x="{ml}" y="{mt}" width="{side}" height="{side}" fill="none" stroke="#555"/>',
             f'<line x1="{x0}" y1="{y0}" x2="{x0 + side}" y2="{mt}" stroke="#bbb" stroke-dasharray="3"><title>chance</title></line>']
    for k in range(6):
        f = k / 5
        tick = "0" if k == 0 else ("1" if k == 5 else f"{f:.1f}")
        px, py = x0 + f * side, y0 - f * side
        if 0 < k < 5:
            parts.append(f'<line x1="{px:.1f}" y1="{mt}" x2="{px:.1f}" y2="{y0}" stroke="#eee"/>'
                         f'<line x1="{x0}" y1="{py:.1f}" x2="{x0 + side}" y2="{py:.1f}" stroke="#eee"/>')
        parts.append(f'<line x1="{px:.1f}" y1="{y0}" x2="{px:.1f}" y2="{y0 + 4}" stroke="#555"/>'
                     f'<text class="tick" x="{px:.1f}" y="{y0 + 16}" font-size="10" text-anchor="middle">{tick}</text>'
                     f'<line x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" stroke="#555"/>'
                     f'<text class="tick" x="{x0 - 7}" y="{py + 3.5:.1f}" font-size="10" text-anchor="end">{tick}</text>')
    parts.append(f'<text class="xlabel" x="{x0 + side / 2}" y="{height - 8}" font-size="11" text-anchor="middle">'
                 'false positive rate</text>'
                 f'<text class="ylabel" transform="translate(14,{mt + side / 2}) rotate(-90)" font-size="11" '
                 'text-anchor="middle">true positive rate</text>'
                 f'<text class="title" x="{ml}" y="18" font-size="13">{_e(title)}</text>')
    lx = ml + side + 16
    parts.append(f'<text x="{lx}" y="{mt + 8}" font-size="11" fill="#555">evidence (AUROC)</text>')
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        c = colors[i % len(colors)]
        pts = " ".join(pt(x, y) for x, y in zip(fpr, tpr, strict=True))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{pts}"><title>{_e(name)}</title></polyline>')
        ly = mt + 26 + 17 * i
        parts.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 16}" y2="{ly - 4}" stroke="{c}" stroke-width="2.5"/>'
                     f'<text x="{lx + 22}" y="{ly}" font-size="11">{_e(name)} ({_num(auc)})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(title)}" font-family="system-ui,sans-serif">{"".join(parts)}</svg>')


# ------------------------------------------------------------------------------- sample texts
def _token_html(tokens: list[str], scores: list[float]) -> str:
    """Tokens coloured by score: green helps the query, red hurts it; the hover shows the value."""
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    out = []
    for t, s in zip(tokens, scores, strict=True):
        a = min(abs(s) / scale, 1.0)
        color = f"rgba(0,160,0,{a:.2f})" if s > 0 else f"rgba(220,0,0,{a:.2f})"
        out.append(f'<span class="tok" style="background:{color}" title="{s:.4g}">{_e(t)}</span>')
    return "".join(out)


def _sample_texts(store: stores.Store, ids: Sequence[str]) -> dict[str, str]:
    ids = list(ids)
    if not ids:
        return {}
    df = store.sql("SELECT * FROM samples WHERE sample_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    out = {}
    for row in df.iter_rows(named=True):
        if row.get("prompt") is not None or row.get("completion") is not None:
            out[row["sample_id"]] = f"{row.get('prompt') or ''}{row.get('completion') or ''}"
        elif row.get("text") is not None:
            out[row["sample_id"]] = row["text"]
        else:
            out[row["sample_id"]] = json.dumps({k: v for k, v in row.items() if k not in ("dataset", "ordinal")},
                                               default=str)
    return out


def trace_cell(text: str | None, sample_id: str, limit: int = 60) -> str:
    """A sample's text in a table cell: one truncated line that expands (``<details>``) to the
    whole text, with the sample id small underneath."""
    sid = f"<div class='id' title='{_e(sample_id)}'>{_e(sample_id[:12])}</div>"
    if not text:
        return f"<span class='muted'>(text not in the store)</span>{sid}"
    one = " ↵ ".join(line for line in text.splitlines() if line.strip()) or text
    short = one if len(one) <= limit else one[: limit - 1].rstrip() + "…"
    return f"<details><summary class='text'>{_e(short)}</summary><div class='text'>{_e(text)}</div></details>{sid}"


# ---------------------------------------------------------------------------- run sections
def _attribute_section(store: stores.Store, run_id: str, top_k: int, max_queries: int) -> str:
    parts = []
    scores = store.sql("SELECT score FROM scores WHERE run_id = ?", [run_id])["score"].to_numpy()
    parts.append(histogram_svg(scores, "pairwise influence scores", "influence of a training sample on a query"))
    parts.append(_sql_block(f"SELECT score FROM scores WHERE run_id = '{run_id}'"))
    tokens = store.sql("""SELECT query_id, sample_id, list(token ORDER BY position) AS toks,
                                 list(score ORDER BY position) AS s
                          FROM score_parts WHERE position IS NOT NULL AND behaviour IN
                               (SELECT DISTINCT behaviour FROM scores WHERE run_id = ?) GROUP BY ALL""", [run_id])
    tok = {(r["query_id"], r["sample_id"]): (r["toks"], r["s"]) for r in tokens.iter_rows(named=True)}
    if tok:
        parts.append("<p class='muted'>Token highlighting: green tokens made the query's completion more likely, "
                     "red ones less; hover a token for its score.</p>")
    for behaviour in store.sql("SELECT DISTINCT behaviour FROM scores WHERE run_id = ? ORDER BY 1", [run_id])["behaviour"]:
        desc = store.sql("SELECT description FROM behaviours WHERE name = ?", [behaviour])
        about = f" <span class='muted'>({_e(desc['description'][0])})</span>" if desc.height and desc["description"][0] else ""
        parts.append(f"<h3>behaviour {_e(behaviour)}{about}</h3>")
        q = f"""SELECT query_id, sample_id, score, row_number() OVER (PARTITION BY query_id ORDER BY score DESC) AS pos,
                       row_number() OVER (PARTITION BY query_id ORDER BY score ASC) AS neg
                FROM scores WHERE run_id = '{run_id}' AND behaviour = '{behaviour}'
                QUALIFY pos <= {top_k} OR neg <= {top_k}"""
        top = store.sql(q)
        qids = sorted(set(top["query_id"]))[:max_queries]
        texts = _sample_texts(store, sorted(set(top["sample_id"]) | set(qids)))
        for qid in qids:
            rows = top.filter(query_id=qid)
            parts.append(f"<h4>query <span class='id'>{_e(qid[:12])}</span></h4>"
                         f"<div class='text'>{_e(texts.get(qid, ''))}</div>")
            tables = []
            for lab, col, desc_order in (("most positive (helped)", "pos", True), ("most negative (hurt)", "neg", False)):
                sel = rows.filter(rows[col] <= top_k).sort("score", descending=desc_order)
                body = []
                for r in sel.iter_rows(named=True):
                    t = tok.get((qid, r["sample_id"]))
                    shown = _token_html(*t) if t else _e(texts.get(r["sample_id"], ""))
                    body.append(f"<tr><td class='num'>{r['score']:.4g}</td><td><div class='text'>{shown}</div>"
                                f"<div class='id'>{_e(r['sample_id'][:12])}</div></td></tr>")
                tables.append(f"<div><p>{lab}</p><table><tr><th>score</th><th>training sample</th></tr>"
                              f"{''.join(body)}</table></div>")
            parts.append(f"<div class='plots'>{''.join(tables)}</div>")
        parts.append(_sql_block(" ".join(q.split())))
    return "".join(parts)


def _self_plots(store: stores.Store, run_id: str, title: str | None = None) -> list[str]:
    df = store.sql("SELECT method, score FROM self_scores WHERE run_id = ?", [run_id])
    plots = []
    for method in sorted(set(df["method"])):
        axis = METHOD_AXES.get(method, method.replace("_", " "))
        plots.append(histogram_svg(df.filter(method=method)["score"].to_numpy(), title or axis, axis))
    return plots


def _self_sql(run_id: str) -> str:
    return _sql_block(f"SELECT * FROM self_scores WHERE run_id = '{run_id}' ORDER BY score DESC LIMIT 20")


def _self_section(store: stores.Store, run_id: str) -> str:
    return f"<div class='plots'>{''.join(_self_plots(store, run_id))}</div>" + _self_sql(run_id)


def reason_category_sql(column: str = "reason") -> str:
    """SQL for :func:`filters.noisy_cot.reason_category` of a flagged sample's reason."""
    from filters.noisy_cot import REASON_CATEGORIES

    whens = " ".join(f"WHEN starts_with({column}, '{p}') THEN '{c}'" for p, c in REASON_CATEGORIES)
    return (f"CASE {whens} ELSE coalesce(nullif(replace(rtrim(split_part({column}, ' ', 1), ';,:'), '_', ' '), ''), "
            "'other') END")


def _flags_section(store: stores.Store, run_id: str, top: int = 10) -> str:
    from filters.noisy_cot import reason_category

    df = store.sql("SELECT score, flagged, reason, sample_id FROM flags WHERE run_id = ? ORDER BY score DESC", [run_id])
    n_flagged = int(df["flagged"].sum()) if df.height else 0
    run_config = store.get_run(run_id).get("config") or {}
    settings = run_config.get("settings") or {}
    given = [e.get("name") for e in run_config.get("evidence") or [] if isinstance(e, dict)]
    weights = {k: v for k, v in (settings.get("weights") or {}).items() if k in given}
    how = ""
    if weights:
        said = ", ".join(f"{label(k)} {v:g}" for k, v in _ordered(weights, list(EVIDENCE_LABELS)))
        how = (f"<p>Score: {_e(settings.get('combine', 'combined evidence'))}, weights {_e(said)}"
               + (" (weight 0: named in the reasons, not scored)" if 0 in weights.values() else "") + ".</p>")
    axis = ("filter score: weighted mean of rank percentiles (1 = most suspicious)"
            if str(settings.get("combine", "")).startswith("weighted mean of rank") else "filter score (larger = more suspicious)")
    head = df.head(top)
    texts = _sample_texts(store, head["sample_id"].to_list())
    rows = "".join(
        f"<tr><td class='num'>{r['score']:.4g}</td><td>{'flagged' if r['flagged'] else 'kept'}</td>"
        f"<td>{trace_cell(texts.get(r['sample_id']), r['sample_id'])}</td>"
        f"<td class='nowrap'>{_e(reason_category(r['reason']) if r['flagged'] else 'kept')}</td><td>{_e(r['reason'])}</td></tr>"
        for r in head.iter_rows(named=True))
    counts = Counter(reason_category(r) for r in df.filter(flagged=True)["reason"])
    by_category = "".join(f"<tr><td>{_e(c)}</td><td class='num'>{n:,}</td><td class='num'>{n / n_flagged:.1%}</td></tr>"
                          for c, n in counts.most_common())
    category_sql = (f"SELECT {reason_category_sql()} AS category, count(*) AS n FROM flags "
                    f"WHERE run_id = '{run_id}' AND flagged GROUP BY 1 ORDER BY n DESC")
    return (f"<p>{n_flagged:,} of {df.height:,} samples flagged ({_pct(n_flagged / df.height if df.height else None)}).</p>"
            + how
            + histogram_svg(df["score"].to_numpy(), "filter scores", axis, highlight=df["flagged"].to_numpy(),
                            highlight_label="flagged")
            + f"<p>highest scores (click a trace for its whole text)</p><table><tr><th>score</th><th>verdict</th>"
            f"<th>trace</th><th>category</th><th>reason</th></tr>{rows}</table>"
            + _sql_block(f"SELECT flagged, count(*) FROM flags WHERE run_id = '{run_id}' GROUP BY 1")
            + "<p>flagged counts by reason (category: the evidence the reason leads with)</p>"
            "<table><tr><th>category</th><th>flagged</th><th>share of flagged</th></tr>"
            f"{by_category or '<tr><td>none flagged</td><td class=num>0</td><td></td></tr>'}</table>"
            + _sql_block(category_sql))


# ---------------------------------------------------------------------------------- pipeline
def _pipeline_rocs(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> str:
    """ROC curves of every evidence against the planted truth of the pipeline's training set."""
    from sklearn.metrics import roc_curve

    from filters.evidence import query_push_evidence, self_score_evidence

    runs = config.get("runs") or {}
    dataset = run.get("dataset")
    cols = set(store.sql("SELECT * FROM samples WHERE dataset = ? LIMIT 0", [dataset]).columns) if dataset else set()
    if not {"noise", "trace_changed"} <= cols:
        return ""
    truth = store.sql("SELECT sample_id, noise, trace_changed FROM samples WHERE dataset = ? ORDER BY ordinal", [dataset])
    ids = truth["sample_id"].to_list()
    scores: dict[str, np.ndarray] = {}
    for name in ("random", "loss", "self_influence"):
        if name in runs:
            scores[name] = self_score_evidence(store, runs[name]).aligned(ids)
    if "query_push" in runs:
        scores["query_push"] = query_push_evidence(store, runs["query_push"])[0].aligned(ids)
    if "flags" in runs:
        flags = store.read_flags(runs["flags"])
        where = dict(zip(flags["sample_id"].to_list(), flags["score"].to_list(), strict=True))
        scores["combined"] = np.array([where.get(s, np.nan) for s in ids])
    noise = truth["noise"].to_numpy()
    changed = truth["trace_changed"].to_numpy().astype(bool)
    out = []
    for kind in ("dynamic", "static"):
        positive = (noise == kind) & changed
        if not positive.any():
            continue
        keep = positive | (noise == "clean") | ~changed
        curves = {}
        for name, sc in scores.items():
            ok = keep & np.isfinite(sc)
            fpr, tpr, _ = roc_curve(positive[ok], sc[ok])
            step = max(1, len(fpr) // 200)  # at most ~200 points per curve
            auc = float(np.trapezoid(tpr, fpr))
            idx = np.unique(np.r_[np.arange(0, len(fpr), step), len(fpr) - 1])  # keep the (1, 1) end
            curves[label(name)] = (fpr[idx], tpr[idx], auc)
        out.append(roc_svg(curves, f"ROC: {kind}-noise traces vs unaffected ones"))
    if not out:
        return ""
    return ("<h3>ROC curves (planted truth)</h3><p class='muted'>Each evidence ranks the training traces; "
            "positives are the traces the noise changed, negatives the unaffected ones.</p>"
            f"<div class='plots'>{''.join(out)}</div>")


def _pipeline_evidence(store: stores.Store, config: dict[str, Any]) -> str:
    """Histograms of each per-sample evidence and of the filter's scores, with flagged counts."""
    runs = config.get("runs") or {}
    names = [n for n in ("loss", "self_influence", "random") if n in runs]
    parts = []
    if names:
        plots = [p for n in names for p in _self_plots(store, runs[n], label(n))]
        parts.append("<h3>per-trace evidence</h3><p class='muted'>larger = more suspicious</p>"
                     f"<div class='plots'>{''.join(plots)}</div>"
                     + "".join(_self_sql(runs[n]) for n in names))
    if "flags" in runs:
        parts.append("<h3>the filter's flags (the curated dataset drops these)</h3>" + _flags_section(store, runs["flags"]))
    return "".join(parts)


def _results_section(run: dict[str, Any], config: dict[str, Any]) -> str:
    """Test accuracy per training set, the gap curation recovered, and the budget choice, in words."""
    parts = []
    acc = config.get("accuracy") or {}
    if acc:
        rows = "".join(f"<tr><td>{_e(label(k, MODEL_LABELS))}</td><td class='num'>{_pct(v)}</td></tr>"
                       for k, v in _ordered(acc, list(MODEL_LABELS)))
        parts.append("<h3>test accuracy</h3><p class='muted'>greedy decoding on noise-free test problems</p>"
                     f"<table><tr><th>model trained on</th><th>accuracy</th></tr>{rows}</table>")
    rec = config.get("recovery") or {}
    if rec:
        gap = rec.get("gap_recovered")
        budget = f" at flag budget {_pct(rec['budget'], 0)}" if not _missing(rec.get("budget")) else ""
        if _missing(gap):
            said = ("Nothing to recover: the model trained on clean traces only was not more accurate than the one "
                    "trained on the noisy traces.")
        else:
            said = (f"Curation recovered <b>{_pct(gap)}</b> of the accuracy gap between training on the noisy traces "
                    f"({_pct(rec.get('noisy_acc'))}) and on clean traces only ({_pct(rec.get('clean_acc'))}): "
                    f"the model trained on the curated traces{budget} reached {_pct(rec.get('curated_acc'))}.")
        parts.append(f"<p>{said} <span class='muted'>(gap recovered = (curated - noisy) / (clean - noisy))</span></p>")
    budgets = config.get("budgets") or []
    if len(budgets) > 1:
        def mark(b: float) -> str:
            return (" (keep all)" if b == 0 else "") + (" <b>chosen</b>" if b == config.get("budget") else "")

        rows = "".join(f"<tr><td>{_pct(b['budget'], 0)}{mark(b['budget'])}</td><td class='num'>{_pct(b['dev_acc'])}</td>"
                       f"<td class='num'>{_pct(b['test_acc'])}</td></tr>" for b in budgets)
        parts.append("<h3>flag budget chosen on dev accuracy</h3><p class='muted'>the model retrained on the traces "
                     "left at each budget (share of the training set flagged)</p><table><tr><th>budget</th>"
                     f"<th>dev accuracy (chooses)</th><th>test accuracy (reported only)</th></tr>{rows}</table>")
    run_id = run["run_id"]
    parts.append(_sql_block(f"SELECT config->'accuracy' AS accuracy, config->'recovery' AS recovery, "
                            f"config->'budgets' AS budgets FROM runs WHERE run_id = '{run_id}'"))
    return "".join(parts)


def _detection_section(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> str:
    parts = []
    budget = config.get("budget")
    for kind, methods in _ordered(config.get("detection") or {}, list(KIND_LABELS)):
        rows = "".join(
            f"<tr><td>{_e(label(m))}</td><td class='num'>{_num(v.get('auroc'))}</td>"
            f"<td class='num'>{_pct(v.get('precision', v.get('precision_at_budget')))}</td>"
            f"<td class='num'>{_pct(v.get('recall', v.get('recall_at_budget')))}</td>"
            f"<td class='num'>{_count(v.get('hits'))}</td><td class='num'>{_count(v.get('n_flagged'))}</td></tr>"
            for m, v in _ordered(methods, list(EVIDENCE_LABELS)))
        n_pos = next((v["n_positive"] for v in methods.values() if "n_positive" in v), None)
        planted = f"{n_pos:,} planted" if n_pos is not None else ""
        at = f"flag budget {_pct(budget, 0)}" if isinstance(budget, float | int) else ""
        about = "; ".join(x for x in (planted, at) if x)
        parts.append(f"<h3>detecting {_e(label(kind, KIND_LABELS))}" + (f" ({_e(about)})" if about else "") + "</h3>"
                     "<table><tr><th>evidence (one flags run each)</th><th>AUROC</th><th>precision</th><th>recall</th>"
                     f"<th>noisy flagged</th><th>flagged</th></tr>{rows}</table>")
    if parts:
        parts.append(_sql_block(f"SELECT config->'detection' AS detection FROM runs WHERE run_id = '{run['run_id']}'"))
    parts.append(_pipeline_rocs(store, run, config))
    return "".join(parts)


def attribution_runs(store: stores.Store, config: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, run id) of a pipeline's runs that have pairwise influence scores (their own report pages)."""
    out = []
    for name, rid in (config.get("runs") or {}).items():
        if not isinstance(rid, str):
            continue
        has = store.sql("SELECT count(*) AS n FROM shards WHERE run_id = ? AND table_name = 'scores'", [rid])["n"][0]
        if has:
            out.append((name, rid))
    return out


def report_file_name(out_stem: str, run_id: str) -> str:
    """The file name of a run's page written beside a report named ``<out_stem>.html``."""
    return f"{out_stem}-{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id)}.html"


def _attribution_section(store: stores.Store, config: dict[str, Any], links: dict[str, str]) -> str:
    found = attribution_runs(store, config)
    if not found:
        return ""
    rows = []
    for name, rid in found:
        stats = store.sql("SELECT count(DISTINCT query_id) AS q, count(DISTINCT sample_id) AS s, "
                          "string_agg(DISTINCT behaviour, ', ') AS b FROM scores WHERE run_id = ?", [rid]).row(0, named=True)
        what = (f"influence of {stats['s']:,} training traces on {stats['q']:,} queries "
                f"(behaviour {stats['b']}): for each query, the traces that helped and hurt it most, with token highlighting")
        cmd = f"curation report {rid} --store {store.root} --out {report_file_name('report', rid)}"
        page = (f"<a href='{_e(links[rid])}'>open its report</a><br>" if rid in links else "") + \
            f"<span class='cmd'>{_e(cmd)}</span>"
        rows.append(f"<tr><td>{_e(label(name))}<div class='id'>{_e(rid)}</div></td><td>{_e(what)}</td><td>{page}</td></tr>")
    return ("<p>The attribution run's own page shows the queries (the model's wrong answers), the training traces "
            "that pushed each one most and least, and which tokens did it.</p>"
            f"<table><tr><th>run</th><th>what its report shows</th><th>report</th></tr>{''.join(rows)}</table>")


# ------------------------------------------------------------------------------------ pages
def latest_run(store: stores.Store) -> str:
    """The newest finished run (what ``curation report`` shows without a run id)."""
    df = store.sql("SELECT run_id FROM runs WHERE status = 'finished' ORDER BY created_at DESC LIMIT 1")
    if df.height == 0:
        raise stores.StoreError(f"store {store.root} has no finished runs to report on")
    return df["run_id"][0]


def build_report(store: stores.Store, run_id: str | None = None, top_k: int = 3, max_queries: int = 5,
                 links: dict[str, str] | None = None, up: tuple[str, str] | None = None) -> str:
    """The HTML of one run's report (see the module docstring).

    ``links`` maps run ids to relative hrefs of their pages (a pipeline report links its
    attribution runs' pages; without, it shows the command that writes them); ``up`` is an
    (href, text) link back to the page that links here.
    """
    run_id = run_id or latest_run(store)
    run = store.get_run(run_id)
    config = run.get("config") or {}
    back = f"<p><a href='{_e(up[0])}'>&larr; {_e(up[1])}</a></p>" if up else ""
    head = (f"{back}<h1>curation report: run <code>{_e(run_id)}</code></h1>"
            f"<p>kind <b>{_e(run['kind'])}</b>, status {_e(run['status'])}, dataset {_e(run.get('dataset'))}, "
            f"seed {_e(run.get('seed'))}, created {_e(run.get('created_at'))}</p>")
    sections = []
    tables = set(store.sql("SELECT DISTINCT table_name FROM shards WHERE run_id = ?", [run_id])["table_name"])
    if "scores" in tables:
        sections.append(("influence", "influence: top samples per query",
                         _attribute_section(store, run_id, top_k, max_queries)))
    if "self_scores" in tables:
        sections.append(("self-scores", "per-sample scores", _self_section(store, run_id)))
    if "flags" in tables:
        sections.append(("flags", "flags", _flags_section(store, run_id)))
    if run["kind"] == "pipeline":
        sections.append(("pipeline", "pipeline results", _results_section(run, config)))
        detection = _detection_section(store, run, config)
        if detection:
            sections.append(("detection", "detecting the planted noise", detection))
        evidence = _pipeline_evidence(store, config)
        if evidence:
            sections.append(("evidence", "evidence and filter scores", evidence))
        attribution = _attribution_section(store, config, links or {})
        if attribution:
            sections.append(("attribution", "Attribution runs", attribution))
    sections.append(("config", "config and versions",
                     f"<p>versions: {_e(', '.join(f'{k} {v}' for k, v in (run.get('versions') or {}).items()))}</p>"
                     f"<details><summary>the run's config (JSON)</summary>"
                     f"<pre>{_e(json.dumps(config, indent=2, default=str))}</pre></details>"))
    return render_page(f"curation report {run_id}", head, sections)


def write_report(store: stores.Store, out_file: Path | str, run_id: str | None = None, top_k: int = 3) -> list[Path]:
    """Write a run's report to ``out_file``; for a pipeline run, also each attribution run's page
    beside it (``<stem>-<run id>.html``, linked relatively both ways). Returns the files written,
    the main page first."""
    from stores.atomic import atomic_path

    out_file = Path(out_file)
    run_id = run_id or latest_run(store)
    run = store.get_run(run_id)
    pages: list[tuple[Path, str]] = []
    links: dict[str, str] = {}
    if run["kind"] == "pipeline":
        for _, rid in attribution_runs(store, run.get("config") or {}):
            name = report_file_name(out_file.stem, rid)
            links[rid] = name
            pages.append((out_file.with_name(name),
                          build_report(store, rid, top_k=top_k, up=(out_file.name, f"pipeline report {run_id}"))))
    pages.insert(0, (out_file, build_report(store, run_id, top_k=top_k, links=links)))
    for path, text in pages:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return [p for p, _ in pages]


# Runs in the browser: a section without content, or an SVG that renders with no size, is logged
# as a console error, which the headless-browser check (curation.report_check) fails on.
SELF_CHECK = """
document.querySelectorAll('section').forEach(function (s) {
  var body = Array.from(s.children).filter(function (c) { return c.tagName !== 'H2'; });
  if (!body.length || !s.textContent.replace(s.querySelector('h2').textContent, '').trim() && !s.querySelector('svg'))
    console.error('empty section: ' + s.id);
});
document.querySelectorAll('svg').forEach(function (g) {
  var r = g.getBoundingClientRect();
  if (!r.width || !r.height) console.error('svg without size: ' + (g.getAttribute('aria-label') || '?'));
});
"""


def render_page(title: str, head: str, sections: list[tuple[str, str, str]]) -> str:
    """The page: a header, then one ``<section id=...>`` per (id, heading, html body), and the self-check."""
    body = "\n".join(f'<section id="{_e(sid)}"><h2>{_e(heading)}</h2>{content}</section>'
                     for sid, heading, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>{head}{body}<script>{SELF_CHECK}</script></body></html>")
