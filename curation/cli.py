"""The ``curation`` command line: ingest, query, export and curate datasets in a store."""

from __future__ import annotations

import json
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import pyarrow as pa
import typer
from rich.console import Console

import stores
from curation.config import ConfigError
from curation.errors import CurationError
from stores.errors import QueryError, StoreError
from stores.store import classify_sql


def _polish_params(params: list) -> list:
    """Help text as a user reads it: no ``<bool>`` after flags, ``PATH`` (not ``{path}``) in usage."""
    from typer.core import TyperArgument, TyperOption

    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and "get_usage_pieces" not in vars(param):
            def usage(ctx, param=param) -> list[str]:
                name = param.display_name_raw.upper()
                return [(name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")]

            param.get_usage_pieces = usage
    return params


class _Command(typer.core.TyperCommand):
    """A command whose help reads as plain usage (see :func:`_polish_params`)."""

    def get_params(self, ctx):
        return _polish_params(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    """A command group whose help reads as plain usage (see :func:`_polish_params`)."""

    def get_params(self, ctx):
        return _polish_params(super().get_params(ctx))


class _App(typer.Typer):
    """``typer.Typer`` whose commands and groups use the polished help."""

    def __init__(self, **kwargs) -> None:
        super().__init__(cls=_Group, **kwargs)

    def command(self, *args, **kwargs):
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    name="curation",
    help="Data-centric curation and attribution: ingest data, query it in SQL, curate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)  # soft wrap: no hard line breaks at 80 columns in pipes
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version() -> str:
    from stores.store import package_versions

    return package_versions().get("curation", "unknown")


def _print_version(value: bool) -> None:
    if value:
        out.print(f"curation {_version()}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit")] = False,
) -> None:
    """Data-centric curation and attribution: ingest data, query it in SQL, curate it."""

StoreOpt = Annotated[
    Path,
    typer.Option(
        "--store",
        "-s",
        envvar="CURATION_STORE",
        help="Store folder (catalog.duckdb + data/). Env: CURATION_STORE.",
        show_default=True,
    ),
]
DEFAULT_STORE = Path(stores.store.DEFAULT_STORE)


class OutputFormat(StrEnum):
    """Output formats of `curation sql`."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _open(store: Path, create: bool = False) -> stores.Store:
    return stores.open(store, create=create)


def _print_frame(df: pl.DataFrame, max_rows: int) -> None:
    with pl.Config(
        tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=160, tbl_hide_dataframe_shape=True
    ):
        out.print(str(df), markup=False, highlight=False, soft_wrap=True)
    shown = f", first {max_rows} shown" if df.height > max_rows else ""
    out.print(f"({df.height:,} row{'s' if df.height != 1 else ''}{shown})", style="dim")


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
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Ingest a file or folder into the store as a named dataset (streamed, atomic)."""
    from stores.ingest import ingest as run_ingest

    s = _open(store, create=True)
    res = run_ingest(
        s, path, dataset, text_field=text_field, prompt_field=prompt_field,
        completion_field=completion_field, label_field=label_field, format=format, split=split,
        drop_duplicates=drop_duplicates, replace=replace, batch_rows=batch_rows,
        memory_limit=memory_limit, progress=True,
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


_OUT_FORMATS = {  # --out suffix -> the --format it implies (longest suffix first)
    ".jsonl.gz": OutputFormat.json,
    ".parquet": OutputFormat.parquet,
    ".ndjson": OutputFormat.json,
    ".jsonl": OutputFormat.json,
    ".json": OutputFormat.json,
    ".csv": OutputFormat.csv,
}
_FORMAT_SUFFIX = {OutputFormat.parquet: ".parquet", OutputFormat.json: ".jsonl", OutputFormat.csv: ".csv"}


def _check_sql_flags(
    s: stores.Store, format: OutputFormat, out_file: Path | None, max_rows: int | None
) -> None:
    """Refuse combinations of `curation sql` options that cannot all be honoured."""
    if out_file is None:
        if format == OutputFormat.parquet:
            raise StoreError("--format parquet needs --out FILE")
        if max_rows is not None and format != OutputFormat.table:
            raise StoreError(f"--max-rows limits the table printed on screen; it has no effect with --format {format.value}")
        return
    if max_rows is not None:
        raise StoreError("--max-rows limits the table printed on screen; --out writes every row (drop one of them)")
    name = out_file.name.lower()
    implied = next((f for suffix, f in _OUT_FORMATS.items() if name.endswith(suffix)), None)
    if format != OutputFormat.table and implied is not None and implied != format:
        raise StoreError(f"--format {format.value} contradicts --out {out_file} (a {implied.value} file name)")
    target = out_file.resolve()
    if target == s.root or s.root in target.parents:
        raise StoreError(f"--out {out_file} is inside the store folder {s.root}; write results outside it")


def _write_rows(rows: pa.Table | pa.RecordBatchReader, out_file: Path, format: OutputFormat) -> int:
    """Write result rows to ``out_file`` atomically; returns the row count.

    The format follows --format, else the file's suffix (as `curation export`). DuckDB writes
    the file from the Arrow rows in a private in-memory database, so no user SQL runs there.
    """
    import duckdb

    from stores.atomic import atomic_path
    from stores.export import EXPORT_FORMATS, copy_options
    from stores.schema import sql_literal

    name = out_file.name.lower()
    by_suffix = format == OutputFormat.table or any(name.endswith(x) for x in _OUT_FORMATS)
    options = copy_options(out_file) if by_suffix else EXPORT_FORMATS[_FORMAT_SUFFIX[format]]
    con = duckdb.connect()
    try:
        con.register("result_rows", rows)
        with atomic_path(out_file) as tmp:
            row = con.execute(f"COPY (SELECT * FROM result_rows) TO {sql_literal(str(tmp))} {options}").fetchone()
    except duckdb.Error as exc:
        raise QueryError(f"writing {out_file} failed: {exc}") from exc
    finally:
        con.close()
    return int(row[0]) if row else 0


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run against the store's catalog")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format")] = OutputFormat.table,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the rows to this file (format from --format or the suffix)"),
    ] = None,
    write: Annotated[
        bool, typer.Option("--write", help="Allow statements that modify the store or write files (full DuckDB)")
    ] = False,
    max_rows: Annotated[int | None, typer.Option(help="Rows shown in table format [default: 50]")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Run SQL over the store. Tables: see `curation tables`.

    Without --write it is read-only: only reading statements (SELECT, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN, metadata PRAGMAs), and no file outside the store folder.

    --write runs it in one transaction with DuckDB's full privileges; with --out, its last statement must return rows (end with a SELECT).
    """
    s = _open(store)
    _check_sql_flags(s, format, out_file, max_rows)
    if write:
        statements = classify_sql(query)
        if out_file is not None and not statements[-1].reads:
            raise StoreError(
                f"--out writes the rows the last statement returns, but it is a {statements[-1].kind} "
                "statement, which returns none; end the SQL with a SELECT, or drop --out"
            )
        with s.write():  # one transaction: if --out cannot be written, the changes roll back
            df = s.execute(query)
            if out_file is not None:
                n = _write_rows(df.to_arrow(), out_file, format)
                err.print(f"wrote {n:,} rows to {out_file}")
                return
    elif out_file is not None:
        with s.sql_reader(query) as reader:
            n = _write_rows(reader, out_file, format)
        err.print(f"wrote {n:,} rows to {out_file}")
        return
    else:
        df = s.sql(query)
    if format == OutputFormat.table:
        _print_frame(df, 50 if max_rows is None else max_rows)
    elif format == OutputFormat.csv:
        sys.stdout.write(df.write_csv())
    else:
        sys.stdout.write(df.write_ndjson())


@app.command()
def tables(store: StoreOpt = DEFAULT_STORE) -> None:
    """List the store's tables and views with row counts."""
    _print_frame(_open(store).tables(), 100)


@app.command()
def datasets(store: StoreOpt = DEFAULT_STORE) -> None:
    """List datasets with sizes, duplicates and sources."""
    df = _open(store).sql(
        "SELECT name, n_samples, n_duplicates, source, created_at, run_id FROM datasets ORDER BY created_at"
    )
    _print_frame(df, 200)


@app.command()
def runs(
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind (ingest, curate, ...)")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """List runs, newest first, with status and seed."""
    df = _open(store).runs(kind).select("run_id", "kind", "status", "dataset", "seed", "created_at", "finished_at", "error")
    _print_frame(df, 200)


@app.command()
def export(
    dataset: Annotated[str, typer.Argument(help="Dataset to export")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Output file: .parquet, .jsonl, .jsonl.gz or .csv")],
    where: Annotated[str | None, typer.Option(help="SQL predicate over the dataset's columns")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Export a dataset, or the samples matching --where, to a file (written atomically)."""
    from stores.export import export as run_export

    n = run_export(_open(store), dataset, out_file, where=where)
    out.print(f"exported {n:,} samples of {dataset} to {out_file}")


@app.command()
def curate(
    name: Annotated[str, typer.Argument(help="Name of the curated dataset to create")],
    parent: Annotated[str, typer.Option("--from", help="Dataset to curate")],
    flags: Annotated[list[str] | None, typer.Option("--flags", help="Flag run id to apply (repeatable; default: all for the dataset)")] = None,
    filter: Annotated[list[str] | None, typer.Option("--filter", help="Only flags of this filter (repeatable)")] = None,
    where: Annotated[str | None, typer.Option(help="SQL predicate a sample must also satisfy to be kept")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing dataset of that name")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Materialise a curated dataset: the parent minus flagged samples (audit in curated_drops)."""
    from stores.curate import curate as run_curate

    s = _open(store)
    res = run_curate(s, name, parent, flag_runs=flags or None, filters=filter, where=where, replace=replace,
                     progress=True)
    out.print(
        f"[green]curated[/] {name}: kept {res.n_kept:,}, dropped {res.n_dropped:,} of {parent} "
        f"(flag runs: {', '.join(res.flag_runs) or 'none'}{'; where ' + where if where else ''})"
    )
    out.print(f"  audit: curation sql \"SELECT * FROM curated_drops WHERE curated = '{name}'\"")


class TaskKind(StrEnum):
    """What kind of model ``curation attribute`` scores."""

    causal_lm = "causal-lm"
    classifier = "classifier"
    regression = "regression"


@app.command()
def attribute(
    train: Annotated[str, typer.Option("--train", help="Training dataset to score")],
    model: Annotated[Path, typer.Option("--model", help="Local model folder: a causal LM (save_pretrained) or an MLP (MLP.save)")],
    task: Annotated[TaskKind, typer.Option(help="causal-lm (prompt/completion or text) or classifier/regression (tabular)")] = TaskKind.causal_lm,
    tokenizer: Annotated[Path | None, typer.Option(help="Local tokenizer folder (default: the model's)")] = None,
    behaviour: Annotated[str | None, typer.Option(help="Registered behaviour to attribute (its dataset and query ids); this or --queries is required")] = None,
    queries: Annotated[str | None, typer.Option(help="Dataset whose samples are the queries (registers a behaviour); this or --behaviour is required")] = None,
    features: Annotated[str | None, typer.Option(help="Tabular: comma-separated feature fields (default: every numeric one)")] = None,
    label_field: Annotated[str, typer.Option(help="Tabular: the label/target field")] = "label",
    strategy: Annotated[str, typer.Option(help="ekfac, kfac, diagonal or identity")] = "ekfac",
    damping: Annotated[float | None, typer.Option(help="Absolute damping (default: 0.1 x mean eigenvalue)")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample, at most the model's context (default: the model's context; longer completions are cut)")] = None,
    batch_size: Annotated[int, typer.Option(help="Training samples per batch")] = 16,
    shard_size: Annotated[int, typer.Option(help="Training samples per written shard")] = 1024,
    low_rank: Annotated[int | None, typer.Option(help="Rank of query-gradient compression (query batching)")] = None,
    per_module: Annotated[bool, typer.Option("--per-module", help="Also write each score's split over modules (score_parts)")] = False,
    explain_top: Annotated[int, typer.Option(help="Causal LM: per-token scores of each query's top-K samples (score_parts)")] = 0,
    self_influence: Annotated[bool, typer.Option("--self", help="Also write self-influence scores")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the Fisher's sampled labels")] = 0,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Score every training sample against a behaviour with influence functions (resumable).

    One of --behaviour (a registered behaviour) or --queries (a dataset of queries) is required.
    """
    from attribution.engine import STRATEGIES
    from curation.attribute import AttributeRequest, run_attribution

    if strategy not in STRATEGIES:
        raise typer.BadParameter(f"expected one of {', '.join(STRATEGIES)}", param_hint="--strategy")
    if behaviour is None and queries is None:
        raise typer.BadParameter("give --behaviour NAME (registered) or --queries DATASET", param_hint="--behaviour")
    req = AttributeRequest(
        train=train, model=model, task=task.value, tokenizer=tokenizer, behaviour=behaviour, queries=queries,
        features=[c.strip() for c in features.split(",")] if features else None, label_field=label_field,
        strategy=strategy, damping=damping, max_length=max_length, batch_size=batch_size, shard_size=shard_size,
        low_rank=low_rank, per_module=per_module, explain_top=explain_top, self_influence=self_influence, seed=seed,
    )
    res = run_attribution(_open(store), req, progress=True)
    length = f", {res.max_length} tokens per sample" if res.max_length else ""
    out.print(
        f"[green]scored[/] {res.n_train:,} samples of {train} x {res.n_queries:,} queries of {res.behaviour} "
        f"({strategy}{length}): run {res.run_id}, {res.shards_computed}/{res.shards_total} shards computed, "
        f"{res.seconds:.1f} s"
    )
    if res.token_run_id:
        out.print(f"[green]per-token[/] scores of {res.n_explained} samples: run {res.token_run_id} (table score_parts)")
    if res.self_run_id:
        out.print(f"[green]self-influence[/] run {res.self_run_id}")
    out.print(
        "  top helpers of each query: curation sql \"SELECT query_id, sample_id, score FROM scores "
        f"WHERE run_id = '{res.run_id}' QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 5\""
    )
    out.print(f"  report: curation report {res.run_id} --out attribution.html")


generate_app = _App(
    help="Generate synthetic datasets with planted, known problems into the store.",
    no_args_is_help=True,
)
app.add_typer(generate_app, name="generate")

# TintConfig field -> the option that sets it (for errors that name the option)
_TINT_OPTIONS = {
    "n": "--n", "functions": "--functions", "max_digits": "--max-digits", "min_digits": "--min-digits", "list_len": "--list-len",
    "max_lines": "--max-lines", "dynamic_rate": "--dynamic", "p_dyn": "--p-dyn", "static_rate": "--static",
    "p_c": "--p-c", "p_l": "--p-l",
}


def _parse_list_len(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise typer.BadParameter(f"expected MIN-MAX or N (e.g. 3-5), got {text!r}", param_hint="--list-len") from None


@generate_app.command("tint")
def generate_tint(
    name: Annotated[str, typer.Option("--name", help="Dataset to create with the training traces")],
    n: Annotated[int, typer.Option("--n", help="Number of training traces")] = 20_000,
    dynamic: Annotated[float, typer.Option("--dynamic", help="Fraction of traces with dynamic (propagating) noise")] = 0.0,
    p_dyn: Annotated[float, typer.Option("--p-dyn", help="Dynamic noise: chance each digit after the first non-zero one is redrawn")] = 0.2,
    static: Annotated[float, typer.Option("--static", help="Fraction of traces with static (local) noise")] = 0.0,
    p_c: Annotated[float, typer.Option("--p-c", help="Static digit noise: chance each digit is redrawn")] = 0.3,
    p_l: Annotated[float, typer.Option("--p-l", help="Static line noise: chance each non-answer line is deleted")] = 0.3,
    require_change: Annotated[bool, typer.Option("--require-change", help="Redraw until every noised trace differs from its clean trace (departs from the paper)")] = False,
    functions: Annotated[str | None, typer.Option(help="Comma-separated functions (default: add,sub,mul,div,gcd,sort,median; also len,rshift,index)")] = None,
    max_digits: Annotated[int, typer.Option(help="Numbers have min-digits..max-digits digits")] = 3,
    min_digits: Annotated[int, typer.Option(help="Fewest digits of a number (= max-digits: fixed width)")] = 1,
    list_len: Annotated[str, typer.Option(help="List sizes for sort/median/len/index: MIN-MAX or N")] = "3-5",
    max_lines: Annotated[int, typer.Option(help="Longest trace in lines (longer problems are redrawn)")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same datasets)")] = 0,
    test_n: Annotated[int, typer.Option(help="Also write this many noise-free test traces (0: none)")] = 0,
    test_name: Annotated[str | None, typer.Option(help="Dataset for the test traces (default: NAME_test)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace existing datasets of those names")] = False,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """TInt chain-of-thought traces (Havrilla & Iyer 2024) with planted static/dynamic noise."""
    from curation.datasets import (
        TintConfig,
        TintConfigError,
        generate_tint_test,
        summarize,
        write_parquet,
    )
    from curation.datasets import generate_tint as make_tint
    from stores.errors import DatasetExistsError
    from stores.ingest import ingest as run_ingest
    from stores.store import validate_name

    def bad(exc: TintConfigError) -> typer.BadParameter:
        return typer.BadParameter(str(exc).split(": ", 1)[1], param_hint=_TINT_OPTIONS.get(exc.param, exc.param))

    def say(text: str) -> None:
        out.print(text, soft_wrap=True)

    if n <= 0:
        raise typer.BadParameter(f"expected a positive number of traces, got {n}", param_hint="--n")
    if test_n < 0:
        raise typer.BadParameter(f"expected 0 or more test traces, got {test_n}", param_hint="--test-n")
    func_names = tuple(f.strip() for f in functions.split(",") if f.strip()) if functions is not None else None
    try:
        cfg = TintConfig(
            **({"functions": func_names} if func_names is not None else {}), max_digits=max_digits, min_digits=min_digits,
            list_len=_parse_list_len(list_len), max_lines=max_lines, dynamic_rate=dynamic, p_dyn=p_dyn,
            static_rate=static, p_c=p_c, p_l=p_l, require_change=require_change,
        )
    except TintConfigError as exc:
        raise bad(exc) from None
    names = [validate_name(name)]
    if test_n:
        test_name = validate_name(test_name or f"{name}_test")
        if test_name == name:
            raise typer.BadParameter("the test set needs a name of its own", param_hint="--test-name")
        names.append(test_name)
    try:  # all in memory first: a bad setting fails before the store is touched
        train = make_tint(n, seed=seed, **cfg.as_dict())
        test = generate_tint_test(
            test_n, seed=seed, functions=cfg.functions, max_digits=cfg.max_digits, min_digits=cfg.min_digits,
            list_len=cfg.list_len,
            max_lines=cfg.max_lines, exclude_prompts={r["prompt"] for r in train},
        ) if test_n else []
    except TintConfigError as exc:
        raise bad(exc) from None
    s = _open(store, create=True)
    if not replace:  # both names checked before either is written
        for nm in names:
            if s.sql("SELECT 1 FROM datasets WHERE name = ?", [nm]).height:
                raise DatasetExistsError(f"dataset {nm!r} already exists; pass --replace to overwrite it")
    config = {"generator": "tint", "n": n, "test_n": test_n, "datasets": names, **cfg.as_dict()}
    ingest_runs = []
    with s.run("generate", config=config, seed=seed, dataset=name) as run:
        with tempfile.TemporaryDirectory(prefix="curation-tint-") as tmp:
            for nm, records in zip(names, (train, test), strict=False):
                path = write_parquet(records, Path(tmp) / f"{nm}.parquet")
                res = run_ingest(s, path, nm, prompt_field="prompt", completion_field="completion", replace=replace)
                ingest_runs.append(res.run_id)

    summ = summarize(train)
    kinds = ", ".join(f"{k} {c:,}" for k, c in summ.by_noise.items())
    say(f"[green]generated[/] {n:,} TInt traces into dataset [bold]{name}[/] (seed {seed}): {kinds}")
    for kind, count in summ.by_noise.items():
        if kind != "clean":
            say(
                f"  {kind}: {summ.trace_changed_by_noise.get(kind, 0):,} of {count:,} traces changed by the noise, "
                f"answer wrong in {summ.answer_wrong_by_noise.get(kind, 0):,}"
            )
    say("  functions: " + ", ".join(f"{f} {c:,}" for f, c in summ.by_func.items()))
    chars = summ.completion_chars
    say(f"  completion length (chars): median {chars['median']}, p90 {chars['p90']}, max {chars['max']}")
    if test:
        say(f"  test: {len(test):,} noise-free traces in dataset [bold]{names[1]}[/] (no prompt shared with {name})")
    say(f"  runs: {run.id} (config), ingest {', '.join(ingest_runs)}; store: {s.root}")
    say(
        "  slice: curation sql \"SELECT noise, func, count(*) AS n, avg(answer_correct::INT) AS acc FROM samples "
        f"WHERE dataset = '{name}' GROUP BY ALL ORDER BY ALL\"",
    )


@app.command()
def report(
    run_id: Annotated[str | None, typer.Argument(help="Run to report on (default: the latest finished run)")] = None,
    out_file: Annotated[Path, typer.Option("--out", help="HTML file to write (self-contained)")] = Path("report.html"),
    top_k: Annotated[int, typer.Option(help="Most positive / negative samples shown per query")] = 3,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Write a self-contained HTML report of one run (config, top samples, histograms, flags, SQL)."""
    from curation.report import write_report

    written = write_report(_open(store), out_file, run_id, top_k=top_k)
    out.print(f"[green]report[/] written to {written[0]} ({written[0].stat().st_size / 1024:.0f} KiB)")
    for page in written[1:]:
        out.print(f"  attribution run page: {page}")


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


def _loaded_errors() -> tuple[type[Exception], ...]:
    """Errors of modules imported lazily (torch-heavy) that also deserve one clear line."""
    models = sys.modules.get("attribution.models")
    return (models.UnsafeCheckpointError, models.ModelLoadError) if models else ()


def main() -> None:
    """Console entry point: runs the app and turns store errors into one clear line."""
    try:
        app(prog_name="curation")
    except (StoreError, CurationError, FileNotFoundError, ConfigError, *_loaded_errors()) as exc:
        err.print("[red]error:[/] ", end="")
        err.print(str(exc), markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
