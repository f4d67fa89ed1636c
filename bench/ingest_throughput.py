"""Ingest throughput and memory: jsonl -> Parquet with our ingest, plain DuckDB and polars.

    python bench/ingest_throughput.py                      # full size (1M rows, 2 GB memory run)
    python bench/ingest_throughput.py --rows 100000 --big-gb 0.05   # quick check

Writes bench/results/ingest.json and prints tables. Work data goes to bench/work/ingest/ and is
deleted at the end unless --keep. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import io
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
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

import stores  # noqa: E402
from stores.ingest import ingest  # noqa: E402

TARGET_OURS_OVER_DUCKDB = 0.5

# ---------------------------------------------------------------------- row generator
# 256 words: common English words of varied length plus a few that exercise UTF-8 and JSON
# escaping (non-ASCII letters, CJK, an embedded quote, an embedded newline).
_WORDS = (
    """
the of and to in is that for it as was with be by on not he this are or his from at which but
have an they you were her she there been one all we their has would when if more no out so what
up can its about into them only some time could these two may first then do any like my now over
such our man me even most made after also did many before must through back years where much your
way well down should because each just those people how too little state good very make world
still own see men work long get here between both life being under never day same another know
while last might us great old year off come since against go came right used take three states
himself few house use during without again place american around however home small found thought
went say part once general high upon school every does got united left number course war until
always away something fact though water less public put think almost hand enough far took head
yet government system better set told nothing night end why called didn't eyes find going look
asked later knew point next program city business give group toward young days let room
president side social given present several order national possible rather second face per among
form important often things looked early white case large need big four within felt along
children saw best church ever least power development light thing seemed family interest want
""".split()[:250]
    + ["café", "naïve", "über", "東京", '"quoted"', "line\nbreak"]
)
assert len(_WORDS) == 256, len(_WORDS)
_VOCAB = pa.array(_WORDS, pa.string())
_SOURCES = pa.array(["web", "books", "code", "forum", "wiki", "papers"], pa.string())
CHUNK_ROWS = 250_000  # fixed: the content of row i depends only on (seed, i)


def _text(rng: np.random.Generator, n: int, lo: int, hi: int, end: str) -> pa.Array:
    lens = rng.integers(lo, hi + 1, n)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lens, out=offsets[1:])
    idx = rng.integers(0, len(_WORDS), int(offsets[-1]), dtype=np.int32)
    words = pa.ListArray.from_arrays(pa.array(offsets), _VOCAB.take(pa.array(idx)))
    return pc.binary_join_element_wise(pc.binary_join(words, " "), end, "")


def generate_chunk(seed: int, chunk: int) -> bytes:
    """Rows ``chunk*CHUNK_ROWS ..`` as newline-delimited JSON (deterministic in seed and chunk).

    Each row is {"prompt", "completion", "source", "n", "score"}, about 150-250 bytes.
    """
    rng = np.random.default_rng([seed, chunk])
    n = CHUNK_ROWS
    df = pl.from_arrow(
        pa.table(
            {
                "prompt": _text(rng, n, 6, 12, "?"),
                "completion": _text(rng, n, 9, 17, "."),
                "source": _SOURCES.take(pa.array(rng.integers(0, len(_SOURCES), n))),
                "n": rng.integers(0, 5000, n),
                "score": np.round(rng.random(n), 6),
            }
        )
    )
    buf = io.BytesIO()
    df.write_ndjson(buf)
    return buf.getvalue()


def write_jsonl(
    path: Path,
    seed: int,
    *,
    n_rows: int | None = None,
    n_bytes: int | None = None,
    keep_lengths: bool = False,
) -> dict[str, Any]:
    """Stream generated rows to ``path`` chunk by chunk until ``n_rows`` rows or ``n_bytes`` bytes.

    Any file is a prefix of a longer one with the same seed. Returns rows, bytes, row-length
    statistics and the generation time.
    """
    assert (n_rows is None) != (n_bytes is None)
    t0 = time.perf_counter()
    rows = size = 0
    lengths: list[np.ndarray] = []
    lmin, lmax = 1 << 30, 0
    chunk = 0
    with open(path, "wb") as fh:
        while (n_rows is not None and rows < n_rows) or (n_bytes is not None and size < n_bytes):
            data = generate_chunk(seed, chunk)
            ends = (
                np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1
            )  # end offset of each line
            if n_rows is not None:
                take = min(len(ends), n_rows - rows)
            else:
                take = min(len(ends), int(np.searchsorted(ends, n_bytes - size)) + 1)
            cut = int(ends[take - 1])
            fh.write(data[:cut])
            lens = np.diff(ends[:take], prepend=0)
            lmin, lmax = min(lmin, int(lens.min())), max(lmax, int(lens.max()))
            if keep_lengths or chunk == 0:
                lengths.append(lens)
            rows += take
            size += cut
            chunk += 1
    seconds = time.perf_counter() - t0
    sample = np.concatenate(lengths)
    return {
        "path": rel(path),
        "rows": rows,
        "bytes": size,
        "seed": seed,
        "generate_s": seconds,
        "row_bytes": {
            "mean": size / rows,
            "min": lmin,
            "max": lmax,
            "p1": float(np.percentile(sample, 1)),
            "p50": float(np.percentile(sample, 50)),
            "p99": float(np.percentile(sample, 99)),
            "percentiles_from_rows": int(len(sample)),
        },
    }


# ---------------------------------------------------------------------- the three methods
def run_ours(src: Path, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    store = stores.open(out / "store")
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = ingest(store, src, "bench")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "rows_out": res.n_samples,
        "output_bytes": dir_bytes(store.data_dir),
        "store_create_s": open_s,
        "ingest_reported_s": res.seconds,
    }


def duckdb_sql(src: Path, out_file: Path) -> str:
    return (
        f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited')) "
        f"TO '{out_file}' (FORMAT parquet)"
    )


def run_duckdb(src: Path, out: Path) -> dict[str, Any]:
    out_file = out / "out.parquet"
    t0 = time.perf_counter()
    con = duckdb.connect()
    n = con.execute(duckdb_sql(src, out_file)).fetchall()[0][0]
    con.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows_out": int(n), "output_bytes": dir_bytes(out_file)}


def run_duckdb_same_ids(src: Path, out: Path) -> dict[str, Any]:
    """DuckDB alone, but computing the same SHA-256 content ids we do: the like-for-like baseline."""
    from stores.ids import sql_sample_id

    out_file = out / "out.parquet"
    ids = sql_sample_id([("prompt", "prompt"), ("completion", "completion")])
    t0 = time.perf_counter()
    con = duckdb.connect()
    n = con.execute(
        f"COPY (SELECT {ids} AS sample_id, * FROM read_json('{src}', format='newline_delimited')) "
        f"TO '{out_file}' (FORMAT parquet)"
    ).fetchall()[0][0]
    con.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows_out": int(n), "output_bytes": dir_bytes(out_file)}


def run_polars(src: Path, out: Path) -> dict[str, Any]:
    out_file = out / "out.parquet"
    t0 = time.perf_counter()
    pl.scan_ndjson(src).sink_parquet(out_file)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "rows_out": pq.read_metadata(out_file).num_rows,
        "output_bytes": dir_bytes(out_file),
    }


METHODS = {
    "ours": (
        run_ours,
        "stores.ingest.ingest(store, path, 'bench') into a fresh store (timed call only)",
    ),
    "duckdb": (
        run_duckdb,
        "duckdb.connect(); COPY (SELECT * FROM read_json(path, format='newline_delimited')) TO out.parquet (FORMAT parquet)",
    ),
    "duckdb_same_ids": (
        run_duckdb_same_ids,
        "DuckDB COPY as above plus the same SHA-256 sample_id expression ingest computes",
    ),
    "polars": (run_polars, "pl.scan_ndjson(path).sink_parquet(out)"),
}


# ---------------------------------------------------------------------- memory (child process)
def memory_run(label: str, path: Path, info: dict[str, Any], work: Path) -> dict[str, Any]:
    store_dir = work / f"mem-{label}-store"
    child = run_child(
        [str(BENCH_DIR / "_ingest_child.py"), str(path), str(store_dir)], work / f"mem-{label}.log"
    )
    ing = child["ingest"]
    out = {
        "file": info,
        "seconds": child["seconds"],
        "rows": ing["n_rows_read"],
        "rows_per_s": ing["n_rows_read"] / child["seconds"],
        "mb_per_s": info["bytes"] / 1e6 / child["seconds"],
        "output_bytes": dir_bytes(store_dir / "data"),
        "peak_rss_mib": mib_from_kb(child["peak_rss_kb"]),
        "rss_after_import_mib": mib_from_kb(child["rss_after_import_kb"]),
        "peak_rss_minus_import_mib": mib_from_kb(
            child["peak_rss_kb"] - child["rss_after_import_kb"]
        ),
        "polled_peak_rss_mib": child["parent"]["polled_peak_rss_bytes"] / 2**20,
        "child_wall_s": child["parent"]["wall_s"],
        "ru_maxrss_self_mib_unreliable": mib_from_kb(child["ru_maxrss_self_kb"]),
        "wait4_ru_maxrss_mib_unreliable": mib_from_kb(child["parent"]["wait4_ru_maxrss_kb"]),
        "run_id": ing["run_id"],
    }
    return out


# ---------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--rows",
        type=int,
        default=1_000_000,
        help="rows of the throughput file (default 1,000,000)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="repeats per method; the best is reported (default 2)",
    )
    p.add_argument(
        "--big-gb",
        type=float,
        default=2.0,
        help="size of the file for the peak-RSS run in GB (10^9 bytes); 0 disables the memory runs (default 2)",
    )
    p.add_argument(
        "--ref-mb",
        type=float,
        default=200.0,
        help="size of the smaller reference file for the memory runs in MB, capped at a tenth of --big-gb (default 200)",
    )
    p.add_argument(
        "--methods",
        default="ours,duckdb,duckdb_same_ids,polars",
        help="comma-separated subset of ours,duckdb,duckdb_same_ids,polars",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "ingest.json",
        help="result JSON (default bench/results/ingest.json)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=WORK_DIR / "ingest",
        help="scratch folder (default bench/work/ingest)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the work folder (generated files, stores, outputs)",
    )
    add_provenance_args(p)
    args = p.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown or not args.methods:
        p.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if args.rows <= 0 or args.repeats <= 0 or args.big_gb < 0 or args.ref_mb < 0:
        p.error("--rows and --repeats must be positive, --big-gb and --ref-mb non-negative")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    require_clean_tree(args.allow_dirty)
    work = fresh_dir(args.work_dir.resolve())
    result: dict[str, Any] = {
        "benchmark": "ingest_throughput",
        "created_at": now_iso(),
        "machine": machine_info(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    try:
        # ---- throughput
        src = work / "rows.jsonl"
        print(f"generating {args.rows:,} rows -> {rel(src)}")
        inp = write_jsonl(src, args.seed, n_rows=args.rows, keep_lengths=True)
        result["input"] = inp
        print_table(
            "input",
            ["file", "rows", "MB", "mean B/row", "p1 B/row", "p99 B/row", "generate s"],
            [
                [
                    inp["path"],
                    inp["rows"],
                    mb(inp["bytes"]),
                    inp["row_bytes"]["mean"],
                    inp["row_bytes"]["p1"],
                    inp["row_bytes"]["p99"],
                    inp["generate_s"],
                ]
            ],
        )

        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
        for rep in range(args.repeats):
            for name in args.methods:
                out = fresh_dir(work / f"out-{name}-{rep}")
                gc.collect()
                r = METHODS[name][0](src, out)
                if r["rows_out"] != inp["rows"]:
                    raise RuntimeError(f"{name} wrote {r['rows_out']} rows, expected {inp['rows']}")
                runs[name].append(r)
                print(f"  repeat {rep + 1}/{args.repeats}  {name:<15} {r['seconds']:.3f} s")
                if not args.keep:
                    shutil.rmtree(out)
        methods: dict[str, Any] = {}
        for name, rs in runs.items():
            best = min(rs, key=lambda r: r["seconds"])
            methods[name] = {
                "how": METHODS[name][1],
                "runs_s": [r["seconds"] for r in rs],
                "best_s": best["seconds"],
                "rows_per_s": inp["rows"] / best["seconds"],
                "mb_per_s": inp["bytes"] / 1e6 / best["seconds"],
                "output_bytes": best["output_bytes"],
                "rows_out": best["rows_out"],
                **{
                    k: v
                    for k, v in best.items()
                    if k not in ("seconds", "rows_out", "output_bytes")
                },
            }
        methods.get("ours", {}).setdefault(
            "note",
            "includes sample_id hashing (SHA-256), duplicate counting, ordinals, snappy Parquet "
            "shards via pyarrow (fsynced) and the catalog transactions; duckdb writes snappy "
            "Parquet, polars zstd",
        )
        result["methods"] = methods

        ratios: dict[str, Any] = {
            "definition": "throughput of ours / throughput of the other (= other best_s / ours best_s)"
        }
        if "ours" in methods:
            for other in ("duckdb", "duckdb_same_ids", "polars"):
                if other in methods:
                    ratios[f"ours_over_{other}"] = (
                        methods[other]["best_s"] / methods["ours"]["best_s"]
                    )
        result["ratios"] = ratios
        met = ratios.get("ours_over_duckdb")
        result["target"] = {
            "ours_over_duckdb_min": TARGET_OURS_OVER_DUCKDB,
            "ours_over_duckdb": met,
            "met": None if met is None else met >= TARGET_OURS_OVER_DUCKDB,
        }
        base = methods.get("ours")
        print_table(
            f"jsonl -> Parquet, {inp['rows']:,} rows, {mb(inp['bytes']):.1f} MB, best of {args.repeats}",
            ["method", "runs s", "best s", "rows/s", "MB/s", "out MB", "ours/this"],
            [
                [
                    name,
                    " ".join(f"{s:.2f}" for s in m["runs_s"]),
                    m["best_s"],
                    m["rows_per_s"],
                    m["mb_per_s"],
                    mb(m["output_bytes"]),
                    (m["best_s"] / base["best_s"]) if base else None,
                ]
                for name, m in methods.items()
            ],
        )
        if met is not None:
            print(
                f"target ours/duckdb >= {TARGET_OURS_OVER_DUCKDB}: {met:.2f} -> "
                f"{'MET' if met >= TARGET_OURS_OVER_DUCKDB else 'NOT MET'}"
            )
        if "ours_over_duckdb_same_ids" in ratios:
            print(
                "ours / duckdb computing the same SHA-256 ids: "
                f"{ratios['ours_over_duckdb_same_ids']:.2f}\n"
            )

        # ---- memory
        if args.big_gb > 0:
            big_bytes = int(args.big_gb * 1e9)
            ref_bytes = int(min(args.ref_mb * 1e6, big_bytes / 10))
            mem: dict[str, Any] = {
                "how": "each file ingested by `python bench/_ingest_child.py FILE STORE` in a fresh "
                "store; peak_rss is the child's VmHWM from /proc/self/status",
                "why_not_ru_maxrss": "a child's ru_maxrss (getrusage/wait4) includes the parent's "
                "peak RSS at exec time on Linux, so it is kept only as *_unreliable",
            }
            for label, size in (("ref", ref_bytes), ("big", big_bytes)):
                if size <= 0:
                    continue
                path = work / f"mem-{label}.jsonl"
                print(f"generating {size / 1e6:,.0f} MB -> {rel(path)}")
                info = write_jsonl(path, args.seed, n_bytes=size)
                print(f"  ingesting in a child process ({info['rows']:,} rows)")
                mem[label] = memory_run(label, path, info, work)
                if not args.keep:
                    path.unlink()
                    shutil.rmtree(work / f"mem-{label}-store", ignore_errors=True)
            if "ref" in mem and "big" in mem:
                r, b = mem["ref"], mem["big"]
                mem["size_ratio_big_over_ref"] = b["file"]["bytes"] / r["file"]["bytes"]
                mem["peak_rss_ratio_big_over_ref"] = b["peak_rss_mib"] / r["peak_rss_mib"]
                mem["peak_rss_growth_mib"] = b["peak_rss_mib"] - r["peak_rss_mib"]
            result["memory"] = mem
            print_table(
                "ingest in a child process (peak RSS = child VmHWM)",
                [
                    "file",
                    "MB",
                    "rows",
                    "seconds",
                    "rows/s",
                    "MB/s",
                    "peak RSS MiB",
                    "after import MiB",
                    "polled MiB",
                ],
                [
                    [
                        label,
                        mb(m["file"]["bytes"]),
                        m["rows"],
                        m["seconds"],
                        m["rows_per_s"],
                        m["mb_per_s"],
                        m["peak_rss_mib"],
                        m["rss_after_import_mib"],
                        m["polled_peak_rss_mib"],
                    ]
                    for label, m in mem.items()
                    if label in ("ref", "big")
                ],
            )
            if "peak_rss_ratio_big_over_ref" in mem:
                print(
                    f"file {mem['size_ratio_big_over_ref']:.1f}x larger -> peak RSS "
                    f"{mem['peak_rss_ratio_big_over_ref']:.2f}x "
                    f"({mem['peak_rss_growth_mib']:+.0f} MiB)\n"
                )
        else:
            result["memory"] = None
    finally:
        result["finished_at"] = now_iso()
        remove_work(work, args.keep)
    write_result(args.out, result)
    print(f"wrote {rel(args.out)}")
    return result


if __name__ == "__main__":
    main()
