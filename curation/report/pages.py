"""Pages: :func:`build_report` renders one run, :func:`write_report` writes a run's page and, for
a pipeline run, its attribution runs' pages beside it, linked relatively.

A pipeline run's page holds that pipeline's own sections (results, detection, ...), found in a
registry by the pipeline's name (the ``pipeline`` key of the run's config; runs recorded
without it are ``noisy_cot`` runs). A pipeline registers its sections function with
:func:`register_sections`; a pipeline ``<name>`` that lives in ``curation.pipelines.<name>``
does so in its module ``curation.pipelines.<name>.report``, which :func:`pipeline_sections`
imports the first time a page of that pipeline is built. So a new pipeline adds its sections
without editing this module, and this module imports no pipeline (no import cycles).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stores

from .html import esc, label, render_page
from .sections import attribute_section, flags_section, self_section

#: One page section: (id, heading, HTML body).
Section = tuple[str, str, str]
#: A pipeline's sections function: (store, the pipeline run's record, its config) -> sections.
SectionsFn = Callable[[stores.Store, dict[str, Any], dict[str, Any]], list[Section]]

#: Pipeline name -> its sections function (filled by :func:`register_sections`).
PIPELINE_SECTIONS: dict[str, SectionsFn] = {}
#: The pipeline of runs whose config names none (recorded before the key existed).
DEFAULT_PIPELINE = "noisy_cot"


def register_sections(pipeline: str) -> Callable[[SectionsFn], SectionsFn]:
    """Decorator: make the function the report sections of pipeline runs named ``pipeline``."""

    def register(fn: SectionsFn) -> SectionsFn:
        PIPELINE_SECTIONS[pipeline] = fn
        return fn

    return register


def pipeline_sections(pipeline: str) -> SectionsFn | None:
    """The sections function registered for ``pipeline``, importing ``curation.pipelines.<pipeline>.report``
    (which registers it) the first time; None when no such pipeline module exists."""
    if pipeline not in PIPELINE_SECTIONS and re.fullmatch(r"[A-Za-z_]\w*", pipeline):
        module = f"curation.pipelines.{pipeline}.report"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # no such pipeline here; a missing dependency still raises
            if exc.name not in (module, module.rpartition(".")[0]):
                raise
    return PIPELINE_SECTIONS.get(pipeline)


def _pipeline_page_sections(store: stores.Store, run: dict[str, Any], config: dict[str, Any]) -> list[Section]:
    """The sections of the pipeline that recorded ``run`` (a note when none are registered)."""
    name = str(config.get("pipeline") or DEFAULT_PIPELINE)
    fn = pipeline_sections(name)
    if fn is None:
        return [("pipeline", "pipeline results",
                 f"<p>No report sections are registered for pipeline <b>{esc(name)}</b>; its results are in "
                 "the run's config below.</p>")]
    return fn(store, run, config)


def attribution_runs(store: stores.Store, config: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, run id) of a pipeline's runs that have pairwise influence scores (their own report pages)."""
    out = []
    for name, rid in (config.get("runs") or {}).items():
        if not isinstance(rid, str):
            continue
        has = store.sql("SELECT count(*) AS n FROM shards WHERE run_id = ? AND table_name = 'scores'", [rid])["n"][0]
        if has:
            out.append((name, rid))
    return out


def report_file_name(out_stem: str, run_id: str) -> str:
    """The file name of a run's page written beside a report named ``<out_stem>.html``."""
    return f"{out_stem}-{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id)}.html"


def _attribution_section(store: stores.Store, config: dict[str, Any], links: dict[str, str]) -> str:
    """A pipeline's attribution runs: what each one's page shows, a link to it or the command that writes it."""
    found = attribution_runs(store, config)
    if not found:
        return ""
    rows = []
    for name, rid in found:
        stats = store.sql("SELECT count(DISTINCT query_id) AS q, count(DISTINCT sample_id) AS s, "
                          "string_agg(DISTINCT behaviour, ', ') AS b FROM scores WHERE run_id = ?", [rid]).row(0, named=True)
        what = (f"influence of {stats['s']:,} training traces on {stats['q']:,} queries "
                f"(behaviour {stats['b']}): for each query, the traces that helped and hurt it most, with token highlighting")
        cmd = f"curation report {rid} --store {store.root} --out {report_file_name('report', rid)}"
        page = (f"<a href='{esc(links[rid])}'>open its report</a><br>" if rid in links else "") + \
            f"<span class='cmd'>{esc(cmd)}</span>"
        rows.append(f"<tr><td>{esc(label(name))}<div class='id'>{esc(rid)}</div></td><td>{esc(what)}</td><td>{page}</td></tr>")
    return ("<p>The attribution run's own page shows the queries (the model's wrong answers), the training traces "
            "that pushed each one most and least, and which tokens did it.</p>"
            f"<table><tr><th>run</th><th>what its report shows</th><th>report</th></tr>{''.join(rows)}</table>")


def latest_run(store: stores.Store) -> str:
    """The newest finished run (what ``curation report`` shows without a run id)."""
    df = store.sql("SELECT run_id FROM runs WHERE status = 'finished' ORDER BY created_at DESC LIMIT 1")
    if df.height == 0:
        raise stores.StoreError(f"store {store.root} has no finished runs to report on")
    return df["run_id"][0]


def build_report(store: stores.Store, run_id: str | None = None, top_k: int = 3, max_queries: int = 5,
                 links: dict[str, str] | None = None, up: tuple[str, str] | None = None) -> str:
    """The HTML of one run's report (see :mod:`curation.report`).

    ``links`` maps run ids to relative hrefs of their pages (a pipeline report links its
    attribution runs' pages; without, it shows the command that writes them); ``up`` is an
    (href, text) link back to the page that links here.
    """
    run_id = run_id or latest_run(store)
    run = store.get_run(run_id)
    config = run.get("config") or {}
    back = f"<p><a href='{esc(up[0])}'>&larr; {esc(up[1])}</a></p>" if up else ""
    head = (f"{back}<h1>curation report: run <code>{esc(run_id)}</code></h1>"
            f"<p>kind <b>{esc(run['kind'])}</b>, status {esc(run['status'])}, dataset {esc(run.get('dataset'))}, "
            f"seed {esc(run.get('seed'))}, created {esc(run.get('created_at'))}</p>")
    sections = []
    tables = set(store.sql("SELECT DISTINCT table_name FROM shards WHERE run_id = ?", [run_id])["table_name"])
    if "scores" in tables:
        sections.append(("influence", "influence: top samples per query",
                         attribute_section(store, run_id, top_k, max_queries)))
    if "self_scores" in tables:
        sections.append(("self-scores", "per-sample scores", self_section(store, run_id)))
    if "flags" in tables:
        sections.append(("flags", "flags", flags_section(store, run_id)))
    if "unlearn_metrics" in tables:
        from .unlearning import unlearn_section

        sections.append(("unlearning", "unlearning: original vs unlearned vs retrained", unlearn_section(store, run_id)))
    if run["kind"] == "validation":
        from .validation import validation_section

        sections.append(("validation", "How much to trust these scores", validation_section(store, run_id)))
    if run["kind"] == "pipeline":
        sections.extend(_pipeline_page_sections(store, run, config))
        attribution = _attribution_section(store, config, links or {})
        if attribution:
            sections.append(("attribution", "Attribution runs", attribution))
    sections.append(("config", "config and versions",
                     f"<p>versions: {esc(', '.join(f'{k} {v}' for k, v in (run.get('versions') or {}).items()))}</p>"
                     f"<details><summary>the run's config (JSON)</summary>"
                     f"<pre>{esc(json.dumps(config, indent=2, default=str))}</pre></details>"))
    return render_page(f"curation report {run_id}", head, sections)


def write_report(store: stores.Store, out_file: Path | str, run_id: str | None = None, top_k: int = 3) -> list[Path]:
    """Write a run's report to ``out_file``; for a pipeline run, also each attribution run's page
    beside it (``<stem>-<run id>.html``, linked relatively both ways). Returns the files written,
    the main page first."""
    from stores.atomic import atomic_path

    out_file = Path(out_file)
    run_id = run_id or latest_run(store)
    run = store.get_run(run_id)
    pages: list[tuple[Path, str]] = []
    links: dict[str, str] = {}
    if run["kind"] == "pipeline":
        for _, rid in attribution_runs(store, run.get("config") or {}):
            name = report_file_name(out_file.stem, rid)
            links[rid] = name
            pages.append((out_file.with_name(name),
                          build_report(store, rid, top_k=top_k, up=(out_file.name, f"pipeline report {run_id}"))))
    pages.insert(0, (out_file, build_report(store, run_id, top_k=top_k, links=links)))
    for path, text in pages:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
    return [p for p, _ in pages]
