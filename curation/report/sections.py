"""Report sections for the kinds of run every pipeline writes: pairwise influence (top samples
per query with token highlighting), per-sample scores, and a filter's flags (with their traces,
reasons and counts per reason category). Each returns the HTML body of one page section."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import stores

from .html import EVIDENCE_LABELS, esc, label, ordered, pct, sql_block, token_html, trace_cell
from .plots import histogram_svg

#: x-axis words for the self-score methods (``self_scores.method``) the pipelines write
METHOD_AXES = {
    "loss": "completion loss (nats)",
    "self_ekfac": "self-influence (EK-FAC)",
    "self_influence": "self-influence",
    "random": "random score (uniform baseline)",
    "grad_norm": "gradient norm",
}


def sample_texts(store: stores.Store, ids: Sequence[str]) -> dict[str, str]:
    """Each sample's text by id: prompt + completion, else ``text``, else its columns as JSON."""
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


def attribute_section(store: stores.Store, run_id: str, top_k: int, max_queries: int) -> str:
    """A pairwise run: its score histogram, and per behaviour the ``top_k`` most positive and
    negative training samples of up to ``max_queries`` queries (token-highlighted where a
    token-scores run has them)."""
    parts = []
    scores = store.sql("SELECT score FROM scores WHERE run_id = ?", [run_id])["score"].to_numpy()
    parts.append(histogram_svg(scores, "pairwise influence scores", "influence of a training sample on a query"))
    parts.append(sql_block(f"SELECT score FROM scores WHERE run_id = '{run_id}'"))
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
        about = f" <span class='muted'>({esc(desc['description'][0])})</span>" if desc.height and desc["description"][0] else ""
        parts.append(f"<h3>behaviour {esc(behaviour)}{about}</h3>")
        q = f"""SELECT query_id, sample_id, score, row_number() OVER (PARTITION BY query_id ORDER BY score DESC) AS pos,
                       row_number() OVER (PARTITION BY query_id ORDER BY score ASC) AS neg
                FROM scores WHERE run_id = '{run_id}' AND behaviour = '{behaviour}'
                QUALIFY pos <= {top_k} OR neg <= {top_k}"""
        top = store.sql(q)
        qids = sorted(set(top["query_id"]))[:max_queries]
        texts = sample_texts(store, sorted(set(top["sample_id"]) | set(qids)))
        for qid in qids:
            rows = top.filter(query_id=qid)
            parts.append(f"<h4>query <span class='id'>{esc(qid[:12])}</span></h4>"
                         f"<div class='text'>{esc(texts.get(qid, ''))}</div>")
            tables = []
            for lab, col, desc_order in (("most positive (helped)", "pos", True), ("most negative (hurt)", "neg", False)):
                sel = rows.filter(rows[col] <= top_k).sort("score", descending=desc_order)
                body = []
                for r in sel.iter_rows(named=True):
                    t = tok.get((qid, r["sample_id"]))
                    shown = token_html(*t) if t else esc(texts.get(r["sample_id"], ""))
                    body.append(f"<tr><td class='num'>{r['score']:.4g}</td><td><div class='text'>{shown}</div>"
                                f"<div class='id'>{esc(r['sample_id'][:12])}</div></td></tr>")
                tables.append(f"<div><p>{lab}</p><table><tr><th>score</th><th>training sample</th></tr>"
                              f"{''.join(body)}</table></div>")
            parts.append(f"<div class='plots'>{''.join(tables)}</div>")
        parts.append(sql_block(" ".join(q.split())))
    return "".join(parts)


def self_plots(store: stores.Store, run_id: str, title: str | None = None) -> list[str]:
    """One histogram per method of a ``self_scores`` run (titled ``title``, else by the method)."""
    df = store.sql("SELECT method, score FROM self_scores WHERE run_id = ?", [run_id])
    plots = []
    for method in sorted(set(df["method"])):
        axis = METHOD_AXES.get(method, method.replace("_", " "))
        plots.append(histogram_svg(df.filter(method=method)["score"].to_numpy(), title or axis, axis))
    return plots


def self_sql(run_id: str) -> str:
    """The SQL box listing a ``self_scores`` run's highest scores."""
    return sql_block(f"SELECT * FROM self_scores WHERE run_id = '{run_id}' ORDER BY score DESC LIMIT 20")


def self_section(store: stores.Store, run_id: str) -> str:
    """A ``self_scores`` run: its histograms and SQL."""
    return f"<div class='plots'>{''.join(self_plots(store, run_id))}</div>" + self_sql(run_id)


def reason_category_sql(column: str = "reason") -> str:
    """SQL for :func:`filters.noisy_cot.reason_category` of a flagged sample's reason."""
    from filters.noisy_cot import REASON_CATEGORIES

    whens = " ".join(f"WHEN starts_with({column}, '{p}') THEN '{c}'" for p, c in REASON_CATEGORIES)
    return (f"CASE {whens} ELSE coalesce(nullif(replace(rtrim(split_part({column}, ' ', 1), ';,:'), '_', ' '), ''), "
            "'other') END")


def flags_section(store: stores.Store, run_id: str, top: int = 10) -> str:
    """A flags run: how many were flagged and how they were scored, the score histogram with the
    flagged in red, the ``top`` highest-scored traces with reasons, and counts per reason category."""
    from filters.noisy_cot import reason_category

    df = store.sql("SELECT score, flagged, reason, sample_id FROM flags WHERE run_id = ? ORDER BY score DESC", [run_id])
    n_flagged = int(df["flagged"].sum()) if df.height else 0
    run_config = store.get_run(run_id).get("config") or {}
    settings = run_config.get("settings") or {}
    given = [e.get("name") for e in run_config.get("evidence") or [] if isinstance(e, dict)]
    weights = {k: v for k, v in (settings.get("weights") or {}).items() if k in given}
    how = ""
    if weights:
        said = ", ".join(f"{label(k)} {v:g}" for k, v in ordered(weights, list(EVIDENCE_LABELS)))
        how = (f"<p>Score: {esc(settings.get('combine', 'combined evidence'))}, weights {esc(said)}"
               + (" (weight 0: named in the reasons, not scored)" if 0 in weights.values() else "") + ".</p>")
    axis = ("filter score: weighted mean of rank percentiles (1 = most suspicious)"
            if str(settings.get("combine", "")).startswith("weighted mean of rank") else "filter score (larger = more suspicious)")
    head = df.head(top)
    texts = sample_texts(store, head["sample_id"].to_list())
    rows = "".join(
        f"<tr><td class='num'>{r['score']:.4g}</td><td>{'flagged' if r['flagged'] else 'kept'}</td>"
        f"<td>{trace_cell(texts.get(r['sample_id']), r['sample_id'])}</td>"
        f"<td class='nowrap'>{esc(reason_category(r['reason']) if r['flagged'] else 'kept')}</td><td>{esc(r['reason'])}</td></tr>"
        for r in head.iter_rows(named=True))
    counts = Counter(reason_category(r) for r in df.filter(flagged=True)["reason"])
    by_category = "".join(f"<tr><td>{esc(c)}</td><td class='num'>{n:,}</td><td class='num'>{n / n_flagged:.1%}</td></tr>"
                          for c, n in counts.most_common())
    category_sql = (f"SELECT {reason_category_sql()} AS category, count(*) AS n FROM flags "
                    f"WHERE run_id = '{run_id}' AND flagged GROUP BY 1 ORDER BY n DESC")
    return (f"<p>{n_flagged:,} of {df.height:,} samples flagged ({pct(n_flagged / df.height if df.height else None)}).</p>"
            + how
            + histogram_svg(df["score"].to_numpy(), "filter scores", axis, highlight=df["flagged"].to_numpy(),
                            highlight_label="flagged")
            + f"<p>highest scores (click a trace for its whole text)</p><table><tr><th>score</th><th>verdict</th>"
            f"<th>trace</th><th>category</th><th>reason</th></tr>{rows}</table>"
            + sql_block(f"SELECT flagged, count(*) FROM flags WHERE run_id = '{run_id}' GROUP BY 1")
            + "<p>flagged counts by reason (category: the evidence the reason leads with)</p>"
            "<table><tr><th>category</th><th>flagged</th><th>share of flagged</th></tr>"
            f"{by_category or '<tr><td>none flagged</td><td class=num>0</td><td></td></tr>'}</table>"
            + sql_block(category_sql))
