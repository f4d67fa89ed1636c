"""Data commands: ingest, export, curate, and the store's listings (datasets, runs, tables, check)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import stores

from .common import (
    DEFAULT_STORE,
    ExecutorOpt,
    RayAddressOpt,
    StoreOpt,
    WorkersOpt,
    app,
    executor_from_options,
    open_store,
    out,
    print_frame,
)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="jsonl(.gz), parquet, csv/tsv file, or a datasets save_to_disk folder")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Name of the dataset to create")],
    text_field: Annotated[str | None, typer.Option(help="Field holding the text")] = None,
    prompt_field: Annotated[str | None, typer.Option(help="Field holding the prompt (with --completion-field)")] = None,
    completion_field: Annotated[str | None, typer.Option(help="Field holding the completion")] = None,
    label_field: Annotated[str | None, typer.Option(help="Field holding a class label")] = None,
    format: Annotated[str | None, typer.Option("--format", help="jsonl, parquet, csv or hf (default: from the name)")] = None,
    split: Annotated[str | None, typer.Option(help="Split of a DatasetDict folder (default: train)")] = None,
    drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help="Keep only the first of exact duplicates")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing dataset of that name")] = False,
    batch_rows: Annotated[int, typer.Option(help="Rows per Parquet shard")] = 250_000,
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit while reading (spills beyond it)")] = "512MB",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Ingest a file or folder into the store as a named dataset (streamed, atomic).

    With --executor ray, line ranges of a jsonl file (or the files of a Parquet folder) are read
    by Ray tasks; the dataset is the one a local ingest writes.
    """
    from stores.ingest import ingest as run_ingest

    runner = executor_from_options(executor, ray_address, workers)
    s = open_store(store, create=True)
    res = run_ingest(
        s, path, dataset, text_field=text_field, prompt_field=prompt_field,
        completion_field=completion_field, label_field=label_field, format=format, split=split,
        drop_duplicates=drop_duplicates, replace=replace, batch_rows=batch_rows,
        memory_limit=memory_limit, progress=True, executor=runner,
    )
    if as_json:
        print(json.dumps(res.as_dict(), default=str))
        return
    dup = (
        f"{res.n_duplicates:,} exact duplicates dropped"
        if res.duplicates_dropped
        else f"{res.n_duplicates:,} exact duplicates kept (--drop-duplicates removes them)"
    )
    roles = ", ".join(f"{r}<-{c}" for r, c in res.roles.items()) or "none (ids hash every field)"
    meta = [f["name"] for f in res.fields if f["role"] is None]
    out.print(f"[green]ingested[/] {res.n_rows_read:,} rows from {res.source} into dataset [bold]{res.dataset}[/]")
    out.print(f"  samples: {res.n_samples:,}; {dup}")
    out.print(f"  roles: {roles}; metadata columns: {', '.join(meta) or '(none)'}")
    out.print(f"  run {res.run_id}; {res.seconds:.2f} s, {res.rows_per_s:,.0f} rows/s, {res.mb_per_s:.1f} MB/s")
    out.print(f"  store: {s.root}")


@app.command()
def tables(store: StoreOpt = DEFAULT_STORE) -> None:
    """List the store's tables and views with row counts."""
    print_frame(open_store(store).tables(), 100)


@app.command()
def datasets(store: StoreOpt = DEFAULT_STORE) -> None:
    """List datasets with sizes, duplicates and sources."""
    df = open_store(store).sql(
        "SELECT name, n_samples, n_duplicates, source, created_at, run_id FROM datasets ORDER BY created_at"
    )
    print_frame(df, 200)


@app.command()
def runs(
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind (ingest, curate, ...)")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """List runs, newest first, with status and seed."""
    df = open_store(store).runs(kind).select("run_id", "kind", "status", "dataset", "seed", "created_at", "finished_at", "error")
    print_frame(df, 200)


@app.command()
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset to export")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Output file: .parquet, .jsonl, .jsonl.gz or .csv")],
    where: Annotated[str | None, typer.Option(help="SQL predicate over the dataset's columns")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Export a dataset, or the samples matching --where, to a file (written atomically)."""
    from stores.export import export as run_export

    n = run_export(open_store(store), dataset, out_file, where=where)
    out.print(f"exported {n:,} samples of {dataset} to {out_file}")


@app.command()
def curate(
    name: Annotated[str, typer.Argument(help="Name of the curated dataset to create")],
    parent: Annotated[str, typer.Option("--from", help="Dataset to curate")],
    flags: Annotated[list[str] | None, typer.Option("--flags", help="Flag run id to apply (repeatable; default: all for the dataset)")] = None,
    filter: Annotated[list[str] | None, typer.Option("--filter", help="Only flags of this filter (repeatable)")] = None,
    where: Annotated[str | None, typer.Option(help="SQL predicate a sample must also satisfy to be kept")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing dataset of that name")] = False,
    cut_spans: Annotated[bool, typer.Option("--cut-spans", help="With one contamination --flags run: cut the matched spans (janitor-style, audit in curated_edits) instead of dropping documents")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Materialise a curated dataset: the parent minus flagged samples (audit in curated_drops)."""
    from stores.curate import curate as run_curate

    s = open_store(store)
    if cut_spans:
        from curation.steps.contamination import cut_contamination

        res = cut_contamination(s, name, parent, flags or [], replace=replace, progress=True)
        out.print(f"[green]curated[/] {name}: kept {res.n_kept:,} (spans cut from some), dropped {res.n_dropped:,} of {parent}")
        out.print(f"  audit: curation sql \"SELECT * FROM curated_edits WHERE curated = '{name}'\"")
        return
    res = run_curate(s, name, parent, flag_runs=flags or None, filters=filter, where=where, replace=replace,
                     progress=True)
    out.print(
        f"[green]curated[/] {name}: kept {res.n_kept:,}, dropped {res.n_dropped:,} of {parent} "
        f"(flag runs: {', '.join(res.flag_runs) or 'none'}{'; where ' + where if where else ''})"
    )
    out.print(f"  audit: curation sql \"SELECT * FROM curated_drops WHERE curated = '{name}'\"")


@app.command()
def check(
    quick: Annotated[bool, typer.Option("--quick", help="Footers, sizes and row counts only (no full read of the data)")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Verify a store: the catalog reads in full, every shard is intact; lists damaged and leftover files.

    Exit code 0 when no errors are found (warnings allowed), 1 otherwise. Works on a store that
    no other command can open, and repairs nothing.
    """
    report = stores.check_store(store, read_data=not quick)
    for line in report.lines():
        out.print(line, markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)

