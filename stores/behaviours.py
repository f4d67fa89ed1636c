"""Behaviours: named query sets (sample ids of one dataset) with the measurement they stand for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .catalog import Catalog
from .datasets import dataset_files_in, dataset_info
from .errors import StoreError
from .names import validate_name
from .records import first_row, utcnow
from .schema import sql_literal
from .sql import sql


def add_behaviour(
    catalog: Catalog,
    name: str,
    dataset: str,
    measurement: str,
    query_ids: Iterable[str] | None = None,
    description: str = "",
    replace: bool = False,
) -> None:
    """Register a behaviour: a named query set (sample ids of ``dataset``) and its measurement.

    ``query_ids`` defaults to every sample of the dataset; unknown ids are an error.
    """
    validate_name(name, "behaviour")
    dataset_info(catalog, dataset)
    with catalog.write() as con:
        files = dataset_files_in(catalog, con, dataset)
        src = f"read_parquet([{', '.join(sql_literal(f) for f in files)}])"
        if query_ids is None:
            ids = [r[0] for r in con.execute(f"SELECT sample_id FROM {src} ORDER BY ordinal").fetchall()]
        else:
            ids = list(query_ids)
            con.execute("CREATE OR REPLACE TEMP TABLE _wanted AS SELECT unnest(?::VARCHAR[]) AS sample_id", [ids])
            missing = con.execute(
                f"SELECT sample_id FROM _wanted WHERE sample_id NOT IN (SELECT sample_id FROM {src}) LIMIT 5"
            ).fetchall()
            con.execute("DROP TABLE _wanted")
            if missing:
                raise StoreError(
                    f"behaviour {name!r}: query ids not in dataset {dataset!r}: "
                    + ", ".join(m[0] for m in missing)
                )
        exists = first_row(con.execute("SELECT 1 FROM behaviours WHERE name = ?", [name]).fetchall())
        if exists and not replace:
            raise StoreError(f"behaviour {name!r} exists; pass replace=True to overwrite it")
        con.execute("DELETE FROM behaviours WHERE name = ?", [name])
        con.execute(
            "INSERT INTO behaviours VALUES (?, ?, ?, ?, ?, ?)",
            [name, dataset, ids, measurement, description, utcnow()],
        )


def behaviour(catalog: Catalog, name: str) -> dict[str, Any]:
    """One behaviour's record (name, dataset, query_ids, measurement, description)."""
    df = sql(catalog, "SELECT * FROM behaviours WHERE name = ?", [name])
    if df.height == 0:
        known = sql(catalog, "SELECT name FROM behaviours ORDER BY name")["name"].to_list()
        raise StoreError(f"no behaviour {name!r}; known: {', '.join(known) or '(none)'}")
    return df.row(0, named=True)
