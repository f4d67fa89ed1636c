"""The ``curation`` command line: one module per command group, each command a thin layer over a library call.

- :mod:`.data`: ingest, export, curate, datasets, runs, tables, check;
- :mod:`.sql`: sql; :mod:`.attribute`: attribute; :mod:`.validate`: validate (how much to trust the scores,
  and what ``--strategy auto`` picks); :mod:`.index`: index build, query (a gradient index, FAISS);
  :mod:`.unlearning`: expand, unlearn; :mod:`.junk`: junk;
  :mod:`.contamination`: contamination;
  :mod:`.generate`: generate tint;
- :mod:`.pipelines`: run, demo, report.

Errors the library raises for bad input (store, config, request, model-folder errors) are
printed by :func:`main` as one line with exit code 1.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from curation.config import ConfigError
from curation.errors import CurationError
from stores.errors import StoreError

from .common import app, err, out


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


from . import data, sql, attribute, index, validate, unlearning, junk, contamination, pipelines, generate  # noqa: E402,F401,I001  (registers the commands, in help order)


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


__all__ = ["app", "main"]
