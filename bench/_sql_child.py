"""Child process of bench/sql_scores.py: time one query against a store, report memory.

Usage: python bench/_sql_child.py STORE_DIR MODE QUERY_NAME REPEATS

MODE is ``api`` (``store.sql``: opens the catalog read-only for each call, returns polars),
``duckdb`` (one ``duckdb.connect(catalog, read_only=True)`` reused for every run, ``.pl()``) or
``duckdb_fresh`` (a new read-only connection per run, connect included in the time). The first
run is the cold one (a fresh process: no DuckDB caches; the OS page cache may hold the files);
REPEATS warm runs follow. Each run's wall time and this process's CPU time (all threads; less
sensitive to other load on the machine) are reported. Prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import proc_status_kb, ru_maxrss_kb  # noqa: E402

QUERIES = {
    "Q0": "SELECT count(*) AS n FROM scores",
    "Q1": "SELECT sample_id, sum(score) AS total FROM scores GROUP BY sample_id ORDER BY 2 LIMIT 100",
    "Q2": "SELECT query_id, sample_id, score FROM scores "
    "QUALIFY row_number() OVER (PARTITION BY query_id ORDER BY score DESC) <= 10",
    # Q2's answer with a top-n aggregate instead of a window: no sort of the whole table
    "Q2b": "SELECT query_id, top.sample_id, top.score FROM (SELECT query_id, "
    "unnest(max_by(struct_pack(sample_id, score), score, 10)) AS top FROM scores GROUP BY query_id)",
    # Q2's answer from the store's API (stores.topk: a cut per query, then a pushed-down filter);
    # mode api only, on a store with one scores run
    "Q2api": "store.top_scores(<the run>, 10)",
}
API_QUERIES = ("Q2api",)
# the target is judged on Q1 and Q2; Q0 is a probe: answered from the Parquet footers, it shows
# what opening the shards costs
TARGET_QUERIES = ("Q1", "Q2")
# what identifies an answer: key columns (hashed exactly, sorted) and a value column (summed)
ANSWER_COLUMNS = {
    "Q0": ([], "n"),
    "Q1": (["sample_id"], "total"),
    "Q2": (["query_id", "score"], "score"),
    "Q2b": (["query_id", "score"], "score"),
    "Q2api": (["query_id", "score"], "score"),
}


def answer(qname: str, df) -> dict:
    """A fingerprint of a query's answer, comparable across layouts: ties may pick other rows
    with equal keys, and sums may differ in the last bits with the summation order."""
    keys, value = ANSWER_COLUMNS[qname]
    rows = sorted(map(repr, df.select(keys).rows())) if keys else []
    return {
        "keys_sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
        "value_sum": float(df[value].sum()),
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

    times, cpu, n_rows = [], [], []
    for _ in range(1 + repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        if qname in API_QUERIES:
            if mode != "api":
                raise SystemExit(f"{qname} is an API call: mode api only")
            run_id = store.sql("SELECT DISTINCT run_id FROM scores")["run_id"].to_list()
            if len(run_id) != 1:
                raise SystemExit(f"{qname} needs a store with one scores run, found {len(run_id)}")
            df = store.top_scores(run_id[0], 10)
        elif mode == "api":
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
        cpu.append(time.process_time() - c0)
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
                "cpu_s": cpu,
                "rows": n_rows,
                "answer": answer(qname, df),
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
