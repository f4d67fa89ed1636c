"""Curate by a flags run: the training set minus what it flagged, as a dataset named after the run."""

from __future__ import annotations

import stores
from stores.curate import curate

from ..errors import PipelineError


def curate_flagged(store: stores.Store, prefix: str, dataset: str, flags_run: str) -> str:
    """``dataset`` minus the samples ``flags_run`` flagged, as ``<prefix>_curated_<flags run id>``; its name.

    Named by the flags run, so runs with other budgets or weights never overwrite each other's
    curated data, and the same flags run reuses its dataset. Refuses a curation that keeps
    nothing (there would be nothing to retrain on).
    """
    name = f"{prefix}_curated_{flags_run}"
    if store.sql("SELECT 1 FROM datasets WHERE name = ?", [name]).height:
        return name
    n_total = store.dataset_info(dataset)["n_samples"]
    n_flagged = int(store.read_flags(flags_run)["flagged"].sum())
    if n_flagged >= n_total:
        raise PipelineError(f"flags run {flags_run} flags all {n_total} samples of {dataset}: the curated set "
                            "would be empty, with nothing to retrain on; lower the flag budget")
    curate(store, name, dataset, flag_runs=[flags_run])
    return name
