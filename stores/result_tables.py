"""Results of runs in the fixed-schema shard tables: typed writers and readers of scores and flags.

Writers add one shard to a run (see :func:`stores.shards.write_shard`); readers see the rows of
finished runs only, through the tables' views.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .catalog import Catalog
from .shards import ShardInfo, write_shard
from .sql import sql


def write_scores(catalog: Catalog, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
    """Pairwise scores shard: columns behaviour, query_id, sample_id, score.

    Write rows sample-major (a training sample's scores for every query adjacent), as a shard
    of training samples x queries flattens naturally: a row group then holds ~1,200 distinct
    sample ids, which Parquet stores once in a dictionary. Query-major rows put ~10^5 in each
    row group, stored as plain strings (bench/sql_scores.py, variant ``query_major``).
    """
    return write_shard(catalog, "scores", run_id, data, shard)


def write_score_parts(catalog: Catalog, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
    """Score decomposition shard: behaviour, query_id, sample_id, module, position, token, score."""
    return write_shard(catalog, "score_parts", run_id, data, shard)


def write_self_scores(catalog: Catalog, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
    """Self-influence / per-sample statistic shard: columns sample_id, method, score."""
    return write_shard(catalog, "self_scores", run_id, data, shard)


def write_flags(catalog: Catalog, run_id: str, data: Any, shard: int | None = None) -> ShardInfo:
    """Filter output shard: columns filter, sample_id, score, flagged, reason."""
    return write_shard(catalog, "flags", run_id, data, shard)


def read_scores(catalog: Catalog, run_id: str | None = None, behaviour: str | None = None) -> pl.DataFrame:
    """Pairwise scores of finished runs, optionally of one run and/or behaviour."""
    return _read_table(catalog, "scores", run_id=run_id, behaviour=behaviour)


def read_score_parts(catalog: Catalog, run_id: str | None = None, behaviour: str | None = None) -> pl.DataFrame:
    """Per-module / per-token score decompositions of finished runs."""
    return _read_table(catalog, "score_parts", run_id=run_id, behaviour=behaviour)


def read_self_scores(catalog: Catalog, run_id: str | None = None, method: str | None = None) -> pl.DataFrame:
    """Self scores of finished runs, optionally of one run and/or method."""
    return _read_table(catalog, "self_scores", run_id=run_id, method=method)


def read_flags(catalog: Catalog, run_id: str | None = None, filter: str | None = None) -> pl.DataFrame:
    """Flags of finished runs, optionally of one run and/or filter."""
    return _read_table(catalog, "flags", run_id=run_id, filter=filter)


def _read_table(catalog: Catalog, table: str, **equals: Any) -> pl.DataFrame:
    """Rows of a shard table's view (finished runs) whose columns equal the non-None ``equals``."""
    conds, params = [], []
    for col, val in equals.items():
        if val is not None:
            conds.append(f'"{col}" = ?')
            params.append(val)
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return sql(catalog, f"SELECT * FROM {table}{where}", params)
