"""What every command module shares: the app, consoles, the --store option, printing frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

import stores


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


def new_app(**kwargs) -> _App:
    """A command group with the polished help (the top-level app and its sub-groups)."""
    kwargs.setdefault("no_args_is_help", True)
    kwargs.setdefault("add_completion", False)
    kwargs.setdefault("pretty_exceptions_enable", False)
    return _App(**kwargs)


app = new_app(name="curation", help="Data-centric curation and attribution: ingest data, query it in SQL, curate it.")
out = Console(highlight=False, soft_wrap=True)  # soft wrap: no hard line breaks at 80 columns in pipes
err = Console(stderr=True, highlight=False, soft_wrap=True)

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

ExecutorOpt = Annotated[
    str,
    typer.Option("--executor", help="Where the heavy step runs: local (this process) or ray (one Ray task per "
                                    "shard; same results; needs curation[distributed])"),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="With --executor ray: an existing cluster (auto, host:6379, "
                                       "ray://host:10001); default: start a local one on this machine's CPUs"),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="With --executor ray: shard tasks in flight at once (default: one per CPU)"),
]


def executor_from_options(executor: str, ray_address: str | None, workers: int | None):
    """The executor the --executor, --ray-address and --workers options name (a bad value is a usage error)."""
    from stores.executors import ExecutorError, make_executor

    try:
        return make_executor(executor, address=ray_address, workers=workers)
    except ExecutorError as exc:
        raise typer.BadParameter(str(exc), param_hint="--executor") from exc


def open_store(store: Path, create: bool = False) -> stores.Store:
    """The store at ``store`` (created when ``create``)."""
    return stores.open(store, create=create)


def print_frame(df: pl.DataFrame, max_rows: int) -> None:
    """Print a result frame as a table, at most ``max_rows`` rows, with the row count."""
    with pl.Config(
        tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=160, tbl_hide_dataframe_shape=True
    ):
        out.print(str(df), markup=False, highlight=False, soft_wrap=True)
    shown = f", first {max_rows} shown" if df.height > max_rows else ""
    out.print(f"({df.height:,} row{'s' if df.height != 1 else ''}{shown})", style="dim")
