"""Inline SVG plots with labelled, ticked axes: histograms (a log axis where positive values span
decades and bunch at the low end) and ROC curves, and the tick helpers behind them."""

from __future__ import annotations

import math

import numpy as np

from .html import esc, num


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
        return f"<p class='muted'>{esc(title)}: no values</p>"
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
                    f'fill="#4a7ab5"><title>{esc(tip)}</title></rect>')
        if m:
            bars.append(f'<rect x="{x:.1f}" y="{ys(c):.1f}" width="{max(bw - 1, 1):.1f}" height="{ys(c - m) - ys(c):.1f}" '
                        f'fill="#d1495b"><title>{esc(tip)}</title></rect>')
    x_ticks = [math.log10(x) for x in log_ticks(10**lo, 10**hi)] if log else linear_ticks(lo, hi, 5)
    axis = [f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#555"/>',
            f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#555"/>']
    for x in x_ticks:
        px = xs(x)
        axis.append(f'<line x1="{px:.1f}" y1="{mt + ph}" x2="{px:.1f}" y2="{mt + ph + 4}" stroke="#555"/>'
                    f'<text class="tick" x="{px:.1f}" y="{mt + ph + 16}" font-size="10" text-anchor="middle">{esc(edge(x))}</text>')
    for y in y_ticks:
        py = ys(y)
        axis.append(f'<line x1="{ml - 4}" y1="{py:.1f}" x2="{ml}" y2="{py:.1f}" stroke="#555"/>'
                    f'<text class="tick" x="{ml - 7}" y="{py + 3.5:.1f}" font-size="10" text-anchor="end">{int(y):,}</text>')
    n_marked = int(mask.sum())
    sub = f"n={v.size:,}"
    if highlight is not None:
        sub += f"; {n_marked:,} {highlight_label} in red" if n_marked else f"; none {highlight_label}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{esc(title)}" '
        f'font-family="system-ui,sans-serif">'
        f'<text class="title" x="{width / 2}" y="17" text-anchor="middle" font-size="13">{esc(title)} ({esc(sub)})</text>'
        f'{"".join(bars)}{"".join(axis)}'
        f'<text class="xlabel" x="{ml + pw / 2}" y="{height - 8}" text-anchor="middle" font-size="11">{esc(x_label)}</text>'
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
                 f'<text class="title" x="{ml}" y="18" font-size="13">{esc(title)}</text>')
    lx = ml + side + 16
    parts.append(f'<text x="{lx}" y="{mt + 8}" font-size="11" fill="#555">evidence (AUROC)</text>')
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        c = colors[i % len(colors)]
        pts = " ".join(pt(x, y) for x, y in zip(fpr, tpr, strict=True))
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{pts}"><title>{esc(name)}</title></polyline>')
        ly = mt + 26 + 17 * i
        parts.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 16}" y2="{ly - 4}" stroke="{c}" stroke-width="2.5"/>'
                     f'<text x="{lx + 22}" y="{ly}" font-size="11">{esc(name)} ({num(auc)})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(title)}" font-family="system-ui,sans-serif">{"".join(parts)}</svg>')
