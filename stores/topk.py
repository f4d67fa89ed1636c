"""Each query's top (or bottom) k scores of a run, without sorting the whole table.

The window query (``QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= k``)
sorts every row; on a billion rows that is half a minute on 2 cores (bench/results/scale.json).
:func:`top_scores` gives the same answer in two scans that read little:

1. a cut per query: the k-th largest score of each query (``max(score, k)``, reading only
   ``query_id`` and ``score``). For a full pairwise run (every shard holds every query) it is
   taken on an evenly spaced tenth of the shards: the k-th largest of a subset is at most the
   k-th largest of all, so the cut is a safe lower bound; checked to cover every query k times;
2. the rows whose score is at least the lowest cut, a constant filter DuckDB pushes into the
   Parquet scan (the other columns are decoded only for the few rows that pass), ranked exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

from .catalog import Catalog
from .errors import QueryError
from .schema import sql_literal
from .shards import shard_paths

SUBSET_SHARE = 0.1


def top_scores(catalog: Catalog, run_id: str, k: int = 10, *, bottom: bool = False) -> pl.DataFrame:
    """Each query's ``k`` highest (``bottom``: lowest) scores of the finished run ``run_id``.

    Columns ``behaviour, query_id, sample_id, score``, ordered by query and rank; ties at the
    cut are broken by ``sample_id``. Equals the window query over the run's rows.
    """
    if k < 1:
        raise QueryError(f"k must be at least 1, got {k}")
    paths = shard_paths(catalog, "scores", run_id)
    if not paths:
        raise QueryError(f"no finished scores of run {run_id!r}")
    files = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
    with catalog.connect() as con:
        cuts = None
        config = _config(con, run_id)
        if len(paths) >= 10 and config.get("n_queries") and not config.get("prefilter"):
            step = max(1, math.floor(1 / SUBSET_SHARE))
            subset = "[" + ", ".join(sql_literal(p) for p in paths[::step]) + "]"
            cuts = _cuts(con, subset, k, bottom)
            if len(cuts) != config["n_queries"] or any(c is None for c in cuts.values()):
                cuts = None  # a query short of k rows in the subset: cut on every shard
        if cuts is None:
            cuts = _cuts(con, files, k, bottom)
        where = ""
        if cuts and all(c is not None for c in cuts.values()):  # a query with < k rows keeps every row
            bound = max(cuts.values()) if bottom else min(cuts.values())
            where = f"WHERE score {'<=' if bottom else '>='} {float(bound)!r}::FLOAT"
        order = "score ASC" if bottom else "score DESC"
        return con.sql(
            f"""SELECT behaviour, query_id, sample_id, score FROM read_parquet({files}) {where}
                QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY {order}, sample_id) <= {int(k)}
                ORDER BY query_id, {order}, sample_id""").pl()


def _cuts(con: Any, files: str, k: int, bottom: bool) -> dict[str, float | None]:
    """Each query's k-th largest (``bottom``: smallest) score over ``files`` (None: fewer than k rows)."""
    agg = "min" if bottom else "max"
    rows = con.execute(f"SELECT query_id, {agg}(score, {int(k)}) FROM read_parquet({files}) GROUP BY query_id").fetchall()
    return {q: (float(top[-1]) if len(top) >= k else None) for q, top in rows}


def _config(con: Any, run_id: str) -> dict[str, Any]:
    row = con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else {}
    except (TypeError, ValueError):
        return {}


__all__ = ["top_scores"]
