"""SQL over a large ``scores`` table: typical queries through store.sql and plain DuckDB.

    python bench/sql_scores.py                                  # full size: 10^6 samples x 100 queries
    python bench/sql_scores.py --samples 100000 --queries 10    # quick check

Builds a store with one finished ``attribute`` run whose ``scores`` shards are laid out as the
influence engine writes them: one shard per ``--samples-per-shard`` training samples (default:
``attribution.engine.EngineConfig.shard_size``, read from the engine so the two cannot drift)
against every query, sample-major, each written by ``Store.write_scores`` (DuckDB's Parquet
writer, snappy). Then times each query in its own child process: 1 cold + --repeats warm runs,
for each mode (store.sql, plain DuckDB with one connection, plain DuckDB with a fresh connection
per run). The same table is then rebuilt in other layouts (``--variants``: the old
100,000-samples-per-shard layout, query-major rows, zstd, pyarrow's writer, ...) and timed the
same way, each in its own store, deleted before the next. Writes bench/results/sql.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
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
    add_provenance_args,
    dir_bytes,
    fresh_dir,
    machine_info,
    mb,
    mib_from_kb,
    now_iso,
    print_table,
    rel,
    remove_work,
    require_clean_tree,
    run_child,
    write_result,
)
from _sql_child import API_QUERIES, QUERIES, TARGET_QUERIES  # noqa: E402

import stores  # noqa: E402
from stores.atomic import write_parquet_atomic, write_parquet_atomic_duckdb  # noqa: E402
from stores.schema import SHARD_SCHEMAS, sql_literal  # noqa: E402
from stores.store import conform  # noqa: E402

TARGET_SECONDS = 2.0
DEFAULT_VARIANTS = "samples_100k,query_major@100k,zstd@100k,pyarrow_writer@100k"
MODES = {
    "api": "store.sql(query): opens catalog.duckdb read-only per call, returns polars",
    "duckdb": "duckdb.connect(catalog, read_only=True) once, con.sql(query).pl() per run",
    "duckdb_fresh": "duckdb.connect(catalog, read_only=True) per run (connect timed), .pl()",
}
WRITERS = {
    "store": "Store.write_scores(run_id, arrow_table, shard=k): DuckDB's Parquet writer "
    "(COPY of the Arrow table, DuckDB's default row groups), what the engine calls",
    "duckdb": "stores.atomic.write_parquet_atomic_duckdb(conform(arrow_table), path, compression): "
    "the same writer as 'store' with another codec",
    "pyarrow": "stores.atomic.write_parquet_atomic(conform(arrow_table), path, compression=...): "
    "pyarrow.parquet.write_table with its default row groups",
}


def engine_shard_size() -> int:
    """Training samples per ``scores`` shard that the influence engine writes by default."""
    from attribution.engine import EngineConfig

    return next(f.default for f in dataclasses.fields(EngineConfig) if f.name == "shard_size")


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the same logical ``scores`` table is cut into shards, ordered and encoded."""

    order: str  # "sample-major" (shards of training samples) or "query-major" (shards of queries)
    samples_per_shard: int
    queries_per_shard: int
    compression: str = "snappy"
    writer: str = "store"

    def n_shards(self, samples: int, queries: int) -> int:
        if self.order == "sample-major":
            return -(-samples // self.samples_per_shard)
        return -(-queries // self.queries_per_shard)

    def describe(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.order == "sample-major":
            out.pop("queries_per_shard")
            out["means"] = (
                f"each shard holds {self.samples_per_shard:,} training samples x all queries, "
                "rows sample-major (a sample's scores for every query adjacent)"
            )
        else:
            out.pop("samples_per_shard")
            out["means"] = (
                f"each shard holds {self.queries_per_shard:,} queries x all training samples, "
                "rows query-major (a query's scores for every sample adjacent)"
            )
        out["means"] += f"; {self.compression}; writer: {WRITERS[self.writer]}"
        return out


def count(text: str) -> int:
    """``100000``, ``100_000``, ``100k`` or ``1M``."""
    m = re.fullmatch(r"([0-9_]+)([kM]?)", text)
    if not m:
        raise ValueError(f"{text!r} is not a count (e.g. 100000, 100k, 1M)")
    return int(m.group(1)) * {"": 1, "k": 1000, "M": 1_000_000}[m.group(2)]


def variant_layout(name: str, main: Layout) -> tuple[Layout, str]:
    """The layout a ``--variants`` name stands for and what it tests (see bench/README.md)."""
    if name == "main":
        return main, "the main layout: the reference of the variants measured at this size"
    if name == "query_major":
        return (
            Layout("query-major", main.samples_per_shard, main.queries_per_shard, main.compression),
            f"row order: shards of {main.queries_per_shard:,} queries x all samples, query-major "
            "rows, vs main (sample-major)",
        )
    if name in ("zstd", "snappy", "gzip", "lz4", "uncompressed"):
        if name == main.compression:
            raise ValueError(f"variant {name!r} is the main layout's codec")
        return (
            dataclasses.replace(main, compression=name, writer="duckdb"),
            f"codec: {name} vs {main.compression} (main), same layout and writer",
        )
    if name == "pyarrow_writer":
        return (
            dataclasses.replace(main, writer="pyarrow"),
            "Parquet writer: pyarrow's vs DuckDB's (main), same layout and codec",
        )
    if name.startswith("samples_"):
        n = count(name.removeprefix("samples_"))
        return (
            Layout("sample-major", n, main.queries_per_shard, main.compression),
            f"shard size: {n:,} vs {main.samples_per_shard:,} (main) training samples per shard",
        )
    raise ValueError(
        f"unknown variant {name!r}: use query_major, zstd (or another codec), pyarrow_writer, "
        "or samples_<N>[k|M]"
    )


def variant_plan(args: argparse.Namespace, main: Layout) -> list[dict[str, Any]]:
    """What ``--variants`` asks for, in order: key, layout, what, samples and the reference each
    is compared with (``main`` at --samples, else ``main@<samples>``, added before them).
    ``NAME@N`` means N samples, or --samples if fewer."""
    plan, seen = [], set()
    for spec in args.variants:
        name, _, size = spec.partition("@")
        samples = min(count(size), args.samples) if size else args.samples
        key = name if samples == args.samples else f"{name}@{samples}"
        ref = "main" if samples == args.samples else f"main@{samples}"
        if samples <= 0:
            raise ValueError(f"{spec}: the size must be positive")
        if key == "main" or key in seen:
            raise ValueError(f"{spec}: measured already (the main layout, or named twice)")
        layout, what = variant_layout(name, main)
        if ref != "main" and ref not in seen and key != ref:
            base, base_what = variant_layout("main", main)
            plan.append(
                {"key": ref, "layout": base, "what": base_what, "samples": samples, "ref": None}
            )
            seen.add(ref)
        seen.add(key)
        plan.append(
            {
                "key": key,
                "layout": layout,
                "what": what,
                "samples": samples,
                "ref": None if key == ref else ref,
            }
        )
    return plan


def query_id(q: int) -> str:
    return hashlib.sha256(f"query-{q}".encode()).hexdigest()[:32]


def score_sql(pair: str, seed: int) -> str:
    """float32 in [-1, 1) from DuckDB's hash() of the (sample, query) pair number ``pair``."""
    return f"((hash({pair}, {seed}) % 16777216)::DOUBLE / 8388608 - 1)::FLOAT"


def shard_sql(layout: Layout, args: argparse.Namespace, k: int) -> str:
    """SELECT producing shard ``k`` (columns as the engine passes them: no run_id).

    Every layout holds the same logical table: sample i = sha256(str(i))[:32], query q =
    sha256('query-<q>')[:32], score of (i, q) = score_sql(i * queries + q), so the queries return
    the same answers over every layout (checked). Sample ids are hashed once per sample and the
    per-sample (or per-query) rows made by unnest, which keeps the row order.
    """
    n, nq, seed = args.samples, args.queries, args.seed
    behaviour = sql_literal(args.behaviour)
    if layout.order == "sample-major":
        s0, s1 = k * layout.samples_per_shard, min((k + 1) * layout.samples_per_shard, n)
        qids = "[" + ", ".join(sql_literal(query_id(q)) for q in range(nq)) + "]"
        return f"""
            SELECT {behaviour}::VARCHAR AS behaviour,
                   unnest({qids}) AS query_id,
                   sid AS sample_id,
                   unnest(list_transform(range({nq}), lambda q: {score_sql(f"i * {nq} + q", seed)})) AS score
            FROM (SELECT i, sha256(i::VARCHAR)[:32] AS sid FROM range({s0}, {s1}) t(i))"""
    q0, q1 = k * layout.queries_per_shard, min((k + 1) * layout.queries_per_shard, nq)
    return f"""
        SELECT {behaviour}::VARCHAR AS behaviour,
               sha256(('query-' || q)::VARCHAR)[:32] AS query_id,
               unnest(sids) AS sample_id,
               unnest(list_transform(range({n}), lambda i: {score_sql(f"i * {nq} + q", seed)})) AS score
        FROM range({q0}, {q1}) t(q) CROSS JOIN sample_ids"""


def write_shard(store: Any, run_id: str, layout: Layout, k: int, table: Any) -> Path:
    target = store.shard_path("scores", run_id, k)
    if layout.writer == "store":
        if layout.compression != "snappy":
            raise ValueError(
                "the 'store' writer writes snappy; use writer 'duckdb' for other codecs"
            )
        store.write_scores(run_id, table, shard=k)
    elif layout.writer == "duckdb":
        write_parquet_atomic_duckdb(
            conform("scores", table, run_id), target, compression=layout.compression
        )
    elif layout.writer == "pyarrow":
        write_parquet_atomic(
            conform("scores", table, run_id), target, compression=layout.compression
        )
    else:
        raise ValueError(f"unknown writer {layout.writer!r}")
    return target


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
        "sum": sum(values),
    }


def build_store(
    args: argparse.Namespace, layout: Layout, name: str, store_dir: Path
) -> dict[str, Any]:
    """Write the scores table in ``layout`` into a fresh store and finish the run; returns ``data``."""
    store = stores.open(store_dir)
    config = {
        "benchmark": "bench/sql_scores.py",
        "variant": name,
        "samples": args.samples,
        "queries": args.queries,
        "n_queries": args.queries,  # as the engine records it (stores.topk reads it)
        **dataclasses.asdict(layout),
    }
    run_id = store.start_run("attribute", config=config, seed=args.seed)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = {sql_literal(args.gen_memory_limit)}")
    con.execute(f"SET temp_directory = {sql_literal(str(store_dir.parent / 'duckdb-tmp'))}")
    shards = []
    n_shards = layout.n_shards(args.samples, args.queries)
    t_all = time.perf_counter()
    last_print = 0.0
    try:
        if layout.order == "query-major":
            con.execute(
                "CREATE TEMP TABLE sample_ids AS SELECT list(sha256(i::VARCHAR)[:32] ORDER BY i) "
                f"AS sids FROM range({args.samples}) t(i)"
            )
        for k in range(n_shards):
            t0 = time.perf_counter()
            table = con.sql(shard_sql(layout, args, k)).to_arrow_table()
            target = write_shard(store, run_id, layout, k, table)
            seconds = time.perf_counter() - t0
            meta = pq.read_metadata(target)
            shards.append((meta.num_rows, meta.num_row_groups, target.stat().st_size, seconds))
            if time.perf_counter() - last_print > 10 or k == n_shards - 1:
                last_print = time.perf_counter()
                print(
                    f"  {name}: shard {k + 1:,}/{n_shards:,}, {time.perf_counter() - t_all:.0f} s",
                    flush=True,
                )
    except BaseException:
        con.close()
        store.fail_run(run_id, "benchmark data generation failed")
        raise
    con.close()
    gen_s = time.perf_counter() - t_all

    # the shards must match the store's schema for `scores` and be in the layout's row order
    want = SHARD_SCHEMAS["scores"]
    first = store.shard_path("scores", run_id, 0)
    got = pq.read_schema(first)
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
    head = pq.read_table(first, columns=["query_id", "sample_id"]).slice(0, 2).to_pylist()
    if len(head) == 2 and args.samples > 1 and args.queries > 1:
        same = "sample_id" if layout.order == "sample-major" else "query_id"
        if head[0][same] != head[1][same]:
            store.fail_run(run_id, "row order")
            raise RuntimeError(f"shard 0 is not {layout.order}: first rows {head}")

    t0 = time.perf_counter()
    registered = store.finish_run(run_id)
    finish_s = time.perf_counter() - t0
    with store.connect() as con:
        n = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    expected = args.samples * args.queries
    if n != expected or len(registered) != len(shards):
        raise RuntimeError(
            f"scores view has {n} rows / {len(registered)} shards; expected {expected} / {len(shards)}"
        )
    rows, groups, sizes, secs = (list(c) for c in zip(*shards, strict=True))
    return {
        "store": rel(store.root),
        "run_id": run_id,
        "rows": int(n),
        "samples": args.samples,
        "queries": args.queries,
        "layout": layout.describe(),
        "n_shards": len(shards),
        "bytes": sum(sizes),
        "row_groups": sum(groups),
        "shard_rows": _stats(rows),
        "shard_row_groups": _stats(groups),
        "shard_bytes": _stats(sizes),
        "shard_seconds": _stats(secs),
        "schema": str(got).replace("\n", "; "),
        "generate_s": gen_s,
        "finish_run_s": finish_s,
        "catalog_bytes": dir_bytes(store.catalog_path),
    }


def time_queries(
    args: argparse.Namespace, store_dir: Path, modes: list[str], logs: Path
) -> dict[str, Any]:
    """Each query in each mode in its own child process: cold + warm runs, memory, answer check."""
    runs: dict[str, dict[str, Any]] = {}
    for qname, query in QUERIES.items():
        runs[qname] = {"sql": query, "modes": {}}
        for mode in modes:
            if qname in API_QUERIES and mode != "api":
                continue
            print(f"  {qname} {mode} ...", flush=True)
            child = run_child(
                [str(BENCH_DIR / "_sql_child.py"), str(store_dir), mode, qname, str(args.repeats)],
                logs / f"{qname}-{mode}.log",
            )
            times = child["times_s"]
            warm = times[1:]
            runs[qname]["modes"][mode] = {
                "how": MODES[mode],
                "cold_s": times[0],
                "warm_s": warm,
                "warm_median_s": statistics.median(warm),
                "warm_min_s": min(warm),
                "cold_cpu_s": child["cpu_s"][0],
                "warm_cpu_s": child["cpu_s"][1:],
                "warm_median_cpu_s": statistics.median(child["cpu_s"][1:]),
                "rows_returned": child["rows"][0],
                "answer": child["answer"],
                "peak_rss_mib": mib_from_kb(child["peak_rss_kb"]),
                "rss_after_import_mib": mib_from_kb(child["rss_after_import_kb"]),
                "polled_peak_rss_mib": child["parent"]["polled_peak_rss_bytes"] / 2**20,
                "ru_maxrss_self_mib_unreliable": mib_from_kb(child["ru_maxrss_self_kb"]),
                "duckdb_settings": child["duckdb_settings"],
            }
        expected_rows = {
            "Q0": 1,
            "Q1": min(100, args.samples),
            "Q2": args.queries * min(10, args.samples),
            "Q2b": args.queries * min(10, args.samples),
            "Q2api": args.queries * min(10, args.samples),
        }[qname]
        for mode, r in runs[qname]["modes"].items():
            if r["rows_returned"] != expected_rows:
                raise RuntimeError(
                    f"{qname} {mode} returned {r['rows_returned']} rows, expected {expected_rows}"
                )
    return runs


def same_answer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two runs of a query gave the same answer (keys exactly; value sums to float rounding)."""
    return a["keys_sha256"] == b["keys_sha256"] and abs(
        a["value_sum"] - b["value_sum"]
    ) <= 1e-6 * max(1.0, abs(a["value_sum"]))


def measure(
    args: argparse.Namespace,
    layout: Layout,
    name: str,
    work: Path,
    modes: list[str],
    samples: int | None = None,
) -> dict[str, Any]:
    """Build the table in ``layout`` (``samples`` x --queries), time the queries, delete the
    store (unless --keep)."""
    if samples is not None:
        args = argparse.Namespace(**{**vars(args), "samples": samples})
    folder = work / name.replace("@", "-at-")
    print(
        f"{name}: {args.samples:,} samples x {args.queries:,} queries, {layout.describe()['means']}"
    )
    data = build_store(args, layout, name, folder / "store")
    print_table(
        f"scores table ({name})",
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
    runs = time_queries(args, folder / "store", modes, folder)
    print_table(
        f"queries over {data['rows']:,} score rows, {name} (cold + {args.repeats} warm, each in a fresh process)",
        [
            "query",
            "mode",
            "cold s",
            "warm median s",
            "warm min s",
            "warm CPU s",
            "rows",
            "peak RSS MiB",
        ],
        [
            [
                q,
                mode,
                r["cold_s"],
                r["warm_median_s"],
                r["warm_min_s"],
                r["warm_median_cpu_s"],
                r["rows_returned"],
                r["peak_rss_mib"],
            ]
            for q in runs
            for mode, r in runs[q]["modes"].items()
        ],
    )
    data["disk_bytes"] = dir_bytes(folder)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return {"data": data, "queries": runs}


def compare(result: dict[str, Any], variants: dict[str, Any]) -> dict[str, Any]:
    """Warm medians through store.sql (wall and CPU) of each variant over its reference, and
    bytes over bytes."""
    measured = {"main": result, **variants}
    out = {}
    for name, v in variants.items():
        ref = v["compare_with"]
        if ref is None:
            continue
        a, b = v, measured[ref]
        entry: dict[str, Any] = {
            "numerator": name,
            "denominator": ref,
            "what": v["what"],
            "bytes_ratio": a["data"]["bytes"] / b["data"]["bytes"],
        }
        for q in QUERIES:
            ra, rb = a["queries"][q]["modes"].get("api"), b["queries"][q]["modes"].get("api")
            if ra and rb:
                entry[q] = {
                    "numerator_s": ra["warm_median_s"],
                    "denominator_s": rb["warm_median_s"],
                    "ratio": ra["warm_median_s"] / rb["warm_median_s"],
                    "cpu_ratio": ra["warm_median_cpu_s"] / rb["warm_median_cpu_s"],
                }
        out[f"{name}_over_{ref}"] = entry
    return out


def summary_row(name: str, measured: dict[str, Any]) -> list[Any]:
    """One line of the closing table: the layout and its warm medians through store.sql."""
    lay, data = measured["data"]["layout"], measured["data"]
    per_shard = (
        f"{lay['samples_per_shard']:,} samples"
        if lay["order"] == "sample-major"
        else f"{lay['queries_per_shard']:,} queries"
    )
    api = [measured["queries"][q]["modes"].get("api") for q in QUERIES]
    return [
        name,
        data["samples"],
        lay["order"],
        per_shard,
        lay["compression"],
        lay["writer"],
        data["n_shards"],
        mb(data["bytes"]),
        *[r["warm_median_s"] if r else None for r in api],
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--samples", type=int, default=1_000_000, help="distinct sample ids (default 1,000,000)"
    )
    p.add_argument("--queries", type=int, default=100, help="distinct query ids (default 100)")
    p.add_argument(
        "--samples-per-shard",
        type=int,
        default=None,
        help="training samples per shard of the main (sample-major) layout (default: the engine's "
        "EngineConfig.shard_size)",
    )
    p.add_argument(
        "--queries-per-shard",
        type=int,
        default=10,
        help="queries per shard of the query_major variant (default 10)",
    )
    p.add_argument(
        "--variants",
        default=DEFAULT_VARIANTS,
        help="comma-separated layouts measured after the main one, in the same run ('' for "
        f"none; default {DEFAULT_VARIANTS}): samples_<N> = N training samples per shard "
        "(N as 100000, 100k or 1M); query_major = shards of --queries-per-shard queries x all "
        "samples, query-major rows; zstd (or gzip, lz4, uncompressed) = the main layout in that "
        "codec; pyarrow_writer = the main layout written by pyarrow. NAME@N measures it at N "
        "samples (at most --samples), next to the main layout at N samples (main@N)",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="warm runs after the cold one (default 3)"
    )
    p.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"main layout: comma-separated subset of {','.join(MODES)}",
    )
    p.add_argument(
        "--variant-modes", default="api", help="modes timed for the variants (default api)"
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
    p.add_argument("--keep", action="store_true", help="keep the generated stores")
    add_provenance_args(p)
    args = p.parse_args(argv)

    def modes(text: str, flag: str) -> list[str]:
        out = [m.strip() for m in text.split(",") if m.strip()]
        if not out or any(m not in MODES for m in out):
            p.error(f"{flag}: choose from {', '.join(MODES)}")
        return out

    args.modes = modes(args.modes, "--modes")
    args.variant_modes = modes(args.variant_modes, "--variant-modes")
    if min(args.samples, args.queries, args.queries_per_shard) <= 0 or args.repeats < 1:
        p.error("--samples, --queries, --queries-per-shard and --repeats must be positive")
    if args.samples_per_shard is None:
        args.samples_per_shard = engine_shard_size()
        args.samples_per_shard_from = "attribution.engine.EngineConfig.shard_size"
    else:
        args.samples_per_shard_from = "--samples-per-shard"
    if args.samples_per_shard <= 0:
        p.error("--samples-per-shard must be positive")
    main = Layout("sample-major", args.samples_per_shard, args.queries_per_shard)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        variant_plan(args, main)
    except ValueError as exc:
        p.error(f"--variants: {exc}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    require_clean_tree(args.allow_dirty)
    work = fresh_dir(args.work_dir.resolve())
    layout = Layout("sample-major", args.samples_per_shard, args.queries_per_shard)
    result: dict[str, Any] = {
        "benchmark": "sql_scores",
        "created_at": now_iso(),
        "load_average_at_start": os.getloadavg(),
        "machine": machine_info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "target": {
            "max_seconds": TARGET_SECONDS,
            "cores": 2,
            "judged_on": "warm median through store.sql (mode api) over the main layout, Q1 and Q2",
        },
    }
    t_run = time.perf_counter()
    try:
        measured = measure(args, layout, "main", work, args.modes)
        result["data"], result["queries"] = measured["data"], measured["queries"]
        runs = result["queries"]
        result["peak_rss_note"] = (
            "peak RSS is the child's VmHWM (/proc/self/status) after its runs; each (query, mode) "
            "runs in its own child so generation memory does not count. getrusage ru_maxrss is "
            "kept as *_unreliable: on Linux a child's maxrss starts at its parent's peak RSS."
        )
        result["cold_note"] = (
            "cold = first run in a fresh process (no DuckDB caches); the OS page cache is not "
            "dropped, so the shard files are likely in memory"
        )
        api = {q: runs[q]["modes"].get("api") for q in TARGET_QUERIES}
        result["target"]["results"] = {
            q: None
            if r is None
            else {
                "warm_median_s": r["warm_median_s"],
                "cold_s": r["cold_s"],
                "met": r["warm_median_s"] <= TARGET_SECONDS,
            }
            for q, r in api.items()
        }
        result["target"]["met"] = (
            None
            if any(r is None for r in api.values())
            else all(r["warm_median_s"] <= TARGET_SECONDS for r in api.values())
        )

        variants: dict[str, Any] = {}
        for v in variant_plan(args, layout):
            m = measure(args, v["layout"], v["key"], work, args.variant_modes, v["samples"])
            variants[v["key"]] = {"what": v["what"], "compare_with": v["ref"], **m}
        result["variants"] = variants
        result["comparisons"] = compare(result, variants)

        # every layout and mode gives the same answers as the reference at its size
        measured_all = {"main": {"queries": runs}, **variants}
        disagree = []
        for name, m in measured_all.items():
            ref = m.get("compare_with") or name
            ref_mode = next(iter(measured_all[ref]["queries"]["Q0"]["modes"]))
            for q in QUERIES:
                want = measured_all[ref]["queries"][q]["modes"][ref_mode]["answer"]
                disagree += [
                    f"{name}/{q}/{mode}"
                    for mode, r in m["queries"][q]["modes"].items()
                    if not same_answer(r["answer"], want)
                ]
        result["answers_agree"] = not disagree
        result["answers_disagree"] = disagree
        if disagree:
            print(f"WARNING: answers differ from their reference: {', '.join(disagree)}")

        print_table(
            "warm median through store.sql, s",
            ["layout", "samples", "rows", "per shard", "codec", "writer", "shards", "MB", *QUERIES],
            [
                summary_row(name, m)
                for name, m in {
                    "main": {"data": result["data"], "queries": runs},
                    **variants,
                }.items()
            ],
        )
        for q, r in result["target"]["results"].items():
            if r is not None:
                print(
                    f"target {q} <= {TARGET_SECONDS:g} s (warm median, store.sql, main layout): "
                    f"{r['warm_median_s']:.3f} s -> {'MET' if r['met'] else 'NOT MET'}"
                )
        print()
    finally:
        result["total_s"] = time.perf_counter() - t_run
        result["load_average_at_end"] = os.getloadavg()
        result["finished_at"] = now_iso()
        remove_work(work, args.keep)
    write_result(args.out, result)
    print(f"wrote {rel(args.out)}")
    return result


if __name__ == "__main__":
    main()
