"""Cut contamination out of a training set (the ``--cut-spans`` mode of ``curation curate``)."""

from __future__ import annotations

from collections.abc import Sequence

import stores
from filters.contamination.cut import CutSettings, plan_cuts
from filters.contamination.items import read_items
from stores.curate import CurateResult, curate

from ..errors import RequestError


def cut_contamination(store: stores.Store, name: str, parent: str, flag_runs: Sequence[str], *,
                      settings: CutSettings | None = None, replace: bool = False, progress: bool = False) -> CurateResult:
    """``parent`` with the matches of one contamination verdict run cut out (janitor-style), as ``name``.

    The verdict run's config names its evidence runs, benchmarks and text fields; documents cut
    into too many pieces are dropped. Edits are audited in ``curated_edits``, drops in ``curated_drops``.
    """
    if len(flag_runs) != 1:
        raise RequestError("--cut-spans needs exactly one --flags run: a contamination verdict run")
    run = store.get_run(flag_runs[0])
    settings_ = (run.get("config") or {}).get("settings") or {}
    if (run.get("config") or {}).get("filter") != "contamination":
        raise RequestError(f"run {flag_runs[0]} is not a contamination verdict (filter "
                           f"{(run.get('config') or {}).get('filter')!r}); --cut-spans only cuts contamination matches")
    if run.get("dataset") != parent:
        raise RequestError(f"run {flag_runs[0]} checked dataset {run.get('dataset')!r}, not {parent!r}")
    items = [it for b in settings_.get("benchmarks", []) for it in read_items(store, b)]
    settings = settings or CutSettings()
    edits, drops = plan_cuts(store, flag_runs[0], parent, settings_.get("text_fields") or ["text"], items,
                             settings=settings)
    return curate(store, name, parent, flag_runs=[], drops=drops, edits=edits, replace=replace, progress=progress,
                  extra_config={"contamination_run": flag_runs[0], "cut": vars(settings)})
