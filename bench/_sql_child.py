"""Child process of bench/sql_scores.py: time one query against a store, report memory.

Usage: python bench/_sql_child.py STORE_DIR MODE QUERY_NAME REPEATS

MODE is ``api`` (``store.sql``: opens the catalog read-only for each call, returns polars),
``duckdb`` (one ``duckdb.connect(catalog, read_only=True)`` reused for every run, ``.pl()``) or
``duckdb_fresh`` (a new read-only connection per run, connect included in the time). The first
run is the cold one (a fresh process: no DuckDB caches; the OS page cache may hold the files);
REPEATS warm runs follow. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import proc_status_kb, ru_maxrss_kb  # noqa: E402

QUERIES = {
    "Q1": "SELECT sample_id, sum(score) AS total FROM scores GROUP BY sample_id ORDER BY 2 LIMIT 100",
    "Q2": "SELECT query_id, sample_id, score FROM scores "
    "QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 10",
}


def main(argv: list[str]) -> None:
    store_dir, mode, qname, repeats = Path(argv[0]), argv[1], argv[2], int(argv[3])
    query = QUERIES[qname]

    import duckdb

    import stores

    after_import = proc_status_kb()
    store = stores.open(store_dir, create=False)
    catalog = str(store.catalog_path)
    con = duckdb.connect(catalog, read_only=True) if mode == "duckdb" else None
    probe = duckdb.connect(catalog, read_only=True)
    settings = dict(
        probe.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', 'memory_limit', "
            "'preserve_insertion_order', 'enable_external_file_cache', 'parquet_metadata_cache', "
            "'cache_local_files')"
        ).fetchall()
    )
    probe.close()

    times, n_rows = [], []
    for _ in range(1 + repeats):
        t0 = time.perf_counter()
        if mode == "api":
            df = store.sql(query)
        elif mode == "duckdb":
            df = con.sql(query).pl()
        elif mode == "duckdb_fresh":
            c = duckdb.connect(catalog, read_only=True)
            df = c.sql(query).pl()
            c.close()
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        times.append(time.perf_counter() - t0)
        n_rows.append(df.height)
    if con is not None:
        con.close()
    after = proc_status_kb()
    print(
        json.dumps(
            {
                "mode": mode,
                "query": qname,
                "times_s": times,
                "rows": n_rows,
                "duckdb_settings": settings,
                "rss_after_import_kb": after_import.get("VmRSS"),
                "peak_rss_kb": after.get("VmHWM"),
                "rss_end_kb": after.get("VmRSS"),
                "ru_maxrss_self_kb": ru_maxrss_kb(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
