"""Pipeline commands: run a pipeline config, the demo, and HTML reports of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DEFAULT_STORE, StoreOpt, app, open_store, out


@app.command()
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run to report on (default: the latest finished run)")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write (self-contained)")] = Path("report.html"),
    top_k: Annotated[int, typer.Option(help="Most positive / negative samples shown per query")] = 3,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Write a self-contained HTML report of one run (config, top samples, histograms, flags, SQL)."""
    from curation.report import write_report

    written = write_report(open_store(store), out_file, run_id, top_k=top_k)
    out.print(f"[green]report[/] written to {written[0]} ({written[0].stat().st_size / 1024:.0f} KiB)")
    for page in written[1:]:
        out.print(f"  attribution run page: {page}")


@app.command()
def demo(
    store: StoreOpt = Path("curation-demo-store"),
    config: Annotated[Path | None, typer.Option(help="Pipeline YAML (default: the bundled examples/noisy_cot.yaml)")] = None,
) -> None:
    """End-to-end demo: noisy chain-of-thought traces -> influence -> filter -> curate -> retrain."""
    from curation.demo import run_demo

    run_demo(store, out, config)


@app.command("run")
def run_pipeline_cmd(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML, e.g. examples/noisy_cot.yaml")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Run a pipeline from its config file (resumable: finished steps are reused)."""
    from curation.config import load_config
    from curation.demo import run_pipeline

    run_pipeline(store, load_config(pipeline), out, progress=True)
