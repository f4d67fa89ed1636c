"""SQL over a large ``scores`` table: two typical queries through store.sql and plain DuckDB.

    python bench/sql_scores.py                                  # full size: 10^6 samples x 100 queries
    python bench/sql_scores.py --samples 100000 --queries 10    # quick check

Builds a store with one finished ``attribute`` run whose ``scores`` shards (one per
--queries-per-shard queries) are written by DuckDB ``COPY ... TO`` into the run's shard folder
(temp name, then rename), then times each query in its own child process: 1 cold + --repeats warm
runs, for each mode (store.sql, plain DuckDB with one connection, plain DuckDB with a fresh
connection per run). Writes bench/results/sql.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from _common import (  # noqa: E402
    BENCH_DIR,
    RESULTS_DIR,
    WORK_DIR,
    dir_bytes,
    fresh_dir,
    machine_info,
    mb,
    mib_from_kb,
    now_iso,
    print_table,
    rel,
    remove_work,
    run_child,
    write_result,
)
from _sql_child import QUERIES  # noqa: E402

import stores  # noqa: E402
from stores.schema import SHARD_SCHEMAS, sql_literal  # noqa: E402

TARGET_SECONDS = 2.0
MODES = {
    "api": "store.sql(query): opens catalog.duckdb read-only per call, returns polars",
    "duckdb": "duckdb.connect(catalog, read_only=True) once, con.sql(query).pl() per run",
    "duckdb_fresh": "duckdb.connect(catalog, read_only=True) per run (connect timed), .pl()",
}


def query_id(q: int) -> str:
    return hashlib.sha256(f"query-{q}".encode()).hexdigest()[:32]


def shard_sql(run_id: str, behaviour: str, args: argparse.Namespace, k: int) -> str:
    """SELECT producing shard ``k`` of the scores table.

    ``train-shards`` (default, what the engine writes): shard k holds a block of training samples
    against every query, sample-major (a sample's scores for all queries are adjacent).
    ``query-shards``: shard k holds a block of queries against every sample, query-major.
    sample_id = sha256(str(i))[:32]; query_id = sha256('query-<q>')[:32]; score is a float32 in
    [-1, 1) from DuckDB's hash() of (row, seed), deterministic for a given DuckDB version.
    """
    n, nq = args.samples, args.queries
    qids = "[" + ", ".join(sql_literal(query_id(q)) for q in range(nq)) + "]"
    if args.layout == "train-shards":
        s0, s1 = k * args.samples_per_shard, min((k + 1) * args.samples_per_shard, n)
        rows, sample, query = f"range({s0 * nq}, {s1 * nq})", f"r // {nq}", f"r % {nq}"
    else:
        q0, q1 = k * args.queries_per_shard, min((k + 1) * args.queries_per_shard, nq)
        rows, sample, query = f"range({q0 * n}, {q1 * n})", f"r % {n}", f"r // {n}"
    return f"""
        SELECT {sql_literal(run_id)}::VARCHAR AS run_id,
               {sql_literal(behaviour)}::VARCHAR AS behaviour,
               ({qids})[1 + ({query})::BIGINT] AS query_id,
               sha256(({sample})::VARCHAR)[:32] AS sample_id,
               ((hash(r, {args.seed}) % 16777216)::DOUBLE / 8388608 - 1)::FLOAT AS score
        FROM {rows} t(r)"""


def n_shards(args: argparse.Namespace) -> int:
    """How many shards the chosen layout makes."""
    if args.layout == "train-shards":
        return -(-args.samples // args.samples_per_shard)
    return -(-args.queries // args.queries_per_shard)


def build_store(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    store = stores.open(work / "store")
    config = {
        "benchmark": "bench/sql_scores.py",
        "samples": args.samples,
        "queries": args.queries,
        "queries_per_shard": args.queries_per_shard,
        "samples_per_shard": args.samples_per_shard,
        "layout": args.layout,
    }
    run_id = store.start_run("attribute", config=config, seed=args.seed)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {sql_literal(args.gen_memory_limit)}")
    con.execute(f"SET temp_directory = {sql_literal(str(work / 'duckdb-tmp'))}")
    shards = []
    t_all = time.perf_counter()
    try:
        for k in range(n_shards(args)):
            target = store.shard_path("scores", run_id, k)
            t0 = time.perf_counter()
            with store.shard_target("scores", run_id, k) as tmp:
                con.execute(
                    f"COPY ({shard_sql(run_id, args.behaviour, args, k)}) "
                    f"TO {sql_literal(str(tmp))} (FORMAT parquet, COMPRESSION {args.compression})"
                )
            seconds = time.perf_counter() - t0
            meta = pq.read_metadata(target)
            shards.append(
                {
                    "shard": k,
                    "rows": meta.num_rows,
                    "row_groups": meta.num_row_groups,
                    "bytes": target.stat().st_size,
                    "seconds": seconds,
                }
            )
            print(
                f"  shard {k} ({args.layout}): {meta.num_rows:,} rows, "
                f"{target.stat().st_size / 1e6:,.0f} MB, {seconds:.1f} s"
            )
    except BaseException:
        con.close()
        store.fail_run(run_id, "benchmark data generation failed")
        raise
    con.close()
    gen_s = time.perf_counter() - t_all

    # the shards must match the store's schema for `scores` (names and types; nullability aside)
    want = SHARD_SCHEMAS["scores"]
    got = pq.read_schema(store.shard_path("scores", run_id, 0))
    mismatch = [
        (f.name, str(f.type), str(got.field(f.name).type) if f.name in got.names else None)
        for f in want
        if f.name not in got.names or got.field(f.name).type != f.type
    ]
    if mismatch or got.names != want.names:
        store.fail_run(run_id, "schema mismatch")
        raise RuntimeError(
            f"generated shards do not match SHARD_SCHEMAS['scores']: {mismatch} {got}"
        )

    t0 = time.perf_counter()
    registered = store.finish_run(run_id)
    finish_s = time.perf_counter() - t0
    n = store.sql("SELECT count(*) AS n FROM scores")["n"][0]
    expected = args.samples * args.queries
    if n != expected or len(registered) != len(shards):
        raise RuntimeError(
            f"scores view has {n} rows / {len(registered)} shards; expected {expected} / {len(shards)}"
        )
    return {
        "store": rel(store.root),
        "run_id": run_id,
        "rows": int(n),
        "samples": args.samples,
        "queries": args.queries,
        "shards": shards,
        "n_shards": len(shards),
        "bytes": sum(s["bytes"] for s in shards),
        "row_groups": sum(s["row_groups"] for s in shards),
        "compression": args.compression,
        "row_group_size": "DuckDB COPY default",
        "layout": args.layout,
        "layout_means": (
            "each shard holds samples_per_shard training samples x all queries, sample-major"
            if args.layout == "train-shards"
            else "each shard holds queries_per_shard queries x all samples, query-major"
        ),
        "schema": str(got).replace("\n", "; "),
        "generate_s": gen_s,
        "finish_run_s": finish_s,
        "catalog_bytes": dir_bytes(store.catalog_path),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--samples", type=int, default=1_000_000, help="distinct sample ids (default 1,000,000)"
    )
    p.add_argument("--queries", type=int, default=100, help="distinct query ids (default 100)")
    p.add_argument(
        "--queries-per-shard", type=int, default=10, help="queries per Parquet shard (default 10)"
    )
    p.add_argument(
        "--samples-per-shard",
        type=int,
        default=100_000,
        help="training samples per shard with --layout train-shards (default 100,000)",
    )
    p.add_argument(
        "--layout",
        choices=("train-shards", "query-shards"),
        default="train-shards",
        help="train-shards: shards of training samples, sample-major rows, as the engine writes "
        "them (default); query-shards: shards of queries, query-major rows",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="warm runs after the cold one (default 3)"
    )
    p.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}"
    )
    p.add_argument(
        "--compression",
        default="snappy",
        help="Parquet compression of the shards (default snappy, as the store writes them)",
    )
    p.add_argument(
        "--gen-memory-limit",
        default="4GB",
        help="DuckDB memory_limit while generating (default 4GB)",
    )
    p.add_argument("--behaviour", default="bench")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "sql.json",
        help="result JSON (default bench/results/sql.json)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=WORK_DIR / "sql",
        help="scratch folder (default bench/work/sql)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated store")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.modes or any(m not in MODES for m in args.modes):
        p.error(f"--modes: choose from {', '.join(MODES)}")
    if min(args.samples, args.queries, args.queries_per_shard) <= 0 or args.repeats < 1:
        p.error("--samples, --queries, --queries-per-shard and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = fresh_dir(args.work_dir.resolve())
    result: dict[str, Any] = {
        "benchmark": "sql_scores",
        "created_at": now_iso(),
        "machine": machine_info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "target": {
            "max_seconds": TARGET_SECONDS,
            "cores": 2,
            "judged_on": "warm median through store.sql (mode api)",
        },
    }
    try:
        print(
            f"generating scores: {args.samples:,} samples x {args.queries:,} queries "
            f"= {args.samples * args.queries:,} rows"
        )
        data = build_store(args, work)
        result["data"] = data
        print_table(
            "scores table",
            ["rows", "shards", "row groups", "MB", "generate s", "finish_run s"],
            [
                [
                    data["rows"],
                    data["n_shards"],
                    data["row_groups"],
                    mb(data["bytes"]),
                    data["generate_s"],
                    data["finish_run_s"],
                ]
            ],
        )

        runs: dict[str, dict[str, Any]] = {}
        store_dir = work / "store"
        for qname, query in QUERIES.items():
            runs[qname] = {"sql": query, "modes": {}}
            for mode in args.modes:
                print(f"  {qname} {mode} ...", flush=True)
                child = run_child(
                    [
                        str(BENCH_DIR / "_sql_child.py"),
                        str(store_dir),
                        mode,
                        qname,
                        str(args.repeats),
                    ],
                    work / f"{qname}-{mode}.log",
                )
                times = child["times_s"]
                warm = times[1:]
                runs[qname]["modes"][mode] = {
                    "how": MODES[mode],
                    "cold_s": times[0],
                    "warm_s": warm,
                    "warm_median_s": statistics.median(warm),
                    "warm_min_s": min(warm),
                    "rows_returned": child["rows"][0],
                    "peak_rss_mib": mib_from_kb(child["peak_rss_kb"]),
                    "rss_after_import_mib": mib_from_kb(child["rss_after_import_kb"]),
                    "polled_peak_rss_mib": child["parent"]["polled_peak_rss_bytes"] / 2**20,
                    "ru_maxrss_self_mib_unreliable": mib_from_kb(child["ru_maxrss_self_kb"]),
                    "duckdb_settings": child["duckdb_settings"],
                }
            expected_rows = {
                "Q1": min(100, args.samples),
                "Q2": args.queries * min(10, args.samples),
            }[qname]
            for mode, r in runs[qname]["modes"].items():
                if r["rows_returned"] != expected_rows:
                    raise RuntimeError(
                        f"{qname} {mode} returned {r['rows_returned']} rows, expected {expected_rows}"
                    )
        result["queries"] = runs
        result["peak_rss_note"] = (
            "peak RSS is the child's VmHWM (/proc/self/status) after its runs; each (query, mode) "
            "runs in its own child so generation memory does not count. getrusage ru_maxrss is "
            "kept as *_unreliable: on Linux a child's maxrss starts at its parent's peak RSS."
        )
        result["cold_note"] = (
            "cold = first run in a fresh process (no DuckDB caches); the OS page cache is not "
            "dropped, so the shard files are likely in memory"
        )
        api = {q: runs[q]["modes"].get("api") for q in runs}
        result["target"]["results"] = {
            q: None
            if r is None
            else {
                "warm_median_s": r["warm_median_s"],
                "cold_s": r["cold_s"],
                "met": r["warm_median_s"] < TARGET_SECONDS,
            }
            for q, r in api.items()
        }
        result["target"]["met"] = (
            None
            if any(r is None for r in api.values())
            else all(r["warm_median_s"] < TARGET_SECONDS for r in api.values())
        )

        print_table(
            f"queries over {data['rows']:,} score rows (cold + {args.repeats} warm, each in a fresh process)",
            ["query", "mode", "cold s", "warm median s", "warm min s", "rows", "peak RSS MiB"],
            [
                [
                    q,
                    mode,
                    r["cold_s"],
                    r["warm_median_s"],
                    r["warm_min_s"],
                    r["rows_returned"],
                    r["peak_rss_mib"],
                ]
                for q in runs
                for mode, r in runs[q]["modes"].items()
            ],
        )
        for q, r in result["target"]["results"].items():
            if r is not None:
                print(
                    f"target {q} < {TARGET_SECONDS:g} s (warm median, store.sql): "
                    f"{r['warm_median_s']:.3f} s -> {'MET' if r['met'] else 'NOT MET'}"
                )
        print()
    finally:
        result["finished_at"] = now_iso()
        remove_work(work, args.keep)
    write_result(args.out, result)
    print(f"wrote {rel(args.out)}")
    return result


if __name__ == "__main__":
    main()
