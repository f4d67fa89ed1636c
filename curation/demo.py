"""The end-to-end demo and ``curation run``: a pipeline from its config, then its summary.

The demo runs the noisy chain-of-thought pipeline on its bundled config: generate -> ingest ->
train -> fit factors -> score -> filter -> curated dataset (Parquet, registered in DuckDB) ->
retrain -> evaluate -> summary with the detection figures, accuracy before/after, where the store
is and SQL to try. Re-running reuses every finished step (datasets, models, factors, scores), so
a killed demo resumes.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from rich.console import Console

import stores

from .config import default_config_path, load_config


def run_pipeline(store_path: Path, config: Any, console: Console, progress: bool = True) -> Any:
    """Run the pipeline ``config`` is for into the store at ``store_path``, then print its summary.

    The pipeline is ``curation.pipelines.<config.pipeline>``; its ``pipeline`` module provides
    ``execute(store, config, console, progress)`` and its ``summary`` module ``print_summary``.
    """
    store = stores.open(store_path)
    package = f"curation.pipelines.{config.pipeline}"
    pipeline = importlib.import_module(f"{package}.pipeline")
    summary = importlib.import_module(f"{package}.summary")
    t0 = time.perf_counter()
    console.print(f"[bold]{config.pipeline} pipeline[/] into store {store.root} (seed {config.seed})")
    result = pipeline.execute(store, config, console, progress=progress)
    summary.print_summary(result, config, console, time.perf_counter() - t0)
    return result


def run_demo(store_path: Path, console: Console, config_path: Path | None = None) -> Any:
    """The demo: the noisy chain-of-thought pipeline with the bundled config (or ``config_path``)."""
    return run_pipeline(store_path, load_config(config_path or default_config_path()), console)
