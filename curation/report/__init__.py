"""Reports: one self-contained HTML file per run (no network needed to open it).

A run's page shows its config and versions; for pairwise runs, each behaviour's most positive
and most negative training samples per query with their text, score and (when the run or a
token-scores run has them) per-token highlighting; score histograms for pairwise, self-score
and filter runs; flags with their trace text, reasons and a count per reason category; for a
pipeline run, that pipeline's own sections (for noisy CoT: the accuracy and detection tables
with ROC curves against the planted truth) and a pointer to its attribution runs' pages; and
the SQL that reproduces each table. Plots are inline SVG with labelled, ticked axes (a log
axis where positive values span decades and bunch at the low end).

:func:`build_report` renders one run; :func:`write_report` writes a run's page and, for a
pipeline run, its attribution runs' pages beside it, linked relatively.

Modules: :mod:`.html` (page machinery), :mod:`.plots` (SVG plots), :mod:`.sections` (sections
per kind of run), :mod:`.pages` (pages and the registry of pipelines' sections); a pipeline's
own sections live with the pipeline (``curation.pipelines.<name>.report``).
"""

from .html import CSS, EVIDENCE_LABELS, SELF_CHECK, label, render_page, trace_cell
from .pages import (
    DEFAULT_PIPELINE,
    PIPELINE_SECTIONS,
    attribution_runs,
    build_report,
    latest_run,
    pipeline_sections,
    register_sections,
    report_file_name,
    write_report,
)
from .plots import histogram_svg, linear_ticks, log_ticks, roc_svg, use_log_scale
from .sections import METHOD_AXES, reason_category_sql

__all__ = [
    "CSS",
    "DEFAULT_PIPELINE",
    "EVIDENCE_LABELS",
    "METHOD_AXES",
    "PIPELINE_SECTIONS",
    "SELF_CHECK",
    "attribution_runs",
    "build_report",
    "histogram_svg",
    "label",
    "latest_run",
    "linear_ticks",
    "log_ticks",
    "pipeline_sections",
    "reason_category_sql",
    "register_sections",
    "render_page",
    "report_file_name",
    "roc_svg",
    "trace_cell",
    "use_log_scale",
    "write_report",
]
