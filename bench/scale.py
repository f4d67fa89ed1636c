"""Past one machine (issue 16): scoring on Ray vs local, a killed worker, 10M-row ingest, a 1B-row scores table.

    python bench/scale.py                              # every part (make bench-scale)
    python bench/scale.py --parts scoring,fault        # some parts; others in the file are kept

Every part runs in this one script, on this machine (2 cores here), from a clean tree:

- ``scoring``: the engine benchmark's GPT-2 (bench/engine_throughput.py: 4 layers, d=256, char
  tokenizer, arithmetic pairs; ``--train-steps`` Adam steps) scores ``--train`` samples against
  ``--queries`` queries in shards of ``--shard-size``, with EK-FAC factors fitted once beforehand
  (copied into each run's fresh store, so no run pays for them). ``local``: this process, 2 torch
  threads; ``ray_1`` / ``ray_2``: a local Ray cluster of 2 CPUs, 1 or 2 tasks in flight, one CPU
  (and Ray's one OMP thread) per task. Times are wall clock of ``pairwise_scores`` (Ray workers
  start, import torch and load the model inside it; the cluster itself is started before).
  ``identical``: every run's score matrix equals the local one exactly.
- ``fault``: ``ray_2`` again on a fresh store, killing (SIGKILL) a worker in the middle of a task
  once the first shard is in; Ray retries its task. ``identical`` and ``extra_s`` (its time minus
  ``ray_2``'s), and the shards registered and (sample, query) pairs duplicated.
- ``ingest_10m``: ``--ingest-rows`` generated jsonl rows (bench/ingest_throughput.py's generator)
  ingested locally and with ``--executor ray`` (2 tasks in flight), each into a fresh store; the
  datasets are compared (rows, duplicates, fingerprint of the ordered ids).
- ``sql_1b``: bench/sql_scores.py's scores table at ``--sql-samples`` x ``--sql-queries`` rows as
  the engine writes it (sample-major shards of ``--sql-samples-per-shard`` samples, DuckDB's
  writer, snappy), then its queries (Q1 group-by, Q2 top-10 per query) through ``store.sql``,
  each in a child process: cold and warm times, peak RSS.
- ``extrapolation``: an estimate (not a measurement) for 1B samples x 1k queries on a cluster,
  from the figures above, with every assumption written next to it.

Writes bench/results/scale.json (each part with its own machine and provenance) and prints tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")  # as the toolkit sets it (attribution/__init__.py)

from _common import (  # noqa: E402
    RESULTS_DIR,
    WORK_DIR,
    add_provenance_args,
    dir_bytes,
    fresh_dir,
    machine_info,
    merge_part,
    now_iso,
    print_table,
    rel,
    require_clean_tree,
)

PARTS = ("scoring", "fault", "ingest", "sql", "extrapolation")


# ---------------------------------------------------------------------- scoring and fault
def _scoring_setup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch
    from engine_throughput import ALPHABET, build_model, pairs, train

    import stores
    from attribution.data import CompletionDataset, Samples, char_tokenizer
    from attribution.engine import EngineConfig, InfluenceEngine
    from attribution.tasks import CausalLMTask, linearize_conv1d

    torch.set_num_threads(2)
    tok = char_tokenizer(ALPHABET)
    tp, tc = pairs(args.train, 1)
    qp, qc = pairs(args.queries, 2)
    train_s = Samples(CompletionDataset(tp, tc, tok, 24), [f"t{i}" for i in range(args.train)])
    query_s = Samples(CompletionDataset(qp, qc, tok, 24), [f"q{i}" for i in range(args.queries)])
    model = build_model(tok, args.seed)
    t0 = time.perf_counter()
    train(model, train_s.data, args.train_steps, args.seed)
    linearize_conv1d(model)
    train_s_ = time.perf_counter() - t0
    cfg = EngineConfig(strategy="ekfac", batch_size=32, shard_size=args.shard_size)
    base = stores.open(work / "factors")
    engine = InfluenceEngine(base, model, CausalLMTask(model), cfg)
    t0 = time.perf_counter()
    engine.fit_factors(train_s)
    return {"model": model, "train": train_s, "queries": query_s, "cfg": cfg, "base": base,
            "train_s": train_s_, "fit_factors_s": time.perf_counter() - t0,
            "params": sum(p.numel() for p in model.parameters())}


def _score(setup: dict[str, Any], store_dir: Path, executor: Any, on_shard: Any = None) -> tuple[float, Any]:
    import stores
    from attribution.engine import InfluenceEngine, score_matrix
    from attribution.tasks import CausalLMTask

    store = stores.open(store_dir)
    shutil.copytree(setup["base"].root / "artifacts" / "kronfluence", store.root / "artifacts" / "kronfluence")
    model = setup["model"]
    engine = InfluenceEngine(store, model, CausalLMTask(model), setup["cfg"], executor=executor)
    t0 = time.perf_counter()
    run = engine.pairwise_scores("b", setup["train"], setup["queries"], on_shard=on_shard)
    seconds = time.perf_counter() - t0
    assert run.shards_computed == run.shards_total
    matrix = score_matrix(store, run.run_id, setup["queries"].ids, setup["train"].ids)
    return seconds, (store, run, matrix)


def part_scoring(args: argparse.Namespace, work: Path, setup: dict[str, Any]) -> dict[str, Any]:
    from stores.executors import RayExecutor

    n = args.train
    out: dict[str, Any] = {"model": {"what": "bench/engine_throughput.py's GPT-2 (4 layers, d=256), linearised",
                                     "params": setup["params"], "train_steps": args.train_steps,
                                     "train_s": setup["train_s"]},
                           "n_train": n, "n_queries": args.queries, "shard_size": args.shard_size,
                           "n_shards": -(-n // args.shard_size), "fit_factors_s": setup["fit_factors_s"],
                           "factors": "EK-FAC, fitted once before the runs and copied into each store"}
    matrices = {}
    runs = (("local", None), ("ray_1", RayExecutor(num_cpus=2, workers=1)), ("ray_2", RayExecutor(num_cpus=2, workers=2)))
    for name, executor in runs:
        if executor is not None:
            executor.ray()  # the cluster is started before the clock
        print(f"  scoring: {name} ...", flush=True)
        seconds, (_, _, matrix) = _score(setup, work / f"store-{name}", executor)
        matrices[name] = matrix
        out[name] = {"seconds": seconds, "samples_per_s": n / seconds,
                     "how": "this process, 2 torch threads" if executor is None else
                     f"local Ray cluster of 2 CPUs, {executor.workers} task(s) in flight, 1 CPU each"}
    np.save(work / "local_scores.npy", matrices["local"])  # the fault run compares with it
    out["identical"] = all(np.array_equal(matrices[k], matrices["local"]) for k in matrices)
    out["max_abs_diff_vs_local"] = {k: float(np.abs(matrices[k] - matrices["local"]).max()) for k in matrices}
    out["ray_2_over_ray_1"] = out["ray_2"]["samples_per_s"] / out["ray_1"]["samples_per_s"]
    out["ray_2_over_local"] = out["ray_2"]["samples_per_s"] / out["local"]["samples_per_s"]
    out["goal"] = {"ray_2_over_ray_1_at_least": 1.7, "met": out["ray_2_over_ray_1"] >= 1.7 and out["identical"]}
    return out


def part_fault(args: argparse.Namespace, work: Path, setup: dict[str, Any], scoring: dict[str, Any]) -> dict[str, Any]:
    import psutil

    from stores.executors import RayExecutor

    killed: list[dict[str, Any]] = []

    def kill_a_running_task(k: int) -> None:
        if killed:
            return
        deadline = time.time() + 10
        while time.time() < deadline:
            for proc in psutil.process_iter(["cmdline"]):
                if " ".join(proc.info["cmdline"] or []).startswith("ray::_call_shard"):
                    proc.kill()
                    killed.append({"pid": proc.pid, "after_shard": k, "at_s": time.perf_counter() - started[0]})
                    return
            time.sleep(0.02)

    started = [time.perf_counter()]
    executor = RayExecutor(num_cpus=2, workers=2)
    executor.ray()
    print("  fault: ray_2 with a worker killed ...", flush=True)
    started[0] = time.perf_counter()
    seconds, (store, run, matrix) = _score(setup, work / "store-fault", executor, on_shard=kill_a_running_task)
    local = np.load(work / "local_scores.npy")
    shards = store.sql(f"SELECT count(*) FROM shards WHERE run_id = '{run.run_id}'").item()
    dup = store.sql(f"SELECT count(*) - count(DISTINCT (query_id, sample_id)) FROM scores WHERE run_id = '{run.run_id}'").item()
    out = {"seconds": seconds, "killed": killed, "identical": bool(np.array_equal(matrix, local)),
           "extra_s": seconds - scoring["ray_2"]["seconds"] if scoring else None,
           "shards_registered": int(shards), "shards_expected": run.shards_total, "duplicate_pairs": int(dup),
           "rows": int(store.sql(f"SELECT count(*) FROM scores WHERE run_id = '{run.run_id}'").item()),
           "rows_expected": args.train * args.queries}
    out["nothing_lost_or_duplicated"] = (out["shards_registered"] == out["shards_expected"] and dup == 0
                                         and out["rows"] == out["rows_expected"] and bool(killed))
    return out


# ---------------------------------------------------------------------- ingest
def part_ingest(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from ingest_throughput import write_jsonl

    import stores
    from stores.executors import RayExecutor
    from stores.ingest import ingest

    path = work / "rows.jsonl"
    print(f"  ingest: generating {args.ingest_rows:,} rows ...", flush=True)
    gen = write_jsonl(path, args.seed, n_rows=args.ingest_rows)
    out: dict[str, Any] = {"rows": args.ingest_rows, "input_bytes": path.stat().st_size,
                           "generate_s": gen.get("generate_s")}
    results = {}
    for name, executor in (("local", None), ("ray", RayExecutor(num_cpus=2, workers=2))):
        if executor is not None:
            executor.ray()
        print(f"  ingest: {name} ...", flush=True)
        store_dir = fresh_dir(work / f"ingest-{name}")
        t0 = time.perf_counter()
        res = ingest(stores.open(store_dir / "store"), path, "bench", executor=executor)
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_store_bytes"] = dir_bytes(store_dir / "store" / "data")
        results[name] = res
        shutil.rmtree(store_dir)
    a, b = results["local"], results["ray"]
    out["same_dataset"] = (a.n_samples, a.n_duplicates, a.fingerprint) == (b.n_samples, b.n_duplicates, b.fingerprint)
    out["n_samples"] = b.n_samples
    out["ray_over_local"] = out["local_s"] / out["ray_s"]
    path.unlink()
    return out


# ---------------------------------------------------------------------- SQL
def part_sql(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import sql_scores

    ns = argparse.Namespace(samples=args.sql_samples, queries=args.sql_queries, seed=args.seed, behaviour="bench",
                            gen_memory_limit="4GB", repeats=args.sql_repeats)
    layout = sql_scores.Layout("sample-major", samples_per_shard=args.sql_samples_per_shard, queries_per_shard=10)
    store_dir = fresh_dir(work / "sql") / "store"
    free = shutil.disk_usage(work).free
    print(f"  sql: writing {args.sql_samples * args.sql_queries:,} rows ({free / 1e9:.0f} GB free) ...", flush=True)
    data = sql_scores.build_store(ns, layout, "scale", store_dir)
    logs = fresh_dir(work / "sql-logs")
    runs = sql_scores.time_queries(ns, store_dir, ["api"], logs)
    q1, q2, q2b, q2api = (runs[q]["modes"]["api"] for q in ("Q1", "Q2", "Q2b", "Q2api"))
    out = {"rows": data["rows"], "samples": args.sql_samples, "queries": args.sql_queries,
           "bytes": data["bytes"], "bytes_per_row": data["bytes"] / data["rows"], "n_shards": data["n_shards"],
           "disk_free_before_bytes": free, "generate_s": data["generate_s"], "layout": data["layout"],
           "groupby_s": q1["warm_median_s"], "groupby_cold_s": q1["cold_s"],
           "topk_s": q2["warm_median_s"], "topk_cold_s": q2["cold_s"],
           "topk_aggregate_s": q2b["warm_median_s"], "topk_aggregate_cold_s": q2b["cold_s"],
           "topk_aggregate_same_answer": sql_scores.same_answer(q2["answer"], q2b["answer"]),
           "topk_api_s": q2api["warm_median_s"], "topk_api_cold_s": q2api["cold_s"],
           "topk_api_same_answer": sql_scores.same_answer(q2["answer"], q2api["answer"]),
           "peak_rss_mb": max(q1["peak_rss_mib"], q2["peak_rss_mib"], q2b["peak_rss_mib"], q2api["peak_rss_mib"]),
           "peak_rss_mb_per_query": {q: runs[q]["modes"]["api"]["peak_rss_mib"] for q in runs},
           "queries_detail": runs, "how": "bench/sql_scores.py's build_store and time_queries (mode api: store.sql)"}
    out["goal"] = {"topk_under_s": 10, "judged_on": "Q2, the SQL benchmark's top-k query (window)",
                   "met": out["topk_s"] < 10,
                   "met_by_the_aggregate_form": out["topk_aggregate_s"] < 10 and out["topk_aggregate_same_answer"],
                   "met_by_store_top_scores": out["topk_api_s"] < 10 and out["topk_api_same_answer"]}
    if not args.keep:
        shutil.rmtree(store_dir.parent, ignore_errors=True)
    return out


# ---------------------------------------------------------------------- extrapolation
def part_extrapolation(result: dict[str, Any]) -> dict[str, Any]:
    """1B samples x 1k queries on a cluster: arithmetic on the measured figures, every assumption named."""
    sc, sq = result.get("scoring"), result.get("sql_1b")
    if not sc or not sq:
        return {"skipped": "needs the scoring and sql parts"}
    per_task = sc["ray_1"]["samples_per_s"]  # one CPU, this model, 10 queries
    n, q, rows = 1e9, 1e3, 1e12
    q_factor = 1.0 + (q - sc["n_queries"]) / sc["n_queries"] * 0.5
    cores = 4096
    core_s = n / per_task * q_factor
    return {
        "kind": "estimate from measured figures, not a measurement",
        "target": "1e9 training samples x 1e3 queries (1e12 scores) on a CPU cluster",
        "assumptions": [
            f"model: the benchmark's 4-layer d=256 GPT-2 at 24 tokens per sample ({sc['model']['params']:,} "
            "parameters); cost grows with the parameters of the tracked layers and the tokens per sample",
            f"one task on one core scores {per_task:.1f} samples/s against {sc['n_queries']} queries (ray_1, measured)",
            f"1,000 queries cost {q_factor:.0f}x 10 queries: an assumed 50% of the per-sample cost grows with the "
            "number of queries (not measured here; bench/results/engine_throughput.json measures 1 vs 100 queries)",
            f"workers scale linearly to {cores:,} cores (measured here: 2 tasks gave "
            f"{sc['ray_2_over_ray_1']:.2f}x 1 task on 2 cores)",
            "factors fitted once with --factor-partitions over the cluster (not included)",
            f"storage: {sq['bytes_per_row']:.2f} bytes per score row, as measured at {sq['rows']:,} rows",
            "the store folder on a shared filesystem that absorbs the shard writes",
        ],
        "core_hours": core_s / 3600,
        "hours_on_cores": {"cores": cores, "hours": core_s / cores / 3600},
        "scores_bytes": rows * sq["bytes_per_row"],
        "note": "a top-k query over 1e12 rows would scan 1000x the 1B-row table: plan for per-query "
                "filters (WHERE query_id = ...) or a cluster SQL engine over the same Parquet files",
    }


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--shard-size", type=int, default=100)
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--ingest-rows", type=int, default=10_000_000)
    p.add_argument("--sql-samples", type=int, default=10_000_000)
    p.add_argument("--sql-queries", type=int, default=100)
    p.add_argument("--sql-samples-per-shard", type=int, default=10_240)
    p.add_argument("--sql-repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the work folder (stores, generated data)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "scale.json")
    add_provenance_args(p)
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        p.error(f"unknown part(s) {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    provenance = require_clean_tree(args.allow_dirty)
    work = fresh_dir(WORK_DIR / "scale")
    common = {"machine": machine_info(), "git": provenance,
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    import json

    result: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}

    def save(key: str, part: dict[str, Any], t0: float) -> None:
        part = {**part, "created_at": now_iso(), "wall_s": time.perf_counter() - t0, **common}
        result[key] = part
        merge_part(args.out, key, part, "scale")

    if "scoring" in parts or "fault" in parts:
        t0 = time.perf_counter()
        setup = _scoring_setup(args, work)
        scoring = result.get("scoring") if "scoring" not in parts else None
        if "scoring" in parts:
            scoring = part_scoring(args, work, setup)
            save("scoring", scoring, t0)
        if "fault" in parts:
            if "scoring" not in parts:  # the fault run compares with a local run of this script
                _, (_, _, local) = _score(setup, work / "store-local", None)
                np.save(work / "local_scores.npy", local)
            t0 = time.perf_counter()
            save("fault", part_fault(args, work, setup, scoring), t0)
    if "ingest" in parts:
        t0 = time.perf_counter()
        save("ingest_10m", part_ingest(args, work), t0)
    if "sql" in parts:
        t0 = time.perf_counter()
        save("sql_1b", part_sql(args, work), t0)
    if "extrapolation" in parts:
        save("extrapolation", part_extrapolation(result), time.perf_counter())
    _print(result)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {rel(args.out)}")


def _print(r: dict[str, Any]) -> None:
    if "scoring" in r:
        s = r["scoring"]
        print_table("scoring", ["run", "seconds", "samples/s"],
                    [[k, s[k]["seconds"], s[k]["samples_per_s"]] for k in ("local", "ray_1", "ray_2")])
        print(f"identical: {s['identical']}; ray_2 / ray_1: {s['ray_2_over_ray_1']:.2f}")
    if "fault" in r:
        f = r["fault"]
        print(f"fault: identical {f['identical']}, extra {f['extra_s']}, nothing lost/duplicated "
              f"{f['nothing_lost_or_duplicated']}")
    if "ingest_10m" in r:
        i = r["ingest_10m"]
        print(f"ingest {i['rows']:,} rows: local {i['local_s']:.1f} s, ray {i['ray_s']:.1f} s, same {i['same_dataset']}")
    if "sql_1b" in r:
        q = r["sql_1b"]
        print(f"sql {q['rows']:,} rows ({q['bytes'] / 1e9:.1f} GB): top-k {q['topk_s']:.1f} s (aggregate form "
              f"{q['topk_aggregate_s']:.1f} s, store.top_scores {q['topk_api_s']:.1f} s), group-by "
              f"{q['groupby_s']:.1f} s, peak RSS {q['peak_rss_mb']:.0f} MiB")


if __name__ == "__main__":
    main()
