"""The LDS benchmark's selection stage, on the held-out selection seed (helpers of ``bench/lds.py``).

On ``--select-seed`` (another data split or draw, model initialisation, subsets and retraining
seeds than the reported run), for one dataset:

1. *Training length*: for each length of the dataset's grid, train the model, score it with EK-FAC
   (the engine's damping heuristic) and measure its LDS on one draw of ``select_subsets`` halves x
   ``select_seeds`` retraining seeds (the same draw for every length). The report uses the length
   with the highest EK-FAC LDS (ties: the shorter).
2. *auto*: :func:`curation.steps.validation.validate`, the toolkit's validation, on the selection
   model at the chosen length with a fixed plan (that draw, no top-k removal check) over the grid
   ``--auto-strategies`` x ``--auto-dampings`` (default identity, diagonal, kfac, ekfac, ekfac_cg x
   heuristic, x0.1, x10). Its retrainings are the draw's, already in the store's cache, so
   validation trains nothing; it scores every setting and picks one with its own rule
   (:func:`~curation.steps.validation_settings.select_setting`: the highest LDS, settings within
   0.01 tied and going to the cheaper). The report scores ``auto`` with that setting.
3. *TRAK's projection dimension*: at the chosen length, the ``--trak-models`` ensemble (the
   selection model plus others with other seeds) for each dimension of the grid; the report uses
   the best (ties: the smaller).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _lds_data import load, recipe, task_for, train_full
from _lds_methods import Clock, batch_size, engine_scores, sample_ids, trak_scores
from _lds_retrain import Draw, derived_seed, draw_results, model_results, start_draws, start_models


def select(kind: str, grid: list[int], lr: float | None, opts: dict[str, Any], pool) -> dict:
    """Run the selection stage of dataset ``kind`` (module doc); returns what the JSON keeps under
    ``selection.<kind>``, with ``chosen_epochs``, ``auto`` and ``chosen_trak_proj_dim``.

    ``opts``: ``select_seed``, ``select_subsets``, ``select_seeds``, ``trak_models``, ``proj_grid``
    (None: keep ``trak_proj_dim``), ``auto_strategies``, ``auto_dampings``.
    """
    import stores
    from attribution.data import Samples
    from attribution.lds import linear_datamodeling_score
    from curation.steps.validation import ValidationPlan, validate

    seed = opts["select_seed"]
    split = load(kind, seed)
    draw = Draw(seed, opts["select_subsets"], opts["select_seeds"], split.n_train)
    masks = draw.masks
    clock = Clock()
    out: dict[str, Any] = {"seed": seed, "subsets": draw.subsets, "seeds": draw.seeds, "grid": sorted(grid),
                           "rule": "highest EK-FAC LDS (damping heuristic) on the selection seed; ties go to the "
                                   "shorter training", "epochs": {}}
    kept: dict[int, tuple[Any, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="lds-select-") as tmp:
        root = str(Path(tmp) / "store")
        store = stores.open(root)
        # every length's retrainings go to the workers first; this process trains and scores meanwhile
        pending = {epochs: start_draws(root, kind, seed, epochs, lr, [draw], pool) for epochs in sorted(grid)}
        for epochs in sorted(grid):
            with clock.part(f"epochs_{epochs}_train_and_score"):
                model = train_full(kind, split, seed, epochs, lr)
                ekfac = engine_scores(kind, model, split, "ekfac", seed)
            with clock.part(f"epochs_{epochs}_retraining_wait") as extra:
                (measured,), extra["cpu"] = draw_results(pending[epochs], [draw])
            out["epochs"][str(epochs)] = {"ekfac": linear_datamodeling_score(ekfac, masks, measured)}
            kept[epochs] = (model, measured)
            print(f"  selection {kind}: length {epochs}, EK-FAC LDS {out['epochs'][str(epochs)]['ekfac']:.3f}", flush=True)
        best = max(v["ekfac"] for v in out["epochs"].values())
        chosen = min(e for e in grid if out["epochs"][str(e)]["ekfac"] == best)
        out["chosen_epochs"] = chosen
        model, measured = kept[chosen]

        extra_models = (start_models(kind, seed, [derived_seed(seed, 3, k) for k in range(1, opts["trak_models"])],
                                     chosen, lr, pool) if opts["proj_grid"] else None)  # trained during validation
        with clock.part("auto_validation"):
            ids, qids = sample_ids(kind, split)
            net = copy.deepcopy(model)
            plan = ValidationPlan(draw.subsets, draw.seeds, 0.5, seed, topk_queries=0,
                                  reason="fixed by bench/lds.py: the selection draw, no top-k removal check")
            res = validate(store, net, task_for(kind, net), Samples(split.train, ids), Samples(split.queries, qids),
                           recipe=recipe(kind, chosen, split, lr), strategies=opts["auto_strategies"],
                           dampings=opts["auto_dampings"], plan=plan, seed=seed, workers=0,
                           batch_size=batch_size(kind), ensemble=opts.get("ensemble", 1))
        results = {r.label: {"lds": r.lds, "ci_low": r.ci_low, "ci_high": r.ci_high, "seconds": r.seconds}
                   for r in res.results}
        engine = _engine_kwargs(res)
        label = res.chosen[0] if res.chosen[0] == "identity" else f"{res.chosen[0]}@{res.chosen[1]}"
        label += f"+ens{res.chosen_ensemble}" if res.chosen_ensemble > 1 else ""
        out["auto"] = {"strategy": res.chosen[0], "damping": res.chosen[1], "engine": engine,
                       "ensemble": res.chosen_ensemble,
                       "selection_lds": results[label]["lds"], "selected_by": res.selected_by,
                       "grid": results, "retrains_computed": res.retrains_computed,
                       "retrains_reused": res.retrains_reused, "validation_run": res.run_id,
                       "rule": "curation.steps.validation.select_setting: highest LDS, settings within 0.01 tied "
                               "and going to the cheaper strategy, then the heuristic damping; then that setting "
                               f"averaged over {opts.get('ensemble', 1)} models (the model and others the recipe "
                               "trains on the whole set) if that adds more than 0.01 LDS"}
        if res.retrains_computed:
            print(f"  warning: validation retrained {res.retrains_computed} models the benchmark had not cached",
                  flush=True)
        # damping at the chosen length (informative; as the earlier key selection.<dataset>.damping)
        out["damping"] = {k.split("@", 1)[1]: v["lds"] for k, v in results.items() if k.startswith("ekfac@")}
        out["damping_epochs"] = chosen

        if opts["proj_grid"]:
            with clock.part("trak_extra_models_wait") as extra:
                others, extra["cpu"] = model_results(extra_models, kind, seed, chosen, lr)
            out["trak_proj_dim"] = {}
            with clock.part("trak_proj_dim_sweep"):
                dims = sorted(p for p in opts["proj_grid"] if p < split.n_train)
                if not dims:
                    raise SystemExit(f"{kind}: no TRAK projection dimension of {opts['proj_grid']} is below the "
                                     f"{split.n_train} training samples")
                for proj_dim in dims:
                    trak = trak_scores(kind, [model, *others], split, proj_dim)
                    out["trak_proj_dim"][str(proj_dim)] = {
                        "trak": linear_datamodeling_score(trak[opts["trak_models"]], masks, measured),
                        "trak_1": linear_datamodeling_score(trak[1], masks, measured)}
            best = max(v["trak"] for v in out["trak_proj_dim"].values())
            out["chosen_trak_proj_dim"] = min(int(k) for k, v in out["trak_proj_dim"].items() if v["trak"] == best)
            out["trak_rule"] = (f"highest LDS of the {opts['trak_models']}-model TRAK ensemble at the chosen length "
                                "on the selection seed; ties go to the smaller dimension")
    out["seconds"] = clock.as_dict()
    return out


def _engine_kwargs(res) -> dict[str, Any]:
    """The engine fields of the validation's choice (``damping`` / ``damping_scale``)."""
    from curation.steps.validation_settings import Damping

    return Damping.parse(res.chosen[1]).engine_kwargs()


__all__ = ["select"]
