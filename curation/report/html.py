"""The page machinery every report uses: CSS, escaping, number formatting, SQL boxes, trace
cells, token highlighting, words for internal names, and :func:`render_page` with the
in-browser self-check (:data:`SELF_CHECK`)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

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

#: Words for evidence and run names (filters' evidence, a pipeline's runs) wherever a page shows them;
#: a pipeline's own words (models, kinds of planted problems) live with its report sections.
EVIDENCE_LABELS = {
    "random": "random",
    "loss": "completion loss",
    "self_influence": "self-influence",
    "query_push": "push on failing answers",
    "combined": "noisy_cot filter (combined)",
    "token_scores": "per-token scores",
    "flags": "filter flags",
}


def esc(x: Any) -> str:
    """``x`` as text, escaped for HTML (``<``, ``&``, quotes)."""
    return html.escape(str(x))


def label(name: str, labels: dict[str, str] = EVIDENCE_LABELS) -> str:
    """The words for an internal name (``query_push`` -> ``push on failing answers``)."""
    return labels.get(name, str(name).replace("_", " "))


def ordered(d: dict[str, Any], order: Sequence[str]) -> list[tuple[str, Any]]:
    """``d``'s items with the keys in ``order`` first, in that order (the store's JSON sorts keys)."""
    return sorted(d.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def missing(x: Any) -> bool:
    """Whether a figure is absent: None or NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: Any, digits: int = 1) -> str:
    """A fraction as a percentage with ``digits`` decimals ("-" when missing)."""
    return "-" if missing(x) else f"{x:.{digits}%}"


def num(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals ("-" when missing)."""
    return "-" if missing(x) else f"{x:.{digits}f}"


def count(x: Any) -> str:
    """A whole number with thousands separators ("-" when missing)."""
    return "-" if missing(x) else f"{int(x):,}"


def sql_block(query: str) -> str:
    """A box with the ``curation sql`` command that reproduces a table or plot."""
    return f'<pre class="sql">curation sql "{esc(query)}"</pre>'


def token_html(tokens: list[str], scores: list[float]) -> str:
    """Tokens coloured by score: green helps the query, red hurts it; the hover shows the value."""
    scale = max((abs(s) for s in scores), default=0.0) or 1.0
    out = []
    for t, s in zip(tokens, scores, strict=True):
        a = min(abs(s) / scale, 1.0)
        color = f"rgba(0,160,0,{a:.2f})" if s > 0 else f"rgba(220,0,0,{a:.2f})"
        out.append(f'<span class="tok" style="background:{color}" title="{s:.4g}">{esc(t)}</span>')
    return "".join(out)


def trace_cell(text: str | None, sample_id: str, limit: int = 60) -> str:
    """A sample's text in a table cell: one truncated line that expands (``<details>``) to the
    whole text, with the sample id small underneath."""
    sid = f"<div class='id' title='{esc(sample_id)}'>{esc(sample_id[:12])}</div>"
    if not text:
        return f"<span class='muted'>(text not in the store)</span>{sid}"
    one = " ↵ ".join(line for line in text.splitlines() if line.strip()) or text
    short = one if len(one) <= limit else one[: limit - 1].rstrip() + "…"
    return f"<details><summary class='text'>{esc(short)}</summary><div class='text'>{esc(text)}</div></details>{sid}"


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
    body = "\n".join(f'<section id="{esc(sid)}"><h2>{esc(heading)}</h2>{content}</section>'
                     for sid, heading, content in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{head}{body}<script>{SELF_CHECK}</script></body></html>")
