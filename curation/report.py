"""Attribution reports: one self-contained HTML file per run (no network needed to open it).

First slice of the reports capability: the run's config and versions; for pairwise runs, each
behaviour's most positive and most negative training samples per query with their text, score
and (when the run or a token-scores run has them) per-token highlighting; score histograms for
pairwise, self-score and filter runs; flagged counts; the pipeline's accuracy and detection
tables with ROC curves against the planted truth; and the SQL that reproduces each table. Plots
are inline SVG.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

import stores

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
vertical-align:top;font-size:.9em}th{background:#f4f4f4}pre{background:#f7f7f7;padding:.6em;
overflow-x:auto;font-size:.85em}.sql{background:#eef5ff}.tok{white-space:pre}.text{white-space:pre-wrap;
font-family:monospace;font-size:.85em}.muted{color:#777}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _sql_block(query: str) -> str:
    return f'<pre class="sql">curation sql "{_e(query)}"</pre>'


def histogram_svg(values: np.ndarray, title: str, bins: int = 40, width: int = 520, height: int = 160) -> str:
    """An inline SVG histogram of ``values`` (finite ones)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return f"<p class='muted'>{_e(title)}: no values</p>"
    counts, edges = np.histogram(v, bins=bins)
    top = max(int(counts.max()), 1)
    bw = (width - 40) / bins
    bars = "".join(
        f'<rect x="{30 + i * bw:.1f}" y="{height - 25 - (c / top) * (height - 45):.1f}" width="{max(bw - 1, 1):.1f}" '
        f'height="{(c / top) * (height - 45):.1f}" fill="#4a7ab5"><title>{edges[i]:.4g} to {edges[i + 1]:.4g}: {c}</title></rect>'
        for i, c in enumerate(counts)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
        f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="12">{_e(title)} (n={v.size:,})</text>{bars}'
        f'<text x="30" y="{height - 8}" font-size="10">{edges[0]:.3g}</text>'
        f'<text x="{width - 10}" y="{height - 8}" font-size="10" text-anchor="end">{edges[-1]:.3g}</text></svg>'
    )


def _token_html(tokens: list[str], scores: list[float]) -> str:
    """Tokens coloured by score: green helps the query, red hurts it; the hover shows the value."""
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    out = []
    for t, s in zip(tokens, scores, strict=True):
        a = min(abs(s) / scale, 1.0)
        color = f"rgba(0,160,0,{a:.2f})" if s > 0 else f"rgba(220,0,0,{a:.2f})"
        out.append(f'<span class="tok" style="background:{color}" title="{s:.4g}">{_e(t)}</span>')
    return "".join(out)


def _sample_texts(store: stores.Store, ids: list[str]) -> dict[str, str]:
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


def _attribute_section(store: stores.Store, run_id: str, top_k: int, max_queries: int) -> str:
    parts = []
    scores = store.sql("SELECT score FROM scores WHERE run_id = ?", [run_id])["score"].to_numpy()
    parts.append(histogram_svg(scores, "pairwise influence scores"))
    parts.append(_sql_block(f"SELECT score FROM scores WHERE run_id = '{run_id}'"))
    tokens = store.sql("""SELECT query_id, sample_id, list(token ORDER BY position) AS toks,
                                 list(score ORDER BY position) AS s
                          FROM score_parts WHERE position IS NOT NULL AND behaviour IN
                               (SELECT DISTINCT behaviour FROM scores WHERE run_id = ?) GROUP BY ALL""", [run_id])
    tok = {(r["query_id"], r["sample_id"]): (r["toks"], r["s"]) for r in tokens.iter_rows(named=True)}
    for behaviour in store.sql("SELECT DISTINCT behaviour FROM scores WHERE run_id = ? ORDER BY 1", [run_id])["behaviour"]:
        parts.append(f"<h3>behaviour {_e(behaviour)}</h3>")
        q = f"""SELECT query_id, sample_id, score, row_number() OVER (PARTITION BY query_id ORDER BY score DESC) AS pos,
                       row_number() OVER (PARTITION BY query_id ORDER BY score ASC) AS neg
                FROM scores WHERE run_id = '{run_id}' AND behaviour = '{behaviour}'
                QUALIFY pos <= {top_k} OR neg <= {top_k}"""
        top = store.sql(q)
        qids = sorted(set(top["query_id"]))[:max_queries]
        texts = _sample_texts(store, sorted(set(top["sample_id"]) | set(qids)))
        for qid in qids:
            rows = top.filter(query_id=qid)
            parts.append(f"<h4>query <code>{_e(qid[:12])}</code></h4><div class='text'>{_e(texts.get(qid, ''))}</div>")
            for label, col, desc in (("most positive (helped)", "pos", True), ("most negative (hurt)", "neg", False)):
                sel = rows.filter(rows[col] <= top_k).sort("score", descending=desc)
                body = []
                for r in sel.iter_rows(named=True):
                    t = tok.get((qid, r["sample_id"]))
                    shown = _token_html(*t) if t else _e(texts.get(r["sample_id"], ""))
                    body.append(f"<tr><td>{r['score']:.4g}</td><td><code>{_e(r['sample_id'][:12])}</code></td>"
                                f"<td class='text'>{shown}</td></tr>")
                parts.append(f"<p>{label}</p><table><tr><th>score</th><th>sample</th><th>text</th></tr>{''.join(body)}</table>")
        parts.append(_sql_block(" ".join(q.split())))
    return "".join(parts)


def _self_section(store: stores.Store, run_id: str) -> str:
    df = store.sql("SELECT method, score FROM self_scores WHERE run_id = ?", [run_id])
    parts = []
    for method in sorted(set(df["method"])):
        parts.append(histogram_svg(df.filter(method=method)["score"].to_numpy(), f"self scores: {method}"))
    parts.append(_sql_block(f"SELECT * FROM self_scores WHERE run_id = '{run_id}' ORDER BY score DESC LIMIT 20"))
    return "".join(parts)


def _flags_section(store: stores.Store, run_id: str) -> str:
    df = store.sql("SELECT score, flagged, reason, sample_id FROM flags WHERE run_id = ? ORDER BY score DESC", [run_id])
    n_flagged = int(df["flagged"].sum()) if df.height else 0
    rows = "".join(f"<tr><td>{r['score']:.4g}</td><td><code>{_e(r['sample_id'][:12])}</code></td><td>{_e(r['reason'])}</td></tr>"
                   for r in df.head(10).iter_rows(named=True))
    by_reason_sql = (f"SELECT reason, count(*) AS n FROM flags WHERE run_id = '{run_id}' AND flagged "
                     "GROUP BY 1 ORDER BY n DESC LIMIT 10")
    by_reason = store.sql(by_reason_sql)
    reasons = "".join(f"<tr><td>{r['n']:,}</td><td>{_e(r['reason'])}</td></tr>" for r in by_reason.iter_rows(named=True))
    return (f"<p>{n_flagged:,} of {df.height:,} samples flagged.</p>" + histogram_svg(df["score"].to_numpy(), "filter scores")
            + f"<p>highest scores</p><table><tr><th>score</th><th>sample</th><th>reason</th></tr>{rows}</table>"
            + _sql_block(f"SELECT flagged, count(*) FROM flags WHERE run_id = '{run_id}' GROUP BY 1")
            + f"<p>flagged counts by reason (most common 10)</p><table><tr><th>flagged</th><th>reason</th></tr>"
            f"{reasons or '<tr><td>0</td><td>none flagged</td></tr>'}</table>" + _sql_block(by_reason_sql))


def roc_svg(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str, size: int = 260) -> str:
    """An inline SVG of ROC curves: name -> (false positive rates, true positive rates, AUROC)."""
    colors = ["#4a7ab5", "#d1495b", "#66a182", "#edae49", "#8d6a9f", "#333333"]
    pad = 30
    inner = size - 2 * pad
    lines, legend = [], []
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        pts = " ".join(f"{pad + x * inner:.1f},{size - pad - y * inner:.1f}" for x, y in zip(fpr, tpr, strict=True))
        c = colors[i % len(colors)]
        lines.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
        legend.append(f'<text x="{size + 5}" y="{pad + 14 * i}" font-size="11" fill="{c}">{_e(name)} ({auc:.3f})</text>')
    axes = (f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#ccc" stroke-dasharray="3"/>'
            f'<text x="{size / 2}" y="{size - 8}" font-size="10" text-anchor="middle">false positive rate</text>'
            f'<text x="{pad}" y="{pad - 8}" font-size="11">{_e(title)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 230}" height="{size}" role="img" '
            f'aria-label="{_e(title)}">{axes}{"".join(lines)}{"".join(legend)}</svg>')


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
            curves[name] = (fpr[::step], tpr[::step], auc)
        out.append(roc_svg(curves, f"ROC: {kind}-noise traces vs unaffected ones"))
    return "<h3>ROC curves (planted truth)</h3>" + "".join(out) if out else ""


def _pipeline_evidence(store: stores.Store, config: dict[str, Any]) -> str:
    """Histograms of each per-sample evidence and of the filter's scores, with flagged counts."""
    runs = config.get("runs") or {}
    parts = []
    for name in ("loss", "self_influence", "random"):
        if name in runs:
            parts.append(f"<h4>{_e(name)}</h4>" + _self_section(store, runs[name]))
    if "flags" in runs:
        parts.append("<h4>filter</h4>" + _flags_section(store, runs["flags"]))
    return "<h3>evidence and filter scores</h3>" + "".join(parts) if parts else ""


def _pipeline_section(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> str:
    parts = [_pipeline_rocs(store, run, config), _pipeline_evidence(store, config)]
    if config.get("accuracy"):
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{v:.1%}</td></tr>" for k, v in config["accuracy"].items())
        parts.append(f"<h3>test accuracy</h3><table><tr><th>model trained on</th><th>accuracy</th></tr>{rows}</table>")
    if len(config.get("budgets") or []) > 1:
        rows = "".join(f"<tr><td>{b['budget']:.0%}{' (chosen)' if b['budget'] == config.get('budget') else ''}</td>"
                       f"<td>{b['dev_acc']:.1%}</td><td>{b['test_acc']:.1%}</td></tr>" for b in config["budgets"])
        parts.append("<h3>flag budget chosen on dev accuracy</h3><table><tr><th>budget</th><th>dev accuracy "
                     f"(chooses)</th><th>test accuracy (reported only)</th></tr>{rows}</table>")
    for kind, methods in (config.get("detection") or {}).items():
        rows = "".join(f"<tr><td>{_e(m)}</td><td>{v['auroc']:.3f}</td><td>{v['precision_at_budget']:.3f}</td>"
                       f"<td>{v['recall_at_budget']:.3f}</td></tr>" for m, v in methods.items())
        budget = config.get("budget")
        at = f" (flags runs at budget {budget:.0%})" if isinstance(budget, float | int) else ""
        parts.append(f"<h3>detecting {_e(kind)} noise{_e(at)}</h3><table><tr><th>evidence</th><th>AUROC</th>"
                     f"<th>precision</th><th>recall</th></tr>{rows}</table>")
    if config.get("recovery"):
        parts.append(f"<p>recovery: {_e(json.dumps(config['recovery']))}</p>")
    run_id = run["run_id"]
    parts.append(_sql_block(f"SELECT config->'accuracy' AS accuracy, config->'recovery' AS recovery, "
                            f"config->'detection' AS detection FROM runs WHERE run_id = '{run_id}'"))
    return "".join(parts)


def latest_run(store: stores.Store) -> str:
    """The newest finished run (what ``curation report`` shows without a run id)."""
    df = store.sql("SELECT run_id FROM runs WHERE status = 'finished' ORDER BY created_at DESC LIMIT 1")
    if df.height == 0:
        raise stores.StoreError(f"store {store.root} has no finished runs to report on")
    return df["run_id"][0]


def build_report(store: stores.Store, run_id: str | None = None, top_k: int = 3, max_queries: int = 5) -> str:
    """The HTML of one run's report (see the module docstring)."""
    run_id = run_id or latest_run(store)
    run = store.get_run(run_id)
    config = run.get("config") or {}
    head = (f"<h1>curation report: run <code>{_e(run_id)}</code></h1>"
            f"<p>kind <b>{_e(run['kind'])}</b>, status {_e(run['status'])}, dataset {_e(run.get('dataset'))}, "
            f"seed {_e(run.get('seed'))}, created {_e(run.get('created_at'))}</p>")
    sections = [("config", "config and versions",
                 f"<p>versions: {_e(', '.join(f'{k} {v}' for k, v in (run.get('versions') or {}).items()))}</p>"
                 f"<details><summary>the run's config (JSON)</summary>"
                 f"<pre>{_e(json.dumps(config, indent=2, default=str))}</pre></details>")]
    tables = set(store.sql("SELECT DISTINCT table_name FROM shards WHERE run_id = ?", [run_id])["table_name"])
    if "scores" in tables:
        sections.append(("influence", "influence: top samples per query",
                         _attribute_section(store, run_id, top_k, max_queries)))
    if "self_scores" in tables:
        sections.append(("self-scores", "per-sample scores", _self_section(store, run_id)))
    if "flags" in tables:
        sections.append(("flags", "flags", _flags_section(store, run_id)))
    if run["kind"] == "pipeline":
        sections.append(("pipeline", "pipeline results", _pipeline_section(store, run, config)))
    return render_page(f"curation report {run_id}", head, sections)


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
