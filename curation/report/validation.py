"""The report section of a ``validation`` run: "How much to trust these scores".

Renders what :func:`curation.steps.validation.validate` recorded in the run's config: the plan
(subsets x seeds, the budget and why), one row per strategy x damping (LDS with its confidence
interval, the top-k removal effect, the sign agreement, scoring seconds), the chosen setting, a
verdict for it in words, and how to read LDS.
"""

from __future__ import annotations

from typing import Any

import stores

from .html import esc, missing, num, pct, sql_block


def trust_verdict(lds: float | None, ci_low: float | None, ci_high: float | None) -> str:
    """A plain sentence on how far a setting's scores can be trusted, from its LDS and 95% CI."""
    if missing(lds):
        return ("No LDS was measured (the budget fitted only the top-k removal check): treat the scores as a "
                "ranking hint and check the samples you act on.")
    if not missing(ci_high) and ci_high <= 0:
        return "The scores do not predict retraining better than chance here: do not act on them."
    if missing(ci_low) or ci_low <= 0:
        return ("The interval includes 0: no evidence that the scores predict retraining on this task. Use them "
                "only with other evidence.")
    if ci_low < 0.2:
        return ("The scores predict retraining a little better than chance: they are useful in aggregate (many "
                "samples, many queries) but individual scores are noisy.")
    return ("The scores predict retraining clearly (comparable to or better than published EK-FAC results, "
            "0.2-0.45 on small models): rankings of the top samples are meaningful.")


def validation_section(store: stores.Store, run_id: str) -> str:
    """The section body for validation run ``run_id``: plan, per-setting table, choice, verdict, how to read it."""
    cfg: dict[str, Any] = store.get_run(run_id).get("config") or {}
    plan = cfg.get("plan") or {}
    results = cfg.get("results") or []
    chosen = cfg.get("chosen") or {}
    topk = cfg.get("topk") or {}
    if plan.get("subsets"):
        how = (f"{plan['subsets']} random subsets of {plan.get('alpha', 0.5):g} of the {cfg.get('n_train', 0):,} "
               f"training samples, each retrained with {plan.get('seeds', 1)} seed(s) and the model's own recipe; "
               f"{cfg.get('n_queries', 0):,} queries")
    else:
        how = "no subsets (the budget fitted only the top-k removal check)"
    reason = plan.get("reason")
    plan_html = (f"<p>Retrainings: {esc(how)}. Recipe: <code>{esc(cfg.get('trainer'))}</code>."
                 + (f" Plan: {esc(reason)}." if reason and reason != "given" else "")
                 + f" {cfg.get('retrains', {}).get('total', 0):,} retrainings, "
                 f"{cfg.get('seconds', 0.0):.1f} s in all.</p>")
    rows = []
    def is_the_choice(r: dict) -> bool:
        return (r.get("strategy") == chosen.get("strategy") and r.get("damping") == chosen.get("damping")
                and r.get("ensemble", 1) == chosen.get("ensemble", 1))

    for r in results:
        is_chosen = is_the_choice(r)
        ci = f"[{num(r.get('ci_low'))}, {num(r.get('ci_high'))}]" if not missing(r.get("lds")) else "-"
        effect = "-" if missing(r.get("topk_effect")) else f"{r['topk_effect']:+.4f}"
        models = r.get("ensemble", 1)
        cells = [esc(r.get("strategy")) + (f" x {models} models" if models > 1 else ""),
                 "-" if r.get("strategy") == "identity" else esc(r.get("damping")),
                 num(r.get("lds")), ci, effect, pct(r.get("sign_agreement"), 0), f"{r.get('seconds', 0.0):.2f}"]
        style = " style='font-weight:bold;background:#eefbe9'" if is_chosen else ""
        rows.append(f"<tr{style}>" + "".join(f"<td class='{'num' if i >= 2 else ''}'>{c}</td>"
                                            for i, c in enumerate(cells)) + "</tr>")
    table = ("<table><tr><th>strategy</th><th>damping</th><th>LDS</th><th>95% CI</th><th>top-k effect</th>"
             f"<th>sign agreement</th><th>scoring s</th></tr>{''.join(rows)}</table>")
    best = next((r for r in results if is_the_choice(r)), {})
    by = ("the highest LDS (settings within 0.01 count as tied; ties go to the cheaper)"
          if cfg.get("selected_by") == "lds" else "the largest top-k removal effect (no LDS fitted the budget)")
    ens = chosen.get("ensemble", 1)
    averaged = f", averaged over {ens} models" if ens > 1 else ""
    choice = (f"<p><b>Chosen: {esc(chosen.get('strategy'))}, damping {esc(chosen.get('damping'))}{averaged}</b>, "
              f"by {esc(by)}. "
              f"{esc(trust_verdict(best.get('lds'), best.get('ci_low'), best.get('ci_high')))}</p>")
    k = (f" k = {topk['k']} samples per checked query ({len(topk.get('queries') or [])} queries; their union is "
         f"removed in one retraining, against {plan.get('random_removals', 0)} random removals of "
         f"{topk.get('random_removal_size')} samples with the same seed)." if topk else "")
    reading = (
        "<p><b>How to read LDS.</b> For each random subset of the training data, a setting predicts the query's loss "
        "after retraining on it (minus the sum of the subset's scores), and the model is actually retrained and the "
        "loss measured. LDS is the rank correlation between the two across subsets, averaged over queries: 1 means "
        "the scores order the retrained models exactly, 0 means no better than chance. Published values are modest "
        "even for good methods (EK-FAC 0.2-0.45 on small models; gradient dot products about 0.1), so compare "
        f"settings with each other and look at the interval ({esc(cfg.get('ci', 'bootstrap over queries'))}; it "
        "does not include the noise of the particular subsets drawn).</p>"
        "<p><b>Top-k effect</b>: the extra loss of the checked queries when their top-k samples are removed, "
        "over removing as many random samples; positive means the samples ranked first really matter. "
        f"<b>Sign agreement</b>: the share of checked queries whose loss moved the way the scores predicted.{esc(k)}</p>"
        "<p>Sign convention: a positive score means training on the sample made the behaviour more likely "
        "(lowered the query's loss).</p>")
    return (plan_html + table + choice + reading
            + sql_block(f"SELECT config->'results' AS results, config->'chosen' AS chosen FROM runs "
                        f"WHERE run_id = '{run_id}'"))
