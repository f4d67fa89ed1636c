"""The store's Parquet layout read by another engine: Ray Data gets the rows DuckDB gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import stores
from stores.ingest import ingest
from tests.helpers import write_jsonl


def test_ray_data_reads_the_samples_and_scores_duckdb_reads(tmp_path: Path, ray_cluster) -> None:
    ray = ray_cluster
    store = stores.open(tmp_path / "s")
    rows = [{"text": f"sample {i}", "label": i % 4, "meta": {"k": i}} for i in range(500)]
    ingest(store, write_jsonl(tmp_path / "d.jsonl", rows), "d", batch_rows=120)  # 5 sample shards
    ids = store.read_samples("d")["sample_id"].to_list()
    rng = np.random.default_rng(0)
    with store.run("attribute", dataset="d") as run:
        for k in range(3):  # three scores shards, sample-major like the engine's
            sids = np.repeat(ids[k * 100:(k + 1) * 100], 7)
            run.write("scores", {"behaviour": ["b"] * len(sids), "query_id": [f"q{j}" for j in range(7)] * 100,
                                 "sample_id": sids, "score": rng.normal(size=len(sids)).astype(np.float32)}, shard=k)
    checks = {
        "samples": (store.dataset_files("d"), ["sample_id", "ordinal", "text", "label"],
                    "SELECT sample_id, ordinal, text, label FROM samples WHERE dataset = 'd'"),
        "scores": (store.shard_paths("scores", run.id), ["query_id", "sample_id", "score"],
                   f"SELECT query_id, sample_id, score FROM scores WHERE run_id = '{run.id}'"),
    }
    for table, (paths, columns, query) in checks.items():
        assert len(paths) > 1, table
        by_ray = ray.data.read_parquet(paths).select_columns(columns).to_pandas()
        by_duckdb = store.sql(query).to_pandas()
        key = columns[:2]
        pd.testing.assert_frame_equal(by_ray.sort_values(key).reset_index(drop=True),
                                      by_duckdb.sort_values(key).reset_index(drop=True), check_dtype=False)
        assert len(by_ray) == {"samples": 500, "scores": 2100}[table]
