"""The end-to-end demo on a bundled dataset: ingest -> SQL -> flag -> curate -> export.

Until the influence filters land, the flagging step is a plain arithmetic check (it recomputes
each answer); it stands in for a filter to show the whole flags -> curated -> audit path.
"""

from __future__ import annotations

import re
import time
from importlib import resources
from pathlib import Path

import polars as pl
from rich.console import Console

import stores
from stores.curate import curate
from stores.export import export
from stores.ingest import ingest

EXAMPLE = "arith.jsonl"
_PROBLEM = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*$")


def example_path() -> Path:
    """Path of the bundled example dataset (630 arithmetic prompt/completion pairs)."""
    return Path(str(resources.files("curation") / "examples" / EXAMPLE))


def arithmetic_flags(samples: pl.DataFrame) -> pl.DataFrame:
    """Flag samples whose completion is not the value of the prompt's expression, with a reason."""
    rows = []
    for sid, prompt, completion in samples.select("sample_id", "prompt", "completion").iter_rows():
        m = _PROBLEM.match(prompt)
        if not m:
            rows.append((sid, 1.0, True, f"prompt {prompt!r} is not 'a op b ='"))
            continue
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        truth = {"+": a + b, "-": a - b, "*": a * b}[op]
        try:
            given = int(completion.strip())
        except ValueError:
            rows.append((sid, 1.0, True, f"completion {completion.strip()!r} is not an integer"))
            continue
        bad = given != truth
        reason = f"answer {given} != {a} {op} {b} = {truth}" if bad else "answer checks out"
        rows.append((sid, float(abs(given - truth)), bad, reason))
    return pl.DataFrame(
        rows, schema={"sample_id": pl.String, "score": pl.Float64, "flagged": pl.Boolean, "reason": pl.String},
        orient="row",
    ).with_columns(pl.lit("arithmetic_check").alias("filter"))


def run_demo(store_path: Path, console: Console) -> stores.Store:
    """Run every step on the bundled example and print what a user would look at next."""
    t0 = time.perf_counter()
    store = stores.open(store_path)
    console.rule("[bold]curation demo")
    res = ingest(store, example_path(), "arith", replace=True)
    console.print(
        f"1. ingested {res.n_rows_read} rows -> dataset [bold]arith[/] "
        f"({res.n_duplicates} exact duplicates found, kept)"
    )
    by_op = store.sql(
        "SELECT op, count(*) AS n, round(avg(planted_error::INT), 3) AS planted_error_rate "
        "FROM samples WHERE dataset = 'arith' GROUP BY op ORDER BY op"
    )
    console.print("2. SQL over the samples:")
    _show(console, by_op)

    samples = store.read_samples("arith")
    with store.run("filter", dataset="arith", config={"filter": "arithmetic_check"}, seed=0) as run:
        run.write("flags", arithmetic_flags(samples))
    n_flag = store.sql(
        "SELECT count(DISTINCT sample_id) AS n FROM flags WHERE run_id = ? AND flagged", [run.id]
    )["n"][0]
    console.print(f"3. filter run {run.id}: {n_flag} samples flagged (arithmetic check)", soft_wrap=True)

    cur = curate(store, "arith-curated", "arith", flag_runs=[run.id], replace=True)
    console.print(f"4. curated dataset [bold]arith-curated[/]: kept {cur.n_kept} rows, dropped {cur.n_dropped} (flagged ids and their duplicates)")
    check = store.sql(
        """SELECT d.name, count(*) AS n, count_if(s.planted_error) AS planted_errors_left
           FROM datasets d JOIN samples s ON s.dataset = d.name GROUP BY d.name ORDER BY d.name"""
    )
    _show(console, check)

    out = store.root / "exports" / "arith-curated.jsonl"
    n = export(store, "arith-curated", out)
    console.print(f"5. exported {n} samples to {out}", soft_wrap=True)
    console.print(f"done in {time.perf_counter() - t0:.1f} s; store at {store.root}")
    console.print("Try:")
    for q in (
        "SELECT * FROM curated_drops LIMIT 5",
        "SELECT f.reason, s.prompt, s.completion FROM flags f JOIN samples s USING (sample_id) "
        "WHERE f.flagged AND s.dataset = 'arith' LIMIT 5",
        "SELECT run_id, kind, status, created_at FROM runs ORDER BY created_at",
    ):
        console.print(f'  curation sql --store {store_path} "{q}"', markup=False, highlight=False, soft_wrap=True)
    return store


def _show(console: Console, df: pl.DataFrame) -> None:
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        console.print(str(df), markup=False, highlight=False, soft_wrap=True)
