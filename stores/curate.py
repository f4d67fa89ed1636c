"""Materialise a curated dataset: a parent dataset minus flagged samples (and/or a predicate).

The curated samples are written as their own shards and registered as a dataset; every dropped
sample is recorded in ``curated_drops`` with the reasons of the flags that removed it, so each
curation has an audit trail in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import duckdb
import pyarrow as pa

from .dataset_writer import (
    DATASET_RUN_KINDS,
    DEFAULT_BATCH_ROWS,
    discard_dead_runs,
    register_dataset,
    write_dataset_shards,
)
from .edits import apply_edits, edits_by_sample
from .errors import DatasetExistsError, QueryError, StoreError
from .export import dataset_relation
from .names import validate_name
from .progress import StepProgress
from .records import utcnow
from .schema import sql_literal
from .store import Store


@dataclass
class CurateResult:
    """What a curation kept and dropped, and which flag runs it used."""

    name: str
    parent: str
    run_id: str
    n_kept: int
    n_dropped: int
    flag_runs: list[str]
    predicate: str | None

    def as_dict(self) -> dict:
        """Plain dict (for JSON output)."""
        return asdict(self)


def _flag_runs(store: Store, parent: str, flag_runs: Sequence[str] | None, filters: Sequence[str] | None) -> list[str]:
    if flag_runs is not None:  # an explicit list, possibly empty (no flags: a ``where`` alone)
        if not flag_runs:
            return []
        df = store.sql(
            "SELECT run_id, status FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [list(flag_runs)]
        )
        status = dict(zip(df["run_id"].to_list(), df["status"].to_list(), strict=True))
        for run in flag_runs:
            if run not in status:
                raise StoreError(f"no run {run!r} in {store.root}")
            if status[run] != "finished":
                raise StoreError(f"run {run!r} is {status[run]}, not finished; its flags are not usable")
        return list(flag_runs)
    query = """SELECT DISTINCT f.run_id FROM flags f JOIN runs r USING (run_id)
               WHERE r.dataset = ?"""
    params: list = [parent]
    if filters:
        query += " AND f.filter IN (SELECT unnest(?::VARCHAR[]))"
        params.append(list(filters))
    return sorted(store.sql(query + " ORDER BY 1", params)["run_id"].to_list())


def curate(
    store: Store,
    name: str,
    parent: str,
    *,
    flag_runs: Sequence[str] | None = None,
    filters: Sequence[str] | None = None,
    where: str | None = None,
    replace: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool = False,
    drops: pa.Table | None = None,
    edits: pa.Table | None = None,
    separator: str = "\n\n",
    extra_config: dict | None = None,
) -> CurateResult:
    """Create dataset ``name`` = ``parent`` minus samples flagged by the chosen flag runs.

    Flag runs default (``None``) to every finished run with flags whose dataset is ``parent``
    (optionally only rows of the named ``filters``); ``[]`` applies no flags (``where`` alone). ``where`` is a SQL predicate a sample must also satisfy
    to be kept. Registered in ``datasets`` and ``curated``; drops go to ``curated_drops``.

    ``drops`` (columns sample_id, reason) drops more samples with their reasons; ``edits``
    (sample_id, field, start, end, reason) cuts spans out of the kept samples' text fields
    (:mod:`stores.edits`: the pieces left are joined by ``separator``, an edited sample gets a
    new id), audited in ``curated_edits``. ``extra_config`` is recorded in the run's config.
    """
    validate_name(name)
    if name == parent:
        raise StoreError("a curated dataset needs a new name (it cannot replace its parent)")
    parent_info = store.dataset_info(parent)
    if not replace and store.sql("SELECT 1 FROM datasets WHERE name = ?", [name]).height:
        raise DatasetExistsError(f"dataset {name!r} already exists; pass --replace to overwrite it")
    runs = _flag_runs(store, parent, flag_runs, filters)
    text_fields = {f["name"] for f in parent_info["fields"] if str(f.get("type") or "VARCHAR").upper() == "VARCHAR"}
    edit_map = edits_by_sample(edits, text_fields)
    if drops is not None and not {"sample_id", "reason"} <= set(drops.column_names):
        raise StoreError("drops need columns sample_id and reason")
    if not runs and not where and not edit_map and (drops is None or drops.num_rows == 0):
        raise StoreError(
            f"nothing to curate: no finished filter runs with flags for dataset {parent!r}; "
            "run a filter first or pass --where"
        )
    config = {"parent": parent, "flag_runs": runs, "filters": list(filters or []), "where": where,
              "n_extra_drops": 0 if drops is None else drops.num_rows, "n_edited": len(edit_map),
              **(extra_config or {})}
    with store.run(
        "curate", config=config, dataset=name, parent_run=parent_info["run_id"], all_or_nothing=True
    ) as run:
        discard_dead_runs(store, DATASET_RUN_KINDS)
        with store.connect() as con:
            src = dataset_relation(store, con, parent)
            filt = " AND filter IN (SELECT unnest($filters::VARCHAR[]))" if filters else ""
            con.register("_extra_drops", drops.select(["sample_id", "reason"]) if drops is not None
                         else pa.table({"sample_id": pa.array([], pa.string()), "reason": pa.array([], pa.string())}))
            drop_sql_rows = (
                "SELECT sample_id, filter || ' [' || run_id || ']: ' || reason AS r, filter AS o "
                f"FROM flags WHERE flagged AND run_id IN (SELECT unnest($runs::VARCHAR[])){filt} "
                "UNION ALL SELECT sample_id, reason AS r, '' AS o FROM _extra_drops"
            )
            drop_reasons = f"SELECT sample_id, string_agg(r, '; ' ORDER BY o) AS _flag_reason FROM ({drop_sql_rows}) GROUP BY sample_id"
            keep = f"coalesce(({where}), false)" if where else "true"
            base = (
                f"WITH drops AS ({drop_reasons}), parent AS (SELECT * FROM {src}) "
                f"SELECT p.*, d._flag_reason, {keep} AS _keep FROM parent p "
                "LEFT JOIN drops d USING (sample_id)"
            )
            params = {"runs": runs} | ({"filters": list(filters)} if filters else {})
            kept_sql = (
                "SELECT * EXCLUDE (dataset, ordinal, _flag_reason, _keep) "
                f"FROM ({base}) WHERE _flag_reason IS NULL AND _keep ORDER BY ordinal"
            )
            pred_reason = sql_literal(f"excluded by predicate: {where}") if where else "NULL"
            drop_sql = (
                f"SELECT sample_id, concat_ws('; ', _flag_reason, CASE WHEN NOT _keep THEN {pred_reason} END) AS reason "
                f"FROM ({base}) WHERE _flag_reason IS NOT NULL OR NOT _keep ORDER BY ordinal"
            )
            try:
                audit: list[dict] = []
                with StepProgress(f"curate {name}", enabled=progress) as bar:
                    reader = con.sql(kept_sql, params=params).to_arrow_reader(100_000)
                    batches = (apply_edits(b, edit_map, separator, audit) for b in reader)
                    _, n_kept, n_dup, fingerprint = write_dataset_shards(
                        store, run.id, name, batches, batch_rows=batch_rows, progress=bar,
                        source_label=f"dataset {parent}",
                    )
                if audit:
                    table = pa.Table.from_pylist(audit)
                    table = table.add_column(0, "curated", pa.array([name] * table.num_rows, pa.string()))
                    run.write("curated_edits", table, shard=0)
                n_dropped = 0
                shard = 0
                for batch in con.sql(drop_sql, params=params).to_arrow_reader(batch_rows):
                    if batch.num_rows == 0:
                        continue
                    table = pa.Table.from_batches([batch])
                    table = table.add_column(1, "curated", pa.array([name] * table.num_rows, pa.string()))
                    run.write("curated_drops", table, shard=shard)
                    shard += 1
                    n_dropped += table.num_rows
            except duckdb.Error as exc:
                raise store.translate_error(exc) or QueryError(
                    f"curation of {parent!r} failed: {exc}" + (f"\n  --where was: {where}" if where else "")) from exc
        with store.write() as con:
            superseded = register_dataset(
                store, run, name, source=f"curated:{parent}", n_samples=n_kept, n_duplicates=n_dup,
                fields=parent_info["fields"], fingerprint=fingerprint, replace=replace,
            )
            con.execute("DELETE FROM curated WHERE name = ?", [name])
            con.execute(
                "INSERT INTO curated VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [name, parent, utcnow(), runs, where, n_kept, n_dropped, run.id],
            )
    if superseded:
        store.delete_run_files(superseded)
    return CurateResult(name, parent, run.id, n_kept, n_dropped, runs, where)
