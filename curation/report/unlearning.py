"""The report section of an ``unlearn`` run: the original, unlearned and retrained models side by side."""

from __future__ import annotations

import stores

from .html import esc, sql_block

_MODELS = ("original", "unlearned", "retrained")


def unlearn_section(store: stores.Store, run_id: str) -> str:
    """Method and settings, the forget set's size, and each split's metrics per model (with the gap to retraining)."""
    config = store.get_run(run_id).get("config") or {}
    method = config.get("method") or {}
    df = store.sql("SELECT model, split, metric, value FROM unlearn_metrics WHERE run_id = ?", [run_id])
    values = {(r["model"], r["split"], r["metric"]): r["value"] for r in df.iter_rows(named=True)}
    models = [m for m in _MODELS if any(k[0] == m for k in values)]
    cells = sorted({(k[1], k[2]) for k in values if k[2] != "seconds"},
                   key=lambda c: (["forget", "retain", "test"].index(c[0]) if c[0] in ("forget", "retain", "test") else 9, c[1]))
    retrained = "retrained" in models
    head = "".join(f"<th>{esc(m)}</th>" for m in models) + ("<th>unlearned - retrained</th>" if retrained else "")
    rows = []
    for split, metric in cells:
        row = "".join(f"<td class='num'>{_fmt(values.get((m, split, metric)))}</td>" for m in models)
        if retrained:
            a, b = values.get(("unlearned", split, metric)), values.get(("retrained", split, metric))
            row += f"<td class='num'>{_fmt(a - b if a is not None and b is not None else None, signed=True)}</td>"
        rows.append(f"<tr><td>{esc(split)}</td><td>{esc(metric)}</td>{row}</tr>")
    seconds = ", ".join(f"{m} {values[(m, 'all', 'seconds')]:.2f} s" for m in models if (m, "all", "seconds") in values)
    settings = ", ".join(f"{k}={v}" for k, v in (method.get("settings") or {}).items())
    note = ("" if retrained else "<p>No retrained model was measured (pass <code>--compare-retrain</code>): "
            "the gold standard is what these numbers should be judged against.</p>")
    return (f"<p>Method <b>{esc(method.get('method'))}</b> ({esc(settings) or 'no settings'}) unlearned "
            f"{config.get('n_forget', 0):,} of {config.get('n_train', 0):,} training samples "
            f"(from <code>{esc(config.get('forget_source'))}</code>); time: {esc(seconds)}. "
            f"Model written to <code>{esc(config.get('out'))}</code>.</p>" + note
            + "<p>Forget: the unlearned samples (a good unlearning makes the model treat them as the retrained "
            "model does); retain: the rest of the training set (it should not change); test: held-out data.</p>"
            + f"<table><tr><th>split</th><th>metric</th>{head}</tr>{''.join(rows)}</table>"
            + sql_block(f"SELECT model, split, metric, value FROM unlearn_metrics WHERE run_id = '{run_id}' ORDER BY ALL")
            + sql_block(f"SELECT sample_id FROM unlearn_samples WHERE run_id = '{run_id}'"))


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.4f}" if signed else f"{x:.4f}"
